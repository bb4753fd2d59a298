// npm run lab            lists the labs
// npm run lab 07 [role] [-- --flags]   runs one with this Node (tsx), passing the rest of the arguments through.
import path from 'node:path';
import { runForwarding } from './lib/child.ts';
import { labOrFail } from './lib/cli.ts';
import { table } from './lib/table.ts';
import { labs, root } from './lib/workbook.ts';

const [wanted, ...rest] = process.argv.slice(2);

if (wanted === undefined || wanted === '--help' || wanted === '-h') {
  console.log(
    table(
      ['id', '中文', 'English', 'roles'],
      labs.map((l) => [l.id, l.title.zh, l.title.en, l.roles.join(', ')]),
    ),
  );
  console.log('\nrun one:   npm run lab 01            (its demo: starts everything itself, then exits)');
  console.log(
    '           npm run lab 01 server     (a role; then e.g. `nc 127.0.0.1 8124` in another terminal)',
  );
  console.log('           npm run lab 01 server -- --port 9000   (flags go after --)');
  process.exit(0);
}

const slug = labOrFail(wanted).slug;

runForwarding(path.join(root, 'labs', `${slug}.ts`), rest);
