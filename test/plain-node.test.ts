// On Node ≥ 22.18 (and 23.6 on) node runs a .ts file itself, by type stripping: every lab must run that way, as
// `node labs/NN-slug.ts`, with no tsx. The lab tests also run each lab with plain node on such a Node
// (test/helpers/lab.ts: the workbook's own files), so every demo and role is covered; this is the short proof.
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { labs } from '../labs/index.ts';
import { root } from './helpers/lab.ts';

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const strips = major > 22 || (major === 22 && minor >= 18);
const noStripping = strips
  ? undefined
  : `Node ${process.versions.node} cannot run .ts files by itself (type stripping: Node 22.18 and later)`;
if (noStripping) console.log(`plain node: skipped: ${noStripping}`);

describe.skipIf(noStripping !== undefined).concurrent('every lab runs as plain node, without tsx', () => {
  for (const lab of labs) {
    it(`node labs/${lab.slug}.ts --help prints its usage and exits 0`, async () => {
      const run = await execa(
        process.execPath,
        ['--throw-deprecation', path.join('labs', `${lab.slug}.ts`), '--help'],
        { cwd: root, reject: false, timeout: 20_000, env: { NO_COLOR: '1', FORCE_COLOR: '0' } },
      );
      expect(run.stderr, run.stdout).toBe('');
      expect(run.exitCode, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/usage|用法/i);
    });
  }
});
