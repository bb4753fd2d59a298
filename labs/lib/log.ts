// Tagged output lines: `[server] connection from 127.0.0.1:53122`. Tests and readers rely on the tags;
// only ports and times vary from run to run.
import type { AddressInfo } from 'node:net';
import { format } from 'node:util';

export type Log = (...parts: unknown[]) => void;

// `npm run lab 09 | head` closes the pipe early: that is the reader being done, not a crash to report.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

// A log is a queue too. When stdout is a pipe read more slowly than a flooding peer makes lines, console.log's
// bytes wait in process.stdout.writableLength, in our memory (a chat flood took a server to 340 MB this way).
// Past LOG_BACKLOG waiting, lines are skipped and counted; the count is printed once the output catches up.
const LOG_BACKLOG = 4 * 1024 * 1024;
let skipped = 0;

/** A logger whose lines start with `[actor]`. */
export function logger(actor: string): Log {
  return (...parts) => {
    if (process.stdout.writableLength > LOG_BACKLOG) {
      skipped++;
      return;
    }
    if (skipped > 0) {
      console.log(`[log] ${skipped} line(s) skipped: the output was not keeping up`);
      skipped = 0;
    }
    console.log(`[${actor}] ${format(...parts)}`);
  };
}

/** `127.0.0.1:8124`, `[::1]:8124`: an address and a port the way URLs and `nc` users write them. */
export function hostPort(address: string | undefined, port: number | undefined): string {
  return `${address?.includes(':') ? `[${address}]` : address}:${port}`;
}

/** `tcp 127.0.0.1:53122 -> 127.0.0.1:8124`: the five-tuple that names a connection, seen from this end. */
export function fiveTuple(socket: {
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
}): string {
  return `tcp ${hostPort(socket.localAddress, socket.localPort)} -> ${hostPort(socket.remoteAddress, socket.remotePort)}`;
}

/** The one line a server or receiver prints when it is ready: `[server] listening on 127.0.0.1:41234`. */
export function printListening(log: Log, address: AddressInfo | string | null): void {
  if (address === null) throw new Error('printListening: the socket is not bound');
  log(`listening on ${typeof address === 'string' ? address : hostPort(address.address, address.port)}`);
}

const explanations: Record<string, string> = {
  EADDRINUSE:
    'the address is already in use: another process (or another lab) holds this port; pick another with --port',
  EADDRNOTAVAIL: 'this machine has no such address to bind; use 127.0.0.1 or one of its own addresses',
  ECONNREFUSED: 'connection refused: nothing is listening there (start the server first, or check --port)',
  ECONNRESET: 'connection reset by the peer (it closed abruptly, with RST)',
  EPIPE: 'broken pipe: the peer is gone and cannot receive what we write',
  ETIMEDOUT: 'timed out: the peer did not answer',
  EACCES: 'permission denied',
  ENOTFOUND: 'host name not found',
  EMSGSIZE: 'message too long for one datagram',
};

/** One readable line for an error: `EADDRINUSE 127.0.0.1:8124: the address is already in use: …`. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e.code && explanations[e.code]) {
    const where = e.address ? ` ${e.port !== undefined ? hostPort(e.address, e.port) : e.address}` : '';
    return `${e.code}${where}: ${explanations[e.code]}`;
  }
  return e.code ? `${e.code}: ${e.message}` : e.message;
}
