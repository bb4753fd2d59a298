// Runs the tests of some labs against the labs in `labDir` (LAB_DIR) in a vitest child process, and reports
// each test as it finishes. The grader and the exercise proof both stand on this.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../labs/index.ts';
import type { GradeEvent } from './vitest-reporter.ts';

export interface TestResult {
  name: string;
  state: GradeEvent['state'];
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
  onResult?: (lab: Lab, result: TestResult) => void;
}

export interface RunOutcome {
  results: Map<string, TestResult[]>;
  /** vitest's exit code; results say more, but a crash of vitest itself shows here. */
  exitCode: number | null;
  /** Lines vitest printed that were not results: shown when something went wrong outside the tests. */
  otherOutput: string[];
}

// Found from this file, so a fixture workbook without node_modules of its own can be graded too.
const vitestCli = path.join(
  path.dirname(createRequire(import.meta.url).resolve('vitest/package.json')),
  'vitest.mjs',
);
const reporter = fileURLToPath(new URL('./vitest-reporter.ts', import.meta.url));

export function testFile(lab: Lab): string {
  return `test/${lab.slug}.test.ts`;
}

export function runLabTests(options: RunOptions): Promise<RunOutcome> {
  const { root, labs } = options;
  const bySlug = new Map(labs.map((l) => [path.resolve(root, testFile(l)), l]));
  const results = new Map<string, TestResult[]>(labs.map((l) => [l.slug, []]));
  const otherOutput: string[] = [];
  const args = [vitestCli, 'run', ...labs.map(testFile), `--reporter=${reporter}`, '--color=false'];
  if (options.timeoutMs)
    args.push(`--testTimeout=${options.timeoutMs}`, `--hookTimeout=${options.timeoutMs}`);
  if (options.bail) args.push('--bail=1');
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, LAB_DIR: path.resolve(root, options.labDir), NO_COLOR: '1', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const onLine = (line: string) => {
    if (!line.startsWith('@@grade ')) {
      if (line.trim()) otherOutput.push(line);
      return;
    }
    const event = JSON.parse(line.slice(8)) as GradeEvent;
    const lab = bySlug.get(path.resolve(event.file));
    if (!lab) return;
    const result: TestResult = {
      name: event.name,
      state: event.state,
      error: event.error,
      log: event.log,
      durationMs: event.durationMs,
    };
    results.get(lab.slug)?.push(result);
    options.onResult?.(lab, result);
  };
  readline.createInterface({ input: child.stdout }).on('line', onLine);
  readline.createInterface({ input: child.stderr }).on('line', (l) => l.trim() && otherOutput.push(l));
  // Ctrl-C on the grader stops the tests too; their own cleanup kills the labs they started.
  const stop = () => child.kill('SIGTERM');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return new Promise((resolve) => {
    child.on('close', (exitCode) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve({ results, exitCode, otherOutput });
    });
  });
}
