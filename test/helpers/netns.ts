// Network namespaces for the tests that need a network of their own (ip netns, from iproute2).
import { spawnSync } from 'node:child_process';

/**
 * Why this machine cannot make network namespaces, or undefined when it can: Linux, root, iproute2, and a
 * kernel that lets us (a container without CAP_SYS_ADMIN lists namespaces but refuses to add one, so try it).
 */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux-only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'creating a network namespace needs root';
  const probe = `nnw-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.error) return 'the ip command (iproute2) is not installed';
  if (add.status !== 0) return `ip netns add failed: ${add.stderr.trim()}`;
  const exec = spawnSync('ip', ['netns', 'exec', probe, 'true'], { encoding: 'utf8' });
  spawnSync('ip', ['netns', 'del', probe]);
  if (exec.status !== 0) return `ip netns exec failed: ${exec.stderr.trim()}`;
  return undefined;
}
