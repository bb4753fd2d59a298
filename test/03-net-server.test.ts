// Lab 03: net.Server: listen and address(), backlog, Unix sockets, events, getConnections and maxConnections,
// close(), unref()/ref(), net.isIP (docs/03-net-server.md).
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { execa } from 'execa';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  type LabProcess,
  labFile,
  REPLY_MS,
  root,
  STALL_MS,
  setWaitDefaults,
  spawnLab,
  type TestHooks,
} from './helpers/lab.ts';
import { connectClient } from './helpers/net.ts';
import { expectInOrder } from './helpers/order.ts';

/** A fresh folder for Unix socket files, removed when the test ends. */
function socketDir(t: TestHooks): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab03-'));
  t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function connectPath(t: TestHooks, file: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(file);
    t.onTestFinished(() => {
      socket.destroy();
    });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

const hasSs = (() => {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return process.platform === 'linux';
  } catch {
    return false;
  }
})();
const nodeMajor = Number(process.versions.node.split('.')[0]);

// No step of this lab waits on a timer: a wait fails once the lab has said nothing new for REPLY_MS.
setWaitDefaults({ quiet: REPLY_MS, stalled: STALL_MS });

describe.concurrent('lab 03: the demo', () => {
  let demo: LabProcess;
  beforeAll(() => {
    demo = spawnLab('03');
  });

  it('exits 0 by itself although an unref()ed server is still listening (erratum: unref does not pause listening)', async () => {
    expect(await demo.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expectInOrder(demo.lines, [
      /^\[demo\] a new server; servers keeping the process alive: 1$/,
      /^\[demo\] after unref\(\): 0; lonely\.listening = true$/,
      /^\[lonely\] 'connection' #1 from 127\.0\.0\.1:\d+; getConnections: 1$/,
      /^\[client 5\] received: hello #1: 1 connection\(s\) open$/,
      /^\[demo\] after ref\(\): 1$/,
      /^\[demo\] done; the unref\(\)ed server from step 4 is still listening/,
    ]);
    expect(demo.lines.at(-1)).toMatch(/^\[demo\] done/);
  });

  it('address() is null right after listen(port, host) and { address, family, port } on listening (erratum: note 004)', async () => {
    const [, port] = await demo.waitForLine(/^\[server\] listening on 127\.0\.0\.1:(\d+)$/);
    expectInOrder(demo.lines, [
      /^\[demo\] right after listen\(\): address\(\) = null/,
      new RegExp(
        `^\\[server\\] 'listening': address\\(\\) = \\{ address: '127\\.0\\.0\\.1', family: 'IPv4', port: ${port} \\}$`,
      ),
      /^\[server\] listening on /,
    ]);
    expect(demo.matching(/listening on /)).toHaveLength(1);
  });

  it('maxConnections = 2: the third client connects, is dropped without a byte, and the first two are still served', async () => {
    await demo.waitForLine(/^\[client 1\] received: still served$/);
    expectInOrder(demo.lines, [
      /^\[client 1\] received: hello #1: 1 connection\(s\) open$/,
      /^\[client 2\] received: hello #2: 2 connection\(s\) open$/,
      /^\[server\] 'drop': 127\.0\.0\.1:\d+ is over maxConnections \(2\); Node closed it at once$/,
      /^\[client 1\] received: still served$/,
    ]);
    expect(demo.matching(/^\[server\] 'drop'/)).toHaveLength(1);
    expect(demo.matching(/^\[client 3\]/).map((m) => m.input)).toEqual([
      "[client 3] 'connect': the kernel completed the handshake",
      "[client 3] 'end' before a single byte: the server hung up (dropped)",
    ]);
    // The server never emitted 'connection' for the dropped client.
    expect(demo.matching(/^\[server\] 'connection' #3/)).toHaveLength(0);
  });

  it("close() refuses new clients at once, keeps serving open ones, and 'close' fires after the last one ends", async () => {
    await demo.waitForLine(/^\[client 2\] closed$/);
    expectInOrder(demo.lines, [
      /^\[server\] close\(\) called: server\.listening = false$/,
      /^\[client 4\] error: ECONNREFUSED 127\.0\.0\.1:\d+: /,
      /^\[client 1\] received: served after close\(\)$/,
      /^\[demo\] after client 1 left, server 'close' has fired: false \(client 2 is still connected\)$/,
      /^\[server\] 'close': every connection has ended$/,
    ]);
    expect(demo.matching(/^\[server\] 'close'/)).toHaveLength(1);
  });

  it('listen(path) gives a Unix socket: address() is the path, the peer has no address, close() removes the file', async () => {
    await demo.waitForLine(/^\[demo\] 6\./);
    const [, file] = await demo.waitForLine(/^\[unix\] 'listening': address\(\) = '(.+)': a path/);
    expect(path.dirname(file as string)).toBe(os.tmpdir());
    expectInOrder(demo.lines, [
      /^\[demo\] the socket is a file: exists = true$/,
      /^\[unix\] 'connection' #1 \(Unix socket: no address, no port\); getConnections: 1$/,
      /^\[client 6\] received: hello #1: 1 connection\(s\) open$/,
      /^\[demo\] after close\(\): exists = false/,
    ]);
  });

  it('pauseOnConnect reads nothing until resume(), and an http.Server is a net.Server', async () => {
    await demo.waitForLine(/instanceof net\.Server/);
    expectInOrder(demo.lines, [
      /^\[paused\] 'connection' with pauseOnConnect: a 'data' listener is attached, bytesRead = 0$/,
      /^\[paused\] 'data' 'early bytes\\n'; bytesRead = 12$/,
      /^\[demo\] http\.createServer\(\) instanceof net\.Server: true$/,
    ]);
  });

  it('net.isIP/isIPv4/isIPv6 judge the string only: localhost, 1.2.3.256 and 127.1 are not IP addresses', async () => {
    await demo.waitForExit();
    const table = demo
      .matching(/^\[isIP\] (\S+)\s+(\d)\s+(true|false)\s+(true|false)$/)
      .map((m) => m.slice(1, 5));
    expect(table).toEqual([
      ["'127.0.0.1'", '4', 'true', 'false'],
      ["'::1'", '6', 'false', 'true'],
      ["'localhost'", '0', 'false', 'false'],
      ["'1.2.3.256'", '0', 'false', 'false'],
      ["'::ffff:127.0.0.1'", '6', 'false', 'true'],
      ["'127.1'", '0', 'false', 'false'],
      ["''", '0', 'false', 'false'],
    ]);
  });
});

describe.concurrent('lab 03: the server role', () => {
  it('binds port 0 on 127.0.0.1 and prints address() with the real port, and one listening line', async (t) => {
    const server = spawnLab(t, '03', ['server', '--port', '0']);
    const { host, port } = await server.listening();
    expect(host).toBe('127.0.0.1');
    expect(port).toBeGreaterThan(0);
    await server.waitForLine(/^\[server\] address\(\)/);
    expect(server.matching(/^\[server\] address\(\): (.*)$/).map((m) => m[1])).toEqual([
      `{ address: '127.0.0.1', family: 'IPv4', port: ${port} }, backlog 511`,
    ]);
    expect(server.matching(/listening on /)).toHaveLength(1);
  });

  it.skipIf(!hasSs)(
    'passes the backlog to the kernel: ss shows it as the Send-Q of the LISTEN socket',
    async (t) => {
      for (const backlog of ['7', '511']) {
        const server = spawnLab(t, '03', ['server', '--port', '0', '--backlog', backlog]);
        const { port } = await server.listening();
        // For a listening socket, ss prints: State Recv-Q (waiting to be accepted) Send-Q (the backlog) Local Peer.
        const row = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' })
          .trim()
          .split(/\s+/);
        expect(row.slice(0, 4)).toEqual(['LISTEN', '0', backlog, `127.0.0.1:${port}`]);
        expect(await server.stop()).toEqual({ exitCode: 0, signal: undefined });
      }
    },
  );

  it("getConnections() counts live connections as they come and go ('connection' once per client)", async (t) => {
    const server = spawnLab(t, '03', ['server', '--port', '0']);
    const { port } = await server.listening();
    const a = await connectClient(t, port);
    await a.waitForLine(/^hello #1: 1 connection\(s\) open$/);
    const b = await connectClient(t, port);
    await b.waitForLine(/^hello #2: 2 connection\(s\) open$/);
    a.socket.end();
    await server.waitForLine(/^\[server\] #1 closed; getConnections: 1$/);
    b.socket.end();
    await server.waitForLine(/^\[server\] #2 closed; getConnections: 0$/);
    expect(
      server.matching(/^\[server\] 'connection' #\d+ from 127\.0\.0\.1:\d+; getConnections: \d$/),
    ).toHaveLength(2);
  });

  it('maxConnections = 2: the third client sees its socket closed without a byte, the first two are still served', async (t) => {
    const server = spawnLab(t, '03', ['server', '--port', '0', '--max-connections', '2']);
    const { port } = await server.listening();
    const a = await connectClient(t, port);
    await a.waitForLine(/^hello #1/);
    const b = await connectClient(t, port);
    await b.waitForLine(/^hello #2/);
    // The kernel completes the handshake, so connect succeeds; then Node closes the socket.
    const third = await connectClient(t, port);
    await Promise.race([third.closed, third.waitForLine(/hello/)]);
    expect(third.raw()).toBe('');
    await server.waitForLine(/^\[server\] 'drop': 127\.0\.0\.1:\d+ is over maxConnections \(2\)/);
    a.write('still here\n');
    b.write('me too\n');
    await a.waitForLine(/^still here$/);
    await b.waitForLine(/^me too$/);
    expect(server.matching(/'drop'/)).toHaveLength(1);
    expect(server.matching(/'connection' #/)).toHaveLength(2);
  });

  it(`maxConnections = 0 means no limit on Node 20 and drops every connection from Node 21 on (here: Node ${nodeMajor})`, async (t) => {
    const server = spawnLab(t, '03', ['server', '--port', '0', '--max-connections', '0']);
    const { port } = await server.listening();
    const client = await connectClient(t, port);
    await Promise.race([client.closed, client.waitForLine(/hello/)]);
    if (nodeMajor <= 20) {
      expect(client.raw()).toBe('hello #1: 1 connection(s) open\r\n');
      expect(server.matching(/'drop'/)).toHaveLength(0);
    } else {
      expect(client.raw()).toBe('');
      await server.waitForLine(/'drop'/);
    }
  });

  it("close() (typed on stdin) refuses new connections at once; 'close' fires only when the open ones end", async (t) => {
    const server = spawnLab(t, '03', ['server', '--port', '0']);
    const { port } = await server.listening();
    const a = await connectClient(t, port);
    await a.waitForLine(/^hello #1/);
    server.write('close\n');
    await server.waitForLine(
      /^\[server\] close\(\) called: no new connections; 'close' waits for 1 open connection\(s\)$/,
    );
    await expect(connectClient(t, port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    a.write('served after close()\n');
    await a.waitForLine(/^served after close\(\)$/);
    expect(server.matching(/^\[server\] 'close'/)).toHaveLength(0);
    a.socket.end();
    expect(await server.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(server.matching(/^\[server\] 'close'/).map((m) => m.input)).toEqual([
      "[server] 'close': closed, and no connection is left",
    ]);
  });

  it('a port already in use is one line on stderr and exit code 1 (EADDRINUSE), not a stack trace', async (t) => {
    const holder = net.createServer().listen(0, '127.0.0.1');
    t.onTestFinished(() => {
      holder.close();
    });
    await new Promise((resolve) => holder.once('listening', resolve));
    const { port } = holder.address() as net.AddressInfo;
    const server = spawnLab(t, '03', ['server', '--port', String(port)]);
    expect(await server.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(server.stderr).toEqual([
      expect.stringMatching(
        new RegExp(`^\\[server\\] error: EADDRINUSE 127\\.0\\.0\\.1:${port}: the address is already in use`),
      ),
    ]);
    expect(server.matching(/listening on/)).toHaveLength(0);
  });

  it('erratum (note 000): an unref()ed server does not keep the process alive; the role exits 0 by itself', async (t) => {
    const server = spawnLab(t, '03', ['server', '--port', '0', '--unref']);
    expect(await server.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(server.matching(/listening on 127\.0\.0\.1:\d+/)).toHaveLength(1);
    expect(server.matching(/^\[server\] unref\(\): still listening/)).toHaveLength(1);
  });

  it('erratum (note 000): server.connections is gone; the lab counts with getConnections()', async () => {
    const plain = net.createServer();
    expect('connections' in plain).toBe(false);
    expect(typeof plain.getConnections).toBe('function');
  });
});

describe.skipIf(process.platform === 'win32').concurrent('lab 03: a Unix domain socket', () => {
  it('listen(path) serves on a socket file and stops on SIGTERM with exit 0, removing the file', async (t) => {
    const file = path.join(socketDir(t), 'lab.sock');
    const server = spawnLab(t, '03', ['server', '--path', file]);
    await server.waitForLine(new RegExp(`^\\[server\\] listening on ${file.replace(/[.]/g, '\\.')}$`));
    expect(fs.lstatSync(file).isSocket()).toBe(true);
    const socket = await connectPath(t, file);
    socket.setEncoding('utf8');
    let received = '';
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    // Wait for the whole greeting line, however it is chunked.
    while (!received.endsWith('\n')) await once(socket, 'data');
    expect(received).toBe('hello #1: 1 connection(s) open\r\n');
    await server.waitForLine(/'connection' #1 \(Unix socket: no address, no port\); getConnections: 1/);
    expect(await server.stop()).toEqual({ exitCode: 0, signal: undefined });
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a stale socket file left by a crashed server is detected (ECONNREFUSED) and removed, with one line', async (t) => {
    const file = path.join(socketDir(t), 'lab.sock');
    const crashed = spawnLab(t, '03', ['server', '--path', file]);
    await crashed.waitForLine(/listening on /);
    crashed.kill(); // SIGKILL: no chance to clean up, the file stays
    expect((await crashed.waitForExit()).signal).toBe('SIGKILL');
    expect(fs.existsSync(file)).toBe(true);
    const server = spawnLab(t, '03', ['server', '--path', file]);
    await server.waitForLine(/listening on /);
    expect(
      server.matching(/^\[server\] removed a stale socket file: nobody answered on .+ \(ECONNREFUSED\)$/),
    ).toHaveLength(1);
    const socket = await connectPath(t, file);
    expect(socket.readyState).toBe('open');
  });

  it('a live socket is never removed: a second server on the same path is one line and exit 1', async (t) => {
    const file = path.join(socketDir(t), 'lab.sock');
    const first = spawnLab(t, '03', ['server', '--path', file]);
    await first.waitForLine(/listening on /);
    const second = spawnLab(t, '03', ['server', '--path', file]);
    expect(await second.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(second.stderr).toEqual([
      `[server] error: another server is listening on ${file}: stop it, or pick another --path`,
    ]);
    // The first server is untouched and still serving.
    await connectPath(t, file);
    await first.waitForLine(/'connection' #1/);
  });

  it('a path that is not a socket is not deleted: one line and exit 1', async (t) => {
    const file = path.join(socketDir(t), 'notes.txt');
    fs.writeFileSync(file, 'precious');
    const server = spawnLab(t, '03', ['server', '--path', file]);
    expect(await server.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(server.stderr).toEqual([`[server] error: ${file} exists and is not a socket; not touching it`]);
    expect(fs.readFileSync(file, 'utf8')).toBe('precious');
  });
});

describe('lab 03: what the notes got wrong, shown with their own code', () => {
  it("erratum (note 002): unref() closes nothing: after every client has left, the unref()ed server still accepts, and 'close' never fires", async () => {
    const server = net.createServer((socket) => socket.end('hi\n'));
    let closed = false;
    server.on('close', () => {
      closed = true;
    });
    onTestFinished(() => {
      server.close();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    server.unref(); // note 002: "after all clients close their connections, this will close the server"
    const { port } = server.address() as net.AddressInfo;
    const firstLeft = once(server, 'connection').then(([socket]) => once(socket as net.Socket, 'close'));
    await connectClient(port);
    await firstLeft; // the only client has left, on the server's side too
    expect(await new Promise<number>((resolve) => server.getConnections((_e, n) => resolve(n)))).toBe(0);
    // The server is not closed: it is still listening, and it serves the next client.
    expect(server.listening).toBe(true);
    const second = await connectClient(port);
    await second.waitForLine(/^hi$/);
    expect(closed).toBe(false);
  });

  it("erratum (note 002): '…' + server.address() prints [object Object]; read its fields, or util.inspect() it as the lab does", async () => {
    const server = net.createServer();
    onTestFinished(() => {
      server.close();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    expect(`服务端的地址是：${server.address()}`).toBe('服务端的地址是：[object Object]');
    expect(`服务端的地址是：${inspect(server.address())}`).toBe(
      `服务端的地址是：{ address: '127.0.0.1', family: 'IPv4', port: ${port} }`,
    );
    // The lab prints the same fields (and its test 'binds port 0 on 127.0.0.1 …' checks them).
    const lab = spawnLab('03', ['server', '--port', '0']);
    const listening = await lab.listening();
    const [line] = await lab.waitForLines(/^\[server\] address\(\): /, 1);
    expect(line?.input).toBe(
      `[server] address(): { address: '127.0.0.1', family: 'IPv4', port: ${listening.port} }, backlog 511`,
    );
  });

  /** Why this machine cannot show that port 808 is privileged, or undefined when it can. */
  function why808CannotBeShown(): string | undefined {
    if (process.platform !== 'linux')
      return `privileged ports are checked here on Linux only (this is ${process.platform}; macOS 10.14 and later and Windows have none)`;
    let start = 1024; // Linux before 4.11 has no sysctl for it: 1024, fixed
    try {
      start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
    } catch {}
    if (start <= 808)
      return `this kernel lets every user bind ports from ${start} up (net.ipv4.ip_unprivileged_port_start)`;
    return undefined;
  }

  /** Why user nobody cannot run `file` (a folder on its path that others may not enter), or undefined. */
  function whyNobodyCannotRun(file: string, need: number): string | undefined {
    if ((fs.statSync(file).mode & need) !== need)
      return `${file} is mode ${(fs.statSync(file).mode & 0o777).toString(8)}: other users may not use it`;
    for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
      if ((fs.statSync(dir).mode & 0o001) === 0)
        return `user nobody cannot enter ${dir} (mode ${(fs.statSync(dir).mode & 0o777).toString(8)}), which holds ${file}`;
      if (dir === path.dirname(dir)) return undefined;
    }
  }

  it('erratum (note 001): listen(808) needs privileges: as an ordinary user the server role gets EACCES, one line and exit 1', async (ctx) => {
    const why = why808CannotBeShown();
    if (why) ctx.skip(why);
    // Run as root, the test drops to nobody (65534) for the child; run as anyone else, it is that user.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    if (process.getuid?.() === 0) {
      const cannot = whyNobodyCannotRun(process.execPath, 0o001) ?? whyNobodyCannotRun(labFile('03'), 0o004);
      if (cannot) ctx.skip(cannot);
    }
    const child = execa(
      process.execPath,
      ['--import', 'tsx', '--throw-deprecation', labFile('03'), 'server', '--port', '808'],
      {
        ...asNobody,
        cwd: root,
        reject: false,
        all: true,
        stdin: 'ignore',
        env: { FORCE_COLOR: '0', NO_COLOR: '1' },
      },
    );
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    const result = await child;
    expect(result.exitCode, result.all).toBe(1);
    expect(result.stdout).not.toMatch(/listening on/);
    expect(result.stderr).toBe('[server] error: EACCES 127.0.0.1:808: permission denied');
  });
});
