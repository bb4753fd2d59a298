// A vitest reporter for the grader: one line per event, `@@grade {json}`, so the grader can show progress as it
// happens and keep exact results. Besides each test's result it says how many tests each file HAS (when the
// file is collected, before any runs) and how the run ended (with vitest's unhandled errors, a dead worker
// among them): a grade is computed against what should have arrived, not against what did.
// Everything else vitest prints is ignored by the grader.
import type { Reporter, TestCase, TestModule } from 'vitest/node';

type UserConsoleLog = Parameters<NonNullable<Reporter['onUserConsoleLog']>>[0];
type RunEnd = Parameters<NonNullable<Reporter['onTestRunEnd']>>;

export type GradeEvent =
  | {
      kind: 'test' | 'module-error';
      file: string;
      name: string;
      state: 'passed' | 'failed' | 'skipped' | 'pending';
      error?: string;
      /** What the test printed to stderr: the harness prints a lab's output there when a test fails or times out. */
      log?: string;
      durationMs?: number;
    }
  | { kind: 'collected'; file: string; tests: number }
  | { kind: 'run-end'; reason: string; errors: { message: string; file?: string }[] };

function emit(event: GradeEvent): void {
  process.stdout.write(`@@grade ${JSON.stringify(event)}\n`);
}

export default class GradeReporter implements Reporter {
  private readonly logs = new Map<string, string>();

  onTestModuleCollected(module: TestModule): void {
    emit({ kind: 'collected', file: module.moduleId, tests: [...module.children.allTests()].length });
  }

  onUserConsoleLog(log: UserConsoleLog): void {
    if (log.type !== 'stderr' || !log.taskId) return;
    this.logs.set(log.taskId, (this.logs.get(log.taskId) ?? '') + log.content);
  }

  onTestCaseResult(test: TestCase): void {
    const result = test.result();
    // A beforeAll that throws leaves its suite's tests 'skipped': they did not pass, so they count as failed,
    // with the hook's error (a starter whose demo never starts fails here, and the exercise proof sees it).
    const hook = result.state === 'skipped' ? hookError(test) : undefined;
    const state = hook ? 'failed' : result.state;
    emit({
      log: state === 'failed' ? this.logs.get(test.id) : undefined,
      kind: 'test',
      file: test.module.moduleId,
      name: test.name,
      state,
      error: hook ?? result.errors?.[0]?.message,
      durationMs: test.diagnostic()?.duration,
    });
  }

  onTestModuleEnd(module: TestModule): void {
    // A test file that cannot even load (a broken import, a throw at the top) has no test results.
    for (const error of module.errors()) {
      emit({
        kind: 'module-error',
        file: module.moduleId,
        name: '(the test file)',
        state: 'failed',
        error: error.message,
      });
    }
  }

  onTestRunEnd(_modules: RunEnd[0], errors: RunEnd[1], reason: RunEnd[2]): void {
    emit({
      kind: 'run-end',
      reason,
      errors: errors.map((e) => ({
        message: String(e.message ?? e),
        file: typeof e.VITEST_TEST_PATH === 'string' ? e.VITEST_TEST_PATH : undefined,
      })),
    });
  }
}

/** The error of a hook (beforeAll, afterAll) of a suite around the test, if one failed. */
function hookError(test: TestCase): string | undefined {
  for (let suite = test.parent; suite.type === 'suite'; suite = suite.parent) {
    const error = suite.errors()[0];
    if (error) return `a hook of '${suite.name}' failed: ${error.message}`;
  }
  const error = test.module.errors()[0];
  return error ? `a hook of the test file failed: ${error.message}` : undefined;
}
