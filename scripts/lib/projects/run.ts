// Plays one stage against a learner's program: starts `run.sh --port N` in its own process group (with
// `--root DIR` when the stage puts files there first), waits until it accepts, plays the stage's steps over real
// sockets, and always kills whatever the program started.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { escapeBytes, hexDifference, isText, showDifference } from './bytes.ts';
import { httpReasons, type ResponseStep, type Stage, type Step, type Text } from './types.ts';

export const markerVar = 'NODE_NET_WORKBOOK_PROJECT_RUN';

export interface StageOptions {
  /** Folder holding run.sh. */
  dir: string;
  /** Longest wait for one expected line, closing or exit (ms). */
  waitMs: number;
  /** Longest wait for the program to accept its first connection (ms). */
  startMs: number;
  /** Where to tell the program to listen; freePort() unless a test hands out a port something else holds. */
  ports?: () => Promise<number>;
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
  | 'flood'
  /** Not an HTTP/1.1 response: a bad status line, a header line without a colon, a bare \n, a bad chunk. */
  | 'bad-response'
  | 'wrong-status'
  | 'wrong-header'
  | 'wrong-body';

export interface StageResult {
  ok: boolean;
  ms: number;
  /** How long the program took to accept its first connection (start-up, not the verdict). */
  readyMs?: number;
  /** The environment marker of the program's processes (none may be left once the stage is over). */
  marker?: string;
  /** What happened, in order: `A → "e:hi\n"`, `A ← "hi\r\n"`. */
  transcript: string[];
  failure?: {
    kind: FailureKind;
    message: string;
    details: string[];
    hint: string;
    /** The hint in Chinese, where the runner has one. */
    hintZh?: string;
    stderr: string[];
  };
}

class StageFailure extends Error {
  readonly kind: FailureKind;
  readonly details: string[];
  readonly hint: string;
  readonly hintZh: string | undefined;
  constructor(kind: FailureKind, message: string, details: string[] = [], hint: string | Text = '') {
    super(message);
    this.kind = kind;
    this.details = details;
    this.hint = typeof hint === 'string' ? hint : hint.en;
    this.hintZh = typeof hint === 'string' ? undefined : hint.zh;
  }
}

/** A free port: bind port 0, read it, close. Someone may take it meanwhile: the caller then tries a new one. */
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

/**
 * Who listens on TCP port PORT (on Linux): 'program' when every listening socket on it is held by a process
 * carrying MARKER, 'other' when one is not (someone took the free port before the program could bind it, and a
 * connection to it reaches them), 'unknown' when this system cannot tell.
 */
export function listenerOf(port: number, marker: string): 'program' | 'other' | 'unknown' {
  const listening = listeningSockets(port);
  if (!listening?.size) return 'unknown';
  const held = new Set<string>();
  for (const pid of markedPids(marker)) {
    try {
      for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
        const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`, { encoding: 'latin1' });
        const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
        if (inode) held.add(inode);
      }
    } catch {
      // Gone, or its fd table changed while we read it.
    }
  }
  return [...listening].every((inode) => held.has(inode)) ? 'program' : 'other';
}

/** The inodes of the sockets that listen on TCP port PORT (on Linux; elsewhere undefined: can't tell). */
function listeningSockets(port: number): Set<string> | undefined {
  if (process.platform !== 'linux') return undefined;
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const listening = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'latin1');
    } catch {
      continue;
    }
    // "sl local_address rem_address st … uid timeout inode": state 0A is LISTEN.
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && f[1]?.endsWith(`:${hexPort}`) && f[9]) listening.add(f[9]);
    }
  }
  return listening;
}

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

  constructor(dir: string, port: number, args: string[]) {
    this.child = spawn('sh', ['run.sh', '--port', String(port), ...args], {
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

/** One client connection with everything it received, taken as lines or as counted bytes. */
class Client {
  private buffer: Buffer = Buffer.alloc(0);
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

  /** The next whole line, `\n` included. */
  takeLine(): Buffer | undefined {
    const nl = this.buffer.indexOf(0x0a);
    if (nl === -1) return undefined;
    const line = this.buffer.subarray(0, nl + 1);
    this.buffer = this.buffer.subarray(nl + 1);
    return line;
  }

  /** The next `n` bytes, once they are all here. */
  take(n: number): Buffer | undefined {
    if (this.buffer.length < n) return undefined;
    const bytes = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return bytes;
  }

  /** What arrived and was not taken yet (after takeLine() found none: the start of a line without its \n). */
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

const crlf = Buffer.from('\r\n');

/** What a malformed HTTP response most likely means, in both languages. */
const hints = {
  bareLf: {
    en: 'the line ends with \\n alone: every line of an HTTP response (status line, headers, the empty line, chunk sizes) ends with \\r\\n',
    zh: '这一行只以 \\n 结尾：HTTP 响应的每一行（状态行、头部、空行、块大小）都以 \\r\\n 结尾',
  },
  noLineEnd: {
    en: 'bytes arrived but no line end: every line of an HTTP response ends with \\r\\n',
    zh: '收到了字节，却没有行尾：HTTP 响应的每一行都以 \\r\\n 结尾',
  },
  statusLine: {
    en: 'a response starts with the status line: HTTP/1.1, a space, the 3-digit code, a space, the reason phrase, \\r\\n (bytes of an earlier body longer than its Content-Length land here too)',
    zh: '响应以状态行开头：HTTP/1.1、空格、三位状态码、空格、原因短语、\\r\\n（前一个响应的正文比它的 Content-Length 长时，多出的字节也会落到这里）',
  },
  reason: (code: number): Text => ({
    en: `the reason phrase of ${code} is "${httpReasons[code]}"`,
    zh: `${code} 的原因短语是 "${httpReasons[code]}"`,
  }),
  endOfHeaders: {
    en: "the header section ends with an empty line: after the last header's \\r\\n, one more \\r\\n",
    zh: '头部以一个空行结束：最后一个头部的 \\r\\n 之后，再写一个 \\r\\n',
  },
  headerLine: {
    en: 'each header line is NAME: value, with no space before the colon',
    zh: '每个头部行都是 NAME: value，冒号前没有空格',
  },
  both: {
    en: 'send Content-Length or Transfer-Encoding: chunked, never both (RFC 9112 §6.2: a message with both is a request-smuggling risk)',
    zh: 'Content-Length 和 Transfer-Encoding: chunked 二选一，不能同时发送（RFC 9112 §6.2：两者都有的报文有请求走私的风险）',
  },
  chunkedWanted: {
    en: 'a directory listing is sent with "Transfer-Encoding: chunked" and no Content-Length: each piece as its size in hex, \\r\\n, the bytes, \\r\\n; then 0\\r\\n\\r\\n',
    zh: '目录列表用 "Transfer-Encoding: chunked" 发送、不带 Content-Length：每一块是十六进制的大小、\\r\\n、这些字节、\\r\\n；最后是 0\\r\\n\\r\\n',
  },
  lengthWanted: {
    en: 'every response except a directory listing carries Content-Length',
    zh: '除了目录列表，每个响应都带 Content-Length',
  },
  noLength: {
    en: 'missing or wrong Content-Length: without it a keep-alive client cannot tell where the body ends; it is the number of BYTES of the body',
    zh: 'Content-Length 缺失或不对：没有它，保持连接的客户端无法知道正文在哪里结束；它是正文的字节数',
  },
  bytesNotChars: {
    en: 'Content-Length counts bytes, not characters: 你 is 3 bytes in UTF-8 (Buffer.byteLength(text), len(text.encode())), or send the file as the bytes you read',
    zh: 'Content-Length 数的是字节而不是字符：你 在 UTF-8 中占 3 个字节（Buffer.byteLength(text)、len(text.encode())），或者直接发送读到的字节',
  },
  neverEnds: {
    en: 'the response never ended: a body has exactly Content-Length bytes, and a chunked body ends with the last chunk 0\\r\\n\\r\\n',
    zh: '响应一直没有结束：正文必须正好有 Content-Length 个字节，分块的正文以最后一块 0\\r\\n\\r\\n 结束',
  },
  lastChunk: {
    en: 'the last chunk is "0\\r\\n" followed by an empty line "\\r\\n"',
    zh: '最后一块是 "0\\r\\n"，后面跟一个空行 "\\r\\n"',
  },
  chunkSize: {
    en: 'a chunk is its size in hex, \\r\\n, exactly that many BYTES, \\r\\n: the size counts bytes, not characters (你 is 3 bytes in UTF-8)',
    zh: '一块是十六进制的大小、\\r\\n、正好这么多字节、\\r\\n：大小数的是字节而不是字符（你 在 UTF-8 中占 3 个字节）',
  },
  binary: {
    en: 'send a file as the bytes you read: decoding it as text (UTF-8) and encoding it again changes every byte that is not valid UTF-8',
    zh: '按读到的字节原样发送文件：把它当文本（UTF-8）解码再编码，会改掉所有不是合法 UTF-8 的字节',
  },
  listing: {
    en: 'one line per entry of the directory: its name, a / after the name of a directory, then \\n',
    zh: '目录里每一项一行：名字，目录名后加 /，然后是 \\n',
  },
  emptyBody: {
    en: 'an error response carries a short text saying what went wrong, with its Content-Length',
    zh: '错误响应带一小段说明出了什么错的文字，以及它的 Content-Length',
  },
  traversal: {
    en: 'never serve a path outside the root: resolve the path, then check it still starts with the root folder and a \'/\' (".." climbs out)',
    zh: '绝不提供根目录之外的路径：先解析路径，再检查它仍以根目录加 \'/\' 开头（".." 会往上爬出去）',
  },
} satisfies Record<string, Text | ((code: number) => Text)>;

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
  const files = steps.filter((s) => s.op === 'file');
  // The stage's files, written before the program starts: DIR/root is --root, DIR itself holds what lies outside.
  let tmp: string | undefined;
  let root: string | undefined;
  if (files.length) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'project-root-'));
    root = path.join(tmp, 'root');
    fs.mkdirSync(root);
    for (const f of files) {
      const file = path.join(f.outside ? tmp : root, f.path);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, f.data);
    }
    note(
      `tester wrote ${files.length} file${files.length === 1 ? '' : 's'}; the program gets --root ${root}`,
    );
  }

  const client = (who: string): Client => {
    const c = clients.get(who);
    if (!c) throw new Error(`stage ${stage.slug}: ${who} is used before it connects`);
    return c;
  };

  /** Starts the program and connects the first client: a refused connection means "not listening yet". */
  const start = async (who: string): Promise<Client> => {
    for (let attempt = 0; ; attempt++) {
      port = await (opts.ports ?? freePort)();
      program = new Program(opts.dir, port, root ? ['--root', root] : []);
      const deadline = performance.now() + opts.startMs;
      let delay = 10;
      let taken = false;
      for (;;) {
        if (program.exit) break;
        let socket: net.Socket | undefined;
        // Looked at before connecting too: a connection to another tester's program would reach its clients
        // (a chat room announces every newcomer), not only ours.
        const before = listenerOf(port, program.marker);
        try {
          if (before !== 'other') socket = await connectOnce(port);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'ECONNREFUSED') throw new StageFailure('reset', `${who} could not connect: ${code}`);
        }
        // With nothing listening yet, the kernel can give the client P itself as its own port: a socket connected
        // to itself (TCP's simultaneous open), which hears its own bytes. That is "not listening yet" too.
        if (socket && socket.localPort === port) {
          socket.destroy();
          socket = undefined;
        }
        // The free port may have gone to another process before the program bound it: that is not the program.
        if (before === 'other' || (socket && listenerOf(port, program.marker) === 'other')) {
          socket?.destroy();
          taken = true;
          break;
        }
        if (socket) {
          const c = new Client(who, socket);
          clients.set(who, c);
          readyMs = performance.now() - started;
          note(`${who} connected to 127.0.0.1:${port}`);
          return c;
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
      if (!taken) await Promise.race([program.stderrClosed, pause(300)]);
      // Someone else taking our free port is the one reason to try again: we saw them listen, or the program says so.
      const inUse = taken || program.stderr.some((l) => /EADDRINUSE|address already in use/i.test(l));
      if (inUse && attempt < 2) {
        if (taken) note(`127.0.0.1:${port} is held by another process, not the program: trying a new port`);
        await program.kill();
        continue;
      }
      throw new StageFailure(
        'never-listened',
        taken
          ? `127.0.0.1:${port} was held by another process, not the program (${attempt + 1} ports in a row)`
          : `the program ${program.describeExit()} before accepting a connection on 127.0.0.1:${port}`,
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

  /** Waits until `ready()` gives something; undefined when the connection ends first; `late()` on timeout. */
  const waitFor = async <T>(
    c: Client,
    ready: () => T | undefined,
    late: () => StageFailure,
  ): Promise<T | undefined> => {
    const deadline = performance.now() + opts.waitMs;
    for (;;) {
      const got = ready();
      if (got !== undefined) return got;
      if (c.gone) return undefined;
      const left = deadline - performance.now();
      if (left <= 0 || !(await c.changed(left))) throw late();
    }
  };

  /** The next line of a response; a timeout or the end of the connection is a failure that says what was awaited. */
  const responseLine = async (c: Client, what: string, hint: string | Text = ''): Promise<Buffer> => {
    const got = await waitFor(
      c,
      () => c.takeLine(),
      () => {
        if (c.partial.length) note(`${c.name} ← ${escapeBytes(c.partial)} (no \\n yet)`);
        return new StageFailure(
          'timeout',
          `${c.name} waited ${opts.waitMs} ms for ${what} and nothing ${c.partial.length ? 'more ' : ''}arrived`,
          [],
          c.partial.length && !c.partial.includes(0x0a) ? hints.noLineEnd : hint,
        );
      },
    );
    if (!got) {
      if (c.partial.length) note(`${c.name} ← ${escapeBytes(c.partial)} (no \\n, then the connection ended)`);
      throw ended(c, what);
    }
    note(`${c.name} ← ${escapeBytes(got)}`);
    if (!got.subarray(-2).equals(crlf)) {
      const want = Buffer.concat([got.subarray(0, -1), crlf]);
      throw new StageFailure(
        'bad-response',
        `${c.name} received a line that ends with \\n alone`,
        showDifference(got, want),
        hints.bareLf,
      );
    }
    return got;
  };

  /** Reads one whole HTTP/1.1 response from `c` and checks it against the step. */
  const response = async (c: Client, step: ResponseStep): Promise<void> => {
    const who = c.name;
    const statusLine = (code: number) => `HTTP/1.1 ${code} ${httpReasons[code] ?? ''}\r\n`;
    const expected = step.status.map((s) => escapeBytes(statusLine(s))).join(' or ');
    const first = await responseLine(c, `the status line ${expected}`);
    const m = /^HTTP\/1\.1 (\d{3}) ([^\r\n]*)\r\n$/.exec(first.toString('latin1'));
    const code = m ? Number(m[1]) : Number.NaN;
    const wantLine = Buffer.from(statusLine(step.status.includes(code) ? code : (step.status[0] as number)));
    if (!m)
      throw new StageFailure(
        'bad-response',
        `${who} expected a status line ${expected}`,
        showDifference(first, wantLine),
        hints.statusLine,
      );
    if (!first.equals(wantLine)) {
      // What else came with the wrong answer is worth seeing: the lines already here, up to the empty one.
      for (let l = c.takeLine(); l; l = l.length > 2 ? c.takeLine() : undefined)
        note(`${who} ← ${escapeBytes(l)}`);
      const outside = step.without && code >= 200 && code < 300;
      throw new StageFailure(
        'wrong-status',
        step.status.includes(code)
          ? `${who} received the status ${code} with the wrong reason phrase`
          : `${who} expected the status ${step.status.join(' or ')} and received ${code}${outside ? `: it answered a path that leaves ROOT, where ${step.without?.file} lies` : ''}`,
        showDifference(first, wantLine),
        step.status.includes(code) ? hints.reason(code) : outside ? hints.traversal : '',
      );
    }
    const headers = new Map<string, string>();
    let size = first.length;
    for (;;) {
      const l = await responseLine(
        c,
        'the next header line or the empty line that ends the headers',
        hints.endOfHeaders,
      );
      if (l.length === 2) break;
      size += l.length;
      if (size > 65536)
        throw new StageFailure(
          'bad-response',
          `${who} received more than 64 KiB of headers without the empty line that ends them`,
          [],
          hints.endOfHeaders,
        );
      const text = l.toString('latin1').slice(0, -2);
      const colon = text.indexOf(':');
      const name = text.slice(0, colon);
      if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
        throw new StageFailure(
          'bad-response',
          `${who} received ${escapeBytes(l)}, which is not a header line (NAME: value)`,
          [],
          hints.headerLine,
        );
      const key = name.toLowerCase();
      const value = text.slice(colon + 1).trim();
      const before = headers.get(key);
      headers.set(key, before === undefined ? value : `${before}, ${value}`);
    }
    const te = headers.get('transfer-encoding');
    const cl = headers.get('content-length');
    if (te !== undefined && cl !== undefined)
      throw new StageFailure(
        'wrong-header',
        `${who} received a response with both Content-Length and Transfer-Encoding`,
        [],
        hints.both,
      );
    if (step.framing === 'chunked' && te?.toLowerCase() !== 'chunked')
      throw new StageFailure(
        'wrong-header',
        `${who} expected the header "Transfer-Encoding: chunked"${cl === undefined ? '' : `, not "Content-Length: ${cl}"`}`,
        [],
        hints.chunkedWanted,
      );
    if (step.framing === 'length') {
      if (te !== undefined)
        throw new StageFailure(
          'wrong-header',
          `${who} expected a Content-Length header, not "Transfer-Encoding: ${te}"`,
          [],
          hints.lengthWanted,
        );
      if (cl === undefined)
        throw new StageFailure(
          'wrong-header',
          `${who} received a response without Content-Length`,
          [],
          hints.noLength,
        );
      if (!/^\d{1,15}$/.test(cl))
        throw new StageFailure(
          'wrong-header',
          `${who} received "Content-Length: ${cl}", which is not a number of bytes`,
          [],
          hints.noLength,
        );
    }
    for (const [name, value] of Object.entries(step.headers ?? {})) {
      const got = headers.get(name.toLowerCase());
      if (got !== value)
        throw new StageFailure(
          'wrong-header',
          got === undefined
            ? `${who} expected the header "${name}: ${value}" and the response has no ${name}`
            : `${who} received a different ${name} header`,
          got === undefined
            ? []
            : showDifference(Buffer.from(`${name}: ${got}`), Buffer.from(`${name}: ${value}`)),
        );
    }
    const want = step.body === undefined ? undefined : Buffer.from(step.body);
    let body: Buffer;
    if (step.framing === 'length') {
      const n = Number(cl);
      if (want && n !== want.length)
        throw new StageFailure(
          'wrong-header',
          `${who} received "Content-Length: ${n}", but ${step.file ?? 'the body'} has ${want.length} bytes`,
          [],
          n < want.length && want.toString('utf8').length < want.length
            ? hints.bytesNotChars
            : hints.noLength,
        );
      if (n > 64 * 1024 * 1024)
        throw new StageFailure(
          'wrong-header',
          `${who} received "Content-Length: ${n}": more than the tester reads`,
        );
      const got = await waitFor(
        c,
        () => c.take(n),
        () =>
          new StageFailure(
            'timeout',
            `${who} received ${c.partial.length} of the ${n} body bytes its Content-Length announced, then nothing for ${opts.waitMs} ms`,
            [],
            hints.neverEnds,
          ),
      );
      if (!got) throw ended(c, `the rest of the body (${c.partial.length} of ${n} bytes arrived)`);
      body = got;
    } else {
      const parts: Buffer[] = [];
      let total = 0;
      for (;;) {
        const sizeLine = await responseLine(
          c,
          'the next chunk (its size in hex, then \\r\\n) or the last chunk "0\\r\\n\\r\\n"',
          hints.neverEnds,
        );
        const sm = /^([0-9a-fA-F]{1,8})(;[^\r\n]*)?\r\n$/.exec(sizeLine.toString('latin1'));
        if (!sm)
          throw new StageFailure(
            'bad-response',
            `${who} received ${escapeBytes(sizeLine)} where a chunk size line (hex digits, then \\r\\n) belongs`,
            [],
            hints.chunkSize,
          );
        const n = Number.parseInt(sm[1] as string, 16);
        if (n === 0) {
          // Trailer fields may follow the last chunk; an empty line ends the message.
          while (
            (await responseLine(c, 'the empty line after the last chunk "0\\r\\n"', hints.lastChunk)).length >
            2
          );
          break;
        }
        total += n;
        if (total > 64 * 1024 * 1024)
          throw new StageFailure('bad-response', `${who} received more than 64 MiB of chunks`);
        const got = await waitFor(
          c,
          () => c.take(n + 2),
          () =>
            new StageFailure(
              'timeout',
              `${who} received ${c.partial.length} bytes of a chunk of ${n} (0x${n.toString(16)}) bytes and its \\r\\n, then nothing for ${opts.waitMs} ms`,
              [],
              hints.chunkSize,
            ),
        );
        if (!got) throw ended(c, `the rest of a chunk of ${n} bytes`);
        note(`${who} ← ${escapeBytes(got)}`);
        if (!got.subarray(n).equals(crlf))
          throw new StageFailure(
            'bad-response',
            `${who} read the ${n} (0x${n.toString(16)}) bytes its chunk size announced, and they are followed by ${escapeBytes(got.subarray(n))} instead of "\\r\\n"`,
            [],
            hints.chunkSize,
          );
        parts.push(got.subarray(0, n));
      }
      body = Buffer.concat(parts);
    }
    if (step.framing === 'length')
      note(`${who} ← ${escapeBytes(body)}${body.length ? '' : ' (an empty body)'}`);
    else note(`${who}   (the chunks decode to ${escapeBytes(body)})`);
    if (want && !body.equals(want)) {
      const text = isText(want);
      throw new StageFailure(
        'wrong-body',
        `${who} received a different body${step.file ? ` from the bytes of ${step.file}` : ''} (${body.length} bytes, expected ${want.length})`,
        text ? showDifference(body, want) : hexDifference(body, want),
        text ? '' : hints.binary,
      );
    }
    if (step.lines) {
      const got = body.toString('utf8');
      const lines = got.endsWith('\n') ? got.slice(0, -1).split('\n') : got.split('\n');
      const missing = step.lines.filter((l) => !lines.includes(l));
      const extra = lines.filter((l) => !step.lines?.includes(l));
      if (missing.length || extra.length || lines.length !== step.lines.length || !got.endsWith('\n'))
        throw new StageFailure(
          'wrong-body',
          `${who} received a listing with different lines`,
          [
            ...missing.map((l) => `missing:    ${escapeBytes(`${l}\n`)}`),
            ...extra.map((l) => `unexpected: ${escapeBytes(`${l}\n`)}`),
            ...(got.endsWith('\n') ? [] : ['the last line has no \\n']),
            ...(missing.length || extra.length ? [] : ['a line appears more than once']),
          ],
          hints.listing,
        );
    }
    if (step.nonEmpty && body.length === 0)
      throw new StageFailure('wrong-body', `${who} received an empty body`, [], hints.emptyBody);
    if (step.without && body.includes(Buffer.from(step.without.text)))
      throw new StageFailure(
        'wrong-body',
        `${who} received the contents of ${step.without.file}, a file outside the root`,
        [],
        hints.traversal,
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
        // One byte per write: one line for the whole of it, not one per byte.
        if (step.split === 'bytes')
          note(`${step.who} → ${escapeBytes(bytes)} (one byte per write, ${bytes.length} writes)`);
        for (const to of [...cuts, bytes.length]) {
          const part = bytes.subarray(from, to);
          if (step.split !== 'bytes') note(`${step.who} → ${escapeBytes(part)}`);
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
      case 'file':
        // Written before the program started.
        return;
      case 'response':
        await response(client(step.who), step);
        return;
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
  } catch (caught) {
    if (!(caught instanceof StageFailure)) throw caught;
    let err = caught;
    // A connection that ended because the program died: the death is the news. Its exit can come well after the
    // EOF (CI: over 300 ms under load). A program that no longer listens on its port is going (a crash closes
    // every socket at once): its exit is waited for as long as anything (waitMs). One that still listens closed
    // the connection itself: a moment only.
    if ((err.kind === 'eof' || err.kind === 'reset') && program && !steps.some((s) => s.op === 'sigterm')) {
      const going = listeningSockets(port)?.size === 0;
      if (!program.exit) await Promise.race([program.exited, pause(going ? opts.waitMs : 300)]);
      if (program.exit) {
        await Promise.race([program.stderrClosed, pause(300)]);
        err = new StageFailure('exited', `the program ${program.describeExit()}: ${err.message}`);
      }
    }
    failure = {
      kind: err.kind,
      message: err.message,
      details: err.details,
      hint: err.hint,
      hintZh: err.hintZh,
      stderr: program?.stderrExcerpt() ?? [],
    };
  } finally {
    for (const c of clients.values()) c.socket.destroy();
    await program?.kill();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
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
