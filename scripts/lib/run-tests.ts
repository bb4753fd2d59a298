// Runs the tests of some labs against the labs in `labDir` (LAB_DIR) in a vitest child process, and reports
// each test as it finishes. The grader and the exercise proof both stand on this.
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../labs/index.ts';
import { compileCacheEnv } from './compile-cache.ts';
import { type Confinement, confine } from './tree.ts';
import type { GradeEvent } from './vitest-reporter.ts';

export interface TestResult {
  name: string;
  state: 'passed' | 'failed' | 'skipped' | 'pending';
  error?: string;
  log?: string;
  durationMs?: number;
}

export interface RunOptions {
  root: string;
  /** The folder holding the lab files under test (absolute, or relative to root). */
  labDir: string;
  labs: readonly Lab[];
  /** Per-test timeout in ms (vitest's testTimeout); the config's 10 s when not given. */
  timeoutMs?: number;
  /** Stop at the first failing test (the exercise proof only needs to know that one fails). */
  bail?: boolean;
  /** Run only the tests with these names (the rest are skipped, and their missing results are no problem). */
  only?: readonly string[];
  onResult?: (lab: Lab, result: TestResult) => void;
  /** Extra environment for vitest and everything it starts (the tooling's own tests set fixture faults). */
  env?: Record<string, string>;
}

export interface RunOutcome {
  results: Map<string, TestResult[]>;
  /** How many tests each lab's test file has (from its collection, before any ran); missing: never collected. */
  expected: Map<string, number>;
  /**
   * Per lab, why its results are not the whole story (a test file that did not load, results missing, an error
   * outside the tests, the run stopped). Empty for every lab: the results are complete and can be scored.
   */
  problems: Map<string, string[]>;
  /** vitest's exit code (null when a signal ended it). */
  exitCode: number | null;
  /** The signal that stopped the grader itself mid-run, if one did. */
  stoppedBy?: NodeJS.Signals;
  /** Processes still running when vitest had exited (all killed): a lab's children that outlived their test. */
  leftovers: number;
  /** Lines vitest printed that were not results: shown when something went wrong outside the tests. */
  otherOutput: string[];
}

// Found from this file, so a fixture workbook without node_modules of its own can be graded too.
const vitestCli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('vitest/package.json')),
  'vitest.mjs',
);
const reporter = fileURLToPath(new URL('./vitest-reporter.ts', import.meta.url));
const spareScript = fileURLToPath(new URL('./vitest-spare.mjs', import.meta.url));

/** vitest's -t pattern for exactly these test names (it matches the full name: the describes, then the test's). */
export function namePattern(names: readonly string[]): string {
  const literal = (n: string) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return `(?:^| )(?:${names.map(literal).join('|')})$`;
}

export function testFile(lab: Lab): string {
  return `test/${lab.slug}.test.ts`;
}

const stopSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** A vitest run started (or made ready) in a confinement of its own; it runs once `go()` is called. */
export interface PreparedRun {
  child: ChildProcess;
  jail: Confinement;
  go(): void;
  /** Ends a run that will not be used (a spare at exit): its whole tree, its cgroup. */
  dispose(): Promise<void>;
}

/**
 * Starts vitest for these labs, confined. `spare`: vitest and the config are loaded now and the tests wait for
 * `go()` (grade --watch keeps one ready, so a save skips vitest's start-up); otherwise the run starts at once.
 */
export function prepareRun(options: RunOptions, spare = false): PreparedRun {
  const { root, labs } = options;
  const files = labs.map(testFile);
  let args: string[];
  if (spare) {
    const config = {
      reporters: [reporter],
      color: false,
      ...(options.timeoutMs && { testTimeout: options.timeoutMs, hookTimeout: options.timeoutMs }),
    };
    args = [spareScript, JSON.stringify(config), ...files];
  } else {
    args = [vitestCli, 'run', ...files, `--reporter=${reporter}`, '--color=false'];
    if (options.only?.length) args.push(`--testNamePattern=${namePattern(options.only)}`);
    if (options.timeoutMs)
      args.push(`--testTimeout=${options.timeoutMs}`, `--hookTimeout=${options.timeoutMs}`);
    // No --bail: with concurrent tests vitest's bail interrupts the run before the failure it saw is reported
    // (a run-end 'interrupted' and no result at all); the first failure stops the run here instead.
  }
  const jail = confine();
  const command = jail.command(process.execPath, args);
  const child = spawn(command.file, command.args, {
    cwd: root,
    env: {
      ...compileCacheEnv(),
      ...process.env,
      ...options.env,
      ...jail.env,
      LAB_DIR: path.resolve(root, options.labDir),
      NO_COLOR: '1',
      FORCE_COLOR: '0',
    },
    stdio: [spare ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    // Its own process group: Ctrl-C in a terminal reaches the grader only, which then ends the whole tree.
    detached: true,
  });
  child.stdin?.on('error', () => {}); // a spare that died already is seen when it closes
  jail.adopt(child.pid);
  return {
    child,
    jail,
    go: () => child.stdin?.write('go\n'),
    async dispose() {
      child.stdin?.end();
      await jail.end();
    },
  };
}

export function runLabTests(options: RunOptions, prepared?: PreparedRun): Promise<RunOutcome> {
  const { root, labs } = options;
  const bySlug = new Map(labs.map((l) => [path.resolve(root, testFile(l)), l]));
  const labOf = (file: string | undefined) => (file ? bySlug.get(path.resolve(root, file)) : undefined);
  const results = new Map<string, TestResult[]>(labs.map((l) => [l.slug, []]));
  const expected = new Map<string, number>();
  const problems = new Map<string, string[]>(labs.map((l) => [l.slug, []]));
  const runProblems: string[] = [];
  const otherOutput: string[] = [];
  let ended: Extract<GradeEvent, { kind: 'run-end' }> | undefined;
  let stoppedBy: NodeJS.Signals | undefined;
  // With bail: the first failure was seen and the run stopped on purpose (what it did not finish is no error).
  let bailed = false;

  const { child, jail, go } = prepared ?? prepareRun(options);
  go();
  const onLine = (line: string) => {
    if (!line.startsWith('@@grade ')) {
      if (line.trim()) otherOutput.push(line);
      return;
    }
    const event = JSON.parse(line.slice(8)) as GradeEvent;
    if (event.kind === 'run-end') {
      ended = event;
      for (const error of event.errors) {
        const lab = labOf(error.file);
        const text = `an error outside the tests: ${error.message.split('\n')[0]}`;
        if (lab) problems.get(lab.slug)?.push(text);
        else runProblems.push(text);
      }
      return;
    }
    const lab = labOf(event.file);
    if (!lab) return;
    if (event.kind === 'collected') {
      expected.set(lab.slug, event.tests);
      return;
    }
    if (event.kind === 'module-error') {
      problems.get(lab.slug)?.push(`its test file failed to load: ${event.error?.split('\n')[0] ?? '?'}`);
      return;
    }
    // Once the grader is stopped, a result still coming is the stop's doing (a test cut off), not the lab's.
    if (stoppedBy) return;
    const result: TestResult = {
      name: event.name,
      state: event.state,
      error: event.error,
      log: event.log,
      durationMs: event.durationMs,
    };
    results.get(lab.slug)?.push(result);
    options.onResult?.(lab, result);
    if (options.bail && result.state === 'failed' && !bailed) {
      bailed = true;
      void jail.end();
    }
  };
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', onLine);
  readline
    .createInterface({ input: child.stderr as NodeJS.ReadableStream })
    .on('line', (l) => l.trim() && otherOutput.push(l));
  // A signal to the grader stops the run at once, the whole tree with it; the outcome says it was stopped.
  const stop = (signal: NodeJS.Signals) => {
    stoppedBy ??= signal;
    void jail.end();
  };
  for (const s of stopSignals) process.on(s, stop);
  // Once vitest has exited, whatever is left is killed at once: a leftover that holds vitest's stdout would
  // otherwise keep the pipe (and this run) open forever.
  let ending: Promise<number> | undefined;
  child.on('exit', () => {
    ending = jail.end();
  });
  return new Promise((resolve) => {
    child.on('close', async (exitCode, signal) => {
      for (const s of stopSignals) process.off(s, stop);
      const leftovers = await (ending ?? jail.end());
      if (stoppedBy) runProblems.unshift(`the grader was stopped by ${stoppedBy} before the tests finished`);
      else if (!ended && !bailed)
        runProblems.push(
          `vitest ended without finishing the run (${signal ? `killed by ${signal}` : `exit code ${exitCode}`})`,
        );
      for (const lab of labs) {
        const own = problems.get(lab.slug) as string[];
        const want = expected.get(lab.slug);
        const got = results.get(lab.slug)?.length ?? 0;
        if (want === undefined && own.length === 0) own.push('its test file was never collected');
        else if (want !== undefined && got < want && !options.bail && !options.only)
          own.push(`only ${got} of its ${want} tests reported a result`);
      }
      const troubled = labs.filter((l) => problems.get(l.slug)?.length);
      const allPassed = [...results.values()].flat().every((r) => r.state !== 'failed');
      if (exitCode !== 0 && !stoppedBy && ended && allPassed && troubled.length === 0 && !options.bail)
        runProblems.push(
          `vitest exited with code ${exitCode ?? signal} although every result it sent passed`,
        );
      // A problem no file claims belongs to the labs already in trouble (a dead worker leaves its file short of
      // results), or to every lab when none is.
      for (const text of runProblems)
        for (const lab of troubled.length && !stoppedBy ? troubled : labs) problems.get(lab.slug)?.push(text);
      // Being stopped explains the rest (the missing results): it comes first.
      if (stoppedBy)
        for (const own of problems.values())
          own.sort((a, b) => Number(b === runProblems[0]) - Number(a === runProblems[0]));
      resolve({ results, expected, problems, exitCode, stoppedBy, leftovers, otherOutput });
    });
  });
}
