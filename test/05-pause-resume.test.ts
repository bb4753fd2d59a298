// Lab 05: pauseOnConnect, resume() on a signal, flowing vs paused mode, and a writer that meets a paused reader
// (docs/05-pause-resume.md).
import type net from 'node:net';
import vm from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { type LabProcess, REPLY_MS, STALL_MS, setWaitDefaults, spawnLab } from './helpers/lab.ts';
import { connectClient, refusedPort } from './helpers/net.ts';
import { expectInOrder } from './helpers/order.ts';

// The lab's only timer is the demo's 150 ms idle timeout: a wait fails once the lab has said nothing new for
// REPLY_MS, so an untouched starter (a paused socket that is never resumed) fails in seconds.
setWaitDefaults({ quiet: REPLY_MS, stalled: STALL_MS });

// The demo runs once; the tests that read its timeline share it (started in beforeAll, outside any test, so
// afterAll cleans it up).
let demoRun: Promise<LabProcess> | undefined;
function demo(): Promise<LabProcess> {
  if (!demoRun) throw new Error('the demo is started in beforeAll');
  return demoRun;
}
beforeAll(() => {
  const lab = spawnLab('05');
  demoRun = lab.waitForExit().then(() => lab);
  demoRun.catch(() => {}); // each test that reads it reports the failure
});

/** Five writes, each its own write() call; the text mixes ASCII and multi-byte UTF-8 to catch any reordering. */
const writes = ['line 1\r\n', 'zwei 2\r\n', 'трёх 3\r\n', '四 4\r\n', 'line 5 ✓\r\n'];

async function writeAll(socket: net.Socket, parts: string[]): Promise<void> {
  for (const [i, part] of parts.entries()) {
    // The last write's callback: every byte has been handed to the kernel.
    if (i < parts.length - 1) socket.write(part);
    else
      await new Promise<void>((resolve, reject) =>
        socket.write(part, (err) => (err ? reject(err) : resolve())),
      );
  }
}

describe.concurrent('lab 05: pause and resume', () => {
  it('plays the demo: flowing, paused mode, a flood into a paused server, and note 002, then exits 0', async () => {
    const lab = await demo();
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    const order = [
      /^\[server\] listening on 127\.0\.0\.1:\d+$/,
      /^\[demo\] part 1: /,
      /^\[server\] go \(flowing mode\): 0 bytes had been read; readableFlowing=true/,
      /^\[server\] 'data' #1: 40 bytes$/,
      /^\[demo\] part 2: /,
      /^\[server\] go \(paused mode\): 0 bytes had been read; readableFlowing=false, 'readable' listeners=1$/,
      /^\[server\] read\(\) #1: 40 bytes$/,
      /^\[demo\] part 3: /,
      /^\[client\] write\(\) returned false after \d+ writes/,
      /^\[client\] 'drain': /,
      /^\[demo\] part 4: /,
      /^\[demo\] done$/,
    ];
    expectInOrder(lab.lines, order);
    // Three connections, each resumed once, each read nothing before its "go" and got its whole echo back.
    expect(lab.matching(/^\[server\] go \(\w+ mode\): 0 bytes had been read/)).toHaveLength(3);
    expect(lab.matching(/^\[client\] echo complete and in order: \d+ bytes$/)).toHaveLength(3);
    expect(lab.matching(/^\[client\] received: line \d$/)).toHaveLength(10);
    expect(lab.stderr).toEqual([]);
  });

  it("a paused connection reads nothing until 'go'; then five writes arrive complete and in order, byte for byte", async (t) => {
    const server = spawnLab(t, '05', ['server', '--port', '0']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    await server.waitForLine(
      /connection from 127\.0\.0\.1:\d+: paused \(pauseOnConnect\), nothing is read yet/,
    );
    await writeAll(client.socket, writes);
    server.write('go\n');
    const [go] = await server.waitForLines(
      /^\[server\] go \(flowing mode\): (\d+) bytes had been read; (.*)$/,
      1,
    );
    // Everything the client wrote was waiting (in the kernel), not read: Node had not touched it.
    expect(go?.[1]).toBe('0');
    expect(go?.[2]).toBe("readableFlowing=true, 'readable' listeners=0");
    const sent = writes.join('');
    await client.waitForText(/line 5 ✓\r\n$/);
    expect(client.raw()).toBe(sent);
    client.socket.end();
    const [fin] = await server.waitForLines(/client sent FIN: (\d+) bytes in (\d+) 'data' event\(s\)/, 1);
    expect(Number(fin?.[1])).toBe(Buffer.byteLength(sent));
    const events = Number(fin?.[2]);
    // Five writes that waited together come out in fewer 'data' events (usually one): TCP keeps no write boundaries.
    expect(events).toBeGreaterThanOrEqual(1);
    expect(events).toBeLessThanOrEqual(writes.length);
    expect(server.matching(/'data' #\d+: \d+ bytes/)).toHaveLength(Math.min(events, 3));
    expect(server.matching(/read\(\) #/)).toHaveLength(0);
    // The go line came before the first 'data' line.
    expectInOrder(server.lines, [/\] go \(/, /'data' #1:/]);
  });

  it("--mode paused reads with 'readable' + read(): the same bytes arrive, through read() and no 'data' events", async (t) => {
    const server = spawnLab(t, '05', ['server', '--port', '0', '--mode', 'paused']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    await server.waitForLine(/paused \(pauseOnConnect\)/);
    await writeAll(client.socket, writes);
    server.write('go\n');
    const [go] = await server.waitForLines(
      /^\[server\] go \(paused mode\): (\d+) bytes had been read; (.*)$/,
      1,
    );
    expect(go?.[1]).toBe('0');
    // Paused mode: not flowing, and a 'readable' listener that pulls with read().
    expect(go?.[2]).toBe("readableFlowing=false, 'readable' listeners=1");
    await client.waitForText(/line 5 ✓\r\n$/);
    expect(client.raw()).toBe(writes.join(''));
    client.socket.end();
    const [fin] = await server.waitForLines(/client sent FIN: (\d+) bytes in (\d+) read\(\) call\(s\)/, 1);
    expect(Number(fin?.[1])).toBe(Buffer.byteLength(writes.join('')));
    expect(server.matching(/read\(\) #\d+: \d+ bytes/)).toHaveLength(Math.min(Number(fin?.[2]), 3));
    expect(server.matching(/'data' #/)).toHaveLength(0);
  });

  it("while the server is paused the client's write() returns false; after 'go' comes 'drain' and every byte arrives", async (t) => {
    const server = spawnLab(t, '05', ['server', '--port', '0']);
    const { port } = await server.listening();
    const client = spawnLab(t, '05', ['client', '--port', String(port), '--flood']);
    await server.waitForLine(/paused \(pauseOnConnect\)/);
    const [full] = await client.waitForLines(
      /write\(\) returned false after (\d+) writes \((\d+) bytes\): Node still holds (\d+) \(writableLength\), over writableHighWaterMark (\d+); the kernel took the rest/,
      1,
    );
    const [, writes, total, queued, hwm] = (full as RegExpMatchArray).map(Number) as number[];
    expect(total).toBe((writes as number) * 64 * 1024);
    // Node queues only past the high-water mark; what the paused server's kernel buffers took is the rest.
    expect(queued).toBeGreaterThanOrEqual(hwm as number);
    expect(queued).toBeLessThan(total as number);
    // 'drain' cannot come while nobody reads.
    expect(client.matching(/'drain'/)).toHaveLength(0);
    server.write('go\n');
    await client.waitForLine(/'drain': Node's queue went to the kernel \(writableLength 0\)/);
    expect(await client.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(client.matching(/echo complete and in order: (\d+) bytes/).map((m) => Number(m[1]))).toEqual([
      total as number,
    ]);
    expect(client.matching(/'drain'/)).toHaveLength(1);
    const [fin] = await server.waitForLines(/client sent FIN: (\d+) bytes/, 1);
    expect(Number(fin?.[1])).toBe(total as number);
  });

  it("'go' resumes only the connections waiting at that moment; a later connection waits for its own 'go'", async (t) => {
    const server = spawnLab(t, '05', ['server', '--port', '0']);
    const { port } = await server.listening();
    server.write('go\n');
    await server.waitForLine(/go: no connection is waiting/);
    const a = await connectClient(t, port);
    await server.waitForLines(/paused \(pauseOnConnect\)/, 1);
    const b = await connectClient(t, port);
    await server.waitForLines(/paused \(pauseOnConnect\)/, 2);
    await writeAll(a.socket, ['to a\n']);
    await writeAll(b.socket, ['to b\n']);
    server.write('go\n');
    await server.waitForLines(/go \(flowing mode\): 0 bytes had been read/, 2);
    await a.waitForLine(/^to a$/);
    await b.waitForLine(/^to b$/);
    const c = await connectClient(t, port);
    await server.waitForLines(/paused \(pauseOnConnect\)/, 3);
    await writeAll(c.socket, ['to c\n']);
    server.write('go\n');
    await server.waitForLines(/go \(flowing mode\)/, 3);
    await c.waitForLine(/^to c$/);
    await server.waitForLines(/go \(flowing mode\)/, 3); // its log line may trail the socket event above
    expect(server.matching(/go \(flowing mode\)/)).toHaveLength(3);
  });

  it("erratum (note 002): pipe() on every 'timeout' pipes again after each idle spell, so later bytes arrive twice", async () => {
    const lab = await demo();
    const part4 = lab.lines.slice(lab.lines.findIndex((l) => l.startsWith('[demo] part 4')));
    expect(part4.filter((l) => l.startsWith('[sink]'))).toEqual([
      '[sink] "first\\n"',
      '[sink] "second\\n"',
      '[sink] "third\\n"',
      '[sink] "third\\n"',
    ]);
    // 'timeout' fired once per idle spell: twice before "third", and each one added a pipe.
    const timeouts = part4.filter((l) => /^\[server\] 'timeout' #\d+: pipe\(\) into the sink$/.test(l));
    expect(timeouts).toEqual([
      "[server] 'timeout' #1: pipe() into the sink",
      "[server] 'timeout' #2: pipe() into the sink",
    ]);
    // The held "first" waited for the first 'timeout'; "third" came after the second.
    expectInOrder(part4, [/'timeout' #1/, /"first/, /"second/, /'timeout' #2/, /"third/]);
    expect(part4).toContain(
      '[demo] "third" reached the sink 2 times: once per pipe(), and pipe() ran once per \'timeout\'',
    );
  });

  it('erratum (note 001): its pause example declares const net twice, a SyntaxError before any line runs', () => {
    const noteCode = [
      "const net = require('net');",
      "const net = require('net');",
      "const path = require('path');",
      'let server = net.createServer(function (socket) { socket.pause(); });',
    ].join('\n');
    expect(() => new vm.Script(noteCode)).toThrow(SyntaxError);
    expect(() => new vm.Script(noteCode)).toThrow("Identifier 'net' has already been declared");
    // With one declaration it compiles.
    expect(() => new vm.Script(noteCode.split('\n').slice(1).join('\n'))).not.toThrow();
  });

  it('stops cleanly on SIGTERM with exit code 0, closing connections that still wait for go', async (t) => {
    const server = spawnLab(t, '05', ['server', '--port', '0']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    await server.waitForLine(/paused \(pauseOnConnect\)/);
    expect(await server.stop()).toEqual({ exitCode: 0, signal: undefined });
    await client.waitForClose();
    expect(server.matching(/shutting down, closing 1 connection\(s\)/)).toHaveLength(1);
  });

  it('a bad --mode is one line on stderr and exit code 2; a client with no server is one line and exit code 1', async (t) => {
    const bad = spawnLab(t, '05', ['server', '--mode', 'fast']);
    expect(await bad.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
    expect(bad.stderr).toEqual(["error: --mode must be flowing or paused, got 'fast'"]);
    const port = await refusedPort(t); // nothing listens there
    const client = spawnLab(t, '05', ['client', '--port', String(port)]);
    expect(await client.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(client.stderr).toHaveLength(1);
    expect(client.stderr[0]).toMatch(/^\[client\] error: ECONNREFUSED 127\.0\.0\.1:\d+: connection refused/);
  });
});
