// npm run hint NN [region] [-- --all]: the hints from labs/index.ts, one more each time you ask (or all at once).
// How many you have seen is kept in exercises/.hints.json, beside your exercise files.
import fs from 'node:fs';
import path from 'node:path';
import { fail, langFlag, languages, parseCli } from './lib/cli.ts';
import { exercisesDirName } from './lib/exercises.ts';
import { labOrFail } from './lib/registry.ts';
import { root } from './lib/workbook.ts';

const { values, positionals } = parseCli({
  command: 'hint',
  args: 'NN [region]',
  about: ['each call shows one more hint for every exercise of lab NN (or only for the region named)'],
  flags: {
    all: { type: 'boolean', help: 'every hint at once' },
    dir: {
      type: 'string',
      value: 'DIR',
      help: `the exercise folder whose .hints.json counts the hints seen (default ${exercisesDirName}/)`,
    },
    lang: langFlag,
  },
  positionals: { min: 1, max: 2 },
});
const lab = labOrFail(positionals[0] as string, { withExercises: true });
const region = positionals[1];
const exercises = region === undefined ? lab.exercises : lab.exercises.filter((e) => e.region === region);
if (exercises.length === 0) {
  fail(
    `lab ${lab.id} has no exercise '${region}'; its exercises: ${lab.exercises.map((e) => e.region).join(', ')}`,
  );
}

const dir = path.resolve(root, values.dir ?? exercisesDirName);
if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory())
  fail(`--dir ${values.dir}: it is a file, not a folder`);
const stateFile = path.join(dir, '.hints.json');
let seen: Record<string, number> = {};
try {
  seen = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
} catch {
  // No hints seen yet (or an unreadable file, which only costs a repeated hint).
}

const langs = languages(values.lang);
const word = { en: 'hint', zh: '提示' } as const;
const colon = { en: ': ', zh: '：' } as const;
for (const ex of exercises) {
  const key = `${lab.id}/${ex.region}`;
  const shown = values.all ? ex.hints.length : Math.min((seen[key] ?? 0) + 1, ex.hints.length);
  seen[key] = Math.max(seen[key] ?? 0, shown);
  const head = `lab ${lab.id}, exercise '${ex.region}'`;
  langs.forEach((l, i) => {
    console.log(`${i === 0 ? `${head}:` : ' '.repeat(head.length)} ${ex.task[l]}`);
  });
  ex.hints.slice(0, shown).forEach((h, i) => {
    for (const l of langs) console.log(`  ${word[l]} ${i + 1}/${ex.hints.length}${colon[l]}${h[l]}`);
  });
  if (shown < ex.hints.length) console.log(`  (npm run hint ${lab.id} again for the next one)`);
  console.log('');
}
// Counting the hints seen is a convenience: a folder that cannot take the file costs a repeated hint, not the hint.
try {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(stateFile, `${JSON.stringify(seen, null, 2)}\n`);
} catch (err) {
  console.error(
    `note: could not keep count of the hints seen in ${stateFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); the next call shows the same hints`,
  );
}
