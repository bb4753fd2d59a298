// npm run hint NN [region] [-- --all]: the hints from labs/index.ts, one more each time you ask (or all at once).
// How many you have seen is kept in exercises/.hints.json, beside your exercise files.
import fs from 'node:fs';
import path from 'node:path';
import { fail, labOrFail, parseCli } from './lib/cli.ts';
import { exercisesDirName } from './lib/exercises.ts';
import { root } from './lib/workbook.ts';

const { values, positionals } = parseCli('hint', { all: { type: 'boolean' }, dir: { type: 'string' } });
if (values.help || positionals.length === 0) {
  console.log(`usage: npm run hint NN [region] [-- --all]
  each call shows one more hint for every exercise of lab NN (or only for the region named)
  --all   every hint at once`);
  process.exit(values.help ? 0 : 2);
}
const lab = labOrFail(positionals[0] as string, { withExercises: true });
const region = positionals[1];
const exercises = region === undefined ? lab.exercises : lab.exercises.filter((e) => e.region === region);
if (exercises.length === 0) {
  fail(
    `lab ${lab.id} has no exercise '${region}'; its exercises: ${lab.exercises.map((e) => e.region).join(', ')}`,
  );
}

const dir = path.resolve(root, typeof values.dir === 'string' ? values.dir : exercisesDirName);
const stateFile = path.join(dir, '.hints.json');
let seen: Record<string, number> = {};
try {
  seen = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
} catch {
  // No hints seen yet (or an unreadable file, which only costs a repeated hint).
}

for (const ex of exercises) {
  const key = `${lab.id}/${ex.region}`;
  const shown = values.all ? ex.hints.length : Math.min((seen[key] ?? 0) + 1, ex.hints.length);
  seen[key] = Math.max(seen[key] ?? 0, shown);
  console.log(`lab ${lab.id}, exercise '${ex.region}': ${ex.task.en}`);
  console.log(`${' '.repeat(`lab ${lab.id}, exercise '${ex.region}'`.length)}  ${ex.task.zh}`);
  ex.hints.slice(0, shown).forEach((h, i) => {
    console.log(`  hint ${i + 1}/${ex.hints.length}: ${h.en}`);
    console.log(`  提示 ${i + 1}/${ex.hints.length}：${h.zh}`);
  });
  if (shown < ex.hints.length) console.log(`  (npm run hint ${lab.id} again for the next one)`);
  console.log('');
}
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(stateFile, `${JSON.stringify(seen, null, 2)}\n`);
