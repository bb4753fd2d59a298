// Every transcript a page imports (docs/transcripts/NN-slug/NAME.txt) is what the lab prints today:
// each recorded command runs again and its output is compared with the file after masking what varies.
// Transcripts run concurrently, except those of one `group`, which take turns (a multicast receiver of one
// would hear another's datagrams).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Transcript } from '../scripts/lib/transcript.ts';
import {
  compare,
  parseFile,
  referenceMajor,
  referenceNode,
  refreshCommand,
  render,
  runTranscript,
  skipReason,
  transcriptFile,
} from '../scripts/lib/transcript.ts';
import { transcripts } from '../scripts/transcripts.ts';

const node = referenceNode();
const byLab = new Map<string, typeof transcripts>();
for (const t of transcripts) {
  const key = t.group ?? `${t.lab}/${t.name}`;
  byLab.set(key, [...(byLab.get(key) ?? []), t]);
}

describe.skipIf(!node)(`transcripts (recorded on Node ${referenceMajor})`, () => {
  for (const [key, list] of byLab) {
    const name = `${list.length > 1 ? `the ${key} transcripts are` : `transcript ${key} is`} what the lab prints today`;
    const skipAll = list.every((t) => skipReason(t));
    if (skipAll) {
      it.skip(`${name} (skipped: ${list.map((t) => skipReason(t)).join('; ')})`, () => {});
      continue;
    }
    it.concurrent(name, { timeout: 30_000 }, async () => {
      const problems: string[] = [];
      for (const t of list) {
        const file = transcriptFile(t);
        const why = skipReason(t);
        if (why) {
          console.log(`skipped ${t.lab}/${t.name}: ${why}`);
          continue;
        }
        if (!fs.existsSync(file)) {
          problems.push(`${file} is missing: record it with \`${refreshCommand(t)}\``);
          continue;
        }
        const recorded = parseFile(fs.readFileSync(file, 'utf8'));
        if (recorded.command !== t.show)
          problems.push(
            `${t.lab}/${t.name}: the file shows \`${recorded.command}\`, the table runs \`${t.show}\`: run \`${refreshCommand(t)}\``,
          );
        const fresh = await runTranscript(t, { node: (node as { bin: string }).bin, asTyped: false });
        const diff = compare(t, recorded.lines, fresh);
        if (diff)
          problems.push(
            `transcript ${t.lab}/${t.name} (\`${t.show}\`) no longer matches ${file.slice(file.indexOf('docs/'))}:\n${diff}\nIf the lab's output changed on purpose, refresh it: ${refreshCommand(t)}`,
          );
      }
      expect(problems.join('\n\n')).toBe('');
    });
  }
});

if (!node) {
  it.skip(`transcripts: no Node ${referenceMajor} here (set REFERENCE_NODE), so they are not compared`, () => {});
}

describe('comparing a transcript', () => {
  const t: Transcript = { lab: '01', name: 'demo', show: 'npm run lab 01' };
  const recorded = [
    '[server] listening on 127.0.0.1:38551',
    '[client] connected: tcp 127.0.0.1:54330 -> 127.0.0.1:38551',
    '[server] connection from 127.0.0.1:54330 at 10:54:46.083',
  ];

  it('ignores ports and clock times, and the interleaving of different actors', () => {
    const fresh = [
      '[server] listening on 127.0.0.1:40001',
      '[server] connection from 127.0.0.1:40002 at 23:01:02.003',
      '[client] connected: tcp 127.0.0.1:40002 -> 127.0.0.1:40001',
    ];
    expect(compare(t, recorded, fresh)).toBeUndefined();
  });

  it('names the actor, the line, and both texts when a word changed', () => {
    const fresh = [...recorded];
    fresh[2] = '[server] connection from 127.0.0.1:54330 at 10:54:46.083 (new)';
    expect(compare(t, recorded, fresh)).toBe(
      [
        "[server]'s line 2 differs:",
        '  recorded: [server] connection from 127.0.0.1:PORT at HH:MM:SS',
        '  now:      [server] connection from 127.0.0.1:PORT at HH:MM:SS (new)',
      ].join('\n'),
    );
  });

  it("fails when a line is missing or one actor's lines come in another order", () => {
    expect(compare(t, recorded, recorded.slice(0, 2))).toMatch(/printed less/);
    expect(compare(t, recorded, [recorded[2], recorded[1], recorded[0]] as string[])).toMatch(
      /\[server\]'s line 1 differs/,
    );
  });

  it('reads back what it writes: the command line, the root/slow header, the output', () => {
    const slow: Transcript = { ...t, root: 'a namespace', slow: 'about 15 s' };
    const text = render(slow, ['[a] one', '[b] two', ''], 'v24.0.0');
    expect(text).toMatch(
      /^\$ npm run lab 01\n# recorded on Node v24\.0\.0 as root \(load [\d.]+ on \d+ cores\); slow: about 15 s\n\[a\] one\n\[b\] two\n$/,
    );
    expect(parseFile(text)).toEqual({ command: 'npm run lab 01', lines: ['[a] one', '[b] two'] });
  });
});
