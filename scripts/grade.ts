// npm run grade [NN…] [-- --watch | --report DIR | --dir DIR | --timeout MS | --lang zh|en]
// Runs each lab's own tests against your file in exercises/ (LAB_DIR=exercises) and prints a score table.
import fs from 'node:fs';
import path from 'node:path';
import type { Lab } from '../labs/index.ts';
import { fail, labOrFail, parseCli } from './lib/cli.ts';
import { exerciseFile, exercisesDirName } from './lib/exercises.ts';
import { failureDetails, gradeLab, jsonSummary, junitXml, type LabGrade, scoreTable } from './lib/report.ts';
import { runLabTests } from './lib/run-tests.ts';
import { labs, root } from './lib/workbook.ts';

// A project (npm run grade chat) is graded from outside by its own tester.
const first = process.argv.slice(2).find((a) => !a.startsWith('-'));
if (first && (await import('./lib/projects/index.ts')).findProject(first)) {
  const { gradeProject } = await import('./lib/projects/grade.ts');
  await gradeProject(
    first,
    process.argv.slice(2).filter((a) => a !== first),
  );
}

const { values, positionals } = parseCli('grade', {
  watch: { type: 'boolean' },
  report: { type: 'string' },
  dir: { type: 'string' },
  timeout: { type: 'string' },
  lang: { type: 'string' },
});
if (values.help) {
  console.log(`usage: npm run grade [NN ...] [-- --watch] [--report DIR] [--dir DIR] [--timeout MS] [--lang zh|en]
  no NN: every exercise started so far
  --watch       re-grade one lab every time its exercise file is saved
  --report DIR  also write DIR/grade.json and DIR/junit.xml (for CI and GitHub Classroom)
  --dir DIR     grade the exercise files in DIR instead of ${exercisesDirName}/ (a student's folder, say)
  --timeout MS  per-test time limit (default 10000); a test that hangs fails with the lab's output so far
  --lang zh|en  language of the titles (default: from LANG)`);
  process.exit(0);
}
const dir = typeof values.dir === 'string' ? values.dir : exercisesDirName;
const locale: 'zh' | 'en' =
  values.lang === 'zh' || (values.lang === undefined && /^zh/i.test(process.env.LANG ?? '')) ? 'zh' : 'en';
if (values.lang !== undefined && values.lang !== 'zh' && values.lang !== 'en')
  fail(`--lang must be zh or en`);
let timeoutMs: number | undefined;
if (typeof values.timeout === 'string') {
  timeoutMs = Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100)
    fail(`--timeout must be a whole number of ms, at least 100`);
}

let chosen: Lab[] = positionals.map((p) => labOrFail(p, { withExercises: true }));
const started = (lab: Lab) => fs.existsSync(exerciseFile(root, lab, dir));
const rel = (lab: Lab) =>
  path.relative(process.cwd(), exerciseFile(root, lab, dir)) || exerciseFile(root, lab, dir);

if (chosen.length === 0) {
  chosen = labs.filter(started);
  if (chosen.length === 0) fail(`no exercise started yet in ${dir}/: start one with npm run exercise 01`);
} else {
  const missing = chosen.filter((l) => !started(l));
  // With --report a CI job still gets its report (zero points) for a student who has not started yet.
  if (missing.length === chosen.length && typeof values.report !== 'string') {
    for (const lab of missing)
      console.error(
        `error: exercise ${lab.id} is not started yet (no ${rel(lab)}): npm run exercise ${lab.id}`,
      );
    process.exit(2);
  }
}
if (values.watch && chosen.length !== 1) fail('--watch grades one lab: npm run grade 08 -- --watch');

async function gradeOnce(): Promise<LabGrade[]> {
  const toRun = chosen.filter(started);
  for (const lab of toRun) console.log(`grading ${lab.id} ${lab.title[locale]} (${rel(lab)}) …`);
  const outcome = !toRun.length
    ? undefined
    : await runLabTests({
        root,
        labDir: dir,
        labs: toRun,
        timeoutMs,
        onResult: (lab, t) => {
          if (t.state !== 'skipped') console.log(`  ${lab.id} ${t.state === 'passed' ? '✓' : '✗'} ${t.name}`);
        },
      });
  const grades = chosen.map((lab) =>
    gradeLab(lab, started(lab) ? outcome?.results.get(lab.slug) : undefined),
  );
  // vitest could not run at all (a broken config, say): show what it said rather than a table of zeros.
  if (toRun.length && grades.every((g) => g.status === 'not started' || g.total === 0)) {
    console.error('error: the tests did not run; vitest said:');
    for (const line of outcome?.otherOutput.slice(-15) ?? []) console.error(`  ${line}`);
  }
  console.log(`\n${scoreTable(grades, locale)}`);
  const details = failureDetails(grades);
  if (details) console.log(`\nwhat is still missing:\n${details}`);
  // A test waiting for something the exercise does not do yet fails only at the time limit: say so, and how to
  // get faster (less patient) feedback.
  const timedOut = grades
    .flatMap((g) => g.tests)
    .filter((t) => /Test timed out in \d+ms/.test(t.error ?? '')).length;
  if (timedOut) {
    const ids = grades
      .filter((g) => g.status === 'failing')
      .map((g) => g.lab.id)
      .join(' ');
    console.log(
      `\n${timedOut} test(s) waited until the time limit for something the code does not do yet; for quicker feedback: npm run grade ${ids} -- --timeout 3000`,
    );
  }
  const notStarted = grades.filter((g) => g.status === 'not started');
  if (notStarted.length)
    console.log(`\nnot started: ${notStarted.map((g) => `npm run exercise ${g.lab.id}`).join(', ')}`);
  return grades;
}

function writeReport(grades: LabGrade[], to: string): void {
  fs.mkdirSync(to, { recursive: true });
  fs.writeFileSync(path.join(to, 'grade.json'), `${JSON.stringify(jsonSummary(grades), null, 2)}\n`);
  fs.writeFileSync(path.join(to, 'junit.xml'), junitXml(grades));
  console.log(`\nreport: ${path.join(to, 'grade.json')} and ${path.join(to, 'junit.xml')}`);
}

const grades = await gradeOnce();
if (typeof values.report === 'string') writeReport(grades, values.report);

if (!values.watch) {
  process.exit(grades.every((g) => g.status === 'passed') ? 0 : 1);
} else {
  const lab = chosen[0] as Lab;
  const file = exerciseFile(root, lab, dir);
  let running = false;
  let again = false;
  let pending: NodeJS.Timeout | undefined;
  const regrade = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    console.log(`\n── ${new Date().toLocaleTimeString()} ${rel(lab)} changed ──`);
    await gradeOnce();
    console.log(`\nwatching ${rel(lab)}: save it to grade again, Ctrl-C to stop`);
    running = false;
    if (again) {
      again = false;
      void regrade();
    }
  };
  // Watch the folder, not the file: editors often save by writing a new file and renaming it over the old one.
  fs.watch(path.dirname(file), (_event, name) => {
    if (name !== path.basename(file)) return;
    clearTimeout(pending);
    pending = setTimeout(() => void regrade(), 150); // an editor's save can be several writes: grade once
  });
  process.on('SIGINT', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  // Said only now that the watcher is in place: a save right after this line is seen.
  console.log(`\nwatching ${rel(lab)}: save it to grade again, Ctrl-C to stop`);
}
