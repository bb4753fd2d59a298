// Lab 11: UDP broadcast on loopback (note 001, section 2.6): one sender, and every receiver bound to 0.0.0.0 on the port hears it.
// Run: npm run lab 11 (the demo) · npm run lab 11 receiver (in two terminals) · npm run lab 11 sender
// Flags: --port N (default 41235) --host H (address to bind, default 0.0.0.0) --count N --interval MS
//        --broadcast-address A (default 127.255.255.255; a LAN's only on purpose) --skip-set-broadcast
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';

const args = parseLabArgs({
  roles: ['sender', 'receiver'],
  port: 41235,
  host: '0.0.0.0',
  flags: {
    'broadcast-address': {
      default: '127.255.255.255',
      help: "sender: where to send; a LAN's broadcast address reaches every host on that LAN (see the page first)",
    },
    count: {
      default: '0',
      help: 'sender: send this many datagrams and exit (0: one a second until stopped)',
    },
    interval: { default: '1000', help: 'sender: milliseconds between two datagrams' },
    'skip-set-broadcast': { type: 'boolean', help: 'sender: do not call setBroadcast(true), to see EACCES' },
  },
});

async function bind(socket: dgram.Socket, port: number, host: string): Promise<number> {
  socket.bind(port, host);
  await once(socket, 'listening');
  return (socket.address() as AddressInfo).port;
}

function send(socket: dgram.Socket, text: string, port: number, address: string): Promise<Error | null> {
  return new Promise((resolve) => socket.send(text, port, address, resolve));
}

/** `EACCES …: permission denied`, plus what to do about it. */
function explain(err: Error): string {
  const hint =
    (err as NodeJS.ErrnoException).code === 'EACCES' ? ' (a broadcast needs setBroadcast(true))' : '';
  return `${describeError(err)}${hint}`;
}

/** A send that failed ends the sender: one line on stderr, exit code 1. */
function senderFails(err: Error): never {
  console.error(`[sender] error: ${explain(err)}`);
  process.exit(1);
}

// #region receiver
function createReceiver(log: Log): dgram.Socket {
  // reuseAddr: true lets several sockets bind the same port, and each of them gets its own copy of a broadcast.
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  socket.on('message', (msg, rinfo) => {
    // #region exercise-receive
    log(
      `received ${JSON.stringify(msg.toString())} from ${hostPort(rinfo.address, rinfo.port)} (${rinfo.size} bytes)`,
    );
    // #endregion exercise-receive
  });
  return socket;
}
// #endregion receiver

// #region sender
async function openSender(host: string, setBroadcast: boolean): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  // setBroadcast() needs a bound socket (before bind it throws EBADF): bind to any free port first.
  await bind(socket, 0, host);
  // #region exercise-set-broadcast
  // Without SO_BROADCAST the kernel refuses to send to a broadcast address: EACCES.
  if (setBroadcast) socket.setBroadcast(true);
  // #endregion exercise-set-broadcast
  return socket;
}

async function runSender(
  port: number,
  address: string,
  count: number,
  interval: number,
  socket: dgram.Socket,
) {
  const log = logger('sender');
  for (let n = 1; count === 0 || n <= count; n++) {
    const text = `broadcast #${n}`;
    const err = await send(socket, text, port, address);
    if (err) senderFails(err);
    log(`sent ${JSON.stringify(text)} to ${hostPort(address, port)}`);
    if (n !== count) await sleep(interval);
  }
  socket.close();
}
// #endregion sender

async function demo() {
  const log = logger('demo');
  if (process.platform !== 'linux') {
    // Linux gives lo the broadcast address 127.255.255.255; other systems' loopback may carry no broadcast.
    log(
      `broadcast over the loopback interface is a Linux feature; this is ${process.platform}, so the demo stops here`,
    );
    return;
  }
  log('three receivers on one port: two bound to 0.0.0.0 (reuseAddr: true), one bound to 127.0.0.1');
  // #region demo-receivers
  const names = ['receiver 1', 'receiver 2', 'receiver 3'];
  const receivers = names.map((name) => createReceiver(logger(name)));
  const heard = receivers.map(() => [] as string[]);
  const port = await bind(receivers[0] as dgram.Socket, 0, '0.0.0.0');
  await bind(receivers[1] as dgram.Socket, port, '0.0.0.0');
  await bind(receivers[2] as dgram.Socket, port, '127.0.0.1');
  receivers.forEach((socket, i) => {
    printListening(logger(names[i] as string), socket.address());
    socket.on('message', (msg) => heard[i]?.push(msg.toString()));
  });
  // #endregion demo-receivers

  log('first without setBroadcast(true):');
  const refused = await openSender('0.0.0.0', false);
  const refusal = await send(refused, 'broadcast #0', port, '127.255.255.255');
  logger('sender')(`without setBroadcast(true): ${refusal ? explain(refusal) : 'sent (unexpected)'}`);
  refused.close();

  log('then with setBroadcast(true): three broadcasts, and after them one unicast "marker" to 127.0.0.1');
  // #region demo-marker
  const sender = await openSender('0.0.0.0', true);
  const [r1, r2, r3] = heard as [string[], string[], string[]];
  const arrived = new Promise<void>((resolve) => {
    const check = () => {
      if (r1.length === 3 && r2.length === 3 && r3.includes('marker')) resolve();
    };
    for (const socket of receivers) socket.on('message', check);
  });
  for (const n of [1, 2, 3]) {
    const err = await send(sender, `broadcast #${n}`, port, '127.255.255.255');
    if (err) senderFails(err);
    logger('sender')(`sent "broadcast #${n}" to ${hostPort('127.255.255.255', port)}`);
  }
  // The same socket, after the broadcasts: a unicast to 127.0.0.1 goes to the receiver bound exactly there.
  const failed = await send(sender, 'marker', port, '127.0.0.1');
  if (failed) senderFails(failed);
  logger('sender')(`sent "marker" to ${hostPort('127.0.0.1', port)}`);
  await arrived;
  // #endregion demo-marker
  const broadcasts = (list: string[]) => list.filter((m) => m.startsWith('broadcast')).length;
  log(
    `broadcasts heard: receiver 1: ${broadcasts(r1)}, receiver 2: ${broadcasts(r2)}, receiver 3: ${broadcasts(r3)}`,
  );
  log('receiver 3 got the marker and no broadcast before it: a socket bound to 127.0.0.1 hears no broadcast');
  sender.close();
  for (const socket of receivers) socket.close();
  log('done');
}

if (args.role === 'receiver') {
  const log = logger('receiver');
  const socket = createReceiver(log);
  socket.on('error', (err) => fatal('receiver', err));
  onShutdown(async () => {
    log('shutting down');
    await new Promise<void>((resolve) => socket.close(resolve));
  });
  socket.bind(args.port, args.host, () => printListening(log, socket.address()));
} else if (args.role === 'sender') {
  const socket = await openSender(args.host, !args.has('skip-set-broadcast')).catch((err) =>
    fatal('sender', err),
  );
  socket.on('error', (err) => fatal('sender', err));
  onShutdown(() => {
    logger('sender')('stopping');
    socket.close();
  });
  const address = args.flag('broadcast-address');
  await runSender(args.port, address, args.int('count'), args.int('interval'), socket);
} else {
  await demo();
}
