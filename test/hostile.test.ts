// Every server role against a hostile peer (issue 11): a line with no end, a flood with a peer that never reads,
// terminal escapes and look-alike names, a blank-line keepalive, one address filling the room, a command flood,
// a shutdown with a silent peer, and UDP datagrams that would make the echo answer port 0, itself, or another echo.
// Each time: the process is alive, its RSS grew by less than the bound stated below, and a new client is served.
// Sequential on purpose: RSS is measured, and two floods at once would measure each other.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { describe, expect, it, onTestFinished } from 'vitest';
import { guard } from '../labs/lib/guard.ts';
import { type LabProcess, REPLY_MS, spawnLab } from './helpers/lab.ts';
import { connectClient, type TestClient } from './helpers/net.ts';
import { openUdp } from './helpers/udp.ts';

const MiB = 1024 * 1024;
// The bound on growth for every server but lab 05 (whose echo may queue 16 MiB by design): 64 MiB. Before the
// fix these inputs took chat v1 to 1.23 GB, lab 07 to 601 MB, and a 560 MiB line killed both.
const RSS_BOUND = 64 * MiB;

/** The resident memory of a process, in bytes (Linux: /proc/PID/status). */
function rss(pid: number | undefined): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) * 1024;
}
/** The largest a TCP buffer may grow to here, in bytes: the last of the three numbers in /proc/sys/net/ipv4/tcp_rmem or tcp_wmem. */
function tcpBufferMax(which: 'tcp_rmem' | 'tcp_wmem'): number {
  return Number(fs.readFileSync(`/proc/sys/net/ipv4/${which}`, 'utf8').trim().split(/\s+/).at(-1));
}
const hasProc = fs.existsSync('/proc/self/status');
const isRoot = process.getuid?.() === 0;
const hasPython = (() => {
  try {
    execFileSync('python3', ['-c', 'pass']);
    return true;
  } catch {
    return false;
  }
})();
if (!hasProc) console.warn('hostile: skipping the RSS tests: no /proc (Linux only)');
if (!isRoot || !hasPython)
  console.warn('hostile: skipping the spoofed-datagram tests: they need root and python3 for a raw socket');

async function start(
  id: string,
  args: string[] = [],
): Promise<{ lab: LabProcess; port: number; before: number }> {
  const lab = spawnLab(id, ['server', '--port', '0', ...args]);
  const { port } = await lab.listening();
  return { lab, port, before: rss(lab.pid) };
}

/** Alive (no exit), grown by less than `bound`. */
function expectHealthy(lab: LabProcess, before: number, bound = RSS_BOUND): number {
  expect(lab.output()).not.toMatch(/ERR_|Uncaught|TypeError|RangeError/);
  const grown = rss(lab.pid) - before;
  expect(grown, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`).toBeLessThan(bound);
  return grown;
}

/** A raw socket that never reads: what a peer does when it wants our memory. */
async function silent(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  onTestFinished(() => {
    socket.destroy();
  });
  await once(socket, 'connect');
  socket.pause();
  return socket;
}

/**
 * A client with a tiny receive window (SO_RCVBUF 4096, which Node cannot set: python3) that sends `line` and
 * then reads nothing: whatever the server writes to it soon waits in the server's writableLength.
 */
async function tinyWindow(port: number, line: string): Promise<number> {
  const script = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', int(sys.argv[1])))
s.sendall(sys.argv[2].encode())
print(s.getsockname()[1], flush=True)
sys.stdin.read()
`;
  const child = spawn('python3', ['-c', script, String(port), line], { stdio: ['pipe', 'pipe', 'inherit'] });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const [first] = (await once(child.stdout, 'data')) as [Buffer];
  return Number(first.toString().trim());
}

/** The kernel's send queue (bytes) of the server's socket from `serverPort` to `clientPort`, as ss shows it. */
function kernelSendQ(serverPort: number, clientPort: number): number {
  const filter = `( sport = :${serverPort} and dport = :${clientPort} )`;
  const out = execFileSync('ss', ['-tnH', 'state', 'established', filter], { encoding: 'utf8' });
  // Columns (state omitted when filtered by state): Recv-Q Send-Q Local Peer.
  return Number(out.trim().split(/\s+/)[1]);
}

/**
 * Streams `total` bytes of `fill` (no newline) as fast as the server takes them, or until it closes the
 * connection: its FIN ('end') is the close, not 'close', which also waits for our side to finish, and a busy
 * machine lets the loop write tens of MiB more meanwhile. Resolves with how many bytes were handed to the kernel.
 */
async function stream(port: number, total: number, fill = 'x'): Promise<{ sent: number; closed: boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.resume(); // read (and drop) whatever the server says
  onTestFinished(() => {
    socket.destroy();
  });
  await once(socket, 'connect');
  const chunk = Buffer.alloc(MiB, fill);
  let sent = 0;
  let closed = false;
  const gone = new Promise<void>((resolve) => {
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
  });
  gone.then(() => {
    closed = true;
  });
  while (sent < total && !closed) {
    sent += chunk.length;
    if (!socket.write(chunk)) await Promise.race([once(socket, 'drain').catch(() => {}), gone]);
  }
  socket.destroy();
  return { sent, closed };
}

/**
 * Writes `chunk` for `ms` milliseconds (the length of the attack, not a wait for a result) into a socket that
 * reads nothing back, as fast as the kernel takes it; `opening` first (a WebSocket handshake, say).
 */
async function flood(port: number, ms: number, chunk: Buffer, opening?: Buffer): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  onTestFinished(() => {
    socket.destroy();
  });
  await once(socket, 'connect');
  socket.pause();
  if (opening) socket.write(opening);
  return floodInto(socket, ms, chunk);
}

/** The loop of `flood`, for any connected socket that reads nothing (a TLS one too). */
async function floodInto(socket: net.Socket, ms: number, chunk: Buffer): Promise<number> {
  let sent = 0;
  const until = Date.now() + ms;
  const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  while (Date.now() < until && !socket.destroyed) {
    sent += chunk.length;
    if (!socket.write(chunk)) {
      const stop = new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, until - Date.now())));
      await Promise.race([once(socket, 'drain').catch(() => {}), gone, stop]);
    }
  }
  socket.destroy();
  return sent;
}

/** Chat v1: connect, wait for the prompt, pick `nick`. */
async function join08(port: number, nick: string): Promise<TestClient> {
  const client = await connectClient(port, '127.0.0.1', nick);
  await client.waitForText(/nickname: $/);
  client.write(`${nick}\r\n`);
  await client.waitForLine(/^nickname: hi /);
  return client;
}

/** Chat v2: connect, wait for the welcome, rename to `nick` if given. */
async function join09(port: number, nick?: string): Promise<TestClient> {
  const client = await connectClient(port, '127.0.0.1', nick ?? 'anonymous');
  await client.waitForLine(/^\* welcome/);
  if (nick) {
    client.write(`n:${nick}\n`);
    await client.waitForLine(/^\* you are now /);
  }
  return client;
}

const controlsIn = (text: string) =>
  [...text].filter((ch) => /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(ch) && ch !== '\r' && ch !== '\n');

// Floods of a few hundred MB take seconds on a loaded machine: 30 s per test is the last resort, not a wait.
const suite = hasProc ? describe.sequential : describe.skip;
suite('hostile peers: every server survives them', { timeout: 30_000 }, () => {
  // ---- byte servers: a flood from a client that never reads what is echoed -------------------------------
  it.each([
    ['01', [], /^hello$/],
    ['03', [], /^hello #\d+/],
    ['04', [], undefined],
    ['06', ['--mode', 'echo'], undefined],
  ] as const)(
    'lab %s: a client that floods and never reads stays bounded; the next client is served',
    async (id, extra, greeting) => {
      const { lab, port, before } = await start(id, [...extra]);
      const sent = await flood(port, 1500, Buffer.alloc(64 * 1024, 'x'));
      const grown = expectHealthy(lab, before);
      console.log(
        `lab ${id}: flooded ${(sent / MiB).toFixed(0)} MiB unread, RSS +${(grown / MiB).toFixed(1)} MiB`,
      );
      const next = await connectClient(port);
      if (greeting) await next.waitForLine(greeting);
      next.write('still there?\n');
      await next.waitForLine(/still there\?/);
    },
  );

  it('lab 02: 1 GiB with no end is only counted; RSS does not grow with it and the next client is answered', async () => {
    // --half-open: the server may still answer after the client's FIN (chapter 02).
    const { lab, port, before } = await start('02', ['--half-open']);
    // Read at full speed, the growth is the garbage collector's working set: the 64 KiB read buffers live
    // outside V8's heap, are freed in batches, and malloc keeps their pages. Measured on Node 22-26: +36 to +62
    // MiB after 128 MiB, +36 to +86 MiB after 640 MiB, in no order (Node 24 levels off at ~86 MiB). What must not
    // happen is growth with the input: a server that kept an eighth of what it read would grow by 96 MiB more
    // over the last 768 MiB, and be at 128 MiB in all (one that keeps it all, by 768 MiB, or dies making a string
    // of it, as lab 07 and chat v1 did).
    expect((await stream(port, 256 * MiB)).sent).toBe(256 * MiB);
    const first = rss(lab.pid) - before;
    expect((await stream(port, 768 * MiB)).sent).toBe(768 * MiB);
    const grown = expectHealthy(lab, before, 128 * MiB);
    console.log(
      `lab 02: RSS +${(first / MiB).toFixed(1)} MiB after 256 MiB, +${(grown / MiB).toFixed(1)} MiB after 1 GiB`,
    );
    expect(grown - first, 'growth over the last 768 MiB').toBeLessThan(96 * MiB);
    const next = await connectClient(port);
    next.socket.end('hi');
    await next.waitForLine(/^you sent 2 bytes$/);
  });

  it('lab 05: a flood into a paused server, then go with the client not reading: dropped at 16 MiB queued', async () => {
    const { lab, port, before } = await start('05');
    const socket = await silent(port);
    await lab.waitForLine(/paused \(pauseOnConnect\)/);
    // Fill the kernel's buffers toward the paused server, then let it read and echo into a client that does not read.
    const chunk = Buffer.alloc(64 * 1024, 'x');
    while (socket.write(chunk));
    lab.write('go\n');
    // once() rejects on 'error' (the server resets us: that is the point): a settled promise either way.
    const gone = once(socket, 'close').catch(() => {});
    const writer = (async () => {
      while (!socket.destroyed)
        if (!socket.write(chunk)) await Promise.race([once(socket, 'drain').catch(() => {}), gone]);
    })();
    await lab.waitForLine(/dropped: SendQ exceeded/);
    socket.destroy();
    await writer;
    const grown = expectHealthy(lab, before, RSS_BOUND + 16 * MiB);
    console.log(
      `lab 05: echo into a non-reader dropped at 16 MiB queued, RSS +${(grown / MiB).toFixed(1)} MiB`,
    );
    const next = await connectClient(port);
    next.write('hello\n');
    await lab.waitForLines(/paused \(pauseOnConnect\)/, 2);
    lab.write('go\n');
    await next.waitForLine(/^hello$/);
  });

  // ---- line servers: a line with no end, and a flood into a peer that never reads ----------------------------
  it.each([
    ['07', 4096, 'closed by the server: line longer than 4096 bytes'],
    ['08', 512, 'closed by the server: line longer than 512 bytes'],
    ['09', 4096, 'left: line too long'],
  ] as const)(
    'lab %s: a 600 MiB line with no newline is cut at %i bytes; RSS stays flat, the next client is served',
    async (id, _limit, logged) => {
      const { lab, port, before } = await start(id);
      const { sent, closed } = await stream(port, 600 * MiB);
      expect(closed, 'the server closed the connection').toBe(true);
      // The kernel takes a few MB before the close arrives; far from 600.
      expect(sent).toBeLessThan(64 * MiB);
      // And the server reads nothing more from such a peer. A second one writes the same endless line for 500 ms
      // and never reads, so it never sees the close: it gets out at most what the kernel's buffers hold (its send
      // buffer and the server's receive buffer, at their largest) and one chunk. A server that went on reading
      // and dropping its bytes took 4 to 79 MiB from the first peer, and 700 to 960 MiB from this one.
      const flooded = await flood(port, 500, Buffer.alloc(MiB, 'x'));
      expect(flooded, `${flooded / MiB} MiB flooded`).toBeLessThanOrEqual(
        tcpBufferMax('tcp_rmem') + tcpBufferMax('tcp_wmem') + MiB,
      );
      const grown = expectHealthy(lab, before);
      console.log(
        `lab ${id}: long line cut after ${sent / MiB} MiB sent (a peer that never reads: ${flooded / MiB} MiB), RSS +${(grown / MiB).toFixed(1)} MiB`,
      );
      expect(lab.output()).toContain(logged);
      const next = await connectClient(port);
      await next.waitForText(id === '07' ? /^hello/ : id === '08' ? /nickname: $/ : /welcome/);
    },
  );

  it('lab 07: a client that sends lines and never reads the echoes is dropped (SendQ exceeded)', async () => {
    const { lab, port, before } = await start('07');
    // Lines just under the limit: each one echoed is 4 KB more for a peer that reads none of it.
    const lines = Buffer.from(`${'p'.repeat(4000)}\n`.repeat(16));
    for (let round = 0; round < 10 && !lab.matching(/dropped: SendQ exceeded/).length; round++)
      await flood(port, 1000, lines);
    const grown = expectHealthy(lab, before);
    console.log(`lab 07: echo flood into a non-reader, RSS +${(grown / MiB).toFixed(1)} MiB`);
    const next = await connectClient(port);
    await next.waitForLine(/^hello/);
    next.write('ping\n');
    await next.waitForLine(/^echo: ping$/);
  });

  it('lab 08: one user floods, another never reads: the silent one is dropped at 256 KiB, the room goes on', async () => {
    const { lab, port, before } = await start('08');
    const mute = await silent(port);
    mute.write('mute\r\n');
    await lab.waitForLine(/is mute, /);
    const bob = await join08(port, 'bob');
    const loud = await join08(port, 'loud');
    const line = `${'y'.repeat(500)}\r\n`;
    let batches = 0;
    while (!lab.matching(/dropped: SendQ exceeded/).length && batches < 400) {
      loud.write(line.repeat(64));
      batches++;
      await bob.waitForLines(/^loud: y+$/, batches * 64);
    }
    await lab.waitForLine(/dropped: SendQ exceeded/);
    await bob.waitForLine(/^\* mute left$/);
    const grown = expectHealthy(lab, before);
    console.log(`lab 08: ${batches * 64} lines to a non-reader, RSS +${(grown / MiB).toFixed(1)} MiB`);
    loud.write('still here\r\n');
    await bob.waitForLine(/^loud: still here$/);
    await join08(port, 'carol');
  });

  it('lab 08: escapes, bare CRs and bidi controls never reach another terminal; look-alike names are refused', async () => {
    const { lab, port } = await start('08');
    const alice = await join08(port, 'alice');
    const bob = await join08(port, 'bob');
    alice.write('hi \x1b[2J\x1b]0;pwned\x07\r\nhello\rbob: forged\x1b[K\r\n\x1b[1A\x1b[2K\rbob: owned\r\n');
    alice.write('a\u202Eevil\u2066x\u2069\u200B\uFEFF\u2028\u2029 end\r\n');
    await bob.waitForLine(/end$/);
    expect(controlsIn(bob.raw())).toEqual([]);
    expect(bob.raw()).not.toContain('\x1b');
    expect(bob.matching(/^alice: /).map((m) => m.input)).toEqual([
      'alice: hi',
      'alice: hello?bob: forged',
      'alice: ?bob: owned',
      'alice: a?evil?x????? end',
    ]);
    for (const name of ['Alice', 'ALICE', 'ａｌｉｃｅ']) {
      const c = await connectClient(port);
      await c.waitForText(/nickname: $/);
      c.write(`${name}\r\n`);
      await c.waitForText(new RegExp(`nickname '${name}' is taken`));
    }
    for (const name of ['alice\u3164', '\u0430lice', 'bob\x1b[8m', 'x'.repeat(300)]) {
      const c = await connectClient(port);
      await c.waitForText(/nickname: $/);
      c.write(`${name}\r\n`);
      await c.waitForText(/! a name /);
      expect(controlsIn(c.raw())).toEqual([]);
    }
    // Real names in any script are welcome, marks and all.
    for (const name of ['नमस्ते', 'สมชาย', 'محمد', 'Zoë']) await join08(port, name);
    expect(lab.stderr).toEqual([]);
  });

  it.skipIf(!hasPython).each([
    ['alone', false],
    ['while the others leave too', true],
  ] as const)(
    'lab 08: SIGTERM with a silent peer holding unsent data (%s): gone within its 1 s linger, no write after end',
    async (_how, othersStay) => {
      const { lab, port } = await start('08');
      const mutePort = await tinyWindow(port, 'mute\r\n');
      await lab.waitForLine(/is mute, /);
      const loud = await join08(port, 'loud');
      const other = await join08(port, 'other');
      // 32 KB at a time for the silent one, until the kernel's send queue stops growing: from then on what the
      // server writes waits in its own writableLength (one batch, under the 256 KiB limit).
      let batches = 0;
      for (let last = -1; batches < 200; ) {
        loud.write(`${'z'.repeat(498)}\r\n`.repeat(64));
        batches++;
        await other.waitForLines(/^loud: z+$/, batches * 64);
        const queued = kernelSendQ(port, mutePort);
        if (queued === last) break;
        last = queued;
      }
      expect(lab.matching(/dropped/)).toEqual([]);
      if (!othersStay) {
        // Only the silent one is left when the signal comes (the case: still running 10 s later).
        loud.socket.destroy();
        other.socket.destroy();
        await lab.waitForLines(/^\[server\] to everyone but \w+: \* \w+ left$/, 2);
      }
      const t0 = Date.now();
      expect(await lab.stop('SIGTERM')).toEqual({ exitCode: 0, signal: undefined });
      const took = Date.now() - t0;
      console.log(`lab 08: SIGTERM to exit, silent peer ${_how}, after ${batches} batches: ${took} ms`);
      // The 1 s linger, and a signal's round trip on this machine (REPLY_MS: 1 s, stretched by its load).
      expect(took).toBeLessThan(1000 + 500 + REPLY_MS);
      // The others' leaves are announced while the silent one is being closed: never written after its end.
      expect(lab.output()).not.toContain('ERR_STREAM_WRITE_AFTER_END');
    },
  );

  // ---- chat v2 ---------------------------------------------------------------------------------------------
  it('lab 09: a flood into a user who never reads: dropped at --max-buffered, RSS stays flat', async () => {
    const { lab, port, before } = await start('09', ['--max-rate', '0']);
    const mute = await silent(port);
    await lab.waitForLine(/joined \(1 online\)/);
    const bob = await join09(port, 'bob');
    const loud = await join09(port, 'loud');
    let batches = 0;
    while (!lab.matching(/dropped: \d+ bytes waiting/).length && batches < 400) {
      loud.write(`b:${'y'.repeat(4000)}\n`.repeat(16));
      batches++;
      await bob.waitForLines(/^loud: y+$/, batches * 16);
    }
    await lab.waitForLine(/dropped: \d+ bytes waiting/);
    // (The silent client itself cannot see the reset: it reads nothing, so nothing tells it.)
    mute.destroy();
    const grown = expectHealthy(lab, before);
    console.log(
      `lab 09: ${batches * 16} lines of 4 KB to a non-reader, RSS +${(grown / MiB).toFixed(1)} MiB`,
    );
    await join09(port, 'carol');
  });

  it('lab 09: bidi, invisible and line-separator characters never reach the others; names fold', async () => {
    const { port } = await start('09');
    const alice = await join09(port, 'alice');
    const bob = await join09(port, 'bob');
    alice.write('b:x\u202Ey\u2066z\u2069\u200B\uFEFF\u2028\u2029\x1b]0;t\x07\r!\n');
    await bob.waitForLine(/^alice: /);
    expect(bob.matching(/^alice: /)[0]?.input).toBe('alice: x?y?z??????!');
    expect(controlsIn(bob.raw())).toEqual([]);
    for (const name of ['Alice', 'ALICE', 'ａｌｉｃｅ']) {
      bob.write(`n:${name}\n`);
      await bob.waitForLine(new RegExp(`^! the name '${name}' is taken$`));
    }
    for (const name of ['alice\u3164', '\u0430lice', 'a\u202Eb']) {
      bob.write(`n:${name}\n`);
    }
    await bob.waitForLines(/^! a name /, 3);
    bob.write('n:नमस्ते\n');
    await bob.waitForLine(/^\* you are now नमस्ते$/);
    // A private message finds the folded name: ALICE reaches alice.
    bob.write('c:ALICE:psst\n');
    await alice.waitForLine(/^नमस्ते \(private\): psst$/);
  });

  it('lab 09: a blank line once in a while does not keep an idle user in the room', async () => {
    const { port } = await start('09', ['--idle-ms', '400']);
    const idler = await join09(port);
    // The attack: '\n' every 100 ms, for as long as the server lets it (this timer is the input, not a wait).
    const beat = setInterval(() => idler.write('\n'), 100);
    onTestFinished(() => clearInterval(beat));
    await idler.waitForLine(/^! no line from you for 400 ms/);
    clearInterval(beat);
    await idler.closed;
  });

  it('lab 09: one address cannot fill the room: past --max-per-address it is told why and closed', async () => {
    const { lab, port } = await start('09', ['--max-per-address', '3']);
    for (let i = 0; i < 3; i++) await join09(port);
    const fourth = await connectClient(port);
    await fourth.waitForLine(/^! too many connections from 127\.0\.0\.1 \(3\): try again later$/);
    await fourth.closed;
    expect(lab.matching(/refused: 3 connections from 127\.0\.0\.1/)).toHaveLength(1);
  });

  it('lab 09: 200 KB of "l" commands is Excess Flood, not 269 MB of replies', async () => {
    const { lab, port, before } = await start('09');
    const others = await Promise.all([join09(port, 'a'), join09(port, 'b'), join09(port, 'c')]);
    const flooder = await join09(port);
    let received = 0;
    flooder.socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    flooder.write('l\n'.repeat(100_000));
    await flooder.waitForLine(/^! Excess Flood: more than 10 lines a second: closing$/);
    await flooder.closed;
    // 20 lines (a burst of twice the rate) answered, each a list of 5 names: a few KB, not hundreds of MB.
    expect(received).toBeLessThan(64 * 1024);
    expect(flooder.matching(/online: /).length).toBeLessThanOrEqual(21);
    const grown = expectHealthy(lab, before);
    console.log(
      `lab 09: 100,000 'l' commands, ${received} bytes answered before Excess Flood, RSS +${(grown / MiB).toFixed(1)} MiB`,
    );
    await others[0]?.waitForLine(/left \(Excess Flood\)/);
    await join09(port, 'late');
  });

  it('lab 09: SIGTERM with a peer that never reads: gone within the 1 s linger', async () => {
    const { lab, port } = await start('09');
    await silent(port);
    await lab.waitForLine(/joined \(1 online\)/);
    const t0 = Date.now();
    expect(await lab.stop('SIGTERM')).toEqual({ exitCode: 0, signal: undefined });
    expect(Date.now() - t0).toBeLessThan(1000 + 500 + REPLY_MS); // the linger, and a signal's round trip
  });

  // ---- protocol servers (chapters 13-16): a flood echoed into a peer that never reads --------------------------
  /** A frame of chapter 13: a 4-byte big-endian length, then the bytes. */
  const frame13 = (payload: Buffer) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(payload.length);
    return Buffer.concat([head, payload]);
  };

  it('lab 13: frames echoed into a client that never reads are not read either (one echo queued); an oversize header is closed', async () => {
    const { lab, port, before } = await start('13');
    const size = 60_000;
    const frames = Buffer.concat(Array.from({ length: 16 }, () => frame13(Buffer.alloc(size, 'f'))));
    const sent = await flood(port, 1500, frames);
    const echoed = lab.matching(/ message \d+: \(60000 bytes\)$/).length;
    const grown = expectHealthy(lab, before);
    console.log(
      `lab 13: ${(sent / MiB).toFixed(0)} MiB of frames sent, ${((echoed * size) / MiB).toFixed(0)} MiB read and echoed, RSS +${(grown / MiB).toFixed(1)} MiB`,
    );
    // Backpressure: what the server read (and echoed) is about what the kernel's buffers held between them; the
    // rest of what was sent waited in the kernel, unread. Only the bound on RSS is asserted: buffer sizes vary.
    const big = await connectClient(port);
    big.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await big.closed;
    await lab.waitForLine(/frame header announces 4294967295 bytes, over the limit of 1048576: closing$/);
    const next = await connectClient(port);
    next.write(frame13(Buffer.from('still there?')));
    await next.waitForText(/still there\?/);
  });

  it('lab 14: pipelined POST /echo requests from a client that never reads the responses: reading stops at 64 KiB queued', async () => {
    const { lab, port, before } = await start('14', ['--quiet']);
    // Large responses (each echoes a 60,000-byte body) fill the client's window after a few hundred requests; from
    // then on the server stops reading (64 KiB of responses queued) and the rest waits in the kernel.
    const body = 'e'.repeat(60_000);
    const request = `POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    const sent = await flood(port, 1500, Buffer.from(request.repeat(16)));
    const grown = expectHealthy(lab, before);
    console.log(
      `lab 14: ${Math.round(sent / request.length)} pipelined POST /echo requests (${(sent / MiB).toFixed(0)} MiB), responses unread, RSS +${(grown / MiB).toFixed(1)} MiB`,
    );
    const next = await connectClient(port);
    next.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await next.waitForLine(/^HTTP\/1\.1 200 OK$/);
  });

  it('labs/lib/guard.ts: a drop on a socket that resetAndDestroy() refuses (a Unix socket here; a TLS one alike) destroys it, never throws', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-guard-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const server = net.createServer();
    onTestFinished(() => {
      server.close();
    });
    const accepted = once(server, 'connection') as Promise<[net.Socket]>;
    server.listen(path.join(dir, 'sock'));
    await once(server, 'listening');
    const peer = net.connect(path.join(dir, 'sock'));
    peer.on('error', () => {});
    onTestFinished(() => {
      peer.destroy();
    });
    peer.pause();
    const [socket] = await accepted;
    socket.on('error', () => {});
    const logged: string[] = [];
    const g = guard(
      socket,
      (line) => logged.push(String(line)),
      { maxQueue: 64 * 1024, idleMs: 0 },
      { name: 'unix' },
    );
    // One write past the limit: resetAndDestroy() throws ERR_INVALID_HANDLE_TYPE for a Unix socket.
    expect(g.send(Buffer.alloc(4 * MiB))).toBe(true);
    expect(socket.destroyed).toBe(true);
    expect(logged).toEqual([
      expect.stringMatching(/^unix dropped: SendQ exceeded: \d+ bytes waiting \(limit 65536\)$/),
    ]);
  });

  /** A WebSocket opening handshake (lab 15), and a masked client frame (key 0: masked, as a client must). */
  const upgrade15 = Buffer.from(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const frame15 = (opcode: number, payload: Buffer) => {
    const short = payload.length < 126;
    const head = Buffer.alloc(short ? 6 : 8); // the last 4 bytes: the masking key, 0
    head[0] = 0x80 | opcode; // FIN
    head[1] = 0x80 | (short ? payload.length : 126); // MASK, and the length (16 bits when 126)
    if (!short) head.writeUInt16BE(payload.length, 2);
    return Buffer.concat([head, payload]);
  };

  it('lab 15: WebSocket frames echoed into a client that never reads: dropped at 256 KiB queued (SendQ exceeded)', async () => {
    const { lab, port, before } = await start('15');
    const frames = Buffer.concat(Array.from({ length: 16 }, () => frame15(0x2, Buffer.alloc(60_000, 'w'))));
    const sent = await flood(port, 1500, frames, upgrade15);
    await lab.waitForLine(/dropped: SendQ exceeded: \d+ bytes waiting \(limit 262144\)$/);
    const grown = expectHealthy(lab, before);
    console.log(
      `lab 15: ${(sent / MiB).toFixed(0)} MiB of frames before the drop, RSS +${(grown / MiB).toFixed(1)} MiB`,
    );
    const next = await connectClient(port);
    next.write(Buffer.concat([upgrade15, frame15(0x1, Buffer.from('still there?'))]));
    await next.waitForText(/still there\?/);
  });

  it('lab 16: a TLS client that sends and never reads the echo stays bounded; the next one is greeted', async () => {
    const lab = spawnLab('16', ['server', '--port', '0']);
    const ca = fs.readFileSync((await lab.waitForLine(/^\[server\] ca: (\S+)$/))[1] as string);
    const { port } = await lab.listening();
    const before = rss(lab.pid);
    const secure = async () => {
      const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca });
      socket.on('error', () => {});
      onTestFinished(() => {
        socket.destroy();
      });
      await once(socket, 'secureConnect');
      return socket;
    };
    const mute = await secure();
    mute.pause();
    const sent = await floodInto(mute, 1500, Buffer.alloc(64 * 1024, 't'));
    const grown = expectHealthy(lab, before);
    console.log(
      `lab 16: ${(sent / MiB).toFixed(0)} MiB over TLS unread, RSS +${(grown / MiB).toFixed(1)} MiB`,
    );
    const next = await secure();
    let got = '';
    next.setEncoding('utf8');
    let asked = false;
    for await (const chunk of next) {
      got += chunk;
      if (got.includes('still there?')) break;
      if (!asked && got.startsWith('hello\r\n')) {
        asked = true;
        next.write('still there?\n');
      }
    }
    expect(got).toBe('hello\r\nstill there?\n');
  });

  // ---- UDP echo --------------------------------------------------------------------------------------------
  /** Sends one UDP datagram with any source address and port, through a raw socket (root only). */
  function spoof(from: string, fromPort: number, to: string, toPort: number, text: string) {
    const script = `
import socket, struct, sys
src, sport, dst, dport, data = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5].encode()
udp = struct.pack('!HHHH', sport, dport, 8 + len(data), 0) + data   # checksum 0: none (allowed on IPv4)
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, socket.IPPROTO_UDP, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + udp, (dst, 0))
`;
    execFileSync('python3', ['-c', script, from, String(fromPort), to, String(toPort), text]);
  }

  async function udpServer(): Promise<{ lab: LabProcess; port: number; before: number }> {
    return start('10');
  }

  async function echoOf(port: number, text: string) {
    const client = await openUdp();
    await client.send(text, port);
    await client.waitForMessages(new RegExp(`^${text}$`));
  }

  it.skipIf(!isRoot || !hasPython)(
    'lab 10: a datagram from source port 0, or from a port below 1024, is not answered and does not kill the server',
    async () => {
      const { lab, port, before } = await udpServer();
      spoof('127.0.0.1', 0, '127.0.0.1', port, 'zero');
      await lab.waitForLine(/"zero" .*not answered: source port 0/);
      spoof('127.0.0.1', 7, '127.0.0.1', port, 'seven');
      await lab.waitForLine(/"seven" .*not answered: source port 7 is below 1024/);
      await echoOf(port, 'after');
      expect(lab.stderr).toEqual([]);
      const grown = expectHealthy(lab, before);
      console.log(`lab 10: source ports 0 and 7 not answered, RSS +${(grown / MiB).toFixed(1)} MiB`);
    },
  );

  it.skipIf(!isRoot || !hasPython)(
    "lab 10: an echo the kernel refuses (to the loopback broadcast, no SO_BROADCAST: EACCES in send's callback) is logged, not thrown",
    async () => {
      const { lab, port, before } = await udpServer();
      // A source the kernel delivers on lo but will not send to: 127.255.255.255 is lo's broadcast address, and
      // a socket without setBroadcast(true) may not send there. The error comes in send()'s callback, not thrown.
      spoof('127.255.255.255', 5000, '127.0.0.1', port, 'broadcast');
      await lab.waitForLine(/echo to 127\.255\.255\.255:5000 failed: EACCES/);
      await echoOf(port, 'after');
      expect(lab.stderr).toEqual([]);
      const grown = expectHealthy(lab, before);
      console.log(`lab 10: a refused echo logged, RSS +${(grown / MiB).toFixed(1)} MiB`);
    },
  );

  it.skipIf(!isRoot || !hasPython)(
    'lab 10: a datagram spoofed from the server itself is not answered: no loop',
    async () => {
      const { lab, port, before } = await udpServer();
      spoof('127.0.0.1', port, '127.0.0.1', port, 'myself');
      await lab.waitForLine(/"myself" .*not answered: it claims to come from this server itself/);
      await echoOf(port, 'next');
      // The next datagram is #2: nothing went round in between.
      await lab.waitForLine(/#2 "next"/);
      expect(lab.matching(/^\[server\] #\d+ /)).toHaveLength(2);
      const grown = expectHealthy(lab, before);
      console.log(`lab 10: a datagram from itself not answered, RSS +${(grown / MiB).toFixed(1)} MiB`);
    },
  );

  it.skipIf(!isRoot || !hasPython)(
    'lab 10: two echo servers pointed at each other stop after 100 answers a second, not 114,000',
    async () => {
      const a = await udpServer();
      const b = await udpServer();
      // One datagram "from" b to a: a answers b, b answers a, ...
      spoof('127.0.0.1', b.port, '127.0.0.1', a.port, 'ping-pong');
      await Promise.race([
        a.lab.waitForLine(/ignored for 10000 ms/),
        b.lab.waitForLine(/ignored for 10000 ms/),
      ]);
      const pingPongs = () => a.lab.matching(/"ping-pong"/).length + b.lab.matching(/"ping-pong"/).length;
      // A probe's own log line marks that each server's earlier lines have all been read (stdout keeps order).
      const probe = async (tag: string) => {
        await echoOf(a.port, `a-${tag}`);
        await echoOf(b.port, `b-${tag}`);
        await Promise.all([
          a.lab.waitForLine(new RegExp(`"a-${tag}"`)),
          b.lab.waitForLine(new RegExp(`"b-${tag}"`)),
        ]);
        return pingPongs();
      };
      // Both still answer a new client; and between two probes (a round trip each) no ping-pong went by.
      const rally = await probe('alive');
      expect(await probe('still')).toBe(rally);
      console.log(`lab 10: the echo loop stopped after ${rally} datagrams`);
      // A burst of 100 each way plus what the buckets refilled while the rally lasted (a fraction of a second):
      // hundreds, where the unguarded pair went on at 114,000 a second.
      expect(rally).toBeLessThan(1000);
      const grownA = expectHealthy(a.lab, a.before);
      const grownB = expectHealthy(b.lab, b.before);
      console.log(
        `lab 10: after the rally, RSS +${(grownA / MiB).toFixed(1)} MiB (a), +${(grownB / MiB).toFixed(1)} MiB (b)`,
      );
    },
  );
});
