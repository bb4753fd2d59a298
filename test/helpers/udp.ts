// A UDP socket for tests: bind it, send from it, and wait for datagrams (each one is one "line" of text).
// Closed for you when the test ends.
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { definedOnly, gateOf, getWaitDefaults, hooksOf, isContext, type TestHooks } from './lab.ts';
import { LineWatcher, type WaitOptions } from './watch.ts';

export interface Datagram {
  text: string;
  rinfo: dgram.RemoteInfo;
}

export interface TestUdp {
  readonly socket: dgram.Socket;
  /** The port it is bound to. */
  readonly port: number;
  readonly received: Datagram[];
  /** Resolves once `count` datagrams whose text matches have arrived; fails fast like a lab's waits. */
  waitForMessages(pattern: RegExp, count?: number, options?: WaitOptions): Promise<Datagram[]>;
  send(text: string | Uint8Array, port: number, address?: string): Promise<number>;
  /** Errors the socket reported (ECONNREFUSED on a connected socket, say). */
  readonly errors: Error[];
}

export interface UdpOptions extends WaitOptions {
  port?: number;
  address?: string;
  reuseAddr?: boolean;
  // `within` and `failOn` given here apply to every wait on this socket that does not set its own.
}

/**
 * A bound UDP socket, closed when the test `t` ends; the old call without `t` is only for tests that run one at
 * a time.
 */
export function openUdp(t: TestHooks, options?: UdpOptions, name?: string): Promise<TestUdp>;
export function openUdp(options?: UdpOptions, name?: string): Promise<TestUdp>;
export function openUdp(...all: unknown[]): Promise<TestUdp> {
  const t = isContext(all[0]) ? (all.shift() as TestHooks) : undefined;
  const [options, name] = all as [UdpOptions?, string?];
  return open(t, options, name);
}

async function open(t: TestHooks | undefined, options: UdpOptions = {}, name = 'udp'): Promise<TestUdp> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: options.reuseAddr ?? false });
  try {
    hooksOf(t).onTestFinished(() => {
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    });
  } catch {
    // Outside a test: the caller closes it.
  }
  const errors: Error[] = [];
  socket.on('error', (err) => errors.push(err));
  const watcher = new LineWatcher(
    name,
    {
      ...getWaitDefaults(),
      ...definedOnly({ within: options.within, quiet: options.quiet, failOn: options.failOn }),
    },
    gateOf(t),
  );
  const received: Datagram[] = [];
  socket.on('message', (msg, rinfo) => {
    received.push({ text: msg.toString('utf8'), rinfo });
    watcher.push(msg.toString('utf8'));
  });
  socket.once('close', () => watcher.close('closed'));
  socket.bind(options.port ?? 0, options.address ?? '127.0.0.1');
  await once(socket, 'listening');
  return {
    socket,
    port: (socket.address() as AddressInfo).port,
    received,
    errors,
    async waitForMessages(pattern, count = 1, o) {
      await watcher.waitForLines(pattern, count, o);
      return received.filter((d) => pattern.test(d.text)).slice(0, count);
    },
    send(text, port, address = '127.0.0.1') {
      return new Promise((resolve, reject) =>
        socket.send(text, port, address, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      );
    },
  };
}
