// Lab 03: net.Server up close: listen(0) and address(), host and backlog, Unix sockets, the four events,
// getConnections() and maxConnections, close(), unref()/ref(), net.isIP (notes 000, 001, 003, 004).
// Run: npm run lab 03 (the demo) · npm run lab 03 server [-- --max-connections 2 --backlog 16 --unix --unref]
// Then: nc 127.0.0.1 8080 (or nc -U the socket path) · type `close` in the server's terminal to call close()
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { fatal, parseLabArgs } from './lib/cli.ts';
import { describeLimits, guard, LIMITS } from './lib/guard.ts';
import { onLines } from './lib/lines.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';

const args = parseLabArgs({
  roles: ['server'],
  port: 8080,
  flags: {
    backlog: { default: '511', help: 'how many finished handshakes may wait in the kernel for accept()' },
    'max-connections': {
      default: 'none',
      help: 'set server.maxConnections: connections beyond N are dropped',
    },
    unix: {
      type: 'boolean',
      help: `listen on a Unix domain socket (${defaultSocketPath()}) instead of a port`,
    },
    path: {
      default: 'none',
      help: 'listen on this Unix socket path (Windows: a pipe name like \\\\?\\pipe\\lab03)',
    },
    unref: { type: 'boolean', help: 'unref() the server: it no longer keeps the process alive by itself' },
  },
});

/** A Unix socket is a file in the temp dir; Windows has no such files and uses a named pipe instead. */
function defaultSocketPath(tag = ''): string {
  const name = `node-net-workbook-03${tag}`;
  return process.platform === 'win32' ? `\\\\?\\pipe\\${name}` : path.join(os.tmpdir(), `${name}.sock`);
}

const show = (value: unknown) => inspect(value, { breakLength: Number.POSITIVE_INFINITY });

// #region server
/** Greets each connection with its number and the live count, then echoes; `max` sets maxConnections. */
function createLabServer(log: Log, max?: number): net.Server {
  let seq = 0;
  const server = net.createServer((socket) => {
    const id = `#${++seq}`;
    // A Unix socket has no IP address and no port: the number is all that names the connection.
    const from = socket.remoteAddress
      ? `from ${hostPort(socket.remoteAddress, socket.remotePort)}`
      : '(Unix socket: no address, no port)';
    // A client that vanishes (RST) must not take the server down with it.
    socket.on('error', (err) => log(`${id} error: ${describeError(err)}`));
    socket.on('close', () => server.getConnections((_err, n) => log(`${id} closed; getConnections: ${n}`)));
    // There is no server.connections any more: ask, and get the answer in a callback.
    server.getConnections((_err, count) => {
      log(`'connection' ${id} ${from}; getConnections: ${count}`);
      socket.write(`hello ${id}: ${count} connection(s) open\r\n`);
      socket.pipe(socket);
      // The limits every server here keeps (labs/lib/guard.ts): idle 5 minutes, 256 KiB unread per peer.
      guard(socket, log, {}, { name: id }).watchBytes();
    });
  });
  if (max !== undefined) {
    log(`maxConnections = ${max}: Node accepts, counts, and closes whatever comes over the limit`);
    // #region exercise-max-connections
    server.maxConnections = max;
    // Since Node 18.6 the check in onconnection() says so with 'drop' before it closes the socket.
    server.on('drop', (info) => {
      const who = info?.remoteAddress ? hostPort(info.remoteAddress, info.remotePort) : 'a client';
      log(`'drop': ${who} is over maxConnections (${max}); Node closed it at once`);
    });
    // #endregion exercise-max-connections
  }
  return server;
}
// #endregion server

// #region stale-socket
/** listen(path) fails with EADDRINUSE while the file exists, even when nobody is behind it any more. */
async function clearStaleSocket(file: string, log: Log): Promise<void> {
  if (!fs.existsSync(file)) return;
  log(`${file} exists: is a server behind it, or is it left over from a crash?`);
  // #region exercise-stale-socket
  // Only ever delete a socket: a typo in --path must not remove somebody's file.
  if (!fs.lstatSync(file).isSocket()) fatal('server', `${file} exists and is not a socket; not touching it`);
  const probe = net.connect(file);
  const answer = await new Promise<string>((resolve) => {
    probe.once('connect', () => resolve('live'));
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  probe.destroy();
  if (answer === 'live')
    fatal('server', `another server is listening on ${file}: stop it, or pick another --path`);
  if (answer !== 'ECONNREFUSED') fatal('server', `cannot tell whether ${file} is in use (${answer})`);
  // The file is there but nobody accepts: a crashed run left it behind. Removing it is safe.
  fs.unlinkSync(file);
  log(`removed a stale socket file: nobody answered on ${file} (ECONNREFUSED)`);
  // #endregion exercise-stale-socket
}
// #endregion stale-socket

async function listen(server: net.Server, options: net.ListenOptions): Promise<void> {
  server.listen(options);
  await once(server, 'listening');
}

/** Resolves with each line a client receives, so the demo can go step by step. */
function demoClient(name: string, target: number | string) {
  const log = logger(name);
  const socket = typeof target === 'number' ? net.connect(target, '127.0.0.1') : net.connect(target);
  const queue: string[] = [];
  let wake = () => {};
  onLines(socket, (line) => {
    log(`received: ${line}`);
    queue.push(line);
    wake();
  });
  socket.on('error', (err) => log(`error: ${describeError(err)}`));
  socket.on('close', () => wake());
  const nextLine = async (): Promise<string | undefined> => {
    while (queue.length === 0 && !socket.destroyed) await new Promise<void>((resolve) => (wake = resolve));
    return queue.shift();
  };
  const end = async () => {
    socket.end();
    if (!socket.destroyed) await once(socket, 'close');
    log('closed');
  };
  return { socket, log, nextLine, end };
}

// #region listen
async function listenAndAddress(log: Log, server: net.Server): Promise<number> {
  const serverLog = logger('server');
  server.on('listening', () => serverLog(`'listening': address() = ${show(server.address())}`));
  // Port 0: the OS picks a free port. Host: loopback only. Backlog 16: the kernel's accept queue.
  server.listen(0, '127.0.0.1', 16);
  log(`right after listen(): address() = ${show(server.address())} (the host is looked up first)`);
  await once(server, 'listening');
  printListening(serverLog, server.address());
  return (server.address() as net.AddressInfo).port;
}
// #endregion listen

// #region count-and-limit
async function countAndLimit(log: Log, port: number) {
  const one = demoClient('client 1', port);
  await one.nextLine();
  const two = demoClient('client 2', port);
  await two.nextLine();
  log('a third client, over maxConnections = 2:');
  const three = net.connect(port, '127.0.0.1');
  const threeLog = logger('client 3');
  three.on('connect', () => threeLog("'connect': the kernel completed the handshake"));
  three.on('data', (chunk) => {
    // Only without a limit: the server greeted it. Hang up so the demo goes on.
    threeLog(`received ${chunk.length} bytes: not dropped`);
    three.destroy();
  });
  three.on('end', () => threeLog("'end' before a single byte: the server hung up (dropped)"));
  await once(three, 'close');
  one.socket.write('still served\n');
  await one.nextLine();
  return { one, two };
}
// #endregion count-and-limit

// #region close
async function closeGracefully(
  log: Log,
  server: net.Server,
  port: number,
  open: ReturnType<typeof demoClient>[],
) {
  let closed = false;
  server.on('close', () => {
    closed = true;
    logger('server')("'close': every connection has ended");
  });
  server.close();
  logger('server')(`close() called: server.listening = ${server.listening}`);
  // The listening socket is gone at once: a new client is refused by the kernel.
  const four = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => {
    four.on('error', (err) => logger('client 4')(`error: ${describeError(err)}`));
    four.on('close', resolve);
  });
  // The connections already open are still served.
  const [one, two] = open as [ReturnType<typeof demoClient>, ReturnType<typeof demoClient>];
  one.socket.write('served after close()\n');
  await one.nextLine();
  await one.end();
  log(`after client 1 left, server 'close' has fired: ${closed} (client 2 is still connected)`);
  const serverClosed = once(server, 'close');
  await two.end();
  await serverClosed;
}
// #endregion close

// #region unref
async function unrefAndRef(log: Log) {
  // Handles that keep the event loop (and so the process) alive; an unref'ed server is left out.
  const servers = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
  const lonely = createLabServer(logger('lonely'));
  await listen(lonely, { port: 0, host: '127.0.0.1' });
  log(`a new server; servers keeping the process alive: ${servers()}`);
  lonely.unref();
  log(`after unref(): ${servers()}; lonely.listening = ${lonely.listening}`);
  const five = demoClient('client 5', (lonely.address() as net.AddressInfo).port);
  await five.nextLine();
  log('the unref()ed server still accepts and serves: unref() does not pause listening');
  await five.end();
  lonely.ref();
  log(`after ref(): ${servers()}`);
  lonely.unref();
  log('unref() again and never close() it: it will not stop the process from exiting at the end');
}
// #endregion unref

// #region unix
async function unixSocket(log: Log) {
  const file = defaultSocketPath(`-demo-${process.pid}`);
  const unixLog = logger('unix');
  const server = createLabServer(unixLog);
  await listen(server, { path: file });
  unixLog(`'listening': address() = ${show(server.address())}: a path, not { address, family, port }`);
  const onWindows = process.platform === 'win32';
  if (!onWindows) log(`the socket is a file: exists = ${fs.existsSync(file)}`);
  const six = demoClient('client 6', file);
  await six.nextLine();
  await six.end();
  server.close();
  await once(server, 'close');
  if (onWindows) log('named pipes are not files: nothing to clean up');
  else log(`after close(): exists = ${fs.existsSync(file)} (a crash would leave it: see the server role)`);
}
// #endregion unix

// #region pause-and-http
async function pauseOnConnect(log: Log) {
  const pausedLog = logger('paused');
  const server = net.createServer({ pauseOnConnect: true });
  await listen(server, { port: 0, host: '127.0.0.1' });
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve) => client.write('early bytes\n', () => resolve()));
  const [socket] = await accepted;
  socket.on('data', (chunk) =>
    pausedLog(`'data' ${show(chunk.toString())}; bytesRead = ${socket.bytesRead}`),
  );
  // Nothing is read from the kernel until resume(): the socket could still be handed to another process.
  pausedLog(
    `'connection' with pauseOnConnect: a 'data' listener is attached, bytesRead = ${socket.bytesRead}`,
  );
  socket.resume();
  await once(socket, 'data');
  // Read (and drop) the server's FIN too, so both ends close and nothing keeps the process alive.
  client.resume();
  client.end();
  socket.end();
  server.close();
  await once(server, 'close');
  log(`http.createServer() instanceof net.Server: ${http.createServer() instanceof net.Server}`);
}
// #endregion pause-and-http

// #region is-ip
function isIpTable(log: Log) {
  const inputs = ['127.0.0.1', '::1', 'localhost', '1.2.3.256', '::ffff:127.0.0.1', '127.1', ''];
  log(`${'input'.padEnd(20)} isIP  isIPv4  isIPv6`);
  for (const input of inputs) {
    const cells = [net.isIP(input), net.isIPv4(input), net.isIPv6(input)].map(String);
    log(`${show(input).padEnd(20)} ${cells[0]?.padEnd(5)} ${cells[1]?.padEnd(7)} ${cells[2]}`);
  }
}
// #endregion is-ip

async function demo() {
  const log = logger('demo');
  log('1. listen(0, host, backlog) and address()');
  const server = createLabServer(logger('server'), 2);
  const port = await listenAndAddress(log, server);
  log('2. connections, getConnections() and maxConnections');
  const open = await countAndLimit(log, port);
  log("3. close(): no new connections, but 'close' waits for the open ones");
  await closeGracefully(log, server, port, [open.one, open.two]);
  log('4. unref() and ref()');
  await unrefAndRef(log);
  log('5. listen(path): a Unix domain socket');
  await unixSocket(log);
  log('6. createServer({ pauseOnConnect }) and http.Server');
  await pauseOnConnect(log);
  log('7. net.isIP(), isIPv4(), isIPv6(): they only look at the string, no DNS');
  isIpTable(logger('isIP'));
  log('done; the unref()ed server from step 4 is still listening, and the process exits anyway');
}

if (args.role === 'server') {
  const log = logger('server');
  const maxFlag = args.flag('max-connections');
  const max = maxFlag === 'none' ? undefined : args.int('max-connections');
  const server = createLabServer(log, max);
  const file = args.flag('path') !== 'none' ? args.flag('path') : args.has('unix') ? defaultSocketPath() : '';
  server.on('error', (err) => fatal('server', err));
  server.on('close', () => {
    log("'close': closed, and no connection is left");
    process.exit(0);
  });
  const open = stopOnSignal(server, log);
  server.on('listening', () => {
    printListening(log, server.address());
    log(`limits: ${describeLimits(LIMITS, false)}`);
    if (!file) log(`address(): ${show(server.address())}, backlog ${args.int('backlog')}`);
    if (args.has('unref')) {
      server.unref();
      log('unref(): still listening, but the process may now exit when nothing else keeps it alive');
    } else {
      log('type `close` and Enter here to call server.close()');
    }
  });
  // An unref()ed server would be kept alive by a stdin reader, so it reads no commands.
  if (!args.has('unref')) {
    onLines(process.stdin, (line) => {
      if (line.trim() !== 'close' || !server.listening) return;
      // close() first, then say so: whoever reads the line may connect at once.
      server.close();
      log(`close() called: no new connections; 'close' waits for ${open.size} open connection(s)`);
    });
  }
  if (file && process.platform !== 'win32') await clearStaleSocket(file, log);
  const backlog = args.int('backlog');
  server.listen(file ? { path: file, backlog } : { port: args.port, host: args.host, backlog });
} else {
  await demo();
}
