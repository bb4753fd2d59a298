// Lab 10: UDP with node:dgram (notes 001, 002): an echo server and client, message boundaries, connected UDP,
// EMSGSIZE, a pinger.
// Run: npm run lab 10 (the demo) · npm run lab 10 server · npm run lab 10 client · nc -u 127.0.0.1 41234
// The pinger: npm run lab 10 server -- --loss 30, then npm run lab 10 client -- --ping
// Flags: --port N (default 41234, the note's port) --host H --loss PCT --seed N --ping --count N --timeout MS --size N
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fail, fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { seededRandom } from './lib/random.ts';

const args = parseLabArgs({
  roles: ['server', 'client'],
  port: 41234,
  flags: {
    loss: { default: '0', help: 'server: drop this percentage of datagrams, to simulate a lossy network' },
    seed: { default: '16', help: 'server: seed of the loss generator (same seed, same datagrams dropped)' },
    ping: { type: 'boolean', help: 'client: be the UDP pinger instead of sending hello and world' },
    count: { default: '10', help: 'client --ping: how many pings' },
    timeout: { default: '1000', help: 'client: how long to wait for a reply, in ms' },
    size: { help: 'client: send one datagram of this many bytes instead (try 65507 and 65508)' },
  },
});

/** `"hello"`, or `"xxxxxxxxxxxxxxxx…"` for a long message: a datagram shown in one line. */
function preview(msg: Buffer): string {
  const text = msg.toString('utf8');
  return text.length > 24 ? `${JSON.stringify(text.slice(0, 16))}…` : JSON.stringify(text);
}

/** All four fields of rinfo: who sent the datagram, and how big it was. */
function describeRinfo(rinfo: dgram.RemoteInfo): string {
  return `from ${hostPort(rinfo.address, rinfo.port)} (family ${rinfo.family}, size ${rinfo.size})`;
}

async function bind(socket: dgram.Socket, port: number, host: string): Promise<number> {
  socket.bind(port, host);
  await once(socket, 'listening');
  return (socket.address() as AddressInfo).port;
}

// #region server
// What a trusted UDP server does: a datagram's source address is only what the packet says, and anyone can
// write any source. An echo that answers blindly is a reflector: a datagram "from" another echo server (or from
// itself) starts a loop that never ends (the echo/chargen "ping-pong" of CVE-1999-0103), and one "from" a victim
// makes us send to the victim. So: no answer to port 0 (nobody can receive there), to ports below 1024 (the
// services that answer too: echo 7, chargen 19, DNS 53…), or to our own address and port; at most
// ECHO_RATE answers a second to one source, after which it is ignored for QUIET_MS (a loop stops there).
const ECHO_RATE = 100;
const QUIET_MS = 10_000;

/** Why a datagram from `rinfo` gets no answer, or undefined when it may get one. */
function whyNoAnswer(rinfo: dgram.RemoteInfo, own: AddressInfo): string | undefined {
  if (rinfo.port === 0) return 'source port 0: nobody can receive there';
  if (rinfo.port < 1024)
    return `source port ${rinfo.port} is below 1024: another service's, and it may answer back`;
  const anyAddress = own.address === '0.0.0.0' || own.address === '::';
  if (rinfo.port === own.port && (rinfo.address === own.address || anyAddress))
    return 'it claims to come from this server itself: answering would loop';
  return undefined;
}

function createEchoServer(log: Log, lossPercent = 0, seed = 16): dgram.Socket {
  const socket = dgram.createSocket('udp4');
  const random = seededRandom(seed);
  let count = 0;
  // Per source address:port, how many answers it may still get now (refilling ECHO_RATE a second), and until when it is ignored.
  const sources = new Map<string, { tokens: number; at: number; quietUntil: number }>();
  const allowed = (key: string): boolean => {
    const now = Date.now();
    // Forget sources that have been quiet a while, so spoofed addresses cannot grow this map without bound.
    if (sources.size > 10_000) for (const [k, s] of sources) if (now - s.at > QUIET_MS) sources.delete(k);
    const s = sources.get(key) ?? { tokens: ECHO_RATE, at: now, quietUntil: 0 };
    sources.set(key, s);
    if (now < s.quietUntil) return false;
    s.tokens = Math.min(ECHO_RATE, s.tokens + ((now - s.at) * ECHO_RATE) / 1000) - 1;
    s.at = now;
    if (s.tokens >= 0) return true;
    s.quietUntil = now + QUIET_MS;
    log(`${key}: more than ${ECHO_RATE} datagrams a second (a loop or a flood): ignored for ${QUIET_MS} ms`);
    return false;
  };
  // One 'message' event per datagram: msg is exactly what one send() sent, rinfo says who sent it.
  socket.on('message', (msg, rinfo) => {
    count++;
    const seen = `#${count} ${preview(msg)} ${describeRinfo(rinfo)}`;
    const why = whyNoAnswer(rinfo, socket.address());
    if (why) {
      log(`${seen}: not answered: ${why}`);
      return;
    }
    if (!allowed(hostPort(rinfo.address, rinfo.port))) return;
    // The network may lose any datagram; here we lose some on purpose, and nobody is told.
    if (lossPercent > 0 && random() * 100 < lossPercent) {
      log(`${seen}: dropped (simulated loss)`);
      return;
    }
    log(seen);
    // send() throws at once for an argument it refuses (ERR_SOCKET_BAD_PORT): a peer's datagram must not kill us.
    try {
      // #region exercise-echo
      // No connection to answer on: the reply goes to the address and port the datagram came from.
      socket.send(msg, rinfo.port, rinfo.address, (err) => {
        if (err) log(`echo to ${hostPort(rinfo.address, rinfo.port)} failed: ${describeError(err)}`);
      });
      // #endregion exercise-echo
    } catch (err) {
      log(`echo to ${hostPort(rinfo.address, rinfo.port)} failed: ${describeError(err)}`);
    }
  });
  return socket;
}
// #endregion server

// #region client
async function runClient(host: string, port: number, timeoutMs: number, size?: number): Promise<void> {
  const log = logger('client');
  const socket = dgram.createSocket('udp4');
  socket.on('error', (err) => fatal('client', err));
  const expected = size === undefined ? 2 : 1;
  let echoes = 0;
  const allBack = new Promise<void>((resolve) => {
    socket.on('message', (msg, rinfo) => {
      log(`echo ${preview(msg)} ${describeRinfo(rinfo)}`);
      if (++echoes === expected) resolve();
    });
  });
  // The callback says the datagram left this socket. Nobody tells us whether it arrived.
  const sent = (what: string) => (err: Error | null, bytes: number) => {
    if (err) fatal('client', err);
    log(`sent ${what}: ${bytes} bytes`);
  };
  if (size !== undefined) {
    socket.send(Buffer.alloc(size, 'x'), port, host, sent(`${size} bytes of 'x'`));
  } else {
    // #region exercise-send-forms
    // Form 1: a whole string or buffer, to a port and an address.
    socket.send('hello', port, host, sent("'hello' with send(msg, port, address)"));
    // Form 2: part of a buffer, `length` bytes from `offset`: here the 5 bytes at 7 of 'hello, world'.
    const buf = Buffer.from('hello, world');
    socket.send(buf, 7, 5, port, host, sent("'world' with send(buf, 7, 5, port, address)"));
    // #endregion exercise-send-forms
  }
  // An unconnected socket hears nothing when nobody listens: only a timeout tells us something is wrong.
  const timer = setTimeout(() => {
    fatal(
      'client',
      new Error(`no echo within ${timeoutMs} ms: is the server running on ${hostPort(host, port)}?`),
    );
  }, timeoutMs);
  await allBack;
  clearTimeout(timer);
  socket.close();
}
// #endregion client

// #region pinger
async function runPinger(host: string, port: number, count: number, timeoutMs: number, log: Log) {
  const socket = dgram.createSocket('udp4');
  socket.on('error', (err) => fatal('client', err));
  // The pings still waiting for their reply, by sequence number.
  const waiting = new Map<number, (rinfo: dgram.RemoteInfo) => void>();
  socket.on('message', (msg, rinfo) => {
    const seq = Number(/^PING (\d+) /.exec(msg.toString())?.[1]);
    const done = waiting.get(seq);
    if (done) done(rinfo);
    else log(`late or stray reply ${preview(msg)} ${describeRinfo(rinfo)}: ignored`);
  });
  const rtts: number[] = [];
  for (let seq = 1; seq <= count; seq++) {
    const sentAt = performance.now();
    const reply = new Promise<dgram.RemoteInfo | undefined>((resolve) => {
      // UDP never says "lost": a reply that does not come in time is counted as lost.
      const timer = setTimeout(() => {
        waiting.delete(seq);
        resolve(undefined);
      }, timeoutMs);
      waiting.set(seq, (rinfo) => {
        clearTimeout(timer);
        waiting.delete(seq);
        resolve(rinfo);
      });
    });
    socket.send(`PING ${seq} ${Date.now()}`, port, host);
    const rinfo = await reply;
    if (rinfo) {
      const rtt = performance.now() - sentAt;
      rtts.push(rtt);
      log(`ping ${seq}: reply ${describeRinfo(rinfo)}, rtt ${rtt.toFixed(3)} ms`);
    } else {
      log(`ping ${seq}: timeout (no reply within ${timeoutMs} ms)`);
    }
  }
  // #region exercise-summary
  const lossRate = Math.round(((count - rtts.length) / count) * 100);
  log(`${count} pings sent, ${rtts.length} replies, ${lossRate}% loss`);
  if (rtts.length > 0) {
    const avg = rtts.reduce((sum, rtt) => sum + rtt, 0) / rtts.length;
    const ms = (n: number) => n.toFixed(3);
    log(`rtt min/avg/max = ${ms(Math.min(...rtts))}/${ms(avg)}/${ms(Math.max(...rtts))} ms`);
  }
  // #endregion exercise-summary
  socket.close();
}
// #endregion pinger

// #region udp-boundaries
async function udpKeepsBoundaries(log: Log) {
  const receiver = dgram.createSocket('udp4');
  const port = await bind(receiver, 0, '127.0.0.1');
  const got: string[] = [];
  const three = new Promise<void>((resolve) => {
    receiver.on('message', (msg) => {
      got.push(msg.toString());
      if (got.length === 3) resolve();
    });
  });
  const sender = dgram.createSocket('udp4');
  // Three send() calls in one go: all three wait in the receiver's queue before it reads any of them.
  for (const word of ['one', 'two', 'three']) sender.send(word, port, '127.0.0.1');
  await three;
  log(`UDP: 3 send() calls, ${got.length} 'message' events: ${got.map((w) => JSON.stringify(w)).join(', ')}`);
  sender.close();
  receiver.close();
}
// #endregion udp-boundaries

// #region tcp-no-boundaries
async function tcpHasNoBoundaries(log: Log) {
  // pauseOnConnect: the server does not read at all until resume(), so the bytes wait in the kernel.
  const server = net.createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  client.setNoDelay(true); // no Nagle: every write() leaves at once, as a segment of its own
  client.resume(); // read (nothing but) the server's FIN, so this socket can close
  await once(client, 'connect');
  const [conn] = await accepted;
  conn.on('error', (err) => log(`server side error: ${describeError(err)}`));
  for (const word of ['one', 'two', 'three']) {
    // The callback runs once the kernel has taken the bytes.
    await new Promise((resolve) => client.write(word, resolve));
  }
  client.end();
  await once(client, 'finish');
  const chunks: string[] = [];
  conn.on('data', (chunk: Buffer) => chunks.push(chunk.toString()));
  conn.resume();
  await once(conn, 'end');
  const shown = chunks.map((c) => JSON.stringify(c)).join(', ');
  log(`TCP: 3 write() calls, ${chunks.length} 'data' event${chunks.length === 1 ? '' : 's'}: ${shown}`);
  conn.end();
  server.close();
  await once(server, 'close');
}
// #endregion tcp-no-boundaries

// #region connected
async function connectedUdp(log: Log) {
  // A port with no listener: bind one, note its number, close it again.
  const probe = dgram.createSocket('udp4');
  const port = await bind(probe, 0, '127.0.0.1');
  probe.close();
  log(`sending to 127.0.0.1:${port}, where nothing listens`);

  const loose = logger('unconnected');
  const unconnected = dgram.createSocket('udp4');
  let looseErrors = 0;
  unconnected.on('error', (err) => {
    looseErrors++;
    loose(`error: ${describeError(err)}`);
  });
  const err1 = await new Promise<Error | null>((resolve) =>
    unconnected.send('anyone?', port, '127.0.0.1', resolve),
  );
  loose(`send callback: ${err1 ? describeError(err1) : 'no error'}`);

  const tied = logger('connected');
  const connected = dgram.createSocket('udp4');
  // connect() sends nothing: it fixes the peer, so the kernel may report that peer's ICMP errors to us.
  connected.connect(port, '127.0.0.1');
  await once(connected, 'connect');
  tied(`connect() to ${hostPort('127.0.0.1', port)} done: no packet was sent`);
  connected.send('anyone?');
  const [err2] = (await once(connected, 'error')) as [NodeJS.ErrnoException];
  tied(`'error' event: ${err2.code} (the ICMP "port unreachable" came back, and this socket is told)`);
  loose(`errors so far: ${looseErrors}: the same ICMP reply came back to it first, and it is never told`);
  unconnected.close();
  connected.close();
}
// #endregion connected

// #region too-big
async function tooBig(port: number, log: Log) {
  const socket = dgram.createSocket('udp4');
  // 65,535 (largest IPv4 packet) - 20 (IP header) - 8 (UDP header) = 65,507 bytes of payload at most.
  for (const size of [65_507, 65_508]) {
    const err = await new Promise<Error | null>((resolve) =>
      socket.send(Buffer.alloc(size, 'x'), port, '127.0.0.1', resolve),
    );
    if (err) {
      log(`${size} bytes: ${describeError(err)}`);
      continue;
    }
    const [, rinfo] = (await once(socket, 'message')) as [Buffer, dgram.RemoteInfo];
    log(`${size} bytes: sent, and the echo came back ${describeRinfo(rinfo)}`);
  }
  socket.close();
}
// #endregion too-big

async function demo() {
  const log = logger('demo');
  log('an echo server on 127.0.0.1, port 0: the OS picks a free port');
  const server = createEchoServer(logger('server'));
  const port = await bind(server, 0, '127.0.0.1');
  printListening(logger('server'), server.address());
  await runClient('127.0.0.1', port, 1000);
  log('message boundaries: three sends over UDP, then three writes over TCP');
  await udpKeepsBoundaries(log);
  await tcpHasNoBoundaries(log);
  log('connected and unconnected UDP sockets, and a port with no listener');
  await connectedUdp(log);
  log('how big can one datagram be?');
  await tooBig(port, logger('client'));
  log('the UDP pinger: a server that drops 30% of datagrams (seed 16), 10 pings, 200 ms timeout');
  const pingServer = createEchoServer(logger('ping-server'), 30, 16);
  const pingPort = await bind(pingServer, 0, '127.0.0.1');
  await runPinger('127.0.0.1', pingPort, 10, 200, logger('pinger'));
  pingServer.close();
  server.close();
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const loss = args.int('loss');
  if (loss > 100) fail(`--loss is a percentage from 0 to 100, got ${loss}`);
  const seed = args.int('seed');
  const server = createEchoServer(log, loss, seed);
  server.on('error', (err) => fatal('server', err));
  onShutdown(async () => {
    log('shutting down');
    await new Promise<void>((resolve) => server.close(resolve));
  });
  if (loss > 0) log(`dropping about ${loss}% of datagrams on purpose (seed ${seed})`);
  server.bind(args.port, args.host, () => printListening(log, server.address()));
} else if (args.role === 'client') {
  const timeout = args.int('timeout');
  if (args.has('ping')) {
    await runPinger(args.host, args.port, args.int('count'), timeout, logger('client'));
  } else {
    // --size has no default: without it the client sends 'hello' and 'world'.
    const size = args.given('size') ? args.int('size') : undefined;
    await runClient(args.host, args.port, timeout, size);
  }
} else {
  await demo();
}
