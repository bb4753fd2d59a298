// npm run check:exercises [NN…]: the proof that grading can fail (model: rustlings `dev check`).
//  1. every lab has exercises with hints, and its starter (all regions emptied) type-checks;
//  2. a copy of every reference lab, placed where a student's file goes, passes all its tests;
//  3. for every exercise region, the lab with only that region emptied fails at least one test.
// A region whose removal no test notices is an error naming the lab and the region.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Lab } from '../labs/index.ts';
import { maxTimerMs, parseCli } from './lib/cli.ts';
import { labsPathFrom, makeStarter, rewriteImports } from './lib/exercises.ts';
import { labOrFail } from './lib/registry.ts';
import { type RunOutcome, runLabTests } from './lib/run-tests.ts';
import { labs, root } from './lib/workbook.ts';

const { values, positionals } = parseCli({
  command: 'check:exercises',
  args: '[NN ...]',
  about: [
    'the proof that grading can fail: every starter type-checks, every reference passes,',
    'and with each exercise region emptied on its own at least one test fails (no NN: every lab)',
  ],
  flags: {
    // A test that waits for a line an emptied region never prints fails at this limit: keep it short.
    timeout: {
      type: 'int',
      value: 'MS',
      min: 100,
      // The reference runs get three times this, and a Node timer takes at most 2^31 - 1 ms.
      max: Math.floor(maxTimerMs / 3),
      default: 5000,
      help: 'per-test time limit for the emptied regions (the reference copies get 3×)',
    },
    update: {
      type: 'boolean',
      help: `write the test that noticed each region into ${'test/exercise-proof.json'} (run it after renaming a test)`,
    },
    jobs: {
      type: 'int',
      min: 1,
      max: 64,
      default: Math.min(2, os.availableParallelism()),
      help: 'emptied regions graded at a time',
    },
  },
});

// A fresh folder per run (two runs at once must not wipe each other's files), two levels below the root, so
// every variant folder in it reaches labs/ by the same relative path.
fs.mkdirSync(path.join(root, '.grade'), { recursive: true });
const work = fs.mkdtempSync(path.join(root, '.grade', 'proof-'));
// mkdtemp makes it 0700: a test that runs a lab as another user (chapter 03's EACCES as nobody) must read it too.
fs.chmodSync(work, 0o755);

const chosen: Lab[] = positionals.length ? positionals.map((p) => labOrFail(p)) : [...labs];
const timeoutMs = values.timeout;
const jobs = values.jobs;
const problems: string[] = [];
const started = Date.now();
/** Seconds since the start, for the progress lines. */
const clock = () => `[${((Date.now() - started) / 1000).toFixed(1)} s]`;
const source = (lab: Lab) => fs.readFileSync(path.join(root, 'labs', `${lab.slug}.ts`), 'utf8');
const labsPath = labsPathFrom(root, path.join(work, 'variant')); // every variant folder sits at this depth

/** A signal stops the proof (the run it interrupted already ended its process tree): nothing is claimed. */
function stopIfSignalled(run: RunOutcome): void {
  if (!run.stoppedBy) return;
  console.error(
    `error: stopped by ${run.stoppedBy}; the proof is incomplete (files kept in ${path.relative(process.cwd(), work)})`,
  );
  process.exit(128 + (os.constants.signals[run.stoppedBy] ?? 1));
}

const write = (dir: string, lab: Lab, text: string) => {
  fs.mkdirSync(path.join(work, dir), { recursive: true });
  fs.writeFileSync(path.join(work, dir, `${lab.slug}.ts`), text);
};

// 1. Exercises exist, have hints, and the starters type-check (unused imports are fine: the learner uses them).
for (const lab of chosen) {
  if (lab.exercises.length === 0)
    problems.push(`lab ${lab.id}: no exercise regions (labs/index.ts lists none)`);
  for (const ex of lab.exercises) {
    if (ex.hints.length === 0)
      problems.push(`lab ${lab.id}, region '${ex.region}': no hints in labs/index.ts`);
  }
  try {
    write('starters', lab, makeStarter(source(lab), lab, undefined, labsPath));
  } catch (err) {
    problems.push(`lab ${lab.id}: ${(err as Error).message}`);
  }
}
fs.writeFileSync(
  path.join(work, 'tsconfig.json'),
  JSON.stringify({
    extends: '../../tsconfig.json',
    compilerOptions: { noUnusedLocals: false, noUnusedParameters: false },
    include: ['starters/*.ts'],
    exclude: [],
  }),
);
console.log(`1/3 ${clock()} type-checking ${chosen.length} starter(s) …`);
try {
  execFileSync(
    process.execPath,
    [
      path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin/tsc'),
      '-p',
      path.join(work, 'tsconfig.json'),
    ],
    {
      cwd: root,
      encoding: 'utf8',
    },
  );
} catch (err) {
  const out = `${(err as { stdout?: string }).stdout ?? ''}`.trim();
  problems.push(`a starter does not type-check (the emptied regions left something dangling):\n${out}`);
}

// 2. The reference labs, copied to where a student's file goes, pass every test.
console.log(`2/3 ${clock()} grading copies of the reference labs …`);
for (const lab of chosen) write('reference', lab, rewriteImports(source(lab), labsPath));
const reference = await runLabTests({
  root,
  labDir: path.join(work, 'reference'),
  labs: chosen,
  timeoutMs: timeoutMs * 3,
});
stopIfSignalled(reference);
for (const lab of chosen) {
  const results = reference.results.get(lab.slug) ?? [];
  const failed = results.filter((r) => r.state === 'failed');
  const incomplete = reference.problems.get(lab.slug) ?? [];
  if (results.length === 0 || incomplete.length)
    problems.push(
      `lab ${lab.id}: the reference copy was not graded completely (${incomplete.join('; ') || 'no tests ran'})\n${reference.otherOutput.slice(-10).join('\n')}`,
    );
  for (const f of failed)
    problems.push(`lab ${lab.id}: the reference copy fails '${f.name}': ${f.error?.split('\n')[0]}`);
}

// 3. Each region on its own: emptied, some test must fail.
//  a. Fast: test/exercise-proof.json names, per region, a test that noticed it before. Round k empties the k-th
//     region of every lab at once and runs only those named tests, all labs in one vitest run (3 runs, not 37).
//     Only a failure seen now counts.
//  b. Every region a named test did not notice (or that has none) is graded on its own with all of its lab's
//     tests, stopping at the first failure; a region that no test notices is an error.
const proofFile = path.join(root, 'test', 'exercise-proof.json');
type Proof = Record<string, Record<string, string>>;
const proof: Proof = fs.existsSync(proofFile)
  ? (JSON.parse(fs.readFileSync(proofFile, 'utf8')) as Proof)
  : {};
const noticed: Proof = {};
const notice = (lab: Lab, region: string, test: string) => {
  noticed[lab.id] = { ...noticed[lab.id], [region]: test };
  console.log(`  ✓ ${lab.id} ${region}: noticed by '${test}'`);
};
const variants = chosen.flatMap((lab) => lab.exercises.map((ex, k) => ({ lab, region: ex.region, k })));
console.log(`3/3 ${clock()} emptying each of ${variants.length} exercise region(s) in turn …`);
const rest: typeof variants = [];
for (let k = 0; variants.some((v) => v.k === k); k++) {
  const round = variants.filter((v) => v.k === k);
  const named = round.filter((v) => proof[v.lab.id]?.[v.region]);
  rest.push(...round.filter((v) => !proof[v.lab.id]?.[v.region]));
  if (named.length === 0) continue;
  const dir = `round-${k + 1}`;
  console.log(
    `  ${clock()} round ${k + 1}: region ${k + 1} of ${named.length} lab(s) emptied, only the test known to notice it`,
  );
  for (const { lab, region } of named) write(dir, lab, makeStarter(source(lab), lab, region, labsPath));
  const names = named.map((v) => proof[v.lab.id]?.[v.region] as string);
  const run = await runLabTests({
    root,
    labDir: path.join(work, dir),
    labs: named.map((v) => v.lab),
    timeoutMs,
    only: names,
  });
  stopIfSignalled(run);
  for (const v of named) {
    const name = proof[v.lab.id]?.[v.region] as string;
    const result = (run.results.get(v.lab.slug) ?? []).find((r) => r.name === name);
    if (result?.state === 'failed') notice(v.lab, v.region, name);
    else rest.push(v); // it passed: it did not notice this region after all (a flake did, when it was named)
  }
}
if (rest.length)
  console.log(
    `  ${rest.length} region(s) with no test known to notice them: all of their lab's tests (${jobs} at a time) …`,
  );
let next = 0;
async function worker() {
  while (next < rest.length) {
    const { lab, region } = rest[next++] as (typeof rest)[number];
    const dir = `without-${lab.id}-${region}`;
    write(dir, lab, makeStarter(source(lab), lab, region, labsPath));
    const run = await runLabTests({ root, labDir: path.join(work, dir), labs: [lab], timeoutMs, bail: true });
    const results = run.results.get(lab.slug) ?? [];
    const failed = results.find((r) => r.state === 'failed');
    stopIfSignalled(run);
    const incomplete = run.problems.get(lab.slug) ?? [];
    if (failed) {
      notice(lab, region, failed.name);
      const was = proof[lab.id]?.[region];
      if (was && was !== failed.name && !values.update)
        console.log(
          `    (test/exercise-proof.json names '${was}', which passed: npm run check:exercises -- --update)`,
        );
    } else if (incomplete.length) {
      // Not a pass of the proof either: no failure was seen, but neither was every result.
      problems.push(`lab ${lab.id}, region '${region}': could not be checked: ${incomplete.join('; ')}`);
      console.log(`  ! ${lab.id} ${region}: grading error`);
    } else {
      problems.push(
        `lab ${lab.id}, region '${region}': with the region emptied, no test fails (${results.length} passed). Add a test that needs what this region does, or choose another region.`,
      );
      console.log(`  ✗ ${lab.id} ${region}: no test noticed`);
    }
  }
}
await Promise.all(Array.from({ length: jobs }, worker));
if (values.update) {
  const merged: Proof = { ...proof };
  for (const [id, regions] of Object.entries(noticed)) merged[id] = { ...merged[id], ...regions };
  const sorted = Object.fromEntries(
    Object.keys(merged)
      .sort()
      .map((id) => [id, merged[id]]),
  );
  fs.writeFileSync(proofFile, `${JSON.stringify(sorted, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), proofFile)}`);
}

const seconds = ((Date.now() - started) / 1000).toFixed(1);
if (problems.length) {
  console.error(`\n✗ exercise proof failed (${seconds} s):`);
  for (const p of problems) console.error(`  - ${p}`);
  console.error(`the generated files are kept for a look in ${path.relative(process.cwd(), work)}`);
  process.exit(1);
}
fs.rmSync(work, { recursive: true, force: true });
console.log(
  `\n✓ ${chosen.length} lab(s), ${variants.length} region(s): every reference passes, every emptied region is noticed (${seconds} s)`,
);
