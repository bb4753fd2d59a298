// Runs a TypeScript file as a child with this Node (tsx), passing the terminal through and forwarding signals,
// so stopping the parent never leaves an orphan behind.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { compileCacheEnv } from './compile-cache.ts';

export function runForwarding(file: string, args: readonly string[]): void {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    stdio: 'inherit',
    env: { ...compileCacheEnv(), ...process.env },
  });
  // Ctrl-C in a terminal reaches the child directly (same process group): forwarding it too would signal it twice.
  // A signal sent to this process alone (kill, CI, npm without a terminal) is passed on.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (signal === 'SIGINT' && process.stdin.isTTY) return;
      child.kill(signal);
    });
  }
  child.on('exit', (code, signal) => {
    process.exit(signal ? 128 + (constants.signals[signal] ?? 1) : (code ?? 1));
  });
}
