// Stopping a process the way a starved server is stopped: SIGSTOP, then the kernel's word that it is stopped.
// No vitest here: the peers in test/fixtures/, processes of their own, stop labs with it.
import fs from 'node:fs';

/** Sends `name` to `pid`; a process already gone is not an error. */
export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone already
  }
}

/** The state letter of `pid` in /proc/PID/stat (R, S, T, …); undefined when it is gone or there is no /proc. */
function processState(pid: number): string | undefined {
  try {
    // The command name may hold spaces and parentheses: the state follows the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * Stops `pid` (SIGSTOP) and resolves once the kernel shows it stopped (state T), or rejects after `ms`. What is
 * sent to it from then on waits in its sockets, and it wakes with its due timers overdue. Linux only: elsewhere
 * the state cannot be read, and it resolves once the signal is sent.
 */
async function stopNow(pid: number, ms: number): Promise<void> {
  signal(pid, 'SIGSTOP');
  const until = performance.now() + ms;
  while (process.platform === 'linux' && !/^[Tt]$/.test(processState(pid) ?? '')) {
    if (performance.now() > until)
      throw new Error(`process ${pid} not stopped within ${ms} ms (state ${processState(pid)})`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * For a peer in a process of its own that stops the server it talks to (test/fixtures/ws-peer.ts, stop-peer.ts):
 * stops `pid`, prints `stopped`, runs `meanwhile` (what the peer sends into the stopped server's socket), and after
 * `holdMs` of its own timer lets `pid` go on, printing `resumed`. From the stop on, `pid` is let go on also when
 * this process exits, by itself or on SIGTERM or SIGINT. Failing to stop it is one line on stderr and exit 1.
 * Resolves once `pid` has been let go on.
 */
export async function stopWhile(pid: number, holdMs: number, meanwhile: () => void): Promise<void> {
  process.on('exit', () => signal(pid, 'SIGCONT'));
  for (const name of ['SIGTERM', 'SIGINT'] as const) process.on(name, () => process.exit(1));
  try {
    await stopNow(pid, 10_000);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    process.exit(1);
  }
  console.log('stopped');
  meanwhile();
  await new Promise((resolve) => setTimeout(resolve, holdMs));
  signal(pid, 'SIGCONT');
  console.log('resumed');
}
