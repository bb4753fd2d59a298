// Lab 15: WebSocket (RFC 6455) on the raw socket (notes 003): the opening handshake with node:crypto, then
// frames (FIN, opcodes, masking, 7/16/64-bit lengths, fragments), UTF-8 checks and the close handshake, no library.
// Run: npm run lab 15 (the demo) · npm run lab 15 server (echo) · npm run lab 15 chat, then open http://127.0.0.1:8090/
// Server flags: -- --port N (default 8090) --max-size BYTES --max-buffered BYTES --idle-ms MS --handshake-ms MS
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { TextDecoder } from 'node:util';
import { fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { closeWithin, dropAfterClose, type Guard, guard } from './lib/guard.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { badNick, foldNick, printable } from './lib/text.ts';

const args = parseLabArgs({
  roles: ['server', 'chat'],
  port: 8090,
  flags: {
    'max-size': {
      default: '65536',
      help: 'largest message in bytes (all its fragments); a larger one is closed with 1009',
    },
    'max-buffered': {
      default: '262144',
      help: 'bytes waiting for one slow reader (writableLength) before it is dropped',
    },
    'idle-ms': {
      default: '300000',
      help: 'silence before a ping; as long again with no answer and the peer is closed',
    },
    'handshake-ms': {
      default: '10000',
      help: 'the request head (at most 8 KiB) must have arrived this long after connecting (slowloris)',
    },
  },
});

interface Limits {
  maxSize: number;
  maxBuffered: number;
  idleMs: number;
  handshakeMs: number;
}

// #region protocol
// RFC 6455 §1.3: a fixed GUID no HTTP server would know; hashing the client's key with it proves that the
// server read a WebSocket handshake (and is not, say, a cache replaying an old answer).
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
const OP_NAME: Record<number, string> = {
  0: 'continuation',
  1: 'text',
  2: 'binary',
  8: 'close',
  9: 'ping',
  10: 'pong',
};
// Close codes a peer may send (§7.4.1, plus 1012-1014 from the IANA registry, and 3000-4999 for applications).
// 1005, 1006 and 1015 describe a connection that ended without a code: they never travel in a frame.
const validCloseCode = (code: number) =>
  (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);

/** A peer broke the protocol: we close with `code` (§7.4.1) and `message` as the reason. */
class ProtocolError extends Error {
  code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

interface Frame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}
// #endregion protocol

// #region accept
/** Sec-WebSocket-Accept = base64(SHA-1(Sec-WebSocket-Key + GUID)), §4.2.2. */
function acceptKey(key: string): string {
  let accept = '';
  // #region exercise-accept-key
  accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  // #endregion exercise-accept-key
  return accept;
}
// #endregion accept

// #region decoder
/**
 * The first frame at the front of `buf`, with the number of bytes it took, or undefined while it has not all
 * arrived. A broken rule throws a ProtocolError as soon as the header shows it, before any payload is kept.
 * `fromClient`: a client must mask every frame it sends, a server must never mask (§5.1).
 */
function readFrame(
  buf: Buffer,
  maxSize: number,
  fromClient: boolean,
): { frame: Frame; size: number } | undefined {
  if (buf.length < 2) return undefined;
  const b0 = buf[0] as number;
  const b1 = buf[1] as number;
  const fin = (b0 & 0x80) !== 0;
  const rsv = b0 & 0x70;
  const opcode = b0 & 0x0f;
  const masked = (b1 & 0x80) !== 0;
  // No extension was negotiated, so the three RSV bits must be 0 (§5.2); 3-7 and 11-15 are reserved opcodes.
  if (rsv !== 0) throw new ProtocolError(1002, `reserved bits set (0x${rsv.toString(16)}) with no extension`);
  if (!(opcode in OP_NAME)) throw new ProtocolError(1002, `reserved opcode ${opcode}`);
  if (masked !== fromClient)
    throw new ProtocolError(1002, fromClient ? 'unmasked client frame' : 'masked server frame');
  let length = b1 & 0x7f;
  // Control frames (close, ping, pong) fit in one frame of at most 125 bytes (§5.5).
  if (opcode >= 0x8 && !fin) throw new ProtocolError(1002, `fragmented ${OP_NAME[opcode]} frame`);
  if (opcode >= 0x8 && length > 125) throw new ProtocolError(1002, `${OP_NAME[opcode]} frame over 125 bytes`);
  let at = 2;
  // #region exercise-frame-length
  // 0-125: that is the length. 126: the next 2 bytes are the length. 127: the next 8 bytes (§5.2).
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = buf.readUInt16BE(2);
    at = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    const big = buf.readBigUInt64BE(2);
    if (big >> 63n) throw new ProtocolError(1002, 'a 64-bit length with its top bit set');
    // Anything past Number.MAX_SAFE_INTEGER is far past any --max-size: clamp it, the check below refuses it.
    length = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    at = 10;
  }
  // #endregion exercise-frame-length
  // Refuse a frame that will not fit before buffering a byte of it: the header alone tells its size.
  if (length > maxSize) throw new ProtocolError(1009, `a frame of ${length} bytes (limit ${maxSize})`);
  const maskAt = at;
  if (masked) at += 4;
  if (buf.length < at + length) return undefined;
  // A copy: the caller drops `buf` and the message may outlive it.
  const payload = Buffer.from(buf.subarray(at, at + length));
  // #region exercise-unmask
  // The 4-byte masking key XORs the payload byte by byte, cycling: byte i ^= key[i % 4] (§5.3).
  if (masked)
    for (let i = 0; i < payload.length; i++)
      payload[i] = (payload[i] as number) ^ (buf[maskAt + (i % 4)] as number);
  // #endregion exercise-unmask
  return { frame: { fin, opcode, payload }, size: at + length };
}
// #endregion decoder

// #region encoder
/** One frame. A server never masks; a client passes a fresh random 4-byte key for every frame. */
function encodeFrame(opcode: number, payload: Buffer, fin = true, mask?: Buffer): Buffer {
  const n = payload.length;
  const lengthBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lengthBytes + (mask ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | opcode;
  head[1] = (mask ? 0x80 : 0) | (lengthBytes === 0 ? n : lengthBytes === 2 ? 126 : 127);
  if (lengthBytes === 2) head.writeUInt16BE(n, 2);
  if (lengthBytes === 8) head.writeBigUInt64BE(BigInt(n), 2);
  if (!mask) return Buffer.concat([head, payload]);
  mask.copy(head, 2 + lengthBytes);
  const body = Buffer.from(payload);
  for (let i = 0; i < n; i++) body[i] = (body[i] as number) ^ (mask[i % 4] as number);
  return Buffer.concat([head, body]);
}

const closePayload = (code?: number, reason = '') => {
  if (code === undefined) return Buffer.alloc(0);
  const buf = Buffer.alloc(2 + Buffer.byteLength(reason));
  buf.writeUInt16BE(code, 0);
  buf.write(reason, 2);
  return buf;
};
// #endregion encoder

// #region handshake
interface Request {
  method: string;
  path: string;
  version: string;
  /** Header names in lower case; repeated headers joined with ', '. */
  headers: Record<string, string>;
}

const MAX_HEAD = 8192;

function parseHead(head: string): Request | undefined {
  const [requestLine = '', ...lines] = head.split('\r\n');
  const m = requestLine.match(/^([A-Z]+) (\S+) (HTTP\/\d\.\d)$/);
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { method: m[1] as string, path: m[2] as string, version: m[3] as string, headers };
}

const hasToken = (value: string | undefined, token: string) =>
  (value ?? '').split(',').some((t) => t.trim().toLowerCase() === token);

/** What is wrong with an opening handshake (§4.2.1), or undefined when it is a good one. */
function handshakeProblem(req: Request): { status: string; reason: string } | undefined {
  const bad = (reason: string) => ({ status: '400 Bad Request', reason });
  if (req.method !== 'GET') return bad(`the method must be GET, got ${req.method}`);
  if (req.version !== 'HTTP/1.1') return bad(`the version must be HTTP/1.1, got ${req.version}`);
  if (!req.headers.host) return bad('no Host header');
  if (!hasToken(req.headers.upgrade, 'websocket')) return bad('no Upgrade: websocket header');
  if (!hasToken(req.headers.connection, 'upgrade')) return bad('no Connection: Upgrade header');
  const key = req.headers['sec-websocket-key'];
  if (key === undefined) return bad('no Sec-WebSocket-Key header');
  // The key is 16 random bytes in base64: 24 characters ending in '=='.
  if (!/^[A-Za-z0-9+/]{22}==$/.test(key)) return bad('Sec-WebSocket-Key is not 16 bytes in base64');
  // §4.4: a version we do not speak gets 426 and the one we do.
  if (req.headers['sec-websocket-version'] !== '13')
    return { status: '426 Upgrade Required', reason: 'Sec-WebSocket-Version must be 13' };
  return undefined;
}

function httpResponse(status: string, body: string, extra: string[] = []): string {
  return [
    `HTTP/1.1 ${status}`,
    ...extra,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}
// #endregion handshake

/** One WebSocket connection, after a good handshake. */
interface Peer {
  key: string;
  path: string;
  socket: net.Socket;
  /** The send-queue limit every server here keeps (labs/lib/guard.ts): every frame to this peer goes through it. */
  guard: Guard;
  /** A message whose last fragment has not come yet. */
  message?: {
    opcode: number;
    frames: number;
    bytes: number;
    parts: Buffer[];
    text: string;
    utf8: TextDecoder;
  };
  /** We sent our close frame: from now on only the peer's close frame matters. */
  closing: boolean;
  idle: NodeJS.Timeout;
  pinged: boolean;
  /** Frames heard so far: the idle timer's verdict waits for the ones already in the socket. */
  heard: number;
}

interface App {
  /** A request without a WebSocket upgrade, e.g. the chat page: the whole response, or undefined for a 400. */
  http?(req: Request): string | undefined;
  /** Refuse a good handshake anyway (e.g. a foreign Origin): the status line and a reason. */
  refuse?(req: Request): { status: string; reason: string } | undefined;
  open?(peer: Peer, req: Request): void;
  message(peer: Peer, opcode: number, data: Buffer | string): void;
  closed?(peer: Peer): void;
}

// A peer that does not finish the close handshake gets this long, then its socket is destroyed.
const LINGER_MS = 1000;

function createWebSocketServer(limits: Limits, log: Log, app: App) {
  const server = net.createServer({ noDelay: true });
  const peers = new Set<Peer>();
  const sockets = new Set<net.Socket>();

  // #region send
  function send(peer: Peer, opcode: number, payload: Buffer): void {
    // write() never refuses: what a peer does not read waits in OUR memory. Past --max-buffered the guard
    // logs "SendQ exceeded" and resets the connection (no close frame: it would queue behind the rest).
    peer.guard.send(encodeFrame(opcode, payload));
  }

  /** Starts the close handshake (§7.1.2): our close frame, then wait (bounded) for the peer's. */
  function close(peer: Peer, code: number, reason: string): void {
    if (peer.closing || peer.socket.destroyed) return;
    peer.closing = true;
    log(`${peer.key} closing ${code}: ${reason}`);
    send(peer, OP.close, closePayload(code, reason));
    const timer = setTimeout(() => peer.socket.destroy(), LINGER_MS);
    peer.socket.once('close', () => clearTimeout(timer));
  }

  /** Fails the connection (§7.1.7): a close frame with the code, then our side of TCP closes at once. */
  function fail(peer: Peer, code: number, reason: string): void {
    close(peer, code, reason);
    peer.socket.end();
  }

  function onClose(peer: Peer, payload: Buffer): void {
    let code: number | undefined;
    let reason = '';
    if (payload.length === 1) throw new ProtocolError(1002, 'a close frame with a 1-byte payload');
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!validCloseCode(code)) throw new ProtocolError(1002, `invalid close code ${code}`);
      try {
        reason = new TextDecoder('utf-8', { fatal: true }).decode(payload.subarray(2));
      } catch {
        throw new ProtocolError(1007, 'invalid UTF-8 in the close reason');
      }
    }
    const answering = peer.closing;
    log(`${peer.key} close from peer: ${code ?? 'no code'}${reason ? ` '${reason}'` : ''}`);
    // The peer answered our close: done. Otherwise echo its code (§5.5.1), then the server closes TCP first.
    if (!answering) {
      send(peer, OP.close, closePayload(code));
      peer.closing = true;
    }
    peer.socket.end();
    const timer = setTimeout(() => peer.socket.destroy(), LINGER_MS);
    peer.socket.once('close', () => clearTimeout(timer));
  }

  // #endregion send

  // #region messages
  function onFrame(peer: Peer, frame: Frame): void {
    peer.heard++;
    peer.pinged = false;
    peer.idle.refresh();
    // After our close frame only the peer's close frame counts (§5.5.1): no more pongs, no more messages.
    if (peer.closing && frame.opcode !== OP.close) return;
    switch (frame.opcode) {
      case OP.ping:
        // A pong carries the ping's payload back (§5.5.3).
        send(peer, OP.pong, frame.payload);
        return;
      case OP.pong:
        return;
      case OP.close:
        onClose(peer, frame.payload);
        return;
      case OP.continuation:
        if (!peer.message) throw new ProtocolError(1002, 'a continuation frame with no message to continue');
        break;
      default:
        if (peer.message) throw new ProtocolError(1002, 'a new message before the last one ended');
        peer.message = {
          opcode: frame.opcode,
          frames: 0,
          bytes: 0,
          parts: [],
          text: '',
          // fatal: a bad byte throws instead of becoming U+FFFD; stream: a character may be cut between frames.
          utf8: new TextDecoder('utf-8', { fatal: true }),
        };
    }
    const m = peer.message;
    m.frames++;
    m.bytes += frame.payload.length;
    if (m.bytes > limits.maxSize) throw new ProtocolError(1009, `a message over ${limits.maxSize} bytes`);
    if (m.opcode === OP.text) {
      // Checked fragment by fragment, so bad UTF-8 fails at once, not when the message ends (§8.1).
      try {
        m.text += m.utf8.decode(frame.payload, { stream: !frame.fin });
      } catch {
        throw new ProtocolError(1007, 'invalid UTF-8 in a text message');
      }
    } else {
      m.parts.push(frame.payload);
    }
    if (!frame.fin) return;
    peer.message = undefined;
    log(`${peer.key} ${OP_NAME[m.opcode]} message, ${m.bytes} bytes in ${m.frames} frame(s)`);
    app.message(peer, m.opcode, m.opcode === OP.text ? m.text : Buffer.concat(m.parts));
  }
  // #endregion messages

  // #region upgrade

  function upgrade(socket: net.Socket, key: string, req: Request, rest: Buffer): void {
    const accept = acceptKey(req.headers['sec-websocket-key'] as string);
    socket.write(
      [
        'HTTP/1.1 101 Switching Protocols',
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Accept: ${accept}`,
        '',
        '',
      ].join('\r\n'),
    );
    const peer: Peer = {
      key,
      path: req.path,
      socket,
      // The idle limit is the ping below and the message size is readFrame's: the guard keeps the send queue.
      guard: guard(
        socket,
        log,
        { maxQueue: limits.maxBuffered, idleMs: 0 },
        { name: key, tell: () => undefined },
      ),
      closing: false,
      pinged: false,
      heard: 0,
      // Silence for idleMs/2: a ping. Silence for as long again (no pong, no message): closed. The verdict comes
      // after the poll phase: a server that was stopped or starved for a while wakes with this timer overdue and
      // the peer's pong already in the socket, and the event loop runs timers before it reads sockets.
      idle: setTimeout(() => {
        const heard = peer.heard;
        setImmediate(() => {
          if (peer.heard !== heard || peer.socket.destroyed) return; // a frame came after all
          if (peer.pinged) return fail(peer, 1001, `no frame for ${limits.idleMs} ms`);
          peer.pinged = true;
          send(peer, OP.ping, Buffer.from('are you there?'));
          peer.idle.refresh();
        });
      }, limits.idleMs / 2),
    };
    peers.add(peer);
    log(`${key} upgraded to WebSocket (path ${req.path})`);
    app.open?.(peer, req);
    let pending = rest;
    // Once our side is closed (a failure, or the close handshake done) nothing more is read (§7.1.7): what the
    // peer still sends is dropped, not kept, and a peer that goes on past a frame's worth is reset.
    const dropped = dropAfterClose(socket, limits.maxSize, log, key);
    const onData = (chunk: Buffer) => {
      if (dropped(chunk)) return;
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      // No peer input may throw out of this handler: every broken rule becomes a close code.
      try {
        for (;;) {
          if (socket.destroyed || socket.writableEnded) return;
          const next = readFrame(pending, limits.maxSize, true);
          if (!next) return;
          pending = pending.subarray(next.size);
          onFrame(peer, next.frame);
        }
      } catch (err) {
        pending = Buffer.alloc(0);
        if (err instanceof ProtocolError) fail(peer, err.code, err.message);
        else fail(peer, 1011, `internal error: ${describeError(err)}`);
      }
    };
    socket.on('data', onData);
    if (rest.length) onData(Buffer.alloc(0));
    socket.on('close', () => {
      clearTimeout(peer.idle);
      peers.delete(peer);
      log(`${key} disconnected`);
      app.closed?.(peer);
    });
  }

  server.on('connection', (socket) => {
    if (socket.remoteAddress === undefined) {
      socket.destroy();
      return;
    }
    const key = hostPort(socket.remoteAddress, socket.remotePort);
    socket.on('error', (err) => log(`${key} error: ${describeError(err)}`));
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // Until the handshake is done: a bounded request head, and a deadline for all of it from the connect, so a
    // peer that trickles a byte now and then cannot hold the connection (an idle timer would restart each time).
    const deadline = setTimeout(() => {
      log(`${key} no request head within ${limits.handshakeMs} ms: closing`);
      socket.destroy();
    }, limits.handshakeMs);
    socket.on('close', () => clearTimeout(deadline));
    let head = Buffer.alloc(0);
    // A response that is all there is (a refusal, the page) closes our side: nothing more is read (dropped, and
    // reset past a head's worth), and the socket is gone LINGER_MS later even if the peer never closes its side.
    const answerAndClose = (response: string) => {
      closeWithin(socket, LINGER_MS, response);
      socket.on('data', dropAfterClose(socket, MAX_HEAD, log, key));
    };
    const reject = (status: string, reason: string, extra: string[] = []) => {
      log(`${key} rejected: ${status.slice(0, 3)} ${reason}`);
      answerAndClose(httpResponse(status, `${reason}\n`, extra));
    };
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_HEAD) {
          socket.off('data', onHead);
          clearTimeout(deadline);
          reject('431 Request Header Fields Too Large', `a request head over ${MAX_HEAD} bytes`);
        }
        return;
      }
      socket.off('data', onHead);
      clearTimeout(deadline);
      const req = parseHead(head.subarray(0, end).toString('latin1'));
      if (!req) return reject('400 Bad Request', 'not an HTTP request');
      const rest = head.subarray(end + 4);
      const page = hasToken(req.headers.upgrade, 'websocket') ? undefined : app.http?.(req);
      if (page !== undefined) {
        log(`${key} ${req.method} ${req.path}: served over plain HTTP`);
        return answerAndClose(page);
      }
      const problem = handshakeProblem(req) ?? app.refuse?.(req);
      if (problem) {
        const extra = problem.status.startsWith('426') ? ['Sec-WebSocket-Version: 13'] : [];
        return reject(problem.status, problem.reason, extra);
      }
      upgrade(socket, key, req, rest);
    };
    socket.on('data', onHead);
  });

  async function shutdown(): Promise<void> {
    log(`shutting down: closing ${peers.size} WebSocket connection(s) with 1001`);
    for (const peer of peers) close(peer, 1001, 'server shutting down');
    // Connections still in their handshake have no close handshake to do.
    const open = new Set([...peers].map((p) => p.socket));
    for (const socket of sockets) if (!open.has(socket)) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
    log('all connections closed');
  }

  // #endregion upgrade

  return { server, peers, send, close, shutdown };
}

// #region echo
/** The `server` role: every text and binary message goes back to its sender, at any path. */
function echoApp(ws: () => ReturnType<typeof createWebSocketServer>): App {
  return {
    message(peer, opcode, data) {
      ws().send(peer, opcode, typeof data === 'string' ? Buffer.from(data) : data);
    },
  };
}
// #endregion echo

// #region chat
// The relay rules of chapters 08 and 09 (labs/lib/text.ts): printable() removes ESC sequences and shows what is
// left of C0/C1 controls, bare CR, bidi and invisible format characters (Cc, Cf, Zl, Zp) as '?', so nobody
// paints on another member's terminal; badNick() says what a name may be (letters of any script with their
// marks, 24 at most), and names are unique in their folded form (foldNick: `Alice`, `ａｌｉｃｅ`, `alice`).
// A member who gives no name is 'anonymous', as in chapter 09: that one name may be shared.
const DEFAULT_NAME = 'anonymous';

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>lab 15 chat</title>
<style>body{font:16px system-ui;max-width:40em;margin:2em auto}#log{list-style:none;padding:0}</style>
<h1>lab 15 chat</h1>
<p id="status">connecting…</p>
<ul id="log"></ul>
<form id="say"><input id="text" autocomplete="off" autofocus size="40"> <button>send</button></form>
<script>
const name = new URLSearchParams(location.search).get('name') || 'anonymous';
const ws = new WebSocket('ws://' + location.host + '/chat?name=' + encodeURIComponent(name));
const show = (text) => {
  const li = document.createElement('li');
  li.textContent = text; // text, never HTML: a message cannot inject markup
  document.getElementById('log').append(li);
};
ws.onopen = () => { document.getElementById('status').textContent = 'connected as ' + name; };
ws.onmessage = (e) => show(e.data);
ws.onclose = (e) => { document.getElementById('status').textContent = 'closed: ' + e.code + ' ' + e.reason; };
document.getElementById('say').onsubmit = (e) => {
  e.preventDefault();
  const input = document.getElementById('text');
  if (input.value) { ws.send(input.value); show('you: ' + input.value); input.value = ''; }
};
</script>
`;

/** The `chat` role: chapter 09's room over WebSocket. Every text message goes to every other member. */
function chatApp(ws: () => ReturnType<typeof createWebSocketServer>, log: Log): App {
  const names = new Map<Peer, string>();
  const broadcast = (from: Peer | undefined, text: string) => {
    for (const peer of names.keys()) if (peer !== from) ws().send(peer, OP.text, Buffer.from(text));
  };
  return {
    http(req) {
      if (req.method !== 'GET' || new URL(req.path, 'http://x').pathname !== '/') return undefined;
      const body = Buffer.from(PAGE);
      return `HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${PAGE}`;
    },
    // A browser sends the page's Origin with every WebSocket: one from another site is some page trying to
    // use the visitor's browser to join (cross-site WebSocket hijacking). Tools like ws send none.
    refuse(req) {
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host}`)
        return { status: '403 Forbidden', reason: `Origin ${origin} is not this site` };
      return undefined;
    },
    open(peer) {
      const name = new URL(peer.path, 'http://x').searchParams.get('name') || DEFAULT_NAME;
      // A bad or taken name is refused, not replaced: the member is told why, then closed with 1008 (policy).
      const refuse = (why: string) => {
        log(`${peer.key} refused: ${why}`);
        ws().send(peer, OP.text, Buffer.from(`! ${why}`));
        ws().close(peer, 1008, 'name refused');
      };
      const why = badNick(name);
      if (why) return refuse(why);
      const taken = [...names.values()].some((n) => foldNick(n) === foldNick(name));
      if (name !== DEFAULT_NAME && taken) return refuse(`the name '${name}' is taken`);
      names.set(peer, name);
      log(`${peer.key} joined as ${name} (${names.size} online)`);
      ws().send(peer, OP.text, Buffer.from(`* welcome, ${name}; ${names.size} online`));
      broadcast(peer, `* ${name} joined; ${names.size} online`);
    },
    message(peer, opcode, data) {
      // 1003: this endpoint takes text only (§7.4.1).
      if (opcode !== OP.text) return ws().close(peer, 1003, 'text messages only');
      // A refused member's lines (sent before our close arrived) go nowhere.
      const name = names.get(peer);
      if (name !== undefined) broadcast(peer, `${name}: ${printable(data as string)}`);
    },
    closed(peer) {
      const name = names.get(peer);
      if (name === undefined) return;
      names.delete(peer);
      broadcast(undefined, `* ${name} left; ${names.size} online`);
    },
  };
}
// #endregion chat

// #region client
/** A bare client for the demo: the other side of every rule above (it must mask, and check the accept key). */
async function connect(
  port: number,
  name: string,
  path = '/',
  showHead = false,
  key = randomBytes(16).toString('base64'),
) {
  const log = logger(name);
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', (err) => log(`error: ${describeError(err)}`));
  await once(socket, 'connect');
  const request = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  socket.write(`${request.join('\r\n')}\r\n\r\n`);
  if (showHead) for (const line of request) log(`> ${line}`);
  let buf = Buffer.alloc(0);
  const frames: Frame[] = [];
  let wake = () => {};
  let headDone = false;
  let headArrived = () => {};
  const ready = new Promise<void>((resolve) => {
    headArrived = resolve;
  });
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (!headDone) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      if (showHead) for (const line of head) log(`< ${line}`);
      const accept = head
        .find((l) => l.toLowerCase().startsWith('sec-websocket-accept:'))
        ?.slice(21)
        .trim();
      if (accept !== acceptKey(key)) log(`the accept key is WRONG: ${accept} (${head[0]})`);
      else if (showHead) log('the accept key checks out: base64(SHA-1(key + GUID))');
      headDone = true;
      headArrived();
      buf = buf.subarray(end + 4);
    }
    for (let next = readFrame(buf, 1 << 24, false); next; next = readFrame(buf, 1 << 24, false)) {
      frames.push(next.frame);
      buf = buf.subarray(next.size);
    }
    wake();
  });
  socket.on('close', () => {
    wake();
    headArrived();
  });
  await ready;
  return {
    socket,
    /** Sends one frame, masked with a fresh key as a client must, unless `unmasked` (to misbehave). */
    send(opcode: number, payload: Buffer | string, fin = true, unmasked = false) {
      const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
      socket.write(encodeFrame(opcode, bytes, fin, unmasked ? undefined : randomBytes(4)));
    },
    raw: (bytes: Buffer) => socket.write(bytes),
    /** The next frame from the server; undefined once the connection has closed. */
    async next(): Promise<Frame | undefined> {
      while (frames.length === 0 && !socket.destroyed) await new Promise<void>((r) => (wake = r));
      return frames.shift();
    },
  };
}

const describeFrame = (f: Frame) => {
  if (f.opcode === OP.close) {
    const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 'no code';
    return `close ${code}${f.payload.length > 2 ? ` '${f.payload.subarray(2)}'` : ''}`;
  }
  const body =
    f.opcode === OP.binary || f.payload.length > 40 ? `${f.payload.length} bytes` : `'${f.payload}'`;
  return `${OP_NAME[f.opcode]}${f.fin ? '' : ' (not FIN)'} ${body}`;
};
// #endregion client

async function demo(): Promise<void> {
  const log = logger('demo');
  const limits: Limits = { maxSize: 65536, maxBuffered: 262144, idleMs: 10_000, handshakeMs: 10_000 };
  let ws: ReturnType<typeof createWebSocketServer> | undefined;
  const get = () => ws as ReturnType<typeof createWebSocketServer>;
  // The echo server, plus a hook so the demo can wait for the server's side of each connection to close.
  let serverClosed = () => {};
  const gone = () =>
    new Promise<void>((resolve) => {
      serverClosed = resolve;
    });
  ws = createWebSocketServer(limits, logger('server'), { ...echoApp(get), closed: () => serverClosed() });
  ws.server.listen(0, '127.0.0.1');
  await once(ws.server, 'listening');
  printListening(logger('server'), ws.server.address());
  const { port } = ws.server.address() as net.AddressInfo;

  log('the opening handshake: an HTTP GET with Upgrade: websocket, answered by 101 and the accept key');
  const cGone = gone();
  // RFC 6455's own example key (§1.3), so the accept key can be checked by hand. A real client picks 16
  // random bytes per connection, as the other connections below do.
  const c = await connect(port, 'client', '/echo', true, 'dGhlIHNhbXBsZSBub25jZQ==');
  const clog = logger('client');
  const expect = async () => {
    const f = await c.next();
    clog(`< ${f ? describeFrame(f) : 'connection closed'}`);
    return f;
  };

  log('a text message in one frame, masked by the client; the server echoes it unmasked');
  c.send(OP.text, 'hello');
  clog("> text 'hello' (masked)");
  await expect();

  log('three sizes, three length encodings: 7 bits (0-125), 16 bits (126-65535), 64 bits (65536 and up)');
  for (const size of [125, 126, 65536]) {
    c.send(OP.binary, Buffer.alloc(size, 0x61));
    clog(
      `> binary ${size} bytes: header ${encodeFrame(OP.binary, Buffer.alloc(size)).length - size + 4} bytes`,
    );
    await expect();
  }

  log(
    "a fragmented text message: '你好, world' in three frames, '你' cut between the first two; a ping in between",
  );
  const text = Buffer.from('你好, world');
  c.send(OP.text, text.subarray(0, 1), false);
  c.send(OP.ping, 'between fragments');
  c.send(OP.continuation, text.subarray(1, 6), false);
  c.send(OP.continuation, text.subarray(6), true);
  clog(
    `> text (not FIN) 1 byte, ping, continuation (not FIN) 5 bytes, continuation ${text.length - 6} bytes`,
  );
  await expect();
  await expect();

  log('the close handshake: the client sends 1000, the server echoes it and closes the TCP connection first');
  c.send(OP.close, closePayload(1000, 'bye'));
  clog("> close 1000 'bye'");
  await expect();
  await expect();
  await cGone;

  log('misbehaving peers, each with the RFC answer');
  const cases: [string, (p: Awaited<ReturnType<typeof connect>>) => void][] = [
    ['an unmasked client frame', (p) => p.send(OP.text, 'naked', true, true)],
    ['a reserved opcode (3)', (p) => p.send(3, 'what is this')],
    [
      'a ping of 126 bytes (control frames stop at 125)',
      (p) => p.raw(encodeFrame(OP.ping, Buffer.alloc(126), true, randomBytes(4))),
    ],
    ['invalid UTF-8 in a text message (0xff)', (p) => p.send(OP.text, Buffer.from([0x68, 0x69, 0xff]))],
    ['a message over --max-size (65537 bytes)', (p) => p.send(OP.binary, Buffer.alloc(65537))],
  ];
  for (const [what, misbehave] of cases) {
    log(`${what}:`);
    const pGone = gone();
    const p = await connect(port, 'client', '/');
    misbehave(p);
    const f = await p.next();
    clog(`< ${f ? describeFrame(f) : 'connection closed'}`);
    await pGone;
  }

  log('a bad handshake (no Sec-WebSocket-Key) gets 400 and never becomes a WebSocket');
  const bad = net.connect({ port, host: '127.0.0.1' });
  bad.end(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
  const [reply] = (await once(bad, 'data')) as [Buffer];
  clog(`< ${reply.toString().split('\r\n')[0]}`);
  await once(bad, 'close');
  await ws.shutdown();
  log('done');
}

if (args.role === 'server' || args.role === 'chat') {
  const log = logger(args.role === 'chat' ? 'chat' : 'server');
  const limits: Limits = {
    maxSize: args.int('max-size'),
    maxBuffered: args.int('max-buffered'),
    idleMs: Math.max(2, args.int('idle-ms')),
    handshakeMs: args.int('handshake-ms'),
  };
  let ws: ReturnType<typeof createWebSocketServer> | undefined;
  const get = () => ws as ReturnType<typeof createWebSocketServer>;
  ws = createWebSocketServer(limits, log, args.role === 'chat' ? chatApp(get, log) : echoApp(get));
  const { server } = ws;
  server.on('error', (err) => fatal(args.role, err));
  // Registered before the listening line: a test may signal as soon as it reads it.
  onShutdown(() => get().shutdown());
  server.listen(args.port, args.host, () => {
    printListening(log, server.address());
    log(
      `limits: messages up to ${limits.maxSize} bytes, ${limits.maxBuffered} unread bytes per peer, a ping after ${limits.idleMs / 2} ms of silence, a request head within ${limits.handshakeMs} ms`,
    );
    if (args.role === 'chat')
      log(
        `open http://${hostPort(args.host, (server.address() as net.AddressInfo).port)}/ in two browser tabs`,
      );
  });
} else {
  await demo();
}
