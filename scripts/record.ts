// npm run record [NN…] [-- --check | --force]
// Runs every transcript of scripts/transcripts.ts (or lab NN's) on Node 24 and writes
// docs/transcripts/NN-slug/NAME.txt (a file whose output differs only in masked ports and times is left as it
// is, unless --force: a benchmark re-run on a quiet machine); with --check it writes nothing and says which
// ones drifted.
import fs from 'node:fs';
import path from 'node:path';
import { parseCli } from './lib/cli.ts';
import { labOrFail } from './lib/registry.ts';
import {
  compare,
  parseFile,
  referenceMajor,
  referenceNode,
  refreshCommand,
  render,
  root,
  runTranscript,
  skipReason,
  transcriptFile,
} from './lib/transcript.ts';
import { transcripts } from './transcripts.ts';

const { values, positionals: wanted } = parseCli({
  command: 'record',
  args: '[NN ...]',
  about: [
    "runs each transcript of scripts/transcripts.ts (or lab NN's) on the reference Node and writes docs/transcripts/",
  ],
  flags: {
    check: { type: 'boolean', help: 'write nothing; say which transcripts drifted (exit 1 if any)' },
    force: { type: 'boolean', help: 'rewrite even when only masked values (ports, times) differ' },
  },
});
const { check, force } = values;
const ids = wanted.map((w) => labOrFail(w).id);
const chosen = transcripts.filter((t) => ids.length === 0 || ids.includes(t.lab));

// Recorded on the reference Node only: a transcript written on another Node would fail the check on 24
// (and the pages say what Node 24 prints). This Node is used when it is 24, else /opt/node/24's.
const node = referenceNode();
if (!node) {
  console.error(
    `error: transcripts are recorded on Node ${referenceMajor}; this is ${process.version} and no Node ${referenceMajor} was found (set REFERENCE_NODE=/path/to/node${referenceMajor})`,
  );
  process.exit(1);
}
console.log(
  `${check ? 'checking' : 'recording'} ${chosen.length} transcript(s) on Node ${node.version} (${node.bin})`,
);

let failed = 0;
for (const t of chosen) {
  const file = transcriptFile(t);
  const rel = path.relative(root, file);
  if (t.root && process.getuid?.() !== 0) {
    console.log(`- ${rel}: skipped, needs root (${t.root})`);
    continue;
  }
  if (check) {
    const why = skipReason(t, { ...process.env, TRANSCRIPTS_SLOW: '1' });
    if (why) {
      console.log(`- ${rel}: skipped, ${why}`);
      continue;
    }
  }
  const started = Date.now();
  try {
    const lines = await runTranscript(t, { node: node.bin, asTyped: !check });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (check) {
      const recorded = fs.existsSync(file) ? parseFile(fs.readFileSync(file, 'utf8')).lines : [];
      const diff = compare(t, recorded, lines);
      if (diff) {
        failed++;
        console.log(`✗ ${rel} drifted (refresh: ${refreshCommand(t)}):\n${diff}`);
      } else console.log(`✓ ${rel} (${seconds} s)`);
    } else {
      // A file that differs only in what the masks hide (ports, times) is kept: re-recording everything
      // leaves a diff only where a lab's output really changed.
      const old = fs.existsSync(file) ? parseFile(fs.readFileSync(file, 'utf8')) : undefined;
      if (!force && old && old.command === t.show && !compare(t, old.lines, lines)) {
        console.log(`✓ ${rel}: unchanged (${seconds} s)`);
        continue;
      }
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, render(t, lines, node.version));
      console.log(`✓ ${rel}: ${old ? 'changed' : 'new'}, ${lines.length} lines (${seconds} s)`);
    }
  } catch (err) {
    failed++;
    console.log(`✗ ${rel}: ${(err as Error).message}`);
  }
}
if (failed) process.exit(1);
