// Lab 02: the handshake done by the kernel, the accept queue, half-close and the TCP states (docs/02-handshake.md).
import { execFile, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { type LabProcess, REPLY_MS, STALL_MS, setWaitDefaults, spawnLab } from './helpers/lab.ts';
import { connectClient, refusedPort } from './helpers/net.ts';
import { expectInOrder } from './helpers/order.ts';

const linux = fs.existsSync('/proc/net/tcp');
const hasSs = linux && spawnSync('ss', ['-V']).status === 0;
const hasIpv6Loopback =
  fs.existsSync('/proc/net/tcp6') &&
  Object.values(os.networkInterfaces()).some((list) => list?.some((i) => i.address === '::1'));
if (!linux) console.log('lab 02: /proc/net/tcp is Linux-only: the tests of TCP states are skipped');
if (linux && !hasSs)
  console.log('lab 02: ss (iproute2) is missing: the tests of the accept queue are skipped');
if (linux && !hasIpv6Loopback) console.log('lab 02: no ::1 here: the /proc/net/tcp6 test is skipped');

// The demo blocks a server process for a real second and starts a second Node process for it: it needs
// real time, so the tests that read its timeline allow more than the default 10 s.
const DEMO_TIMEOUT = 30_000;
// The lab's one timer is the demo's one-second block of the server's event loop: a wait fails once the lab has
// said nothing new for that second plus REPLY_MS, so an untouched starter fails in seconds, not at the timeout.
setWaitDefaults({ quiet: 1000 + REPLY_MS, stalled: STALL_MS });

// One demo run read by five tests: started before them (beforeAll, outside any test, so afterAll cleans it up).
let demoRun: Promise<LabProcess> | undefined;
function demo(): Promise<LabProcess> {
  if (!demoRun) throw new Error('the demo is started in beforeAll');
  return demoRun;
}
beforeAll(() => {
  const lab = spawnLab('02');
  demoRun = lab.waitForExit().then(() => lab);
  demoRun.catch(() => {}); // each test that reads it reports the failure
});

const DAY = 86_400_000;
/** `12:34:56.789` (the lab's clock, UTC) as milliseconds since midnight. */
function ms(clock: string | undefined): number {
  const m = clock?.match(/^(\d\d):(\d\d):(\d\d)\.(\d{3})$/);
  if (!m) throw new Error(`not a clock time: ${clock}`);
  const [h, min, s, milli] = m.slice(1).map(Number) as [number, number, number, number];
  return ((h * 60 + min) * 60 + s) * 1000 + milli;
}
/** How many ms `b` is after `a` (negative when before), across midnight too. */
function gap(a: number, b: number): number {
  return ((((b - a) % DAY) + DAY + DAY / 2) % DAY) - DAY / 2;
}
const now = () => Date.now() % DAY;

/** The lines between one `[demo] N.` header and the next. */
function part(lines: string[], n: number): string[] {
  const start = lines.findIndex((l) => l.startsWith(`[demo] ${n}. `));
  const end = lines.findIndex((l) => l.startsWith(`[demo] ${n + 1}. `) || l === '[demo] done');
  return lines.slice(start, end);
}

const execFileAsync = promisify(execFile);
async function ss(args: string[]): Promise<string> {
  return (await execFileAsync('ss', args)).stdout.trim();
}
/** Recv-Q and Send-Q of a listening socket: connections waiting to be accepted, and the backlog. */
async function acceptQueue(port: number): Promise<{ waiting: number; backlog: number }> {
  const [, waiting, backlog] = (await ss(['-ltnH', `sport = :${port}`])).split(/\s+/);
  return { waiting: Number(waiting), backlog: Number(backlog) };
}

describe.concurrent('lab 02: the three-way handshake and the four-way close', () => {
  it(
    'plays the demo: blocked server, half-close both ways, the TCP states and a socket nobody reads, then exits 0',
    async () => {
      const lab = await demo();
      expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
      expect(lab.stderr).toEqual([]);
      const order = [
        /^\[demo\] 1\. /,
        /^\[server\] listening on 127\.0\.0\.1:\d+$/,
        /^\[server\] unblocked at /,
        /^\[server\] shutting down, closing 3 connection\(s\)$/,
        /^\[demo\] 2\. /,
        /^\[server\] reply lost: This socket has been ended by the other party/,
        /^\[server\] reply sent after the client's FIN$/,
        /^\[client\] received: you sent 6 bytes$/,
        /^\[demo\] 3\. /,
        /^\[demo\] 4\. /,
        /^\[demo\] done$/,
      ];
      expectInOrder(lab.lines, order);
      // One server process, one listening line; one reply lost (default), one delivered (allowHalfOpen).
      expect(lab.matching(/listening on/)).toHaveLength(1);
      expect(lab.matching(/reply lost/)).toHaveLength(1);
      expect(lab.matching(/reply sent/)).toHaveLength(1);
      expect(lab.matching(/^\[client\] received: you sent/)).toHaveLength(1);
    },
    DEMO_TIMEOUT,
  );

  it(
    "the kernel completes the handshake while the server's event loop is blocked: every client connects before the server unblocks, and 'connection' comes after",
    async () => {
      const lines = part((await demo()).lines, 1);
      const text = lines.join('\n');
      const blocked = ms(text.match(/^\[server\] blocking the event loop for 1000 ms .* at (\S+)$/m)?.[1]);
      const unblocked = ms(text.match(/^\[server\] unblocked at (\S+)$/m)?.[1]);
      const connected = [...text.matchAll(/^\[client\] #\d connected at (\S+): /gm)].map((m) => ms(m[1]));
      const accepted = [...text.matchAll(/^\[server\] connection from \S+ at (\S+)$/gm)].map((m) => ms(m[1]));
      expect(connected, text).toHaveLength(3);
      expect(accepted, text).toHaveLength(3);
      for (const t of connected) {
        expect(gap(blocked, t), text).toBeGreaterThanOrEqual(0);
        expect(gap(t, unblocked), text).toBeGreaterThan(0);
      }
      for (const t of accepted) expect(gap(unblocked, t), text).toBeGreaterThanOrEqual(0);
      // The reader sees the same order on the page: three connects, then 'unblocked', then the connections.
      const lastConnect = lines.findLastIndex((l) => /^\[client\] #\d connected/.test(l));
      const firstAccept = lines.findIndex((l) => l.startsWith('[server] connection from'));
      expect(lastConnect).toBeLessThan(lines.findIndex((l) => l.startsWith('[server] unblocked')));
      expect(lines.findIndex((l) => l.startsWith('[server] unblocked'))).toBeLessThan(firstAccept);
    },
    DEMO_TIMEOUT,
  );

  it.skipIf(!hasSs)(
    "the demo's connections wait in the accept queue while the server is blocked, and listen() without a backlog gets Node's default 511",
    async () => {
      const lab = await demo();
      expect(part(lab.lines, 1).join('\n')).toMatch(
        /^\[kernel\] accept queue of port \d+: 3 waiting, backlog 511 /m,
      );
      expect(part(lab.lines, 3).join('\n')).toMatch(
        /^\[kernel\] accept queue of port \d+: 0 waiting, backlog 511 .*listen\(\) was given no backlog/m,
      );
    },
    DEMO_TIMEOUT,
  );

  it.skipIf(!linux)(
    'the kernel lists LISTEN, ESTABLISHED on both ends, FIN_WAIT2 / CLOSE_WAIT after the first FIN, and TIME_WAIT on the side that sent it',
    async () => {
      const lines = part((await demo()).lines, 3);
      const states = lines
        .map((l) =>
          l.match(/^\[kernel\] (listener|client|server) tcp (\S+)(?: -> (\S+))?: ([A-Z_0-9]+|not listed)/),
        )
        .filter((m) => m !== null)
        .map((m) => `${m[1]} ${m[4]}`);
      expect(states, lines.join('\n')).toEqual([
        'listener LISTEN',
        'client ESTABLISHED',
        'server ESTABLISHED',
        // The listening socket never becomes the connection: it stays in LISTEN beside it.
        'listener LISTEN',
        // The client's FIN is acknowledged; the server may still send (half-close).
        'client FIN_WAIT2',
        'server CLOSE_WAIT',
        // The client closed first: it keeps the TIME_WAIT; the server's socket is gone.
        'client TIME_WAIT',
        'server not listed',
        // Then the server closes first, and the TIME_WAIT moves to the server's side.
        'client not listed',
        'server TIME_WAIT',
      ]);
      // Each row is the same connection seen from both ends: the ports mirror each other.
      const [client, server] = lines
        .filter((l) => / ESTABLISHED$/.test(l) && !l.includes('listener'))
        .map((l) => l.match(/tcp \S+:(\d+) -> \S+:(\d+)/)?.slice(1));
      expect(client).toEqual([...(server ?? [])].reverse());
    },
    DEMO_TIMEOUT,
  );

  it(
    "erratum (note 002): 'end' needs a reader: a socket with unread bytes gets no 'end' until it is read, although its FIN has arrived",
    async () => {
      const lines = part((await demo()).lines, 4);
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      const waiting = at(/^\[server\] B: no 'end' yet: 6 bytes wait unread/);
      expect(waiting, lines.join('\n')).toBeGreaterThan(-1);
      // A was read and C had nothing to read: both ended before B.
      expect(at(/^\[server\] A: 'end'$/)).toBeLessThan(waiting);
      expect(at(/^\[server\] C: 'end'$/)).toBeLessThan(waiting);
      expect(at(/^\[server\] B: on\('data'\) makes it flow: 6 bytes$/)).toBeGreaterThan(waiting);
      expect(at(/^\[server\] B: 'end'$/)).toBeGreaterThan(waiting);
      expect(lines.filter((l) => /^\[server\] [ABC]: 'end'$/.test(l))).toHaveLength(3);
      // The kernel had B's FIN all along (Linux shows it).
      if (linux) expect(lines[waiting - 1]).toMatch(/^\[kernel\] server B tcp .*: CLOSE_WAIT$/);
    },
    DEMO_TIMEOUT,
  );

  it("the client role in another process connects while the server role is blocked; the server's 'connection' comes only after it unblocks", async (t) => {
    const server = spawnLab(t, '02', ['server', '--port', '0', '--block', 'enter']);
    const { port } = await server.listening();
    await server.waitForLine(/^\[server\] blocking the event loop until Enter/);
    const client = spawnLab(t, '02', ['client', '--port', String(port)]);
    const [, connectedAt, clientPort] = await client.waitForLine(
      /^\[client\] connected at (\S+): tcp 127\.0\.0\.1:(\d+) -> /,
    );
    // Its data and its FIN go out too: the kernel buffers them for a server that has not accepted yet.
    await client.waitForLine(/^\[client\] sent 'hello' and FIN/);
    const others = [await connectClient(t, port), await connectClient(t, port)];
    const enterAt = now();
    server.write('\n');
    const [, unblockedAt] = await server.waitForLine(/^\[server\] unblocked at (\S+)$/);
    const accepted = await server.waitForLines(/^\[server\] connection from 127\.0\.0\.1:(\d+) at (\S+)$/, 3);
    expect(gap(ms(connectedAt), enterAt)).toBeGreaterThanOrEqual(0);
    expect(gap(enterAt, ms(unblockedAt))).toBeGreaterThanOrEqual(0);
    for (const m of accepted) expect(gap(ms(unblockedAt), ms(m[2]))).toBeGreaterThanOrEqual(0);
    expect(new Set(accepted.map((m) => Number(m[1])))).toEqual(
      new Set([Number(clientPort), ...others.map((c) => c.socket.localPort)]),
    );
    // allowHalfOpen is false here: the client gets the server's FIN and no reply, and exits 0.
    expect(await client.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(client.matching(/^\[client\] received:/)).toHaveLength(0);
    expect(client.lines.slice(-2)).toEqual(["[client] server sent FIN: 'end'", '[client] closed']);
    expect(server.matching(/connection from/)).toHaveLength(3);
  });

  it.skipIf(!hasSs)(
    "three connections wait in the kernel's accept queue (ss: Recv-Q 3) while the server is blocked, and none after it accepts them",
    async (t) => {
      const server = spawnLab(t, '02', ['server', '--port', '0', '--block', 'enter']);
      const { port } = await server.listening();
      await server.waitForLine(/blocking the event loop/);
      for (let i = 0; i < 3; i++) await connectClient(t, port);
      expect(await acceptQueue(port)).toEqual({ waiting: 3, backlog: 511 });
      server.write('\n');
      await server.waitForLines(/^\[server\] connection from /, 3);
      expect(await acceptQueue(port)).toEqual({ waiting: 0, backlog: 511 });
    },
  );

  it.skipIf(!hasSs)(
    'with --backlog 1 the queue holds two connections (backlog + 1); the third SYN is dropped and retried until the server accepts',
    async (t) => {
      const server = spawnLab(t, '02', ['server', '--port', '0', '--backlog', '1', '--block', 'enter']);
      const { port } = await server.listening();
      await server.waitForLine(/blocking the event loop/);
      await connectClient(t, port);
      await connectClient(t, port);
      const third = net.connect(port, '127.0.0.1');
      third.on('error', () => {});
      t.onTestFinished(() => {
        third.destroy();
      });
      let connectedAt: number | undefined;
      const connected = once(third, 'connect').then(() => {
        connectedAt = now();
      });
      // Ask the kernel until the third socket shows up: SYN-SENT means its SYN got no answer.
      let synSent = '';
      while (!synSent && connectedAt === undefined) {
        synSent = await ss(['-tnH', 'state', 'syn-sent', `( dport = :${port} )`]);
      }
      expect(synSent).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}`));
      expect(await acceptQueue(port)).toEqual({ waiting: 2, backlog: 1 });
      const enterAt = now();
      server.write('\n');
      // The client retries its SYN after about 1 s (its retransmission timer): this test needs real time.
      await connected;
      expect(gap(enterAt, connectedAt as number)).toBeGreaterThanOrEqual(0);
      await server.waitForLines(/^\[server\] connection from /, 3);
      expect(server.matching(/connection from/)).toHaveLength(3);
    },
    20_000,
  );

  it("erratum (note 002): a FIN closes one direction only: with --half-open (allowHalfOpen: true) the server still replies after the client's FIN, and the client receives it", async (t) => {
    const server = spawnLab(t, '02', ['server', '--port', '0', '--half-open']);
    const { port } = await server.listening();
    const client = spawnLab(t, '02', ['client', '--port', String(port), '--message', 'half-close']);
    expect(await client.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(client.lines.filter((l) => !l.includes('connected at'))).toEqual([
      "[client] sent 'half-close' and FIN with end(): our side is closed, we keep reading",
      '[client] received: you sent 11 bytes',
      "[client] server sent FIN: 'end'",
      '[client] closed',
    ]);
    await server.waitForLine(/closed$/);
    const order = [
      /sent FIN: 'end' after 11 bytes$/,
      /^\[server\] reply sent after the client's FIN$/,
      /closed$/,
    ];
    expectInOrder(server.lines, order);
    expect(server.matching(/reply lost/)).toHaveLength(0);
  });

  it("by default (allowHalfOpen: false) Node ends the server's side at the client's FIN: a reply written after 'end' is lost with EPIPE", async (t) => {
    const server = spawnLab(t, '02', ['server', '--port', '0']);
    const { port } = await server.listening();
    const client = spawnLab(t, '02', ['client', '--port', String(port)]);
    expect(await client.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(client.matching(/^\[client\] received:/)).toHaveLength(0);
    expect(client.matching(/^\[client\] server sent FIN: 'end'$/)).toHaveLength(1);
    await server.waitForLine(/closed$/);
    await server.waitForLine(/reply lost/);
    expect(
      server.matching(/^\[server\] reply lost: This socket has been ended by the other party /),
    ).toHaveLength(1);
    expect(server.matching(/reply sent/)).toHaveLength(0);
  });

  it.skipIf(!linux || !hasIpv6Loopback)(
    "the server role prints its side's state from /proc/net/tcp6 for an IPv6 connection: LISTEN, ESTABLISHED, CLOSE_WAIT",
    async (t) => {
      const server = spawnLab(t, '02', ['server', '--host', '::1', '--port', '0', '--half-open']);
      const { host, port } = await server.listening();
      expect(host).toBe('::1');
      await server.waitForLine(new RegExp(`^\\[kernel\\] listener tcp \\[::1\\]:${port}: LISTEN$`));
      const client = await connectClient(t, port, '::1');
      const me = client.socket.localPort;
      const tuple = `tcp \\[::1\\]:${port} -> \\[::1\\]:${me}`;
      await server.waitForLine(new RegExp(`^\\[kernel\\] server ${tuple}: ESTABLISHED$`));
      client.socket.end('six b\n');
      await server.waitForLine(new RegExp(`^\\[kernel\\] server ${tuple}: CLOSE_WAIT$`));
      await client.waitForLine(/^you sent 6 bytes$/);
      await client.waitForEnd();
      expect(server.matching(/^\[kernel\] /)).toHaveLength(3);
    },
  );

  it('the server stops cleanly on SIGTERM with exit code 0, closing its connections', async (t) => {
    const server = spawnLab(t, '02', ['server', '--port', '0']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    await server.waitForLine(/connection from/);
    expect(await server.stop()).toEqual({ exitCode: 0, signal: undefined });
    await client.waitForClose();
    expect(server.matching(/shutting down, closing 1 connection/)).toHaveLength(1);
  });

  it('a blocked server cannot even run its SIGTERM handler: it shuts down only after it unblocks', async (t) => {
    const server = spawnLab(t, '02', ['server', '--port', '0', '--block', 'enter']);
    await server.listening();
    await server.waitForLine(/blocking the event loop/);
    const stopped = server.stop('SIGTERM');
    server.write('\n');
    expect(await stopped).toEqual({ exitCode: 0, signal: undefined });
    const unblocked = server.lines.findIndex((l) => l.startsWith('[server] unblocked at'));
    expect(unblocked).toBeGreaterThan(-1);
    expect(server.lines.slice(unblocked + 1)).toEqual(['[server] shutting down, closing 0 connection(s)']);
  });

  it('a bad --block value and a refused connection are one line on stderr and a non-zero exit', async (t) => {
    const port = await refusedPort(t); // nothing listens there
    // Both at once: each is a Node process of its own.
    const bad = spawnLab(t, '02', ['server', '--block', 'soon']);
    const client = spawnLab(t, '02', ['client', '--port', String(port)]);
    expect(await bad.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
    expect(bad.stderr).toEqual(["error: --block must be a number of ms or 'enter', got 'soon'"]);
    expect(await client.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(client.stderr).toEqual([
      expect.stringMatching(new RegExp(`^\\[client\\] error: ECONNREFUSED 127\\.0\\.0\\.1:${port}: `)),
    ]);
  });
});
