// npm run lab            lists the labs
// npm run lab 07 [role] [-- --flags]   runs one with this Node (tsx), passing the rest of the arguments through.
import path from 'node:path';
import { runForwarding } from './lib/child.ts';
import { parseCli } from './lib/cli.ts';
import { labOrFail } from './lib/registry.ts';
import { table } from './lib/table.ts';
import { labs, root } from './lib/workbook.ts';

// Everything after the lab's name is the lab's own (its role and flags, which the lab parses itself).
const argv = process.argv.slice(2);
const at = argv.findIndex((a) => !a.startsWith('-'));
const rest = at < 0 ? [] : argv.slice(at + 1);
const { positionals } = parseCli(
  {
    command: 'lab',
    args: '[NN [role] [-- FLAGS of the lab]]',
    about: [
      'no NN: the list of labs',
      'NN: runs the lab with this Node (its demo, or the role given); the flags after the role are the lab’s',
      '(npm run lab NN -- --help lists them)',
    ],
    flags: {},
    positionals: { max: 1 },
  },
  at < 0 ? argv : argv.slice(0, at + 1),
);
const wanted = positionals[0];

if (wanted === undefined) {
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
