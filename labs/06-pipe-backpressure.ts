// Lab 06: pipe, unpipe and backpressure (notes 000, 001, 003). A server pipes each connection into a fresh file
// under the OS temp dir and adds a trailer, echoes with pipe(), or holds connections unread; a client sends
// 32 MiB ignoring write()'s return value (--naive), waiting for 'drain' (default) or through stream.pipeline.
// Run: npm run lab 06 · npm run lab 06 server [-- --mode file|echo|hold] · npm run lab 06 client [-- --naive|--pipeline]
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fail, fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { describeLimits, type Guard, guard, LIMITS } from './lib/guard.ts';
import { onLines } from './lib/lines.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';

const args = parseLabArgs({
  roles: ['server', 'client'],
  port: 8080,
  flags: {
    mode: {
      default: 'file',
      help: 'server: file (pipe into a file), echo (pipe back), hold (read only after go)',
    },
    naive: { type: 'boolean', help: "client: ignore write()'s return value" },
    pipeline: { type: 'boolean', help: 'client: send through stream.pipeline' },
    mib: { default: '32', help: 'client: how many MiB to send' },
  },
});
const mode = args.flag('mode');
if (!['file', 'echo', 'hold'].includes(mode)) fail(`--mode must be file, echo or hold, got '${mode}'`);

const TRAILER = 'over\n'; // note 001 writes 'over' when the client ends
const GOODBYE = 'bye bye\n'; // and 'bye bye' when it unpipes
const CHUNK = 64 * 1024;
const MiB = 1024 * 1024;
// The limits every server here keeps (labs/lib/guard.ts), and one of this lab's own: a file of at most 256 MiB,
// so one client cannot fill the disk.
const MAX_FILE = 256 * MiB;

// #region file-server
/** Each connection is piped into its own file; when the client ends, the file gets a trailer. */
function createFileServer(dir: string, log: Log): net.Server {
  let count = 0;
  const server = net.createServer((socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    const file = path.join(dir, `conn-${++count}.txt`);
    const out = fs.createWriteStream(file);
    log(`connection from ${peer}: piping into ${file}`);
    socket.on('error', (err) => log(`${peer} error: ${err.message}`));
    out.on('error', (err) => {
      log(`${file}: ${describeError(err)}`);
      socket.destroy();
    });
    const saved = () => {
      log(
        `saved ${path.basename(file)}: ${out.bytesWritten} bytes (${socket.bytesRead} read from the client)`,
      );
      server.emit('saved', file); // for the demo, which waits for it
    };
    // #region exercise-pipe-file
    // end: false — when the client ends, pipe() leaves the file open so we can still add the trailer.
    socket.pipe(out, { end: false });
    socket.on('end', () => {
      if (!out.writableEnded) out.end(TRAILER, saved);
    });
    // #endregion exercise-pipe-file
    watchForUnpipe(socket, out, log, saved);
    const g = guard(socket, log);
    g.watchBytes();
    socket.on('data', () => {
      if (socket.bytesRead > MAX_FILE) g.close(`more than ${MAX_FILE} bytes: the file stops here`);
    });
    // A client that resets (or is closed) sends no 'end': the file is closed all the same, never left open.
    socket.on('close', () => {
      if (!out.writableEnded) out.end();
    });
  });
  return server;
}
// #endregion file-server

// #region unpipe
/** A line 'unpipe' from the client detaches the file: later bytes are read but go nowhere. */
function watchForUnpipe(socket: net.Socket, out: fs.WriteStream, log: Log, saved: () => void) {
  // Control lines are short; a long upload without newlines must not grow this buffer.
  onLines(
    socket,
    (line) => {
      if (line !== 'unpipe' || out.writableEnded) return;
      socket.unpipe(out);
      // unpipe() paused the socket (the file was its only destination): without resume() the connection stalls.
      log(`'unpipe' line: unpipe(), readableFlowing=${socket.readableFlowing}; resume() and drop the rest`);
      socket.resume();
      out.end(GOODBYE, saved);
      const piped = socket.bytesRead;
      socket.on('end', () =>
        log(`client sent FIN: ${socket.bytesRead - piped} bytes came after unpipe() and were not written`),
      );
    },
    { maxBytes: 4096, onOverflow: () => log('a line over 4 KiB: not watching for unpipe any more') },
  );
}
// #endregion unpipe

// #region echo-server
function createEchoServer(log: Log): net.Server {
  return net.createServer((socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    log(`connection from ${peer}: echoing with pipe()`);
    socket.on('error', (err) => log(`${peer} error: ${err.message}`));
    socket.on('end', () => log(`${peer} sent FIN after ${socket.bytesRead} bytes; pipe() ends our side`));
    // pipe() respects backpressure both ways: if the client stops reading, we stop reading from it.
    socket.pipe(socket);
    guard(socket, log).watchBytes();
  });
}
// #endregion echo-server

// #region hold-server
/** A receiver that reads nothing until go(), then reads and drops everything: a stand-in for a slow consumer. */
function createHoldServer(log: Log) {
  const waiting = new Set<net.Socket>();
  const guards = new WeakMap<net.Socket, Guard>();
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    log(`connection from ${peer}: held unread (pauseOnConnect) until go`);
    waiting.add(socket);
    socket.on('error', (err) => log(`${peer} error: ${err.message}`));
    socket.on('end', () => log(`${peer} sent FIN after ${socket.bytesRead} bytes`));
    socket.on('close', () => waiting.delete(socket));
    // Held unread, a peer is idle as far as we can tell: 5 minutes without go, and it is closed.
    guards.set(socket, guard(socket, log));
  });
  const go = () => {
    log(`go: reading (and dropping) ${waiting.size} connection(s)`);
    for (const socket of waiting) {
      socket.resume();
      guards.get(socket)?.watchBytes();
    }
    waiting.clear();
  };
  return { server, go };
}
// #endregion hold-server

/** Chunk i is a fresh 64 KiB buffer: queued chunks really take memory, as real data would. */
const chunkNo = (i: number) => Buffer.alloc(CHUNK, 97 + (i % 26));

// #region meter
/** What a sender measures: the largest writableLength it saw, how often write() said false, 'drain's, RSS. */
function meter(socket: net.Socket) {
  const startRss = process.memoryUsage.rss();
  const m = {
    peak: 0,
    bufferSizeAtPeak: 0,
    bytesWrittenAtPeak: 0,
    falses: 0,
    drains: 0,
    queuedAtDrain: 0,
    peakRss: startRss,
    sample() {
      if (socket.writableLength > m.peak) {
        m.peak = socket.writableLength;
        // bufferSize is a deprecated alias of writableLength (DEP0145, documentation only: no runtime warning).
        m.bufferSizeAtPeak = socket.bufferSize;
        m.bytesWrittenAtPeak = socket.bytesWritten;
      }
      m.peakRss = Math.max(m.peakRss, process.memoryUsage.rss());
    },
    get rssGrowth() {
      return m.peakRss - startRss;
    },
  };
  socket.on('drain', () => {
    m.drains++;
    m.queuedAtDrain = Math.max(m.queuedAtDrain, socket.writableLength); // 'drain' means: the queue is empty
  });
  return m;
}
// #endregion meter

type Meter = ReturnType<typeof meter>;
type Policy = 'naive' | 'polite' | 'pipeline';

// #region naive
/** Ignores write()'s return value: whatever the kernel cannot take right now piles up in Node's memory. */
function sendNaive(socket: net.Socket, chunks: number, m: Meter) {
  for (let i = 0; i < chunks; i++) {
    if (!socket.write(chunkNo(i))) m.falses++;
  }
  m.sample();
  socket.end();
}
// #endregion naive

// #region polite
/** Stops when write() returns false and goes on at 'drain': at most about writableHighWaterMark + 1 chunk waits. */
async function sendPolite(socket: net.Socket, chunks: number, m: Meter, stuck: () => void) {
  for (let i = 0; i < chunks; i++) {
    const ok = socket.write(chunkNo(i));
    m.sample();
    // #region exercise-polite
    if (!ok) {
      m.falses++;
      if (m.falses === 1) stuck();
      await once(socket, 'drain'); // rejects if the socket fails meanwhile
    }
    // #endregion exercise-polite
  }
  socket.end();
}
// #endregion polite

// #region pipeline
/** stream.pipeline: pipe()'s backpressure, plus errors from any stream land in one place and destroy them all. */
async function sendPipeline(socket: net.Socket, chunks: number, m: Meter, stuck: () => void) {
  let waited = false;
  async function* source() {
    for (let i = 0; i < chunks; i++) {
      m.sample();
      // writableNeedDrain: pipe()'s last write() returned false and 'drain' has not come yet.
      if (socket.writableNeedDrain && !waited) {
        waited = true;
        stuck();
      }
      yield chunkNo(i);
    }
  }
  const readable = Readable.from(source(), { objectMode: false });
  try {
    await pipeline(readable, socket); // ends the socket when the source is done
  } catch (err) {
    logger('client')(
      `pipeline failed: ${describeError(err)}; source destroyed: ${readable.destroyed}, socket destroyed: ${socket.destroyed}`,
    );
    throw err;
  }
}
// #endregion pipeline

// #region client
/**
 * Sends `mib` MiB under one policy and reports what it measured. `stuck` runs once the sender has to wait.
 * RSS is reported only where one process runs one sender: it also counts garbage not collected yet.
 */
async function runSender(
  host: string,
  port: number,
  policy: Policy,
  mib: number,
  stuck: () => void,
  showRss: boolean,
) {
  const log = logger('client');
  const socket = net.connect({ host, port });
  await once(socket, 'connect');
  socket.resume(); // nothing is expected back, but reading lets us see the receiver's FIN and close
  const m = meter(socket);
  const chunks = (mib * MiB) / CHUNK;
  log(
    `${policy}: sending ${mib} MiB in ${chunks} writes of 64 KiB (writableHighWaterMark ${socket.writableHighWaterMark})`,
  );
  let told = false;
  const waiting = () => {
    if (told) return;
    told = true;
    log(`${policy}: waiting for the receiver; writableLength ${socket.writableLength}`);
    stuck();
  };
  if (policy === 'naive') sendNaive(socket, chunks, m);
  else if (policy === 'polite') await sendPolite(socket, chunks, m, waiting);
  else await sendPipeline(socket, chunks, m, waiting);
  // All writes issued: whatever is still queued waits for the receiver (the naive sender's whole backlog).
  waiting();
  if (!socket.writableFinished) await once(socket, 'finish');
  log(
    `${policy}: peak writableLength ${m.peak} (bufferSize ${m.bufferSizeAtPeak}), bytesWritten at that moment ${m.bytesWrittenAtPeak}`,
  );
  // pipeline() calls write() itself; its falses are not ours to count.
  const falses = policy === 'pipeline' ? '' : `write() returned false ${m.falses} time(s), `;
  log(`${policy}: ${falses}'drain' fired ${m.drains} time(s), writableLength at 'drain': ${m.queuedAtDrain}`);
  if (showRss) log(`${policy}: RSS grew by ${(m.rssGrowth / MiB).toFixed(1)} MiB at its peak`);
  // The receiver answers our FIN with its own once it has read everything. Past 'finish' all our bytes are
  // with the kernel, so a late reset from the receiver changes nothing here: ignore it rather than crash.
  socket.on('error', () => {});
  if (!socket.closed) await once(socket, 'close');
  return m;
}
// #endregion client

// #region errors
/** The receiver resets the connection mid-transfer. pipe() leaves the source behind; pipeline() cleans up. */
async function errorsCompared(log: Log) {
  const resetter = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
  const port = await listen(resetter);

  const a = net.connect(port, '127.0.0.1');
  const source = Readable.from(endless(), { objectMode: false });
  source.pipe(a);
  const [err] = await once(a, 'error'); // pipe() does not handle it: without this listener the process crashes
  log(
    `pipe(): the socket failed (${(err as NodeJS.ErrnoException).code}); source destroyed: ${source.destroyed}`,
  );
  source.destroy(); // by hand, or the source (a file, say) stays open

  const b = net.connect(port, '127.0.0.1');
  const from = Readable.from(endless(), { objectMode: false });
  try {
    await pipeline(from, b);
  } catch (e) {
    log(
      `pipeline(): rejected once (${(e as NodeJS.ErrnoException).code}); source destroyed: ${from.destroyed}`,
    );
  }
  resetter.close();
}
// #endregion errors

async function* endless() {
  for (let i = 0; ; i++) yield chunkNo(i);
}

async function listen(server: net.Server, port = 0, host = '127.0.0.1'): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

function tempDir(log: Log): string {
  // Never inside the repository: a fresh directory under the OS temp dir, named so you can find it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-net-06-'));
  log(`files go to ${dir}`);
  return dir;
}

async function demo() {
  const log = logger('demo');
  const client = logger('client');
  const dir = tempDir(logger('server'));
  const files = createFileServer(dir, logger('server'));
  const port = await listen(files);
  printListening(logger('server'), files.address());

  log('part 1: socket.pipe(file, { end: false }), then a trailer when the client ends');
  const one = net.connect(port, '127.0.0.1');
  await once(one, 'connect');
  const first = once(files, 'saved');
  one.end('hello\r\nworld\r\n');
  client('sent "hello\\r\\nworld\\r\\n", then FIN');
  await first;
  log(`conn-1.txt holds ${JSON.stringify(fs.readFileSync(path.join(dir, 'conn-1.txt'), 'utf8'))}`);

  log('part 2: unpipe() on a line from the client; what comes after it never reaches the file');
  const two = net.connect(port, '127.0.0.1');
  await once(two, 'connect');
  const unpiped = once(files, 'saved');
  two.write('before\nunpipe\n');
  client('sent "before\\nunpipe\\n"');
  await unpiped; // the server has unpiped and closed the file: only now send more
  two.end('after\n');
  client('sent "after\\n", then FIN');
  await once(two, 'close');
  log(`conn-2.txt holds ${JSON.stringify(fs.readFileSync(path.join(dir, 'conn-2.txt'), 'utf8'))}`);
  files.close();
  fs.rmSync(dir, { recursive: true });
  log(`removed ${dir}`);

  log('part 3: echo with socket.pipe(socket)');
  const echo = createEchoServer(logger('server'));
  const echoPort = await listen(echo);
  const three = net.connect(echoPort, '127.0.0.1');
  onLines(three, (line) => client(`received: ${line}`));
  three.end('ping\npong\n');
  await once(three, 'close');
  echo.close();

  log('part 4: backpressure: 32 MiB into a receiver that reads nothing until the sender has to wait');
  const hold = createHoldServer(logger('server'));
  const holdPort = await listen(hold.server);
  const peaks: Record<string, number> = {};
  for (const policy of ['polite', 'pipeline', 'naive'] as const) {
    const accepted = once(hold.server, 'connection');
    // The receiver starts reading when the sender says it is waiting: an event, not a timer.
    const m = await runSender('127.0.0.1', holdPort, policy, 32, () => accepted.then(hold.go), false);
    peaks[policy] = m.peak;
  }
  log(
    `peak queued bytes: naive ${peaks.naive}, polite ${peaks.polite}, pipeline ${peaks.pipeline}: ` +
      `the naive sender queued ${Math.round((peaks.naive ?? 0) / (peaks.polite || 1))}x more`,
  );
  hold.server.close();

  log('part 5: the receiver resets the connection: pipe() vs stream.pipeline()');
  await errorsCompared(log);
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const open = new Set<net.Socket>();
  let server: net.Server;
  if (mode === 'file') server = createFileServer(tempDir(log), log);
  else if (mode === 'echo') server = createEchoServer(log);
  else {
    const hold = createHoldServer(log);
    server = hold.server;
    // The signal by hand: type go in this terminal (a test writes it to stdin).
    onLines(process.stdin, (line) => {
      if (line.trim() === 'go') hold.go();
    });
  }
  server.on('connection', (socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  server.on('error', (err) => fatal('server', err));
  onShutdown(async () => {
    log(`shutting down, closing ${open.size} connection(s)`);
    for (const socket of open) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  server.listen(args.port, args.host, () => {
    printListening(log, server.address());
    log(
      `limits: ${describeLimits(LIMITS, false)}${mode === 'file' ? `, files up to ${MAX_FILE} bytes` : ''}`,
    );
  });
} else if (args.role === 'client') {
  if (args.has('naive') && args.has('pipeline')) fail('choose one of --naive and --pipeline');
  const policy: Policy = args.has('naive') ? 'naive' : args.has('pipeline') ? 'pipeline' : 'polite';
  const mib = args.int('mib');
  if (mib < 1) fail('--mib must be at least 1');
  try {
    await runSender(args.host, args.port, policy, mib, () => {}, true);
  } catch (err) {
    fatal('client', err);
  }
} else {
  await demo();
}
