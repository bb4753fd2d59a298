// Start a lab as its own process and talk to it the way a reader would: read its lines, type into it, stop it.
// Tests wait for lines, never for time; a wait fails fast (the lab exits, a later line comes first, or the
// deadline the test derived from its own timers passes), and the test timeout is only the last resort.
//
//   it('greets', async (t) => {
//     const lab = spawnLab(t, '01', ['server', '--port', '0']);   // t: this test's context, for its cleanup
//     await lab.waitForLine(/^hello$/, { within: 2000, failOn: /closed/ });
//   });
//
// The test's context comes first, because tests in a file run concurrently: cleanup (kill the lab) and the
// lab's output on failure are tied to the test that started it, with the context's own onTestFinished and
// onTestFailed (vitest's global hooks only know "the current test", which concurrent tests share). The old
// call without a context, spawnLab(id, args), still works in tests that run one at a time.
import fs from 'node:fs';
import nodeModule from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, onTestFailed, onTestFinished, type TestContext } from 'vitest';
import { type Lab, labs } from '../../labs/index.ts';
import { feedLines, LineWatcher, StartGate, type WaitOptions } from './watch.ts';

export type { WaitOptions } from './watch.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Where the labs under test live: `labs` (the reference) or, for grading, `exercises`. */
export function labDir(): string {
  return path.resolve(root, process.env.LAB_DIR ?? 'labs');
}

export function findLab(id: string): Lab {
  const lab = labs.find((l) => l.id === id);
  if (!lab) throw new Error(`no lab '${id}' in labs/index.ts`);
  return lab;
}

export function labFile(id: string): string {
  return path.join(labDir(), `${findLab(id).slug}.ts`);
}

export interface Exit {
  exitCode: number | undefined;
  signal: string | undefined;
}

export interface LabProcess {
  readonly pid: number | undefined;
  /** The node arguments it was started with: `--import tsx` or not (plain node), the flags, the file. */
  readonly command: readonly string[];
  /** Every line printed so far, stdout and stderr interleaved in arrival order. */
  readonly lines: string[];
  readonly stdout: string[];
  readonly stderr: string[];
  /** Everything printed so far, as one text. */
  output(): string;
  /**
   * Resolves with the first line (ever printed) that matches; rejects with the whole output if the lab exits
   * first, if a line matching `failOn` comes first, or after `within` ms.
   */
  waitForLine(pattern: RegExp, options?: WaitOptions): Promise<RegExpMatchArray>;
  /** Resolves once `count` lines match (in the order printed); fails like waitForLine. */
  waitForLines(pattern: RegExp, count: number, options?: WaitOptions): Promise<RegExpMatchArray[]>;
  /** Resolves when the text printed so far matches (a prompt with no newline); fails on exit or `within`. */
  waitForText(pattern: RegExp, options?: WaitOptions): Promise<RegExpMatchArray>;
  /** The `listening on HOST:PORT` line: the real host and port of a server started with `--port 0`. */
  listening(options?: WaitOptions): Promise<{ host: string; port: number }>;
  /** Resolves when the process has exited; with `within` or `quiet`, rejects with the output if it is still running then. */
  waitForExit(options?: Pick<WaitOptions, 'within' | 'quiet' | 'failOn'>): Promise<Exit>;
  /** Lines printed so far that match. */
  matching(pattern: RegExp): RegExpMatchArray[];
  write(text: string): void;
  /** Closes the lab's stdin (like Ctrl-D). */
  endInput(): void;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** Sends a signal (SIGTERM by default) to the lab and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
  /** Kills the lab and everything it started, at once. Cleanup calls it; tests rarely need to. */
  kill(): void;
}

const running = new Set<LabProcess>();
afterAll(() => {
  for (const lab of running) lab.kill();
});

export interface SpawnOptions extends WaitOptions {
  env?: Record<string, string>;
  /** Extra node flags, put before the file. */
  nodeArgs?: string[];
  // `within`, `quiet`, `stalled` and `failOn` given here apply to every wait on this process that sets none.
}

/** When this copy of the helpers was loaded: after this file's setup (test/helpers/fresh-modules.ts), never before. */
export const loadedAt = performance.now();

/**
 * How much slower than an idle machine this one is as the file starts: the 1-minute load per core, from 1 to 4
 * (a 2-core box that other jobs share runs everything several times slower; deadlines stretch with it).
 */
export const busy = Math.min(4, Math.max(1, os.loadavg()[0] / os.availableParallelism()));

/**
 * `busy` as it is now, for a bound measured late in a file: the 1-minute load per core read now, or the CPU
 * pressure of the last 10 s (Linux PSI: the share of time some task waited for a CPU; 75 % waiting is 4 times
 * slower), whichever says busier, from 1 to 4. The 1-minute average lags: a file that starts as the suite starts
 * reads an idle machine from it, while the suite's workers already load both cores.
 */
export function busyNow(): number {
  let pressure = 1;
  try {
    const some = /some avg10=([\d.]+)/.exec(fs.readFileSync('/proc/pressure/cpu', 'utf8'));
    if (some) pressure = 1 / Math.max(0.25, 1 - Number(some[1]) / 100);
  } catch {
    // No PSI here (not Linux, or a kernel without it): the load average alone.
  }
  return Math.min(4, Math.max(1, os.loadavg()[0] / os.availableParallelism(), pressure));
}

/**
 * How long a lab that is up may take to answer something local (a line typed, a client's bytes, a signal): it
 * takes milliseconds; 1 s (times `busy`) is twenty times that on a loaded 2-core machine, and it is what an
 * untouched starter costs over the reference (its missing reply is only seen as silence), so it stays short.
 */
export const REPLY_MS = Math.round(1000 * busy);

/**
 * How long a quiet wait lets nothing happen before it looks for the evidence that nothing will (`stalled` in
 * watch.ts: every process of the test waits for input, with nothing due). Not stretched with the load: a busy
 * machine shows up as processes that run or wait to run, and then the wait goes on to its `quiet` deadline.
 */
export const STALL_MS = 100;

/** The longest a process may take to print its first line before deadlines count anyway (3 s times `busy`). */
export const STARTUP_MS = Math.round(3000 * busy);

let waitDefaults: WaitOptions = {};

const gates = new WeakMap<object, StartGate>();
/** The start gate of test `t` (one per test: every process and socket it opens shares it), or a fresh one. */
export function gateOf(t: TestHooks | undefined): StartGate {
  if (!t) return new StartGate();
  const gate = gates.get(t) ?? new StartGate();
  gates.set(t, gate);
  return gate;
}

/**
 * Deadlines for every wait in this test file that sets none of its own (each test file is a module of its own):
 * `setWaitDefaults({ within: REPLY_MS })` at the top of a lab's tests makes an untouched starter fail in seconds.
 */
export function setWaitDefaults(options: WaitOptions): void {
  waitDefaults = { ...options };
}

export function getWaitDefaults(): WaitOptions {
  return waitDefaults;
}

/** Drops the keys whose value is undefined, so they do not override a default when spread. */
export function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** What a test's context gives the harness: its own cleanup and failure hooks (vitest's TestContext). */
export type TestHooks = Pick<TestContext, 'onTestFinished' | 'onTestFailed'>;

/**
 * The context for a process that a describe's tests share (started in beforeAll): no test's end stops it (the old
 * call without a context would give it to whichever test vitest counts as current, and in a concurrent file that
 * is any of them); the afterAll above kills it when the file is done.
 */
export const noTest: TestHooks = { onTestFinished: () => {}, onTestFailed: () => {} };

export function isContext(value: unknown): value is TestHooks {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as TestHooks).onTestFinished === 'function' &&
    typeof (value as TestHooks).onTestFailed === 'function'
  );
}

/**
 * The hooks of the test `t`, or without a context (the old calls, in tests that run one at a time) vitest's
 * global hooks; outside a test (in beforeAll) there are none and the afterAll above cleans up.
 */
export function hooksOf(t: TestHooks | undefined): TestHooks {
  if (t) return t;
  return {
    onTestFinished: (fn) => onTestFinished(fn),
    onTestFailed: (fn) => onTestFailed(fn),
  };
}

/**
 * Type stripping runs a `.ts` file with plain node (Node ≥ 22.18, and 23.6 on): no loader thread, no esbuild, about
 * 0.05 CPU-s less per process with the compile cache (0.12 instead of 0.18 on Node 24). The workbook's own files
 * (labs/ and test/) always, which a test proves erasable; a student's file (LAB_DIR anywhere else, exercises/
 * by default) only when plain node runs it as tsx would (`sameUnderPlainNode`), else with tsx, the way a lab
 * runs for a reader. LAB_RUNNER=tsx forces tsx for everything (to compare).
 */
export const plainNode =
  process.env.LAB_RUNNER !== 'tsx' &&
  (process.features as { typescript?: string | false }).typescript === 'strip';

function runsPlain(file: string): boolean {
  if (!plainNode) return false;
  const rel = path.relative(root, path.resolve(file));
  if (/^(labs|test)[/\\]/.test(rel) && !rel.startsWith(`test${path.sep}fixtures${path.sep}workbook`))
    return true;
  return sameUnderPlainNode(path.resolve(file));
}

const strip = (nodeModule as { stripTypeScriptTypes?: (code: string) => string }).stripTypeScriptTypes;
/** Per file (by its mtime): its relative imports if plain node strips it (undefined: it does not). */
const scanned = new Map<string, { mtimeMs: number; imports: string[] | undefined }>();

/** The relative imports of `file` (absolute), or undefined when Node's type stripping refuses it. */
function importsOf(file: string): string[] | undefined {
  const { mtimeMs } = fs.statSync(file);
  const known = scanned.get(file);
  if (known?.mtimeMs === mtimeMs) return known.imports;
  let code = fs.readFileSync(file, 'utf8');
  let imports: string[] | undefined;
  try {
    if (/\.[mc]?ts$/.test(file)) {
      // Its one ExperimentalWarning would go to this worker's stderr, which the grader shows.
      const emit = process.emitWarning;
      process.emitWarning = () => {};
      try {
        code = (strip as (code: string) => string)(code);
      } finally {
        process.emitWarning = emit;
      }
    }
    const specifiers = code.matchAll(
      /\b(?:from|import)\s*\(?\s*(['"])(\.{1,2}\/[^'"]*)\1|\bimport\s*\(\s*(?!['"])/g,
    );
    imports = [];
    for (const m of specifiers) {
      if (m[2] === undefined) throw new Error('an import() of a computed path'); // cannot follow it: tsx
      imports.push(path.resolve(path.dirname(file), m[2]));
    }
  } catch {
    imports = undefined; // not erasable (an enum, a namespace, …): tsx
  }
  scanned.set(file, { mtimeMs, imports });
  return imports;
}

/**
 * Plain node runs `entry` as tsx would: it and every file it imports by a relative path, all the way down, exist
 * under exactly the name imported, as .ts, .mts, .js or .mjs, and Node's own type stripping takes each .ts one
 * (module.stripTypeScriptTypes). An enum, an import without its extension or `./x.js` for x.ts: tsx, which
 * runs those.
 */
export function sameUnderPlainNode(entry: string): boolean {
  if (!strip) return false;
  const seen = new Set<string>();
  const visit = (file: string): boolean => {
    if (seen.has(file)) return true;
    seen.add(file);
    if (!/\.(?:m?ts|m?js)$/.test(file) || !fs.existsSync(file) || !fs.statSync(file).isFile()) return false;
    const imports = importsOf(file);
    return imports?.every(visit) === true;
  };
  try {
    return visit(entry);
  } catch {
    return false;
  }
}

/** Starts `node --import tsx --throw-deprecation <LAB_DIR>/<slug>.ts ...args` (plain node where it can: above). */
export function spawnLab(t: TestHooks, id: string, args?: string[], options?: SpawnOptions): LabProcess;
/** The old call, without the test's context: only for tests that run one at a time. */
export function spawnLab(id: string, args?: string[], options?: SpawnOptions): LabProcess;
export function spawnLab(...all: unknown[]): LabProcess {
  const t = isContext(all[0]) ? (all.shift() as TestHooks) : undefined;
  const [id, args, options] = all as [string, string[] | undefined, SpawnOptions | undefined];
  return start(t, labFile(id), args, options, `lab ${id}`);
}

/** Starts any TypeScript file the way spawnLab starts a lab. */
export function spawnFile(
  t: TestHooks,
  file: string,
  args?: string[],
  options?: SpawnOptions,
  name?: string,
): LabProcess;
/** The old call, without the test's context: only for tests that run one at a time. */
export function spawnFile(file: string, args?: string[], options?: SpawnOptions, name?: string): LabProcess;
export function spawnFile(...all: unknown[]): LabProcess {
  const t = isContext(all[0]) ? (all.shift() as TestHooks) : undefined;
  const [file, args, options, name] = all as [string, string[]?, SpawnOptions?, string?];
  return start(t, file, args, options, name);
}

function start(
  t: TestHooks | undefined,
  file: string,
  args: string[] = [],
  options: SpawnOptions = {},
  name = path.basename(file),
): LabProcess {
  const loader = runsPlain(file) ? [] : ['--import', 'tsx'];
  const command = [...loader, '--throw-deprecation', ...(options.nodeArgs ?? []), file, ...args];
  const child = execa(process.execPath, command, {
    cwd: root,
    env: { FORCE_COLOR: '0', NO_COLOR: '1', ...options.env },
    reject: false,
    buffer: false,
    stdin: 'pipe',
    // Its own process group, so cleanup can kill whatever the lab itself started.
    detached: true,
  });
  child.stdin?.on('error', () => {}); // writing to a lab that already exited is not the test's failure
  const watcher = new LineWatcher(
    name,
    {
      ...waitDefaults,
      ...definedOnly({
        within: options.within,
        quiet: options.quiet,
        failOn: options.failOn,
        stalled: options.stalled,
      }),
    },
    gateOf(t),
    true,
    STARTUP_MS,
  );
  const stdout: string[] = [];
  const stderr: string[] = [];
  if (child.stdout) feedLines(child.stdout, watcher, stdout);
  if (child.stderr) feedLines(child.stderr, watcher, stderr);
  let done: Exit | undefined;

  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // The whole group is already gone.
    }
  };

  const exited: Promise<Exit> = child.then((r) => {
    done = { exitCode: r.exitCode, signal: r.signal };
    running.delete(lab);
    watcher.close(done.signal ? `was killed by ${done.signal}` : `exited with code ${done.exitCode}`);
    return done;
  });

  const lab: LabProcess = {
    pid: child.pid,
    command,
    lines: watcher.lines,
    stdout,
    stderr,
    output: () => watcher.text(),
    waitForLine: (pattern, o) => watcher.waitForLine(pattern, o),
    waitForLines: (pattern, count, o) => watcher.waitForLines(pattern, count, o),
    waitForText: (pattern, o) => watcher.waitForText(pattern, o),
    async listening(o) {
      const m = await watcher.waitForLine(/listening on (\S+):(\d+)/, o);
      return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
    },
    waitForExit(o = {}) {
      if (done) return exited;
      // The file's failOn default is about the line it guards, not about an exit: only an explicit one counts.
      const { failOn, ...rest } = o;
      const effective = { ...watcher.defaults, ...rest, failOn: undefined };
      return new Promise<Exit>((resolve, reject) => {
        const cancel = watcher.guard(effective, 'was still running', (why) =>
          reject(new Error(watcher.describe(why))),
        );
        // A line that says the run went wrong ends the wait at once (the exit would only come later).
        const check = () => {
          const [line] = failOn ? watcher.matching(failOn) : [];
          if (!line) return;
          watcher.onOutput.delete(check);
          cancel();
          reject(new Error(watcher.describe(`printed '${line.input}' (matching ${failOn}) before exiting`)));
        };
        if (failOn) watcher.onOutput.add(check);
        check();
        exited.then((e) => {
          watcher.onOutput.delete(check);
          cancel();
          resolve(e);
        });
      });
    },
    matching: (pattern) => watcher.matching(pattern),
    write(text) {
      child.stdin?.write(text);
    },
    endInput() {
      child.stdin?.end();
    },
    exited,
    async stop(signal = 'SIGTERM') {
      if (!done) child.kill(signal);
      return exited;
    },
    kill: killGroup,
  };
  running.add(lab);
  // Inside a test: kill the lab when the test ends, and show its output if the test failed (a timeout too).
  // A wait that failed already carries the output; this is for an assertion that failed with the lab running.
  try {
    const hooks = hooksOf(t);
    hooks.onTestFailed((ctx) => {
      if (done) return;
      const text = watcher.describe('was still running when the test failed');
      // With a context the output goes into the test's own error: console output in a concurrent test is
      // credited to whichever test vitest thinks is current (measured: the other one), the error is not.
      const error = t ? ctx.task.result?.errors?.[0] : undefined;
      if (error) error.message += `\n${text}`;
      else console.error(text);
    });
    hooks.onTestFinished(killGroup);
  } catch {
    // Called outside a test (in beforeAll): the afterAll above cleans up.
  }
  return lab;
}
