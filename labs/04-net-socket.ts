// Lab 04: net.Socket up close: both ends of a connection, bytes vs characters, bytesRead/bytesWritten,
// write callbacks and 'drain', and three ways to hang up: end(), destroy(), resetAndDestroy() (notes 000, 001, 004).
// Run: npm run lab 04 (the demo) · npm run lab 04 server · npm run lab 04 client [-- --close end|destroy|reset]
// Flags: --port N (default 6969, note 004's port) --host H (default 127.0.0.1) --send TEXT · nc 127.0.0.1 6969
import { once } from 'node:events';
import net from 'node:net';
import { inspect } from 'node:util';
import { fail, fatal, parseLabArgs } from './lib/cli.ts';
import { describeLimits, guard, LIMITS } from './lib/guard.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';

const hangUps = ['end', 'destroy', 'reset'] as const;
type HangUp = (typeof hangUps)[number];

const args = parseLabArgs({
  roles: ['server', 'client'],
  port: 6969,
  flags: {
    send: { default: 'héllo, 世界', help: 'the line the client sends (then waits for its echo)' },
    close: { default: 'end', help: 'how the client hangs up: end (FIN), destroy (now), reset (RST)' },
  },
});

const show = (value: unknown) => inspect(value, { breakLength: Number.POSITIVE_INFINITY });
/** Resolves with 'close''s hadError. (events.once() would reject on an 'error' emitted before it.) */
const closeOf = (socket: net.Socket) => new Promise<boolean>((resolve) => socket.once('close', resolve));

// #region ends
/** One end of a connection as this socket sees it: `local 127.0.0.1:6969 (IPv4), remote 127.0.0.1:53122 (IPv4)`. */
function ends(socket: net.Socket): string {
  const local = `${hostPort(socket.localAddress, socket.localPort)} (${socket.localFamily})`;
  const remote = `${hostPort(socket.remoteAddress, socket.remotePort)} (${socket.remoteFamily})`;
  return `local ${local}, remote ${remote}`;
}
// #endregion ends

// #region server
/** An echo server that says what each connection's peer did: how many bytes, and how it hung up. */
function createReportingServer(log: Log): net.Server {
  let seq = 0;
  return net.createServer((socket) => {
    const id = `#${++seq}`;
    log(`'connection' ${id}: ${ends(socket)}`);
    socket.on('data', (chunk) => log(`${id} 'data': ${chunk.length} bytes; bytesRead = ${socket.bytesRead}`));
    socket.pipe(socket);
    // #region exercise-peer-events
    socket.on('end', () => log(`${id} 'end': the peer sent FIN, it will send nothing more`));
    // Without an 'error' listener a peer's RST would crash the whole server.
    socket.on('error', (err) => log(`${id} 'error': ${describeError(err)}`));
    socket.on('close', (hadError) => log(`${id} 'close': hadError = ${hadError}`));
    // #endregion exercise-peer-events
    socket.on('close', () =>
      log(`${id} totals: bytesRead = ${socket.bytesRead}, bytesWritten = ${socket.bytesWritten}`),
    );
    // The limits every server here keeps (labs/lib/guard.ts): idle 5 minutes, 256 KiB unread per peer.
    guard(socket, log, {}, { name: id }).watchBytes();
  });
}
// #endregion server

// #region hang-up
const hangUpSays: Record<HangUp, string> = {
  end: 'end(): FIN after everything queued is sent; we can still read until the peer ends too',
  destroy: 'destroy(): close now; queued writes are dropped, the kernel sends FIN',
  reset: 'resetAndDestroy(): close now with RST; the peer gets ECONNRESET',
};

function hangUp(socket: net.Socket, how: HangUp, log: Log): void {
  log(hangUpSays[how]);
  // #region exercise-hang-up
  if (how === 'end') socket.end();
  else if (how === 'destroy') socket.destroy();
  else socket.resetAndDestroy();
  // #endregion exercise-hang-up
  if (!socket.writableEnded && !socket.destroyed)
    fatal('client', 'still connected: hang up with end(), destroy() or resetAndDestroy()');
}
// #endregion hang-up

// #region client
async function runClient(host: string, port: number, text: string, how: HangUp): Promise<void> {
  const log = logger('client');
  const socket = net.connect({ host, port });
  // Before 'connect' an error is ECONNREFUSED and friends: one line, exit 1.
  socket.on('error', (err) => fatal('client', err));
  socket.on('connect', () => log(`'connect': ${ends(socket)}`));
  socket.on('ready', () => log("'ready': right after 'connect', the socket can be used"));
  await once(socket, 'connect');
  const line = `${text}\n`;
  const bytes = Buffer.byteLength(line);
  log(`write(${show(line)}): ${line.length} characters, ${bytes} bytes in UTF-8`);
  socket.write(line, () =>
    log(`write callback: handed to the kernel; bytesWritten = ${socket.bytesWritten}`),
  );
  // Decode on the socket, so a character split between two chunks is put back together.
  socket.setEncoding('utf8');
  let echo = '';
  socket.on('data', (chunk: string) => {
    echo += chunk;
  });
  await new Promise<void>((resolve) => {
    const check = () => (Buffer.byteLength(echo) >= bytes || socket.readableEnded) && resolve();
    socket.on('data', check);
    socket.on('end', check);
  });
  log(`echo: ${show(echo)}; bytesRead = ${socket.bytesRead}`);
  socket.on('end', () => log("'end': the server sent FIN"));
  const closed = closeOf(socket);
  hangUp(socket, how, log);
  const hadError = await closed;
  log(
    `'close': hadError = ${hadError}; totals: bytesRead = ${socket.bytesRead}, bytesWritten = ${socket.bytesWritten}`,
  );
}
// #endregion client

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

// #region new-socket
async function newSocketAndConnect(log: Log, port: number, server: net.Server) {
  const clientLog = logger('client');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const socket = new net.Socket();
  clientLog(`new net.Socket(): pending = ${socket.pending}, connecting = ${socket.connecting}`);
  socket.connect(port, '127.0.0.1');
  clientLog(`connect(): pending = ${socket.pending}, connecting = ${socket.connecting}`);
  socket.on('connect', () =>
    clientLog(`'connect': pending = ${socket.pending}, connecting = ${socket.connecting}`),
  );
  socket.on('ready', () => clientLog("'ready': emitted right after 'connect'"));
  await once(socket, 'ready');
  log(
    `net.connect === net.createConnection: ${net.connect === net.createConnection}; both do the two steps above`,
  );
  const [peer] = await accepted;
  const peerClosed = closeOf(peer);
  clientLog(`this end: ${ends(socket)}`);
  logger('server')(`this end: ${ends(peer)}`);
  const mirrored = socket.localPort === peer.remotePort && socket.remotePort === peer.localPort;
  log(`mirror: client local = server remote and client remote = server local: ${mirrored}`);
  socket.end();
  socket.resume();
  await Promise.all([closeOf(socket), peerClosed]);
}
// #endregion new-socket

// #region split-character
async function splitCharacter(log: Log) {
  const euro = Buffer.from('€');
  log(
    `'€' is 1 character and ${euro.length} bytes in UTF-8 (${euro.toString('hex')}); the server cuts it 2 + 1`,
  );
  for (const name of ['raw', 'text']) {
    const clientLog = logger(name);
    let gotFirstChunk = () => {};
    const firstChunk = new Promise<void>((resolve) => (gotFirstChunk = resolve));
    const server = net.createServer(async (socket) => {
      socket.resume(); // read the client's FIN at the end, so this socket closes too
      socket.write(Buffer.concat([Buffer.from('price: '), euro.subarray(0, 2)]));
      // The rest only after the client has seen the first part: two chunks for sure.
      await firstChunk;
      socket.end(Buffer.concat([euro.subarray(2), Buffer.from('5\n')]));
    });
    const client = net.connect(await listen(server), '127.0.0.1');
    if (name === 'text') {
      // #region exercise-decode
      client.setEncoding('utf8');
      // #endregion exercise-decode
    }
    const pieces: string[] = [];
    client.on('data', (chunk: Buffer | string) => {
      const what = typeof chunk === 'string' ? 'a string' : `a Buffer of ${chunk.length} bytes, toString()`;
      // Like note 004's 'DATA: ' + data: each chunk is decoded on its own.
      const text = chunk.toString();
      clientLog(`chunk ${pieces.length + 1}: ${what} ${show(text)}`);
      pieces.push(text);
      gotFirstChunk();
    });
    await once(client, 'end');
    clientLog(`joined: ${show(pieces.join(''))}`);
    server.close();
  }
}
// #endregion split-character

// #region bytes-and-callback
async function bytesAndCallback(log: Log) {
  const serverLog = logger('server');
  // pauseOnConnect: the server reads nothing until resume(), so the kernel holds what the client sends.
  const server = net.createServer({ pauseOnConnect: true });
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect(await listen(server), '127.0.0.1');
  const line = 'héllo\n';
  log(`write(${show(line)}): ${line.length} characters, ${Buffer.byteLength(line)} bytes`);
  await new Promise<void>((resolve) =>
    client.write(line, () => {
      logger('client')(`write callback: the bytes left Node; bytesWritten = ${client.bytesWritten}`);
      resolve();
    }),
  );
  const [socket] = await accepted;
  serverLog(`not reading yet: bytesRead = ${socket.bytesRead}; the callback did not wait for the peer`);
  socket.resume();
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  serverLog(`resume(): 'data' ${chunk.length} bytes; bytesRead = ${socket.bytesRead}`);
  client.resume();
  client.end();
  socket.end();
  server.close();
  await once(server, 'close');
}
// #endregion bytes-and-callback

// #region drain
async function drainOnlyAfterFalse(log: Log, sinkPort: number) {
  const clientLog = logger('client');
  const socket = net.connect(sinkPort, '127.0.0.1');
  socket.resume(); // nothing comes but the sink's FIN, which we must read to close
  let drains = 0;
  socket.on('drain', () => {
    drains++;
    clientLog(`'drain': Node's buffer is empty again (writableLength = ${socket.writableLength})`);
  });
  socket.on('connect', () => clientLog("'connect': Node hands the queued bytes to the kernel"));
  const drained = once(socket, 'drain');
  // Still connecting: Node keeps what we write in its own buffer, so writableLength shows it all.
  const small = socket.write('hello');
  clientLog(`write(5 bytes) returned ${small}: writableLength = ${socket.writableLength}, under the mark`);
  const big = socket.write(Buffer.alloc(64 * 1024));
  clientLog(
    `write(64 KiB) returned ${big}: writableLength = ${socket.writableLength} > writableHighWaterMark (${socket.writableHighWaterMark})`,
  );
  await drained;
  socket.end();
  await closeOf(socket);
  log(`'drain' fired ${drains} time(s) for 2 writes: once, after the write() that returned false`);
}
// #endregion drain

// #region three-hang-ups
async function threeHangUps(log: Log, port: number, server: net.Server) {
  for (const how of hangUps) {
    const clientLog = logger(how);
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    const socket = net.connect(port, '127.0.0.1');
    socket.on('end', () => clientLog("'end': the server's FIN came back"));
    socket.on('error', (err) => clientLog(`'error': ${describeError(err)}`));
    const closed = closeOf(socket);
    const [peer] = await accepted;
    const peerClosed = closeOf(peer);
    // Let the echo come back first: an RST that arrives with unread data may be reported as a plain end.
    socket.write('ping\n');
    await once(socket, 'data');
    hangUp(socket, how, clientLog);
    clientLog(`'close': hadError = ${await closed}`);
    await peerClosed;
  }
  log("the peer saw 'end' for end() and destroy(), but 'error' ECONNRESET and hadError = true for a reset");
}
// #endregion three-hang-ups

// #region destroy-drops
async function destroyDropsQueuedData(log: Log, sink: net.Server, sinkPort: number) {
  const payload = Buffer.alloc(64 * 1024 * 1024);
  for (const how of ['end', 'destroy'] as const) {
    const clientLog = logger(`bulk ${how}`);
    const accepted = once(sink, 'connection') as Promise<[net.Socket]>;
    const socket = net.connect(sinkPort, '127.0.0.1');
    socket.resume();
    await once(socket, 'connect');
    const [peer] = await accepted;
    const peerClosed = closeOf(peer);
    socket.write(payload);
    // Most of the 64 MiB is still queued in Node when we hang up.
    if (how === 'end') socket.end();
    else socket.destroy();
    await peerClosed;
    clientLog(
      `write(64 MiB) then ${how}(): bytesWritten = ${socket.bytesWritten}, the server read ${peer.bytesRead} bytes`,
    );
  }
  log('end() sends everything first; destroy() throws away what the kernel had not taken yet');
  log('bytesWritten counts bytes given to write(), not bytes that reached the peer');
}
// #endregion destroy-drops

async function demo() {
  const log = logger('demo');
  const server = createReportingServer(logger('server'));
  const port = await listen(server);
  printListening(logger('server'), server.address());
  const sink = net.createServer((socket) => socket.resume());
  const sinkPort = await listen(sink);
  log('1. new net.Socket() + connect(), and the two ends of one connection');
  await newSocketAndConnect(log, port, server);
  log('2. bytes, not characters: one character split across two writes');
  await splitCharacter(log);
  log('3. bytesRead, bytesWritten and the write() callback');
  await bytesAndCallback(log);
  log("4. 'drain' comes only after write() returned false");
  await drainOnlyAfterFalse(log, sinkPort);
  log('5. three ways to hang up, and what the other end sees');
  await threeHangUps(log, port, server);
  log('6. destroy() is immediate: queued data is dropped');
  await destroyDropsQueuedData(log, sink, sinkPort);
  log("7. 'timeout' (an idle socket) is chapter 07");
  server.close();
  sink.close();
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const server = createReportingServer(log);
  server.on('error', (err) => fatal('server', err));
  stopOnSignal(server, log);
  server.listen(args.port, args.host, () => {
    printListening(log, server.address());
    log(`limits: ${describeLimits(LIMITS, false)}`);
  });
} else if (args.role === 'client') {
  const how = args.flag('close');
  if (!(hangUps as readonly string[]).includes(how))
    fail(`--close must be one of ${hangUps.join(', ')}, got '${how}'`);
  await runClient(args.host, args.port, args.flag('send'), how as HangUp);
} else {
  await demo();
}
