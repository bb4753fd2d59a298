// Lab 14: HTTP/1.1 on node:net alone, checked with real clients (curl, Node's fetch) and raw sockets.
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { execa } from 'execa';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type LabProcess, REPLY_MS, setWaitDefaults, spawnLab } from './helpers/lab.ts';

// A lab that is up answers in milliseconds: a wait with nothing new for REPLY_MS has stalled (a starter's gap).
setWaitDefaults({ quiet: REPLY_MS });

// One server for the whole file (tests run in order): limits small enough for a test to reach.
let server: LabProcess;
let port: number;
let base: string;
beforeAll(async () => {
  server = spawnLab('14', [
    'server',
    '--port',
    '0',
    '--max-body',
    '64',
    '--request-timeout-ms',
    '500',
    '--keep-alive-ms',
    '1500',
  ]);
  port = (await server.listening()).port;
  base = `http://127.0.0.1:${port}`;
});

interface Raw {
  socket: net.Socket;
  /** Everything received so far, as text. */
  text(): string;
  /** Waits until what was received matches. */
  until(pattern: RegExp): Promise<string>;
  /** Resolves once the server has ended the connection (FIN or reset). */
  ended: Promise<void>;
}

/** A raw TCP connection to the lab, for what curl and fetch would never send. */
async function raw(): Promise<Raw> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  onTestFinished(() => {
    socket.destroy();
  });
  await once(socket, 'connect');
  let got = '';
  let wake = () => {};
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    got += chunk;
    wake();
  });
  const ended = new Promise<void>((resolve) => {
    socket.once('end', resolve);
    socket.once('close', () => resolve());
  });
  ended.then(() => wake());
  return {
    socket,
    text: () => got,
    async until(pattern) {
      while (!pattern.test(got)) {
        if (socket.destroyed || socket.readableEnded) throw new Error(`closed before ${pattern}; got ${got}`);
        await new Promise<void>((r) => (wake = r));
      }
      return got;
    },
    ended,
  };
}

/** Sends bytes on a new connection and returns the whole answer once the server has closed it. */
async function answer(request: string): Promise<string> {
  const c = await raw();
  c.socket.write(request);
  await c.ended;
  return c.text();
}

// Not anchored to a line start: a pipelined response follows the previous body directly ("helloHTTP/1.1 …").
const statusLines = (text: string) => text.match(/HTTP\/1\.1 \d{3} [^\r]*/g) ?? [];

/** The requests the server logged from one client port, by number on that connection. */
const loggedFrom = (clientPort: number | string) =>
  server.matching(
    new RegExp(`^\\[server\\] 127\\.0\\.0\\.1:${clientPort} .* \\(request (\\d+) on this connection\\)$`),
  );

describe('lab 14: real clients', () => {
  it('curl: two URLs in one invocation reuse one connection ("Re-using existing connection"), keep-alive', async () => {
    // -w prints, after each transfer, the local port and how many new connections that transfer made.
    const { stdout, stderr } = await execa('curl', [
      '-sv',
      '-w',
      '[%{local_port} %{num_connects}]\n',
      `${base}/`,
      `${base}/chunked`,
    ]);
    const m = stdout.match(
      /^hello from an HTTP server written on node:net\n\[(\d+) 1\]\none\ntwo\n你好\n\[(\d+) 0\]$/,
    );
    expect(m, stdout).not.toBeNull();
    const [, first, second] = m as RegExpMatchArray;
    expect(second).toBe(first);
    // curl 7.88 says "Re-using existing connection #0 with host 127.0.0.1"; curl 8 leaves out the "#0".
    expect(stderr).toMatch(/^\* Re-using existing connection (#0 )?with host 127\.0\.0\.1\r?$/m);
    expect(stderr.match(/^\* Connected to /gm)).toHaveLength(1);
    expect(stderr).toMatch(/^< Transfer-Encoding: chunked\r?$/m);
    // The server saw both requests from the same client port: requests 1 and 2 of one connection.
    await server.waitForLines(new RegExp(`127\\.0\\.0\\.1:${first} `), 2);
    expect(loggedFrom(first as string).map((r) => r[1])).toEqual(['1', '2']);
  });

  it('curl: POST /echo answers with the body, HEAD gets the headers and no body, and other paths are 404', async () => {
    const echo = await execa('curl', ['-s', '--data-binary', 'hello, echo', `${base}/echo`]);
    expect(echo.stdout).toBe('hello, echo');
    const head = await execa('curl', ['-sI', `${base}/`]);
    expect(head.stdout).toMatch(/^HTTP\/1\.1 200 OK\r$/m);
    expect(head.stdout).toMatch(/^Content-Length: 46\r$/m);
    const missing = await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${base}/nope`]);
    expect(missing.stdout).toBe('404');
  });

  it("Node's fetch: keep-alive reuses a connection, POST /echo round-trips the body, a chunked body is decoded", async () => {
    const reused = () =>
      server.matching(/ GET \/ HTTP\/1\.1 -> 200 \(request ([2-9]) on this connection\)$/).length;
    const before = reused();
    const chunkedLine = / GET \/chunked HTTP\/1\.1 -> 200 /;
    const chunkedBefore = server.matching(chunkedLine).length;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('hello from an HTTP server written on node:net\n');
      // Let fetch put the connection back in its pool before the next request.
      await new Promise(setImmediate);
    }
    const res = await fetch(`${base}/echo`, { method: 'POST', body: '你好 fetch' });
    expect(await res.text()).toBe('你好 fetch');
    const chunked = await fetch(`${base}/chunked`);
    expect(chunked.headers.get('transfer-encoding')).toBe('chunked');
    expect(await chunked.text()).toBe('one\ntwo\n你好\n');
    // Three GET / in a row, and at least one of them was a later request on a connection fetch kept open.
    // The server logs in order: once it has logged this last request, the three before it are in too.
    await server.waitForLines(chunkedLine, chunkedBefore + 1);
    expect(reused() - before).toBeGreaterThanOrEqual(1);
  });
});

describe('lab 14: the protocol, with raw sockets', () => {
  it('keep-alive: several requests on one connection, each read from the bytes left after the last; Connection: close is honoured', async () => {
    const c = await raw();
    const localPort = c.socket.localPort as number;
    const host = `Host: 127.0.0.1:${port}\r\n`;
    c.socket.write(`GET / HTTP/1.1\r\n${host}\r\n`);
    await c.until(/hello from an HTTP server/);
    c.socket.write(`GET /headers HTTP/1.1\r\n${host}\r\n`);
    await c.until(/host: 127/);
    c.socket.write(`GET / HTTP/1.1\r\n${host}Connection: close\r\n\r\n`);
    await c.ended;
    expect(statusLines(c.text())).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(c.text().match(/^Connection: \S+/gm)).toEqual([
      'Connection: keep-alive',
      'Connection: keep-alive',
      'Connection: close',
    ]);
    // The log comes on another channel (the lab's stdout) than the responses: wait for it.
    await server.waitForLines(new RegExp(`127\\.0\\.0\\.1:${localPort} `), 3);
    expect(loggedFrom(localPort).map((m) => m[1])).toEqual(['1', '2', '3']);
  });

  it('pipelining: three requests in one write are answered in order, the leftover bytes read as the next request', async () => {
    const host = `Host: x\r\n`;
    const text = await answer(
      `GET /nope HTTP/1.1\r\n${host}\r\nPOST /echo HTTP/1.1\r\n${host}Content-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
    );
    expect(statusLines(text)).toEqual(['HTTP/1.1 404 Not Found', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect(text).toContain('\r\n\r\nhelloHTTP/1.1 200 OK\r\n');
  });

  it('header names are case-insensitive and a repeated header is folded into one comma-separated value', async () => {
    const text = await answer(
      'GET /headers HTTP/1.1\r\nHOST: x\r\nX-Tag: one\r\nx-tag: two\r\nX-TAG:three\r\nConnection: close\r\n\r\n',
    );
    expect(text).toMatch(/\r\n\r\nhost: x\nx-tag: one, two, three\nconnection: close\n$/);
    // Content-Length under any spelling, and the same length twice, is still one body.
    const echo = await answer(
      'POST /echo HTTP/1.1\r\nhost: x\r\ncontent-LENGTH: 2\r\nContent-Length: 2\r\nconnection: close\r\n\r\nok',
    );
    expect(echo).toMatch(/\r\n\r\nok$/);
  });

  it('a chunked response is hex sizes and CRLFs, ending with a chunk of size 0 (HEAD: the headers only)', async () => {
    const text = await answer('GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(text).toMatch(/\r\nTransfer-Encoding: chunked\r\n/);
    expect(text.split('\r\n\r\n').slice(1).join('\r\n\r\n')).toBe(
      '4\r\none\n\r\n4\r\ntwo\n\r\n7\r\n你好\n\r\n0\r\n\r\n',
    );
    const head = await answer('HEAD /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(head.endsWith('Transfer-Encoding: chunked\r\n\r\n')).toBe(true);
  });

  it("a method other than GET, HEAD, POST is 405 with Allow; a known method on the wrong path is 405 with that path's Allow", async () => {
    const del = await answer('DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(statusLines(del)).toEqual(['HTTP/1.1 405 Method Not Allowed']);
    expect(del).toMatch(/^Allow: GET, HEAD, POST\r$/m);
    const post = await answer('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    expect(post).toMatch(/^Allow: GET, HEAD\r$/m);
  });

  it('a malformed request line or header is 400 and the connection is closed', async () => {
    const cases = [
      'HELLO\r\n\r\n',
      'GET / HTTP/2.0\r\nHost: x\r\n\r\n',
      'GET  / HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nX-Bad : 1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n', // HTTP/1.1 without Host
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
      'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      '\x00\x01\x02\xff garbage\r\n\r\n',
    ];
    const before = server.matching(/ 400 Bad Request: /).length;
    for (const request of cases) {
      const text = await answer(request);
      expect(statusLines(text), JSON.stringify(request)).toEqual(['HTTP/1.1 400 Bad Request']);
      expect(text).toMatch(/^Connection: close\r$/m);
    }
    await server.waitForLines(/ 400 Bad Request: /, before + cases.length);
  });

  it('headers over 16 KiB are 431, at once: the server does not wait for the end of a header block that never ends', async () => {
    const c = await raw();
    // No empty line, ever: past 16 KiB the server answers and closes instead of buffering more.
    c.socket.write(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'x'.repeat(17 * 1024)}`);
    await c.ended;
    expect(statusLines(c.text())).toEqual(['HTTP/1.1 431 Request Header Fields Too Large']);
  });

  it('a body over --max-body is 413 before the body is read', async () => {
    const text = await answer('POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n');
    expect(statusLines(text)).toEqual(['HTTP/1.1 413 Content Too Large']);
    await server.waitForLine(/413 Content Too Large: a body of 65 bytes, over the limit of 64; closing$/);
    const ok = await answer(
      `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 64\r\nConnection: close\r\n\r\n${'y'.repeat(64)}`,
    );
    expect(ok.endsWith('y'.repeat(64))).toBe(true);
  });

  it('slowloris: a client still sending its headers after --request-timeout-ms gets 408 and is closed', async () => {
    const c = await raw();
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    await c.ended;
    expect(statusLines(c.text())).toEqual(['HTTP/1.1 408 Request Timeout']);
    await server.waitForLine(/408 Request Timeout: request not complete after 500 ms; closing$/);
  });

  it('an idle keep-alive connection is closed quietly after --keep-alive-ms', async () => {
    const c = await raw();
    const localPort = c.socket.localPort;
    c.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until(/hello/);
    await c.ended;
    await server.waitForLine(
      new RegExp(`127\\.0\\.0\\.1:${localPort} idle for 1500 ms after 1 request\\(s\\): closing$`),
    );
    expect(statusLines(c.text())).toEqual(['HTTP/1.1 200 OK']);
  });
});

describe('lab 14: node:http is built on node:net', () => {
  it("erratum (note 002): http.Server is a subclass of net.Server in Node's code, and its 'connection' event hands over a net.Socket", async () => {
    const httpServer = http.createServer((_req, res) => res.end('ok'));
    expect(httpServer).toBeInstanceOf(net.Server);
    expect(Object.getPrototypeOf(http.Server.prototype)).toBe(net.Server.prototype);
    const connection = once(httpServer, 'connection') as Promise<[net.Socket]>;
    httpServer.listen(0, '127.0.0.1');
    await once(httpServer, 'listening');
    onTestFinished(() => {
      httpServer.closeAllConnections();
      httpServer.close();
    });
    const res = await fetch(`http://127.0.0.1:${(httpServer.address() as net.AddressInfo).port}/`);
    expect(await res.text()).toBe('ok');
    const [socket] = await connection;
    expect(socket).toBeInstanceOf(net.Socket);
  });

  it('the raw role writes a request by hand to a node:http server and prints the raw response', async () => {
    const lab = spawnLab('14', ['raw']);
    expect(await lab.exited).toEqual({ exitCode: 0, signal: undefined });
    expect(lab.lines).toContain('[raw] http.Server instanceof net.Server: true');
    // node:http's built-in guards, compared with this very Node's values (they differ between versions).
    const probe = http.createServer();
    expect(lab.lines).toContain(
      `[raw] node:http's own limits: maxHeaderSize ${http.maxHeaderSize} bytes, headersTimeout ${probe.headersTimeout} ms, requestTimeout ${probe.requestTimeout} ms, keepAliveTimeout ${probe.keepAliveTimeout} ms`,
    );
    expect(lab.matching(/^\[raw\] node:http 'connection': a Socket from 127\.0\.0\.1:\d+$/)).toHaveLength(1);
    expect(lab.lines).toContain('[raw] > GET / HTTP/1.1\\r\\n');
    expect(lab.lines).toContain('[raw] < HTTP/1.1 200 OK\\r\\n');
    expect(lab.lines).toContain('[raw] < Connection: close\\r\\n');
    expect(lab.lines.at(-1)).toBe('[raw] < hello from node:http\\n');
  });
});

describe('lab 14: the demo and the command line', () => {
  it('the demo walks through keep-alive, pipelining, chunked, 405 and every error status, then node:http', async () => {
    const lab = spawnLab('14');
    expect(await lab.exited).toEqual({ exitCode: 0, signal: undefined });
    expect(lab.matching(/\(request 3 on this connection\)$/)).toHaveLength(1);
    for (const status of [
      '400 Bad Request',
      '431 Request Header Fields Too Large',
      '413 Content Too Large',
      '408 Request Timeout',
    ])
      expect(lab.output()).toContain(`"HTTP/1.1 ${status}", then the server closed the connection`);
    expect(lab.output()).toContain('[client] < 0\\r\\n');
    expect(lab.output()).toContain('[demo] http.Server instanceof net.Server: true');
    expect(lab.stderr).toEqual([]);
  });

  it('a bad flag value is one line on stderr and exit code 2; SIGTERM stops the server with exit code 0', async () => {
    const bad = spawnLab('14', ['server', '--max-body', 'lots']);
    expect(await bad.exited).toEqual({ exitCode: 2, signal: undefined });
    expect(bad.stderr).toEqual([
      "error: --max-body must be a whole number from 0 to 9007199254740991, got 'lots'",
    ]);
    expect(await server.stop()).toEqual({ exitCode: 0, signal: undefined });
    expect(server.stderr).toEqual([]);
  });
});
