// The harness the lab tests stand on must itself fail clearly: a missing line or a crashed lab is a readable error.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, spawnFile } from './helpers/lab.ts';

const talker = path.join(root, 'test/fixtures/harness/talker.ts');

describe('the test harness', () => {
  it('waits for a printed line and reads what the process answers on stdin', async () => {
    const lab = spawnFile(talker);
    await lab.waitForLine(/ready/);
    lab.write('ping\n');
    const [, said] = await lab.waitForLine(/you said: (\w+)/);
    expect(said).toBe('ping');
    lab.endInput();
    expect(await lab.exited).toEqual({ exitCode: 0, signal: undefined });
  });

  it('rejects a wait with the exit code and the whole output when the lab crashes first', async () => {
    const lab = spawnFile(talker, ['crash']);
    const error = await lab.waitForLine(/never printed/).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/exited with code 3 before a line matching \/never printed\//);
    expect((error as Error).message).toContain('[fixture] ready');
    expect((error as Error).message).toContain('[fixture] something went wrong');
  });

  it('fails a wait for a line that never comes, with the output so far, once the lab is stopped', async () => {
    const lab = spawnFile(talker, ['silent']);
    await lab.waitForLine(/ready/);
    const waiting = lab.waitForLine(/a line that never comes/).catch((e: Error) => e);
    expect(await lab.stop()).toEqual({ exitCode: 0, signal: undefined });
    const error = (await waiting) as Error;
    expect(error.message).toMatch(/exited with code 0 before a line matching/);
    expect(error.message).toContain('[fixture] got SIGTERM');
  });

  it('counts matching lines and waits for the n-th one', async () => {
    const lab = spawnFile(talker);
    lab.write('a\nb\nc\n');
    const said = await lab.waitForLines(/you said: (\w)/, 3);
    expect(said.map((m) => m[1])).toEqual(['a', 'b', 'c']);
    expect(lab.matching(/you said/)).toHaveLength(3);
  });
});
