// The exercise tooling on a small fixture workbook (test/fixtures/workbook): starters, grading, reports,
// watch, hints, the exercise proof, and one clear line for every kind of bad input.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { it as base, describe, expect, vi } from 'vitest';
import { busyNow, root, spawnFile } from './helpers/lab.ts';

// Each test runs the real CLIs, and grading starts vitest in a child process: seconds per run, more under load.
vi.setConfig({ testTimeout: 40_000 });

const fixture = path.join(root, 'test/fixtures/workbook');
const script = (name: string) => path.join(root, 'scripts', `${name}.ts`);
const run = (dir: string, name: string, args: readonly string[] = []) =>
  execa(process.execPath, ['--import', 'tsx', script(name), ...args], {
    cwd: dir,
    env: { WORKBOOK_ROOT: dir, LANG: 'C', NO_COLOR: '1' },
    reject: false,
  });

interface Book {
  dir: string;
  /** exercises/91-greeter.ts in this copy. */
  exercise: string;
  /** Lab 91's reference, with its imports pointing from exercises/ back into labs/. */
  reference(): string;
  cli(name: string, args?: readonly string[]): ReturnType<typeof run>;
}

// A fresh copy of the fixture workbook for every test, with this repo's node_modules linked in: the tests of
// a describe run at once (most of their time is a child vitest starting), each in its own copy.
const it = base.extend<{ book: Book }>({
  // biome-ignore lint/correctness/noEmptyPattern: vitest reads a fixture's dependencies from this pattern
  book: async ({}, use) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'workbook-'));
    fs.cpSync(fixture, dir, { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    await use({
      dir,
      exercise: path.join(dir, 'exercises/91-greeter.ts'),
      reference: () =>
        fs.readFileSync(path.join(dir, 'labs/91-greeter.ts'), 'utf8').replace("'./lib/", "'../labs/lib/"),
      cli: (name, args) => run(dir, name, args),
    });
    fs.rmSync(dir, { recursive: true, force: true });
  },
});

describe.concurrent('npm run exercise', () => {
  it('writes a starter: each region body becomes a TODO with the task, imports point back into labs/', async ({
    book,
  }) => {
    const r = await book.cli('exercise', ['91']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^wrote exercises\/91-greeter\.ts/);
    const starter = fs.readFileSync(book.exercise, 'utf8');
    expect(starter).toContain("import { greeting } from '../labs/lib/words.ts';");
    expect(starter).toContain('// #region exercise-greet\n// TODO (greet): Print the greeting\n');
    expect(starter).not.toContain('console.log(greeting(name));');
    expect(starter).not.toContain('nobody checks this line');
    expect(starter).toContain("const name = await Promise.resolve('world');");
    // It still runs: it just prints nothing yet.
    const run = await execa(process.execPath, ['--import', 'tsx', book.exercise], {
      cwd: book.dir,
      reject: false,
    });
    expect(run).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('never overwrites a started exercise, and --reset keeps the old file as a timestamped backup', async ({
    book,
  }) => {
    await book.cli('exercise', ['91']);
    fs.writeFileSync(book.exercise, '// my work\n');
    const again = await book.cli('exercise', ['91']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr.split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/exercises\/91-greeter\.ts already exists.*--reset/);
    expect(fs.readFileSync(book.exercise, 'utf8')).toBe('// my work\n');

    const reset = await book.cli('exercise', ['91', '--reset']);
    expect(reset.exitCode).toBe(0);
    const backups = fs.readdirSync(path.join(book.dir, 'exercises')).filter((f) => f.includes('.backup-'));
    expect(backups).toHaveLength(1);
    expect(fs.readFileSync(path.join(book.dir, 'exercises', backups[0] as string), 'utf8')).toBe(
      '// my work\n',
    );
    expect(fs.readFileSync(book.exercise, 'utf8')).toContain('// TODO (greet)');
  });
});

describe.concurrent('bad input is one line on stderr and exit code 2', () => {
  it.for([
    ['exercise', ['99'], /^error: no lab '99'; closest: /],
    ['exercise', ['92'], /^error: lab 92 has no exercises/],
    ['hint', ['92'], /^error: lab 92 has no exercises/],
    ['hint', ['91', 'nope'], /^error: lab 91 has no exercise 'nope'; its exercises: greet, unnoticed$/],
    [
      'grade',
      ['91'],
      /^error: exercise 91 is not started yet \(no exercises\/91-greeter\.ts\): npm run exercise 91$/,
    ],
    ['grade', [], /^error: no exercise started yet in exercises\/: start one with npm run exercise 01$/],
    ['grade', ['92'], /^error: lab 92 has no exercises/],
    ['grade', ['--colour'], /^error: Unknown option '--colour'/],
  ] as const)('%s %j', async ([name, args, message], { book }) => {
    const r = await book.cli(name, args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});

describe.concurrent('npm run grade', () => {
  it('passes a correct exercise: every test, full points, exit 0', async ({ book }) => {
    fs.mkdirSync(path.join(book.dir, 'exercises'));
    fs.writeFileSync(book.exercise, book.reference());
    const r = await book.cli('grade', ['91']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('  91 ✓ greets the world on stdout');
    expect(r.stdout).toMatch(/^91 +Greeter +2\/2 +✓ passed +10\/10$/m);
    expect(r.stdout).toContain('total: 10 / 10 points, 1 of 1 labs passed');
  });

  it('fails an untouched starter and names the missing behaviour with the first lines of the failure', async ({
    book,
  }) => {
    await book.cli('exercise', ['91']);
    const r = await book.cli('grade', ['91']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^91 +Greeter +1\/2 +✗ failing +5\/10$/m);
    expect(r.stdout).toContain('what is still missing:\n91 ✗ greets the world on stdout');
    expect(r.stdout).toMatch(/expected '' to be '\[fixture\] hello world'/);
  });

  it('reports a file that does not compile as failing, with the compiler message', async ({ book }) => {
    fs.mkdirSync(path.join(book.dir, 'exercises'));
    fs.writeFileSync(book.exercise, 'const broken = ;\n');
    const r = await book.cli('grade', ['91']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^91 +Greeter +0\/2 +✗ failing +0\/10$/m);
    expect(r.stdout).toMatch(/Unexpected ";"|Transform failed|SyntaxError/);
  });

  it('stops a file that hangs at the time limit, reports it, and leaves no process behind', async ({
    book,
  }) => {
    fs.mkdirSync(path.join(book.dir, 'exercises'));
    fs.writeFileSync(book.exercise, 'setInterval(() => {}, 1 << 30);\n');
    const r = await book.cli('grade', ['91', '--timeout', '1000']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^91 +Greeter +0\/2 +✗ failing +0\/10$/m);
    expect(r.stdout).toContain('Test timed out in 1000ms');
    expect(r.stdout).toContain(
      '2 test(s) waited until the time limit for something the code does not do yet; for quicker feedback: npm run grade 91 -- --timeout 3000',
    );
    const ps = await execa('ps', ['-eo', 'args']);
    expect(ps.stdout).not.toContain(book.exercise);
  });

  it('lists labs not started in the table, and writes a JSON summary and JUnit XML for CI', async ({
    book,
  }) => {
    await book.cli('exercise', ['91']);
    const report = path.join(book.dir, 'report');
    const r = await book.cli('grade', ['91', '--report', report]);
    expect(r.exitCode).toBe(1);
    const summary = JSON.parse(fs.readFileSync(path.join(report, 'grade.json'), 'utf8'));
    expect(summary).toMatchObject({
      score: 5,
      maxScore: 10,
      labs: [{ id: '91', status: 'failing', tests: 2, passed: 1, points: 5, maxPoints: 10 }],
    });
    expect(summary.labs[0].failures).toEqual([
      { test: 'greets the world on stdout', message: expect.stringContaining("expected '' to be") },
    ]);
    const junit = fs.readFileSync(path.join(report, 'junit.xml'), 'utf8');
    expect(junit).toMatch(
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="node-net-workbook" tests="2" failures="1">/,
    );
    expect(junit).toContain('<testsuite name="91 Greeter" tests="2" failures="1" skipped="0">');
    expect(junit).toMatch(
      /<testcase classname="91-greeter" name="greets the world on stdout" time="[\d.]+"><failure message="[^"]+">/,
    );
    expect(junit).toMatch(/<testcase classname="91-greeter" name="exits with code 0" time="[\d.]+"\/>/);
  });

  it('with --report, a class member who has not started still gets a report: zero points, exit 1', async ({
    book,
  }) => {
    const report = path.join(book.dir, 'report');
    const r = await book.cli('grade', ['91', '--report', report]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^91 +Greeter +- +· not started +0\/10$/m);
    const summary = JSON.parse(fs.readFileSync(path.join(report, 'grade.json'), 'utf8'));
    expect(summary.labs).toEqual([expect.objectContaining({ id: '91', status: 'not started', points: 0 })]);
    expect(fs.readFileSync(path.join(report, 'junit.xml'), 'utf8')).toContain(
      '<failure message="not started">npm run exercise 91</failure>',
    );
  });
});

// Alone: it times how soon a save is seen, which the other tests' load would stretch.
describe('npm run grade --watch', () => {
  it('--watch says "grading…" within 200 ms of a save (before the run starts), then grades again', async ({
    book,
  }) => {
    await book.cli('exercise', ['91']);
    const watch = spawnFile(script('grade'), ['91', '--watch'], {
      env: { WORKBOOK_ROOT: book.dir, LANG: 'C' },
    });
    await watch.waitForLine(/✗ failing/);
    await watch.waitForLine(/^watching .*91-greeter\.ts: save it/);
    const before = watch.lines.length;
    const saved = performance.now();
    fs.writeFileSync(book.exercise, book.reference());
    await watch.waitForLine(/^── .* grading… \(.*91-greeter\.ts changed\) ──$/);
    // Said on the file system's event, not after the debounce or vitest's start-up (measured: 10–60 ms).
    // 200 ms on an idle machine, more under load: as loaded as the machine is now (once 252 ms at the suite's start,
    // when the 1-minute load average still said idle).
    expect(performance.now() - saved).toBeLessThan(200 * busyNow());
    await watch.waitForLine(/✓ passed/);
    const after = watch.lines.slice(before);
    const announced = after.findIndex((l) => /grading… \(/.test(l));
    expect(announced).toBeGreaterThanOrEqual(0);
    expect(after.findIndex((l) => /^grading 91 /.test(l))).toBeGreaterThan(announced);
    expect(watch.matching(/^total: /).map((m) => m.input)).toEqual([
      'total: 5 / 10 points, 0 of 1 labs passed',
      'total: 10 / 10 points, 1 of 1 labs passed',
    ]);
  });
});

describe.concurrent('npm run hint', () => {
  it('shows one more hint each time, or all of them with --all', async ({ book }) => {
    const first = await book.cli('hint', ['91', 'greet']);
    expect(first.stdout).toContain('hint 1/2: Use console.log');
    expect(first.stdout).not.toContain('hint 2/2');
    const second = await book.cli('hint', ['91', 'greet']);
    expect(second.stdout).toContain('hint 2/2: console.log(greeting(name))');
    expect(second.stdout).toContain('提示 2/2：console.log(greeting(name))');
    const all = await book.cli('hint', ['91', '--all']);
    expect(all.stdout.match(/hint \d\/\d/g)).toEqual(['hint 1/2', 'hint 2/2', 'hint 1/1']);
  });
});

describe.concurrent('npm run check:exercises', () => {
  it('names the lab and the region whose removal no test notices, and exits 1', async ({ book }) => {
    const r = await book.cli('check-exercises', ['91']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain("✓ 91 greet: noticed by 'greets the world on stdout'");
    expect(r.stderr).toContain(
      "lab 91, region 'unnoticed': with the region emptied, no test fails (2 passed)",
    );
    expect(r.stderr).not.toContain('reference copy');
  });

  it('runs first the test test/exercise-proof.json names for a region, and falls back to every test where that one passes', async ({
    book,
  }) => {
    // 'greet': the named test notices it in the fast round. 'unnoticed': the named test passes without it, so
    // the region is graded with all the tests, and no test fails: still the error, never taken on trust.
    const proofFile = path.join(book.dir, 'test/exercise-proof.json');
    const named = { greet: 'greets the world on stdout', unnoticed: 'exits with code 0' };
    fs.writeFileSync(proofFile, JSON.stringify({ '91': named }));
    const r = await book.cli('check-exercises', ['91', '--update']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/round 1: region 1 of 1 lab\(s\) emptied, only the test known to notice it/);
    expect(r.stdout).toContain("✓ 91 greet: noticed by 'greets the world on stdout'");
    expect(r.stdout).toContain("1 region(s) with no test known to notice them: all of their lab's tests");
    expect(r.stderr).toContain(
      "lab 91, region 'unnoticed': with the region emptied, no test fails (2 passed)",
    );
    // --update keeps what was seen this time: greet's test; unnoticed has none, so its old entry stays.
    expect(JSON.parse(fs.readFileSync(proofFile, 'utf8'))).toEqual({ '91': named });
  });
});
