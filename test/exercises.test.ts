// The exercise tooling on a small fixture workbook (test/fixtures/workbook): starters, grading, reports,
// watch, hints, the exercise proof, and one clear line for every kind of bad input.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { busy, root, spawnFile } from './helpers/lab.ts';

// Each test runs the real CLIs, and grading starts vitest in a child process: seconds per run, more under load.
vi.setConfig({ testTimeout: 40_000 });

const fixture = path.join(root, 'test/fixtures/workbook');
let book: string;

// A fresh copy of the fixture workbook for every test, with this repo's node_modules linked in.
beforeEach(() => {
  book = fs.mkdtempSync(path.join(os.tmpdir(), 'workbook-'));
  fs.cpSync(fixture, book, { recursive: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(book, 'node_modules'), 'dir');
  return () => fs.rmSync(book, { recursive: true, force: true });
});

const script = (name: string) => path.join(root, 'scripts', `${name}.ts`);

function cli(name: string, args: string[] = []) {
  return execa(process.execPath, ['--import', 'tsx', script(name), ...args], {
    cwd: book,
    env: { WORKBOOK_ROOT: book, LANG: 'C', NO_COLOR: '1' },
    reject: false,
  });
}

const exercise = () => path.join(book, 'exercises/91-greeter.ts');
const reference = () =>
  fs.readFileSync(path.join(book, 'labs/91-greeter.ts'), 'utf8').replace("'./lib/", "'../labs/lib/");

describe('npm run exercise', () => {
  it('writes a starter: each region body becomes a TODO with the task, imports point back into labs/', async () => {
    const r = await cli('exercise', ['91']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^wrote exercises\/91-greeter\.ts/);
    const starter = fs.readFileSync(exercise(), 'utf8');
    expect(starter).toContain("import { greeting } from '../labs/lib/words.ts';");
    expect(starter).toContain('// #region exercise-greet\n// TODO (greet): Print the greeting\n');
    expect(starter).not.toContain('console.log(greeting(name));');
    expect(starter).not.toContain('nobody checks this line');
    expect(starter).toContain("const name = await Promise.resolve('world');");
    // It still runs: it just prints nothing yet.
    const run = await execa(process.execPath, ['--import', 'tsx', exercise()], { cwd: book, reject: false });
    expect(run).toMatchObject({ exitCode: 0, stdout: '' });
  });

  it('never overwrites a started exercise, and --reset keeps the old file as a timestamped backup', async () => {
    await cli('exercise', ['91']);
    fs.writeFileSync(exercise(), '// my work\n');
    const again = await cli('exercise', ['91']);
    expect(again.exitCode).toBe(1);
    expect(again.stderr.split('\n')).toHaveLength(1);
    expect(again.stderr).toMatch(/exercises\/91-greeter\.ts already exists.*--reset/);
    expect(fs.readFileSync(exercise(), 'utf8')).toBe('// my work\n');

    const reset = await cli('exercise', ['91', '--reset']);
    expect(reset.exitCode).toBe(0);
    const backups = fs.readdirSync(path.join(book, 'exercises')).filter((f) => f.includes('.backup-'));
    expect(backups).toHaveLength(1);
    expect(fs.readFileSync(path.join(book, 'exercises', backups[0] as string), 'utf8')).toBe('// my work\n');
    expect(fs.readFileSync(exercise(), 'utf8')).toContain('// TODO (greet)');
  });
});

describe('bad input is one line on stderr and exit code 2', () => {
  it.each([
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
  ])('%s %j', async (name, args, message) => {
    const r = await cli(name, args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});

describe('npm run grade', () => {
  it('passes a correct exercise: every test, full points, exit 0', async () => {
    fs.mkdirSync(path.join(book, 'exercises'));
    fs.writeFileSync(exercise(), reference());
    const r = await cli('grade', ['91']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('  91 ✓ greets the world on stdout');
    expect(r.stdout).toMatch(/^91 +Greeter +2\/2 +✓ passed +10\/10$/m);
    expect(r.stdout).toContain('total: 10 / 10 points, 1 of 1 labs passed');
  });

  it('fails an untouched starter and names the missing behaviour with the first lines of the failure', async () => {
    await cli('exercise', ['91']);
    const r = await cli('grade', ['91']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^91 +Greeter +1\/2 +✗ failing +5\/10$/m);
    expect(r.stdout).toContain('what is still missing:\n91 ✗ greets the world on stdout');
    expect(r.stdout).toMatch(/expected '' to be '\[fixture\] hello world'/);
  });

  it('reports a file that does not compile as failing, with the compiler message', async () => {
    fs.mkdirSync(path.join(book, 'exercises'));
    fs.writeFileSync(exercise(), 'const broken = ;\n');
    const r = await cli('grade', ['91']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^91 +Greeter +0\/2 +✗ failing +0\/10$/m);
    expect(r.stdout).toMatch(/Unexpected ";"|Transform failed|SyntaxError/);
  });

  it('stops a file that hangs at the time limit, reports it, and leaves no process behind', async () => {
    fs.mkdirSync(path.join(book, 'exercises'));
    fs.writeFileSync(exercise(), 'setInterval(() => {}, 1 << 30);\n');
    const r = await cli('grade', ['91', '--timeout', '1000']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^91 +Greeter +0\/2 +✗ failing +0\/10$/m);
    expect(r.stdout).toContain('Test timed out in 1000ms');
    expect(r.stdout).toContain(
      '2 test(s) waited until the time limit for something the code does not do yet; for quicker feedback: npm run grade 91 -- --timeout 3000',
    );
    const ps = await execa('ps', ['-eo', 'args']);
    expect(ps.stdout).not.toContain(exercise());
  });

  it('lists labs not started in the table, and writes a JSON summary and JUnit XML for CI', async () => {
    await cli('exercise', ['91']);
    const report = path.join(book, 'report');
    const r = await cli('grade', ['91', '--report', report]);
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

  it('with --report, a class member who has not started still gets a report: zero points, exit 1', async () => {
    const report = path.join(book, 'report');
    const r = await cli('grade', ['91', '--report', report]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^91 +Greeter +- +· not started +0\/10$/m);
    const summary = JSON.parse(fs.readFileSync(path.join(report, 'grade.json'), 'utf8'));
    expect(summary.labs).toEqual([expect.objectContaining({ id: '91', status: 'not started', points: 0 })]);
    expect(fs.readFileSync(path.join(report, 'junit.xml'), 'utf8')).toContain(
      '<failure message="not started">npm run exercise 91</failure>',
    );
  });

  it('--watch says "grading…" within 200 ms of a save (before the run starts), then grades again', async () => {
    await cli('exercise', ['91']);
    const watch = spawnFile(script('grade'), ['91', '--watch'], { env: { WORKBOOK_ROOT: book, LANG: 'C' } });
    await watch.waitForLine(/✗ failing/);
    await watch.waitForLine(/^watching .*91-greeter\.ts: save it/);
    const before = watch.lines.length;
    const saved = performance.now();
    fs.writeFileSync(exercise(), reference());
    await watch.waitForLine(/^── .* grading… \(.*91-greeter\.ts changed\) ──$/);
    // Said on the file system's event, not after the debounce or vitest's start-up (measured: 10–60 ms).
    expect(performance.now() - saved).toBeLessThan(200 * busy); // 200 ms on an idle machine, more under load
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

describe('npm run hint', () => {
  it('shows one more hint each time, or all of them with --all', async () => {
    const first = await cli('hint', ['91', 'greet']);
    expect(first.stdout).toContain('hint 1/2: Use console.log');
    expect(first.stdout).not.toContain('hint 2/2');
    const second = await cli('hint', ['91', 'greet']);
    expect(second.stdout).toContain('hint 2/2: console.log(greeting(name))');
    expect(second.stdout).toContain('提示 2/2：console.log(greeting(name))');
    const all = await cli('hint', ['91', '--all']);
    expect(all.stdout.match(/hint \d\/\d/g)).toEqual(['hint 1/2', 'hint 2/2', 'hint 1/1']);
  });
});

describe('npm run check:exercises', () => {
  it('names the lab and the region whose removal no test notices, and exits 1', async () => {
    const r = await cli('check-exercises', ['91']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain("✓ 91 greet: noticed by 'greets the world on stdout'");
    expect(r.stderr).toContain(
      "lab 91, region 'unnoticed': with the region emptied, no test fails (2 passed)",
    );
    expect(r.stderr).not.toContain('reference copy');
  });

  it('runs first the test test/exercise-proof.json names for a region, and falls back to every test where that one passes', async () => {
    // 'greet': the named test notices it in the fast round. 'unnoticed': the named test passes without it, so
    // the region is graded with all the tests, and no test fails: still the error, never taken on trust.
    const proofFile = path.join(book, 'test/exercise-proof.json');
    const named = { greet: 'greets the world on stdout', unnoticed: 'exits with code 0' };
    fs.writeFileSync(proofFile, JSON.stringify({ '91': named }));
    const r = await cli('check-exercises', ['91', '--update']);
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
