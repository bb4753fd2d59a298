// Lab 07: idle timeouts (setTimeout) and keepalive (setKeepAlive), read from the kernel with ss (docs/07-keepalive.md).
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { busy, REPLY_MS, setWaitDefaults, spawnLab } from './helpers/lab.ts';
import { connectClient, refusedPort } from './helpers/net.ts';
import { netnsUnavailable } from './helpers/netns.ts';
import { expectInOrder } from './helpers/order.ts';
import { settleWithin } from './helpers/watch.ts';

// ss reads the kernel's timers over netlink: Linux with iproute2 only.
const noSs =
  process.platform !== 'linux'
    ? `ss is Linux-only (this is ${process.platform})`
    : spawnSync('ss', ['-V']).status !== 0
      ? 'ss (iproute2) is not installed'
      : undefined;
if (noSs) console.log(`lab 07: skipping the keepalive-timer tests: ${noSs}`);

const noNetns = netnsUnavailable();
if (noNetns) console.log(`lab 07: skipping the vanished-peer test: ${noNetns}`);

/** `next probe in 2.0 s` / `119 min` / `992 ms` → milliseconds. */
function toMs(amount: string, unit: string): number {
  return Number(amount) * (unit === 'min' ? 60_000 : unit === 's' ? 1000 : 1);
}
// The timers these tests set are short (--idle 200: a warning at 200 ms, the end at 400 ms; the demo's 300 ms):
// a wait fails once the lab has said nothing new for REPLY_MS (five idle periods or more), so an untouched starter that
// never arms a timer fails in a second or two, not at the timeout.
setWaitDefaults({ quiet: REPLY_MS });

const NEXT = /next probe in ([\d.]+) (min|s|ms), (\d+) probes? unanswered$/;

describe.concurrent('lab 07: idle timeouts and keepalive', () => {
  // First: the longest test (12 s of the kernel's timers) starts with the first group of concurrent tests, not
  // after the sequential ones below, so the file takes about its 12 s, the others running alongside.
  it.skipIf(noNetns)(
    'erratum (note 001): a peer that vanishes is found by keepalive: first probe after initialDelay (2 s), then 10 unanswered probes 1 s apart, then ETIMEDOUT',
    // Real time is the behaviour here: 2 s idle + 10 probes × 1 s, plus starting three processes (slower on a
    // loaded machine: busy is the load per core, 1 to 4).
    { timeout: Math.round(30_000 * busy) },
    async (t) => {
      const lab = spawnLab(t, '07', ['vanish']);
      t.onTestFinished(() => {
        // If the test failed half-way the lab was killed before its own cleanup: remove what it created.
        for (const side of ['client', 'peer']) spawnSync('ip', ['netns', 'del', `nwb07-${lab.pid}-${side}`]);
      });
      // No deadline but the test's: the lab starts node processes inside the namespaces, whose start-up the
      // harness cannot see, then waits out the kernel's 12 s of keepalive (no exercise part is in this path).
      expect(await lab.waitForExit({ quiet: undefined })).toEqual({ exitCode: 0, signal: undefined });
      const probes = lab
        .matching(
          new RegExp(`^\\[client\\] \\+([\\d.]+) s timer:\\(keepalive,[^,]*,(\\d+)\\): ${NEXT.source}`),
        )
        .map((m) => ({ at: Number(m[1]), count: Number(m[2]), ms: toMs(m[3] as string, m[4] as string) }));
      const counts = probes.map((p) => p.count);
      expect(counts[0], lab.output()).toBe(0);
      expect(counts.at(-1)).toBe(10);
      expect([...new Set(counts)].sort((a, b) => a - b)).toEqual(counts);
      // Before the cut: the first probe is initialDelay (2 s) away...
      expect(probes[0]?.ms).toBeGreaterThan(1000);
      expect(probes[0]?.ms).toBeLessThanOrEqual(2000);
      // ...the first unanswered probe comes no earlier than that...
      expect(probes[1]?.at).toBeGreaterThanOrEqual(1.9);
      // ...and every later one is at most 1 s away: TCP_KEEPINTVL is 1 s, not initialDelay.
      for (const p of probes.slice(1)) expect(p.ms).toBeLessThanOrEqual(1000);
      const [error] = lab.stderr;
      expect(lab.stderr).toHaveLength(1);
      const at = Number(error?.match(/^\[client\] \+([\d.]+) s error: ETIMEDOUT/)?.[1]);
      // 2 s + 10 × 1 s = 12 s after the last byte from the peer; kernel timers never fire early.
      expect(at, error).toBeGreaterThanOrEqual(11.5);
      expect(at).toBeLessThan(16);
      expect(lab.matching(/^\[vanish\] the client gave up [\d.]+ s after the cut/)).toHaveLength(1);
      expect(lab.lines.at(-1)).toBe('[vanish] namespaces removed');
      const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      expect(left).not.toContain(`nwb07-${lab.pid}-`);
    },
  );

  it('plays the demo: the idle client is warned, then closed by the server; the one that called setTimeout(0) is spared; exits 0', async (t) => {
    const lab = spawnLab(t, '07');
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    const out = lab.lines;
    const order = [
      /^\[server\] listening on 127\.0\.0\.1:\d+$/,
      /^\[server\] 127\.0\.0\.1:\d+ asked for no timeout: setTimeout\(0\)$/,
      /^\[chatty\] received: timeout disabled: setTimeout\(0\)$/,
      /^\[server\] 127\.0\.0\.1:\d+ 'timeout' #1 after \d+ ms idle: destroyed=false writable=true$/,
      /^\[quiet\] received: idle for 300 ms: still there\?/,
      /^\[server\] 127\.0\.0\.1:\d+ 'timeout' #2 after \d+ ms idle: destroyed=false writable=true$/,
      /^\[server\] 127\.0\.0\.1:\d+ still idle: closing it ourselves with end\(\)$/,
      /^\[quiet\] received: bye: idle too long$/,
      /^\[quiet\] server sent FIN: 'end'$/,
      /^\[quiet\] closed$/,
      /^\[chatty\] received: echo: ping$/,
      /^\[demo\] done$/,
    ];
    expectInOrder(out, order);
    // Two 'timeout' events in all, both for the quiet client; the chatty one, idle for longer, had none.
    expect(lab.matching(/'timeout' #/)).toHaveLength(2);
    expect(lab.matching(/^\[quiet\] received: /)).toHaveLength(3);
    expect(lab.matching(/closed after 2 'timeout' event\(s\)$/)).toHaveLength(1);
    expect(lab.matching(/closed after 0 'timeout' event\(s\)$/)).toHaveLength(1);
  });

  it("'timeout' closes nothing: afterwards the socket is still writable and bytes flow both ways until someone ends it", async (t) => {
    const server = net.createServer();
    t.onTestFinished(() => {
      server.close();
    });
    const seen: { destroyed: boolean; writable: boolean }[] = [];
    server.on('connection', (socket) => {
      socket.setTimeout(50);
      socket.on('timeout', () => {
        seen.push({ destroyed: socket.destroyed, writable: socket.writable });
        if (seen.length === 1) socket.write('after timeout\n');
      });
      socket.on('data', (chunk) => socket.write(`got ${chunk}`));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = await connectClient(t, (server.address() as net.AddressInfo).port);
    await client.waitForLine(/^after timeout$/);
    // Nothing closed the connection: the client can still talk and the server still answers.
    client.write('more\n');
    await client.waitForLine(/^got more$/);
    expect(seen[0]).toEqual({ destroyed: false, writable: true });
    expect(client.socket.readyState).toBe('open');
  });

  // Sequential (not beside this file's other tests): the test's own client must answer the server's FIN within one
  // idle period (200 ms), or the server takes the half-open path; a busy test worker was measured missing that.
  it.sequential('the server warns an idle client after the first timeout and ends it itself after the second', async (t) => {
    const server = spawnLab(t, '07', ['server', '--port', '0', '--idle', '200']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    const peer = `127\\.0\\.0\\.1:${client.socket.localPort}`;
    await client.waitForLine(/^bye: idle too long$/);
    await client.waitForEnd();
    expect(client.lines).toEqual([
      'hello: say something at least every 200 ms (or type notimeout)',
      'idle for 200 ms: still there? (say anything, or I close at the next timeout)',
      'bye: idle too long',
    ]);
    await server.waitForLine(new RegExp(`${peer} closed after 2 'timeout' event\\(s\\)$`));
    const timeouts = server.matching(
      new RegExp(`${peer} 'timeout' #(\\d) after \\d+ ms idle: destroyed=(\\w+) writable=(\\w+)$`),
    );
    // At each 'timeout' the socket was still open and writable: closing it was the server's own decision.
    expect(timeouts.map((m) => m.slice(1))).toEqual([
      ['1', 'false', 'true'],
      ['2', 'false', 'true'],
    ]);
    expect(server.matching(new RegExp(`${peer} still idle: closing it ourselves`))).toHaveLength(1);
  });

  it("a client that never answers the server's FIN (half-open, as nc does) is destroyed at the next timeout", async (t) => {
    const server = spawnLab(t, '07', ['server', '--port', '0', '--idle', '200']);
    const { port } = await server.listening();
    // allowHalfOpen: on the server's FIN this client does not end its own side, so the connection stays half-open.
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    t.onTestFinished(() => {
      client.destroy();
    });
    client.on('error', () => {});
    await once(client, 'connect');
    const peer = `127\\.0\\.0\\.1:${client.localPort}`;
    let received = '';
    client.setEncoding('utf8');
    client.on('data', (chunk: string) => {
      received += chunk;
    });
    await settleWithin(once(client, 'end'), REPLY_MS, "the server's FIN after two idle periods of 200 ms");
    expect(received.endsWith('bye: idle too long\r\n')).toBe(true);
    // We never end our side; one idle period later the server stops waiting and destroys its socket.
    await server.waitForLine(new RegExp(`${peer} closed after 3 'timeout' event\\(s\\)$`));
    expect(
      server.matching(new RegExp(`${peer} ignored our FIN for another 200 ms: destroy\\(\\)$`)),
    ).toHaveLength(1);
    expect(server.matching(new RegExp(`${peer} still idle: closing it ourselves`))).toHaveLength(1);
    // No write after end(): the server did not trip over its own half-closed socket.
    expect(server.matching(/error/)).toHaveLength(0);
  });

  // Sequential (not beside this file's other tests): the test's own client must answer the server's FIN within one
  // idle period (200 ms), or the server takes the half-open path; a busy test worker was measured missing that
  // (and starts again with twice the limit, below).
  it.sequential('setTimeout(0) switches the idle timer off: a client idle longer than one that gets closed is never warned', async (t) => {
    // The premise: calm says notimeout within its first idle period. Under load the test itself can be that late
    // (a CI run measured calm's first 'timeout' 209 ms after hello, before its notimeout arrived); then it starts
    // again with twice the limit. A lab whose setTimeout(0) does nothing warns calm after its notimeout, at any
    // limit, and that is never retried.
    for (let idle = 200; ; idle *= 2) {
      const server = spawnLab(t, '07', ['server', '--port', '0', '--idle', String(idle)]);
      const { port } = await server.listening();
      // The limit is a timer of the test's own: each wait on it may be quiet that long, and REPLY_MS more.
      const due = { quiet: 2 * idle + REPLY_MS };
      const calm = await connectClient(t, port);
      const calmKey = `127\\.0\\.0\\.1:${calm.socket.localPort}`;
      await calm.waitForLine(/^hello/, due);
      calm.write('notimeout\n');
      await calm.waitForLine(/^timeout disabled: setTimeout\(0\)$/, due);
      const timedOut = new RegExp(`${calmKey} 'timeout'`);
      const disabled = new RegExp(`${calmKey} asked for no timeout: setTimeout\\(0\\)$`);
      await server.waitForLine(disabled, due);
      // Late: calm's first idle period ran out before its notimeout reached the server.
      const disabledAt = server.lines.findIndex((l) => disabled.test(l));
      const late = server.lines.slice(0, disabledAt).some((l) => timedOut.test(l));
      if (late && idle < 800) {
        server.kill();
        calm.socket.destroy();
        continue;
      }
      // Connected later, idle for less time than calm, and still closed for being idle.
      const quiet = await connectClient(t, port);
      const quietKey = `127\\.0\\.0\\.1:${quiet.socket.localPort}`;
      await quiet.waitForLine(/^bye: idle too long$/, due);
      await quiet.waitForEnd(due);
      expect(quiet.lines.at(-1)).toBe('bye: idle too long');
      const [, closedAfter] = await server.waitForLine(
        new RegExp(`${quietKey} closed after (\\d) 'timeout'`),
        due,
      );
      // Equal timers fire in the order they were set, so calm's would have fired first: it has none.
      expect(server.matching(timedOut)).toHaveLength(0);
      // Late again: the test's own client answered the server's FIN after one more idle period, and the server
      // took the half-open path (a third 'timeout', then destroy()), as a test worker starved under test:all's
      // load once did (CI repro r58). The same start again, with twice the limit.
      const halfOpen = new RegExp(`${quietKey} ignored our FIN for another ${idle} ms: destroy\\(\\)$`);
      if (closedAfter === '3' && server.matching(halfOpen).length === 1 && idle < 800) {
        server.kill();
        calm.socket.destroy();
        quiet.socket.destroy();
        continue;
      }
      expect(closedAfter).toBe('2');
      calm.write('still here\n');
      await calm.waitForLine(/^echo: still here$/, due);
      expect(calm.lines).toEqual([
        `hello: say something at least every ${idle} ms (or type notimeout)`,
        'timeout disabled: setTimeout(0)',
        'echo: still here',
      ]);
      return;
    }
  });

  it.skipIf(noSs)(
    "ss -tno shows the kernel's keepalive timer once the server calls setKeepAlive(true, 2000): first probe due within 2 s",
    async (t) => {
      const server = spawnLab(t, '07', ['server', '--port', '0', '--keepalive', '2000']);
      const { port } = await server.listening();
      const client = await connectClient(t, port);
      const [, said] = await server.waitForLine(
        new RegExp(`127\\.0\\.0\\.1:${client.socket.localPort} setKeepAlive\\(true, 2000\\): (.*)$`),
      );
      const m = (said as string).match(new RegExp(`^timer:\\(keepalive,[^,]*,0\\): ${NEXT.source}`));
      expect(m, said).not.toBeNull();
      const ms = toMs(m?.[1] as string, m?.[2] as string);
      expect(ms).toBeGreaterThan(1000);
      expect(ms).toBeLessThanOrEqual(2000);
      expect(m?.[3]).toBe('0');
    },
  );

  it.skipIf(noSs)(
    'pitfall: initialDelay is cut to whole seconds, so under 1000 ms the kernel keeps its 2-hour default, and 1500 ms means 1 s',
    async (t) => {
      const lab = spawnLab(t, '07');
      expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
      const rows = new Map(
        lab.matching(/^\[keepalive\] (setKeepAlive.*?)\s+→ (.*)$/).map((m) => [m[1], m[2] as string]),
      );
      expect([...rows.keys()]).toEqual([
        'setKeepAlive never called',
        'setKeepAlive(true)',
        'setKeepAlive(true, 500)',
        'setKeepAlive(true, 1500)',
        'setKeepAlive(true, 2000)',
      ]);
      expect(rows.get('setKeepAlive never called')).toBe('no timer: keepalive is off');
      const next = (label: string) => {
        const m = rows.get(label)?.match(NEXT);
        expect(m, `${label} → ${rows.get(label)}`).not.toBeNull();
        return toMs(m?.[1] as string, m?.[2] as string);
      };
      // The kernel's own default idle time (7200 s unless someone changed the sysctl); ss shows whole minutes.
      const osDefault = Number(fs.readFileSync('/proc/sys/net/ipv4/tcp_keepalive_time', 'utf8')) * 1000;
      for (const label of ['setKeepAlive(true)', 'setKeepAlive(true, 500)']) {
        expect(next(label)).toBeGreaterThanOrEqual(osDefault - 60_000);
        expect(next(label)).toBeLessThanOrEqual(osDefault);
      }
      expect(next('setKeepAlive(true, 1500)')).toBeLessThanOrEqual(1000);
      expect(next('setKeepAlive(true, 2000)')).toBeGreaterThan(1000);
      expect(next('setKeepAlive(true, 2000)')).toBeLessThanOrEqual(2000);
    },
  );

  it('without ss the lab says so in one line and carries on', async (t) => {
    // An empty PATH (node is started by its full path): the lab cannot find ss, as on a machine without iproute2.
    const lab = spawnLab(t, '07', [], { env: { PATH: path.join(os.tmpdir(), 'nwb07-no-such-dir') } });
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(
      lab.matching(
        /^\[keepalive\] ss (\(iproute2\) not found|and the kernel's keepalive timer are Linux-only)/,
      ),
    ).toHaveLength(1);
    expect(lab.matching(/timer:/)).toHaveLength(0);
    expect(lab.lines.at(-1)).toBe('[demo] done');
  });

  it('the client role sits silent until the idle server ends it, then exits 0', async (t) => {
    const server = spawnLab(t, '07', ['server', '--port', '0', '--idle', '200']);
    const { port } = await server.listening();
    const client = spawnLab(t, '07', ['client', '--port', String(port), '--keepalive', '2000']);
    // The client prints its keepalive timer every second, so it is never quiet: the deadline is the server's
    // two idle periods of 200 ms (plus REPLY_MS).
    expect(await client.waitForExit({ within: 2 * 200 + REPLY_MS })).toEqual({
      exitCode: 0,
      signal: undefined,
    });
    expect(client.matching(/^\[client\] received: /).map((m) => m.input)).toEqual([
      '[client] received: hello: say something at least every 200 ms (or type notimeout)',
      '[client] received: idle for 200 ms: still there? (say anything, or I close at the next timeout)',
      '[client] received: bye: idle too long',
    ]);
    expect(client.matching(/^\[client\] setKeepAlive\(true, 2000\)$/)).toHaveLength(1);
    expect(client.lines.at(-1)).toBe('[client] closed');
  });

  it('stops cleanly on SIGTERM with exit code 0, closing its connections', async (t) => {
    const server = spawnLab(t, '07', ['server', '--port', '0', '--idle', '0']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    await client.waitForLine(/^hello: no idle timeout here$/);
    expect(await server.stop()).toEqual({ exitCode: 0, signal: undefined });
    await client.waitForClose();
    expect(server.matching(/shutting down, closing 1 connection/)).toHaveLength(1);
  });

  it('a bad flag is one line on stderr and exit code 2', async (t) => {
    const idle = spawnLab(t, '07', ['server', '--idle', 'soon']);
    const flag = spawnLab(t, '07', ['server', '--keepalve', '1000']);
    expect(await idle.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
    expect(idle.stderr).toEqual([
      "error: --idle must be a whole number from 0 to 9007199254740991, got 'soon'",
    ]);
    expect(await flag.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
    expect(flag.stderr).toHaveLength(1);
    expect(flag.stderr[0]).toMatch(/^error: Unknown option '--keepalve'/);
  });

  it('a refused connection is one line on stderr and exit code 1 for the client', async (t) => {
    const port = await refusedPort(t); // nothing listens there
    const client = spawnLab(t, '07', ['client', '--port', String(port)]);
    expect(await client.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(client.stderr).toEqual([
      expect.stringMatching(/^\[client\] error: ECONNREFUSED 127\.0\.0\.1:\d+: /),
    ]);
  });
});
