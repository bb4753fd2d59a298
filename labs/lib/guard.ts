// What a trusted server does with a peer it does not trust: the one rule every TCP server role here follows.
// Each peer gets three limits, and each limit, once passed, has one outcome (model: ircd, whose lines are at most
// 512 bytes and whose answer to a client that does not read is "Closing Link: ... (SendQ exceeded)"):
//   maxLine   a line (a message) longer than this:      one line of reason to the peer, then close
//   maxQueue  bytes waiting for the peer (writableLength): "SendQ exceeded" in our log, then a reset (it is not reading)
//   idleMs    this long without a byte (a line) from it:  one line of reason to the peer, then close
// "Close" ends our side and destroys the socket lingerMs later, so a peer that never reads cannot hold it open.
// Nothing here throws: a peer's bytes can end a connection, never the server.
import type net from 'node:net';
import { onLines } from './lines.ts';
import { hostPort, type Log } from './log.ts';

export interface Limits {
  /** Longest line accepted, in bytes (ircd: 512, line end included). */
  maxLine: number;
  /** Bytes waiting to be sent to one peer (socket.writableLength) before it is dropped. */
  maxQueue: number;
  /** Ms without a byte (or a line, for line servers) from the peer before it is closed; 0: no idle limit. */
  idleMs: number;
  /** Ms a closed peer may keep its side open (not reading our last words) before it is destroyed. */
  lingerMs: number;
}

export const LIMITS: Limits = { maxLine: 4096, maxQueue: 256 * 1024, idleMs: 5 * 60_000, lingerMs: 1000 };

/** `4096 bytes per line, 262144 bytes queued per peer, idle after 300000 ms`: the limits as a server states them. */
export function describeLimits(limits: Limits, lines = true): string {
  const idle = limits.idleMs > 0 ? `idle after ${limits.idleMs} ms` : 'no idle limit';
  return `${lines ? `${limits.maxLine} bytes per line, ` : ''}${limits.maxQueue} bytes queued per peer, ${idle}`;
}

/** Ends our side with `lastWords` (if any) and destroys the socket `lingerMs` later if it is still open. */
export function closeWithin(socket: net.Socket, lingerMs: number, lastWords?: string): void {
  if (socket.destroyed) return;
  if (!socket.writableEnded) {
    if (lastWords === undefined) socket.end();
    else socket.end(lastWords);
  }
  // end()'s callback waits for 'finish', which never comes while a peer reads nothing: a timer does not wait.
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * For the top of a socket's 'data' handler: once our side is closed (end() was called), nothing more is read.
 * What the peer still sends is dropped as it comes, never kept, and a peer that goes on past `limit` bytes is
 * cut off with one log line. destroy(), not resetAndDestroy(): that fails (EINVAL) while our FIN is still on
 * its way; with the peer's bytes unread, the kernel answers with RST all the same. True for a dropped chunk.
 */
export function dropAfterClose(
  socket: net.Socket,
  limit: number,
  log: Log,
  peer: string,
): (chunk: Buffer) => boolean {
  let dropped = 0;
  return (chunk) => {
    if (!socket.writableEnded) return false;
    dropped += chunk.length;
    if (dropped > limit && !socket.destroyed) {
      log(`${peer} went on sending after the close: ${dropped} bytes, reset`);
      socket.destroy();
    }
    return true;
  };
}

export interface Guard {
  readonly peer: string;
  readonly limits: Limits;
  /** True once the guard (or anyone) has ended or destroyed the socket: nothing more is written. */
  readonly closed: boolean;
  /** Writes, then checks the send queue: past maxQueue the peer is dropped. False if nothing was written. */
  send(data: string | Uint8Array): boolean;
  /** Frames the peer's bytes into lines of at most maxLine bytes; each line counts as activity unless `quiet` says not. */
  lines(onLine: (line: string) => void, quiet?: (line: string) => boolean): void;
  /**
   * For servers that read bytes, not lines: each chunk read is activity, and the send queue is checked after it
   * (call it after the listener that writes, so the check sees that write). 'readable' for a server that reads with read().
   */
  watchBytes(event?: 'data' | 'readable'): void;
  /** The peer did something that counts: the idle timer starts over. */
  heard(): void;
  /** Says `reason` to the peer (when `tell` allows), logs it, and closes within lingerMs. */
  close(reason: string): void;
  /** Logs `reason` and resets the connection at once (for a peer that does not read: a FIN would queue too). */
  drop(reason: string): void;
}

export interface GuardOptions {
  /** How the log names this peer; `address:port` by default (a Unix socket has neither). */
  name?: string;
  /** Turns a reason into the line the peer reads (`! line too long\r\n`); undefined: the protocol has no room for one. */
  tell?: (reason: string) => string | undefined;
  /** Runs once when the guard closes or drops the peer (a chat room takes the user out first). */
  onClose?: (reason: string) => void;
}

const defaultTell = (reason: string) => `error: ${reason}\r\n`;

/** Puts one peer under the limits. Call it in the 'connection' handler, before the peer's bytes are read. */
export function guard(
  socket: net.Socket,
  log: Log,
  limits: Partial<Limits> = {},
  options: GuardOptions = {},
): Guard {
  const l: Limits = { ...LIMITS, ...limits };
  const peer = options.name ?? hostPort(socket.remoteAddress, socket.remotePort);
  const tell = options.tell ?? defaultTell;
  let done = false;
  const finish = (reason: string) => {
    if (done) return false;
    done = true;
    clearTimeout(idle);
    options.onClose?.(reason);
    return true;
  };
  // The verdict comes after the poll phase: a server that was stopped or starved for a while wakes with this
  // timer overdue and the peer's bytes already in the socket, and the event loop runs timers before it reads.
  let heard = 0;
  const onIdle = () => {
    const before = heard;
    setImmediate(() => {
      if (heard === before) g.close(`idle for ${l.idleMs} ms`);
    });
  };
  const idle = l.idleMs > 0 ? setTimeout(onIdle, l.idleMs) : undefined;
  socket.once('close', () => {
    done = true;
    clearTimeout(idle);
  });

  const checkQueue = () => {
    if (!done && socket.writableLength > l.maxQueue)
      g.drop(`SendQ exceeded: ${socket.writableLength} bytes waiting (limit ${l.maxQueue})`);
  };

  const g: Guard = {
    peer,
    limits: l,
    get closed() {
      return done || socket.destroyed || socket.writableEnded;
    },
    send(data) {
      if (g.closed) return false;
      socket.write(data);
      checkQueue();
      return true;
    },
    lines(onLine, quiet) {
      onLines(
        socket,
        (line) => {
          if (g.closed) return; // lines that came in the same chunk as the one that closed it
          if (!quiet?.(line)) g.heard();
          onLine(line);
        },
        {
          maxBytes: l.maxLine,
          // Nothing more is read from a peer that broke the limit: its bytes stay in the kernel's buffers (which
          // stop it once full) instead of being read and dropped at full speed until it notices our close.
          onOverflow: () => {
            socket.pause();
            g.close(`line longer than ${l.maxLine} bytes`);
          },
        },
      );
    },
    watchBytes(event = 'data') {
      socket.on(event, () => {
        g.heard();
        checkQueue();
      });
    },
    heard() {
      if (done) return;
      heard++;
      idle?.refresh();
    },
    close(reason) {
      if (!finish(reason)) return;
      log(`${peer} closed by the server: ${reason}`);
      closeWithin(socket, l.lingerMs, socket.writableEnded ? undefined : tell(reason));
    },
    drop(reason) {
      if (!finish(reason)) return;
      log(`${peer} dropped: ${reason}`);
      // RST frees the kernel's buffers too; a polite FIN would wait behind the unread bytes.
      // resetAndDestroy() takes a TCP handle only: a TLS or a Unix socket throws ERR_INVALID_HANDLE_TYPE, so
      // those are destroyed (our memory is freed all the same; the kernel decides between RST and FIN).
      try {
        socket.resetAndDestroy();
      } catch {
        socket.destroy();
      }
    },
  };
  return g;
}
