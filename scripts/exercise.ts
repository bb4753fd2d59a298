// npm run exercise NN [-- --reset]: writes exercises/NN-slug.ts, the lab with its exercise parts left to you.
// It never overwrites your work: --reset first moves the old file to a timestamped backup beside it. It never
// touches the reference: a target that is (or resolves to) the lab's own source is refused.
import fs from 'node:fs';
import path from 'node:path';
import { fail, langFlag, languages, parseCli } from './lib/cli.ts';
import {
  backupName,
  cannotWriteIn,
  ensureEsm,
  exerciseFile,
  exercisesDirName,
  labsPathFrom,
  makeStarter,
  sameFile,
} from './lib/exercises.ts';
import { labOrFail } from './lib/registry.ts';
import { root } from './lib/workbook.ts';

const { values, positionals } = parseCli({
  command: 'exercise',
  args: 'NN',
  about: [`writes ${exercisesDirName}/NN-slug.ts: the lab with each exercise part replaced by a TODO`],
  flags: {
    reset: {
      type: 'boolean',
      help: 'start over: the old file is first moved to a timestamped backup beside it',
    },
    dir: {
      type: 'string',
      value: 'DIR',
      help: `write it in DIR instead of ${exercisesDirName}/ (any folder; relative to the workbook)`,
    },
    lang: langFlag,
  },
  positionals: { min: 1, max: 1 },
});

const lab = labOrFail(positionals[0] as string, { withExercises: true });
const dir = values.dir ?? exercisesDirName;
const target = exerciseFile(root, lab, dir);
const shown = path.relative(process.cwd(), target) || target;
const reference = path.join(root, 'labs', `${lab.slug}.ts`);

// The reference itself is never a target: --reset would move the lab away, and nothing would be left to copy.
if (sameFile(target, reference) || sameFile(path.resolve(root, dir), path.join(root, 'labs')))
  fail(
    `--dir ${dir} is where the reference labs live; an exercise is written anywhere else (default ${exercisesDirName}/)`,
  );
// Read before anything is moved or written: if it cannot be read, nothing has changed.
const source = fs.readFileSync(reference, 'utf8');
const why = cannotWriteIn(path.dirname(target));
if (why) fail(`--dir ${dir}: cannot write the exercise there (${why})`);

if (fs.existsSync(target)) {
  if (!values.reset) {
    fail(
      `${shown} already exists, so it was left as it is. Keep going with npm run grade ${lab.id}, or start over with npm run exercise ${lab.id} -- --reset (your file is backed up first)`,
      1,
    );
  }
  const backup = backupName(target);
  fs.renameSync(target, backup);
  console.log(`moved your old file to ${path.relative(process.cwd(), backup) || backup}`);
}

const starter = makeStarter(source, lab, undefined, labsPathFrom(root, path.dirname(target)));
// 'wx' fails instead of overwriting, should the file appear between the check above and now.
fs.writeFileSync(target, starter, { flag: 'wx' });
const esm = ensureEsm(path.dirname(target));
console.log(
  `wrote ${shown}: lab ${lab.id} ${languages(values.lang)
    .map((l) => lab.title[l])
    .join(' / ')}`,
);
if (esm) console.log(`wrote ${esm} ({"type": "module"}: the files there are ES modules, as in the workbook)`);
console.log('your part (each is a // TODO inside a // #region exercise-… block):');
for (const ex of lab.exercises) {
  const [first, ...others] = languages(values.lang).map((l) => ex.task[l]);
  console.log(`  ${ex.region}: ${first}`);
  for (const text of others) console.log(`  ${' '.repeat(ex.region.length)}  ${text}`);
}
const flags = values.dir === undefined ? '' : ` -- --dir ${values.dir}`;
console.log(
  `next: edit it, then npm run grade ${lab.id}${flags} (add ${flags ? '' : '-- '}--watch to re-grade on every save); stuck? npm run hint ${lab.id}${flags}`,
);
