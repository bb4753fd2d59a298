// Start a lab as its own process and talk to it the way a reader would: read its lines, type into it, stop it.
// Tests wait for lines, never for time: the test timeout is the only timer.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, onTestFailed, onTestFinished } from 'vitest';
import { type Lab, labs } from '../../labs/index.ts';
import { feedLines, LineWatcher } from './watch.ts';

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
  /** Every line printed so far, stdout and stderr interleaved in arrival order. */
  readonly lines: string[];
  readonly stdout: string[];
  readonly stderr: string[];
  /** Everything printed so far, as one text. */
  output(): string;
  /** Resolves with the first line (ever printed) that matches; rejects with the whole output if the lab exits first. */
  waitForLine(pattern: RegExp): Promise<RegExpMatchArray>;
  /** Resolves once `count` lines match (in the order printed). */
  waitForLines(pattern: RegExp, count: number): Promise<RegExpMatchArray[]>;
  /** The `listening on HOST:PORT` line: the real host and port of a server started with `--port 0`. */
  listening(): Promise<{ host: string; port: number }>;
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

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Extra node flags, put before the file. */
  nodeArgs?: string[];
}

/** Starts `node --import tsx --throw-deprecation <LAB_DIR>/<slug>.ts ...args`. */
export function spawnLab(id: string, args: string[] = [], options: SpawnOptions = {}): LabProcess {
  return spawnFile(labFile(id), args, options, `lab ${id}`);
}

/** Starts any TypeScript file the way spawnLab starts a lab. */
export function spawnFile(
  file: string,
  args: string[] = [],
  options: SpawnOptions = {},
  name = path.basename(file),
): LabProcess {
  const child = execa(
    process.execPath,
    ['--import', 'tsx', '--throw-deprecation', ...(options.nodeArgs ?? []), file, ...args],
    {
      cwd: root,
      env: { FORCE_COLOR: '0', NO_COLOR: '1', ...options.env },
      reject: false,
      buffer: false,
      stdin: 'pipe',
      // Its own process group, so cleanup can kill whatever the lab itself started.
      detached: true,
    },
  );
  child.stdin?.on('error', () => {}); // writing to a lab that already exited is not the test's failure
  const watcher = new LineWatcher(name);
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
    lines: watcher.lines,
    stdout,
    stderr,
    output: () => watcher.text(),
    waitForLine: (pattern) => watcher.waitForLine(pattern),
    waitForLines: (pattern, count) => watcher.waitForLines(pattern, count),
    async listening() {
      const m = await watcher.waitForLine(/listening on (\S+):(\d+)/);
      return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port: Number(m[2]) };
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
  try {
    onTestFailed(() => {
      if (!done) console.error(watcher.describe('was still running when the test failed'));
    });
    onTestFinished(killGroup);
  } catch {
    // Called outside a test (in beforeAll): the afterAll above cleans up.
  }
  return lab;
}
