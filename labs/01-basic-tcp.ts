// Lab 01: a first TCP server and client with node:net (notes 000, 002, 003, 004).
// The server greets each connection with 'hello\r\n' and echoes what it receives; the client says 'world!'.
// Run: npm run lab 01 (the demo) · npm run lab 01 server · npm run lab 01 client · nc -N 127.0.0.1 8124
// Flags: -- --port N (default 8124, the note's port) --host H (default 127.0.0.1)
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { fatal, parseLabArgs } from './lib/cli.ts';
import { describeLimits, guard, LIMITS } from './lib/guard.ts';
import { onLines } from './lib/lines.ts';
import { fiveTuple, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';

const args = parseLabArgs({ roles: ['server', 'client'], port: 8124 });

// #region server
function createGreetingServer(log: Log): net.Server {
  return net.createServer((socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    log(`connection from ${peer}`);
    // The same five fields seen from the server's end: local and remote are swapped.
    log(`this end of it: ${fiveTuple(socket)}`);
    socket.on('end', () => log(`${peer} sent FIN: 'end'`));
    socket.on('close', () => log(`${peer} closed`));
    // A client that vanishes (RST) must not take the server down with it.
    socket.on('error', (err) => log(`${peer} error: ${err.message}`));
    // #region exercise-greet
    socket.write('hello\r\n');
    // Everything the client sends flows straight back; when the client ends, pipe ends our side too.
    socket.pipe(socket);
    // #endregion exercise-greet
    // What a trusted server does (labs/lib/guard.ts): a peer silent for 5 minutes is closed, and one that stops
    // reading while 256 KiB wait for it is dropped. pipe() already stops reading when write() says false;
    // this is the bound that holds even if something between them does not.
    guard(socket, log).watchBytes();
  });
}
// #endregion server

// #region client
function runClient(host: string, port: number): Promise<void> {
  const log = logger('client');
  const socket = net.connect({ host, port });
  socket.on('connect', () => log(`connected: ${fiveTuple(socket)}`));
  socket.on('end', () => log("server sent FIN: 'end'"));
  // #region exercise-client
  socket.on('connect', () => socket.write('world!\r\n'));
  // TCP has no message boundaries: 'hello' and 'world!' may arrive in one chunk or two. Frame by lines.
  onLines(socket, (line) => {
    log(`received: ${line}`);
    if (line === 'world!') socket.end();
  });
  // #endregion exercise-client
  return new Promise((resolve) => {
    socket.on('error', (err) => fatal('client', err));
    socket.on('close', () => {
      log('closed');
      resolve();
    });
  });
}
// #endregion client

async function listen(server: net.Server | http.Server, port: number, host: string) {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

// #region five-tuple
async function twoConnections(port: number, log: Log) {
  const a = net.connect(port, '127.0.0.1');
  const b = net.connect(port, '127.0.0.1');
  await Promise.all([once(a, 'connect'), once(b, 'connect')]);
  log(`connection 1: ${fiveTuple(a)}`);
  log(`connection 2: ${fiveTuple(b)}`);
  log('same server address and port; only the client port differs, and that is enough to tell them apart');
  for (const socket of [a, b]) {
    socket.resume(); // read (and drop) the greeting, so closing sends a polite FIN and not a reset
    socket.end();
  }
  await Promise.all([once(a, 'close'), once(b, 'close')]);
}
// #endregion five-tuple

// #region raw-http
async function httpIsText(log: Log) {
  const web = http.createServer((_req, res) => res.end('hello over HTTP\n'));
  const port = await listen(web, 0, '127.0.0.1');
  const raw = net.connect(port, '127.0.0.1');
  const request = ['GET / HTTP/1.1', `Host: 127.0.0.1:${port}`, 'Connection: close', '', ''].join('\r\n');
  raw.write(request);
  for (const line of request.split('\r\n').slice(0, 3)) log(`> ${line}`);
  let response = '';
  raw.setEncoding('utf8');
  raw.on('data', (chunk: string) => {
    response += chunk;
  });
  await once(raw, 'end');
  const [head = '', body = ''] = response.split('\r\n\r\n');
  for (const line of head.split('\r\n')) log(`< ${line}`);
  log(`< (body) ${JSON.stringify(body)}`);
  web.close();
}
// #endregion raw-http

async function demo() {
  const log = logger('demo');
  log('starting the server on 127.0.0.1, port 0: the OS picks a free port');
  const server = createGreetingServer(logger('server'));
  const port = await listen(server, 0, '127.0.0.1');
  printListening(logger('server'), server.address());
  await runClient('127.0.0.1', port);
  log(
    'two clients at once, to compare their five-tuples (protocol, local address:port, remote address:port)',
  );
  await twoConnections(port, log);
  log('HTTP is just text over a TCP connection: a hand-written request to a node:http server');
  await httpIsText(logger('raw'));
  server.close();
  await once(server, 'close');
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const server = createGreetingServer(log);
  server.on('error', (err) => fatal('server', err));
  // Ctrl-C or SIGTERM: close the open connections and the server, then exit 0 (labs/lib/server.ts).
  stopOnSignal(server, log);
  server.listen(args.port, args.host, () => {
    printListening(log, server.address());
    log(`limits: ${describeLimits(LIMITS, false)}`);
  });
} else if (args.role === 'client') {
  await runClient(args.host, args.port);
} else {
  await demo();
}
