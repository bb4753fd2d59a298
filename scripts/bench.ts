// npm run bench 06: runs scripts/bench/<slug>.ts, a benchmark that belongs to a chapter (a script, not a test).
import fs from 'node:fs';
import path from 'node:path';
import { runForwarding } from './lib/child.ts';
import { fail, labOrFail } from './lib/cli.ts';
import { labs, root } from './lib/workbook.ts';

const benchFile = (slug: string) => path.join(root, 'scripts/bench', `${slug}.ts`);
const available = labs.filter((l) => fs.existsSync(benchFile(l.slug))).map((l) => l.id);
const [wanted, ...rest] = process.argv.slice(2);

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
