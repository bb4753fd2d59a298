// The grader's reporter (scripts/lib/vitest-reporter.ts) is what a grade is computed from: a test that did not
// pass must never arrive as anything but failed, whatever vitest calls it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { expect, it } from 'vitest';
import { root } from './helpers/lab.ts';

it("a suite whose beforeAll throws: vitest calls its tests 'skipped', the reporter says failed, with the hook's error", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reporter-'));
  t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'test'));
  fs.writeFileSync(
    path.join(dir, 'test/hook.test.ts'),
    `import { beforeAll, describe, expect, it } from 'vitest';
describe.concurrent('the demo', () => {
  beforeAll(() => { throw new Error('the demo never started'); });
  it('one', () => expect(1).toBe(1));
  it('two', () => expect(1).toBe(1));
});
it.skip('skipped on purpose', () => {});
it('outside', () => expect(1).toBe(1));
`,
  );
  const r = await execa(
    process.execPath,
    [
      path.join(root, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--root',
      dir,
      `--reporter=${path.join(root, 'scripts/lib/vitest-reporter.ts')}`,
    ],
    { reject: false, env: { NO_COLOR: '1' } },
  );
  const events = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('@@grade '))
    .map((l) => JSON.parse(l.slice(8)))
    .filter((e) => e.kind === 'test')
    .map((e) => [e.name, e.state, e.error]);
  expect(events, r.stdout + r.stderr).toEqual([
    ['one', 'failed', "a hook of 'the demo' failed: the demo never started"],
    ['two', 'failed', "a hook of 'the demo' failed: the demo never started"],
    ['skipped on purpose', 'skipped', undefined],
    ['outside', 'passed', undefined],
  ]);
});
