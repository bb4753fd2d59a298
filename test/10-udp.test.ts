// Lab 10: UDP with dgram — echo, rinfo, both send() forms, boundaries, connected UDP, EMSGSIZE, the pinger
// (docs/10-udp.md).
import dgram from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { busyNow, type LabProcess, REPLY_MS, STALL_MS, setWaitDefaults, spawnLab } from './helpers/lab.ts';
import { expectInOrder } from './helpers/order.ts';
import { openUdp } from './helpers/udp.ts';

// The lab's timers are the ones these tests set (the client's --timeout 100, the pinger's): a wait fails
// once the lab (or a test socket) has said nothing new for REPLY_MS, so an untouched starter fails in seconds.
setWaitDefaults({ quiet: REPLY_MS, stalled: STALL_MS });

/** A UDP port on 127.0.0.1 with no listener: bind one, note its number, close it. */
async function deadPort(): Promise<number> {
  const probe = dgram.createSocket('udp4');
  probe.bind(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  probe.close();
  return port;
}

/** The server's line for one datagram: `#N "text" from 127.0.0.1:PORT (family IPv4, size N)`. */
const serverLine = /^\[server\] #(\d+) (".*"…?) from 127\.0\.0\.1:(\d+) \(family (\w+), size (\d+)\)(.*)$/;

describe.concurrent('lab 10: UDP with dgram', () => {
  describe.concurrent('the demo', () => {
    let demo: LabProcess;
    beforeAll(async () => {
      demo = spawnLab('10');
      await demo.waitForExit();
    });

    it('plays echo, boundaries, connected UDP, EMSGSIZE and the pinger in order, then exits 0', async () => {
      expect(await demo.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
      const order = [
        /^\[server\] listening on 127\.0\.0\.1:\d+$/,
        /^\[client\] echo "hello" from 127\.0\.0\.1:\d+ \(family IPv4, size 5\)$/,
        /^\[demo\] UDP: 3 send\(\) calls/,
        /^\[demo\] TCP: 3 write\(\) calls/,
        /^\[connected\] 'error' event: ECONNREFUSED/,
        /^\[client\] 65508 bytes: EMSGSIZE/,
        /^\[pinger\] 10 pings sent/,
        /^\[demo\] done$/,
      ];
      expectInOrder(demo.lines, order);
      expect(demo.stderr).toEqual([]);
    });

    it("message boundaries: three UDP sends are three 'message' events, three TCP writes one 'data' event", () => {
      expect(demo.matching(/^\[demo\] UDP: /).map((m) => m.input)).toEqual([
        `[demo] UDP: 3 send() calls, 3 'message' events: "one", "two", "three"`,
      ]);
      // The TCP reader did not read until all three writes had reached the kernel: the bytes merged.
      expect(demo.matching(/^\[demo\] TCP: /).map((m) => m.input)).toEqual([
        `[demo] TCP: 3 write() calls, 1 'data' event: "onetwothree"`,
      ]);
    });

    it('a connected UDP socket gets ECONNREFUSED from a port with no listener; an unconnected one is told nothing', () => {
      expect(demo.matching(/^\[unconnected\] send callback: no error$/)).toHaveLength(1);
      expect(demo.matching(/^\[connected\] 'error' event: ECONNREFUSED /)).toHaveLength(1);
      expect(demo.matching(/^\[unconnected\] errors so far: 0:/)).toHaveLength(1);
      expect(demo.matching(/^\[unconnected\] error:/)).toHaveLength(0);
    });
  });

  it("rinfo carries the sender's address, family, port and size (in bytes), and the echo goes back to exactly that port", async (t) => {
    const server = spawnLab(t, '10', ['server', '--port', '0']);
    const { port } = await server.listening();
    const udp = await openUdp(t);
    await udp.send('hello', port);
    await udp.send('π', port); // one character, two bytes in UTF-8
    const echoes = await udp.waitForMessages(/^(hello|π)$/, 2);
    // The echo's rinfo describes the server: its port, and the size of what it sent back.
    expect(Object.fromEntries(echoes.map((d) => [d.text, d.rinfo]))).toEqual({
      hello: { address: '127.0.0.1', family: 'IPv4', port, size: 5 },
      π: { address: '127.0.0.1', family: 'IPv4', port, size: 2 },
    });
    await server.waitForLines(serverLine, 2); // the log line travels by pipe, the echo by UDP: either may win
    const seen = server.matching(serverLine);
    expect(seen).toHaveLength(2);
    for (const m of seen) {
      expect(Number(m[3])).toBe(udp.port);
      expect(m[4]).toBe('IPv4');
    }
    expect(seen.map((m) => `${m[2]} ${m[5]}`).sort()).toEqual(['"hello" 5', '"π" 2']);
  });

  it("the client sends with both send() forms: the whole 'hello', and 5 bytes at offset 7 of 'hello, world'", async (t) => {
    const server = spawnLab(t, '10', ['server', '--port', '0']);
    const { port } = await server.listening();
    const client = spawnLab(t, '10', ['client', '--port', String(port)]);
    expect(await client.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(client.matching(/^\[client\] sent /).map((m) => m.input)).toEqual([
      "[client] sent 'hello' with send(msg, port, address): 5 bytes",
      "[client] sent 'world' with send(buf, 7, 5, port, address): 5 bytes",
    ]);
    // UDP does not promise order, so compare the echoes as a set (on loopback they do come in order).
    const echoes = client.matching(/^\[client\] echo /).map((m) => m.input);
    expect(echoes).toHaveLength(2);
    expect(echoes).toEqual(
      expect.arrayContaining([
        `[client] echo "hello" from 127.0.0.1:${port} (family IPv4, size 5)`,
        `[client] echo "world" from 127.0.0.1:${port} (family IPv4, size 5)`,
      ]),
    );
    const seen = await server.waitForLines(serverLine, 2);
    expect(seen.map((m) => `${m[2]} ${m[5]}`).sort()).toEqual(['"hello" 5', '"world" 5']);
    // Both came from the one socket of the client: the same source port.
    expect(new Set(seen.map((m) => m[3])).size).toBe(1);
  });

  it("message boundaries are kept: three datagrams sent back to back are three 'message' events and three echoes", async (t) => {
    const server = spawnLab(t, '10', ['server', '--port', '0']);
    const { port } = await server.listening();
    const udp = await openUdp(t);
    await Promise.all(['one', 'two', 'three'].map((w) => udp.send(w, port)));
    await udp.waitForMessages(/^(one|two|three)$/, 3);
    // A marker after them: once its echo is back, nothing else from the three can still be on its way.
    await udp.send('marker', port);
    await udp.waitForMessages(/^marker$/);
    expect(udp.received.map((d) => d.text).sort()).toEqual(['marker', 'one', 'three', 'two']);
    // The server's log line travels through a pipe, the echo through UDP: wait for the line, not the echo.
    await server.waitForLine(/^\[server\] #\d+ "marker" from /);
    expect(
      server
        .matching(serverLine)
        .map((m) => m[2])
        .sort(),
    ).toEqual(['"marker"', '"one"', '"three"', '"two"']);
  });

  it('an unconnected client with no server is told nothing: it sends fine, then gives up after --timeout with one line', async (t) => {
    const port = await deadPort();
    const client = spawnLab(t, '10', ['client', '--port', String(port), '--timeout', '100']);
    expect(await client.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(client.matching(/^\[client\] sent /)).toHaveLength(2);
    expect(client.matching(/^\[client\] echo /)).toHaveLength(0);
    expect(client.stderr).toEqual([
      `[client] error: no echo within 100 ms: is the server running on 127.0.0.1:${port}?`,
    ]);
  });

  it('a datagram of 65,507 bytes goes through and one of 65,508 fails with EMSGSIZE and never arrives', async (t) => {
    const server = spawnLab(t, '10', ['server', '--port', '0']);
    const { port } = await server.listening();
    // Two clients at once: they do not depend on each other.
    const fits = spawnLab(t, '10', ['client', '--port', String(port), '--size', '65507']);
    const tooBig = spawnLab(t, '10', ['client', '--port', String(port), '--size', '65508']);
    expect(await fits.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(fits.matching(/^\[client\] echo .* \(family IPv4, size 65507\)$/)).toHaveLength(1);
    expect(await tooBig.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(tooBig.stderr).toEqual([
      `[client] error: EMSGSIZE 127.0.0.1:${port}: message too long for one datagram`,
    ]);
    // A marker datagram after it: when the server has seen the marker, it has seen all it will ever see.
    const udp = await openUdp(t);
    await udp.send('marker', port);
    await server.waitForLine(/"marker"/);
    expect(server.matching(serverLine).map((m) => `${m[1]} ${m[5]}`)).toEqual(['1 65507', '2 6']);
  });

  it('the pinger against a server dropping 30% with seed 16 loses exactly pings 2, 6 and 9: 7 replies, 30% loss', async (t) => {
    const server = spawnLab(t, '10', ['server', '--port', '0', '--loss', '30', '--seed', '16']);
    const { port } = await server.listening();
    // Each lost ping costs one whole timeout: 300 ms (the demo's is 200) is far above a loopback round trip, and
    // it stretches with the load as it is now (busyNow: up to 1200 ms), so a busy machine's late reply is not
    // taken for a lost one (a reply after its timeout is 'late or stray', which fails below).
    const timeout = Math.round(300 * busyNow());
    const pinger = spawnLab(t, '10', [
      'client',
      '--ping',
      '--port',
      String(port),
      '--timeout',
      String(timeout),
    ]);
    // A timeout of a ping that must be answered ends the wait there (a silent server: at the first timeout).
    const wrongTimeout = /^\[client\] ping (1|3|4|5|7|8|10): timeout/;
    expect(await pinger.waitForExit({ failOn: wrongTimeout, quiet: timeout + REPLY_MS })).toEqual({
      exitCode: 0,
      signal: undefined,
    });
    const dropped = server.matching(serverLine).filter((m) => m[6] === ': dropped (simulated loss)');
    expect(dropped.map((m) => Number(m[1]))).toEqual([2, 6, 9]);
    expect(server.matching(serverLine)).toHaveLength(10);
    const timeouts = pinger.matching(
      new RegExp(`^\\[client\\] ping (\\d+): timeout \\(no reply within ${timeout} ms\\)$`),
    );
    expect(timeouts.map((m) => Number(m[1]))).toEqual([2, 6, 9]);
    const replies = pinger.matching(
      new RegExp(
        `^\\[client\\] ping (\\d+): reply from 127\\.0\\.0\\.1:${port} \\(family IPv4, size \\d+\\), rtt (\\d+\\.\\d{3}) ms$`,
      ),
    );
    expect(replies.map((m) => Number(m[1]))).toEqual([1, 3, 4, 5, 7, 8, 10]);
    expect(pinger.matching(/^\[client\] 10 pings sent, 7 replies, 30% loss$/)).toHaveLength(1);
    const [stats] = pinger.matching(/^\[client\] rtt min\/avg\/max = (\d+\.\d+)\/(\d+\.\d+)\/(\d+\.\d+) ms$/);
    expect(stats, pinger.output()).toBeDefined();
    const [min, avg, max] = (stats as RegExpMatchArray).slice(1).map(Number) as [number, number, number];
    const rtts = replies.map((m) => Number(m[2]));
    expect(min).toBe(Math.min(...rtts));
    expect(max).toBe(Math.max(...rtts));
    expect(min).toBeLessThanOrEqual(avg);
    expect(avg).toBeLessThanOrEqual(max);
    expect(pinger.matching(/late or stray/)).toHaveLength(0);
    // Real time is the behaviour here: three lost pings wait 3 × the timeout on top of starting two processes.
  }, 20_000);

  it('the pinger with nobody answering reports every ping as a timeout, 100% loss and no rtt line', async (t) => {
    const port = await deadPort();
    const pinger = spawnLab(t, '10', [
      'client',
      '--ping',
      '--port',
      String(port),
      '--count',
      '2',
      '--timeout',
      '50',
    ]);
    expect(await pinger.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(pinger.matching(/^\[client\] ping \d+: timeout/)).toHaveLength(2);
    expect(pinger.matching(/^\[client\] 2 pings sent, 0 replies, 100% loss$/)).toHaveLength(1);
    expect(pinger.matching(/rtt min/)).toHaveLength(0);
  });

  it('stops cleanly on SIGTERM with exit code 0', async (t) => {
    const server = spawnLab(t, '10', ['server', '--port', '0']);
    await server.listening();
    expect(await server.stop()).toEqual({ exitCode: 0, signal: undefined });
    expect(server.matching(/^\[server\] shutting down$/)).toHaveLength(1);
  });

  it('a port already taken is one line and exit code 1; a bad --loss is one line and exit code 2', async (t) => {
    const holder = await openUdp(t);
    const server = spawnLab(t, '10', ['server', '--port', String(holder.port)]);
    const bad = spawnLab(t, '10', ['server', '--loss', '101']);
    expect(await server.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(server.stderr).toEqual([
      expect.stringMatching(new RegExp(`^\\[server\\] error: EADDRINUSE 127\\.0\\.0\\.1:${holder.port}: `)),
    ]);
    expect(await bad.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
    expect(bad.stderr).toEqual(['error: --loss is a percentage from 0 to 100, got 101']);
  });

  describe.concurrent('errata', () => {
    it('erratum (note 001): new Buffer() is deprecated (DEP0005) and stops a lab run with --throw-deprecation; Buffer.from() is not', async () => {
      // A fresh node with the flag the labs run under (in this test process the warning may already be spent).
      const node = (code: string) =>
        execa(process.execPath, ['--throw-deprecation', '-p', code], {
          reject: false,
          env: { NODE_OPTIONS: '' },
        });
      const old = await node("new Buffer('zz').toString('hex')");
      expect(old.exitCode).toBe(1);
      expect(old.stderr).toMatch(/DeprecationWarning: Buffer\(\) is deprecated/);
      expect(old.stderr).toMatch(/DEP0005/);
      const now = await node("Buffer.from('zz').toString('hex')");
      expect(now).toMatchObject({ exitCode: 0, stdout: '7a7a', stderr: '' });
    });

    it('erratum (note 001): send(buf, 0, 6, …) with a 2-byte buffer throws ERR_BUFFER_OUT_OF_BOUNDS and sends nothing', async (t) => {
      const server = spawnLab(t, '10', ['server', '--port', '0']);
      const { port } = await server.listening();
      const udp = await openUdp(t);
      let called = false;
      expect(() =>
        udp.socket.send(Buffer.from('zz'), 0, 6, port, '127.0.0.1', () => {
          called = true;
        }),
      ).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_BUFFER_OUT_OF_BOUNDS' }));
      await udp.send('marker', port);
      await server.waitForLine(/"marker"/);
      // The marker is the first and only datagram the server saw, and the callback never ran.
      expect(server.matching(serverLine).map((m) => `${m[1]} ${m[2]}`)).toEqual(['1 "marker"']);
      expect(called).toBe(false);
    });

    it("erratum (note 001): a listener for 'messsage' (three s) is accepted without a word and never called", async (t) => {
      const receiver = await openUdp(t);
      const sender = await openUdp(t);
      let typo = 0;
      receiver.socket.on('messsage', () => typo++);
      await sender.send('hello', receiver.port);
      await receiver.waitForMessages(/^hello$/);
      expect(receiver.received).toHaveLength(1);
      expect(typo).toBe(0);
      expect(receiver.socket.listenerCount('messsage')).toBe(1);
    });

    it('erratum (note 001): setTTL() is the unicast TTL and setMulticastTTL() the multicast one; called before bind, both throw EBADF', async () => {
      const socket = dgram.createSocket('udp4');
      try {
        // The note's client calls setTTL(128) before anything bound the socket.
        expect(() => socket.setTTL(128)).toThrow(expect.objectContaining({ code: 'EBADF' }));
        expect(() => socket.setMulticastTTL(128)).toThrow(expect.objectContaining({ code: 'EBADF' }));
        socket.bind(0, '127.0.0.1');
        await once(socket, 'listening');
        expect(socket.setTTL(128)).toBe(128);
        expect(socket.setMulticastTTL(1)).toBe(1);
        expect(() => socket.setTTL(256)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
      } finally {
        socket.close();
      }
    });
  });
});

describe('lab 10: who binds an unbound socket (note 001)', () => {
  it("erratum (note 001): dgram, not the OS, binds an unbound socket on its first send(): bind(0) on 0.0.0.0, and 'listening' fires before the datagram goes", async () => {
    const receiver = await openUdp();
    const socket = dgram.createSocket('udp4');
    try {
      // Not bound yet: there is no address to ask for.
      expect(() => socket.address()).toThrow(); // no socket is bound yet, so there is no address
      const events: string[] = [];
      socket.on('listening', () => {
        const { address, port } = socket.address();
        events.push(`listening on ${address}:${port > 0 ? 'a port of its own' : port}`);
      });
      const sent = new Promise<void>((resolve, reject) =>
        socket.send('hello', receiver.port, '127.0.0.1', (err) => {
          if (err) reject(err);
          events.push('sent');
          resolve();
        }),
      );
      // A bind the kernel did on its own (as sendto() on a raw fd does) would emit no 'listening':
      // this event is Node's own socket.bind({ port: 0 }), queued before the datagram.
      await sent;
      expect(events).toEqual(['listening on 0.0.0.0:a port of its own', 'sent']);
      const [message] = await receiver.waitForMessages(/^hello$/);
      expect(message?.rinfo.port).toBe(socket.address().port);
    } finally {
      socket.close();
    }
  });
});
