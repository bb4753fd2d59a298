// npm run capture NN [role|session] [-- --out DIR]   capture a lab's packets on lo: DIR/NN-slug.pcap + .mmd
// npm run capture -- --all --pages                   regenerate every page's capture (docs/captures/, docs/public/captures/)
//
// Linux, root (or CAP_NET_RAW with --here), tcpdump. As root the run happens inside a fresh network namespace
// whose only interface is lo: every packet on that lo is the lab's own, so nothing else needs filtering and the
// fixed ports of a scripted session cannot collide. With --here (or without `ip netns`) it captures this host's
// lo and keeps the packets whose ports the lab printed (`listening on 127.0.0.1:P`, `from 127.0.0.1:P`, …).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { labs } from '../labs/index.ts';
import { fail } from './lib/cli.ts';
import { offLoopback, type Packet, parsePcap, writePcap } from './lib/pcap.ts';
import { conversation, conversations, type LabLine, sequenceDiagram, structure } from './lib/sequence.ts';
import { hasTool, runTranscript } from './lib/transcript.ts';
import { sessions } from './transcripts.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A picture on a page: which run, and which of its conversations (TCP connections, UDP flows, IGMP). */
export interface Scene {
  lab: string;
  name: string;
  /** The role and its flags, or a transcript session's name ('session:ss-backlog'); default the demo. */
  run?: string[];
  /** Indices into the run's conversations, in order of their first packet. */
  pick: (convs: readonly string[], packets: readonly Packet[]) => number[];
  /** What the structure test compares instead of `structure` (for a scene whose segment sizes vary). */
  essence?: (mmd: string) => string[];
  /** Of the picked packets, the ones the picture needs (after `pick`, before `limit`). */
  select?: (packets: readonly Packet[]) => readonly Packet[];
  /** Keep only the first N packets of what was picked (the page needs the start, not 64 MiB). */
  limit?: number;
  /**
   * Instead of the demo or a session: these roles, started in order; `{port}` is the port the first one
   * printed in its `listening on` line. They run until `until` holds for the packets captured so far (read
   * from the capture file as it grows: waiting for the packets themselves, not for a time), then get SIGINT.
   */
  procs?: string[][];
  until?: (packets: readonly Packet[]) => boolean;
  /** Type `text` into the stdin of `procs[proc]` once `when` holds for the packets captured so far (02: Enter
   * for the blocked server, once a SYN went unanswered). */
  press?: { proc: number; text: string; when: (packets: readonly Packet[]) => boolean };
  /**
   * Before each peer after the first (procs[2] on), wait until this holds for the packets captured so far;
   * `peers` is how many run already (02: each nc's handshake is done before the next nc sends its SYN).
   */
  before?: (packets: readonly Packet[], peers: number) => boolean;
  /** Notes without a port up to this many ms after the last packet (see sequenceDiagram's `after`). */
  after?: number;
  /** Only the printed lines that match become notes (a demo's lines of the part before may arrive late). */
  notes?: RegExp;
  /** The structure test compares bare ACKs too (keepalive probes are bare ACKs). */
  bareAcks?: boolean;
}

/** The conversations of this protocol (tcp, udp, icmp, igmp), by position among them. */
const of =
  (proto: string, ...i: number[]) =>
  (convs: readonly string[]) => {
    const idx = convs.map((c, k) => [c, k] as const).filter(([c]) => c.startsWith(proto));
    return i.map((n) => idx.at(n)?.[1]).filter((n): n is number => n !== undefined);
  };

const udp = (from: number, to?: number) => (convs: readonly string[]) =>
  convs
    .map((c, i) => [c, i] as const)
    .filter(([c]) => c.startsWith('udp'))
    .slice(from, to)
    .map(([, i]) => i);

/**
 * Nagle's algorithm, checked on a drawn exchange: a small segment of the burst leaves only when everything sent
 * before it is acknowledged (by the ACKs drawn before it). The first one is not judged: what came before the
 * burst is not drawn.
 */
export function nagleHeld(mmd: string): boolean {
  let acked = -1;
  let first = true;
  for (const line of structureLines(mmd)) {
    const ack = /^\s*P2->>P1: .*\back=(\d+)/.exec(line);
    if (ack) acked = Math.max(acked, Number(ack[1]));
    const data = /^\s*P1->>P2: .*\bseq=(\d+) .*\blen=(\d+) "b:/.exec(line);
    if (!data) continue;
    if (!first && acked < Number(data[1])) return false;
    first = false;
  }
  return !first;
}

export const scenes: readonly Scene[] = [
  // 02 part 1: the server's event loop is blocked for 1 s: the handshake is done long before 'connection'.
  {
    lab: '02',
    name: 'handshake',
    pick: of('tcp', 0),
    // Compared: the handshake, that its last ACK is on the wire before the server's JavaScript meets the
    // connection, and the server's FIN. Not what follows it: the demo destroys its clients once the server
    // process is gone, and once, on a loaded Node 20, the client's side answered with a RST too (how a
    // connection ends is part 3's subject).
    essence: (mmd) => {
      const shape = structure(mmd);
      const fin = shape.findIndex((s) => s.startsWith('P2>P1 FIN'));
      const lines = mmd.split('\n');
      const acked = lines.findIndex((l) => /^\s*P1->>P2: ACK seq=1 ack=1 /.test(l));
      const met = lines.findIndex((l) => l.includes('[server] connection from'));
      return [...shape.slice(0, fin + 1), `handshake done before 'connection': ${acked >= 0 && acked < met}`];
    },
  },
  // 02 part 2: 'hello' and FIN, with allowHalfOpen false (Node ends our side at 'end') and true (a reply).
  { lab: '02', name: 'half-close-default', pick: of('tcp', 3) },
  { lab: '02', name: 'half-close-allow', pick: of('tcp', 4) },
  // 02 part 3: the client closes first (TIME_WAIT on its side), then the server first.
  { lab: '02', name: 'client-closes-first', pick: of('tcp', 5) },
  { lab: '02', name: 'server-closes-first', pick: of('tcp', 6) },
  // 02 part 4: a backlog of 1 holds two connections; the third SYN is dropped (no SYN+ACK) while the server
  // is blocked, Enter unblocks it once that SYN is on the wire, and the client's retry ~1 s later is answered.
  {
    lab: '02',
    name: 'backlog-full',
    procs: [
      ['server', '--port', '0', '--backlog', '1', '--block', 'enter'],
      ['$', 'nc', '127.0.0.1', '{port}'],
      ['$', 'nc', '127.0.0.1', '{port}'],
      ['$', 'nc', '127.0.0.1', '{port}'],
    ],
    // One nc at a time: started together on a loaded machine, the second one's ACK once came after the third
    // one's SYN, which then found room in the queue, and no SYN was ever retried (the capture waited 30 s).
    before: (ps, peers) => handshakes(ps) >= peers,
    press: { proc: 0, text: '\n', when: (ps) => synsOf(ps, 'SYN') >= 3 },
    until: (ps) => {
      const answered = ps.map((p) => p.tcp?.flags).lastIndexOf('SYN,ACK');
      return (
        synRetries(ps) >= 1 &&
        synsOf(ps, 'SYN,ACK') >= 3 &&
        ps.slice(answered + 1).some((p) => p.tcp?.flags === 'ACK')
      );
    },
    pick: of('tcp', 0, 1, 2),
    // Three handshakes, one SYN retried: the SIGINT that ends the run is not the page's subject.
    limit: 10,
    // How many retries it takes (one, unless the machine is too busy to accept within the second) is the
    // clock's call: compared are the handshakes, and that the third needed a retry.
    essence: (mmd) => [
      ...structure(mmd).filter((_, i, all) => !(all[i] === all[i - 1] && all[i]?.endsWith(' SYN len=0'))),
      `SYN retried: ${structureLines(mmd).some((l) => l.includes('(retry,'))}`,
    ],
  },
  // 04 part 5: end(), destroy() and resetAndDestroy() after the same 5-byte exchange.
  { lab: '04', name: 'end', pick: of('tcp', 5) },
  { lab: '04', name: 'destroy', pick: of('tcp', 6) },
  { lab: '04', name: 'reset', pick: of('tcp', 7) },
  // 07: an idle connection with setKeepAlive(true, 1000) on the client: its probes and the server's ACKs.
  {
    lab: '07',
    name: 'keepalive',
    procs: [
      ['server', '--port', '0', '--idle', '0'],
      ['client', '--port', '{port}', '--keepalive', '1000'],
    ],
    until: (ps) => keepaliveProbes(ps) >= 2,
    pick: of('tcp', 0),
    // The handshake, the greeting and its ACK, two probes and their ACKs (not how SIGINT ends it).
    limit: 9,
    bareAcks: true,
  },
  // 05: a client floods a server that never reads (paused, waiting for "go"): the window shrinks to zero and
  // the sender probes it. From a few segments before the first zero window to the second probe's answer.
  {
    lab: '05',
    name: 'zero-window',
    procs: [
      ['server', '--port', '0'],
      ['client', '--port', '{port}', '--flood'],
    ],
    until: (ps) => keepaliveProbes(ps) >= 2,
    pick: of('tcp', 0),
    select: (ps) => {
      const zero = ps.findIndex((p) => p.tcp?.window === 0);
      const probes = ps.map((_, i) => keepaliveProbes(ps.slice(0, i + 1)));
      const done = probes.indexOf(2);
      // The handshake too: it carries the window scale and the first seq numbers.
      return zero < 0 || done < 0 ? ps : [...ps.slice(0, 3), ...ps.slice(Math.max(3, zero - 4), done + 1)];
    },
    // How the flood is cut into segments is the kernel's call; what must be there: the zero window, then
    // probes answered with a zero window again (consecutive repeats counted once).
    essence: (mmd) =>
      structureLines(mmd)
        .filter((l) => / win=0 |\(probe/.test(l))
        .map((l) => (/\(probe/.test(l) ? 'sender: probe' : 'receiver: win=0'))
        .filter((l, i, all) => l !== all[i - 1]),
  },
  // 09 has no Nagle step: what it has is framing, 'b:你好' written in two pieces that cut '你' after its
  // first byte, relayed to bob. From alice's first piece to the relay's ACK.
  {
    lab: '09',
    name: 'split-character',
    pick: of('tcp', 0, 1),
    select: (ps) => {
      const i = ps.findIndex((p) => p.payload[0] === 0x62 && p.payload[1] === 0x3a && p.payload[2] === 0xe4);
      const relay = ps.findIndex((p, k) => k > i && p.payload.includes(0xe4));
      return i < 0 || relay < 0 ? [] : ps.slice(i, relay + 1);
    },
  },
  // 09 --burst: ten 4-byte lines written in a row, with Nagle's algorithm (Node's default) and with noDelay.
  ...(['nagle', 'nodelay'] as const).map(
    (name): Scene => ({
      lab: '09',
      name,
      procs: [
        ['server', '--port', '0'],
        ['client', '--port', '{port}', '--burst', '10', ...(name === 'nagle' ? ['--nagle'] : [])],
      ],
      until: (ps) => burstAnswered(ps) > 0,
      pick: of('tcp', 0),
      // From the first line of the burst to the server's first segment after its last.
      select: (ps) => ps.slice(ps.findIndex(isBurstLine), burstAnswered(ps) + 1),
      // With Nagle, how many segments the ten writes become depends on when the ACKs come (on a loaded machine
      // each was ACKed before the next write, and ten segments were right); the rule itself does not: compared.
      essence: (mmd) => {
        const writes = structureLines(mmd).filter((l) => /"b:/.test(l)).length;
        return [name === 'nagle' ? `Nagle's rule held: ${nagleHeld(mmd)}` : `${writes} segments`];
      },
    }),
  ),
  // 13 part 1: three writes to a server that is not reading yet: three segments, one 'data' event.
  { lab: '13', name: 'three-writes', pick: of('tcp', 0) },
  // 13 part 2: one write of a 150004-byte frame: several segments (how many and how big is the kernel's call).
  {
    lab: '13',
    name: 'big-frame',
    pick: of('tcp', 1),
    notes: /150004 bytes|would be/,
    essence: (mmd) => {
      const sizes = structureLines(mmd)
        .map((l) => /^\s*P1->>P2: \S+ .*\blen=(\d+)/.exec(l)?.[1])
        .filter((n) => n !== undefined && n !== '0')
        .map(Number);
      const sum = sizes.reduce((a, b) => a + b, 0);
      return [`client: ${sum} bytes in ${sizes.length > 1 ? 'more than one segment' : 'one segment'}`];
    },
  },
  // 13 part 4: three frames in one write, one segment; the echo server answers each frame in its own write.
  { lab: '13', name: 'echo', pick: of('tcp', 3) },
  // 14: curl asks for two URLs on one keep-alive connection: request, response, request, response, FIN.
  {
    lab: '14',
    name: 'keep-alive',
    procs: [
      ['server', '--port', '0'],
      [
        '$',
        'curl',
        '-s',
        '-o',
        '/dev/null',
        '-o',
        '/dev/null',
        'http://127.0.0.1:{port}/',
        'http://127.0.0.1:{port}/nope',
      ],
    ],
    until: (ps) => ps.filter((p) => p.tcp?.flags.includes('FIN')).length >= 2,
    pick: of('tcp', 0),
    // Lengths follow curl's version (its User-Agent): compared are directions, flags and first words.
    essence: (mmd) => carried(mmd),
  },
  // 15: the opening handshake (GET with Upgrade, 101), then frames: masked from the client, plain from the
  // server; 7-bit and 16-bit lengths. From the SYN to the echo of the 126-byte frame.
  {
    lab: '15',
    name: 'upgrade',
    pick: of('tcp', 0),
    select: (ps) => ps.slice(0, ps.findIndex((p) => p.payload[0] === 0x82 && p.payload[1] === 126) + 1),
  },
  // 16 part 1: the TLS 1.3 handshake and the greeting echo, on the server's connection (the demo's client
  // talks through a relay that counts bytes). Part 5: a client that allows only TLS 1.2.
  { lab: '16', name: 'tls13', pick: of('tcp', 1), essence: (mmd) => tlsFlow(mmd) },
  { lab: '16', name: 'tls12', pick: of('tcp', 5), essence: (mmd) => tlsFlow(mmd) },
  // 11: three broadcasts to 127.255.255.255 and the unicast marker.
  { lab: '11', name: 'broadcast', pick: (c) => c.map((_, i) => i) },
  // 12: the IGMP reports and the datagrams to the group.
  {
    lab: '12',
    name: 'multicast',
    pick: (c) => c.map((_, i) => i),
    // The report that the last member left goes when the kernel's timer fires, maybe after the demo exits.
    until: (ps) =>
      ps
        .filter((p) => p.igmp)
        .at(-1)
        ?.igmp?.records.every((r) => r === 3) === true,
  },
  // 10: two datagrams and their echoes; three sends are three packets; the ICMP behind ECONNREFUSED.
  { lab: '10', name: 'echo', pick: udp(0, 1) },
  { lab: '10', name: 'boundaries', pick: (c) => [...udp(1, 2)(c), ...of('tcp', 0)(c)] },
  { lab: '10', name: 'unreachable', pick: udp(2, 4), after: 50 },
];

/** Per arrow (bare ACKs left out): direction, flags, and what the payload carries (TLS records, WebSocket
 * frames) or its first bytes; no lengths. For 16: a ClientHello is 378 bytes on Node 20, 1597 on Node 24
 * (its post-quantum key share), and the records are the same. */
export function carried(mmd: string): string[] {
  return structureLines(mmd)
    .map((l) => /^\s*(P\d+->>P\d+): (\S+) .*?\blen=(\d+)(?: (.*))?$/.exec(l))
    .filter((m) => m !== null && !(m[2] === 'ACK' && m[3] === '0'))
    .map((m) => {
      const [, dir, flags, , what = ''] = m as RegExpExecArray;
      return `${dir} ${flags} ${/^(TLS|WS):/.test(what) ? what : what.slice(0, 8)}`.trim();
    });
}

/** The TLS records each way, in order, however the writes were cut into segments: consecutive segments one
 * way are one flight ('P2->>P1 handshake ServerHello, change_cipher_spec, application_data ×7'). */
export function tlsFlow(mmd: string): string[] {
  const flights: { dir: string; records: string[] }[] = [];
  for (const line of carried(mmd)) {
    const m = /^(P\d+->>P\d+) \S+ TLS: (.*)$/.exec(line);
    if (!m) continue;
    const records = (m[2] as string).split(', ').flatMap((r) => {
      const n = / ×(\d+)$/.exec(r);
      return n ? Array(Number(n[1])).fill(r.slice(0, n.index)) : [r];
    });
    const last = flights.at(-1);
    if (last?.dir === m[1]) last.records.push(...records);
    else flights.push({ dir: m[1] as string, records });
  }
  return flights.map(({ dir, records }) => {
    const runs: string[] = [];
    for (let i = 0; i < records.length; ) {
      let j = i;
      while (records[j] === records[i]) j++;
      runs.push(j - i > 1 ? `${records[i]} ×${j - i}` : (records[i] as string));
      i = j;
    }
    return `${dir} ${runs.join(', ')}`;
  });
}

/** A segment of 09's --burst: it starts with one of the lines 'b:N\n'. */
const isBurstLine = (p: Packet) => p.payload[0] === 0x62 && p.payload[1] === 0x3a && p.length <= 40;

/**
 * Where the other side first answered once all ten 4-byte lines of the burst were sent (0: not yet). Bytes count
 * once: on a loaded machine the kernel once sent `b:9` again (a tail loss probe: the peer's ACK was delayed, the
 * writer descheduled before its tenth write), and counting it twice ended the scene before `b:0`.
 */
function burstAnswered(packets: readonly Packet[]): number {
  let first: number | undefined;
  let bytes = 0;
  for (const [i, p] of packets.entries()) {
    if (isBurstLine(p) && p.tcp) {
      first ??= p.tcp.seq;
      bytes = Math.max(bytes, (p.tcp.seq - first + p.length) >>> 0);
    }
    if (bytes < 40) continue;
    const back = packets.findIndex((q, k) => k > i && q.srcPort !== p.srcPort);
    return Math.max(back, 0);
  }
  return 0;
}

/** Segments with exactly these flags ('SYN', 'SYN,ACK'), retries counted too. */
function synsOf(packets: readonly Packet[], flags: string): number {
  return packets.filter((p) => p.tcp?.flags === flags).length;
}

/** Handshakes done: a client's ACK after the SYN+ACK to its port. */
function handshakes(packets: readonly Packet[]): number {
  const answered = new Set<number | undefined>();
  const done = new Set<number | undefined>();
  for (const p of packets) {
    if (p.tcp?.flags === 'SYN,ACK') answered.add(p.dstPort);
    else if (p.tcp?.flags === 'ACK' && answered.has(p.srcPort)) done.add(p.srcPort);
  }
  return done.size;
}

/** SYNs sent again: the same port and seq as an earlier SYN. */
export function synRetries(packets: readonly Packet[]): number {
  const seen = new Set<string>();
  let again = 0;
  for (const p of packets) {
    if (p.tcp?.flags !== 'SYN') continue;
    const key = `${p.srcPort} ${p.tcp.seq}`;
    if (seen.has(key)) again++;
    seen.add(key);
  }
  return again;
}

/** The arrows of a diagram, as written, retransmissions left out (they are the kernel's timers' call). */
export function structureLines(mmd: string): string[] {
  return mmd.split('\n').filter((l) => l.includes('->>') && !l.endsWith(' (retransmission)'));
}

/** Keepalive probes answered so far: a bare ACK whose seq is one below what its sender has sent (snd.una − 1),
 * followed by an ACK from the other side. */
export function keepaliveProbes(packets: readonly Packet[]): number {
  const next = new Map<string, number>();
  let answered = 0;
  let pending: string | undefined;
  for (const p of packets) {
    if (!p.tcp) continue;
    const dir = `${p.src}:${p.srcPort}>${p.dst}:${p.dstPort}`;
    const back = `${p.dst}:${p.dstPort}>${p.src}:${p.srcPort}`;
    const t = p.tcp;
    const end = (t.seq + p.length + (t.flags.includes('SYN') || t.flags.includes('FIN') ? 1 : 0)) >>> 0;
    if (t.flags === 'ACK' && p.length === 0 && next.get(dir) === (t.seq + 1) >>> 0) pending = dir;
    else if (pending === back && t.flags === 'ACK') {
      answered++;
      pending = undefined;
    }
    const n = next.get(dir);
    if (n === undefined || ((end - n) | 0) > 0) next.set(dir, end);
  }
  return answered;
}

export interface RunResult {
  packets: Packet[];
  pcap: Uint8Array;
  lines: LabLine[];
  capture: ReturnType<typeof parsePcap>;
  keep: boolean[];
}

const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

function missing(here: boolean): string | undefined {
  if (process.platform !== 'linux') return `capture needs Linux (this is ${process.platform})`;
  if (!hasTool('tcpdump')) return 'capture needs tcpdump (apt-get install tcpdump)';
  const root = process.getuid?.() === 0;
  if (!root) {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const eff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] ?? '0'}`);
    if (!(eff & (1n << 13n))) return 'capture needs root or CAP_NET_RAW (try sudo npm run capture …)';
    if (!here) return 'capture without root needs --here (no network namespace of its own)';
  }
  return undefined;
}

export function unavailable(): string | undefined {
  const m = missing(false);
  if (m) return m;
  if (!hasTool('ip') || spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status !== 0)
    return 'capture needs `ip netns` (iproute2)';
  return undefined;
}

function lineReader(child: ChildProcess, lines: LabLine[], echo: boolean): void {
  let rest = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    const us = nowUs();
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    for (const text of parts) {
      lines.push({ us, text });
      if (echo) console.log(text);
    }
  });
}

/** Until `until` holds for the packets in the capture file so far: it grows packet by packet (-U), so this
 * waits for the packets themselves (a kernel timer's probe or report), not for a guessed time. */
async function grown(file: string, markerPort: number, until: NonNullable<Scene['until']>): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const soFar = fs.existsSync(file) ? parsePcap(new Uint8Array(fs.readFileSync(file))).packets : [];
    if (until(soFar.filter((p) => p.srcPort !== markerPort && p.dstPort !== markerPort))) return;
    if (Date.now() > deadline) throw new Error('the packets the scene waits for did not come within 30 s');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Captures one run on this namespace's lo. `ownNamespace`: everything on lo is the lab's. */
export async function captureRun(
  lab: string,
  run: readonly string[],
  options: {
    ownNamespace: boolean;
    echo: boolean;
    procs?: string[][];
    until?: Scene['until'];
    press?: Scene['press'];
    before?: Scene['before'];
  },
): Promise<RunResult> {
  const entry = labs.find((l) => l.id === lab);
  if (!entry) throw new Error(`no lab ${lab}`);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capture-'));
  const file = path.join(tmp, 'raw.pcap');
  // The marker: a datagram to a socket of our own, sent after the lab exits; when tcpdump prints it, every
  // packet before it is in the file.
  const marker = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => marker.bind(0, '127.0.0.1', resolve));
  const markerPort = marker.address().port;
  const dump = spawn(
    'tcpdump',
    ['-i', 'lo', '-n', '-l', '-U', '-Z', 'root', '-s', '4096', '-w', file, '--print', 'ip or ip6'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  dump.stdout.setEncoding('utf8');
  dump.stderr.setEncoding('utf8');
  const seen = (pred: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pred()) {
          cleanup();
          resolve();
        }
      };
      const fail = () => {
        cleanup();
        reject(new Error(`tcpdump exited before ${what}: ${err.trim()}`));
      };
      const cleanup = () => {
        dump.stdout.off('data', check);
        dump.stderr.off('data', check);
        dump.off('exit', fail);
      };
      dump.stdout.on('data', check);
      dump.stderr.on('data', check);
      dump.on('exit', fail);
      check();
    });
  dump.stdout.on('data', (c: string) => {
    out += c;
  });
  dump.stderr.on('data', (c: string) => {
    err += c;
  });
  const lines: LabLine[] = [];
  try {
    await seen(() => /listening on lo/.test(err), "'listening on lo'");
    if (options.procs) {
      const children: ChildProcess[] = [];
      try {
        let port: string | undefined;
        const { before } = options;
        for (const [i, args] of options.procs.entries()) {
          if (i >= 2 && before) await grown(file, markerPort, (ps) => before(ps, i - 1));
          const argv = args.map((a) => a.replace('{port}', port ?? '0'));
          // A peer that is not the lab ('$ nc 127.0.0.1 {port}') runs through sh. stdin stays open, as in a
          // terminal: 05's server waits for "go", 02's for Enter, nc for input.
          const [program, words] =
            argv[0] === '$'
              ? ['/bin/sh', ['-c', `exec ${argv.slice(1).join(' ')}`]]
              : [process.execPath, ['--import', 'tsx', path.join('labs', `${entry.slug}.ts`), ...argv]];
          const child = spawn(program as string, words as string[], {
            cwd: root,
            stdio: ['pipe', 'pipe', 'inherit'],
            env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
          });
          children.push(child);
          const mine: LabLine[] = [];
          lineReader(child, mine, options.echo);
          child.stdout?.on('data', () => lines.push(...mine.splice(0)));
          if (port === undefined) {
            await new Promise<void>((resolve, reject) => {
              const check = () => {
                const m = lines.map((l) => /listening on \S+:(\d+)/.exec(l.text)).find(Boolean);
                if (m) {
                  port = m[1];
                  resolve();
                }
              };
              child.stdout?.on('data', () => setImmediate(check));
              child.on('exit', () =>
                reject(new Error(`lab ${lab} ${args.join(' ')} exited before 'listening on'`)),
              );
            });
          }
        }
        if (options.press) {
          await grown(file, markerPort, options.press.when);
          children[options.press.proc]?.stdin?.write(options.press.text);
        }
        if (options.until) await grown(file, markerPort, options.until);
      } finally {
        for (const c of children.reverse()) {
          c.kill('SIGINT');
          if (c.exitCode === null && c.signalCode === null)
            await new Promise((resolve) => c.on('exit', resolve));
        }
      }
    } else if (run[0]?.startsWith('session:')) {
      const name = run[0].slice('session:'.length);
      const t = sessions.find((s) => s.lab === lab && s.name === name);
      if (!t) throw new Error(`lab ${lab} has no session '${name}' in scripts/transcripts.ts`);
      // In a namespace of our own the typed ports are free: the diagram shows the ports the page types.
      const shown = await runTranscript(t, { node: process.execPath, asTyped: options.ownNamespace });
      for (const text of shown) lines.push({ us: nowUs(), text });
    } else {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join('labs', `${entry.slug}.ts`), ...run],
        {
          cwd: root,
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
        },
      );
      lineReader(child, lines, options.echo);
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      if (code !== 0) throw new Error(`lab ${lab} ${run.join(' ')} exited with ${code}`);
      if (options.until) await grown(file, markerPort, options.until);
    }
    const token = `capture-end ${randomUUID()}`;
    marker.send(token, markerPort, '127.0.0.1');
    await seen(() => out.includes(`127.0.0.1.${markerPort}:`), 'the end marker');
  } finally {
    dump.kill('SIGINT');
    if (dump.exitCode === null) await new Promise((resolve) => dump.on('exit', resolve));
    marker.close();
  }
  const raw = new Uint8Array(fs.readFileSync(file));
  fs.rmSync(tmp, { recursive: true, force: true });
  const capture = parsePcap(raw);
  // Which packets are the lab's: all of them in a namespace of our own, else those on the ports it printed.
  const printed = new Set<number>();
  for (const l of lines)
    for (const m of l.text.matchAll(/(?:127\.\d+\.\d+\.\d+|0\.0\.0\.0|239\.\d+\.\d+\.\d+|\]):(\d{2,5})\b/g))
      printed.add(Number(m[1]));
  const ours = (p: Packet) => {
    if (p.srcPort === markerPort || p.dstPort === markerPort) return false;
    if (options.ownNamespace) return true;
    if (p.proto === 'igmp') return true;
    const q = p.icmp?.quoted;
    if (q) return printed.has(q.srcPort) || printed.has(q.dstPort);
    return printed.has(p.srcPort ?? -1) || printed.has(p.dstPort ?? -1);
  };
  const keep = capture.records.map((r) => r.packet !== undefined && ours(r.packet));
  const packets = capture.records.filter((_, i) => keep[i]).map((r) => r.packet as Packet);
  return { packets, pcap: writePcap(capture, (i) => keep[i] === true), lines, capture, keep };
}

/** One scene's packets, pcap and diagram from a run. */
export function sceneOf(scene: Scene, r: RunResult): { pcap: Uint8Array; mmd: string; packets: Packet[] } {
  const convs = conversations(r.packets);
  const picked = new Set(scene.pick(convs, r.packets).map((i) => convs[i]));
  const chosen = new Set<Packet>();
  const mine = r.packets.filter((p) => picked.has(conversation(p)));
  for (const p of scene.select ? scene.select(mine) : mine)
    if (chosen.size < (scene.limit ?? 400)) chosen.add(p);
  const packets = r.packets.filter((p) => chosen.has(p));
  const keepIdx = r.capture.records.map((rec) => rec.packet !== undefined && chosen.has(rec.packet));
  const title = `npm run capture ${scene.lab}${scene.run ? ` ${scene.run.join(' ')}` : ''}: ${scene.name} (generated; do not edit)`;
  return {
    pcap: writePcap(r.capture, (i) => keepIdx[i] === true),
    mmd: sequenceDiagram(packets, scene.notes ? r.lines.filter((l) => scene.notes?.test(l.text)) : r.lines, {
      title,
      context: mine,
      ...(scene.after ? { after: scene.after } : {}),
    }),
    packets,
  };
}

/** What a page writes to show a scene: a mermaid fence around VitePress's include of the diagram, and a
 * link to the capture (an anchor: VitePress takes a markdown link to a .pcap for a page and calls it dead). */
export function pageLines(scene: Scene): string[] {
  const slug = slugOf(scene.lab);
  return [
    `\`\`\`mermaid\n<!--@include: @/captures/${slug}/${scene.name}.mmd-->\n\`\`\``,
    `<a href="/captures/${slug}/${scene.name}.pcap" download>${scene.name}.pcap</a>`,
  ];
}

function slugOf(lab: string): string {
  return (labs.find((l) => l.id === lab) as { slug: string }).slug;
}

function writeScene(scene: Scene, r: RunResult, outDir: string | undefined): string[] {
  const s = sceneOf(scene, r);
  const bad = offLoopback(s.packets);
  if (bad.length)
    throw new Error(
      `${scene.lab} ${scene.name}: ${bad.length} packet(s) off loopback, e.g. ${bad[0]?.src} -> ${bad[0]?.dst}`,
    );
  const slug = slugOf(scene.lab);
  const dia = outDir ? path.join(outDir, 'captures', slug) : path.join(root, 'docs', 'captures', slug);
  const pub = outDir
    ? path.join(outDir, 'public', slug)
    : path.join(root, 'docs', 'public', 'captures', slug);
  fs.mkdirSync(dia, { recursive: true });
  fs.mkdirSync(pub, { recursive: true });
  fs.writeFileSync(path.join(dia, `${scene.name}.mmd`), s.mmd);
  fs.writeFileSync(path.join(pub, `${scene.name}.pcap`), s.pcap);
  return [path.join(dia, `${scene.name}.mmd`), `${s.packets.length} packets`];
}

/** The scenes that share one run (the demo, a session, or the same roles), each group a run of its own. */
export function runGroups(wanted: readonly Scene[]): Scene[][] {
  const runs = new Map<string, Scene[]>();
  for (const s of wanted) {
    const key = `${s.lab} ${JSON.stringify(s.procs ?? s.run ?? [])}`;
    runs.set(key, [...(runs.get(key) ?? []), s]);
  }
  return [...runs.values()];
}

/** Runs the runs these scenes need, each once. In a namespace of its own, give it one run's scenes only:
 * everything on that lo is taken as the run's (--pages starts a namespace per run). */
export async function captureScenes(
  wanted: readonly Scene[],
  options: { ownNamespace: boolean; outDir?: string },
): Promise<string[]> {
  const report: string[] = [];
  await Promise.all(
    runGroups(wanted).map(async (group) => {
      const first = group[0] as Scene;
      const r = await captureRun(first.lab, first.run ?? [], {
        ownNamespace: options.ownNamespace,
        echo: false,
        ...(first.procs ? { procs: first.procs } : {}),
        ...(first.until ? { until: first.until } : {}),
        ...(first.press ? { press: first.press } : {}),
        ...(first.before ? { before: first.before } : {}),
      });
      for (const s of group)
        report.push(`${s.lab} ${s.name}: ${writeScene(s, r, options.outDir).join(', ')}`);
    }),
  );
  return report.sort();
}

/** Runs capture.ts with these arguments inside a fresh network namespace with only lo up, then removes it. */
// The namespaces made and the children running in them: one set of handlers for all (--pages runs many).
const namespaces = new Set<string>();
const inside = new Set<ChildProcess>();
let handlersSet = false;

async function inNamespace(argv: readonly string[], quiet = false): Promise<number> {
  const ns = `nnw-capture-${process.pid}-${randomUUID().slice(0, 8)}`;
  const ip = (...a: string[]) => spawnSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] }).status;
  if (!handlersSet) {
    handlersSet = true;
    process.once('exit', () => {
      for (const n of namespaces) ip('netns', 'del', n);
    });
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => {
        for (const c of inside) c.kill(signal);
      });
  }
  if (ip('netns', 'add', ns) !== 0) return 1;
  namespaces.add(ns);
  try {
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        ns,
        process.execPath,
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        ...argv,
        '--in-namespace',
      ],
      { stdio: ['ignore', quiet ? 'pipe' : 'inherit', 'inherit'], cwd: process.cwd() },
    );
    inside.add(child);
    child.stdout?.on('data', (chunk: Buffer) => process.stdout.write(chunk));
    return await new Promise<number>((resolve) =>
      child.on('exit', (code) => {
        inside.delete(child);
        resolve(code ?? 1);
      }),
    );
  } finally {
    namespaces.delete(ns);
    ip('netns', 'del', ns);
  }
}

async function main(): Promise<void> {
  // Our flags anywhere; every other word goes to the lab (npm eats the first `--`).
  const values: Record<string, string | boolean | undefined> = {};
  const positionals: string[] = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--out') {
      values.out = argv[++i];
      if (values.out === undefined) fail('--out needs a directory');
    } else if (a.startsWith('--out=')) values.out = a.slice(6);
    else if (a === '--scenes') {
      values.scenes = argv[++i];
      if (values.scenes === undefined) fail('--scenes needs names: --scenes nagle,nodelay');
    } else if (['--here', '--all', '--pages', '--in-namespace', '--help', '-h'].includes(a))
      values[a === '-h' ? 'help' : a.slice(2)] = true;
    else if (a !== '--') positionals.push(a);
  }
  if (values.help) {
    console.log('npm run capture NN [role [flags]|session:NAME] [-- --out DIR] [--here]');
    console.log("npm run capture NN -- --pages [--scenes A,B]   that page's captures (or only these scenes)");
    console.log(
      "npm run capture -- --all --pages [--out DIR]   the pages' captures (docs/captures/, docs/public/captures/)",
    );
    return;
  }
  const [id, ...run] = positionals as string[];
  if (!values.all && !labs.some((l) => l.id === id)) {
    process.stderr.write(`capture: name a lab: ${labs.map((l) => l.id).join(', ')} (or --all --pages)\n`);
    process.exit(2);
  }
  const here = values.here === true || values['in-namespace'] === true;
  const why = here ? missing(true) : unavailable();
  if (why) {
    process.stderr.write(`${why}\n`);
    process.exit(2);
  }
  if (!values['in-namespace'] && !values.here) {
    if (values.pages) {
      // One namespace per run, all at once: a namespace's lo carries one run's packets only.
      const names = typeof values.scenes === 'string' ? values.scenes.split(',') : undefined;
      const groups = runGroups(
        scenes.filter((s) => (values.all || s.lab === id) && (!names || names.includes(s.name))),
      );
      if (!groups.length) {
        process.stderr.write(
          `no page captures for ${id ?? '(none named)'}${names ? ` named ${names}` : ''}\n`,
        );
        process.exit(2);
      }
      const out = values.out ? ['--out', path.resolve(values.out as string)] : [];
      const codes = await Promise.all(
        groups.map((g) =>
          inNamespace(
            [(g[0] as Scene).lab, '--pages', '--scenes', g.map((s) => s.name).join(','), ...out],
            true,
          ),
        ),
      );
      process.exit(Math.max(0, ...codes));
    }
    process.exit(await inNamespace(argv));
  }
  const ownNamespace = values['in-namespace'] === true;
  if (values.pages) {
    const names = typeof values.scenes === 'string' ? values.scenes.split(',') : undefined;
    const wanted = scenes.filter(
      (s) => ((values.all && !ownNamespace) || s.lab === id) && (!names || names.includes(s.name)),
    );
    if (!wanted.length) {
      process.stderr.write(`no page captures for ${id ?? '(none named)'}: give NN or --all\n`);
      process.exit(2);
    }
    for (const line of await captureScenes(wanted, {
      ownNamespace,
      outDir: values.out as string | undefined,
    }))
      console.log(line);
    return;
  }
  const lab = labs.find((l) => l.id === id);
  if (!lab) {
    process.stderr.write(`capture: name a lab: ${labs.map((l) => l.id).join(', ')}\n`);
    process.exit(2);
  }
  // A page's capture of the demo may wait for packets a kernel timer sends as the lab exits (12: its one IGMP
  // report, which came after the end marker once and was missing), and a plain capture of that demo does too.
  const until =
    run.length === 0 ? scenes.find((s) => s.lab === lab.id && !s.run && !s.procs)?.until : undefined;
  const r = await captureRun(lab.id, run, { ownNamespace, echo: true, ...(until ? { until } : {}) });
  const bad = offLoopback(r.packets);
  const outDir = path.resolve((values.out as string | undefined) ?? path.join(root, 'captures'));
  fs.mkdirSync(outDir, { recursive: true });
  const base = path.join(outDir, lab.slug);
  fs.writeFileSync(`${base}.pcap`, r.pcap);
  fs.writeFileSync(
    `${base}.mmd`,
    sequenceDiagram(r.packets, r.lines, { title: `npm run capture ${lab.id} ${run.join(' ')}`.trim() }),
  );
  console.log(
    `capture: ${r.packets.length} packets in ${conversations(r.packets).length} conversations: ${base}.pcap, ${base}.mmd`,
  );
  if (bad.length) {
    process.stderr.write(
      `capture: ${bad.length} packet(s) not on loopback, e.g. ${bad[0]?.src} -> ${bad[0]?.dst}\n`,
    );
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: Error) => {
    process.stderr.write(`capture: ${err.message}\n`);
    process.exit(1);
  });
}
