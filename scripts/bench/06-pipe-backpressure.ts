// npm run bench 06 [-- --mib N]: loopback throughput through a relay built on socket.pipe(), stream.pipeline()
// or a naive 'data' -> write() loop, against a raw sender -> sink baseline; and the relay's peak memory.
// A benchmark, not a test: 127.0.0.1 only, a fixed byte count per run (default 128 MiB), a few seconds in all.
// The sink and each relay are their own processes, so a relay's max RSS is its own; iperf3 joins if installed.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseCli } from '../lib/cli.ts';

const CHUNK = 64 * 1024;
const MiB = 1024 * 1024;
const { values } = parseCli({
  command: 'bench 06',
  about: ['loopback throughput through pipe(), pipeline() and naive relays, and the relays’ peak memory'],
  flags: {
    mib: { type: 'int', min: 16, max: 65_536, default: 128, help: 'MiB sent per run' },
    // The benchmark starts itself as its sink and relays with these (not for people).
    role: { type: 'enum', choices: ['sink', 'relay'], internal: true, help: 'run as a child: sink or relay' },
    to: { type: 'int', min: 1, max: 65_535, internal: true, help: 'the sink port a relay forwards to' },
    how: {
      type: 'enum',
      choices: ['pipe', 'pipeline', 'naive'],
      default: 'pipe',
      internal: true,
      help: 'how a relay forwards',
    },
  },
  positionals: { max: 0 },
});

/** One JSON line on stdout: how a child tells the parent its ports and its results. */
const report = (data: Record<string, unknown>) => console.log(JSON.stringify(data));
const maxRssMiB = () => process.resourceUsage().maxRSS / 1024; // maxRSS is in KiB

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/**
 * The sink (a child): reads each connection to the end and reports bytes and seconds from the first byte.
 * Two ports: a fast one that only counts, and a slow one that also hashes every byte (a consumer slower
 * than loopback). It runs until the parent closes its stdin.
 */
async function sink() {
  const serve = (slow: boolean) =>
    net.createServer((socket) => {
      let bytes = 0;
      let first = 0n;
      const hash = slow ? createHash('sha256') : undefined;
      socket.on('data', (chunk: Buffer) => {
        if (bytes === 0) first = process.hrtime.bigint();
        bytes += chunk.length;
        hash?.update(chunk);
      });
      socket.on('end', () => {
        report({ bytes, seconds: Number(process.hrtime.bigint() - first) / 1e9 });
        socket.end();
      });
    });
  report({ fast: await listen(serve(false)), slow: await listen(serve(true)) });
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
}

/** A relay (a child): forwards one connection to --to with pipe(), pipeline(), or naively; reports its memory. */
async function relay() {
  let idleRss = 0;
  const server = net.createServer(async (inbound) => {
    const upstream = net.connect(values.to ?? 0, '127.0.0.1');
    await once(upstream, 'connect');
    upstream.resume(); // the sink sends nothing back, but reading lets us see its FIN
    const closed = once(upstream, 'close');
    if (values.how === 'pipe') inbound.pipe(upstream);
    else if (values.how === 'pipeline')
      pipeline(inbound, upstream).catch((err) => console.error(`relay: ${err}`));
    else {
      // Naive: write() and never look at its return value.
      inbound.on('data', (chunk: Buffer) => upstream.write(chunk));
      inbound.on('end', () => upstream.end());
    }
    // Registered after the forwarding, so it sees the queue right after each write.
    let peakQueued = 0;
    let peakRss = idleRss;
    inbound.on('data', () => {
      peakQueued = Math.max(peakQueued, upstream.writableLength);
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
    });
    await closed;
    report({ maxRss: maxRssMiB(), rssGrowth: (peakRss - idleRss) / MiB, peakQueued });
    server.close();
  });
  const port = await listen(server);
  idleRss = process.memoryUsage.rss(); // what the relay weighs before the first byte
  report({ port });
}

// ---- the parent: the blaster, the children, the table ----

/** The raw sender, in the parent: one reused 64 KiB buffer, write() until false, wait for 'drain', repeat. */
async function blast(port: number, mib: number) {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.resume();
  const chunk = Buffer.alloc(CHUNK, 120);
  for (let i = 0; i < (mib * MiB) / CHUNK; i++) {
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
  socket.end();
  await once(socket, 'close');
}

interface Actor {
  child: ChildProcess;
  /** The child's next JSON line. */
  next(): Promise<Record<string, number>>;
}

function start(role: string, extra: string[] = []): Actor {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ['--import', 'tsx', self, '--role', role, ...extra], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  const waiters: ((line: string) => void)[] = [];
  let pending = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (text: string) => {
    pending += text;
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const waiter = waiters.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  return {
    child,
    next: () =>
      new Promise((resolve, reject) => {
        const line = lines.shift();
        if (line !== undefined) return resolve(JSON.parse(line));
        waiters.push((l) => resolve(JSON.parse(l)));
        child.once('exit', (code) => reject(new Error(`bench ${role} exited with code ${code}`)));
      }),
  };
}

interface Row {
  name: string;
  mibPerSec: number;
  relayRss?: number;
  relayGrowth?: number;
  peakQueued?: number;
}

async function run(name: string, sinkActor: Actor, sinkPort: number, how: string | undefined, mib: number) {
  let target = sinkPort;
  let relayActor: Actor | undefined;
  if (how) {
    relayActor = start('relay', ['--to', String(sinkPort), '--how', how]);
    target = (await relayActor.next()).port as number;
  }
  const [sunk, relayed] = await Promise.all([sinkActor.next(), relayActor?.next(), blast(target, mib)]);
  if (sunk.bytes !== mib * MiB)
    throw new Error(`${name}: the sink got ${sunk.bytes} bytes, not ${mib * MiB}`);
  return {
    name,
    mibPerSec: mib / (sunk.seconds as number),
    relayRss: relayed?.maxRss,
    relayGrowth: relayed?.rssGrowth,
    peakQueued: relayed?.peakQueued,
  } satisfies Row;
}

/** iperf3, when installed: a C sender and receiver on the same loopback, for scale. */
async function iperf3(mib: number): Promise<Row | undefined> {
  try {
    execFileSync('iperf3', ['--version'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  const probe = net.createServer();
  const port = String(await listen(probe)); // a free port, released for iperf3
  await new Promise((resolve) => probe.close(resolve));
  const server = spawn('iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', port], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout?.on('data', (text: Buffer) => {
        if (text.toString().includes('listening')) resolve();
      });
      server.once('exit', () => reject(new Error('iperf3 -s exited')));
    });
    const out = execFileSync('iperf3', ['-c', '127.0.0.1', '-p', port, '-n', `${mib}M`, '-J'], {
      encoding: 'utf8',
    });
    const bps = JSON.parse(out).end.sum_received.bits_per_second as number;
    return { name: 'iperf3 (C, for scale)', mibPerSec: bps / 8 / MiB };
  } catch {
    return undefined;
  } finally {
    server.kill();
  }
}

async function main() {
  const mib = values.mib;
  const started = Date.now();
  console.log(`bench 06: ${mib} MiB per run over 127.0.0.1 (Node ${process.version})`);
  const sinkActor = start('sink');
  const ports = await sinkActor.next();
  const fast = ports.fast as number;
  const slow = ports.slow as number;
  const rows: Row[] = [];
  rows.push(await run('raw: sender -> sink', sinkActor, fast, undefined, mib));
  rows.push(await run('pipe() relay', sinkActor, fast, 'pipe', mib));
  rows.push(await run('pipeline() relay', sinkActor, fast, 'pipeline', mib));
  rows.push(await run('naive relay', sinkActor, fast, 'naive', mib));
  rows.push(await run('slow sink: pipe() relay', sinkActor, slow, 'pipe', mib));
  rows.push(await run('slow sink: naive relay', sinkActor, slow, 'naive', mib));
  sinkActor.child.stdin?.end();
  const reference = await iperf3(mib);

  const base = rows[0]?.mibPerSec ?? 1;
  const cols = (...cells: [string, number][]) => cells.map(([text, width]) => text.padEnd(width)).join('');
  console.log('');
  console.log(
    cols(
      ['run', 26],
      ['MiB/s', 8],
      ['vs raw', 8],
      ['relay max RSS', 15],
      ['RSS growth', 12],
      ['peak queue', 0],
    ),
  );
  for (const row of [...rows, ...(reference ? [reference] : [])]) {
    console.log(
      cols(
        [row.name, 26],
        [row.mibPerSec.toFixed(0), 8],
        [`${(row.mibPerSec / base).toFixed(2)}x`, 8],
        [row.relayRss === undefined ? '-' : `${row.relayRss.toFixed(0)} MiB`, 15],
        [row.relayGrowth === undefined ? '-' : `${row.relayGrowth.toFixed(1)} MiB`, 12],
        [row.peakQueued === undefined ? '-' : `${(row.peakQueued / MiB).toFixed(2)} MiB`, 0],
      ),
    );
  }
  if (!reference) console.log('(iperf3 is not installed: the raw Node sender -> sink is the only baseline)');
  const find = (name: string) => rows.find((r) => r.name === name);
  const pipeSpeed = (find('pipe() relay')?.mibPerSec ?? 0) / base;
  const naive = find('slow sink: naive relay');
  const piped = find('slow sink: pipe() relay');
  const maxRatio = (naive?.relayRss ?? 0) / (piped?.relayRss ?? 1);
  const growthRatio = (naive?.relayGrowth ?? 0) / Math.max(piped?.relayGrowth ?? 1, 1);
  console.log('');
  console.log(`pipe() relay throughput / raw: ${pipeSpeed.toFixed(2)}`);
  console.log(`slow sink, relay max RSS naive / pipe(): ${maxRatio.toFixed(1)}`);
  console.log(
    `slow sink, relay RSS growth naive / pipe() (pipe() counted as at least 1 MiB): ${growthRatio.toFixed(1)}`,
  );
  console.log(`(${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

const roles: Record<string, () => Promise<void>> = { sink, relay };
const role = values.role;
if (role === undefined) await main();
else await roles[role]?.();
