// npm run lab: the list, the ways to name a lab, one clear line for a wrong name, and no orphan on SIGTERM.
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { labs } from '../labs/index.ts';
import { labFile, root, spawnFile } from './helpers/lab.ts';

const runner = path.join(root, 'scripts/lab.ts');

describe('the lab runner (npm run lab)', () => {
  it('with no argument lists every lab with its id, Chinese and English titles and roles', async () => {
    const list = spawnFile(runner);
    expect(await list.exited).toEqual({ exitCode: 0, signal: undefined });
    expect(list.lines[0]).toMatch(/^id +中文 +English +roles$/);
    for (const lab of labs) {
      const row = list.lines.find((l) => l.startsWith(`${lab.id}  `));
      expect(row, `row for lab ${lab.id}`).toBeDefined();
      expect(row).toContain(lab.title.zh);
      expect(row).toContain(lab.title.en);
      if (lab.roles.length) expect(row).toMatch(new RegExp(`${lab.roles.join(', ')}$`));
    }
    expect(list.output()).toContain('npm run lab 01 server');
  });

  it.each(['01', '1', '01-basic-tcp', 'basic-tcp'])(
    'runs lab 01 for %j, passing the role and flags through',
    async (name) => {
      const lab = spawnFile(runner, [name, 'server', '--port', '0']);
      const { port } = await lab.listening();
      expect(port).toBeGreaterThan(0);
    },
  );

  it('forwards SIGTERM to the lab: the lab stops cleanly, the runner exits 0, nothing keeps the port', async () => {
    const lab = spawnFile(runner, ['01', 'server', '--port', '0']);
    const { port } = await lab.listening();
    expect(await lab.stop('SIGTERM')).toEqual({ exitCode: 0, signal: undefined });
    expect(lab.matching(/\[server\] shutting down/)).toHaveLength(1);
    const refused = await new Promise<string>((resolve) => {
      const probe = net.connect(port, '127.0.0.1');
      probe.on('connect', () => {
        probe.destroy();
        resolve('connected');
      });
      probe.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
  });

  it('names the closest labs for an unknown id in one line on stderr, exit code 2', async () => {
    const lab = spawnFile(runner, ['basci-tcp']);
    expect(await lab.exited).toEqual({ exitCode: 2, signal: undefined });
    expect(lab.stderr).toEqual([expect.stringMatching(/^error: no lab 'basci-tcp'; closest: 01-basic-tcp/)]);
    expect(lab.stdout).toEqual([]);
  });
});

describe('every lab (labs/lib/log.ts)', () => {
  it('ends quietly with exit code 0 when its reader stops early, as `npm run lab 09 | head` does', async () => {
    const child = execa(process.execPath, ['--import', 'tsx', labFile('09')], {
      reject: false,
      buffer: false,
      cwd: root,
    });
    await once(child.stdout, 'data');
    child.stdout.destroy(); // like head: read the first lines, then close the pipe
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const result = await child;
    expect(stderr).toBe('');
    expect(result.exitCode).toBe(0);
  });
});
