// The proof that the broadcast and multicast labs need no real network: their demos run inside a fresh
// network namespace whose only interface is lo, and print the same timeline there as on this host.
// Needs Linux, root and iproute2 (`ip netns`), and tcpdump for the captures; elsewhere the tests are skipped
// with the reason printed.
import { randomInt, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { describe, expect, it, onTestFinished } from 'vitest';
import { offLoopback, parsePcap } from '../scripts/lib/pcap.ts';
import { hasTool } from '../scripts/lib/transcript.ts';
import { findLab, root } from './helpers/lab.ts';
import { netnsUnavailable } from './helpers/netns.ts';

/** The reference lab's file, or why it cannot run yet (chapters are written at the same time). */
function labFileOrReason(id: string): { file: string } | { reason: string } {
  let slug: string;
  try {
    slug = findLab(id).slug;
  } catch {
    return { reason: `lab ${id} has no entry in labs/index.ts yet` };
  }
  const file = path.join(root, 'labs', `${slug}.ts`);
  return fs.existsSync(file) ? { file } : { reason: `labs/${slug}.ts does not exist yet` };
}

/** Ports, addresses and times vary from run to run; what a line says does not. Order too may vary a little
 * (two receivers print in either order), so compare the sorted lines. */
function timeline(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.replace(/\d+/g, 'N'))
    .sort();
}

const noNetns = netnsUnavailable();
if (noNetns) console.log(`loopback-only: skipped: ${noNetns}`);

// Concurrent: each test has a namespace of its own (a random name), and cleanup is tied to its context.
describe.concurrent('nothing leaves the machine', () => {
  for (const id of ['11', '12']) {
    const lab = labFileOrReason(id);
    const skip = noNetns ?? ('reason' in lab ? lab.reason : undefined);
    if (skip && !noNetns) console.log(`loopback-only: lab ${id} skipped: ${skip}`);

    it.skipIf(skip !== undefined)(
      `lab ${id}'s demo exits 0 with its usual timeline inside a network namespace that has only lo up`,
      async (t) => {
        if (!('file' in lab)) throw new Error('unreachable: skipped above');
        const ns = `nnw-${id}-${process.pid}-${randomUUID().slice(0, 8)}`;
        const children: ResultPromise[] = [];
        await execa('ip', ['netns', 'add', ns]);
        // Runs on timeout too: kill the demos first, then remove the namespace.
        t.onTestFinished(async () => {
          for (const child of children) child.kill('SIGKILL');
          await execa('ip', ['netns', 'del', ns], { reject: false });
        });
        try {
          await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
          // The namespace has lo and nothing else: no card, no route out.
          const links = await execa('ip', ['-n', ns, '-o', 'link', 'show']);
          expect(links.stdout.split('\n').map((l) => l.split(':')[1]?.trim())).toEqual(['lo']);
          expect((await execa('ip', ['-n', ns, '-4', 'route', 'show'])).stdout).toBe('');

          // Lab 12 on the host shares its group with every other multicast test running there: one that is a
          // member keeps lo in the group, and the demo rightly reports the extra datagram. A group of this run's own
          // (the timeline has no numbers) keeps the host's run the usual one.
          const own = id === '12' ? ['--host', `239.255.${1 + randomInt(250)}.${1 + randomInt(250)}`] : [];
          const node = [process.execPath, '--import', 'tsx', '--throw-deprecation', lab.file, ...own];
          const options = { cwd: root, reject: false, env: { FORCE_COLOR: '0', NO_COLOR: '1' } } as const;
          const inside = execa('ip', ['netns', 'exec', ns, ...node], options);
          const onHost = execa(node[0] as string, node.slice(1), options);
          children.push(inside, onHost);
          const [there, here] = await Promise.all([inside, onHost]);

          expect(there.stderr, there.stdout).toBe('');
          expect(there.exitCode, there.stdout).toBe(0);
          expect(here.exitCode, here.stderr).toBe(0);
          expect(there.stdout.split('\n').length).toBeGreaterThan(3);
          expect(timeline(there.stdout)).toEqual(timeline(here.stdout));
        } finally {
          await execa('ip', ['netns', 'del', ns], { reject: false });
        }
      },
    );
  }
});

// The same proof on the wire: `npm run capture 11` and `capture 12` inside a namespace that has only lo up
// record every packet there, and every one of them passes the loopback rule (scripts/lib/pcap.ts offLoopback:
// sources in 127/8 or ::1, IGMP reports from 0.0.0.0; destinations in 127/8 or ::1, UDP to 239.255/16, IGMP
// to 224.0.0/24 or 239.255/16).
const noTcpdump = noNetns ?? (hasTool('tcpdump') ? undefined : 'tcpdump is not installed');
if (noTcpdump && !noNetns) console.log(`loopback-only: captures skipped: ${noTcpdump}`);

describe('nothing leaves the machine, packet by packet', () => {
  for (const id of ['11', '12']) {
    it.skipIf(noTcpdump !== undefined)(
      `npm run capture ${id} inside a namespace with only lo: every packet captured there is loopback`,
      async () => {
        const ns = `nnw-cap-${id}-${process.pid}-${randomUUID().slice(0, 8)}`;
        const out = fs.mkdtempSync(path.join(os.tmpdir(), `loopback-capture-${id}-`));
        await execa('ip', ['netns', 'add', ns]);
        onTestFinished(async () => {
          await execa('ip', ['netns', 'del', ns], { reject: false });
          fs.rmSync(out, { recursive: true, force: true });
        });
        await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        const links = await execa('ip', ['-n', ns, '-o', 'link', 'show']);
        expect(links.stdout.split('\n').map((l) => l.split(':')[1]?.trim())).toEqual(['lo']);
        // --in-namespace: capture this namespace's lo as it is, keeping every packet (no port filter).
        const run = await execa(
          'ip',
          [
            'netns',
            'exec',
            ns,
            process.execPath,
            '--import',
            'tsx',
            'scripts/capture.ts',
            id,
            '--in-namespace',
            '--out',
            out,
          ],
          { cwd: root, reject: false },
        );
        expect(run.exitCode, run.stderr).toBe(0);
        const slug = findLab(id).slug;
        const { packets } = parsePcap(new Uint8Array(fs.readFileSync(path.join(out, `${slug}.pcap`))));
        expect(packets.filter((p) => p.proto === 'udp').length).toBeGreaterThanOrEqual(4);
        if (id === '12') expect(packets.some((p) => p.proto === 'igmp')).toBe(true);
        expect(offLoopback(packets)).toEqual([]);
      },
      60_000,
    );
  }
});
