// Lab 06: pipe into a file with a trailer, unpipe, echo with pipe, backpressure measured, pipeline's errors
// (docs/06-pipe-backpressure.md).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type LabProcess,
  REPLY_MS,
  root,
  STALL_MS,
  setWaitDefaults,
  spawnLab,
  type TestHooks,
} from './helpers/lab.ts';
import { connectClient } from './helpers/net.ts';
import { expectInOrder } from './helpers/order.ts';

// No step of this lab waits on a timer: a wait fails once the lab has said nothing new for REPLY_MS.
setWaitDefaults({ quiet: REPLY_MS, stalled: STALL_MS });

const CHUNK = 64 * 1024;
const MiB = 1024 * 1024;

/** The lab's fresh temp dir, from its `files go to DIR` line; removed when the test ends. */
async function filesDir(t: TestHooks, lab: LabProcess): Promise<string> {
  const [, dir = ''] = await lab.waitForLine(/files go to (\S+)$/);
  // Under the OS temp dir and never inside the repository.
  expect(dir.startsWith(path.join(os.tmpdir(), 'node-net-06-'))).toBe(true);
  expect(path.relative(root, dir).startsWith('..')).toBe(true);
  t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What a sender printed: peak writableLength (and bufferSize, bytesWritten then), falses, drains. */
async function senderReport(client: LabProcess, policy: string) {
  const [peak] = await client.waitForLines(
    new RegExp(
      `^\\[client\\] ${policy}: peak writableLength (\\d+) \\(bufferSize (\\d+)\\), bytesWritten at that moment (\\d+)$`,
    ),
    1,
  );
  const [counts] = await client.waitForLines(
    new RegExp(
      `^\\[client\\] ${policy}: (?:write\\(\\) returned false (\\d+) time\\(s\\), )?'drain' fired (\\d+) time\\(s\\), writableLength at 'drain': (\\d+)$`,
    ),
    1,
  );
  const [, hwm] = (await client.waitForLine(/writableHighWaterMark (\d+)\)$/)).map(Number);
  return {
    peak: Number(peak?.[1]),
    bufferSize: Number(peak?.[2]),
    bytesWritten: Number(peak?.[3]),
    falses: counts?.[1] === undefined ? undefined : Number(counts[1]),
    drains: Number(counts?.[2]),
    queuedAtDrain: Number(counts?.[3]),
    hwm: hwm as number,
  };
}

/** A held receiver (pauseOnConnect until 'go') and one sender with the given flags; resumes it when the sender waits. */
async function runSender(t: TestHooks, flags: string[]): Promise<LabProcess> {
  const server = spawnLab(t, '06', ['server', '--port', '0', '--mode', 'hold']);
  const { port } = await server.listening();
  const client = spawnLab(t, '06', ['client', '--port', String(port), ...flags]);
  await server.waitForLine(/held unread \(pauseOnConnect\) until go/);
  await client.waitForLine(/: waiting for the receiver; writableLength \d+$/);
  server.write('go\n');
  expect(await client.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
  // Every byte reached the receiver, whatever the policy.
  const [fin] = await server.waitForLines(/sent FIN after (\d+) bytes/, 1);
  expect(Number(fin?.[1])).toBe(32 * MiB);
  expect(client.stderr).toEqual([]);
  return client;
}

// Each sender runs once (two processes, a second or two under load); the tests that read its report share it.
const runs = new Map<string, Promise<LabProcess>>();
// The processes belong to the first test that asks for the run: the others await that same run.
function sendInto(t: TestHooks, flags: string[]): Promise<LabProcess> {
  const key = flags.join(' ');
  let run = runs.get(key);
  if (!run) {
    run = runSender(t, flags);
    runs.set(key, run);
  }
  return run;
}

describe.concurrent('lab 06: pipe, unpipe and backpressure', () => {
  it('plays the demo: file and trailer, unpipe, echo, three senders, pipe vs pipeline errors; exits 0 and removes its files', async (t) => {
    const lab = spawnLab(t, '06');
    // Registered first, so a demo that fails half-way leaves no directory behind; it must remove its own.
    const [, dir = ''] = await lab.waitForLine(/^\[server\] files go to (\S+)$/);
    expect(dir.startsWith(path.join(os.tmpdir(), 'node-net-06-'))).toBe(true);
    t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    const order = [
      /^\[server\] files go to \S+$/,
      /^\[server\] listening on 127\.0\.0\.1:\d+$/,
      /^\[demo\] conn-1\.txt holds "hello\\r\\nworld\\r\\nover\\n"$/,
      /^\[server\] 'unpipe' line: unpipe\(\), readableFlowing=false; resume\(\) and drop the rest$/,
      /^\[server\] client sent FIN: 6 bytes came after unpipe\(\) and were not written$/,
      /^\[demo\] conn-2\.txt holds "before\\nunpipe\\nbye bye\\n"$/,
      /^\[demo\] removed \S+$/,
      /^\[client\] received: ping$/,
      /^\[client\] received: pong$/,
      /^\[client\] polite: peak writableLength/,
      /^\[client\] pipeline: peak writableLength/,
      /^\[client\] naive: peak writableLength/,
      /^\[demo\] peak queued bytes: naive \d+, polite \d+, pipeline \d+/,
      /^\[demo\] pipe\(\): the socket failed \((ECONNRESET|EPIPE)\); source destroyed: false$/,
      /^\[demo\] pipeline\(\): rejected once \((ECONNRESET|EPIPE)\); source destroyed: true$/,
      /^\[demo\] done$/,
    ];
    expectInOrder(lab.lines, order);
    expect(lab.matching(/^\[server\] saved conn-\d\.txt/)).toHaveLength(2);
    expect(lab.matching(/^\[server\] go: reading/)).toHaveLength(3);
    expect(fs.existsSync(dir)).toBe(false);
    expect(lab.stderr).toEqual([]);
  });

  it("socket.pipe(file, { end: false }) leaves the file open at the client's FIN: it holds every byte, then the trailer", async (t) => {
    const server = spawnLab(t, '06', ['server', '--port', '0']);
    const dir = await filesDir(t, server);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    // Bytes that are not text, to compare byte for byte.
    const parts = [Buffer.from('hello\r\n'), Buffer.from([0, 1, 2, 0xfe, 0xff]), Buffer.alloc(200_000, 'z')];
    for (const part of parts) client.socket.write(part);
    client.socket.end();
    const [saved] = await server.waitForLines(
      /saved (conn-\d+\.txt): (\d+) bytes \((\d+) read from the client\)/,
      1,
    );
    const want = Buffer.concat([...parts, Buffer.from('over\n')]);
    const file = fs.readFileSync(path.join(dir, saved?.[1] as string));
    expect(file.equals(want)).toBe(true);
    expect(Number(saved?.[2])).toBe(want.length);
    expect(Number(saved?.[3])).toBe(want.length - 'over\n'.length);
    await client.waitForClose();
  });

  it('unpipe() stops the flow: bytes sent after it never reach the file, and the socket is read on (it would stall paused)', async (t) => {
    const server = spawnLab(t, '06', ['server', '--port', '0']);
    const dir = await filesDir(t, server);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    client.write('before\n');
    client.write('unpipe\n');
    // Ordered by events: only after the server has unpiped (and closed the file) does more data go out.
    const [line] = await server.waitForLines(/'unpipe' line: unpipe\(\), readableFlowing=(\w+)/, 1);
    expect(line?.[1]).toBe('false');
    const [saved] = await server.waitForLines(/saved (conn-\d+\.txt): (\d+) bytes/, 1);
    client.write('after\n');
    client.write('and more after\n');
    client.socket.end();
    const [dropped] = await server.waitForLines(
      /client sent FIN: (\d+) bytes came after unpipe\(\) and were not written/,
      1,
    );
    expect(Number(dropped?.[1])).toBe('after\nand more after\n'.length);
    const text = fs.readFileSync(path.join(dir, saved?.[1] as string), 'utf8');
    expect(text).toBe('before\nunpipe\nbye bye\n');
    expect(text).not.toContain('after');
    await client.waitForClose();
  });

  it('socket.pipe(socket) echoes every byte back and ends our side when the client ends', async (t) => {
    const server = spawnLab(t, '06', ['server', '--port', '0', '--mode', 'echo']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    const sent = `${'0123456789abcdef'.repeat(64 * 1024)}\n`; // 1 MiB and a newline
    client.write(sent);
    client.socket.end();
    await client.waitForEnd();
    expect(client.raw()).toBe(sent);
    const [fin] = await server.waitForLines(/sent FIN after (\d+) bytes; pipe\(\) ends our side/, 1);
    expect(Number(fin?.[1])).toBe(sent.length);
  });

  it("a naive sender that ignores write()'s return value queues most of 32 MiB in Node's memory", async (t) => {
    const client = await sendInto(t, ['--naive']);
    const r = await senderReport(client, 'naive');
    // The held receiver's kernel took a few MiB; the rest (more than half of 32 MiB here) waited in Node.
    expect(r.peak).toBeGreaterThan(16 * MiB);
    expect(r.peak).toBeLessThanOrEqual(32 * MiB);
    expect(r.falses).toBeGreaterThan(256);
  });

  it("a polite sender that waits for 'drain' never queues more than writableHighWaterMark plus one chunk", async (t) => {
    const client = await sendInto(t, []);
    const r = await senderReport(client, 'polite');
    expect(r.falses).toBeGreaterThanOrEqual(1);
    expect(r.peak).toBeGreaterThanOrEqual(r.hwm);
    expect(r.peak).toBeLessThanOrEqual(r.hwm + CHUNK);
  });

  it("stream.pipeline() keeps the same bound as the polite sender: pipe() inside it waits for 'drain'", async (t) => {
    const client = await sendInto(t, ['--pipeline']);
    const r = await senderReport(client, 'pipeline');
    expect(r.drains).toBeGreaterThanOrEqual(1);
    expect(r.peak).toBeLessThanOrEqual(r.hwm + CHUNK);
  });

  it("erratum (notes 000, 003): 'drain' does not fire when write() is called, only after a false, once the queue is empty", async (t) => {
    // A write() that returns true never brings a 'drain'.
    const echo = spawnLab(t, '06', ['server', '--port', '0', '--mode', 'echo']);
    const { port } = await echo.listening();
    const raw = await connectClient(t, port);
    let drains = 0;
    raw.socket.on('drain', () => drains++);
    for (let i = 0; i < 10; i++) expect(raw.socket.write(`write ${i}\n`)).toBe(true);
    await raw.waitForLine(/^write 9$/);
    expect(drains).toBe(0);
    // The polite sender: each false is followed by exactly one 'drain', when Node's queue is empty
    // (handed to the kernel: that is not "received by the peer").
    const client = await sendInto(t, []);
    const r = await senderReport(client, 'polite');
    expect(r.drains).toBe(r.falses);
    expect(r.queuedAtDrain).toBe(0);
    // The naive sender calls end() right after its writes: no 'drain' comes at all while a stream is ending.
    const naive = await senderReport(await sendInto(t, ['--naive']), 'naive');
    expect(naive.falses).toBeGreaterThan(0);
    expect(naive.drains).toBe(0);
  });

  it('erratum (note 001): bufferSize is a deprecated alias of writableLength (no warning at run time), and bytesWritten counts queued bytes as written', async (t) => {
    // The lab runs with --throw-deprecation: reading socket.bufferSize would crash it if it warned.
    const client = await sendInto(t, ['--naive']);
    const r = await senderReport(client, 'naive');
    expect(r.bufferSize).toBe(r.peak);
    // At the peak all 32 MiB counted as "written", though less than half had even reached the kernel.
    expect(r.bytesWritten).toBe(32 * MiB);
    expect(r.bytesWritten - r.peak).toBeLessThan(16 * MiB);
  });

  it('stream.pipeline() reports a reset receiver once and destroys the source; the client exits 1 with one line', async (t) => {
    const resetter = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    t.onTestFinished(() => {
      resetter.close();
    });
    resetter.listen(0, '127.0.0.1');
    await new Promise((resolve) => resetter.once('listening', resolve));
    const { port } = resetter.address() as net.AddressInfo;
    const client = spawnLab(t, '06', ['client', '--port', String(port), '--pipeline']);
    expect(await client.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(
      client.matching(
        /pipeline failed: (ECONNRESET|EPIPE)\b.*; source destroyed: true, socket destroyed: true$/,
      ),
    ).toHaveLength(1);
    expect(client.stderr).toHaveLength(1);
    expect(client.stderr[0]).toMatch(/^\[client\] error: (ECONNRESET|EPIPE)/);
  });

  it('stops cleanly on SIGTERM with exit code 0; a bad --mode is one line on stderr and exit code 2', async (t) => {
    const server = spawnLab(t, '06', ['server', '--port', '0', '--mode', 'echo']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    client.write('hi\n');
    await client.waitForLine(/^hi$/);
    expect(await server.stop()).toEqual({ exitCode: 0, signal: undefined });
    await client.waitForClose();
    expect(server.matching(/shutting down, closing 1 connection\(s\)/)).toHaveLength(1);
    const bad = spawnLab(t, '06', ['server', '--mode', 'fast']);
    expect(await bad.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
    expect(bad.stderr).toEqual(["error: --mode must be file, echo or hold, got 'fast'"]);
  });
});
