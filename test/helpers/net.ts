// A raw TCP client for tests, like `nc`: connect, write, read lines, and closed for you when the test ends.
import { once } from 'node:events';
import net from 'node:net';
import { onTestFinished } from 'vitest';
import { feedLines, LineWatcher } from './watch.ts';

export interface TestClient {
  readonly socket: net.Socket;
  readonly lines: string[];
  /** Everything received so far, as it came (line ends included). */
  raw(): string;
  waitForLine(pattern: RegExp): Promise<RegExpMatchArray>;
  waitForLines(pattern: RegExp, count: number): Promise<RegExpMatchArray[]>;
  waitForText(pattern: RegExp): Promise<RegExpMatchArray>;
  matching(pattern: RegExp): RegExpMatchArray[];
  write(data: string | Uint8Array): void;
  /** Resolves when the server has ended its side ('end') or the socket closed. */
  readonly ended: Promise<void>;
  readonly closed: Promise<boolean>;
}

/** Connects to 127.0.0.1:port and waits for 'connect'. Rejects (e.g. ECONNREFUSED) if it cannot. */
export async function connectClient(
  port: number,
  host = '127.0.0.1',
  name = `client :${port}`,
): Promise<TestClient> {
  const socket = net.connect({ port, host });
  socket.on('error', () => {}); // a reset peer is something tests look at, not a crash of the test runner
  try {
    onTestFinished(() => {
      socket.destroy();
    });
  } catch {
    // Outside a test: the caller destroys it.
  }
  await once(socket, 'connect');
  const watcher = new LineWatcher(name);
  feedLines(socket, watcher);
  const ended = new Promise<void>((resolve) => {
    socket.once('end', resolve);
    socket.once('close', () => resolve());
  });
  const closed = new Promise<boolean>((resolve) => socket.once('close', resolve));
  closed.then(() => watcher.close('closed'));
  return {
    socket,
    lines: watcher.lines,
    raw: () => watcher.raw,
    waitForLine: (p) => watcher.waitForLine(p),
    waitForLines: (p, n) => watcher.waitForLines(p, n),
    waitForText: (p) => watcher.waitForText(p),
    matching: (p) => watcher.matching(p),
    write: (data) => socket.write(data),
    ended,
    closed,
  };
}
