// Lab 14: HTTP/1.1 is text over TCP (notes 002, 003). A small HTTP server on node:net alone — request line, headers,
// bodies, chunked responses, keep-alive, pipelining, limits — and the other way: a request typed by hand to node:http.
// Run: npm run lab 14 (the demo) · npm run lab 14 server · curl -v http://127.0.0.1:8080/ · npm run lab 14 raw
// Server flags: -- --port N (default 8080) --max-body BYTES --request-timeout-ms MS --keep-alive-ms MS
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { fatal, parseLabArgs } from './lib/cli.ts';
import { closeWithin, dropAfterClose } from './lib/guard.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';

const args = parseLabArgs({
  roles: ['server', 'raw'],
  port: 8080,
  flags: {
    'max-body': {
      default: '1048576',
      help: 'largest request body in bytes; a bigger Content-Length gets 413',
    },
    'request-timeout-ms': {
      default: '10000',
      help: 'a request (headers and body) must arrive this fast once it starts, or 408 (slowloris)',
    },
    'keep-alive-ms': { default: '5000', help: 'an idle keep-alive connection is closed after this long' },
    quiet: {
      type: 'boolean',
      help: 'no line per request served (for npm run bench 14); errors are still logged',
    },
  },
});

interface Limits {
  maxBody: number;
  requestTimeoutMs: number;
  keepAliveMs: number;
  /** Log every request served (the benchmark turns it off: a log line costs more than a small response). */
  logRequests: boolean;
}

/** Headers of the request line and header block together: more is 431 (Node's own default is 16 KiB too). */
const MAX_HEADER_BYTES = 16 * 1024;
/** Responses waiting for a peer that does not read: past this, we stop reading its next requests. */
const MAX_QUEUED_BYTES = 64 * 1024;
const REASONS: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
};

interface Request {
  method: string;
  target: string;
  version: string;
  /** Lower-case names (HTTP names are case-insensitive); a repeated header is folded into one 'a, b'. */
  headers: Map<string, string>;
  body: Buffer;
  keepAlive: boolean;
}

/** What the parser says about the bytes so far: a request, "need more", or an error status that ends the connection. */
type Parsed = { request: Request; used: number } | { need: true } | { status: number; reason: string };

// #region parse
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(1\.[01])$/;

function parseRequest(bytes: Buffer, maxBody: number): Parsed {
  // The header block ends at the first empty line. latin1 maps each byte to one character: indexes stay byte offsets.
  const text = bytes.toString('latin1', 0, Math.min(bytes.length, MAX_HEADER_BYTES + 4));
  const end = text.search(/\r?\n\r?\n/);
  if (end === -1 || end > MAX_HEADER_BYTES) {
    if (bytes.length > MAX_HEADER_BYTES)
      return { status: 431, reason: `headers over ${MAX_HEADER_BYTES} bytes` };
    return { need: true };
  }
  const headEnd = end + (text.slice(end).match(/^\r?\n\r?\n/) as RegExpMatchArray)[0].length;
  // RFC 9112 lets a server accept a bare LF as a line end; nc without -C sends those.
  const [line = '', ...fields] = text.slice(0, end).split(/\r?\n/);
  const m = REQUEST_LINE.exec(line);
  if (!m) return { status: 400, reason: `malformed request line ${JSON.stringify(line.slice(0, 60))}` };
  const [, method = '', target = '', version = ''] = m;
  const headers = new Map<string, string>();
  for (const field of fields) {
    const colon = field.indexOf(':');
    const name = field.slice(0, colon);
    // No colon, a space before it, or a folded continuation line (obsolete since RFC 7230): all rejected.
    if (colon <= 0 || !TOKEN.test(name))
      return { status: 400, reason: `malformed header ${JSON.stringify(field.slice(0, 60))}` };
    const key = name.toLowerCase();
    const value = field.slice(colon + 1).trim();
    const before = headers.get(key);
    headers.set(key, before === undefined ? value : `${before}, ${value}`);
  }
  if (version === '1.1' && !headers.has('host'))
    return { status: 400, reason: 'HTTP/1.1 needs a Host header' };
  if (headers.has('transfer-encoding'))
    return { status: 501, reason: 'request bodies in Transfer-Encoding are not supported here' };
  // Two different lengths could make us and a proxy see different requests (request smuggling): refuse.
  const lengths = new Set((headers.get('content-length') ?? '0').split(/\s*,\s*/));
  const [length = ''] = lengths;
  if (lengths.size !== 1 || !/^\d+$/.test(length))
    return { status: 400, reason: `bad Content-Length ${JSON.stringify(headers.get('content-length'))}` };
  const size = Number(length);
  if (size > maxBody) return { status: 413, reason: `a body of ${size} bytes, over the limit of ${maxBody}` };
  if (bytes.length < headEnd + size) return { need: true };
  const connection = (headers.get('connection') ?? '').toLowerCase();
  const keepAlive = version === '1.1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  const body = bytes.subarray(headEnd, headEnd + size);
  return { request: { method, target, version, headers, body, keepAlive }, used: headEnd + size };
}
// #endregion parse

// #region respond
interface Response {
  status: number;
  headers?: Record<string, string>;
  /** A Buffer is sent with Content-Length; an array of pieces is sent chunked, one chunk per piece. */
  body: Buffer | string[];
}

function writeResponse(socket: net.Socket, res: Response, head: boolean, keepAlive: boolean): void {
  const lines = [`HTTP/1.1 ${res.status} ${REASONS[res.status]}`];
  for (const [name, value] of Object.entries(res.headers ?? {})) lines.push(`${name}: ${value}`);
  // Keep-alive is the HTTP/1.1 default; saying "close" tells the client this connection ends after this response.
  lines.push(`Connection: ${keepAlive ? 'keep-alive' : 'close'}`);
  if (Array.isArray(res.body)) {
    lines.push('Transfer-Encoding: chunked');
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (!head) writeChunked(socket, res.body);
  } else {
    lines.push(`Content-Length: ${res.body.length}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    // HEAD: the same headers as GET, Content-Length included, and no body.
    if (!head) socket.write(res.body);
  }
}

/** The body in chunks: each is its size in hex, CRLF, the bytes, CRLF; a chunk of size 0 ends the body. */
function writeChunked(socket: net.Socket, pieces: string[]): void {
  // #region exercise-chunked
  for (const piece of pieces) {
    const bytes = Buffer.from(piece);
    // An empty piece would read as the last chunk: skip it.
    if (bytes.length === 0) continue;
    socket.write(`${bytes.length.toString(16)}\r\n`);
    socket.write(bytes);
    socket.write('\r\n');
  }
  socket.write('0\r\n\r\n');
  // #endregion exercise-chunked
}
// #endregion respond

// #region routes
const ALLOWED = ['GET', 'HEAD', 'POST'];
const text = (status: number, body: string): Response => ({
  status,
  headers: { 'Content-Type': 'text/plain; charset=utf-8' },
  body: Buffer.from(body),
});

function route(req: Request): Response {
  if (!ALLOWED.includes(req.method))
    return { ...text(405, `${req.method} is not supported here\n`), headers: { Allow: ALLOWED.join(', ') } };
  const path = req.target.split('?')[0];
  const routes: Record<string, { allow: string[]; handle: () => Response }> = {
    '/': {
      allow: ['GET', 'HEAD'],
      handle: () => text(200, 'hello from an HTTP server written on node:net\n'),
    },
    '/echo': {
      allow: ['POST'],
      handle: () => ({
        status: 200,
        headers: { 'Content-Type': req.headers.get('content-type') ?? 'application/octet-stream' },
        body: req.body,
      }),
    },
    '/headers': {
      allow: ['GET', 'HEAD'],
      // What the parser made of the headers: names in lower case, repeated ones folded into one line.
      handle: () => text(200, [...req.headers].map(([name, value]) => `${name}: ${value}\n`).join('')),
    },
    '/chunked': {
      allow: ['GET', 'HEAD'],
      handle: () => ({
        status: 200,
        headers: { 'Content-Type': 'text/plain; charset=utf-8' },
        body: ['one\n', 'two\n', '你好\n'],
      }),
    },
  };
  const found = path === undefined ? undefined : routes[path];
  if (!found) return text(404, `no such page: ${req.target}\n`);
  if (!found.allow.includes(req.method))
    return {
      ...text(405, `${path} takes ${found.allow.join(', ')}\n`),
      headers: { Allow: found.allow.join(', ') },
    };
  return found.handle();
}
// #endregion routes

// #region connection
function createHttpServer(limits: Limits, log: Log): net.Server {
  const server = net.createServer({ noDelay: true });
  server.on('connection', (socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    socket.on('error', (err) => log(`${peer} error: ${describeError(err)}`));
    let pending: Buffer = Buffer.alloc(0); // bytes of requests not answered yet: the next one starts at byte 0
    let served = 0;
    let closing = false;

    // One clock, two jobs: between requests it is the keep-alive limit (close quietly); once a request has
    // begun, the whole request must arrive before it runs out, or the peer gets 408 (slowloris). The verdict
    // comes after the poll phase (setImmediate): a server that was stopped or starved wakes with the clock overdue
    // and the peer's bytes still unread, and the event loop runs timers before it reads sockets. Bytes read there
    // that set the clock again (a request begun, or answered) win.
    let clock: NodeJS.Timeout | undefined;
    const setClock = (ms: number, verdict: () => void) => {
      clearTimeout(clock);
      const mine = setTimeout(() => setImmediate(() => clock === mine && !socket.destroyed && verdict()), ms);
      clock = mine;
    };
    const stopClock = () => {
      clearTimeout(clock);
      clock = undefined;
    };
    const waitForNextRequest = () =>
      setClock(limits.keepAliveMs, () => {
        log(`${peer} idle for ${limits.keepAliveMs} ms after ${served} request(s): closing`);
        socket.destroy();
      });
    const requestStarted = () =>
      setClock(limits.requestTimeoutMs, () =>
        fail(408, `request not complete after ${limits.requestTimeoutMs} ms`),
      );
    waitForNextRequest();
    socket.on('close', stopClock);

    function fail(status: number, reason: string): void {
      log(`${peer} ${status} ${REASONS[status]}: ${reason}; closing`);
      writeResponse(socket, text(status, `${reason}\n`), false, false);
      closeOurSide();
    }

    /** FIN after the last response. Nothing more is read; a peer that keeps its side open gets one second. */
    function closeOurSide(): void {
      closing = true;
      stopClock();
      pending = Buffer.alloc(0);
      closeWithin(socket, 1000);
    }

    // #region keep-alive
    function processPending(): void {
      // cork: the responses written below leave together (one segment, not one per write()) when uncorked.
      socket.cork();
      try {
        answerPending();
      } finally {
        socket.uncork();
      }
    }

    function answerPending(): void {
      // Pipelining: several requests may wait in `pending`; answer them in order, one at a time.
      while (!closing && pending.length > 0) {
        const parsed = parseRequest(pending, limits.maxBody);
        if ('need' in parsed) return;
        if ('status' in parsed) {
          fail(parsed.status, parsed.reason);
          return;
        }
        const { request, used } = parsed;
        // The leftover bytes are the start of the next request (or nothing).
        pending = pending.subarray(used);
        served++;
        const res = route(request);
        if (limits.logRequests)
          log(
            `${peer} ${request.method} ${request.target} HTTP/${request.version} -> ${res.status} (request ${served} on this connection)`,
          );
        writeResponse(socket, res, request.method === 'HEAD', request.keepAlive);
        if (!request.keepAlive) {
          closeOurSide();
          return;
        }
        // The next request may already have begun in the leftover bytes: its clock runs from now.
        if (pending.length === 0) waitForNextRequest();
        else requestStarted();
        // A peer that sends requests but does not read the answers: stop reading until it catches up.
        if (socket.writableLength > MAX_QUEUED_BYTES) {
          socket.pause();
          socket.once('drain', () => {
            socket.resume();
            processPending();
          });
          return;
        }
      }
    }
    // #endregion keep-alive

    // After our FIN: dropped as it comes (the requests after a `Connection: close` are never answered), and a
    // peer that goes on past a request's worth is reset.
    const dropped = dropAfterClose(socket, MAX_HEADER_BYTES + limits.maxBody, log, peer);
    socket.on('data', (chunk: Buffer) => {
      if (dropped(chunk)) return;
      // The first bytes of a new request start its clock.
      if (pending.length === 0) requestStarted();
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      processPending();
    });
    // FIN from the client: it sends nothing more; what it sent has been answered above, so we close too.
    socket.on('end', () => {
      if (!closing) socket.end();
    });
  });
  return server;
}
// #endregion connection

/** Shows a raw HTTP message the way it is on the wire: one line per line end, with the CR and LF visible. */
function showRaw(log: Log, prefix: string, bytes: Buffer | string): void {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  const lines = text.split(/(?<=\n)/);
  for (const line of lines) log(`${prefix} ${JSON.stringify(line).slice(1, -1)}`);
}

/** Opens a connection, writes `request` in one write, and returns everything the server sends until it closes (or `until` matches). */
async function exchange(port: number, request: string, until?: RegExp): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(request);
  let got = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) {
    got += chunk;
    if (until?.test(got)) break;
  }
  socket.destroy();
  return got;
}

// #region raw
/** The other direction: node:http serves, and we speak HTTP to it by hand over a plain net socket. */
async function rawToNodeHttp(log: Log): Promise<void> {
  const server = http.createServer((_req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end('hello from node:http\n');
  });
  // node:http's server is a net.Server underneath: a subclass in Node's own code, with the same 'connection' event.
  log(`http.Server instanceof net.Server: ${server instanceof net.Server}`);
  server.on('connection', (socket) => {
    log(
      `node:http 'connection': a ${socket.constructor.name} from ${hostPort(socket.remoteAddress, socket.remotePort)}`,
    );
  });
  // The same guards this lab writes by hand, built in (read from this Node: the defaults changed over the years).
  log(
    `node:http's own limits: maxHeaderSize ${http.maxHeaderSize} bytes, headersTimeout ${server.headersTimeout} ms, requestTimeout ${server.requestTimeout} ms, keepAliveTimeout ${server.keepAliveTimeout} ms`,
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const request = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`;
  showRaw(logger('raw'), '>', request);
  const response = await exchange(port, request);
  showRaw(logger('raw'), '<', response);
  server.close();
}
// #endregion raw

async function demo(): Promise<void> {
  const log = logger('demo');
  const serverLog = logger('server');
  const limits: Limits = { maxBody: 64, requestTimeoutMs: 300, keepAliveMs: 2000, logRequests: true };
  const server = createHttpServer(limits, serverLog);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  printListening(serverLog, server.address());
  const { port } = server.address() as net.AddressInfo;
  log(
    `limits for the demo: bodies up to ${limits.maxBody} bytes, a request within ${limits.requestTimeoutMs} ms`,
  );
  const host = `Host: 127.0.0.1:${port}\r\n`;
  const raw = logger('client');
  const show = async (what: string, request: string, until?: RegExp) => {
    log(what);
    showRaw(raw, '>', request);
    showRaw(raw, '<', await exchange(port, request, until));
  };

  await show(
    '1. one request, one response; Connection: close ends the connection',
    `GET / HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
  );
  await show(
    '2. keep-alive and pipelining: three requests in one write, three responses in order on one connection',
    `GET / HTTP/1.1\r\n${host}\r\nGET /nope HTTP/1.1\r\n${host}\r\nPOST /echo HTTP/1.1\r\n${host}Content-Length: 5\r\nConnection: close\r\n\r\nhello`,
  );
  await show(
    '3. a chunked response: sizes in hex, a 0-size chunk at the end',
    `GET /chunked HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
  );
  await show(
    '4. a method we do not serve: 405, and Allow says which ones we do',
    `DELETE / HTTP/1.1\r\n${host}Connection: close\r\n\r\n`,
  );
  log('5. bad requests: each gets its status and a closed connection');
  const bad: [string, string][] = [
    ['a malformed request line', 'HELLO\r\n\r\n'],
    ['a malformed header (space before the colon)', `GET / HTTP/1.1\r\n${host}X-Bad : 1\r\n\r\n`],
    ['headers over 16 KiB', `GET / HTTP/1.1\r\n${host}X-Big: ${'x'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`],
    [`a body over ${limits.maxBody} bytes`, `POST /echo HTTP/1.1\r\n${host}Content-Length: 1000\r\n\r\n`],
    [
      `headers still unfinished after ${limits.requestTimeoutMs} ms (slowloris)`,
      `GET / HTTP/1.1\r\n${host}X-Slow: 1\r\n`,
    ],
  ];
  for (const [what, request] of bad) {
    const response = await exchange(port, request);
    raw(`${what}: ${JSON.stringify(response.split('\r\n')[0])}, then the server closed the connection`);
  }
  server.close();

  log('6. the other direction: node:http is the server, and we type the request by hand');
  await rawToNodeHttp(logger('demo'));
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const limits: Limits = {
    maxBody: args.int('max-body'),
    requestTimeoutMs: args.int('request-timeout-ms'),
    keepAliveMs: args.int('keep-alive-ms'),
    logRequests: !args.has('quiet'),
  };
  const server = createHttpServer(limits, log);
  server.on('error', (err) => fatal('server', err));
  stopOnSignal(server, log);
  server.listen(args.port, args.host, () => {
    printListening(log, server.address());
    log(
      `limits: headers up to ${MAX_HEADER_BYTES} bytes, bodies up to ${limits.maxBody} bytes, a request within ${limits.requestTimeoutMs} ms, keep-alive ${limits.keepAliveMs} ms, ${MAX_QUEUED_BYTES} bytes of responses queued per peer (then its requests wait unread)`,
    );
  });
} else if (args.role === 'raw') {
  await rawToNodeHttp(logger('raw'));
} else {
  await demo();
}
