// The harness the lab tests stand on must itself fail clearly and fast: a missing line, a crashed lab, a line of
// a later step, a deadline: each one is a readable error with the output so far, long before the test timeout.
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  busy,
  loadedAt,
  plainNode,
  REPLY_MS,
  root,
  STARTUP_MS,
  setWaitDefaults,
  spawnFile,
} from './helpers/lab.ts';
import { connectClient } from './helpers/net.ts';
import { expectInOrder, orderProblem } from './helpers/order.ts';
import { canLook, type Look, look, stalledBetween } from './helpers/stall.ts';
import { openUdp } from './helpers/udp.ts';
import { settleWithin } from './helpers/watch.ts';

const talker = path.join(root, 'test/fixtures/harness/talker.ts');

/**
 * How long the promise `start` returns takes to settle, counted from before `start` runs (a wait's deadline is
 * armed as it is called: counted from after, a worker descheduled in between once measured 267 ms for 300), and
 * its error (or undefined when it resolved).
 */
async function timed(start: () => Promise<unknown>): Promise<{ ms: number; error: Error | undefined }> {
  const started = performance.now();
  const error = await start().then(
    () => undefined,
    (e: Error) => e,
  );
  return { ms: performance.now() - started, error };
}

describe.concurrent('the test harness', () => {
  // The labs tier shares a worker between files (isolate: false); state that one file sets in the helpers
  // (setWaitDefaults, the load factor) must not reach the next one.
  it('this file has a copy of the helpers of its own, loaded after its setup', () => {
    const setupAt = (globalThis as { workbookFileSetupAt?: number }).workbookFileSetupAt;
    expect(setupAt, 'test/helpers/fresh-modules.ts ran before this file').toBeDefined();
    expect(loadedAt).toBeGreaterThanOrEqual(setupAt as number);
  });

  it('waits for a printed line and reads what the process answers on stdin', async (t) => {
    const lab = spawnFile(t, talker);
    await lab.waitForLine(/ready/);
    lab.write('ping\n');
    const [, said] = await lab.waitForLine(/you said: (\w+)/);
    expect(said).toBe('ping');
    lab.endInput();
    expect(await lab.exited).toEqual({ exitCode: 0, signal: undefined });
  });

  it('rejects a wait with the exit code and the whole output when the lab crashes first', async (t) => {
    const lab = spawnFile(t, talker, ['crash']);
    const error = await lab.waitForLine(/never printed/).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/exited with code 3 before a line matching \/never printed\//);
    expect((error as Error).message).toContain('[fixture] ready');
    expect((error as Error).message).toContain('[fixture] something went wrong');
  });

  it('fails a wait for a line that never comes, with the output so far, once the lab is stopped', async (t) => {
    const lab = spawnFile(t, talker, ['silent']);
    await lab.waitForLine(/ready/);
    const waiting = lab.waitForLine(/a line that never comes/).catch((e: Error) => e);
    expect(await lab.stop()).toEqual({ exitCode: 0, signal: undefined });
    const error = (await waiting) as Error;
    expect(error.message).toMatch(/exited with code 0 before a line matching/);
    expect(error.message).toContain('[fixture] got SIGTERM');
  });

  it('counts matching lines and waits for the n-th one', async (t) => {
    const lab = spawnFile(t, talker);
    lab.write('a\nb\nc\n');
    const said = await lab.waitForLines(/you said: (\w)/, 3);
    expect(said.map((m) => m[1])).toEqual(['a', 'b', 'c']);
    expect(lab.matching(/you said/)).toHaveLength(3);
  });

  it('within: a wait fails after its deadline with the output so far, while the lab is still running', async (t) => {
    const lab = spawnFile(t, talker, ['silent']);
    await lab.waitForLine(/ready/);
    const { ms, error } = await timed(() => lab.waitForLine(/a line that never comes/, { within: 300 }));
    expect(error?.message).toMatch(
      /^talker\.ts printed no line matching \/a line that never comes\/ within 300 ms\n/,
    );
    expect(error?.message).toContain('[fixture] ready');
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(2000 * busy); // far below the test timeout, on a loaded machine too
    // The deadline ended the wait, not the lab: it is still there to be asked.
    lab.write('still here\n');
    expect(lab.exited).not.toBe(undefined);
  });

  it('within given to spawnFile applies to every wait that does not set its own', async (t) => {
    const lab = spawnFile(t, talker, ['silent'], { within: 200 });
    // The clock starts at the first output: node's start-up (more than 200 ms with tsx) is not counted.
    await lab.waitForLine(/ready/);
    const { ms, error } = await timed(() => lab.waitForLines(/never/, 2));
    expect(error?.message).toMatch(/printed no line matching \/never\/ within 200 ms \(saw 0 of 2\)/);
    expect(ms).toBeLessThan(2000 * busy); // far below the test timeout, on a loaded machine too
    // …and waitForExit too: a process that does not end is an error with its output, not a hang.
    const exit = await timed(() => lab.waitForExit());
    expect(exit.error?.message).toMatch(/^talker\.ts was still running within 200 ms\n/);
  });

  it('quiet: a wait fails once the source has said nothing new for that long, and each new line restarts it', async (t) => {
    // Scaled with the load per core: the talker must echo each tick well within the quiet period.
    const quiet = Math.round(400 * busy);
    const lab = spawnFile(t, talker, [], { quiet });
    await lab.waitForLine(/ready/);
    // Lines every 150 ms keep the wait alive well past its quiet period…
    const talking = setInterval(() => lab.write('tick\n'), 150);
    t.onTestFinished(() => clearInterval(talking));
    // …until the test stops typing: nothing new comes, and the wait fails one quiet period after the last line.
    setTimeout(() => clearInterval(talking), 2.5 * quiet);
    const started = performance.now();
    const stalled = await timed(() => lab.waitForLine(/you said: never/, { quiet }));
    expect(stalled.error?.message).toMatch(
      new RegExp(`printed no line matching /you said: never/, and nothing new for ${quiet} ms`),
    );
    // Without the restarts it would have failed after one quiet period.
    expect(performance.now() - started).toBeGreaterThanOrEqual(2 * quiet);
    expect(stalled.error?.message).toContain('[fixture] you said: tick');
    // waitForExit too.
    expect((await timed(() => lab.waitForExit())).error?.message).toMatch(
      new RegExp(`^talker\\.ts was still running, and nothing new for ${quiet} ms`),
    );
  });

  it("deadlines start once every process of the test has printed something: another process's start-up is not counted", async (t) => {
    const a = spawnFile(t, talker, ['silent'], { quiet: 300 });
    await a.waitForLine(/ready/);
    const b = spawnFile(t, talker, ['silent'], {}, 'b');
    // b is starting (node, tsx): a's deadline waits for b's first line before it counts its 300 ms.
    const error = await a.waitForLine(/never/).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/nothing new for 300 ms/);
    expect(b.lines).toEqual(['[fixture] ready']);
  });

  it('failOn: a later line of the same timeline fails the wait at once, naming that line', async (t) => {
    const lab = spawnFile(t, talker);
    lab.write('one\ntwo\nthree\n');
    const error = await lab.waitForLine(/you said: four/, { failOn: /you said: two/ }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(
      /^talker\.ts printed "\[fixture\] you said: two" \(matching \/you said: two\/\) before a line matching \/you said: four\/\n/,
    );
    expect((error as Error).message).toContain('[fixture] you said: one');
    // A line matching both counts as the awaited one, and failOn lines after it do not matter.
    await lab.waitForLine(/you said: t/, { failOn: /you said: (two|three)/ });
    expect(await lab.waitForLine(/one/, { failOn: /three/ })).toBeTruthy();
  });

  it('waitForExit with failOn fails at the first matching line, printed before the wait or during it', async (t) => {
    const lab = spawnFile(t, talker);
    lab.write('one\n');
    await lab.waitForLine(/you said: one/);
    const early = await lab.waitForExit({ failOn: /you said: one/ }).catch((e: Error) => e);
    expect((early as Error).message).toMatch(
      /^talker\.ts printed '\[fixture\] you said: one' \(matching \/you said: one\/\) before exiting/,
    );
    const waiting = lab.waitForExit({ failOn: /you said: two/ }).catch((e: Error) => e);
    lab.write('two\n');
    expect(((await waiting) as Error).message).toMatch(/printed '\[fixture\] you said: two'/);
    // Without a matching line it is the exit that counts.
    lab.endInput();
    expect(await lab.waitForExit({ failOn: /you said: three/ })).toMatchObject({ signal: undefined });
  });

  it('failOn counts only lines before the n-th match: waitForLines names how many it saw', async (t) => {
    const lab = spawnFile(t, talker);
    lab.write('x 1\nx 2\nend\nx 3\n');
    const error = await lab.waitForLines(/x \d/, 3, { failOn: /end/ }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/before a line matching \/x \\d\/ \(saw 2 of 3\)/);
    expect(await lab.waitForLines(/x \d/, 2, { failOn: /end/ })).toHaveLength(2);
  });

  it('a test client fails its waits the same three ways: close, failOn, within', async (t) => {
    const server = net.createServer((s) => {
      s.write('first\nsecond\n');
      s.on('data', (d) => {
        if (String(d).includes('bye')) s.end('gone\n');
      });
    });
    t.onTestFinished(() => {
      server.close();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const client = await connectClient(t, port);
    await client.waitForLine(/^first$/);
    const deadline = await timed(() => client.waitForLine(/^third$/, { within: 200 }));
    expect(deadline.error?.message).toMatch(/no line matching \/\^third\$\/ within 200 ms/);
    const later = await timed(() => client.waitForLine(/^third$/, { failOn: /^second$/ }));
    expect(later.error?.message).toMatch(/printed "second" \(matching \/\^second\$\/\) before/);
    const text = await timed(() => client.waitForText(/never/, { within: 100 }));
    expect(text.error?.message).toMatch(/no text matching \/never\/ within 100 ms/);
    client.write('bye\n');
    const closed = await timed(() => client.waitForLine(/^third$/));
    expect(closed.error?.message).toMatch(/closed before a line matching/);
    expect(closed.error?.message).toContain('gone');
  });

  it('a UDP socket fails a wait for datagrams after `within`, naming how many came', async (t) => {
    const udp = await openUdp(t, { within: 200 });
    const other = await openUdp(t);
    await other.send('ping 1', udp.port);
    // The first datagram is waited for as long as an answer may take (200 ms ran out once under CI's load):
    // the 200 ms under test is the second wait's.
    await udp.waitForMessages(/^ping/, 1, { within: REPLY_MS });
    const { ms, error } = await timed(() => udp.waitForMessages(/^ping/, 2));
    expect(error?.message).toMatch(/no line matching \/\^ping\/ within 200 ms \(saw 1 of 2\)/);
    expect(ms).toBeLessThan(2000 * busy); // far below the test timeout, on a loaded machine too
  });

  it(`runs the workbook's own files with ${plainNode ? 'plain node (type stripping)' : 'tsx'} on Node ${process.versions.node}; a student's file the same where plain node runs it as tsx would, else with tsx`, async (t) => {
    const own = spawnFile(t, talker);
    expect(own.command.includes('tsx')).toBe(!plainNode);
    expect(own.command).toContain('--throw-deprecation');
    await own.waitForLine(/ready/);
    // Files outside labs/ and test/ (a student's, in exercises/ or a folder of their own).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harness-'));
    t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const files: Record<string, string> = {
      'erasable.ts':
        "import { twice } from './helper.ts';\nconst greeting: string = twice('typed');\nconsole.log(greeting);\n",
      'helper.ts': 'export const twice = (s: string): string => s + s;\n',
      // Each of these runs under tsx only: an enum (not erasable), an import without its extension, ./x.js for x.ts.
      'enum.ts': "enum Greeting { Hi = 'typedtyped' }\nconsole.log(Greeting.Hi);\n",
      'no-extension.ts': "import { twice } from './helper';\nconsole.log(twice('typed'));\n",
      'js-for-ts.ts': "import { twice } from './helper.js';\nconsole.log(twice('typed'));\n",
      'deep.ts': "import './enum.ts';\n",
    };
    for (const [name, code] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), code);
    const cases: [string, boolean][] = [
      ['erasable.ts', plainNode],
      ['enum.ts', false],
      ['no-extension.ts', false],
      ['js-for-ts.ts', false],
      ['deep.ts', false], // an enum two files down
    ];
    // All at once: one after another, six start-ups (five of them tsx's) took more than the test's 10 s once
    // under test:all's load.
    await Promise.all(
      cases.map(async ([name, plain]) => {
        const student = spawnFile(t, path.join(dir, name));
        expect(student.command.includes('tsx'), name).toBe(!plain);
        expect(await student.waitForExit({ within: STARTUP_MS }), name).toEqual({
          exitCode: 0,
          signal: undefined,
        });
        expect(student.lines, name).toEqual(['typedtyped']);
      }),
    );
  });
});

// Sequential: the defaults hold for the whole file, so no other test may start while this one changes them.
// Not concurrent: `stalled` looks at every process this worker started, and another test's busy process would
// (rightly) keep these waits from seeing a stall.
describe.runIf(canLook)('stalled: a quiet wait ends sooner once nothing can come (Linux)', () => {
  it('a process waiting for input with nothing due fails the wait after about `stalled` ms, saying so', async (t) => {
    // Nothing due, however long it took to start: without V8's memory reducer, whose timer is due about 8 s after
    // a start-up (CI once took 4.7 s to start it under load, and the timer then fell inside the quiet deadline).
    const lab = spawnFile(t, talker, ['silent'], {
      quiet: 3000,
      stalled: 200,
      nodeArgs: ['--no-memory-reducer'],
    });
    await lab.waitForLine(/ready/);
    const { ms, error } = await timed(() => lab.waitForLine(/never/));
    expect(error?.message).toMatch(
      /printed no line matching \/never\/, and nothing new for \d+ ms: every process the test started waits for input, with nothing due/,
    );
    // Without the look it would have waited out the whole quiet period.
    expect(ms).toBeLessThan(2000);
  });

  it('a process first seen asleep after a slow start: the looks taken while it started date its sleep, and it is stalled', async (t) => {
    // Blocked 1500 ms before its first line (the start gate holds the deadlines meanwhile), then asleep with a
    // timer 2500 ms ahead: due after the quiet deadline of 1500 ms. Dated only by its start, that timer would
    // seem due 2500 ms after the start, inside the deadline, and the wait would run out its quiet time.
    const lab = spawnFile(t, talker, ['slow-start', '1500', '2500'], { quiet: 1500, stalled: 200 });
    await lab.waitForLine(/ready/);
    const { ms, error } = await timed(() => lab.waitForLine(/never/));
    expect(error?.message).toMatch(/nothing new for \d+ ms: every process the test started waits for input/);
    expect(ms).toBeLessThan(1200);
  });

  it("a timer of the process's own, due before the quiet deadline, is waited for: the line it prints comes", async (t) => {
    const lab = spawnFile(t, talker, ['later', '800'], { quiet: 3000 * busy, stalled: 200 });
    await lab.waitForLine(/ready/);
    await lab.waitForLine(/later/);
  });

  it('a process that keeps running is not stalled: the wait fails at its quiet deadline, as without the look', async (t) => {
    const quiet = Math.round(800 * busy);
    const lab = spawnFile(t, talker, ['spin'], { quiet, stalled: 200 });
    await lab.waitForLine(/ready/);
    const { ms, error } = await timed(() => lab.waitForLine(/never/));
    expect(error?.message).toMatch(new RegExp(`and nothing new for ${quiet} ms\n`));
    expect(ms).toBeGreaterThanOrEqual(quiet - 1);
  });

  it('an idle Node process is seen to wait for ever (V8 sets its own timers, none due soon)', async (t) => {
    const lab = spawnFile(t, talker, ['silent']);
    await lab.waitForLine(/ready/);
    // Looks 100 ms apart: soon one sees it asleep in the same call, not having run since the look before.
    let before = look() as Look;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const now = look() as Look;
        const stalled = stalledBetween(before, now, 1000);
        before = now;
        if (stalled) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
      t.onTestFinished(() => clearInterval(timer));
    });
  });
});

describe('file-wide defaults', () => {
  it('setWaitDefaults: every wait of the file that sets none gets the deadline; `within: undefined` opts out', async (t) => {
    setWaitDefaults({ within: 150 });
    try {
      const lab = spawnFile(t, talker, ['silent']);
      await lab.waitForLine(/ready/);
      const { error } = await timed(() => lab.waitForLine(/never/));
      expect(error?.message).toMatch(/within 150 ms/);
      const opted = lab.waitForLine(/never/, { within: undefined }).catch((e: Error) => e);
      await lab.stop();
      expect(((await opted) as Error).message).toMatch(/exited with code 0 before a line matching/);
    } finally {
      setWaitDefaults({});
    }
  });
});

describe('the old calls, without a context, still work in tests that run one at a time', () => {
  it('spawnFile(file) and connectClient(port) clean up after the test', async () => {
    const lab = spawnFile(talker);
    await lab.waitForLine(/ready/);
    const server = net.createServer((s) => s.end('hi\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = await connectClient((server.address() as net.AddressInfo).port);
    await client.waitForLine(/^hi$/);
    server.close();
    lab.endInput();
    expect((await lab.exited).exitCode).toBe(0);
  });
});

describe.concurrent('expectInOrder', () => {
  const lines = ['[a] start', '[b] listening on 1', '[c] hello', '[d] bye', '[e] done'];

  it('passes when the first matches come in order (a pattern may share the previous line)', () => {
    expect(expectInOrder(lines, [/start/, /listening/, /\[b\]/, /bye/, /done/])).toEqual([0, 1, 1, 3, 4]);
  });

  it('names the first missing pattern and shows the lines after the previous match', () => {
    const message = orderProblem(lines, [/start/, /hello/, /goodbye/, /done/]);
    expect(message).toMatch(
      /^pattern 3 of 4, \/goodbye\/, matches no line; expected after line 3 \(pattern 2, \/hello\/\):\n/,
    );
    expect(message).toContain('> 3 | [c] hello');
    expect(message).toContain('  4 | [d] bye');
    expect(() => expectInOrder(lines, [/start/, /hello/, /goodbye/, /done/])).toThrow(/pattern 3 of 4/);
  });

  it('names the first pattern that comes too early, with the line it matched', () => {
    const message = orderProblem(lines, [/start/, /bye/, /hello/, /done/]);
    expect(message).toMatch(
      /^pattern 3 of 4, \/hello\/, first matches line 3 \("\[c\] hello"\), before line 4 where pattern 2, \/bye\/, matched/,
    );
    expect(message).toContain('> 4 | [d] bye');
    expect(() => expectInOrder(lines, [/bye/, /start/])).toThrow(/pattern 2 of 2, \/start\//);
  });

  it('shows "(no lines)" when there is no output at all, and trims long output to the lines around', () => {
    expect(orderProblem([], [/x/])).toBe(
      'pattern 1 of 1, /x/, matches no line; expected after line 0:\n  (no lines)',
    );
    const many = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`);
    const message = orderProblem(many, [/line 20$/, /nowhere/]) as string;
    expect(message).toContain('… 17 line(s) before');
    expect(message).toContain('> 20 | line 20');
    expect(message).toContain('… 16 line(s) after');
    expect(message).not.toContain('line 10\n');
  });
});

// Sequential: these tests block this worker on purpose, which would starve any test running beside them.
describe('quiet counts the time this worker was awake to hear', () => {
  /**
   * Blocks this worker's event loop for `ms`, as a starved worker or a machine paused by its host is: asleep in
   * Atomics.wait, not in a busy loop, so the other files' tests keep both cores.
   */
  const block = (ms: number) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  };

  it('a line that comes after the worker was blocked for longer than `quiet` is still waited for', async (t) => {
    // The line comes 900 ms after the fixture starts; the worker is blocked for the first 800 ms of a 500 ms
    // quiet wait. Counted in real time the wait would fail as the worker wakes, before it reads anything.
    const lab = spawnFile(t, talker, ['later', '900'], { quiet: 500 });
    await lab.waitForLine(/ready/);
    const wait = timed(() => lab.waitForLine(/later/));
    block(800);
    expect((await wait).error).toBeUndefined();
  });

  it('silence after the worker wakes still fails the wait, `quiet` ms of it later', async (t) => {
    const lab = spawnFile(t, talker, ['silent'], { quiet: 500 });
    await lab.waitForLine(/ready/);
    const wait = timed(() => lab.waitForLine(/never/));
    block(800);
    const { ms, error } = await wait;
    expect(error?.message).toMatch(/printed no line matching \/never\/, and nothing new for 500 ms\n/);
    // 800 ms asleep do not count: the 500 ms of quiet are counted after them, less the 30 ms a tick of the
    // ticker may take before its lateness counts as a gap.
    expect(ms).toBeGreaterThanOrEqual(800 + 500 - 50);
  });
  it("settleWithin: an event that came while the worker was blocked past `ms` settles it; the timer's turn comes first but does not fail it", async (t) => {
    const server = net.createServer();
    t.onTestFinished(() => {
      server.close();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const accepted = settleWithin(once(server, 'connection'), 300, 'the connection');
    const client = net.connect(port, '127.0.0.1');
    t.onTestFinished(() => {
      client.destroy();
    });
    // The kernel completes the connect while this worker sleeps; when it wakes, its 300 ms timer is due before
    // the poll phase that hears the connection.
    block(600);
    const [socket] = (await accepted) as [net.Socket];
    socket.destroy();
  });

  it('settleWithin: nothing coming still fails, `ms` after the worker wakes, naming what (read at the failure)', async () => {
    let step = 'before';
    const wait = timed(() => settleWithin(new Promise(() => {}), 300, () => `nothing (${step})`));
    block(600);
    step = 'after';
    const { ms, error } = await wait;
    expect(error?.message).toBe('nothing (after): not within 300 ms');
    expect(ms).toBeGreaterThanOrEqual(600 + 300 - 50);
  });
});
