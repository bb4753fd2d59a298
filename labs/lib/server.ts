// The end of a server role, the same in every TCP lab: on Ctrl-C or SIGTERM, close what is open and exit 0.
import type net from 'node:net';
import { onShutdown } from './cli.ts';
import type { Log } from './log.ts';

/**
 * Keeps the server's open connections (a net.Server does not list them) and, on the first SIGINT/SIGTERM,
 * says goodbye to each one (by default: destroy it), closes the server and lets the process exit 0.
 * Shutdown always ends: whatever is still open `lingerMs` later (a peer that reads nothing) is destroyed.
 * Call it before listen(): a test may signal the moment it reads the `listening on` line.
 */
export function stopOnSignal(
  server: net.Server,
  log: Log,
  goodbye: (socket: net.Socket) => void = (socket) => socket.destroy(),
  lingerMs = 1000,
): Set<net.Socket> {
  const open = new Set<net.Socket>();
  server.on('connection', (socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  onShutdown(async () => {
    log(`shutting down, closing ${open.size} connection(s)`);
    for (const socket of open) goodbye(socket);
    setTimeout(() => {
      for (const socket of open) socket.destroy();
    }, lingerMs).unref();
    // close() only stops accepting: its callback waits until every connection above has closed.
    await new Promise((resolve) => server.close(resolve));
  });
  return open;
}
