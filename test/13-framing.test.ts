// Lab 13: a 'data' event is not a message (粘包 / 拆包); the line and length-prefix framers; the echo server's limits.
import { once } from 'node:events';
import net from 'node:net';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../labs/lib/random.ts';
import {
  busy,
  type LabProcess,
  labFile,
  noTest,
  REPLY_MS,
  STALL_MS,
  STARTUP_MS,
  setWaitDefaults,
  spawnLab,
  type TestHooks,
} from './helpers/lab.ts';
import { refusedPort, stopPeerExchange } from './helpers/net.ts';
import { settleWithin } from './helpers/watch.ts';

// A lab that is up answers in milliseconds: a wait with nothing new for REPLY_MS has stalled (a starter's gap).
// The tests of each part run concurrently (describe.concurrent): the file costs its slowest test, not the sum.
setWaitDefaults({ quiet: REPLY_MS, stalled: STALL_MS });

// The framers come from the lab under test (labs/, or a learner's file when grading), not from a copy.
type Lab13 = typeof import('../labs/13-framing.ts');
const { readFrames, readLines, encodeFrame } = (await import(labFile('13'))) as Lab13;

const MiB = 1024 * 1024;

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** The error a framer throws on these chunks (fails if it throws none). */
async function framingError(items: AsyncIterable<unknown>): Promise<string> {
  try {
    await collect(items);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the framer threw no error');
}

// #region property
// Seeds and message sizes are in the test names, so a failure says how to reproduce it.
const SEEDS = [1, 7, 42, 2026, 31337];

/** Messages for one seed: always an empty one, a 1-byte one and a 1 MiB one, plus random binary ones. */
function messagesFor(seed: number): Buffer<ArrayBufferLike>[] {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const randomBytes = (size: number) => {
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i++) bytes[i] = int(256);
    return bytes;
  };
  const messages: Buffer<ArrayBufferLike>[] = [Buffer.alloc(0), randomBytes(1), randomBytes(MiB)];
  for (let i = 0; i < 20; i++) messages.push(randomBytes(int(3) === 0 ? int(5) : int(3000)));
  // Shuffle, so the big one and the empty one are anywhere in the stream.
  for (let i = messages.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [messages[i], messages[j]] = [messages[j] as Buffer, messages[i] as Buffer];
  }
  return messages;
}

/** Cuts `stream` into chunks: at random points, and always inside every 4-byte header (after its 1st-3rd byte). */
function randomChunks(stream: Buffer, messages: Buffer[], seed: number): Buffer[] {
  const random = seededRandom(seed * 31 + 1);
  const cuts = new Set<number>();
  let at = 0;
  for (const m of messages) {
    cuts.add(at + 1 + Math.floor(random() * 3)); // inside this message's header
    at += 4 + m.length;
  }
  for (let i = 0; i < 200; i++) cuts.add(Math.floor(random() * stream.length));
  const points = [...cuts].filter((c) => c > 0 && c < stream.length).sort((a, b) => a - b);
  return [0, ...points].map((from, i) => stream.subarray(from, points[i] ?? stream.length));
}

const sizesOf = (seed: number) => messagesFor(seed).map((m) => m.length);

describe.concurrent('lab 13: the length-prefix decoder, a seeded property test', () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: messages of ${sizesOf(seed).join(', ')} bytes come out identical and in order, coalesced or cut at random and inside every header`, async () => {
      const messages = messagesFor(seed);
      const stream = Buffer.concat(messages.map((m) => encodeFrame(m)));
      const chunkings = { coalesced: [stream], random: randomChunks(stream, messages, seed) };
      for (const [name, chunks] of Object.entries(chunkings)) {
        const out = await collect(readFrames(chunks, MiB));
        expect(out.length, `${name}: ${chunks.length} chunks`).toBe(messages.length);
        out.forEach((m, i) => {
          expect(m.equals(messages[i] as Buffer), `${name}: message ${i}`).toBe(true);
        });
      }
    });
  }

  it(`seed ${SEEDS[0]}: the same messages one byte at a time (${sizesOf(SEEDS[0] as number).length} messages; the 1 MiB one byte by byte for its first and last 64 KiB) come out identical and in order`, async () => {
    const messages = messagesFor(SEEDS[0] as number);
    const stream = Buffer.concat(messages.map((m) => encodeFrame(m)));
    // The middle of the 1 MiB payload goes in one piece: a million 1-byte chunks would take seconds, and
    // 64 KiB a byte at a time on each side of it already crosses every state the decoder has.
    let at = 0;
    for (const m of messages) {
      if (m.length === MiB) break;
      at += 4 + m.length;
    }
    const middle = { from: at + 4 + 64 * 1024, to: at + 4 + MiB - 64 * 1024 };
    // The same chunks, handed out with a pause for the event loop every 4096 of them: the tests beside this one
    // (they run concurrently) read sockets and keep deadlines, which a second of unbroken decoding would starve.
    async function* bytes() {
      for (let i = 0; i < stream.length; i++) {
        if (i % 4096 === 0) await new Promise(setImmediate);
        if (i === middle.from) {
          yield stream.subarray(middle.from, middle.to);
          i = middle.to - 1;
        } else yield stream.subarray(i, i + 1);
      }
    }
    const out = await collect(readFrames(bytes(), MiB));
    expect(out.map((m) => m.length)).toEqual(messages.map((m) => m.length));
    out.forEach((m, i) => {
      expect(m.equals(messages[i] as Buffer), `message ${i}`).toBe(true);
    });
  });
});
// #endregion property

describe.concurrent('lab 13: the framers and their errors', () => {
  it('a header split across chunks is read once all four bytes are there; an empty message is a message', async () => {
    const frame = encodeFrame(Buffer.from('hello'));
    expect([...frame.subarray(0, 4)]).toEqual([0, 0, 0, 5]);
    const parts = [frame.subarray(0, 1), frame.subarray(1, 3), frame.subarray(3, 6), frame.subarray(6)];
    expect((await collect(readFrames(parts, 100))).map(String)).toEqual(['hello']);
    const empties = Buffer.concat([encodeFrame(Buffer.alloc(0)), encodeFrame(Buffer.alloc(0))]);
    expect((await collect(readFrames([empties], 100))).map((m) => m.length)).toEqual([0, 0]);
  });

  it('a header announcing more than the limit is an error at once, before any payload byte is buffered', async () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(11);
    // Only the header: the decoder must not wait for 11 bytes that would push it over its limit.
    expect(await framingError(readFrames([header], 10))).toBe(
      'frame header announces 11 bytes, over the limit of 10',
    );
    expect((await collect(readFrames([encodeFrame(Buffer.alloc(10))], 10))).length).toBe(1);
  });

  it('a stream that ends inside a frame, in its header or its payload, is an error, not a lost message', async () => {
    const frame = encodeFrame(Buffer.from('0123456789'));
    expect(await framingError(readFrames([frame.subarray(0, 7)], 100))).toBe(
      'the stream ended inside a frame (3 of 10 payload bytes)',
    );
    expect(await framingError(readFrames([frame.subarray(0, 2)], 100))).toBe(
      'the stream ended inside a frame header (2 of 4 bytes)',
    );
  });

  it('readLines gives whole lines whatever the chunking, LF or CRLF, a UTF-8 character split across chunks included', async () => {
    const bytes = Buffer.from('héllo\r\nworld\n你好\r\n');
    const oneByOne = [...bytes].map((b) => Buffer.from([b]));
    expect(await collect(readLines(oneByOne, 100))).toEqual(['héllo', 'world', '你好']);
    expect(await collect(readLines([bytes], 100))).toEqual(['héllo', 'world', '你好']);
  });

  it('readLines: a line over the limit is an error as soon as the limit is passed, without waiting for its end', async () => {
    expect(await collect(readLines([Buffer.from(`${'x'.repeat(8)}\r\n`)], 8))).toEqual(['x'.repeat(8)]);
    expect(await framingError(readLines([Buffer.from(`${'x'.repeat(9)}\n`)], 8))).toBe(
      'line longer than 8 bytes',
    );
    // No '\n' yet, 10 bytes buffered with a limit of 8: the error comes now, the buffer does not grow.
    const endless = (async function* () {
      for (;;) yield Buffer.from('xxxxx');
    })();
    expect(await framingError(readLines(endless, 8))).toBe('line longer than 8 bytes');
    expect(await framingError(readLines([Buffer.from('bye')], 8))).toBe(
      "the stream ended inside a line (3 bytes and no '\\n')",
    );
  });
});

describe.concurrent('lab 13: the demo', () => {
  // One run of the demo, read by both tests (it takes about a second to start); each waits for its exit, with the
  // file's deadline (a demo that stalls fails both tests, not the hook), and reads the output after it.
  let demo: LabProcess;
  beforeAll(() => {
    demo = spawnLab(noTest, '13');
  });

  it("shows 粘包 and 拆包 on a real connection: 3 writes arrive as 1 'data', 1 write as several; the framers see the messages", async () => {
    expect(await demo.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    const out = demo.output();
    expect(out).toContain(
      `[server] 3 write() calls arrived as 1 'data' event(s): "alice\\r\\nhello\\r\\nbyebye\\r\\n"`,
    );
    expect(out).toContain(`[lines] readLines() sees 3 lines: "alice", "hello", "byebye"`);
    // Splitting: several chunks that add up to the one write (their sizes are Node's read size, not ours).
    const [, total, count, sizes] = out.match(
      /\[server\] 1 write\(\) call of (\d+) bytes arrived as (\d+) 'data' events: ([\d, ]+)/,
    ) as RegExpMatchArray;
    const chunkSizes = (sizes as string).split(', ').map(Number);
    expect(Number(count)).toBeGreaterThan(1);
    expect(chunkSizes.length).toBe(Number(count));
    expect(chunkSizes.reduce((a, b) => a + b, 0)).toBe(Number(total));
    expect(out).toContain('[frames] readFrames() sees 1 message: (150000 bytes)');
    expect(out).toContain(`[server] 9 write() calls arrived as 9 'data' events: 1, 1, 1, 1, 1, 1, 1, 1, 1`);
    expect(out).toContain('[frames] readFrames() sees 1 message: "hello"');
    expect(demo.matching(/^\[alice\] < /).map((m) => m.input)).toEqual([
      '[alice] < "hello"',
      '[alice] < "你好"',
      '[alice] < ""',
    ]);
    expect(demo.matching(/over the limit of 1048576: closing$/)).toHaveLength(1);
    expect(demo.matching(/the stream ended inside a frame \(3 of 10 payload bytes\): closing$/)).toHaveLength(
      1,
    );
    expect(out).toContain('[bob] < "still up?"');
    expect(out).toContain('[lines] a 5000-byte line, limit 4096: line longer than 4096 bytes');
    expect(demo.stderr).toEqual([]);
  });

  it("erratum (note 002): data.replace(/\\r\\n/, '') on each 'data' takes a chunk for a message: three lines become one name", async () => {
    await demo.waitForExit();
    // The notes' chat would take "alicehello\r\nbyebye\r\n" as the nickname and never see 'byebye'.
    expect(demo.output()).toContain(
      `[notes] replace(/\\r\\n/, '') per 'data' sees 1 message(s): "alicehello\\r\\nbyebye\\r\\n"`,
    );
    expect(demo.output()).toMatch(/\[notes\] one message per 'data' would be ([2-9]|\d\d+) messages/);
  });
});

describe.concurrent('lab 13: the echo server', () => {
  // One server for these tests, which run at the same time on connections of their own (each finds its lines by
  // its own client port): limits small enough to reach, large enough for a 1 MiB message. The SIGTERM test stops
  // a server of its own.
  const serverArgs = ['server', '--port', '0', '--max-size', String(MiB), '--idle-ms', '1500'];
  let server: LabProcess;
  let port: number;
  beforeAll(async () => {
    server = spawnLab(noTest, '13', serverArgs);
    port = (await server.listening()).port;
  });

  /** A raw connection (no text decoding: frames are bytes) whose frames are read into an array; closed when `t` ends. */
  async function frameClient(t: TestHooks, to = port) {
    const socket = net.connect({ port: to, host: '127.0.0.1' });
    socket.on('error', () => {}); // a reset is how the server ends some of these connections: a close, below
    t.onTestFinished(() => {
      socket.destroy();
    });
    await settleWithin(once(socket, 'connect'), REPLY_MS, `connecting to the echo server on port ${to}`);
    const closing = once(socket, 'close');
    /** The server closes this connection within `ms` (a deadline from the server's own limits). */
    const closed = (ms: number, what: string) => settleWithin(closing, ms, `the server closing ${what}`);
    const got: Buffer[] = [];
    let wake = () => {};
    let readerDone = false; // the stream of frames ended (the server's FIN, a reset): no more can come
    let lastByte = Date.now();
    socket.on('data', () => {
      lastByte = Date.now();
    });
    (async () => {
      try {
        for await (const m of readFrames(socket, 2 * MiB)) {
          got.push(m);
          wake();
        }
      } catch {
        // a reset is a close too
      }
      readerDone = true;
      wake();
    })();
    /**
     * The first n frames, or fewer once no more can come (the caller's assertion shows which); fails once no byte
     * has come for REPLY_MS (an echo on loopback takes milliseconds).
     */
    const until = async (n: number) => {
      while (got.length < n && !socket.destroyed && !readerDone) {
        const silent = lastByte + REPLY_MS - Date.now();
        if (silent <= 0)
          throw new Error(`${got.length} of ${n} frames echoed, then nothing for ${REPLY_MS} ms`);
        await new Promise<void>((r) => {
          const timer = setTimeout(r, silent);
          wake = () => {
            clearTimeout(timer);
            r();
          };
        });
      }
      return got;
    };
    // The client port names the connection in the server's lines (the socket forgets it once closed).
    return { socket, localPort: socket.localPort as number, got, until, closed };
  }

  /** The server's lines about one client's connection (`127.0.0.1:PORT ...`). */
  const about = (localPort: number, rest: string) => new RegExp(`127\\.0\\.0\\.1:${localPort} ${rest}`);
  /**
   * How to wait for the shared server's line about a connection the client has seen answered or closed: the
   * line is due within REPLY_MS (the other tests' lines keep the server from going quiet), and another last
   * line about the same connection (closed, idle, an error) first is a failure at once.
   */
  const dueAbout = (localPort: number) => ({
    within: REPLY_MS,
    failOn: about(localPort, '(closed the connection after|idle for|.*: closing$)'),
  });

  it('echoes each message back as one frame, however the client cut them: 1 MiB, empty, binary', async (t) => {
    const client = await frameClient(t);
    const random = seededRandom(13);
    const messages = [
      Buffer.from('hello'),
      Buffer.alloc(0),
      Buffer.alloc(MiB, 0xab),
      Buffer.from([0, 1, 2, 255, 0x0a, 0x0d]),
    ];
    const stream = Buffer.concat(messages.map((m) => encodeFrame(m)));
    for (let at = 0; at < stream.length; ) {
      const size = 1 + Math.floor(random() * (random() < 0.5 ? 5 : 100_000));
      client.socket.write(stream.subarray(at, at + size));
      at += size;
    }
    const got = await client.until(messages.length);
    expect(got.map((m) => m.length)).toEqual([5, 0, MiB, 6]);
    for (const [i, m] of got.entries()) expect(m.equals(messages[i] as Buffer)).toBe(true);
    const key = `127.0.0.1:${client.localPort}`;
    await server.waitForLine(new RegExp(`${key} message 4: \\(6 bytes\\)$`), dueAbout(client.localPort));
    expect(server.matching(new RegExp(`${key} message \\d+: `))).toHaveLength(4);
  });

  it('a header over --max-size closes that connection only, on the header alone; the server keeps serving', async (t) => {
    const bad = await frameClient(t);
    const badLine = about(
      bad.localPort,
      'frame header announces 1048577 bytes, over the limit of 1048576: closing$',
    );
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MiB + 1);
    bad.socket.write(header);
    // Closed on the header alone: the server does not wait for (or buffer) the bytes it announced.
    await bad.closed(REPLY_MS, 'a connection whose header is over the limit');
    await server.waitForLine(badLine, dueAbout(bad.localPort));
    const good = await frameClient(t);
    good.socket.write(encodeFrame(Buffer.from('0123456789')));
    expect((await good.until(1)).map(String)).toEqual(['0123456789']);
    // No other test here sends a header over the limit: this one line is the server's only one.
    expect(server.matching(/over the limit/)).toHaveLength(1);
    expect(server.matching(badLine)).toHaveLength(1);
  });

  it('a stream that ends inside a frame is one clear line on the server and a closed connection', async (t) => {
    const client = await frameClient(t);
    const line = about(
      client.localPort,
      'the stream ended inside a frame \\(3 of 10 payload bytes\\): closing$',
    );
    client.socket.end(encodeFrame(Buffer.from('0123456789')).subarray(0, 7));
    await client.closed(REPLY_MS, 'a stream that ended inside a frame');
    await server.waitForLine(line, dueAbout(client.localPort));
  });

  it('a peer that sends nothing for --idle-ms is closed', async (t) => {
    // A server of its own with a short idle limit (the shared one's 1500 ms leaves the 1 MiB byte-by-byte test
    // room), stretched with the load per core. Not with busyNow(): grading's own tests put the CPU pressure up
    // to 4 times on an idle 2-core machine, and the limit has no margin to keep (the client sends nothing).
    const idleMs = Math.round(300 * busy);
    const own = spawnLab(t, '13', ['server', '--port', '0', '--idle-ms', String(idleMs)]);
    const client = await frameClient(t, (await own.listening()).port);
    const { localPort } = client;
    await client.closed(idleMs + REPLY_MS, `an idle connection (--idle-ms ${idleMs})`);
    await own.waitForLine(about(localPort, `idle for ${idleMs} ms: closing$`), dueAbout(localPort));
  });

  it(
    'a message that waits in the socket while the server is stopped past --idle-ms is still echoed: the overdue timer decides after reading it',
    async (t) => {
      // The peer, a process of its own (stopPeerExchange), stops the server as the first echo comes, before its
      // idle limit runs out, writes a second message and its FIN into the stopped server's socket, and holds it
      // past the limit: when the server goes on, its timer is overdue with that message unread.
      const idleMs = Math.round(600 * busy);
      const own = spawnLab(t, '13', ['server', '--port', '0', '--idle-ms', String(idleMs)]);
      const { port: ownPort } = await own.listening();
      const frames = ['first', 'second'].map((m) => encodeFrame(Buffer.from(m)));
      const [first, second] = frames as [Buffer, Buffer];
      const got = await stopPeerExchange(t, own, ownPort, { first, second, holdMs: idleMs + 50 });
      expect(Buffer.from(got, 'latin1')).toEqual(Buffer.concat(frames));
      expect(own.matching(/idle for/)).toEqual([]);
    },
    // The last resort, above the waits' own deadlines.
    Math.round(20_000 * busy),
  );

  it('an independent peer, python3 with struct.pack(">I"), gets its messages back', async () => {
    // Each recv() waits REPLY_MS at most (socket.timeout): an echo that does not come fails in about a second.
    const script = `
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", ${port}), timeout=${REPLY_MS / 1000})
sent = [b"from python", b"", bytes(range(256)), "你好".encode()]
for m in sent:
    s.sendall(struct.pack(">I", len(m)) + m)
buf, got = b"", []
while len(got) < len(sent):
    try:
        data = s.recv(65536)
    except socket.timeout:
        sys.exit("%d of %d messages echoed, then nothing for ${REPLY_MS} ms" % (len(got), len(sent)))
    if not data: sys.exit("closed early")
    buf += data
    while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
        n = struct.unpack(">I", buf[:4])[0]
        got.append(buf[4:4 + n]); buf = buf[4 + n:]
print("same" if got == sent else "different", [len(m) for m in got])
`;
    // The last resort, should python itself hang: its start-up, then the echo's own deadline, twice over.
    const { stdout, stderr, exitCode } = await execa('python3', ['-c', script], {
      reject: false,
      timeout: STARTUP_MS + 2 * REPLY_MS,
    });
    expect(exitCode, stderr).toBe(0);
    expect(stdout).toBe('same [11, 0, 256, 6]');
  });

  it('the client role sends its arguments as frames and prints each echo; with no arguments, stdin lines', async (t) => {
    const words = spawnLab(t, '13', ['client', '--port', String(port), 'hello', '世界']);
    const stdin = spawnLab(t, '13', ['client', '--port', String(port)]);
    await stdin.waitForLine(/each line you type is sent as one frame/);
    stdin.write('one\ntwo\n');
    stdin.endInput();
    expect(await words.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(words.matching(/^\[client\] < /).map((m) => m.input)).toEqual([
      '[client] < "hello"',
      '[client] < "世界"',
    ]);
    expect(await stdin.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(stdin.matching(/^\[client\] < /).map((m) => m.input)).toEqual([
      '[client] < "one"',
      '[client] < "two"',
    ]);
  });

  it('bad input is one line on stderr: a bad flag value exits 2, a client with no server exits 1', async (t) => {
    const freePort = await refusedPort(t); // nothing listens there
    const refused = spawnLab(t, '13', ['client', '--port', String(freePort), 'x']);
    const bad = spawnLab(t, '13', ['server', '--max-size', 'big']);
    expect(await bad.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
    expect(bad.stderr).toEqual([
      "error: --max-size must be a whole number from 0 to 9007199254740991, got 'big'",
    ]);
    expect(await refused.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(refused.stderr).toEqual([expect.stringMatching(/^\[client\] error: ECONNREFUSED /)]);
  });

  it('SIGTERM stops the server with exit code 0', async (t) => {
    // A server of its own: the shared one is still serving the tests beside this one.
    const own = spawnLab(t, '13', serverArgs);
    const ownPort = (await own.listening()).port;
    // It has served a connection when it is stopped: one that opened and ended.
    const peer = net.connect({ port: ownPort, host: '127.0.0.1' });
    peer.on('error', () => {});
    t.onTestFinished(() => {
      peer.destroy();
    });
    await settleWithin(once(peer, 'connect'), REPLY_MS, `connecting to the server on port ${ownPort}`);
    peer.end();
    await own.waitForLine(
      new RegExp(`127\\.0\\.0\\.1:${peer.localPort} closed the connection after 0 message`),
    );
    own.stop();
    expect(await own.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(own.stderr).toEqual([]);
    // Nor has the shared server written to stderr, whatever the tests beside this one have sent it so far.
    expect(server.stderr).toEqual([]);
  });
});
