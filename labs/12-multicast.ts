// Lab 12: UDP multicast with node:dgram on loopback (note 001, section 2.7): join a group, leave it, and see
// who else hears it. The group is 239.255.42.99 on interface 127.0.0.1 with TTL 1: nothing leaves this host.
// Run: npm run lab 12 (the demo) · npm run lab 12 receiver (type leave / join) · npm run lab 12 sender
// Flags: -- --port N (default 8080, the note's) --host GROUP --interface ADDR --ttl N --count N --interval MS
import dgram from 'node:dgram';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { fail, fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { onLines } from './lib/lines.ts';
import { hostPort, type Log, logger, printListening } from './lib/log.ts';

const args = parseLabArgs({
  roles: ['sender', 'receiver'],
  port: 8080,
  // For this lab --host is the group: the address a receiver binds and a sender sends to.
  host: '239.255.42.99',
  flags: {
    interface: {
      default: '127.0.0.1',
      help: 'address of the interface to join and send on (a LAN address sends real packets: see the page)',
    },
    ttl: { default: '1', help: 'multicast TTL of the sender: 1 stays on the local link, 0 on this host' },
    count: { default: '0', help: 'sender: send this many datagrams, then exit (0: until stopped)' },
    interval: { default: '1000', help: 'sender: milliseconds between datagrams' },
  },
});

const group = args.host;
const iface = args.flag('interface');
const ttl = args.int('ttl');
const octets = group.split('.').map(Number);
if (!net.isIPv4(group) || (octets[0] as number) < 224 || (octets[0] as number) > 239)
  fail(`--host must be an IPv4 multicast group (224.0.0.0 to 239.255.255.255), got '${group}'`);
if (!net.isIPv4(iface)) fail(`--interface must be the IPv4 address of an interface, got '${iface}'`);
if (ttl > 255) fail(`--ttl must be a whole number from 0 to 255, got '${ttl}'`);

// #region scope
/** Where a group may travel, by its range (RFC 5771 for the blocks, RFC 2365 for 239.0.0.0/8). */
function scopeOf(address: string): string {
  const [a, b, c] = address.split('.').map(Number);
  if (a === 224 && b === 0 && c === 0)
    return 'local network control block 224.0.0.0/24: reserved for protocols (224.0.0.1 is all hosts), never forwarded by routers';
  if (a === 239 && b === 255)
    return 'IPv4 local scope 239.255.0.0/16, inside the administratively scoped 239.0.0.0/8: private, and it stays inside a site';
  if (a === 239) return 'administratively scoped 239.0.0.0/8: private use inside an organization';
  return 'globally scoped (224.0.1.0 to 238.255.255.255): routers may carry it beyond your network; experiment in 239.255.x.x instead';
}
// #endregion scope

// #region receiver
interface Receiver {
  readonly socket: dgram.Socket;
  readonly port: number;
  /** The texts heard so far, in order. */
  readonly heard: string[];
  /** addMembership: ask the interface to receive the group (the host tells the network it is a member). */
  join(): void;
  /** dropMembership: this socket leaves the group; the interface leaves when its last member does. */
  leave(): void;
  /** Resolves when a datagram with exactly this text arrives. */
  hears(text: string): Promise<void>;
  close(): void;
}

// Bind to the group's address, not 0.0.0.0: then only datagrams sent to this group reach the socket
// (on Linux a 0.0.0.0 socket also takes other groups' traffic for its port, part 4 of the demo).
// Windows cannot bind a multicast address; there 0.0.0.0 is the way.
const bindAddress = process.platform === 'win32' ? '0.0.0.0' : group;

interface Where {
  port: number;
  /** The address the socket binds: the group (bindAddress), or 0.0.0.0 and 127.0.0.1 in the demo's parts 4 and 5. */
  bind: string;
  group: string;
  /** The interface (by its address) to join on. */
  iface: string;
}

async function openReceiver(log: Log, { port, bind, group, iface }: Where): Promise<Receiver> {
  // reuseAddr: several receivers on one host share the group's port; each gets its own copy.
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const heard: string[] = [];
  const waiters = new Set<() => void>();
  socket.on('message', (msg, rinfo) => {
    const text = msg.toString('utf8');
    log(`received ${JSON.stringify(text)} from ${hostPort(rinfo.address, rinfo.port)} (${rinfo.size} bytes)`);
    heard.push(text);
    for (const wake of [...waiters]) wake();
  });
  socket.bind(port, bind);
  await once(socket, 'listening');
  return {
    socket,
    port: (socket.address() as AddressInfo).port,
    heard,
    join() {
      // #region exercise-join
      // Name the interface: without it the kernel picks one by routing the group address, which is the
      // default route (a real network card), or fails with ENODEV on a host that has only lo.
      socket.addMembership(group, iface);
      log(`joined ${group} on interface ${iface}`);
      // #endregion exercise-join
    },
    leave() {
      // #region exercise-leave
      socket.dropMembership(group, iface);
      log(`left ${group}`);
      // #endregion exercise-leave
    },
    hears(text) {
      return new Promise((resolve) => {
        const check = () => {
          if (!heard.includes(text)) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      });
    },
    close: () => socket.close(),
  };
}
// #endregion receiver

/** A failed join or leave, in one line: the two errors a reader meets by typing a command twice. */
function membershipError(what: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (what === 'join' && code === 'EADDRINUSE')
    return 'join failed: EADDRINUSE, this socket is already a member';
  if (what === 'leave' && code === 'EADDRNOTAVAIL')
    return 'leave failed: EADDRNOTAVAIL, this socket is not a member';
  return `${what} failed: ${code ?? (err as Error).message}`;
}

// #region sender
interface Sender {
  readonly port: number;
  send(text: string, address: string, port: number): Promise<void>;
  close(): void;
}

async function openSender(log: Log, on: string, hops: number): Promise<Sender> {
  const socket = dgram.createSocket('udp4');
  // Bind first, on the interface's own address: the multicast options act on a bound socket
  // (setMulticastTTL before bind() throws EBADF). A sender does not need to join the group.
  socket.bind(0, on);
  await once(socket, 'listening');
  // Hops a datagram may cross: 1 keeps it on the local link, 0 on this host. (setTTL is for unicast.)
  socket.setMulticastTTL(hops);
  // Members on this host, like this lab's receivers, get a copy of what it sends.
  socket.setMulticastLoopback(true);
  // The outgoing interface for multicast. Without it the kernel routes the group like any other address.
  socket.setMulticastInterface(on);
  const port = (socket.address() as AddressInfo).port;
  log(`bound to ${hostPort(on, port)}: TTL ${hops}, loopback on, interface ${on}`);
  return {
    port,
    send: (text, address, to) =>
      new Promise((resolve, reject) =>
        socket.send(text, to, address, (err) => {
          if (err) return reject(err);
          log(`sent ${JSON.stringify(text)} to ${hostPort(address, to)}`);
          resolve();
        }),
      ),
    close: () => socket.close(),
  };
}
// #endregion sender

// The demo waits for datagrams, not for time; if one never comes (a receiver that did not join),
// it says so and exits 1 instead of hanging.
function heardBy(r: Receiver, name: string, text: string): Promise<void> {
  const timer = setTimeout(
    () =>
      fatal('demo', new Error(`${name} did not hear ${JSON.stringify(text)} in 3 s: did it join the group?`)),
    3000,
  );
  return r.hears(text).finally(() => clearTimeout(timer));
}

/** A plain socket on 127.0.0.1: a unicast datagram to it, sent after a group datagram, comes back after that
 * one has been through the loopback. So "it arrived" proves the group datagram was handled, without a wait. */
async function openMarker(): Promise<{ port: number; arrived(): Promise<unknown>; close(): void }> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return {
    port: (socket.address() as AddressInfo).port,
    arrived: () => once(socket, 'message'),
    close: () => socket.close(),
  };
}

// #region drop
async function dropDemo(log: Log, sender: Sender, a: Receiver, b: Receiver) {
  const port = a.port;
  log('1. every member of the group hears every datagram');
  await sender.send('#1', group, port);
  await Promise.all([heardBy(a, 'receiver A', '#1'), heardBy(b, 'receiver B', '#1')]);

  log('2. B leaves while A stays a member');
  b.leave();
  await sender.send('#2', group, port);
  await heardBy(a, 'receiver A', '#2');

  log('3. A leaves too: no socket on this host is a member now');
  a.leave();
  await sender.send('#3', group, port);
  const marker = await openMarker();
  const back = marker.arrived();
  await sender.send('marker', '127.0.0.1', marker.port);
  await back;
  log('the unicast marker sent after #3 is back, so #3 has been handled: both join again');
  marker.close();
  for (const [r, name] of [
    [a, 'receiver A'],
    [b, 'receiver B'],
  ] as const) {
    // Joining twice fails (EADDRINUSE): say so rather than crash, the learner's leave() may be missing.
    try {
      r.join();
    } catch (err) {
      logger(name)(membershipError('join', err));
    }
  }
  await sender.send('#4', group, port);
  await Promise.all([heardBy(a, 'receiver A', '#4'), heardBy(b, 'receiver B', '#4')]);

  log(`A heard ${a.heard.join(' ')}; B heard ${b.heard.join(' ')}`);
  if (a.heard.includes('#3') || b.heard.includes('#3'))
    log(
      '#3 was heard: another socket on this host is a member of the group (a receiver in another terminal?)',
    );
  else log('nobody heard #3: when its last member left, interface 127.0.0.1 left the group');
  if (b.heard.includes('#2'))
    log(
      'B heard #2 after leaving: A kept 127.0.0.1 in the group, and Linux delivers to every socket bound to the port, member or not (IP_MULTICAST_ALL)',
    );
  else log('B missed #2: this system filters by each socket’s own memberships');
}
// #endregion drop

// #region multicast-all
async function multicastAllDemo(log: Log, sender: Sender, a: Receiver) {
  const port = a.port;
  log(`4. a bystander socket bound to 0.0.0.0:${port} that never joins anything`);
  const bystander = await openReceiver(logger('bystander'), { port, bind: '0.0.0.0', group, iface });
  // Another program's group on the same port, to see whose datagrams each socket gets.
  const [o1, o2, o3, o4] = group.split('.').map(Number) as [number, number, number, number];
  const otherGroup = `${o1}.${o2}.${o3}.${(o4 + 1) % 256}`;
  const other = await openReceiver(logger('other'), { port, bind: otherGroup, group: otherGroup, iface });
  other.join();
  const before = a.heard.length;
  await sender.send('#5', group, port);
  await sender.send('to the other group', otherGroup, port);
  await sender.send('marker', '127.0.0.1', port);
  await sender.send('#6', group, port);
  await Promise.all([
    heardBy(a, 'receiver A', '#6'),
    heardBy(other, 'other', 'to the other group'),
    heardBy(bystander, 'bystander', '#6'),
  ]);
  log(`bystander (0.0.0.0, no membership) heard: ${bystander.heard.join(', ')}`);
  log(`receiver A (bound to ${group}) heard: ${a.heard.slice(before).join(', ')}`);
  log(
    'Linux hands a group datagram to every socket bound to 0.0.0.0 on its port once any socket on the host joined; binding to the group address keeps other traffic out',
  );
  bystander.close();
  other.close();
}
// #endregion multicast-all

// #region unicast-bound
async function unicastBoundDemo(log: Log, sender: Sender, port: number) {
  log('5. note 001 binds its receiver to a unicast address (here 127.0.0.1) and joins the group');
  const note = await openReceiver(logger('note receiver'), { port, bind: '127.0.0.1', group, iface });
  note.join();
  await sender.send('#7', group, port);
  await sender.send('marker', '127.0.0.1', port);
  await heardBy(note, 'note receiver', 'marker');
  log(`note receiver heard: ${note.heard.join(', ')}`);
  log(`a datagram to ${group} matches only sockets bound to ${group} or 0.0.0.0, never to 127.0.0.1`);
  note.close();
}
// #endregion unicast-bound

async function demo() {
  const log = logger('demo');
  log(`group ${group}: ${scopeOf(group)}`);
  log(`interface ${iface}, TTL ${ttl}: the datagrams never leave this host`);
  const a = await openReceiver(logger('receiver A'), { port: 0, bind: bindAddress, group, iface });
  a.join();
  printListening(logger('receiver A'), a.socket.address());
  const b = await openReceiver(logger('receiver B'), { port: a.port, bind: bindAddress, group, iface });
  b.join();
  printListening(logger('receiver B'), b.socket.address());
  const sender = await openSender(logger('sender'), iface, ttl);

  await dropDemo(log, sender, a, b);
  b.close();
  if (process.platform === 'linux') await multicastAllDemo(log, sender, a);
  else log(`IP_MULTICAST_ALL is a Linux socket option: skipping the bystander part on ${process.platform}`);
  a.close();
  if (process.platform !== 'win32') await unicastBoundDemo(log, sender, a.port);
  else log('Windows delivers multicast to sockets bound to the interface address: skipping part 5');
  sender.close();
  log('done');
}

async function runReceiver() {
  const log = logger('receiver');
  let receiver: Receiver | undefined;
  // Registered before the listening line: a test may send SIGTERM the moment it reads that line.
  onShutdown(() => {
    log(`stopping: heard ${receiver?.heard.length ?? 0} datagram(s)`);
    receiver?.close();
  });
  log(`${group}: ${scopeOf(group)}`);
  try {
    receiver = await openReceiver(log, { port: args.port, bind: bindAddress, group, iface });
  } catch (err) {
    fatal('receiver', err);
  }
  try {
    receiver.join();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    fatal(
      'receiver',
      new Error(
        `addMembership(${group}, ${iface}) failed: ${code}: --interface must be an address of an interface that is up (ip -4 addr)`,
      ),
    );
  }
  printListening(log, receiver.socket.address());
  log("type 'leave' or 'join' and Enter to drop or add this socket's membership");
  const member = receiver;
  onLines(process.stdin, (line) => {
    const command = line.trim();
    try {
      if (command === 'leave') member.leave();
      else if (command === 'join') member.join();
      else if (command) log(`unknown command '${command}': type 'leave' or 'join'`);
    } catch (err) {
      log(membershipError(command, err));
    }
  });
}

async function runSender() {
  const log = logger('sender');
  const count = args.int('count');
  const interval = args.int('interval');
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  let sender: Sender | undefined;
  onShutdown(() => {
    clearInterval(timer);
    log(`stopping after ${sent} datagram(s)`);
    sender?.close();
  });
  log(`${group}: ${scopeOf(group)}`);
  try {
    sender = await openSender(log, iface, ttl);
  } catch (err) {
    fatal('sender', err);
  }
  const out = sender;
  const tick = () => {
    sent += 1;
    const n = sent;
    if (count > 0 && n >= count) clearInterval(timer);
    // The note sends the time; a number first lets a receiver see what it missed, a newline suits nc.
    out.send(`#${n} ${new Date().toISOString().slice(11, 23)}\n`, group, args.port).then(
      () => {
        if (count > 0 && n === count) {
          log(`sent ${count} datagram(s), done`);
          out.close();
        }
      },
      (err) => fatal('sender', err),
    );
  };
  timer = setInterval(tick, interval);
  tick();
}

if (args.role === 'receiver') await runReceiver();
else if (args.role === 'sender') await runSender();
else await demo();
