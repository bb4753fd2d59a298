// npm run bench 09: how far the chapter 09 chat server goes on loopback (a script, not a test).
// For 10, 100 and 1,000 clients: a fresh server (the lab's server role, as a child process), then
// (1) paced: one broadcast every 50 ms from the clients in turn, timed from send to each receiver (fan-out latency);
// (2) burst: every client sends at once, timed until every copy has arrived (deliveries per second); server RSS.
// Flags: npm run bench 09 -- [10,100,1000] [--messages 100] [--every 50]
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { intArg, parseCli } from '../lib/cli.ts';
import { table } from '../lib/table.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const lab = path.join(root, 'labs/09-chat-v2.ts');
const { values, positionals } = parseCli({
  command: 'bench 09',
  args: '[CLIENTS,CLIENTS,…]',
  about: [
    'the chapter 09 chat server under 10, 100 and 1,000 clients (or the counts given): latency, throughput, RSS',
  ],
  flags: {
    messages: { type: 'int', min: 1, max: 100_000, default: 100, help: 'paced broadcasts per client count' },
    every: {
      type: 'int',
      value: 'MS',
      min: 1,
      max: 60_000,
      default: 50,
      help: 'ms between paced broadcasts',
    },
  },
  positionals: { max: 1 },
});
const sizes = (positionals[0] ?? '10,100,1000')
  .split(',')
  .map((n) => intArg('each client count', n, 1, 100_000));
const PACED_MESSAGES = values.messages;
const PACED_EVERY_MS = values.every;
// Nothing here may run forever: each wait gives up after this long and the row says what was missing.
const WAIT_MS = 60_000;

/** Resident set size of a process, and its peak, in MB (Linux /proc; elsewhere 'n/a'). */
function rss(pid: number): { now: string; peak: string } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1]);
    return { now: (kb('VmRSS') / 1024).toFixed(0), peak: (kb('VmHWM') / 1024).toFixed(0) };
  } catch {
    return { now: 'n/a', peak: 'n/a' };
  }
}

function openFiles(): number {
  try {
    return Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim());
  } catch {
    return Number.NaN;
  }
}

/** Resolves when check() is true, polling on every delivery; gives up after WAIT_MS. */
function until(check: () => boolean, wake: Set<() => void>): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      wake.delete(poll);
      resolve(false);
    }, WAIT_MS);
    const poll = () => {
      if (!check()) return;
      clearTimeout(timer);
      wake.delete(poll);
      resolve(true);
    };
    wake.add(poll);
    poll();
  });
}

const percentile = (sorted: Float64Array, p: number) =>
  sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number) : Number.NaN;

async function run(size: number): Promise<string[]> {
  const server = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      lab,
      'server',
      '--port',
      '0',
      '--max-users',
      String(size + 10),
      '--idle-ms',
      '600000',
      '--max-buffered',
      String(16 << 20),
      // Every client of the benchmark comes from 127.0.0.1, and it sends as fast as it can on purpose.
      '--max-per-address',
      String(size + 10),
      '--max-rate',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  server.stdout.setEncoding('utf8');
  let head = '';
  const port = await new Promise<number>((resolve, reject) => {
    server.stdout.on('data', function listening(text: string) {
      head += text;
      const m = head.match(/listening on \S+:(\d+)/);
      if (m) {
        server.stdout.off('data', listening);
        // Keep draining the server's log (one line per join), or its writes would block.
        server.stdout.resume();
        resolve(Number(m[1]));
      }
    });
    server.once('exit', () => reject(new Error(`the server exited: ${head}`)));
  });
  const pid = server.pid as number;
  const idle = rss(pid);

  const wake = new Set<() => void>();
  const latencies: number[] = [];
  let delivered = 0;
  let notices = 0;
  const clients: net.Socket[] = [];
  const connect = async (): Promise<net.Socket> => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.setEncoding('utf8');
    let pending = '';
    socket.on('data', (text: string) => {
      const now = performance.now();
      pending += text;
      let at = pending.indexOf('\n');
      while (at !== -1) {
        const line = pending.slice(0, at);
        pending = pending.slice(at + 1);
        at = pending.indexOf('\n');
        if (line.startsWith('anonymous: ')) {
          // 'anonymous: SEQ SENT_AT': the send time rides in the message itself (same clock, same process).
          latencies.push(now - Number(line.slice(line.indexOf(' ', 11) + 1)));
          delivered++;
        } else if (line.startsWith('* anonymous@')) {
          notices++;
        }
      }
      for (const poll of [...wake]) poll();
    });
    socket.on('error', () => {});
    await once(socket, 'connect');
    return socket;
  };

  const started = performance.now();
  // In groups of 50: a thousand SYNs at once would overflow the listen backlog and wait for retries.
  for (let i = 0; i < size; i += 50) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(50, size - i) }, connect))));
  }
  // Every join is announced to everyone already there: size × (size − 1) / 2 notices in all.
  const joined = await until(() => notices >= (size * (size - 1)) / 2, wake);
  const connectMs = performance.now() - started;
  const held = rss(pid);

  // (1) paced broadcasts
  latencies.length = 0;
  delivered = 0;
  for (let i = 0; i < PACED_MESSAGES; i++) {
    const sender = clients[i % size] as net.Socket;
    sender.write(`b:${i} ${performance.now().toFixed(3)}\n`);
    await new Promise((resolve) => setTimeout(resolve, PACED_EVERY_MS));
  }
  const pacedWanted = PACED_MESSAGES * (size - 1);
  const pacedOk = await until(() => delivered >= pacedWanted, wake);
  const sorted = Float64Array.from(latencies).sort();

  // (2) burst: everyone at once
  delivered = 0;
  const perClient = Math.max(1, Math.ceil(1000 / size));
  const burstWanted = size * perClient * (size - 1);
  const burstStart = performance.now();
  for (let k = 0; k < perClient; k++) {
    for (const [i, c] of clients.entries()) c.write(`b:${i} ${performance.now().toFixed(3)}\n`);
  }
  const burstOk = await until(() => delivered >= burstWanted, wake);
  const burstMs = performance.now() - burstStart;
  const after = rss(pid);

  server.kill('SIGTERM');
  await once(server, 'exit');
  for (const c of clients) c.destroy();

  const ms = (n: number) => n.toFixed(1);
  return [
    String(size),
    joined ? ms(connectMs) : 'timeout',
    `${PACED_MESSAGES} × ${size - 1}`,
    pacedOk ? ms(percentile(sorted, 0.5)) : `${delivered}/${pacedWanted}`,
    pacedOk ? ms(percentile(sorted, 0.99)) : '-',
    pacedOk ? ms(percentile(sorted, 1)) : '-',
    burstOk
      ? `${(((size * perClient) / burstMs) * 1000).toFixed(0)} in, ${((burstWanted / burstMs) * 1000).toFixed(0)} out`
      : 'timeout',
    `${idle.now} / ${held.now} / ${after.peak}`,
  ];
}

const fds = openFiles();
console.log(
  `node ${process.version}, ${os.cpus().length} CPU(s) ${os.cpus()[0]?.model ?? ''}, ulimit -n ${fds}; the server runs as a child process, the clients here`,
);
const rows: string[][] = [];
for (const size of sizes) {
  // This process holds one descriptor per client (the server, a child, holds its own).
  if (size + 50 > fds) {
    console.log(`skipping ${size} clients: ulimit -n is ${fds} (raise it with ulimit -n ${size + 100})`);
    continue;
  }
  rows.push(await run(size));
  console.log(`${size} clients done`);
}
console.log();
console.log(
  table(
    [
      'clients',
      'join all (ms)',
      'paced msgs × receivers',
      'p50 (ms)',
      'p99 (ms)',
      'max (ms)',
      'burst msgs/s (in, out)',
      'server RSS MB (idle / held / peak)',
    ],
    rows,
  ),
);
console.log(
  `\npaced: ${PACED_MESSAGES} broadcasts, one every ${PACED_EVERY_MS} ms; latency = from send to arrival at each receiver.` +
    '\nburst: each client sends ⌈1000 / clients⌉ lines at once; "in" = lines the server reads per second, "out" = copies delivered.',
);
