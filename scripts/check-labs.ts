// npm run check:labs: the registry, the labs, the pages, their twins and the tests must agree.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLabs } from './lib/check-labs.ts';
import { parseCli } from './lib/cli.ts';

parseCli({
  command: 'check:labs',
  about: ['checks that labs/index.ts, labs/, docs/, docs/en/ and test/ agree'],
  flags: {},
  positionals: { max: 0 },
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const problems = checkLabs(root);
for (const p of problems) console.error(`✗ ${p}`);
if (problems.length) process.exit(1);
console.log('✓ labs/index.ts, labs/, docs/, docs/en/ and test/ agree');
