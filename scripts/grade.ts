// npm run grade [NN…] [-- --watch | --report DIR | --dir DIR | --timeout MS | --lang zh|en]
// Runs each lab's own tests against your file in exercises/ (LAB_DIR=exercises) and prints a score table.
// A grade counts every test a lab has: a run that did not show every result (stopped, a dead worker, a test
// file that did not load, vitest failing while its results say pass) is a grading error, never a pass.
import fs from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import type { Lab } from '../labs/index.ts';
import { fail, langFlag, maxTimerMs, parseCli } from './lib/cli.ts';
import {
  cannotWriteIn,
  ensureEsm,
  exerciseFile,
  exercisesDirName,
  unresolvedImports,
} from './lib/exercises.ts';
import { labOrFail } from './lib/registry.ts';
import {
  failureDetails,
  gradeLab,
  jsonSummary,
  junitXml,
  type LabGrade,
  overallStatus,
  scoreTable,
} from './lib/report.ts';
import {
  type PreparedRun,
  prepareRun,
  type RunOptions,
  type RunOutcome,
  runLabTests,
} from './lib/run-tests.ts';
import { labs, root } from './lib/workbook.ts';

// A project (npm run grade chat) is graded from outside by its own tester, which exits when done.
const first = process.argv.slice(2).find((a) => !a.startsWith('-'));
if (first && (await import('./lib/projects/index.ts')).findProject(first)) {
  const { gradeProject } = await import('./lib/projects/grade.ts');
  await gradeProject(
    first,
    process.argv.slice(2).filter((a) => a !== first),
  );
}

/** The exit codes, as --help and the teachers' page state them. */
const exit = { passed: 0, failing: 1, usage: 2, error: 3 } as const;

const { values, positionals } = parseCli({
  command: 'grade',
  args: '[NN ...]',
  about: [
    'runs each lab’s own tests against your exercise file and prints a score table',
    `no NN: every exercise started so far in ${exercisesDirName}/`,
  ],
  flags: {
    watch: { type: 'boolean', short: 'w', help: 're-grade one lab every time its exercise file is saved' },
    report: {
      type: 'string',
      value: 'DIR',
      help: 'also write DIR/grade.json and DIR/junit.xml (for CI and GitHub Classroom)',
    },
    dir: {
      type: 'string',
      value: 'DIR',
      help: `grade the files in DIR instead of ${exercisesDirName}/ (any folder; relative to the workbook)`,
    },
    timeout: {
      type: 'int',
      value: 'MS',
      min: 100,
      max: maxTimerMs,
      help: 'per-test time limit in ms; default: the test config’s, 10000',
    },
    lang: { ...langFlag, help: 'language of the titles (default: from LANG)' },
  },
  notes: [
    '',
    'exit codes: 0 every lab passed · 1 a test failed or a lab is not started · 2 bad usage',
    '            3 grading error: the run did not show every result (a test file that did not load, a test',
    '              worker that died, fewer results than tests, vitest failing although its results passed)',
    '            128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM); the report then says "status": "error"',
    'every process a run starts is killed when it ends: on Linux by a cgroup of its own where one can be made',
    '(root, or a delegated cgroup v2) and by a /proc sweep for its marker; elsewhere by its process group, which',
    'a detached (setsid) child of a student’s file can leave',
  ],
});
const dir = values.dir ?? exercisesDirName;
const locale: 'zh' | 'en' = values.lang ?? (/^zh/i.test(process.env.LANG ?? '') ? 'zh' : ('en' as const));

let chosen: Lab[] = positionals.map((p) => labOrFail(p, { withExercises: true }));
const started = (lab: Lab) => fs.existsSync(exerciseFile(root, lab, dir));
const rel = (lab: Lab) =>
  path.relative(process.cwd(), exerciseFile(root, lab, dir)) || exerciseFile(root, lab, dir);

const dirPath = path.resolve(root, dir);
if (fs.existsSync(dirPath) && !fs.statSync(dirPath).isDirectory())
  fail(`--dir ${dir} is a file, not a folder of exercise files`);
if (chosen.length === 0) {
  chosen = labs.filter((l) => l.exercises.length > 0 && started(l));
  if (chosen.length === 0) fail(`no exercise started yet in ${dir}/: start one with npm run exercise 01`);
} else {
  const missing = chosen.filter((l) => !started(l));
  // With --report a CI job still gets its report (zero points) for a student who has not started yet.
  if (missing.length === chosen.length && values.report === undefined) {
    for (const lab of missing)
      console.error(
        `error: exercise ${lab.id} is not started yet (no ${rel(lab)}): npm run exercise ${lab.id}`,
      );
    process.exit(exit.usage);
  }
}
if (values.watch && chosen.length !== 1) fail('--watch grades one lab: npm run grade 08 -- --watch');
// Checked before the run, not after minutes of it: the report's folder must take files.
if (values.report !== undefined) {
  const why = cannotWriteIn(path.resolve(values.report));
  if (why) fail(`--report ${values.report}: cannot write the report there (${why})`);
}
// Files outside the workbook must still load as ES modules, as they do inside it.
if (chosen.some(started)) {
  try {
    const wrote = ensureEsm(dirPath);
    if (wrote)
      console.log(`wrote ${wrote} ({"type": "module"}: the files there are ES modules, as in the workbook)`);
  } catch {
    // A folder we cannot write in still grades; a file in it that needs ESM will say so in its test output.
  }
}

// A file whose imports lead nowhere fails every test with "Cannot find module": say why, once, before the run.
for (const lab of chosen.filter(started)) {
  for (const { spec, instead } of unresolvedImports(exerciseFile(root, lab, dir), root))
    console.log(
      `note: ${rel(lab)} imports '${spec}', which is not there from ${dir}${instead ? `; from there the workbook's is '${instead}'` : ''}`,
    );
}

interface Graded {
  grades: LabGrade[];
  outcome?: RunOutcome;
}

const runOptions = (toRun: Lab[]): RunOptions => ({
  root,
  labDir: dir,
  labs: toRun,
  timeoutMs: values.timeout,
  onResult: (lab, t) => {
    if (t.state !== 'skipped') console.log(`  ${lab.id} ${t.state === 'passed' ? '✓' : '✗'} ${t.name}`);
  },
});

/** grade --watch: the next run, made ready while the learner edits (vitest's start-up is then already done). */
let spare: PreparedRun | undefined;

async function gradeOnce(): Promise<Graded> {
  const toRun = chosen.filter(started);
  for (const lab of toRun) console.log(`grading ${lab.id} ${lab.title[locale]} (${rel(lab)}) …`);
  const ready = spare;
  spare = undefined;
  if (ready && toRun.length === 0) await ready.dispose();
  const outcome = !toRun.length ? undefined : await runLabTests(runOptions(toRun), ready);
  const grades = chosen.map((lab) =>
    started(lab) && outcome
      ? gradeLab(lab, outcome.results.get(lab.slug), {
          expected: outcome.expected.get(lab.slug),
          problems: outcome.problems.get(lab.slug),
        })
      : gradeLab(lab, undefined),
  );
  console.log(`\n${scoreTable(grades, locale)}`);
  const details = failureDetails(grades);
  if (details) console.log(`\nwhat is still missing:\n${details}`);
  // A test waiting for something the exercise does not do yet fails only at the time limit: say so, and how to
  // get faster (less patient) feedback.
  const timedOutIn = (g: LabGrade) =>
    g.tests.filter((t) => /Test timed out in \d+ms/.test(t.error ?? '')).length;
  const timedOut = grades.reduce((n, g) => n + timedOutIn(g), 0);
  if (timedOut) {
    const ids = grades
      .filter((g) => timedOutIn(g) > 0)
      .map((g) => g.lab.id)
      .join(' ');
    const again = values.dir === undefined ? '' : ` --dir ${values.dir}`;
    console.log(
      `\n${timedOut} test(s) waited until the time limit for something the code does not do yet; for quicker feedback: npm run grade ${ids} --${again} --timeout 3000`,
    );
  }
  const notStarted = grades.filter((g) => g.status === 'not started');
  if (notStarted.length)
    console.log(`\nnot started: ${notStarted.map((g) => `npm run exercise ${g.lab.id}`).join(', ')}`);
  if (outcome?.leftovers)
    console.log(
      `\nnote: ${outcome.leftovers} process(es) started during the tests were still running afterwards (a lab's children, detached ones included); all were killed`,
    );
  // The verdict that is not a score: one line per lab whose results are incomplete, last, where it is seen.
  const broken = grades.filter((g) => g.status === 'error');
  for (const g of broken)
    console.error(`error: lab ${g.lab.id} could not be graded completely: ${g.problems.join('; ')}`);
  if (broken.length && outcome && !outcome.stoppedBy) {
    const said = outcome.otherOutput.slice(-10);
    if (said.length) console.error(`vitest's last words:\n${said.map((l) => `  ${l}`).join('\n')}`);
  }
  return { grades, outcome };
}

function writeReport({ grades, outcome }: Graded, to: string): void {
  const problems = outcome?.stoppedBy ? [`stopped by ${outcome.stoppedBy}`] : [];
  try {
    fs.mkdirSync(to, { recursive: true });
    fs.writeFileSync(
      path.join(to, 'grade.json'),
      `${JSON.stringify(jsonSummary(grades, { problems }), null, 2)}\n`,
    );
    fs.writeFileSync(path.join(to, 'junit.xml'), junitXml(grades));
  } catch (err) {
    fail(`--report ${to}: ${(err as Error).message}`, exit.error);
  }
  console.log(`\nreport: ${path.join(to, 'grade.json')} and ${path.join(to, 'junit.xml')}`);
}

const codeFor = ({ grades, outcome }: Graded): number => {
  if (outcome?.stoppedBy) return 128 + (constants.signals[outcome.stoppedBy] ?? 1);
  return exit[overallStatus(grades)];
};

if (!values.watch) {
  const graded = await gradeOnce();
  if (values.report !== undefined) writeReport(graded, values.report);
  process.exit(codeFor(graded));
} else {
  const lab = chosen[0] as Lab;
  const file = exerciseFile(root, lab, dir);
  let running: Promise<unknown> | undefined;
  let again = false;
  let announced = false;
  let quitting = false;
  let pending: NodeJS.Timeout | undefined;
  const regrade = async () => {
    if (running) {
      again = true;
      return;
    }
    running = gradeOnce();
    await running;
    running = undefined;
    announced = false;
    if (quitting) process.exit(0);
    // The next run gets ready now, while the learner reads and edits.
    if (started(lab)) spare = prepareRun(runOptions([lab]), true);
    if (again) {
      again = false;
      console.log(`\n── grading… (${rel(lab)} changed during the run) ──`);
      announced = true;
      void regrade();
      return;
    }
    console.log(`\nwatching ${rel(lab)}: save it to grade again, Ctrl-C to stop`);
  };
  // Watch the folder, not the file: editors often save by writing a new file and renaming it over the old one.
  fs.watch(path.dirname(file), (_event, name) => {
    if (name !== path.basename(file)) return;
    // Said at once, on the first event of a save; the run itself waits for the save's last write (a save can
    // be several writes and a rename, a few ms apart).
    if (!announced && !running) {
      announced = true;
      console.log(`\n── ${new Date().toLocaleTimeString()} grading… (${rel(lab)} changed) ──`);
    }
    clearTimeout(pending);
    pending = setTimeout(() => void regrade(), 40);
  });
  // Ctrl-C while idle ends at once; during a run the run ends first (its whole process tree), then the watcher.
  const quit = () => {
    quitting = true;
    if (running) return;
    void (spare?.dispose() ?? Promise.resolve()).then(() => process.exit(0));
  };
  process.on('SIGINT', quit);
  process.on('SIGTERM', quit);
  await regrade();
}
