// Lab 13: message framing (粘包 / 拆包) (notes 001, 002). A 'data' event is whatever bytes had arrived, not a
// message: three writes can arrive as one chunk and one write as three. Two framers fix it: lines and length prefixes.
// Run: npm run lab 13 (the demo) · npm run lab 13 server · npm run lab 13 client -- hello world
// Server flags: -- --port N (default 8113) --max-size BYTES (default 1 MiB) --idle-ms MS
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { fatal, parseLabArgs } from './lib/cli.ts';
import { type Chunks, FramingError, onLines, readLines } from './lib/lines.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';

// The line framer lives in labs/lib/lines.ts, where every lab that reads lines uses it; the tests take it from here.
export { FramingError, readLines };

const HEADER = 4;
const MiB = 1024 * 1024;

// #region frame-encoder
/** Length-prefix framing: a 4-byte big-endian unsigned length, then that many payload bytes. */
export function encodeFrame(payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32BE(payload.length);
  return Buffer.concat([header, payload]);
}
// #endregion frame-encoder

// #region frame-decoder
/**
 * The payload of every frame in `source`, in order, whatever the chunking. A header that announces more than
 * `maxSize` bytes throws before a single payload byte is buffered; so does a stream that ends inside a frame.
 */
export async function* readFrames(source: Chunks, maxSize: number): AsyncGenerator<Buffer> {
  // #region exercise-frame-decoder
  let parts: Buffer[] = []; // bytes received and not yet handed out: at most one header and one payload
  let have = 0;
  let size = -1; // the payload size announced by the current header; -1 while that header is incomplete
  /** The first n bytes of what is buffered (the caller checked that there are that many). */
  const take = (n: number): Buffer => {
    const all = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, have);
    parts = n < all.length ? [all.subarray(n)] : [];
    have -= n;
    return all.subarray(0, n);
  };
  for await (const chunk of source) {
    parts.push(chunk);
    have += chunk.length;
    // One chunk may hold the end of a frame, several whole frames, and the start of the next one.
    for (;;) {
      if (size === -1) {
        // The header itself may be split across chunks: wait until all 4 of its bytes are here.
        if (have < HEADER) break;
        size = take(HEADER).readUInt32BE(0);
        if (size > maxSize)
          throw new FramingError(`frame header announces ${size} bytes, over the limit of ${maxSize}`);
      }
      if (have < size) break;
      const payload = take(size);
      size = -1;
      yield payload;
    }
  }
  if (size !== -1)
    throw new FramingError(`the stream ended inside a frame (${have} of ${size} payload bytes)`);
  if (have > 0) throw new FramingError(`the stream ended inside a frame header (${have} of ${HEADER} bytes)`);
  // #endregion exercise-frame-decoder
}
// #endregion frame-decoder

/** `"hello"` for a short text, `150000 bytes` for anything long or binary: a message shown on one line. */
export function preview(message: Buffer): string {
  const text = message.toString('utf8');
  const printable = !/[\p{Cc}\uFFFD]/u.test(text);
  return printable && message.length <= 40 ? JSON.stringify(text) : `(${message.length} bytes)`;
}

interface Limits {
  maxSize: number;
  idleMs: number;
}

// #region server
/**
 * The echo server: every message comes back as one frame. Limits per peer: a message is at most maxSize bytes
 * (a bigger header closes the connection), at most one echo waits to be sent (we stop reading until the peer
 * reads it), and a peer silent for idleMs is closed. Nothing a peer sends can throw out of `serve`.
 */
export function createFrameServer(limits: Limits, log: Log): net.Server {
  const server = net.createServer({ noDelay: true });
  server.on('connection', (socket) => {
    void serve(socket);
  });

  async function serve(socket: net.Socket): Promise<void> {
    const key = hostPort(socket.remoteAddress, socket.remotePort);
    log(`${key} connected`);
    // Reads and writes both count as activity: an echo server only writes what the peer sent, so this is its silence.
    // The verdict comes after the poll phase (setImmediate): a server that was stopped or starved wakes with this
    // timer overdue and the peer's bytes still unread, and the event loop runs timers before it reads sockets.
    let idle = false;
    socket.setTimeout(limits.idleMs, () => {
      const moved = socket.bytesRead + socket.bytesWritten;
      setImmediate(() => {
        if (socket.destroyed || socket.bytesRead + socket.bytesWritten !== moved) return; // bytes came after all
        idle = true;
        log(`${key} idle for ${limits.idleMs} ms: closing`);
        socket.destroy();
      });
    });
    let count = 0;
    try {
      for await (const message of readFrames(socket, limits.maxSize)) {
        count++;
        log(`${key} message ${count}: ${preview(message)}`);
        // Backpressure: a peer that does not read its echo stops being read, so only one echo ever waits here.
        if (!socket.write(encodeFrame(message)))
          await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
      }
      log(`${key} closed the connection after ${count} message(s)`);
      socket.end();
    } catch (err) {
      // A framing error, a reset, a timeout: one line, and this connection (only this one) is closed.
      if (!idle) log(`${key} ${describeError(err)}: closing`);
      socket.destroy();
    }
  }
  return server;
}
// #endregion server

// #region client
async function runClient(host: string, port: number, words: string[]): Promise<void> {
  const log = logger('client');
  const socket = net.connect({ host, port, noDelay: true });
  socket.on('error', (err) => fatal('client', err));
  await once(socket, 'connect');
  let sent = 0;
  let inputDone = false;
  let back = 0;
  const send = (text: string) => {
    const message = Buffer.from(text);
    sent++;
    log(`> ${preview(message)}`);
    socket.write(encodeFrame(message));
  };
  const finishIfDone = () => {
    if (inputDone && back === sent) socket.end();
  };
  if (words.length > 0) {
    for (const word of words) send(word);
    inputDone = true;
  } else {
    log(`connected to ${hostPort(host, port)}: each line you type is sent as one frame, Ctrl-D to stop`);
    onLines(process.stdin, send);
    process.stdin.on('end', () => {
      inputDone = true;
      finishIfDone();
    });
  }
  try {
    for await (const message of readFrames(socket, 64 * MiB)) {
      back++;
      log(`< ${preview(message)}`);
      finishIfDone();
    }
  } catch (err) {
    fatal('client', err);
  }
  if (back < sent) fatal('client', new Error(`the server closed after ${back} of ${sent} echoes`));
  process.exit(0);
}
// #endregion client

// #region arrivals
/**
 * Sends `writes` over a real loopback connection and returns the 'data' chunks the server received.
 * 'coalesced': the server reads nothing until every write is in the kernel; 'one-by-one': each write is
 * read by the server before the next one is made.
 */
async function arrivals(writes: Buffer[], how: 'coalesced' | 'one-by-one'): Promise<Buffer[]> {
  const server = net.createServer({ pauseOnConnect: how === 'coalesced' });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' });
  client.setNoDelay(true); // no Nagle: each write() leaves at once, as its own segment
  client.resume(); // read (nothing but) the server's FIN, so this socket can close
  await once(client, 'connect');
  const [conn] = await accepted;
  const chunks: Buffer[] = [];
  let received = 0;
  let wake = () => {};
  conn.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    received += chunk.length;
    wake();
  });
  let sent = 0;
  for (const bytes of writes) {
    // The callback runs once the kernel has taken the bytes.
    await new Promise((resolve) => client.write(bytes, resolve));
    sent += bytes.length;
    if (how === 'one-by-one') while (received < sent) await new Promise<void>((r) => (wake = r));
  }
  client.end();
  conn.resume();
  await once(conn, 'end');
  conn.end();
  server.close();
  return chunks;
}
// #endregion arrivals

// #region notes-parser
/** The notes' chat server (note 002): `data = data.replace(/\r\n/, '')` on each 'data', as if it were one message. */
const notesParse = (chunks: Buffer[]) => chunks.map((chunk) => chunk.toString('utf8').replace(/\r\n/, ''));
// #endregion notes-parser

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

async function demo(): Promise<void> {
  const log = logger('demo');
  const sizes = (chunks: Buffer[]) => chunks.map((c) => c.length).join(', ');
  const show = (texts: string[]) =>
    texts.map((t) => (t.length > 40 ? `(${t.length} chars)` : JSON.stringify(t)));

  log(
    "1. 粘包, coalescing: three writes, 'alice\\r\\n' 'hello\\r\\n' 'byebye\\r\\n', to a server not reading yet",
  );
  const three = ['alice\r\n', 'hello\r\n', 'byebye\r\n'].map((t) => Buffer.from(t));
  const coalesced = await arrivals(three, 'coalesced');
  logger('server')(
    `3 write() calls arrived as ${coalesced.length} 'data' event(s): ${show(coalesced.map(String)).join(', ')}`,
  );
  const notes = notesParse(coalesced);
  logger('notes')(
    `replace(/\\r\\n/, '') per 'data' sees ${notes.length} message(s): ${show(notes).join(', ')}`,
  );
  const lines = await collect(readLines(coalesced, 4096));
  logger('lines')(`readLines() sees ${lines.length} lines: ${show(lines).join(', ')}`);

  log('2. 拆包, splitting: one write of a frame with a 150000-byte message');
  const big = encodeFrame(Buffer.alloc(150_000, 'x'));
  const split = await arrivals([big], 'coalesced');
  logger('server')(
    `1 write() call of ${big.length} bytes arrived as ${split.length} 'data' events: ${sizes(split)}`,
  );
  logger('notes')(`one message per 'data' would be ${notesParse(split).length} messages`);
  const framesBig = await collect(readFrames(split, MiB));
  logger('frames')(`readFrames() sees ${framesBig.length} message: ${framesBig.map(preview).join(', ')}`);

  log("3. a header split across chunks: the frame for 'hello' written one byte at a time");
  const hello = encodeFrame(Buffer.from('hello'));
  const trickle = await arrivals(
    [...hello].map((b) => Buffer.from([b])),
    'one-by-one',
  );
  logger('server')(
    `${hello.length} write() calls arrived as ${trickle.length} 'data' events: ${sizes(trickle)}`,
  );
  logger('notes')(`per 'data': ${show(notesParse(trickle)).join(', ')}`);
  const framesHello = await collect(readFrames(trickle, MiB));
  logger('frames')(`readFrames() sees ${framesHello.length} message: ${framesHello.map(preview).join(', ')}`);

  log('4. the echo server: every message comes back as one frame, whatever the chunking');
  const serverLog = logger('server');
  const server = createFrameServer({ maxSize: MiB, idleMs: 2000 }, serverLog);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  printListening(serverLog, server.address());
  const { port } = server.address() as net.AddressInfo;
  const talk = async (name: string, bytes: Buffer[], expect: number) => {
    const peer = logger(name);
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.on('error', (err) => peer(`error: ${describeError(err)}`));
    await once(socket, 'connect');
    for (const b of bytes) socket.write(b);
    if (expect === 0) socket.end();
    let got = 0;
    try {
      for await (const echo of readFrames(socket, MiB)) {
        peer(`< ${preview(echo)}`);
        if (++got === expect) socket.end();
      }
      peer(`closed after ${got} echo(es)`);
    } catch (err) {
      peer(`closed by the server after ${got} echo(es): ${describeError(err)}`);
    }
  };
  // Three frames in one write, the last one empty: three echoes.
  const threeFrames = Buffer.concat(['hello', '你好', ''].map((t) => encodeFrame(Buffer.from(t))));
  logger('alice')(`> 3 frames in one write: "hello", "你好", "" (${threeFrames.length} bytes)`);
  await talk('alice', [threeFrames], 3);

  log('5. errors: each closes that connection only; the server stays up');
  const oversize = Buffer.from([0xff, 0xff, 0xff, 0xff]);
  logger('mallory')('> a header announcing 4294967295 bytes (ff ff ff ff)');
  await talk('mallory', [oversize], 1);
  const truncated = encodeFrame(Buffer.from('0123456789')).subarray(0, HEADER + 3);
  logger('trudy')('> a header for 10 bytes, then 3 bytes, then FIN');
  await talk('trudy', [truncated], 0);
  logger('bob')('> "still up?"');
  await talk('bob', [encodeFrame(Buffer.from('still up?'))], 1);
  server.close();
  await once(server, 'close');

  const lineErrors: [string, Buffer[]][] = [
    ['a 5000-byte line, limit 4096', [Buffer.alloc(5000, 'x')]],
    ["'bye' and no '\\n' before the end", [Buffer.from('bye')]],
  ];
  for (const [what, chunks] of lineErrors) {
    try {
      await collect(readLines(chunks, 4096));
    } catch (err) {
      logger('lines')(`${what}: ${describeError(err)}`);
    }
  }
  log('done');
}

async function main(): Promise<void> {
  // The client's messages are the words after its role: take them out before the flags are parsed.
  const argv = process.argv.slice(2);
  const words: string[] = [];
  if (argv[0] === 'client') {
    for (let i = 1; i < argv.length; i++) {
      const arg = argv[i] as string;
      if (arg.startsWith('-')) {
        if (!arg.includes('=')) i++; // a flag and its value
      } else {
        words.push(arg);
        argv.splice(i--, 1);
      }
    }
  }
  const args = parseLabArgs({
    roles: ['server', 'client'],
    port: 8113,
    argv,
    flags: {
      'max-size': {
        default: String(MiB),
        help: 'largest message in bytes; a bigger header closes the connection',
      },
      'idle-ms': { default: '300000', help: 'a peer that sends nothing for this long is closed' },
    },
  });
  if (args.role === 'server') {
    const log = logger('server');
    const limits = { maxSize: args.int('max-size'), idleMs: args.int('idle-ms') };
    const server = createFrameServer(limits, log);
    server.on('error', (err) => fatal('server', err));
    stopOnSignal(server, log);
    server.listen(args.port, args.host, () => {
      printListening(log, server.address());
      // The send queue is backpressure's: one echo at most waits for a peer, which is not read until it reads.
      log(
        `limits: messages up to ${limits.maxSize} bytes, one echo queued per peer (not read until it reads), idle after ${limits.idleMs} ms`,
      );
    });
  } else if (args.role === 'client') {
    await runClient(args.host, args.port, words);
  } else {
    await demo();
  }
}

// The tests import this file for its framers; run as a program (node labs/13-framing.ts), it plays a role.
const entry = process.argv[1];
if (entry !== undefined && fs.realpathSync(entry) === fs.realpathSync(fileURLToPath(import.meta.url))) {
  await main();
}
