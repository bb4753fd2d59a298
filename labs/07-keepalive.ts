// Lab 07: idle timeouts with socket.setTimeout() and dead-peer detection with socket.setKeepAlive() (notes 001, 002).
// 'timeout' only says a socket went quiet: this server warns an idle client, then ends it itself. Linux shows keepalive with ss.
// Run: npm run lab 07 (demo) · npm run lab 07 server · npm run lab 07 client · nc 127.0.0.1 8080 · as root: npm run lab 07 vanish
// Flags: -- --port N (default 8080) --idle MS (server, default 5000; 0 = off) --keepalive MS (server, client, vanish)
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { fail, fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { describeLimits, guard, LIMITS } from './lib/guard.ts';
import { onLines } from './lib/lines.ts';
import { describeError, fiveTuple, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';

const args = parseLabArgs({
  roles: ['server', 'client', 'vanish'],
  port: 8080,
  flags: {
    idle: { default: '5000', help: 'server: ms of silence before its idle timeout fires; 0 turns it off' },
    keepalive: {
      default: 'off',
      help: 'server, client: setKeepAlive(true, MS) on each connection; vanish: 2000 unless given',
    },
  },
});

// #region ss
/** The kernel's timer on one connection, as `ss -tno` prints it: `timer:(keepalive,1.948ms,0)`. */
interface KernelTimer {
  text: string;
  /** Time left until the timer fires: the next keepalive probe. */
  ms: number;
  /** Keepalive probes sent that the peer has not answered. */
  probes: number;
}

/** Why this machine cannot show the kernel's timers, or undefined when it can. */
function whyNoSs(): string | undefined {
  if (process.platform !== 'linux')
    return `ss and the kernel's keepalive timer are Linux-only (this is ${process.platform}); setKeepAlive still works`;
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return "ss (iproute2) not found: install iproute2 to see the kernel's keepalive timer; carrying on without it";
  }
}

/** Asks ss about this one connection (both ports, so the server's side and the client's side differ). */
function kernelTimer(socket: net.Socket): KernelTimer | 'off' | 'gone' {
  const filter = `( sport = :${socket.localPort} and dport = :${socket.remotePort} )`;
  const out = execFileSync('ss', ['-tnoH', 'state', 'established', filter], { encoding: 'utf8' });
  if (!out.trim()) return 'gone'; // no longer established: the kernel has dropped it
  const m = out.match(/timer:\(keepalive,([^,]*),(\d+)\)/);
  if (!m) return 'off';
  return { text: m[0], ms: ssDuration(m[1] as string), probes: Number(m[2]) };
}

// ss prints 7140 s as '119min', 12 s as '12sec', 0.904 s as '904ms', a timer due right now as '', and 1.948 s
// as '1.948ms' (iproute2 up to 6.x: whole seconds, a dot, then milliseconds; newer versions print '1.948sec').
function ssDuration(text: string): number {
  const m = /^(?:(\d+)min)?(?:(\d+)(?:sec|\.(\d{3})(?:ms|sec)))?(?:(\d+)ms)?$/.exec(text);
  if (!m) return Number.NaN;
  const [, min = '0', sec = '0', frac = '0', ms = '0'] = m;
  return Number(min) * 60_000 + Number(sec) * 1000 + Number(frac) + Number(ms);
}

function inWords(ms: number): string {
  if (ms >= 120_000) return `${Math.floor(ms / 60_000)} min`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(1)} s`;
  return `${ms} ms`;
}

function describeTimer(timer: KernelTimer | 'off' | 'gone'): string {
  if (timer === 'off') return 'no timer: keepalive is off';
  if (timer === 'gone') return 'the connection is no longer established';
  const unanswered = `${timer.probes} probe${timer.probes === 1 ? '' : 's'} unanswered`;
  return `${timer.text}: next probe in ${inWords(timer.ms)}, ${unanswered}`;
}
// #endregion ss

// #region server
function createIdleServer(log: Log, idle: number, keepalive: number | undefined): net.Server {
  const noSs = keepalive === undefined ? undefined : whyNoSs();
  if (noSs) log(noSs);
  return net.createServer((socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    let timeouts = 0; // in a row, without a byte from the client in between
    let total = 0;
    let lastHeard = Date.now();
    log(`${peer} connected; setTimeout(${idle})`);
    socket.on('error', (err) => log(`${peer} error: ${describeError(err)}`));
    // Lines of 4 KiB at most and 256 KiB unread per client (labs/lib/guard.ts); the idle limit is this lab's own.
    const g = guard(socket, log, { idleMs: 0 });
    socket.on('close', () => log(`${peer} closed after ${total} 'timeout' event(s)`));
    // The timer restarts on every read and write; 0 means no idle timeout at all.
    socket.setTimeout(idle);
    if (keepalive !== undefined) {
      // #region exercise-keepalive
      socket.setKeepAlive(true, keepalive);
      // #endregion exercise-keepalive
      if (!noSs) log(`${peer} setKeepAlive(true, ${keepalive}): ${describeTimer(kernelTimer(socket))}`);
    }
    g.send(
      idle > 0
        ? `hello: say something at least every ${idle} ms (or type notimeout)\r\n`
        : 'hello: no idle timeout here\r\n',
    );
    socket.on('timeout', () => {
      timeouts += 1;
      total += 1;
      // The event is only a notice: the socket is still open and still writable.
      log(
        `${peer} 'timeout' #${timeouts} after ${Date.now() - lastHeard} ms idle: destroyed=${socket.destroyed} writable=${socket.writable}`,
      );
      // #region exercise-idle
      if (timeouts === 1) {
        socket.write(`idle for ${idle} ms: still there? (say anything, or I close at the next timeout)\r\n`);
      } else if (!socket.writableEnded) {
        log(`${peer} still idle: closing it ourselves with end()`);
        socket.end('bye: idle too long\r\n');
      } else {
        // end() only sent our FIN; a peer that never sends its own keeps the socket half-open. Stop waiting.
        log(`${peer} ignored our FIN for another ${idle} ms: destroy()`);
        socket.destroy();
      }
      // #endregion exercise-idle
    });
    g.lines((line) => {
      lastHeard = Date.now();
      timeouts = 0;
      if (line === 'notimeout') {
        // #region exercise-disable
        socket.setTimeout(0);
        // #endregion exercise-disable
        log(`${peer} asked for no timeout: setTimeout(0)`);
        g.send('timeout disabled: setTimeout(0)\r\n');
      } else {
        g.send(`echo: ${line}\r\n`);
      }
    });
  });
}
// #endregion server

// #region client
/** A client that never says a word: the server's idle timeout is for clients like this one. */
function runQuietClient(actor: string, host: string, port: number, keepalive: number | undefined) {
  const log = logger(actor);
  const noSs = keepalive === undefined ? undefined : whyNoSs();
  const socket = net.connect({ host, port });
  let connectedAt = 0;
  let watch: NodeJS.Timeout | undefined;
  const since = () => `+${((Date.now() - connectedAt) / 1000).toFixed(1)} s`;
  socket.on('connect', () => {
    connectedAt = Date.now();
    log(`connected: ${fiveTuple(socket)}`);
    if (keepalive === undefined) return;
    socket.setKeepAlive(true, keepalive);
    log(`setKeepAlive(true, ${keepalive})`);
    if (noSs) return log(noSs);
    // Poll the kernel's timer and print it whenever the probe count changes or the timer starts over.
    let last: KernelTimer | 'off' | undefined;
    const probes = (t: KernelTimer | 'off' | undefined) =>
      t === undefined ? -2 : t === 'off' ? -1 : t.probes;
    const look = () => {
      const timer = kernelTimer(socket);
      if (timer === 'gone') return;
      const before = last;
      last = timer;
      if (probes(timer) !== probes(before)) log(`${since()} ${describeTimer(timer)}`);
      // More time left than a moment ago: a probe was answered (or data came), so the idle clock started over.
      else if (timer !== 'off' && before !== undefined && before !== 'off' && timer.ms > before.ms + 150)
        log(`${since()} the timer started over: ${describeTimer(timer)}`);
    };
    look();
    watch = setInterval(look, 100);
  });
  onLines(socket, (line) => log(`received: ${line}`));
  socket.on('end', () => log("server sent FIN: 'end'"));
  return new Promise<void>((resolve) => {
    socket.on('error', (err) => {
      if (!connectedAt) fatal(actor, err);
      // After the connection was up, an error is news about the peer: say when it came.
      console.error(`[${actor}] ${since()} error: ${describeError(err)}`);
      process.exitCode = 1;
    });
    socket.on('close', () => {
      clearInterval(watch);
      log('closed');
      resolve();
    });
  });
}
// #endregion client

async function listen(server: net.Server, port: number, host: string): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

// #region keepalive-table
async function keepaliveTable(log: Log) {
  const noSs = whyNoSs();
  if (noSs) return log(noSs);
  const sysctl = (name: string) => readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim();
  log(
    `kernel defaults: tcp_keepalive_time=${sysctl('tcp_keepalive_time')} s, tcp_keepalive_intvl=${sysctl('tcp_keepalive_intvl')} s, tcp_keepalive_probes=${sysctl('tcp_keepalive_probes')}`,
  );
  const server = net.createServer((socket) => socket.on('error', () => {}));
  const port = await listen(server, 0, '127.0.0.1');
  const cases: [string, (socket: net.Socket) => void][] = [
    ['setKeepAlive never called   ', () => {}],
    ['setKeepAlive(true)          ', (s) => s.setKeepAlive(true)],
    ['setKeepAlive(true, 500)     ', (s) => s.setKeepAlive(true, 500)],
    ['setKeepAlive(true, 1500)    ', (s) => s.setKeepAlive(true, 1500)],
    ['setKeepAlive(true, 2000)    ', (s) => s.setKeepAlive(true, 2000)],
  ];
  for (const [label, configure] of cases) {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    configure(socket);
    // Ask right away: the kernel starts the timer the moment keepalive is switched on.
    log(`${label} → ${describeTimer(kernelTimer(socket))}`);
    socket.destroy();
  }
  log(
    'Node hands the kernel whole seconds: 500 ms becomes 0 s, which the kernel refuses, so its 2-hour default stays',
  );
  server.close();
}
// #endregion keepalive-table

async function demo() {
  const log = logger('demo');
  const idle = 300;
  log(`part 1: socket.setTimeout(${idle}) on the server: 'timeout' is a notice, not a close`);
  const slog = logger('server');
  const server = createIdleServer(slog, idle, undefined);
  const port = await listen(server, 0, '127.0.0.1');
  printListening(slog, server.address());

  // A client that turns its timeout off first: it stays idle longer than the quiet one and is never warned.
  const clog = logger('chatty');
  const chatty = net.connect(port, '127.0.0.1');
  const expected = new Map<string, () => void>();
  const hear = (line: string) => new Promise<void>((resolve) => expected.set(line, resolve));
  onLines(chatty, (line) => {
    clog(`received: ${line}`);
    expected.get(line)?.();
    expected.delete(line);
  });
  // Closed while still waiting means its timeout was not off after all: say so instead of waiting forever.
  chatty.on(
    'end',
    () => expected.size > 0 && fail(`the server closed 'chatty' too: ${[...expected.keys()]} never came`, 1),
  );
  await once(chatty, 'connect');
  const disabled = hear('timeout disabled: setTimeout(0)');
  clog('sends: notimeout');
  chatty.write('notimeout\r\n');
  await disabled;

  await runQuietClient('quiet', '127.0.0.1', port, undefined);
  log(
    "'chatty' has been idle longer than 'quiet' was, yet got no warning: setTimeout(0) turned its timer off",
  );
  const echoed = hear('echo: ping');
  clog('sends: ping');
  chatty.write('ping\r\n');
  await echoed;
  chatty.end();
  await once(chatty, 'close');
  server.close();
  await once(server, 'close');

  log('part 2: setKeepAlive(enable, initialDelay) and the kernel timer it starts, as `ss -tno` shows it');
  await keepaliveTable(logger('keepalive'));
  log(
    'part 3 (Linux, root): `npm run lab 07 vanish` cuts a link under an idle connection and keepalive notices',
  );
  log('done');
}

// #region vanish
/** Runs one `ip` command (words split on spaces) and turns a failure into one line that names it. */
function ip(command: string) {
  try {
    execFileSync('ip', command.split(' '), { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    fail(`ip ${command}: ${(e.stderr || e.message).trim()}`, 1);
  }
}

async function vanish(keepalive: number) {
  const log = logger('vanish');
  if (process.platform !== 'linux' || process.getuid?.() !== 0)
    fail('vanish needs Linux, root and iproute2 (ip netns): run it as root on Linux', 1);
  // Two namespaces of our own joined by one veth pair: nothing else on the machine sees this traffic.
  const ns = { client: `nwb07-${process.pid}-client`, peer: `nwb07-${process.pid}-peer` };
  const dev = { client: `nwb07c${process.pid}`, peer: `nwb07p${process.pid}` };
  const addr = { client: '10.200.7.1', peer: '10.200.7.2' };
  const children: ChildProcess[] = [];
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    for (const child of children) child.kill('SIGKILL');
    for (const name of [ns.client, ns.peer]) {
      try {
        execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      } catch {
        // Not created yet, or already gone.
      }
    }
    log('namespaces removed');
  };
  onShutdown(cleanup);
  process.on('exit', cleanup);

  log(
    `two network namespaces joined by a veth pair: ${ns.client} (${addr.client}) <-> ${ns.peer} (${addr.peer})`,
  );
  ip(`netns add ${ns.client}`);
  ip(`netns add ${ns.peer}`);
  ip(`link add ${dev.client} netns ${ns.client} type veth peer name ${dev.peer} netns ${ns.peer}`);
  for (const side of ['client', 'peer'] as const) {
    ip(`-n ${ns[side]} addr add ${addr[side]}/30 dev ${dev[side]}`);
    ip(`-n ${ns[side]} link set ${dev[side]} up`);
    ip(`-n ${ns[side]} link set lo up`);
  }

  // This same file plays both ends, each inside its namespace; their lines come through ours.
  const self = fileURLToPath(import.meta.url);
  const start = (name: string, role: string[]) => {
    const node = [process.execPath, ...process.execArgv, self];
    const argv = ['netns', 'exec', name, ...node, ...role, '--port', String(args.port)];
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    onLines(child.stdout as NodeJS.ReadableStream, (line) => {
      console.log(line);
      child.emit('line', line);
    });
    onLines(child.stderr as NodeJS.ReadableStream, (line) => console.error(line));
    return child;
  };
  const untilLine = (child: ChildProcess, pattern: RegExp) =>
    new Promise<void>((resolve) => {
      const early = () => fail(`a child in ${ns.peer} or ${ns.client} exited before printing ${pattern}`, 1);
      child.once('exit', early);
      child.on('line', (line: string) => {
        if (!pattern.test(line)) return;
        child.off('exit', early);
        resolve();
      });
    });

  const peer = start(ns.peer, ['server', '--host', addr.peer, '--idle', '0']);
  await untilLine(peer, /listening on /);
  const client = start(ns.client, ['client', '--host', addr.peer, '--keepalive', String(keepalive)]);
  const clientExit = once(client, 'exit');
  await untilLine(client, /received: hello/);

  // Link down on the peer's side: no FIN, no RST, nothing. The peer process still runs but hears nothing.
  ip(`-n ${ns.peer} link set ${dev.peer} down`);
  const cutAt = Date.now();
  log(
    `link cut (ip link set ${dev.peer} down): the peer can no longer answer, and it cannot say goodbye either`,
  );
  const [code] = (await clientExit) as [number | null];
  const seconds = ((Date.now() - cutAt) / 1000).toFixed(1);
  const expected = Math.floor(keepalive / 1000) + 10;
  log(
    `the client gave up ${seconds} s after the cut (exit code ${code}); expected about ${expected} s: initialDelay ${Math.floor(keepalive / 1000)} s + 10 probes × 1 s`,
  );
  peer.kill('SIGTERM');
  await once(peer, 'exit');
  cleanup();
}
// #endregion vanish

const keepaliveFlag = args.flag('keepalive');
const keepalive = keepaliveFlag === 'off' ? undefined : args.int('keepalive');

if (args.role === 'server') {
  const log = logger('server');
  const server = createIdleServer(log, args.int('idle'), keepalive);
  server.on('error', (err) => fatal('server', err));
  stopOnSignal(server, log);
  server.listen(args.port, args.host, () => {
    printListening(log, server.address());
    log(`limits: ${describeLimits({ ...LIMITS, idleMs: args.int('idle') })}`);
  });
} else if (args.role === 'client') {
  await runQuietClient('client', args.host, args.port, keepalive);
} else if (args.role === 'vanish') {
  await vanish(keepalive ?? 2000);
} else {
  await demo();
}
