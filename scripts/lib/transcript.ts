// Runs a transcript (scripts/transcripts.ts) the way a reader would, writes it as docs/transcripts/NN-slug/NAME.txt,
// and compares a fresh run with the file after masking what varies from run to run.
// Model: Node core's test/common/assertSnapshot.js (mask in both, then compare exactly).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { labs } from '../../labs/index.ts';
import { holdRefusedPort } from './ports.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** A pattern replaced by a placeholder in both the file and the fresh run before they are compared. */
export type Mask = readonly [RegExp, string];

export type Step =
  /** Start a process of the transcript (the shown one starts first unless a step starts it). */
  | { start: string }
  /**
   * Wait until that process prints a line matching `line` (the `count`th such line). With `fills`, the
   * line's first group replaces that text in every command started afterwards: what a reader copies from
   * one terminal into another (the CA file a server made, `--ca /tmp/lab16-XXXXXX/ca.pem`).
   */
  | { wait: string; line: RegExp; count?: number; fills?: string }
  /** Type into its stdin. */
  | { type: string; text: string }
  /** Close its stdin (Ctrl-D). */
  | { eof: string }
  /** Send it a signal (SIGINT = Ctrl-C). */
  | { kill: string; signal: NodeJS.Signals }
  /** Wait until it exits. */
  | { exit: string }
  /** Run `probe` (not shown) again and again until a line of its output matches: for states only ss can see. */
  | { probe: string; line: RegExp };

export interface Transcript {
  /** Two digits: the lab (and page) this transcript belongs to. */
  lab: string;
  /** Names the file: docs/transcripts/NN-slug/NAME.txt. */
  name: string;
  /** The command whose output the file shows, as a reader types it (`npm run lab 01`, `nc 127.0.0.1 8080`). */
  show: string;
  /** Other processes the session needs (a server, another client), by name. `show` is called `show`. */
  with?: Record<string, string>;
  /** What happens, in order; without steps the shown command runs alone until it exits. */
  steps?: readonly Step[];
  /**
   * The port the commands type (the lab's default). Recording uses it as typed; the check starts the
   * `server` process with `--port 0` and puts the real port into the other commands instead.
   */
  port?: number;
  /** Which process prints `listening on HOST:PORT` (default: `show`); 'none' when nothing listens on purpose. */
  server?: string;
  /** Check only: rewrite a command that names a fixed path (a Unix socket) to use `tmp`, a fresh directory. */
  rewrite?: (command: string, tmp: string) => string;
  /** Transcripts of one group run one after another in the test (one multicast receiver hears another's group). */
  group?: string;
  /** It describes this machine, not a lab (e.g. `ip link show lo`): recorded, never compared. */
  host?: string;
  /** What varies in this transcript besides the common masks (ports, clock times, dates, temp paths). */
  masks?: readonly Mask[];
  /**
   * How lines are compared: 'actor' (default) compares the lines of each `[actor]` in order, since actors
   * run concurrently and interleave differently each run; 'exact' compares all lines in order; 'any'
   * compares them as a set with counts (for output whose order is the kernel's choice).
   */
  order?: 'actor' | 'exact' | 'any';
  /** Needs root (a network namespace, say): recorded as root, compared only when running as root. */
  root?: string;
  /** Takes long: recorded once, compared only with TRANSCRIPTS_SLOW=1. The reason says how long. */
  slow?: string;
  /** Programs it needs besides node (nc, socat, ss, ip): skipped with a reason where one is missing. */
  tools?: readonly string[];
  /** Lines that say nothing stable (e.g. a timer that may or may not fire once more) are dropped before comparing. */
  drop?: RegExp;
  /** After masking, a run of identical lines of one actor counts as one (how many chunks a read takes varies). */
  collapse?: boolean;
}

/** What varies in every transcript: assertSnapshot's idea of replacing it by a fixed word, in both texts. */
export const commonMasks: readonly Mask[] = [
  // HOST:PORT for IPv4, [IPv6] and Unix-less hosts: ports are the OS's choice.
  [/\b((?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-f:]+\]|::1|localhost):\d{1,5}\b/g, '$1:PORT'],
  [/\b(port:? )\d{1,5}\b/g, '$1PORT'],
  [/\b(sport = :|dport = :)\d{1,5}/g, '$1PORT'],
  // Clock times and HTTP dates.
  [/\b\d\d:\d\d:\d\d(?:\.\d{1,3})?\b/g, 'HH:MM:SS'],
  [/\b(Date: )\w{3}, \d\d \w{3} \d{4} HH:MM:SS GMT/g, '$1DATE'],
  // Temp paths: mkdtemp suffixes and pids.
  [/\/tmp\/[^\s'":)]+/g, '/tmp/TMP'],
  // The Node version a run happened on.
  [/\bv\d+\.\d+\.\d+\b/g, 'vNODE'],
];

export function mask(text: string, masks: readonly Mask[]): string {
  let out = text;
  for (const [pattern, replacement] of masks) out = out.replace(pattern, replacement);
  return out;
}

export function slugOf(id: string): string {
  const lab = labs.find((l) => l.id === id);
  if (!lab) throw new Error(`no lab '${id}' in labs/index.ts`);
  return lab.slug;
}

export function transcriptFile(t: Transcript): string {
  return path.join(root, 'docs/transcripts', slugOf(t.lab), `${t.name}.txt`);
}

/** `docs/transcripts/01-basic-tcp/demo.txt` as the page imports it: `<<< @/transcripts/01-basic-tcp/demo.txt`. */
export function importLine(t: Transcript): string {
  return `<<< @/transcripts/${slugOf(t.lab)}/${t.name}.txt`;
}

export function refreshCommand(t: Transcript): string {
  return `npm run record ${t.lab}`;
}

// ---------------------------------------------------------------------------------------------------------
// The reference Node: transcripts are recorded on 24 and compared only on 24.

export const referenceMajor = 24;

export function nodeMajor(bin: string): number | undefined {
  const r = spawnSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' });
  const m = /^(\d+)\./.exec(r.stdout ?? '');
  return m ? Number(m[1]) : undefined;
}

/** This Node when it is 24, else $REFERENCE_NODE, else /opt/node/24's; undefined when none is 24. */
export function referenceNode(): { bin: string; version: string } | undefined {
  const candidates = [
    process.execPath,
    process.env.REFERENCE_NODE,
    `/opt/node/${referenceMajor}/package/bin/node`,
  ].filter((c): c is string => !!c && fs.existsSync(c));
  for (const bin of candidates) {
    if (nodeMajor(bin) === referenceMajor) {
      const version = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim();
      return { bin, version };
    }
  }
  return undefined;
}

export function hasTool(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Why this transcript cannot be compared here, or undefined when it can. */
export function skipReason(t: Transcript, env = process.env): string | undefined {
  if (t.host) return `describes the recording machine, not a lab: ${t.host}`;
  if (t.root && process.getuid?.() !== 0) return `needs root: ${t.root}`;
  if (t.slow && env.TRANSCRIPTS_SLOW !== '1') return `slow (${t.slow}): set TRANSCRIPTS_SLOW=1 to compare it`;
  const missing = (t.tools ?? []).filter((tool) => !hasTool(tool));
  if (missing.length) return `needs ${missing.join(', ')}, not installed here`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Running one.

interface Proc {
  name: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<void>;
  done: boolean;
  onLine: Set<() => void>;
}

/** `npm run lab 07 server -- --idle 1000` → node --import tsx labs/07-keepalive.ts server --idle 1000 */
function argv(command: string, node: string): { file: string; args: string[]; shell: boolean } {
  const words = command.replace(/^sudo /, '').trim();
  const m = /^npm run lab (\d\d)(.*)$/.exec(words);
  if (!m) return { file: '/bin/sh', args: ['-c', words], shell: true };
  const rest = (m[2] ?? '').trim();
  const args = shellWords(rest).filter((w) => w !== '--');
  return {
    file: node,
    args: ['--import', 'tsx', path.join('labs', `${slugOf(m[1] as string)}.ts`), ...args],
    shell: false,
  };
}

/** Splits `server -- --send 'π ≈ 3.14'` into words, honouring single and double quotes. */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  for (const m of text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) words.push(m[1] ?? m[2] ?? m[3] ?? '');
  return words;
}

function startProc(name: string, command: string, node: string, extra: string[]): Proc {
  const { file, args } = argv(command, node);
  const child = spawn(file, [...args, ...extra], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true, // its own process group: killing it takes nc or a lab's children along
    // `npm run bench 06` in a shell runs on the reference Node too.
    env: {
      ...process.env,
      PATH: `${path.dirname(node)}:${process.env.PATH}`,
      FORCE_COLOR: '0',
      NO_COLOR: '1',
    },
  });
  const proc: Proc = { name, child, lines: [], exited: Promise.resolve(), done: false, onLine: new Set() };
  // One line buffer for both streams: lines are kept in arrival order, as a terminal shows them.
  let partial = '';
  const feed = (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) proc.lines.push(line.replace(/\r$/, ''));
    for (const f of proc.onLine) f();
  };
  child.stdout?.on('data', feed);
  child.stderr?.on('data', feed);
  child.stdin?.on('error', () => {}); // a process that exits before we type is not our error
  proc.exited = new Promise((resolve) => {
    child.on('close', () => {
      if (partial) proc.lines.push(partial);
      partial = '';
      proc.done = true;
      for (const f of proc.onLine) f();
      resolve();
    });
  });
  return proc;
}

function killGroup(proc: Proc, signal: NodeJS.Signals): void {
  if (proc.done || proc.child.pid === undefined) return;
  try {
    process.kill(-proc.child.pid, signal);
  } catch {
    // already gone
  }
}

function waitFor(proc: Proc, test: () => boolean, what: string, within: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (test()) {
        done();
        resolve();
      } else if (proc.done) {
        done();
        reject(new Error(`${proc.name} exited before ${what}; it printed:\n${proc.lines.join('\n')}`));
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(
        new Error(`${proc.name}: no ${what} within ${within} ms; it printed:\n${proc.lines.join('\n')}`),
      );
    }, within);
    const done = () => {
      clearTimeout(timer);
      proc.onLine.delete(check);
    };
    proc.onLine.add(check);
    check();
  });
}

/** Runs a command until a line of its output matches (ss sees what no process prints). */
async function probe(
  command: string,
  line: RegExp,
  port: number | undefined,
  typed: number | undefined,
  within: number,
) {
  const cmd =
    port !== undefined && typed !== undefined
      ? command.replace(new RegExp(`\\b${typed}\\b`, 'g'), String(port))
      : command;
  const deadline = Date.now() + within;
  for (;;) {
    const r = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', cwd: root });
    if ((r.stdout ?? '').split('\n').some((l) => line.test(l))) return;
    if (Date.now() > deadline)
      throw new Error(`\`${cmd}\` printed no line matching ${line} within ${within} ms:\n${r.stdout}`);
    // Waiting on the kernel's state, which nothing announces: ask again shortly.
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export interface RunOptions {
  node: string;
  /** true: run on the ports the commands type (recording); false: servers on port 0 (checking). */
  asTyped: boolean;
  /** How long any one step may wait. */
  within?: number;
}

/** Runs the transcript and returns the lines the shown command printed. */
export async function runTranscript(t: Transcript, options: RunOptions): Promise<string[]> {
  const within = options.within ?? (t.slow ? 120_000 : 15_000);
  const commands: Record<string, string> = { show: t.show, ...t.with };
  const procs = new Map<string, Proc>();
  const serverName = t.server ?? 'show';
  let realPort: number | undefined;
  let tmpDir: string | undefined;
  const tmp = () => {
    tmpDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'transcript-'));
    return tmpDir;
  };
  // Nothing listens on purpose (a client meeting ECONNREFUSED): a port held for that.
  let held: { port: number; release(): void } | undefined;
  if (t.port !== undefined && serverName === 'none' && !options.asTyped) {
    held = await holdRefusedPort();
    realPort = held.port;
  }
  const get = (name: string) => {
    const p = procs.get(name);
    if (!p) throw new Error(`transcript ${t.lab}/${t.name}: step uses '${name}' before starting it`);
    return p;
  };
  const filled: [string, string][] = [];
  const start = async (name: string) => {
    let command = commands[name];
    if (command === undefined) throw new Error(`transcript ${t.lab}/${t.name}: no command named '${name}'`);
    for (const [placeholder, value] of filled) command = command.split(placeholder).join(value);
    const extra: string[] = [];
    if (!options.asTyped) {
      if (t.rewrite) command = t.rewrite(command, tmp());
      if (t.port !== undefined) {
        const isLab = command.replace(/^sudo /, '').startsWith('npm run lab ');
        const typed = new RegExp(`\\b${t.port}\\b`, 'g');
        if (name === serverName) extra.push('--port', '0');
        else if (realPort !== undefined) {
          if (typed.test(command)) command = command.replace(typed, String(realPort));
          else if (isLab) extra.push('--port', String(realPort));
        }
      }
    }
    const proc = startProc(name, command, options.node, extra);
    procs.set(name, proc);
    if (t.port !== undefined && name === serverName) {
      const listening = /listening on \S+:(\d+)$/;
      await waitFor(proc, () => proc.lines.some((l) => listening.test(l)), "a 'listening on' line", within);
      const line = proc.lines.find((l) => listening.test(l)) as string;
      realPort = Number(listening.exec(line)?.[1]);
    }
  };
  try {
    const steps = t.steps ?? [];
    if (!steps.some((s) => 'start' in s && s.start === 'show')) await start('show');
    for (const step of steps) {
      if ('start' in step) await start(step.start);
      else if ('wait' in step) {
        const p = get(step.wait);
        const count = step.count ?? 1;
        await waitFor(
          p,
          () => p.lines.filter((l) => step.line.test(l)).length >= count,
          `line ${step.line}`,
          within,
        );
        if (step.fills !== undefined) {
          const value = step.line.exec(p.lines.filter((l) => step.line.test(l))[count - 1] as string)?.[1];
          if (value === undefined)
            throw new Error(`transcript ${t.lab}/${t.name}: ${step.line} has no group to fill ${step.fills}`);
          filled.push([step.fills, value]);
        }
      } else if ('type' in step) get(step.type).child.stdin?.write(step.text);
      else if ('eof' in step) get(step.eof).child.stdin?.end();
      else if ('kill' in step) killGroup(get(step.kill), step.signal);
      else if ('probe' in step) await probe(step.probe, step.line, realPort, t.port, within);
      else if ('exit' in step) {
        const p = get(step.exit);
        await waitFor(p, () => p.done, 'exit', within);
      }
    }
    const shown = get('show');
    await waitFor(shown, () => shown.done, 'exit', within);
    return shown.lines;
  } finally {
    for (const p of procs.values()) killGroup(p, 'SIGKILL');
    await Promise.all([...procs.values()].map((p) => p.exited));
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
    held?.release();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The file and the comparison.

export function render(t: Transcript, lines: readonly string[], nodeVersion: string): string {
  const header = [`$ ${t.show}`];
  // A slow run measures the machine too: say how busy it was.
  const load = t.slow ? ` (load ${os.loadavg()[0]?.toFixed(1)} on ${os.cpus().length} cores)` : '';
  if (t.root || t.slow)
    header.push(
      `# recorded on Node ${nodeVersion}${t.root ? ' as root' : ''}${load}${t.slow ? `; slow: ${t.slow}` : ''}`,
    );
  const body = [...lines];
  while (body.length && body[body.length - 1] === '') body.pop();
  return `${[...header, ...body].join('\n')}\n`;
}

/** The file's output lines: everything after the `$ command` line and the `# recorded on …` header. */
export function parseFile(text: string): { command: string; lines: string[] } {
  const all = text.replace(/\n$/, '').split('\n');
  const command = (all[0] ?? '').replace(/^\$ /, '');
  let i = 1;
  while (i < all.length && (all[i] as string).startsWith('# recorded on ')) i++;
  return { command, lines: all.slice(i) };
}

function actorOf(line: string): string {
  return /^\[([^\]]+)\]/.exec(line)?.[1] ?? '';
}

/**
 * Undefined when the fresh lines match the recorded ones after masking; otherwise what differs first,
 * as a few lines a reader can act on.
 */
export function compare(
  t: Transcript,
  recorded: readonly string[],
  fresh: readonly string[],
): string | undefined {
  const masks = [...commonMasks, ...(t.masks ?? [])];
  const prep = (lines: readonly string[]) => lines.map((l) => mask(l, masks)).filter((l) => !t.drop?.test(l));
  const collapse = (lines: string[]) =>
    t.collapse ? lines.filter((l, i) => i === 0 || lines[i - 1] !== l) : lines;
  const want = prep(recorded);
  const got = prep(fresh);
  const order = t.order ?? 'actor';
  if (order === 'any') {
    const count = (lines: string[]) => {
      const m = new Map<string, number>();
      for (const l of lines) m.set(l, (m.get(l) ?? 0) + 1);
      return m;
    };
    const w = count(want);
    const g = count(got);
    const missing = [...w].filter(([l, n]) => (g.get(l) ?? 0) < n).map(([l]) => `  - ${l}`);
    const extra = [...g].filter(([l, n]) => (w.get(l) ?? 0) < n).map(([l]) => `  + ${l}`);
    return missing.length || extra.length ? [...missing, ...extra].slice(0, 8).join('\n') : undefined;
  }
  const groups = (lines: string[]) => {
    const m = new Map<string, string[]>();
    for (const l of lines) {
      const key = order === 'exact' ? '' : actorOf(l);
      m.set(key, [...(m.get(key) ?? []), l]);
    }
    return m;
  };
  const w = groups(want);
  const g = groups(got);
  for (const m of [w, g]) for (const [k, v] of m) m.set(k, collapse(v));
  for (const key of new Set([...w.keys(), ...g.keys()])) {
    const a = w.get(key) ?? [];
    const b = g.get(key) ?? [];
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (a[i] !== b[i]) {
        const who = key ? `[${key}]'s line ${i + 1}` : `line ${i + 1}`;
        return [
          `${who} differs:`,
          `  recorded: ${a[i] ?? '(nothing: the fresh run printed more)'}`,
          `  now:      ${b[i] ?? '(nothing: the fresh run printed less)'}`,
        ].join('\n');
      }
    }
  }
  return undefined;
}
