// Lab 09: chat room v2, the note's sketch built as a small line protocol that survives real clients (notes 001, 002).
// Commands: b:TEXT, c:NICK:TEXT, n:NICK, l, help, quit. Limits: line length, users, idle time, unread bytes.
// Run: npm run lab 09 (the demo) · npm run lab 09 server · npm run lab 09 client · nc 127.0.0.1 8089
// Server flags: -- --port N (default 8089) --max-users N --max-per-address N --max-rate N --max-line BYTES
//   --max-buffered BYTES --idle-ms MS --show-chunks · client flags: --burst N [--nagle] (Nagle's algorithm on the wire)
import { once } from 'node:events';
import net from 'node:net';
import { fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { closeWithin } from './lib/guard.ts';
import { type LineOptions, onLines } from './lib/lines.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { badNick, foldNick, printable } from './lib/text.ts';

const args = parseLabArgs({
  roles: ['server', 'client'],
  // One above chapter 08's 8088, so both chat rooms can run side by side.
  port: 8089,
  flags: {
    'max-users': { default: '100', help: 'users in the room at once; one more is told the room is full' },
    'max-per-address': {
      default: '10',
      help: 'connections from one IP address at once; one more is told so and closed',
    },
    'max-rate': {
      default: '10',
      help: 'lines a second per user (bursts of twice as many); past it: Excess Flood and closed; 0 = no limit',
    },
    'max-line': { default: '4096', help: 'longest line in bytes; a longer one closes the connection' },
    'max-buffered': {
      default: '262144',
      help: 'bytes waiting for one slow reader (writableLength) before it is dropped',
    },
    'idle-ms': { default: '300000', help: 'a user who sends no line for this long is closed' },
    'show-chunks': { type: 'boolean', help: "log every 'data' chunk the server receives, with its size" },
    burst: {
      default: '0',
      help: 'client: once in, send N short lines, one write() each, in a row (to capture Nagle at work)',
    },
    nagle: {
      type: 'boolean',
      help: "client: leave Nagle's algorithm on (Node's default) instead of setNoDelay(true)",
    },
  },
});

interface Limits {
  maxUsers: number;
  maxPerAddress: number;
  maxRate: number;
  maxLine: number;
  maxBuffered: number;
  idleMs: number;
  showChunks: boolean;
}

interface User {
  /** `address:port` of the peer: unique while the connection lives, whatever the name. */
  key: string;
  name: string;
  socket: net.Socket;
  idle: NodeJS.Timeout;
  /** Lines this user may still send right now; refills at maxRate a second, up to twice that (a burst). */
  tokens: number;
  lastLineAt: number;
  /** Lines that counted as activity (not blank), so the idle timer can tell it did not miss one. */
  said: number;
}

const DEFAULT_NAME = 'anonymous';
// A peer that does not close its side after we closed ours gets this long, then it is destroyed.
const LINGER_MS = 1000;
const HELP = [
  '* commands, one per line:',
  '*   b:TEXT        say TEXT to everyone else',
  '*   c:NICK:TEXT   say TEXT to NICK only',
  `*   n:NICK        change your name (everyone starts as ${DEFAULT_NAME})`,
  '*   l             list who is online',
  '*   help          show this list',
  '*   quit          leave the room',
];

const label = (user: User) => `${user.name}@${user.key}`;
// Escape sequences, a stray CR, bidi overrides and invisible characters would act on other people's terminals:
// printable() (labs/lib/text.ts) removes escapes and shows the rest as '?'.
const clean = (text: string) => printable(text);
// Names are compared folded: `Alice`, `ALICE` and fullwidth `ａｌｉｃｅ` are one name (labs/lib/text.ts).
const sameName = (a: string, b: string) => foldNick(a) === foldNick(b);
const shorten = (text: string) => clean(text.length > 40 ? `${text.slice(0, 40)}…` : text);

/** Ends our side politely; a peer that never closes its side is destroyed LINGER_MS later. */
function close(socket: net.Socket, lastWords: string): void {
  if (socket.destroyed || socket.writableEnded) return;
  closeWithin(socket, LINGER_MS, `${lastWords}\r\n`);
}

function createChatServer(limits: Limits, log: Log) {
  // allowHalfOpen: a peer that sends FIN (Ctrl-D in nc) can still read our goodbye.
  // noDelay: each line leaves at once instead of waiting for the previous one's ACK (Nagle's algorithm).
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  let stopping = false;

  // #region room
  // Keyed by 'address:port', as in the note: two people may share a name, never a connection.
  const room = new Map<string, User>();

  function send(user: User, text: string): void {
    const { socket } = user;
    if (socket.destroyed || socket.writableEnded) return;
    socket.write(`${text}\r\n`);
    // #region exercise-slow-consumer
    // write() never refuses: what a peer does not read waits in writableLength, in OUR memory.
    if (socket.writableLength > limits.maxBuffered) {
      log(
        `${user.key} dropped: ${socket.writableLength} bytes waiting to be sent (limit ${limits.maxBuffered})`,
      );
      leave(user, 'too slow');
      // RST frees the kernel's buffers too; a polite FIN would wait behind the unread bytes.
      socket.resetAndDestroy();
    }
    // #endregion exercise-slow-consumer
  }

  function broadcast(from: User | undefined, text: string): void {
    for (const user of room.values()) if (user !== from) send(user, text);
  }

  /** Takes a user out of the room and tells the others, exactly once whatever called it. */
  function leave(user: User, reason: string): void {
    if (room.get(user.key) !== user) return;
    room.delete(user.key);
    clearTimeout(user.idle);
    log(`${user.key} left: ${reason} (${room.size} online)`);
    broadcast(undefined, `* ${label(user)} left (${reason})`);
  }
  // #endregion room

  // #region commands
  function handleLine(user: User, raw: string): void {
    // Lines after 'quit' or a kick can still be in the same chunk: that user is no longer here.
    if (room.get(user.key) !== user) return;
    // Every line costs one token, a blank one too: a flood of anything is a flood (IRC's "Excess Flood").
    if (limits.maxRate > 0) {
      const now = Date.now();
      user.tokens = Math.min(
        2 * limits.maxRate,
        user.tokens + ((now - user.lastLineAt) * limits.maxRate) / 1000,
      );
      user.lastLineAt = now;
      user.tokens -= 1;
      if (user.tokens < 0) {
        leave(user, 'Excess Flood');
        close(user.socket, `! Excess Flood: more than ${limits.maxRate} lines a second: closing`);
        return;
      }
    }
    const line = raw.trim();
    // A blank line is not activity: '\n' once a second must not hold a place in the room forever.
    if (line === '') return;
    user.said++;
    user.idle.refresh();
    if (line === 'help') {
      for (const text of HELP) send(user, text);
      return;
    }
    if (line === 'quit') {
      leave(user, 'quit');
      close(user.socket, '* bye');
      return;
    }
    if (line === 'l') {
      const who = [...room.values()].map((u) => (u === user ? `${label(u)} (you)` : label(u)));
      send(user, `* ${room.size} online: ${who.join(', ')}`);
      return;
    }
    const colon = line.indexOf(':');
    const verb = colon === -1 ? '' : line.slice(0, colon);
    const rest = line.slice(colon + 1);
    switch (verb) {
      case 'b':
        if (rest === '') send(user, '! usage: b:TEXT');
        else broadcast(user, `${user.name}: ${clean(rest)}`);
        return;
      case 'c': {
        // #region exercise-private-message
        const at = rest.indexOf(':');
        const nick = rest.slice(0, at);
        const text = rest.slice(at + 1);
        if (at <= 0 || text === '') {
          send(user, '! usage: c:NICK:TEXT');
          return;
        }
        // Names are unique except the default one, so a name matches one user, none, or many 'anonymous'.
        const matches = [...room.values()].filter((u) => sameName(u.name, nick));
        const [target] = matches;
        if (matches.length === 1 && target) {
          send(target, `${user.name} (private): ${clean(text)}`);
          send(user, `* sent to ${nick} only`);
        } else if (matches.length === 0) {
          send(user, `! no user named '${shorten(nick)}': message not sent`);
        } else {
          send(user, `! ${matches.length} users are named '${shorten(nick)}': message not sent`);
        }
        // #endregion exercise-private-message
        return;
      }
      case 'n':
        rename(user, rest);
        return;
      default:
        send(user, `! unknown command '${shorten(line)}': type help for the list`);
    }
  }

  function rename(user: User, wanted: string): void {
    const why = badNick(wanted);
    if (why) {
      send(user, `! ${why}`);
    } else if (wanted === user.name) {
      send(user, `! you are already ${wanted}`);
    } else if (
      wanted !== DEFAULT_NAME &&
      [...room.values()].some((u) => u !== user && sameName(u.name, wanted))
    ) {
      send(user, `! the name '${wanted}' is taken`);
    } else {
      const before = label(user);
      user.name = wanted;
      log(`${user.key} is now ${wanted}`);
      broadcast(user, `* ${before} is now ${wanted}`);
      send(user, `* you are now ${wanted}`);
    }
  }
  // #endregion commands

  // #region connection
  server.on('connection', (socket) => {
    // A peer that reset before we got here has no address left: there is nobody to talk to.
    if (socket.remoteAddress === undefined) {
      socket.destroy();
      return;
    }
    const key = hostPort(socket.remoteAddress, socket.remotePort);
    // Every socket gets an 'error' listener first: without one, a reset peer crashes the whole server.
    socket.on('error', (err) => log(`${key} error: ${describeError(err)}`));
    // Our own check, not server.maxConnections: that one closes the socket before we could say why.
    if (stopping || room.size >= limits.maxUsers) {
      log(`${key} refused: the room is full (${room.size} online)`);
      close(socket, `! the room is full (${limits.maxUsers} users): try again later`);
      return;
    }
    // One machine must not fill the room: a cap per IP address (behind a NAT, raise it with --max-per-address).
    const address = socket.remoteAddress;
    const fromThere = [...room.values()].filter((u) => u.socket.remoteAddress === address).length;
    if (fromThere >= limits.maxPerAddress) {
      log(`${key} refused: ${fromThere} connections from ${address} already`);
      close(socket, `! too many connections from ${address} (${limits.maxPerAddress}): try again later`);
      return;
    }
    const user: User = {
      key,
      name: DEFAULT_NAME,
      socket,
      // Our own timer, refreshed by each line received: socket.setTimeout would also count our writes.
      idle: setTimeout(() => {
        // On a busy machine a line can wait unread in the socket while this timer runs first: let the loop
        // read it (setImmediate runs after the poll for I/O), and close only if no line came meanwhile.
        const said = user.said;
        setImmediate(() => {
          if (user.said !== said || room.get(key) !== user) return;
          leave(user, 'idle');
          close(socket, `! no line from you for ${limits.idleMs} ms: closing`);
        });
      }, limits.idleMs),
      tokens: 2 * limits.maxRate,
      lastLineAt: Date.now(),
      said: 0,
    };
    room.set(key, user);
    log(`${key} joined (${room.size} online)`);
    send(user, `* welcome, you are ${label(user)}; ${room.size} online; type help for the commands`);
    broadcast(user, `* ${label(user)} joined; ${room.size} online`);

    socket.on('data', (chunk: Buffer) => {
      if (limits.showChunks) log(`'data' from ${key}: ${chunk.length} bytes`);
    });
    const lineOptions: LineOptions = {};
    // #region exercise-line-limit
    // Without a limit, a peer that never sends '\n' makes us buffer its "line" until memory runs out.
    lineOptions.maxBytes = limits.maxLine;
    lineOptions.onOverflow = () => {
      // Read nothing more from it: the rest of its "line" waits in the kernel's buffers, which stop it once full.
      socket.pause();
      leave(user, 'line too long');
      close(socket, `! line longer than ${limits.maxLine} bytes: closing`);
    };
    // #endregion exercise-line-limit
    // TCP has no message boundaries: onLines turns any chunking into whole lines (UTF-8 safe).
    onLines(socket, (line) => handleLine(user, line), lineOptions);
    // FIN from the peer (half-close): its last line was handled just above; answer, then close our side.
    socket.on('end', () => {
      leave(user, 'closed the connection');
      close(socket, '* bye');
    });
    socket.on('error', (err) => leave(user, (err as NodeJS.ErrnoException).code ?? 'error'));
    socket.on('close', () => leave(user, 'disconnected'));
  });
  // #endregion connection

  // #region shutdown
  async function shutdown(): Promise<void> {
    stopping = true;
    const users = [...room.values()];
    log(`shutting down: telling ${users.length} user(s)`);
    // Empty the room first, so closing sockets do not announce "left" to people who are leaving too.
    room.clear();
    for (const user of users) {
      clearTimeout(user.idle);
      close(user.socket, '* the server is shutting down: bye');
    }
    // close() stops accepting; its callback waits for every connection, each bounded by LINGER_MS.
    await new Promise((resolve) => server.close(resolve));
    log('all connections closed');
  }
  // #endregion shutdown

  return { server, room, shutdown };
}

// #region client
async function runClient(host: string, port: number, burst: number, nagle: boolean): Promise<void> {
  const log = logger('client');
  // noDelay: each line leaves at once. With Nagle's algorithm (nagle: Node's default), a small write waits
  // while an earlier one is unacknowledged, and the waiting writes leave together in one segment.
  const socket = net.connect({ host, port, noDelay: !nagle });
  socket.on('error', (err) => fatal('client', err));
  await once(socket, 'connect');
  log(`connected to ${hostPort(host, port)}: type a command (help lists them), Ctrl-D to leave`);
  // What the room says is printed as it is; what you type is sent one line at a time.
  const waiting = new Map<RegExp, () => void>();
  onLines(socket, (line) => {
    console.log(line);
    for (const [pattern, resolve] of waiting) if (pattern.test(line)) resolve();
  });
  // A wait for a line also ends if the connection closes first (the server went away).
  socket.on('close', () => {
    for (const resolve of waiting.values()) resolve();
  });
  const heard = (pattern: RegExp) =>
    new Promise<void>((resolve) =>
      waiting.set(pattern, () => {
        waiting.delete(pattern);
        resolve();
      }),
    );
  if (burst > 0) await sendBurst(socket, burst, nagle, log, heard);
  onLines(process.stdin, (line) => socket.write(`${line}\n`));
  process.stdin.on('end', () => socket.end());
  await once(socket, 'close');
  log('disconnected');
  process.exit(0);
}
// #endregion client

// #region burst
/** --burst N: N short lines in a row, one write() each, after a few questions answered at once ('l'). */
async function sendBurst(
  socket: net.Socket,
  count: number,
  nagle: boolean,
  log: Log,
  heard: (pattern: RegExp) => Promise<void>,
): Promise<void> {
  // A conversation first: a peer that answers each line soon after it came (within the 40 ms Linux waits)
  // delays its ACKs, to ride on the next answer. Only then is a first small segment still unacknowledged when
  // the next write comes, which is when Nagle's algorithm holds it back. (A new connection is ACKed at once.)
  // So: ask until three answers in a row came back within 20 ms (a busy machine can be slower), 8 times at most.
  let quick = 0;
  for (let asked = 0; quick < 3 && asked < 8; asked++) {
    const sent = performance.now();
    const answered = heard(/ online: /);
    socket.write('l\n');
    await answered;
    if (socket.destroyed) return;
    quick = performance.now() - sent < 20 ? quick + 1 : 0;
  }
  log(`${count} writes of 4 bytes in a row, ${nagle ? "Nagle's algorithm on" : 'noDelay: true'}`);
  for (let i = 1; i <= count; i++) socket.write(`b:${i % 10}\n`);
}
// #endregion burst

interface Peer {
  socket: net.Socket;
  /** Log what arrives (off while a flood of long lines goes by). */
  show: boolean;
  say(text: string): void;
  /** A line that matches and was not returned before, waiting for it if need be. */
  next(pattern: RegExp): Promise<string>;
}

/** A scripted demo user: logs what it sends ('>') and what it receives ('<'). */
async function peer(name: string, port: number): Promise<Peer> {
  const log = logger(name);
  // noDelay: a chat line should leave now, not wait for the ACK of the previous one (Nagle's algorithm).
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', (err) => log(`error: ${describeError(err)}`));
  const lines: string[] = [];
  const taken = new Set<number>();
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
    waiters.clear();
  };
  const p: Peer = {
    socket,
    show: true,
    say(text) {
      if (p.show) log(`> ${text.length > 60 ? `${text.slice(0, 20)}… (${text.length} bytes)` : text}`);
      socket.write(`${text}\n`);
    },
    async next(pattern) {
      for (;;) {
        const at = lines.findIndex((l, i) => !taken.has(i) && pattern.test(l));
        if (at !== -1) {
          taken.add(at);
          return lines[at] as string;
        }
        if (socket.destroyed) throw new Error(`${name} closed before a line matching ${pattern}`);
        await new Promise<void>((resolve) => waiters.add(resolve));
      }
    },
  };
  onLines(socket, (line) => {
    if (p.show) log(`< ${line}`);
    lines.push(line);
    wake();
  });
  socket.on('close', wake);
  await once(socket, 'connect');
  await p.next(/^\* welcome/);
  return p;
}

async function demo(): Promise<void> {
  const log = logger('demo');
  // No rate limit in the demo: alice's flood below is the point of one part.
  const limits: Limits = {
    maxUsers: 3,
    maxPerAddress: 10,
    maxRate: 0,
    maxLine: 4096,
    maxBuffered: 65536,
    idleMs: 800,
    showChunks: false,
  };
  log(
    `a room for ${limits.maxUsers}, lines up to ${limits.maxLine} bytes, ${limits.maxBuffered} unread bytes per user, idle after ${limits.idleMs} ms`,
  );
  const chat = createChatServer(limits, logger('server'));
  chat.server.listen(0, '127.0.0.1');
  await once(chat.server, 'listening');
  printListening(logger('server'), chat.server.address());
  const { port } = chat.server.address() as net.AddressInfo;
  const serverSide = (p: Peer) => chat.room.get(hostPort('127.0.0.1', p.socket.localPort))?.socket;

  log('join and rename: everyone starts as anonymous; the server knows them by address:port');
  const alice = await peer('alice', port);
  alice.say('n:alice');
  await alice.next(/you are now/);
  const bob = await peer('bob', port);
  await alice.next(/joined/);
  bob.say('n:bob');
  await alice.next(/is now bob/);
  await bob.next(/you are now/);

  log('broadcast, private message, list, and two mistakes');
  alice.say('b:hello everyone');
  await bob.next(/^alice: hello everyone$/);
  bob.say('c:alice:psst, just you');
  await alice.next(/\(private\)/);
  await bob.next(/sent to alice only/);
  alice.say('c:zoe:are you there?');
  await alice.next(/no user named/);
  bob.say('l');
  await bob.next(/online:/);
  bob.say('hello?');
  await bob.next(/unknown command/);

  log("framing: alice sends 'b:你好' in two writes that cut '你' (3 bytes in UTF-8) after its first byte");
  limits.showChunks = true;
  const bytes = Buffer.from('b:你好\n');
  const arrived = once(serverSide(alice) as net.Socket, 'data');
  alice.socket.write(bytes.subarray(0, 3));
  // The second write waits until the server has read the first: two chunks for sure.
  await arrived;
  alice.socket.write(bytes.subarray(3));
  await bob.next(/^alice: 你好$/);
  limits.showChunks = false;

  log(`limits: the room holds ${limits.maxUsers}; one more is told why and closed`);
  const carol = await peer('carol', port);
  await alice.next(/joined/);
  await bob.next(/joined/);
  const dave = net.connect(port, '127.0.0.1');
  dave.on('error', (err) => logger('dave')(`error: ${describeError(err)}`));
  onLines(dave, (line) => logger('dave')(`< ${line}`));
  await once(dave, 'close');
  log(`a line longer than ${limits.maxLine} bytes: an error line, and the connection is closed`);
  carol.say('x'.repeat(5000));
  await carol.next(/line longer/);
  await once(carol.socket, 'close');
  await alice.next(/left \(line too long\)/);
  await bob.next(/left \(line too long\)/);

  log('slow consumer: erin joins, sends but never reads; alice floods the room with 4 KB lines');
  const erin = net.connect(port, '127.0.0.1');
  erin.on('error', () => {}); // erin gets a reset when dropped
  await once(erin, 'connect');
  const erinKey = hostPort('127.0.0.1', erin.localPort);
  await alice.next(/joined/);
  await bob.next(/joined/);
  alice.show = false;
  bob.show = false;
  let sent = 0;
  while (chat.room.has(erinKey) && sent < 10_000) {
    for (let i = 0; i < 16; i++) alice.socket.write(`b:${++sent} ${'.'.repeat(4000)}\n`);
    // erin keeps sending (so she is not idle) but never reads a byte.
    erin.write('l\n');
    // Wait until bob (who reads) has the whole batch, and let him answer: the room keeps flowing for them.
    await bob.next(new RegExp(`^alice: ${sent} `));
    bob.say(`b:got ${sent}`);
    await alice.next(new RegExp(`^bob: got ${sent}$`));
  }
  alice.show = true;
  bob.show = true;
  logger('bob')(`< ${await bob.next(new RegExp(`${erinKey} left`))}`);
  log(`alice sent ${sent} lines of 4 KB, bob read them all and answered each batch; erin read none: dropped`);

  log('idle: frank joins and says nothing; alice and bob say something every 200 ms');
  const frank = await peer('frank', port);
  frank.show = false;
  await alice.next(/joined/);
  await bob.next(/joined/);
  let round = 0;
  const talk = () => {
    round++;
    alice.say(`b:still here ${round}`);
    bob.say(`b:me too ${round}`);
  };
  talk();
  const timer = setInterval(talk, 200);
  logger('frank')(`< ${await frank.next(/no line from you/)}`);
  await once(frank.socket, 'close');
  await bob.next(/left \(idle\)/);
  clearInterval(timer);
  log(`only frank was closed; alice and bob spoke ${round} times each meanwhile`);

  log('graceful shutdown (what SIGINT or SIGTERM does in the server role)');
  await Promise.all([chat.shutdown(), once(alice.socket, 'close'), once(bob.socket, 'close')]);
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const limits: Limits = {
    maxUsers: args.int('max-users'),
    maxPerAddress: args.int('max-per-address'),
    maxRate: args.int('max-rate'),
    maxLine: args.int('max-line'),
    maxBuffered: args.int('max-buffered'),
    idleMs: args.int('idle-ms'),
    showChunks: args.has('show-chunks'),
  };
  const chat = createChatServer(limits, log);
  chat.server.on('error', (err) => fatal('server', err));
  // Registered before the listening line: a test may signal as soon as it reads it.
  onShutdown(() => chat.shutdown());
  chat.server.listen(args.port, args.host, () => {
    printListening(log, chat.server.address());
    log(
      `limits: ${limits.maxUsers} users (${limits.maxPerAddress} per address), ${limits.maxRate || 'any number of'} lines a second each, lines up to ${limits.maxLine} bytes, ${limits.maxBuffered} unread bytes per user, idle after ${limits.idleMs} ms`,
    );
  });
} else if (args.role === 'client') {
  await runClient(args.host, args.port, args.int('burst'), args.has('nagle'));
} else {
  await demo();
}
