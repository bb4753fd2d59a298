// npm run bench 14: lab 14's HTTP server (node:net and our own parser) against node:http serving the same route,
// each on one keep-alive connection, one request at a time (a script, not a test). Both servers are child
// processes started the same way; the rounds alternate between them, in the same run, so the ratio is fair.
// Flags: npm run bench 14 -- [--requests 5000] [--rounds 3]
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCli } from '../lib/cli.ts';
import { table } from '../lib/table.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseCli({
  command: 'bench 14',
  about: [
    "lab 14's HTTP server against node:http: requests per second on one keep-alive connection, as a ratio",
  ],
  flags: {
    requests: { type: 'int', min: 1, max: 10_000_000, default: 5000, help: 'sequential GET / per round' },
    rounds: { type: 'int', min: 1, max: 1000, default: 3, help: 'rounds per server, alternating' },
    // The benchmark starts itself as the node:http server with this (not for people).
    role: {
      type: 'enum',
      choices: ['node-http'],
      internal: true,
      help: 'run as a child: the node:http server',
    },
  },
  positionals: { max: 0 },
});
const BODY = 'hello from an HTTP server written on node:net\n';

/** The node:http server (a child): GET / answers what lab 14 answers, the same headers and body. */
function nodeHttpServer(): void {
  const server = http.createServer((req, res) => {
    if (req.url !== '/') {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(BODY);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    console.log(`listening on 127.0.0.1:${(server.address() as net.AddressInfo).port}`);
  });
}

/** Starts a child and reads the port from its `listening on` line (its later output is read and dropped). */
async function start(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8');
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const m = out.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => reject(new Error(`${args.join(' ')} exited before listening:\n${out}`)));
  });
  return { child, port };
}

/** `count` requests on one connection, each sent once the previous response is complete; requests per second. */
async function run(port: number, count: number): Promise<number> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await once(socket, 'connect');
  const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
  let pending: Buffer = Buffer.alloc(0);
  let done = 0;
  const started = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      // One response: headers up to the empty line, then Content-Length bytes of body.
      for (;;) {
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) return;
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(pending.toString('latin1', 0, end))?.[1]);
        if (!pending.toString('latin1', 0, 15).startsWith('HTTP/1.1 200')) reject(new Error('not a 200'));
        if (pending.length < end + 4 + length) return;
        pending = pending.subarray(end + 4 + length);
        if (++done === count) return resolve();
        socket.write(request);
      }
    });
    socket.write(request);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  socket.destroy();
  return count / seconds;
}

async function main(): Promise<void> {
  const { requests, rounds } = values;
  const lab = await start([
    path.join(root, 'labs/14-http.ts'),
    'server',
    '--port',
    '0',
    '--keep-alive-ms',
    '60000',
    '--quiet',
  ]);
  const node = await start([fileURLToPath(import.meta.url), '--role', 'node-http']);
  console.log(
    `Node ${process.version}; ${requests} sequential GET / per round on one keep-alive connection, ${rounds} rounds each, alternating`,
  );
  // Warm up both (JIT, connection setup) before anything is counted.
  await run(lab.port, 2000);
  await run(node.port, 2000);
  const rows: string[][] = [];
  const labRates: number[] = [];
  const nodeRates: number[] = [];
  for (let i = 1; i <= rounds; i++) {
    const a = await run(lab.port, requests);
    const b = await run(node.port, requests);
    labRates.push(a);
    nodeRates.push(b);
    rows.push([String(i), a.toFixed(0), b.toFixed(0), (a / b).toFixed(2)]);
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  const [ml, mn] = [median(labRates), median(nodeRates)];
  rows.push(['median', ml.toFixed(0), mn.toFixed(0), (ml / mn).toFixed(2)]);
  console.log(table(['round', 'lab 14 req/s', 'node:http req/s', 'lab 14 / node:http'], rows));
  lab.child.kill();
  node.child.kill();
}

if (values.role === 'node-http') nodeHttpServer();
else await main();
