// A raw TCP client for tests, like `nc`: connect, write, read lines, and closed for you when the test ends.
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { holdRefusedPort } from '../../scripts/lib/ports.ts';
import {
  gateOf,
  getWaitDefaults,
  hooksOf,
  isContext,
  type LabProcess,
  REPLY_MS,
  root,
  spawnFile,
  type TestHooks,
} from './lab.ts';
import { signal } from './proc.ts';
import { feedLines, LineWatcher, settleWithin, type WaitOptions } from './watch.ts';

export interface TestClient {
  readonly socket: net.Socket;
  readonly lines: string[];
  /** Everything received so far, as it came (line ends included). */
  raw(): string;
  /** Fails fast like a lab's waits: on close, on a `failOn` line first, or after `within` ms. */
  waitForLine(pattern: RegExp, options?: WaitOptions): Promise<RegExpMatchArray>;
  waitForLines(pattern: RegExp, count: number, options?: WaitOptions): Promise<RegExpMatchArray[]>;
  waitForText(pattern: RegExp, options?: WaitOptions): Promise<RegExpMatchArray>;
  matching(pattern: RegExp): RegExpMatchArray[];
  write(data: string | Uint8Array): void;
  /** Resolves when the server has ended its side ('end') or the socket closed. */
  readonly ended: Promise<void>;
  readonly closed: Promise<boolean>;
  /** `ended` with this client's deadlines (`within`, `quiet`): a server that never ends fails the wait, not the test timeout. */
  waitForEnd(options?: Pick<WaitOptions, 'within' | 'quiet'>): Promise<void>;
  /** `closed` with this client's deadlines. */
  waitForClose(options?: Pick<WaitOptions, 'within' | 'quiet'>): Promise<boolean>;
}

/**
 * Connects to 127.0.0.1:port and waits for 'connect'. Rejects (e.g. ECONNREFUSED) if it cannot. The socket is
 * destroyed when the test `t` ends; the old call without `t` is only for tests that run one at a time.
 */
export function connectClient(
  t: TestHooks,
  port: number,
  host?: string,
  name?: string,
  defaults?: WaitOptions,
): Promise<TestClient>;
export function connectClient(port: number, host?: string, name?: string): Promise<TestClient>;
export function connectClient(...all: unknown[]): Promise<TestClient> {
  const t = isContext(all[0]) ? (all.shift() as TestHooks) : undefined;
  const [port, host, name, defaults] = all as [number, string?, string?, WaitOptions?];
  return connect(t, port, host, name, defaults);
}

async function connect(
  t: TestHooks | undefined,
  port: number,
  host = '127.0.0.1',
  name = `client :${port}`,
  defaults: WaitOptions = {},
): Promise<TestClient> {
  const socket = net.connect({ port, host });
  socket.on('error', () => {}); // a reset peer is something tests look at, not a crash of the test runner
  try {
    hooksOf(t).onTestFinished(() => {
      socket.destroy();
    });
  } catch {
    // Outside a test: the caller destroys it.
  }
  await once(socket, 'connect');
  const watcher = new LineWatcher(name, { ...getWaitDefaults(), ...defaults }, gateOf(t));
  feedLines(socket, watcher);
  const ended = new Promise<void>((resolve) => {
    socket.once('end', resolve);
    socket.once('close', () => resolve());
  });
  const closed = new Promise<boolean>((resolve) => socket.once('close', resolve));
  closed.then(() => watcher.close('closed'));
  const guarded = <T>(promise: Promise<T>, what: string, o: WaitOptions = {}): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const cancel = watcher.guard({ ...watcher.defaults, ...o }, what, (why) =>
        reject(new Error(watcher.describe(why))),
      );
      promise.then((value) => {
        cancel();
        resolve(value);
      });
    });
  return {
    socket,
    lines: watcher.lines,
    raw: () => watcher.raw,
    waitForLine: (p, o) => watcher.waitForLine(p, o),
    waitForLines: (p, n, o) => watcher.waitForLines(p, n, o),
    waitForText: (p, o) => watcher.waitForText(p, o),
    matching: (p) => watcher.matching(p),
    write: (data) => socket.write(data),
    ended,
    closed,
    waitForEnd: (o) => guarded(ended, 'got no FIN from the server', o),
    waitForClose: (o) => guarded(closed, 'was not closed', o),
  };
}

/** A port on 127.0.0.1 where connections are refused until the test ends (scripts/lib/ports.ts says why). */
export async function refusedPort(t: TestHooks): Promise<number> {
  const { port, release } = await holdRefusedPort();
  hooksOf(t).onTestFinished(release);
  return port;
}

/**
 * A half-open peer (allowHalfOpen): it sends `opening`, which must make the server close its side, and goes on
 * at once with 64 KiB chunks as fast as it can, through the server's FIN, until the connection is gone. Not
 * waiting for the FIN first: the server's own linger (1 s after its FIN) must not outrun a flood that a loaded
 * machine starts late (check:exercises once saw the linger end it first). A server that reads nothing more
 * after its FIN resets it within `ms`. Returns the bytes it wrote and how the socket ended.
 */
export async function floodPastClose(
  t: TestHooks,
  port: number,
  opening: (string | Uint8Array)[],
  what: string,
  ms = REPLY_MS,
): Promise<{ sent: number; code: string | undefined; localPort: number }> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  hooksOf(t).onTestFinished(() => {
    socket.destroy();
  });
  let code: string | undefined;
  socket.on('error', (err: NodeJS.ErrnoException) => {
    code ??= err.code;
  });
  const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await settleWithin(once(socket, 'connect'), ms, `${what}: connecting to port ${port}`);
  const localPort = socket.localPort ?? 0; // gone with the socket
  socket.resume();
  for (const bytes of opening) socket.write(bytes);
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let sent = 0;
  const flooding = (async () => {
    while (!socket.destroyed) {
      sent += chunk.length;
      if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once('drain', r)), gone]);
    }
  })();
  await settleWithin(gone, ms, `${what}: the end of the connection`);
  await flooding;
  return { sent, code, localPort };
}

const stopPeerFile = path.join(root, 'test/fixtures/stop-peer.ts');

/**
 * The test of an overdue timer (labs 13, 14, 16): test/fixtures/stop-peer.ts, a peer in a process of its own,
 * connects to `lab` on `port`, writes `first` (nothing when empty), stops the lab at the first bytes back,
 * writes `second` and its FIN into the stopped lab's socket, and lets it go on after `holdMs`, which the test
 * makes longer than the limit it tests: the lab wakes with that timer overdue and `second` unread. Resolves with
 * everything the peer received (latin1) once the connection has closed. `ca`: over TLS, for the name localhost.
 * The lab is let go on when the test ends, whatever happened to the peer.
 */
export async function stopPeerExchange(
  t: TestHooks,
  lab: LabProcess,
  port: number,
  {
    first,
    second,
    holdMs,
    ca,
  }: { first: Uint8Array | string; second: Uint8Array | string; holdMs: number; ca?: string },
): Promise<string> {
  const pid = lab.pid as number;
  hooksOf(t).onTestFinished(() => signal(pid, 'SIGCONT'));
  const hex = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('hex') || '-';
  const peer = spawnFile(t, stopPeerFile, [
    String(port),
    String(pid),
    String(holdMs),
    hex(first),
    hex(second),
    ...(ca ? ['--tls', ca] : []),
  ]);
  await peer.waitForLine(/^stopped$/);
  // The one wait on a timer: the peer's own hold.
  await peer.waitForLine(/^resumed$/, { quiet: holdMs + REPLY_MS, stalled: undefined });
  const closed = await peer.waitForLine(/^closed: (.*)$/);
  return JSON.parse(closed[1] as string) as string;
}
