// Every transcript a page imports (docs/transcripts/NN-slug/NAME.txt) is what the lab prints today:
// each recorded command runs again and its output is compared with the file after masking what varies.
// Transcripts run concurrently, except those of one `group`, which take turns (a multicast receiver of one
// would hear another's datagrams).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  compare,
  parseFile,
  referenceMajor,
  referenceNode,
  refreshCommand,
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
