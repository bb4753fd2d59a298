// npm run exercise NN [-- --reset]: writes exercises/NN-slug.ts, the lab with its exercise parts left to you.
// It never overwrites your work: --reset first moves the old file to a timestamped backup beside it.
import fs from 'node:fs';
import path from 'node:path';
import { fail, labOrFail, parseCli } from './lib/cli.ts';
import { backupName, exerciseFile, exercisesDirName, labsPathFrom, makeStarter } from './lib/exercises.ts';
import { root } from './lib/workbook.ts';

const { values, positionals } = parseCli('exercise', { reset: { type: 'boolean' }, dir: { type: 'string' } });
if (values.help || positionals.length === 0) {
  console.log(`usage: npm run exercise NN [-- --reset]
  writes ${exercisesDirName}/NN-slug.ts: the lab with each exercise part replaced by a TODO
  --reset   start over: the old file is first moved to a timestamped backup beside it`);
  process.exit(values.help ? 0 : 2);
}
if (positionals.length > 1) fail(`one lab at a time, got: ${positionals.join(' ')}`);

const lab = labOrFail(positionals[0] as string, { withExercises: true });

const dir = typeof values.dir === 'string' ? values.dir : exercisesDirName;
const target = exerciseFile(root, lab, dir);
const shown = path.relative(process.cwd(), target) || target;

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

const source = fs.readFileSync(path.join(root, 'labs', `${lab.slug}.ts`), 'utf8');
fs.mkdirSync(path.dirname(target), { recursive: true });
// 'wx' fails instead of overwriting, should the file appear between the check above and now.
fs.writeFileSync(target, makeStarter(source, lab, undefined, labsPathFrom(root, path.dirname(target))), {
  flag: 'wx',
});
console.log(`wrote ${shown}: lab ${lab.id} ${lab.title.en} / ${lab.title.zh}`);
console.log('your part (each is a // TODO inside a // #region exercise-… block):');
for (const ex of lab.exercises)
  console.log(`  ${ex.region}: ${ex.task.en}\n  ${' '.repeat(ex.region.length)}  ${ex.task.zh}`);
console.log(
  `next: edit it, then npm run grade ${lab.id} (or npm run grade ${lab.id} -- --watch); stuck? npm run hint ${lab.id}`,
);
