// A UDP socket for tests: bind it, send from it, and wait for datagrams (each one is one "line" of text).
// Closed for you when the test ends.
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';
import { LineWatcher } from './watch.ts';

export interface Datagram {
  text: string;
  rinfo: dgram.RemoteInfo;
}

export interface TestUdp {
  readonly socket: dgram.Socket;
  /** The port it is bound to. */
  readonly port: number;
  readonly received: Datagram[];
  /** Resolves once `count` datagrams whose text matches have arrived. */
  waitForMessages(pattern: RegExp, count?: number): Promise<Datagram[]>;
  send(text: string | Uint8Array, port: number, address?: string): Promise<number>;
  /** Errors the socket reported (ECONNREFUSED on a connected socket, say). */
  readonly errors: Error[];
}

export interface UdpOptions {
  port?: number;
  address?: string;
  reuseAddr?: boolean;
}

export async function openUdp(options: UdpOptions = {}, name = 'udp'): Promise<TestUdp> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: options.reuseAddr ?? false });
  try {
    onTestFinished(() => {
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
  const watcher = new LineWatcher(name);
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
    async waitForMessages(pattern, count = 1) {
      await watcher.waitForLines(pattern, count);
      return received.filter((d) => pattern.test(d.text)).slice(0, count);
    },
    send(text, port, address = '127.0.0.1') {
      return new Promise((resolve, reject) =>
        socket.send(text, port, address, (err, bytes) => (err ? reject(err) : resolve(bytes))),
      );
    },
  };
}
