// Lab 02: the three-way handshake and the four-way close, made visible (notes 000, 002, 004).
// The kernel accepts connections while JavaScript is blocked; each FIN closes one direction; /proc/net/tcp shows the states.
// Run: npm run lab 02 (the demo) · npm run lab 02 server -- --block enter --half-open · npm run lab 02 client
// Flags: --port N (default 6969) --host H · server: --block MS|enter --backlog N --half-open · client: --message TEXT
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { fail, fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { describeLimits, guard, LIMITS } from './lib/guard.ts';
import { onLines } from './lib/lines.ts';
import { describeError, fiveTuple, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';

const args = parseLabArgs({
  roles: ['server', 'client'],
  port: 6969,
  flags: {
    block: {
      default: '0',
      help: 'server: after listening, block the event loop for MS milliseconds, or until Enter is pressed',
    },
    backlog: { default: '511', help: "server: listen()'s backlog (511 is also Node's default)" },
    'half-open': {
      type: 'boolean',
      help: "server: allowHalfOpen, so it can still reply after the client's FIN",
    },
    message: { default: 'hello', help: 'client: what to send before its FIN' },
  },
});

/** Wall-clock time with milliseconds (UTC), so that two processes' lines can be compared: 12:34:56.789. */
function clock(): string {
  return new Date().toISOString().slice(11, 23);
}

/** Both ends of a connection, copied while it is open: a closed socket no longer knows its ports. */
interface Ends {
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
}

function endsOf(socket: net.Socket): Ends {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  return { localAddress, localPort, remoteAddress, remotePort };
}

// #region proc
// The state codes of include/net/tcp_states.h, as /proc/net/tcp prints them (hex).
const TCP_STATES: Record<string, string> = {
  '01': 'ESTABLISHED',
  '02': 'SYN_SENT',
  '03': 'SYN_RECV',
  '04': 'FIN_WAIT1',
  '05': 'FIN_WAIT2',
  '06': 'TIME_WAIT',
  '07': 'CLOSE',
  '08': 'CLOSE_WAIT',
  '09': 'LAST_ACK',
  '0A': 'LISTEN',
  '0B': 'CLOSING',
};

interface KernelSocket {
  localPort: number;
  remotePort: number;
  /** The state's code as the file prints it: '0A' is LISTEN. */
  code: string;
}

/** Every TCP socket of this machine, IPv4 and IPv6, as the kernel lists them; undefined where there is no /proc. */
function kernelSockets(): KernelSocket[] | undefined {
  if (!fs.existsSync('/proc/net/tcp')) return undefined;
  const sockets: KernelSocket[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(file)) continue; // no tcp6 when IPv6 is turned off
    // A header line, then one line per socket: "sl local_address rem_address st tx_queue:rx_queue ...".
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      if (!line.trim()) continue;
      // #region exercise-parse
      // Addresses are HEXIP:HEXPORT (127.0.0.1:6969 is 0100007F:1B39); st is the state's code in hex.
      const [, local = '', remote = '', code = ''] = line.trim().split(/\s+/);
      const port = (address: string) => Number.parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
      sockets.push({ localPort: port(local), remotePort: port(remote), code });
      // #endregion exercise-parse
    }
  }
  return sockets;
}

/** The kernel's state of the socket with these ports: 'ESTABLISHED'…; undefined where /proc/net/tcp is missing. */
function kernelState(ends: Ends): string | undefined {
  const sockets = kernelSockets();
  if (!sockets) return undefined;
  const found = sockets.find(
    (s) => s.localPort === ends.localPort && s.remotePort === (ends.remotePort ?? 0),
  );
  return found ? (TCP_STATES[found.code] ?? found.code) : 'not listed (fully closed)';
}

let saidLinuxOnly = false;
/** Prints `[kernel] client tcp 127.0.0.1:41234 -> 127.0.0.1:6969: ESTABLISHED`, straight from the kernel's table. */
function showState(who: string, ends: Ends, note = ''): void {
  const state = kernelState(ends);
  if (state === undefined) {
    if (!saidLinuxOnly)
      logger('kernel')('the TCP state table (/proc/net/tcp) is Linux-only: no states shown here');
    saidLinuxOnly = true;
    return;
  }
  const where =
    ends.remotePort === undefined ? `tcp ${hostPort(ends.localAddress, ends.localPort)}` : fiveTuple(ends);
  logger('kernel')(`${who} ${where}: ${state}${note}`);
}
// #endregion proc

// States the kernel leaves by itself within moments: FIN_WAIT1 lasts until the peer ACKs our FIN, and so on.
const PASSING = new Set(['SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'LAST_ACK', 'CLOSING']);

/** Waits (1 s at most) while the socket is in a passing state; returns how many ms that took. Linux only. */
async function settled(ends: Ends): Promise<number> {
  const start = Date.now();
  while (PASSING.has(kernelState(ends) ?? '') && Date.now() - start < 1000) await sleep(5);
  return Date.now() - start;
}

// #region accept-queue
const execFileAsync = promisify(execFile);

/** `ss -ltn` asks the kernel about a listening socket: Recv-Q is how many connections wait, Send-Q the backlog. */
async function showAcceptQueue(port: number, note = ''): Promise<void> {
  const log = logger('kernel');
  try {
    const { stdout } = await execFileAsync('ss', ['-ltnH', `sport = :${port}`]);
    const [, waiting, backlog] = stdout.trim().split(/\s+/);
    log(
      `accept queue of port ${port}: ${waiting} waiting, backlog ${backlog} (ss -ltn: Recv-Q, Send-Q)${note}`,
    );
  } catch {
    log('ss (Linux, from iproute2) is not available here: no accept queue to show');
  }
}
// #endregion accept-queue

// #region block
/** A blocked event loop: no callback runs, so no 'connection' either. What does the kernel do meanwhile? */
async function blockEventLoop(block: string, log: Log): Promise<void> {
  log(
    block === 'enter'
      ? `blocking the event loop until Enter is pressed (a synchronous read of stdin) at ${clock()}`
      : `blocking the event loop for ${block} ms (a busy loop) at ${clock()}`,
  );
  // Through a pipe a write can wait in Node's queue until the loop turns (when the pipe is full): block only
  // once what we printed has left, or the reader would never see the port we listen on.
  await new Promise((resolve) => process.stdout.write('', resolve));
  // #region exercise-block
  if (block === 'enter') {
    // readSync waits inside the read() system call; the process does nothing else until a line (or EOF) comes.
    const byte = Buffer.alloc(1);
    while (fs.readSync(0, byte) === 1 && byte[0] !== 0x0a);
  } else {
    const end = Date.now() + Number(block);
    while (Date.now() < end); // spin: the event loop cannot turn
  }
  // #endregion exercise-block
  log(`unblocked at ${clock()}`);
}
// #endregion block

// #region server
/** Counts what the client sends; after the client's FIN it answers how many bytes came, then ends its own side. */
function createFinServer(log: Log, halfOpen: boolean): net.Server {
  // allowHalfOpen false (the default): Node ends our side as soon as the client's FIN arrives ('end').
  return net.createServer({ allowHalfOpen: halfOpen }, (socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    const ends = endsOf(socket);
    log(`connection from ${peer} at ${clock()}`);
    showState('server', ends);
    let received = 0;
    // A 'data' listener makes the socket flow; without a reader, 'end' would wait behind the unread bytes.
    socket.on('data', (chunk) => {
      received += chunk.length;
      log(`${peer}: ${chunk.length} bytes`);
    });
    socket.on('end', () => {
      log(`${peer} sent FIN: 'end' after ${received} bytes`);
      showState('server', ends);
      // Answer on the next turn of the loop, as a real server would after some work (a file, a database).
      setImmediate(() => {
        // #region exercise-reply
        socket.write(`you sent ${received} bytes\n`, (err) =>
          log(
            err
              ? `reply lost: ${err.message} (allowHalfOpen is false: Node ended our side at 'end')`
              : "reply sent after the client's FIN",
          ),
        );
        // #endregion exercise-reply
        socket.end();
      });
    });
    socket.on('close', () => log(`${peer} closed`));
    // A client that vanishes (RST) must not take the server down with it.
    socket.on('error', (err) => log(`${peer} error: ${describeError(err)}`));
    // The limits every server here keeps (labs/lib/guard.ts): bytes are only counted, so memory stays flat
    // however many come; a peer silent for 5 minutes is closed.
    guard(socket, log).watchBytes();
  });
}
// #endregion server

// #region client
/** Connects, sends one line and its FIN at once (end), then keeps reading until the server's FIN. */
function runClient(host: string, port: number, message: string): Promise<void> {
  const log = logger('client');
  const socket = net.connect({ host, port });
  socket.on('error', (err) => fatal('client', err));
  socket.on('connect', () => {
    log(`connected at ${clock()}: ${fiveTuple(socket)}`);
    // end(data) writes, then sends FIN: "I will send nothing more". It does not stop us reading.
    socket.end(`${message}\n`);
    log(`sent '${message}' and FIN with end(): our side is closed, we keep reading`);
  });
  onLines(socket, (line) => log(`received: ${line}`));
  socket.on('end', () => log("server sent FIN: 'end'"));
  return new Promise((resolve) => {
    socket.on('close', () => {
      log('closed');
      resolve();
    });
  });
}
// #endregion client

async function listenLocal(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Connects to the server and returns both ends: the client socket and the server's socket for it. */
async function connectPair(server: net.Server, port: number): Promise<[net.Socket, net.Socket]> {
  const accepted = once(server, 'connection');
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  const [socket] = (await accepted) as [net.Socket];
  return [client, socket];
}

const children = new Set<ChildProcess>();

/** Prints a child's lines as they come and returns a function that waits until `count` of them match. */
function followLines(child: ChildProcess) {
  const seen: string[] = [];
  const waits = new Set<() => void>();
  if (child.stdout) {
    onLines(child.stdout, (line) => {
      console.log(line);
      seen.push(line);
      for (const check of [...waits]) check();
    });
  }
  return (pattern: RegExp, count = 1) =>
    new Promise<RegExpMatchArray[]>((resolve) => {
      const check = () => {
        const found = seen.map((l) => l.match(pattern)).filter((m): m is RegExpMatchArray => m !== null);
        if (found.length < count) return;
        waits.delete(check);
        resolve(found);
      };
      waits.add(check);
      check();
    });
}

// #region handshake
async function handshakeWhileBlocked(log: Log): Promise<void> {
  // The server runs in another process (this file, role server), so that only its event loop is blocked.
  const child = spawn(
    process.execPath,
    [...process.execArgv, import.meta.filename, 'server', '--port', '0', '--block', '1000'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.add(child);
  child.once('exit', (code) => {
    if (children.has(child)) fatal('demo', new Error(`the server process exited early (code ${code})`));
  });
  const serverLines = followLines(child);
  const [listening] = await serverLines(/listening on \S+:(\d+)/);
  const port = Number(listening?.[1]);
  await serverLines(/blocking the event loop/);
  const clients = [1, 2, 3].map(() => net.connect(port, '127.0.0.1'));
  await Promise.all(
    clients.map(async (socket, i) => {
      socket.on('error', () => {}); // the server's shutdown may reset them: not this part's subject
      await once(socket, 'connect');
      logger('client')(`#${i + 1} connected at ${clock()}: ${fiveTuple(socket)}`);
    }),
  );
  await showAcceptQueue(port);
  await serverLines(/connection from/, clients.length);
  children.delete(child);
  child.kill('SIGTERM');
  await once(child, 'exit');
  for (const socket of clients) socket.destroy();
  log('the kernel finished all three handshakes while the server was blocked; its JavaScript met them later');
}
// #endregion handshake

// #region half-close
async function halfClose(log: Log): Promise<void> {
  for (const halfOpen of [false, true]) {
    log(`net.createServer({ allowHalfOpen: ${halfOpen} })${halfOpen ? '' : ', the default'}`);
    const server = createFinServer(logger('server'), halfOpen);
    const port = await listenLocal(server);
    const serverSide = once(server, 'connection').then(([socket]) => once(socket as net.Socket, 'close'));
    await runClient('127.0.0.1', port, 'hello');
    await serverSide;
    server.close();
  }
}
// #endregion half-close

// #region states
async function statesStepByStep(log: Log): Promise<void> {
  const server = net.createServer({ allowHalfOpen: true });
  const port = await listenLocal(server);
  const listener = { localAddress: '127.0.0.1', localPort: port };
  showState('listener', listener);
  await showAcceptQueue(port, "; listen() was given no backlog, so 511 is Node's default");

  const [client, accepted] = await connectPair(server, port);
  const [c, s] = [endsOf(client), endsOf(accepted)];
  showState('client', c);
  showState('server', s);
  showState('listener', listener, ' (still: each connection gets a socket of its own)');

  client.on('data', (data) => logger('client')(`received: ${String(data).trim()}`));
  accepted.resume(); // read, so that 'end' can come
  client.end();
  logger('client')('end(): FIN sent');
  await once(accepted, 'end');
  logger('server')("'end': the client's FIN arrived; allowHalfOpen keeps our side open");
  const ackMs = await settled(c);
  showState('client', c, ` (its FIN is ACKed: waited ${ackMs} ms for that after the server's 'end')`);
  showState('server', s);
  accepted.end('bye\n');
  logger('server')("end('bye\\n'): a last line, then our FIN");
  await Promise.all([once(client, 'close'), once(accepted, 'close')]);
  await Promise.all([settled(c), settled(s)]);
  log("both sockets emitted 'close'");
  showState('client', c, ': it sent the first FIN, so it waits here (60 s on Linux)');
  showState('server', s);

  log('now the server closes first');
  const [client2, accepted2] = await connectPair(server, port);
  const [c2, s2] = [endsOf(client2), endsOf(accepted2)];
  client2.resume();
  accepted2.resume();
  accepted2.end();
  logger('server')('end(): FIN sent first');
  // The client has allowHalfOpen false: Node answers the server's FIN with the client's own at once.
  await Promise.all([once(client2, 'close'), once(accepted2, 'close')]);
  await Promise.all([settled(c2), settled(s2)]);
  showState('client', c2);
  showState('server', s2, ': it sent the first FIN, so the wait is on the server now');
  await new Promise((resolve) => server.close(resolve));
}
// #endregion states

// #region flowing
async function endNeedsAReader(log: Log): Promise<void> {
  const server = net.createServer();
  const port = await listenLocal(server);
  const slog = logger('server');
  const [clientB, b] = await connectPair(server, port);
  const [clientC, c] = await connectPair(server, port);
  const [clientA, a] = await connectPair(server, port);
  for (const [name, socket] of [
    ['A', a],
    ['B', b],
    ['C', c],
  ] as const) {
    socket.on('end', () => slog(`${name}: 'end'`));
  }
  a.on('data', (chunk) => slog(`A: ${chunk.length} bytes`)); // A is read; B and C are not
  clientB.end('hello\n');
  clientC.end();
  clientA.end('hello\n');
  logger('client')("A and B send 'hello\\n' then FIN; C sends only its FIN");
  await Promise.all([once(a, 'end'), once(c, 'end')]);
  // B's FIN left before A's; on Linux, make sure the kernel shows it has arrived (1 s at most).
  for (let i = 0; i < 200 && kernelState(endsOf(b)) === 'ESTABLISHED'; i++) await sleep(5);
  showState('server B', endsOf(b));
  slog(
    `B: no 'end' yet: ${b.readableLength} bytes wait unread (C had nothing unread, so it got 'end' anyway)`,
  );
  b.on('data', (chunk) => slog(`B: on('data') makes it flow: ${chunk.length} bytes`));
  await once(b, 'end');
  log("'end' comes only once everything received has been read");
  for (const socket of [clientA, clientB, clientC]) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
}
// #endregion flowing

async function demo(): Promise<void> {
  const log = logger('demo');
  // Never leave the server process behind: not on Ctrl-C, not on an error.
  process.on('exit', () => {
    for (const child of children) child.kill();
  });
  onShutdown(() => {
    for (const child of children) child.kill();
  });
  log("1. the handshake is the kernel's job: a server in another process blocks its event loop for 1000 ms");
  await handshakeWhileBlocked(log);
  log("2. half-close: the client sends 'hello' and its FIN; can the server still answer?");
  await halfClose(log);
  log('3. the TCP states, read from /proc/net/tcp at each step');
  await statesStepByStep(log);
  log("4. 'end' needs a reader: three connections, only A is read");
  await endNeedsAReader(log);
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const block = args.flag('block');
  if (block !== 'enter' && !/^\d+$/.test(block))
    fail(`--block must be a number of ms or 'enter', got '${block}'`);
  const server = createFinServer(log, args.has('half-open'));
  server.on('error', (err) => fatal('server', err));
  stopOnSignal(server, log);
  server.listen({ port: args.port, host: args.host, backlog: args.int('backlog') }, () => {
    const address = server.address() as net.AddressInfo;
    printListening(log, address);
    log(`limits: ${describeLimits(LIMITS, false)}`);
    showState('listener', { localAddress: address.address, localPort: address.port });
    if (block !== '0') void blockEventLoop(block, log);
  });
} else if (args.role === 'client') {
  await runClient(args.host, args.port, args.flag('message'));
} else {
  await demo();
}
