// Plays one stage against a learner's program: starts `run.sh --port N` in its own process group, waits until
// it accepts, plays the stage's steps over real sockets, and always kills whatever the program started.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { escapeBytes, showDifference } from './bytes.ts';
import type { Stage, Step } from './types.ts';

export const markerVar = 'NODE_NET_WORKBOOK_PROJECT_RUN';

export interface StageOptions {
  /** Folder holding run.sh. */
  dir: string;
  /** Longest wait for one expected line, closing or exit (ms). */
  waitMs: number;
  /** Longest wait for the program to accept its first connection (ms). */
  startMs: number;
}

export type FailureKind =
  | 'never-listened'
  | 'exited'
  | 'timeout'
  | 'eof'
  | 'reset'
  | 'wrong-line'
  | 'not-closed'
  | 'exit-code'
  | 'flood';

export interface StageResult {
  ok: boolean;
  ms: number;
  /** How long the program took to accept its first connection (start-up, not the verdict). */
  readyMs?: number;
  /** The environment marker of the program's processes (none may be left once the stage is over). */
  marker?: string;
  /** What happened, in order: `A → "e:hi\n"`, `A ← "hi\r\n"`. */
  transcript: string[];
  failure?: { kind: FailureKind; message: string; details: string[]; hint: string; stderr: string[] };
}

class StageFailure extends Error {
  readonly kind: FailureKind;
  readonly details: string[];
  readonly hint: string;
  constructor(kind: FailureKind, message: string, details: string[] = [], hint = '') {
    super(message);
    this.kind = kind;
    this.details = details;
    this.hint = hint;
  }
}

/** A free port: bind port 0, read it, close. Someone may take it meanwhile: the caller retries on EADDRINUSE. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', resolve);
  });
  const { port } = s.address() as net.AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Processes (on Linux) whose environment carries this run's marker: what the program left behind. */
export function markedPids(marker: string): number[] {
  if (process.platform !== 'linux') return [];
  const found: number[] = [];
  const needle = `${markerVar}=${marker}`;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = fs.readFileSync(`/proc/${entry}/environ`, 'latin1');
      if (env.split('\0').includes(needle)) found.push(Number(entry));
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return found;
}

/** The learner's program, in its own process group, with stderr kept for the report. */
class Program {
  readonly child: ChildProcess;
  readonly marker = randomUUID();
  readonly stderr: string[] = [];
  /** The first lines: where an error says what it is (a stack trace follows). */
  private readonly head: string[] = [];
  private lineCount = 0;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;
  /** Resolves once stderr is closed: everything the program wrote there has been read. */
  readonly stderrClosed: Promise<void>;

  constructor(dir: string, port: number) {
    this.child = spawn('sh', ['run.sh', '--port', String(port)], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, [markerVar]: this.marker, NODE_OPTIONS: '' },
    });
    this.child.stdout?.resume();
    this.stderrClosed = new Promise((resolve) => {
      if (!this.child.stderr) resolve();
      this.child.stderr?.on('close', () => resolve());
    });
    let partial = '';
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (text: string) => {
      const parts = (partial + text).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) if (this.head.length < 6) this.head.push(l);
      this.lineCount += parts.length;
      this.stderr.push(...parts);
      if (this.stderr.length > 200) this.stderr.splice(0, this.stderr.length - 200);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.stderr.push(`could not start sh run.sh: ${err.message}`);
        this.exit = { code: 127, signal: null };
        resolve();
      });
      this.child.on('exit', (code, signal) => {
        if (partial) {
          if (this.head.length < 6) this.head.push(partial);
          this.lineCount++;
          this.stderr.push(partial);
        }
        partial = '';
        this.exit = { code, signal };
        resolve();
      });
    });
  }

  signal(sig: NodeJS.Signals): void {
    try {
      if (this.child.pid) process.kill(-this.child.pid, sig);
    } catch {
      // The group is gone.
    }
  }

  /** Kills the whole group, then anything else that still carries the marker (a child that left the group). */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    if (!this.exit) await Promise.race([this.exited, pause(2000)]);
    for (let round = 0; round < 20; round++) {
      const left = markedPids(this.marker);
      if (!left.length) return;
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await pause(10);
    }
  }

  /** At most 13 lines of stderr: the first six, and the last six. */
  stderrExcerpt(): string[] {
    if (this.lineCount <= 12) return this.stderr.slice(-12);
    return [...this.head, `… (${this.lineCount - 12} more lines)`, ...this.stderr.slice(-6)];
  }

  describeExit(): string {
    if (!this.exit) return 'is still running';
    return this.exit.signal ? `was killed by ${this.exit.signal}` : `exited with code ${this.exit.code}`;
  }
}

/** One client connection with everything it received, line by line. */
class Client {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly lines: Buffer[] = [];
  private waiter: (() => void) | undefined;
  ended = false;
  error: NodeJS.ErrnoException | undefined;
  received = 0;

  readonly name: string;
  readonly socket: net.Socket;

  constructor(name: string, socket: net.Socket) {
    this.name = name;
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      for (let nl = this.buffer.indexOf(0x0a); nl !== -1; nl = this.buffer.indexOf(0x0a)) {
        this.lines.push(this.buffer.subarray(0, nl + 1));
        this.buffer = this.buffer.subarray(nl + 1);
      }
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (err) => {
      this.error = err;
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Resolves on the next event (data, end, error) or after `ms`; false on timeout. */
  changed(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(false);
      }, ms);
      this.waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  takeLine(): Buffer | undefined {
    return this.lines.shift();
  }

  get partial(): Buffer {
    return this.buffer;
  }

  get gone(): boolean {
    return this.ended || this.error !== undefined;
  }
}

function connectOnce(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    const onError = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

const decode = (b: Buffer) => b.toString('utf8');

/** What a wrong line most likely means, from how it differs. */
export function lineHint(got: Buffer, want: string): string {
  const text = decode(got);
  const bare = text.replace(/[\r\n]+$/, '');
  if (bare === '' && want !== '')
    return 'an empty line arrived: a stray \\n (print() and console.log add their own line ending, so \\r\\n written with them ends up doubled)';
  if (bare === want) {
    if (!text.endsWith('\r\n'))
      return 'the text is right but the line ends with \\n alone: end every line you send with \\r\\n';
    return 'the text is right but the line ending is doubled: end every line with \\r\\n exactly once';
  }
  if (bare.trim() === want.trim()) return 'the text is right apart from spaces around it';
  if (bare.includes('\uFFFD'))
    return 'a \uFFFD (replacement character) means UTF-8 was decoded before the whole character had arrived';
  return '';
}

/** Runs one stage. Never throws: a failure of the program is a result, with a hint. */
export async function runStage(stage: Stage, steps: Step[], opts: StageOptions): Promise<StageResult> {
  const started = performance.now();
  const transcript: string[] = [];
  const clients = new Map<string, Client>();
  let program: Program | undefined;
  let port = 0;
  let readyMs: number | undefined;
  const note = (text: string) => {
    transcript.push(text);
    if (transcript.length > 400) transcript.splice(0, 100);
  };
  const skip = stage.skip;

  const client = (who: string): Client => {
    const c = clients.get(who);
    if (!c) throw new Error(`stage ${stage.slug}: ${who} is used before it connects`);
    return c;
  };

  /** Starts the program and connects the first client: a refused connection means "not listening yet". */
  const start = async (who: string): Promise<Client> => {
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      program = new Program(opts.dir, port);
      const deadline = performance.now() + opts.startMs;
      let delay = 10;
      for (;;) {
        if (program.exit) break;
        try {
          const socket = await connectOnce(port);
          const c = new Client(who, socket);
          clients.set(who, c);
          readyMs = performance.now() - started;
          note(`${who} connected to 127.0.0.1:${port}`);
          return c;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ECONNREFUSED') throw new StageFailure('reset', `${who} could not connect: ${code}`);
        }
        if (performance.now() > deadline) {
          throw new StageFailure(
            'never-listened',
            `the program did not accept a connection on 127.0.0.1:${port} within ${opts.startMs} ms (it ${program.describeExit()})`,
          );
        }
        await Promise.race([pause(delay), program.exited]);
        delay = Math.min(delay * 2, 100);
      }
      // It exited before listening: read the rest of what it said (a child it left may hold stderr open).
      await Promise.race([program.stderrClosed, pause(300)]);
      // Someone else taking our free port is the one reason to try again.
      const inUse = program.stderr.some((l) => /EADDRINUSE|address already in use/i.test(l));
      if (inUse && attempt < 2) {
        await program.kill();
        continue;
      }
      throw new StageFailure(
        'never-listened',
        `the program ${program.describeExit()} before accepting a connection on 127.0.0.1:${port}`,
      );
    }
  };

  /** The next line `who` receives that this stage looks at; undefined when the connection ends first. */
  const nextLine = async (c: Client, expecting: string): Promise<Buffer | undefined> => {
    const deadline = performance.now() + opts.waitMs;
    for (;;) {
      const got = c.takeLine();
      if (got) {
        note(`${c.name} ← ${escapeBytes(got)}`);
        if (skip?.test(decode(got).replace(/\r?\n$/, ''))) {
          note(`${c.name}   (skipped: this stage does not look at that line yet)`);
          continue;
        }
        return got;
      }
      if (c.gone) {
        if (c.partial.length)
          note(`${c.name} ← ${escapeBytes(c.partial)} (no \\n, then the connection ended)`);
        return undefined;
      }
      const left = deadline - performance.now();
      if (left <= 0 || !(await c.changed(left))) {
        if (c.partial.length) note(`${c.name} ← ${escapeBytes(c.partial)} (no \\n yet)`);
        throw new StageFailure(
          'timeout',
          `${c.name} waited ${opts.waitMs} ms for ${expecting} and nothing ${c.partial.length ? 'more ' : ''}arrived`,
        );
      }
    }
  };

  const ended = (c: Client, what: string): StageFailure => {
    const code = c.error?.code;
    if (code === 'ECONNRESET' || code === 'EPIPE')
      return new StageFailure(
        'reset',
        `${c.name}'s connection was reset (${code}) while waiting for ${what}`,
      );
    return new StageFailure(
      'eof',
      `the server closed ${c.name}'s connection (EOF) while ${c.name} waited for ${what}`,
    );
  };

  const play = async (step: Step): Promise<void> => {
    switch (step.op) {
      case 'connect': {
        if (!program) {
          await start(step.who);
          return;
        }
        try {
          clients.set(step.who, new Client(step.who, await connectOnce(port)));
          note(`${step.who} connected`);
        } catch (err) {
          throw new StageFailure(
            'reset',
            `${step.who} could not connect: ${(err as NodeJS.ErrnoException).code} (the program ${program.describeExit()})`,
          );
        }
        return;
      }
      case 'send': {
        const c = client(step.who);
        const bytes = Buffer.from(step.data);
        const cuts =
          step.split === 'bytes'
            ? Array.from({ length: bytes.length - 1 }, (_, i) => i + 1)
            : (step.split ?? []).filter((n) => n > 0 && n < bytes.length);
        let from = 0;
        for (const to of [...cuts, bytes.length]) {
          const part = bytes.subarray(from, to);
          note(`${step.who} → ${escapeBytes(part)}`);
          if (!c.socket.destroyed) c.socket.write(part);
          from = to;
          // A short gap between the parts of a split write, so they arrive as separate segments.
          if (to < bytes.length) await pause(step.split === 'bytes' ? 2 : 15);
        }
        return;
      }
      case 'line': {
        const c = client(step.who);
        const want = Buffer.from(`${step.line}\r\n`);
        const got = await nextLine(c, `the line ${escapeBytes(want)}`);
        if (!got) throw ended(c, `the line ${escapeBytes(want)}`);
        if (!got.equals(want)) {
          throw new StageFailure(
            'wrong-line',
            `${c.name} received a different line`,
            showDifference(got, want),
            lineHint(got, step.line),
          );
        }
        return;
      }
      case 'closed': {
        const c = client(step.who);
        const got = await nextLine(c, 'the server to close the connection');
        if (got)
          throw new StageFailure(
            'not-closed',
            `${c.name} expected the server to close the connection, but received a line`,
          );
        note(`${c.name} ← end of stream${c.error ? ` (${c.error.code})` : ''}`);
        return;
      }
      case 'close': {
        const c = client(step.who);
        c.socket.end();
        note(`${step.who} closes its connection`);
        return;
      }
      case 'stall': {
        client(step.who).socket.pause();
        note(`${step.who} stops reading`);
        return;
      }
      case 'flood': {
        const c = client(step.who);
        const reader = client(step.reader);
        const message = Buffer.from(step.data);
        const each = Buffer.from(`${step.each}\r\n`);
        const until = Buffer.from(`${step.until}\r\n`);
        let sent = 0;
        let seen = 0;
        note(`${step.who} → ${escapeBytes(step.data)} again and again; ${step.reader} reads`);
        for (;;) {
          // At most 16 messages on their way to the reader: a reader that keeps up never has much waiting for it,
          // however busy the machine, so only the client that does not read can pass the server's limit.
          while (sent / message.length - seen < 16 && sent < step.maxBytes) {
            c.socket.write(message);
            sent += message.length;
          }
          const got = reader.takeLine();
          if (got) {
            if (got.equals(each)) {
              seen++;
              continue;
            }
            note(`${step.reader} ← ${seen} × ${escapeBytes(each)}`);
            note(`${step.reader} ← ${escapeBytes(got)}`);
            if (got.equals(until)) {
              // The messages still on their way must all reach the reader: the others are still served.
              const total = sent / message.length;
              let after = 0;
              while (seen < total) {
                const more = reader.takeLine();
                if (more?.equals(each)) {
                  seen++;
                  after++;
                  continue;
                }
                if (more) {
                  note(`${step.reader} ← ${after} × ${escapeBytes(each)}`);
                  note(`${step.reader} ← ${escapeBytes(more)}`);
                  throw new StageFailure(
                    'wrong-line',
                    `${step.reader} received a different line after the flood`,
                    showDifference(more, each),
                  );
                }
                if (reader.gone) throw ended(reader, `the rest of the ${total} messages`);
                if (!(await reader.changed(opts.waitMs))) {
                  note(`${step.reader} ← ${after} × ${escapeBytes(each)}`);
                  throw new StageFailure(
                    'timeout',
                    `${step.reader} received ${seen} of the ${total} messages ${step.who} sent, then nothing for ${opts.waitMs} ms`,
                  );
                }
              }
              note(`${step.reader} ← ${after} × ${escapeBytes(each)} (all ${total} arrived)`);
              return;
            }
            throw new StageFailure(
              'wrong-line',
              `${step.reader} received a different line during the flood`,
              showDifference(got, until),
            );
          }
          if (reader.gone) throw ended(reader, `the line ${escapeBytes(until)}`);
          if (sent >= step.maxBytes && seen >= sent / message.length) {
            note(`${step.reader} ← ${seen} × ${escapeBytes(each)}`);
            throw new StageFailure(
              'flood',
              `${step.who} sent ${sent} bytes and ${step.reader} read them all, but the server never dropped the client that does not read`,
            );
          }
          if (!(await reader.changed(opts.waitMs * 2))) {
            note(`${step.reader} ← ${seen} × ${escapeBytes(each)}`);
            throw new StageFailure(
              'timeout',
              `${step.reader} got nothing for ${opts.waitMs * 2} ms while ${step.who} was sending (${sent} bytes sent, ${seen} lines read)`,
            );
          }
        }
      }
      case 'sigterm': {
        note('tester → SIGTERM');
        program?.signal('SIGTERM');
        return;
      }
      case 'exit': {
        const p = program as Program;
        if (!p.exit) await Promise.race([p.exited, pause(opts.waitMs)]);
        if (!p.exit) throw new StageFailure('timeout', `the program did not exit within ${opts.waitMs} ms`);
        note(`program ${p.describeExit()}`);
        if (p.exit.code !== step.code)
          throw new StageFailure(
            'exit-code',
            `the program ${p.describeExit()}, expected exit code ${step.code}`,
          );
        return;
      }
    }
  };

  let failure: StageResult['failure'];
  try {
    for (const step of steps) {
      await play(step);
      // The program dying mid-stage (except where the stage stops it) is the failure, whatever comes next.
      if (program?.exit && !steps.some((s) => s.op === 'sigterm'))
        throw new StageFailure('exited', `the program ${program.describeExit()} during the stage`);
    }
  } catch (err) {
    if (!(err instanceof StageFailure)) throw err;
    failure = {
      kind: err.kind,
      message: err.message,
      details: err.details,
      hint: err.hint,
      stderr: program?.stderrExcerpt() ?? [],
    };
  } finally {
    for (const c of clients.values()) c.socket.destroy();
    await program?.kill();
  }
  return {
    ok: !failure,
    ms: performance.now() - started,
    readyMs,
    marker: program?.marker,
    transcript,
    failure,
  };
}
