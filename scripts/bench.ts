// npm run bench 06: runs scripts/bench/<slug>.ts, a benchmark that belongs to a chapter (a script, not a test).
import fs from 'node:fs';
import path from 'node:path';
import { runForwarding } from './lib/child.ts';
import { fail, parseCli } from './lib/cli.ts';
import { labOrFail } from './lib/registry.ts';
import { labs, root } from './lib/workbook.ts';

const benchFile = (slug: string) => path.join(root, 'scripts/bench', `${slug}.ts`);
const available = labs.filter((l) => fs.existsSync(benchFile(l.slug))).map((l) => l.id);
// Everything after the lab's name belongs to its benchmark, which checks it (npm run bench 09 -- --help).
const argv = process.argv.slice(2);
const at = argv.findIndex((a) => !a.startsWith('-'));
const rest = at < 0 ? [] : argv.slice(at + 1);
const wanted = parseCli(
  {
    command: 'bench',
    args: '[NN [-- FLAGS of the benchmark]]',
    about: [
      `no NN: the list of benchmarks (${available.join(', ') || 'none yet'})`,
      'NN: runs that chapter’s benchmark (npm run bench NN -- --help lists its flags)',
    ],
    flags: {},
    positionals: { max: 1 },
  },
  at < 0 ? argv : argv.slice(0, at + 1),
).positionals[0];

if (wanted === undefined) {
  console.log(
    `benchmarks: ${available.length ? available.map((id) => `npm run bench ${id}`).join(', ') : 'none yet'}`,
  );
  process.exit(0);
}
const slug = labOrFail(wanted).slug;
if (!fs.existsSync(benchFile(slug))) {
  fail(`lab ${slug} has no benchmark; these do: ${available.join(', ') || 'none yet'}`);
}
runForwarding(benchFile(slug), rest);
