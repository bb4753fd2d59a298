// Lab 15: WebSocket on the raw socket (docs/15-websocket.md). The peers here are independent of the lab's code:
// a frame encoder written again in this file (for the Autobahn-style cases), the `ws` package, and a real Chromium.
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  busy,
  type LabProcess,
  noTest,
  REPLY_MS,
  root,
  STALL_MS,
  setWaitDefaults,
  spawnFile,
  spawnLab,
  type TestHooks,
} from './helpers/lab.ts';
import { connectClient, floodPastClose } from './helpers/net.ts';
import { signal } from './helpers/proc.ts';
import { settleWithin } from './helpers/watch.ts';

// A lab that is up answers in milliseconds: a wait with nothing new for REPLY_MS has stalled (a starter's gap).
// The same deadline holds for the raw waits below (a frame, a close, a ws client's event); a wait on one of the
// lab's timers (--idle-ms) is that timer plus REPLY_MS. The tests run concurrently (describe.concurrent).
setWaitDefaults({ quiet: REPLY_MS, stalled: STALL_MS });

/** The patterns match lines in this order (a local stand-in for the harness's expectInOrder, not merged yet). */
function expectInOrder(lines: string[], patterns: RegExp[]): void {
  let from = 0;
  for (const re of patterns) {
    const at = lines.findIndex((l, i) => i >= from && re.test(l));
    expect(at, `no line matching ${re} after line ${from}:\n${lines.join('\n')}`).not.toBe(-1);
    from = at + 1;
  }
}

/** A ws client in a process of its own, for the idle tests: it answers pings at once however starved this worker is. */
const wsPeer = path.join(root, 'test/fixtures/ws-peer.ts');

const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;
const NAMES: Record<number, string> = {
  0: 'continuation',
  1: 'text',
  2: 'binary',
  8: 'close',
  9: 'ping',
  10: 'pong',
};

interface Frame {
  fin: boolean;
  rsv: number;
  op: number;
  masked: boolean;
  payload: Buffer;
}

/** A client frame, masked unless told otherwise; `rsv` sets the three reserved bits (0-7). */
function frame(
  op: number,
  payload: Buffer | string = '',
  { fin = true, rsv = 0, mask = true }: { fin?: boolean; rsv?: number; mask?: boolean } = {},
): Buffer {
  const body = Buffer.from(payload);
  const n = body.length;
  const ext = n > 65535 ? 8 : n > 125 ? 2 : 0;
  const head = Buffer.alloc(2 + ext);
  head[0] = (fin ? 0x80 : 0) | (rsv << 4) | op;
  head[1] = (mask ? 0x80 : 0) | (ext === 8 ? 127 : ext === 2 ? 126 : n);
  if (ext === 2) head.writeUInt16BE(n, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(n), 2);
  if (!mask) return Buffer.concat([head, body]);
  const key = randomBytes(4);
  return Buffer.concat([head, key, body.map((b, i) => b ^ (key[i % 4] as number))]);
}

const closeBody = (code: number, reason: Buffer | string = '') => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, Buffer.from(reason)]);
};

/** A frame as one short comparable string: `text:Hello`, `close:1002`, `binary:65536b:1a2b3c4d`. */
function show(op: number, payload: Buffer | string = ''): string {
  const p = Buffer.from(payload);
  if (op === OP.close) return p.length >= 2 ? `close:${p.readUInt16BE(0)}` : 'close';
  const body =
    p.length > 64 ? `${p.length}b:${createHash('md5').update(p).digest('hex').slice(0, 8)}` : p.toString();
  return `${NAMES[op] ?? `op${op}`}:${body}`;
}

/** Parses frames sent by the server; a masked one is recorded as an error (servers never mask). */
function parseFrames(buf: Buffer, out: Frame[]): Buffer {
  for (;;) {
    if (buf.length < 2) return buf;
    let len = (buf[1] as number) & 0x7f;
    let at = 2;
    if (len === 126) {
      if (buf.length < 4) return buf;
      len = buf.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (buf.length < 10) return buf;
      len = Number(buf.readBigUInt64BE(2));
      at = 10;
    }
    const masked = ((buf[1] as number) & 0x80) !== 0;
    if (masked) at += 4;
    if (buf.length < at + len) return buf;
    out.push({
      fin: ((buf[0] as number) & 0x80) !== 0,
      rsv: ((buf[0] as number) >> 4) & 7,
      op: (buf[0] as number) & 0x0f,
      masked,
      payload: Buffer.from(buf.subarray(at, at + len)),
    });
    buf = buf.subarray(at + len);
  }
}

interface Raw {
  socket: net.Socket;
  frames: Frame[];
  /**
   * Every frame received, once the server has closed the TCP connection; fails after `ms` (REPLY_MS: the server
   * closes at once after a close or a broken rule; a wait on one of its timers adds that timer).
   */
  done(ms?: number): Promise<Frame[]>;
  /** Resolves once `n` frames have arrived; fails once nothing has come for REPLY_MS. */
  waitFrames(n: number): Promise<Frame[]>;
}

/** A client's opening handshake, with a fresh key. */
const upgradeRequest = (port: number, urlPath = '/', key = randomBytes(16).toString('base64')) =>
  `GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;

/** Opens a WebSocket by hand (a handshake with a random key, checked), then hands over the raw socket. */
async function openRaw(t: TestHooks, port: number, urlPath = '/'): Promise<Raw> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => {}); // a reset is how some of these connections end: a close, below
  t.onTestFinished(() => {
    socket.destroy();
  });
  await settleWithin(once(socket, 'connect'), REPLY_MS, `connecting to the lab on port ${port}`);
  const key = randomBytes(16).toString('base64');
  socket.write(upgradeRequest(port, urlPath, key));
  const frames: Frame[] = [];
  let buf: Buffer = Buffer.alloc(0);
  let head: string | undefined;
  let wake = () => {};
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (head === undefined) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      head = buf.subarray(0, end).toString('latin1');
      buf = buf.subarray(end + 4);
    }
    buf = parseFrames(buf, frames);
    wake();
  });
  // Not once(): it rejects on 'error', and a reset is how some of these connections end.
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.on('close', () => wake());
  const seen = () => `head: ${head}; frames: ${frames.map((f) => show(f.op, f.payload))}`;
  /** Waits for `ready`; fails on a close, or once nothing has come for REPLY_MS (an answer takes milliseconds). */
  const until = async (ready: () => boolean, what: string) => {
    while (!ready()) {
      if (socket.destroyed) throw new Error(`closed before ${what}; ${seen()}`);
      const woken = new Promise<void>((r) => {
        wake = r;
      });
      await settleWithin(woken, REPLY_MS, () => `nothing new before ${what}; ${seen()}`);
    }
  };
  await until(() => head !== undefined, 'the end of the handshake response');
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  expect(head?.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
  expect(head).toContain(`\r\nSec-WebSocket-Accept: ${accept}`);
  return {
    socket,
    frames,
    done: (ms = REPLY_MS) =>
      settleWithin(
        closed.then(() => frames),
        ms,
        `the server closing the connection (${seen()})`,
      ),
    async waitFrames(n) {
      await until(() => frames.length >= n, `${n} frames`);
      return frames;
    },
  };
}

/** Writes `data` in pieces of `size` bytes, each its own write(). */
async function chopped(socket: net.Socket, data: Buffer, size: number): Promise<void> {
  for (let i = 0; i < data.length; i += size) {
    await new Promise<void>((resolve) => socket.write(data.subarray(i, i + size), () => resolve()));
  }
}

interface Case {
  id: string;
  what: string;
  send: Buffer[];
  expect: string[];
  /** Write in pieces of this many bytes (Autobahn's octet-wise chops: 1), or one write() per frame. */
  chop?: number | 'frame';
  /** Do not add the client's close 1000 at the end: the server must close by itself, before the end. */
  noClose?: boolean;
}

const A = (n: number) => 'a'.repeat(n);
const B = (n: number) => Buffer.alloc(n, 0xfe);
/** Autobahn's κόσμε: its ό is U+1F79 (E1 BD B9, three bytes), not the two-byte U+03CC. */
const KOSME = '\u03ba\u1f79\u03c3\u03bc\u03b5';
/** Where κόσμε's characters end, in bytes: 2, 5, 7, 9, 11. */
const KOSME_ENDS = [...KOSME].map((_, i) => Buffer.byteLength([...KOSME].slice(0, i + 1).join('')));
const valid = 'Hello-µ@ßöäüàá-UTF-8!!';
/** Splits a payload into one frame per byte: text, then continuations. */
const perByte = (bytes: Buffer) =>
  [...bytes].map((b, i) =>
    frame(i === 0 ? OP.text : OP.continuation, Buffer.from([b]), { fin: i === bytes.length - 1 }),
  );

/** Autobahn's 6.3.1: κόσμε, a UTF-16 surrogate (ED A0 80), then 'edited'. */
const KOSME_SURROGATE = Buffer.from([...Buffer.from(KOSME), 0xed, 0xa0, 0x80, ...Buffer.from('edited')]);

const hex = (h: string) => Buffer.from(h, 'hex');
const bytesFrom = (first: number, end: number) =>
  Buffer.from(Array.from({ length: end - first }, (_, i) => first + i));
const all = (valid: boolean, hexes: string[]): [boolean, Buffer][] => hexes.map((h) => [valid, hex(h)]);
/** 6.22's noncharacters: EF BF BE/BF, then U+nFFFE and U+nFFFF of every plane (F0 8F BF BE/BF would be overlong). */
const nonCharacters = [
  'efbfbe',
  'efbfbf',
  ...['f0', 'f1', 'f2', 'f3', 'f4'].flatMap((z1) =>
    (z1 === 'f4' ? ['8f'] : ['8f', '9f', 'af', 'bf']).flatMap((z2) =>
      ['be', 'bf'].map((z3) => `${z1}${z2}bf${z3}`).filter((z) => !z.startsWith('f08f')),
    ),
  ),
];
const missingLast = [
  'c0',
  'e080',
  'f08080',
  'f8808080',
  'fc80808080',
  'df',
  'efbf',
  'f7bfbf',
  'fbbfbfbf',
  'fdbfbfbfbf',
];
/**
 * Autobahn's 6.5 to 6.23, one group per subsection: Markus Kuhn's UTF-8 decoder stress test, each payload
 * with whether it is valid UTF-8. A valid one is echoed; an invalid one closes the connection with 1007.
 */
const utf8Groups: [string, [boolean, Buffer][]][] = [
  [
    'some valid UTF-8',
    ['hello$world', 'hello¢world', 'hello€world', 'hello\u{24b62}world', KOSME].map((t) => [
      true,
      Buffer.from(t),
    ]),
  ],
  [
    'every prefix of κόσμε (whole only where it ends on a character)',
    [...Buffer.from(KOSME)].map((_, i) => [
      KOSME_ENDS.includes(i + 1),
      Buffer.from(KOSME).subarray(0, i + 1),
    ]),
  ],
  ['the first sequence of each length', all(true, ['00', 'c280', 'e0a080', 'f0908080'])],
  ['the first 5- and 6-byte sequences (past U+10FFFF)', all(false, ['f888808080', 'fc8480808080'])],
  ['the last sequence of each length', all(true, ['7f', 'dfbf', 'efbfbf', 'f48fbfbf'])],
  [
    'the last 4-, 5- and 6-byte sequences (past U+10FFFF)',
    all(false, ['f7bfbfbf', 'fbbfbfbfbf', 'fdbfbfbfbfbf']),
  ],
  ['other boundaries', [...all(true, ['ed9fbf', 'ee8080', 'efbfbd', 'f48fbfbf']), [false, hex('f4908080')]]],
  [
    'unexpected continuation bytes',
    [
      ...all(false, ['80', 'bf', '80bf', '80bf80', '80bf80bf', '80bf80bf80', '80bf80bf80bf']),
      [false, bytesFrom(0x80, 0xbf)],
    ],
  ],
  [
    'lonely start bytes, each followed by a space',
    [
      [0xc0, 0xdf],
      [0xe0, 0xef],
      [0xf0, 0xf7],
      [0xf8, 0xfb],
      [0xfc, 0xfd],
    ].map(([first, end]) => [
      false,
      Buffer.from([...bytesFrom(first as number, end as number)].flatMap((c) => [c, 0x20])),
    ]),
  ],
  ['sequences with their last continuation byte missing', all(false, missingLast)],
  ['those ten concatenated', all(false, [missingLast.join('')])],
  ['impossible bytes', all(false, ['fe', 'ff', 'fefeffff'])],
  ['an overlong "/"', all(false, ['c0af', 'e080af', 'f08080af', 'f8808080af', 'fc80808080af'])],
  [
    'the longest overlong sequences',
    all(false, ['c1bf', 'e09fbf', 'f08fbfbf', 'f887bfbfbf', 'fc83bfbfbfbf']),
  ],
  ['an overlong NUL', all(false, ['c080', 'e08080', 'f0808080', 'f880808080', 'fc8080808080'])],
  [
    'single UTF-16 surrogates',
    all(false, ['eda080', 'edadbf', 'edae80', 'edafbf', 'edb080', 'edbe80', 'edbfbf']),
  ],
  [
    'paired UTF-16 surrogates',
    all(false, [
      'eda080edb080',
      'eda080edbfbf',
      'edadbfedb080',
      'edadbfedbfbf',
      'edae80edb080',
      'edae80edbfbf',
      'edafbfedb080',
      'edafbfedbfbf',
    ]),
  ],
  ['noncharacters (valid UTF-8)', all(true, nonCharacters)],
  [
    'the Specials block, U+FFF9 to U+FFFF (valid)',
    all(true, ['efbfb9', 'efbfba', 'efbfbb', 'efbfbc', 'efbfbd', 'efbfbe', 'efbfbf']),
  ],
];

/** An Autobahn case and its next two numbers: the same frames one write() per frame, then one byte at a time. */
const written = (c: Case, perFrame: string, perByte: string): Case[] => [
  c,
  { ...c, id: perFrame, what: `${c.what}; one write() per frame`, chop: 'frame' },
  { ...c, id: perByte, what: `${c.what}; written one byte at a time`, chop: 1 },
];

const cases: Case[] = [
  // 1: framing, text and binary of every length encoding
  ...[0, 125, 126, 127, 128, 65535, 65536].map((n, i) => ({
    id: `1.1.${i + 1}`,
    what: `a ${n}-byte text message is echoed`,
    send: [frame(OP.text, A(n))],
    expect: [show(OP.text, A(n)), 'close:1000'],
  })),
  {
    id: '1.1.8',
    what: 'a 65536-byte text message written in chops of 997 bytes is echoed',
    send: [frame(OP.text, A(65536))],
    chop: 997,
    expect: [show(OP.text, A(65536)), 'close:1000'],
  },
  ...[0, 125, 126, 127, 128, 65535, 65536].map((n, i) => ({
    id: `1.2.${i + 1}`,
    what: `a ${n}-byte binary message is echoed`,
    send: [frame(OP.binary, B(n))],
    expect: [show(OP.binary, B(n)), 'close:1000'],
  })),
  {
    id: '1.2.8',
    what: 'a 65536-byte binary message written in chops of 997 bytes is echoed',
    send: [frame(OP.binary, B(65536))],
    chop: 997,
    expect: [show(OP.binary, B(65536)), 'close:1000'],
  },
  // 2: ping and pong
  {
    id: '2.1',
    what: 'a ping with no payload gets a pong with none',
    send: [frame(OP.ping)],
    expect: ['pong:', 'close:1000'],
  },
  {
    id: '2.2',
    what: 'a ping with a text payload gets it back in the pong',
    send: [frame(OP.ping, 'Hello, world!')],
    expect: ['pong:Hello, world!', 'close:1000'],
  },
  {
    id: '2.3',
    what: 'a ping with a binary (not UTF-8) payload gets it back in the pong',
    send: [frame(OP.ping, Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff]))],
    expect: [show(OP.pong, Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])), 'close:1000'],
  },
  {
    id: '2.4',
    what: 'a ping of 125 bytes (the most a control frame holds) gets a pong',
    send: [frame(OP.ping, B(125))],
    expect: [show(OP.pong, B(125)), 'close:1000'],
  },
  {
    id: '2.5',
    what: 'a ping of 126 bytes is a protocol error: 1002, no pong',
    send: [frame(OP.ping, B(126))],
    expect: ['close:1002'],
  },
  {
    id: '2.6',
    what: 'a 125-byte ping written one byte at a time still gets its pong',
    send: [frame(OP.ping, B(125))],
    chop: 1,
    expect: [show(OP.pong, B(125)), 'close:1000'],
  },
  { id: '2.7', what: 'an unsolicited pong gets no answer', send: [frame(OP.pong)], expect: ['close:1000'] },
  {
    id: '2.8',
    what: 'an unsolicited pong with a payload gets no answer',
    send: [frame(OP.pong, 'unsolicited pong payload')],
    expect: ['close:1000'],
  },
  {
    id: '2.9',
    what: 'an unsolicited pong, then a ping: only the ping is answered',
    send: [frame(OP.pong, 'unsolicited'), frame(OP.ping, 'solicited')],
    expect: ['pong:solicited', 'close:1000'],
  },
  {
    id: '2.10',
    what: 'ten pings get ten pongs, in order',
    send: Array.from({ length: 10 }, (_, i) => frame(OP.ping, `ping ${i}`)),
    expect: [...Array.from({ length: 10 }, (_, i) => `pong:ping ${i}`), 'close:1000'],
  },
  {
    id: '2.11',
    what: 'ten pings written one byte at a time get ten pongs, in order',
    send: Array.from({ length: 10 }, (_, i) => frame(OP.ping, `ping ${i}`)),
    chop: 1,
    expect: [...Array.from({ length: 10 }, (_, i) => `pong:ping ${i}`), 'close:1000'],
  },
  // 3: reserved bits
  {
    id: '3.1',
    what: 'RSV = 1 on a text frame: 1002',
    send: [frame(OP.text, 'x', { rsv: 1 })],
    expect: ['close:1002'],
  },
  {
    id: '3.2',
    what: 'a good text, a text with RSV = 2, a ping: the first is echoed, then 1002, and the ping is never answered',
    send: [frame(OP.text, 'good'), frame(OP.text, 'bad', { rsv: 2 }), frame(OP.ping)],
    expect: ['text:good', 'close:1002'],
  },
  {
    id: '3.3',
    what: 'the same with RSV = 3, one write() per frame: still 1002 after the echo',
    send: [frame(OP.text, 'good'), frame(OP.text, 'bad', { rsv: 3 }), frame(OP.ping)],
    chop: 'frame',
    expect: ['text:good', 'close:1002'],
  },
  {
    id: '3.4',
    what: 'the same with RSV = 4, written one byte at a time: still 1002 after the echo',
    send: [frame(OP.text, 'good'), frame(OP.text, 'bad', { rsv: 4 }), frame(OP.ping)],
    chop: 1,
    expect: ['text:good', 'close:1002'],
  },
  {
    id: '3.5',
    what: 'RSV = 5 on a binary frame: 1002',
    send: [frame(OP.binary, B(8), { rsv: 5 })],
    expect: ['close:1002'],
  },
  {
    id: '3.6',
    what: 'RSV = 6 on a ping: 1002, no pong',
    send: [frame(OP.ping, 'x', { rsv: 6 })],
    expect: ['close:1002'],
  },
  {
    id: '3.7',
    what: 'RSV = 7 on a close: 1002',
    send: [frame(OP.close, closeBody(1000), { rsv: 7 })],
    expect: ['close:1002'],
  },
  // 4: opcodes
  // Autobahn's 4.1.1-4.1.5 are the non-control opcodes 3-7, 4.2.1-4.2.5 the control ones 11-15: the first two
  // of each a reserved frame alone (empty, then with a payload), the other three after a text, before a ping.
  ...[3, 4, 5, 6, 7, 11, 12, 13, 14, 15].map((op) => {
    const n = op < 8 ? op - 2 : op - 10;
    const reserved = frame(op, n === 1 || n === 3 ? '' : 'reserved');
    return n <= 2
      ? {
          id: `4.${op < 8 ? 1 : 2}.${n}`,
          what: `a frame with reserved opcode ${op}${n === 1 ? '' : ' and a payload'}: 1002`,
          send: [reserved],
          expect: ['close:1002'],
        }
      : {
          id: `4.${op < 8 ? 1 : 2}.${n}`,
          what: `a text, a frame with reserved opcode ${op}${n === 3 ? '' : ' and a payload'}, a ping: the text is echoed, then 1002`,
          send: [frame(OP.text, 'before'), reserved, frame(OP.ping)],
          expect: ['text:before', 'close:1002'],
        };
  }),
  // 5: fragmentation
  {
    id: '5.1',
    what: 'a fragmented ping (FIN=0, then a continuation): 1002',
    send: [frame(OP.ping, 'frag', { fin: false }), frame(OP.continuation, 'ment')],
    expect: ['close:1002'],
  },
  {
    id: '5.2',
    what: 'a fragmented pong: 1002',
    send: [frame(OP.pong, 'frag', { fin: false }), frame(OP.continuation, 'ment')],
    expect: ['close:1002'],
  },
  ...written(
    {
      id: '5.3',
      what: 'a text in two fragments is echoed as one message',
      send: [frame(OP.text, 'frag', { fin: false }), frame(OP.continuation, 'ment')],
      expect: ['text:fragment', 'close:1000'],
    },
    '5.4',
    '5.5',
  ),
  ...written(
    {
      id: '5.6',
      what: 'a ping between two fragments is answered at once, before the message ends',
      send: [
        frame(OP.text, 'frag', { fin: false }),
        frame(OP.ping, 'in between'),
        frame(OP.continuation, 'ment'),
      ],
      expect: ['pong:in between', 'text:fragment', 'close:1000'],
    },
    '5.7',
    '5.8',
  ),
  ...written(
    {
      id: '5.9',
      what: 'a continuation (FIN=1) with nothing to continue: 1002',
      send: [frame(OP.continuation, 'orphan'), frame(OP.text, 'never echoed')],
      expect: ['close:1002'],
    },
    '5.10',
    '5.11',
  ),
  ...written(
    {
      id: '5.12',
      what: 'a continuation (FIN=0) with nothing to continue: 1002',
      send: [frame(OP.continuation, 'orphan', { fin: false }), frame(OP.text, 'never echoed')],
      expect: ['close:1002'],
    },
    '5.13',
    '5.14',
  ),
  {
    id: '5.15',
    what: 'a whole fragmented text, then a continuation with nothing to continue: echo, then 1002',
    send: [
      frame(OP.text, 'frag', { fin: false }),
      frame(OP.continuation, 'ment'),
      frame(OP.continuation, 'orphan', { fin: false }),
      frame(OP.text, 'never echoed'),
    ],
    expect: ['text:fragment', 'close:1002'],
  },
  ...[false, true].map((fin, i) => ({
    id: `5.${16 + i}`,
    what: `twice: a continuation (FIN=${fin ? 1 : 0}) with nothing to continue, then a text in two fragments: 1002 at the first`,
    send: [0, 1].flatMap(() => [
      frame(OP.continuation, 'orphan', { fin }),
      frame(OP.text, 'frag', { fin: false }),
      frame(OP.continuation, 'ment'),
    ]),
    expect: ['close:1002'],
  })),
  {
    id: '5.18',
    what: 'a new text message before the fragmented one ended: 1002',
    send: [frame(OP.text, 'first', { fin: false }), frame(OP.text, 'second')],
    expect: ['close:1002'],
  },
  ...[undefined, 'frame' as const].map((chop, i) => ({
    id: `5.${19 + i}`,
    what: `five fragments with two pings among them: two pongs, then the whole message${chop ? ', one write() per frame' : ''} (without Autobahn's 1 s pause after the first ping)`,
    send: [
      frame(OP.text, 'f1 ', { fin: false }),
      frame(OP.continuation, 'f2 ', { fin: false }),
      frame(OP.ping, 'pong 1'),
      frame(OP.continuation, 'f3 ', { fin: false }),
      frame(OP.continuation, 'f4 ', { fin: false }),
      frame(OP.ping, 'pong 2'),
      frame(OP.continuation, 'f5'),
    ],
    ...(chop && { chop }),
    expect: ['pong:pong 1', 'pong:pong 2', 'text:f1 f2 f3 f4 f5', 'close:1000'],
  })),
  // 6: UTF-8
  {
    id: '6.1.1',
    what: 'an empty text message is valid',
    send: [frame(OP.text, '')],
    expect: ['text:', 'close:1000'],
  },
  {
    id: '6.1.2',
    what: 'three empty fragments are one empty text message',
    send: [
      frame(OP.text, '', { fin: false }),
      frame(OP.continuation, '', { fin: false }),
      frame(OP.continuation, ''),
    ],
    expect: ['text:', 'close:1000'],
  },
  {
    id: '6.1.3',
    what: 'an empty fragment, a non-empty one, an empty one: the middle one is the message',
    send: [
      frame(OP.text, '', { fin: false }),
      frame(OP.continuation, 'middle frame payload', { fin: false }),
      frame(OP.continuation, ''),
    ],
    expect: ['text:middle frame payload', 'close:1000'],
  },
  {
    id: '6.2.2',
    what: 'valid UTF-8 in two fragments cut on a code point boundary is echoed whole',
    send: [frame(OP.text, 'Hello-µ@ßöä', { fin: false }), frame(OP.continuation, 'üàá-UTF-8!!')],
    expect: [`text:${valid}`, 'close:1000'],
  },
  {
    id: '6.2.1',
    what: 'valid UTF-8 in one frame is echoed',
    send: [frame(OP.text, valid)],
    expect: [`text:${valid}`, 'close:1000'],
  },
  {
    id: '6.2.3',
    what: 'valid UTF-8 in one-byte fragments (every character cut apart) is echoed whole',
    send: perByte(Buffer.from(valid)),
    expect: [`text:${valid}`, 'close:1000'],
  },
  {
    id: '6.2.4',
    what: 'κόσμε in one-byte fragments is echoed whole',
    send: perByte(Buffer.from(KOSME)),
    expect: [`text:${KOSME}`, 'close:1000'],
  },
  {
    id: '6.3.1',
    what: 'invalid UTF-8 (κόσμε, a surrogate ED A0 80, "edited") in one frame: 1007',
    send: [frame(OP.text, KOSME_SURROGATE)],
    expect: ['close:1007'],
  },
  {
    id: '6.3.2',
    what: 'invalid UTF-8 in one-byte fragments: 1007',
    send: perByte(KOSME_SURROGATE),
    expect: ['close:1007'],
  },
  {
    id: '6.4.1',
    what: 'fail fast: a bad fragment closes with 1007 before the message has ended (the last fragment is never sent)',
    send: [
      frame(OP.text, KOSME, { fin: false }),
      frame(OP.continuation, Buffer.from([0xf4, 0x90, 0x80, 0x80]), { fin: false }),
    ],
    noClose: true,
    expect: ['close:1007'],
  },
  {
    id: '6.4.2',
    what: 'fail fast: the second fragment is only the byte that makes the message invalid (90 after F4): 1007 before the message ends',
    send: [
      frame(OP.text, Buffer.from([...Buffer.from(KOSME), 0xf4]), { fin: false }),
      frame(OP.continuation, Buffer.from([0x90]), { fin: false }),
    ],
    noClose: true,
    expect: ['close:1007'],
  },
  {
    id: 'x.3',
    what: 'beyond Autobahn: fail fast at the end of a fragment whose last bytes (F4 90) can never become valid: 1007, the message unfinished',
    send: [frame(OP.text, Buffer.from([0xce, 0xba, 0xf4, 0x90]), { fin: false })],
    noClose: true,
    expect: ['close:1007'],
  },
  ...utf8Groups.flatMap(([group, payloads], g) =>
    payloads.map(([ok, bytes], i) => ({
      id: `6.${g + 5}.${i + 1}`,
      what: `${group}: ${bytes.toString('hex').slice(0, 32) || 'empty'} ${ok ? 'is echoed' : 'closes with 1007'}`,
      send: [frame(OP.text, bytes)],
      expect: ok ? [show(OP.text, bytes), 'close:1000'] : ['close:1007'],
    })),
  ),
  // 7: the close handshake
  {
    id: '7.1.1',
    what: 'a text, then a close: echo, then the close is echoed',
    send: [frame(OP.text, 'last words'), frame(OP.close, closeBody(1000))],
    noClose: true,
    expect: ['text:last words', 'close:1000'],
  },
  {
    id: '7.1.2',
    what: 'a second close after the first is ignored',
    send: [frame(OP.close, closeBody(1000)), frame(OP.close, closeBody(1001))],
    noClose: true,
    expect: ['close:1000'],
  },
  {
    id: '7.1.3',
    what: 'a ping after the close gets no pong',
    send: [frame(OP.close, closeBody(1000)), frame(OP.ping, 'too late')],
    noClose: true,
    expect: ['close:1000'],
  },
  {
    id: '7.1.4',
    what: 'a text after the close is not echoed',
    send: [frame(OP.close, closeBody(1000)), frame(OP.text, 'too late')],
    noClose: true,
    expect: ['close:1000'],
  },
  {
    id: '7.1.5',
    what: 'a close in the middle of a fragmented message: the message is never delivered',
    send: [
      frame(OP.text, 'frag', { fin: false }),
      frame(OP.close, closeBody(1000)),
      frame(OP.continuation, 'ment'),
    ],
    noClose: true,
    expect: ['close:1000'],
  },
  {
    id: '7.1.6',
    what: 'a 256 KiB text, a short text, a close, a ping: both texts are echoed, then the close, and no pong',
    send: [
      frame(OP.text, A(256 * 1024)),
      frame(OP.text, 'Hello World!'),
      frame(OP.close, closeBody(1000)),
      frame(OP.ping),
    ],
    noClose: true,
    expect: [show(OP.text, A(256 * 1024)), 'text:Hello World!', 'close:1000'],
  },
  {
    id: '7.3.1',
    what: 'a close with no payload is answered with a close with none',
    send: [frame(OP.close)],
    noClose: true,
    expect: ['close'],
  },
  {
    id: '7.3.2',
    what: 'a close with a 1-byte payload: 1002',
    send: [frame(OP.close, 'x')],
    noClose: true,
    expect: ['close:1002'],
  },
  {
    id: '7.3.3',
    what: 'a close with a code and no reason is echoed',
    send: [frame(OP.close, closeBody(1000))],
    noClose: true,
    expect: ['close:1000'],
  },
  {
    id: '7.3.4',
    what: 'a close with a code and a reason is answered with the code',
    send: [frame(OP.close, closeBody(1000, 'Hello World!'))],
    noClose: true,
    expect: ['close:1000'],
  },
  {
    id: '7.3.5',
    what: 'a close with a 123-byte reason (125 in all) is fine',
    send: [frame(OP.close, closeBody(1000, A(123)))],
    noClose: true,
    expect: ['close:1000'],
  },
  {
    id: '7.3.6',
    what: 'a close with a 124-byte reason (126 in all, over the control frame limit): 1002',
    send: [frame(OP.close, closeBody(1000, A(124)))],
    noClose: true,
    expect: ['close:1002'],
  },
  {
    id: '7.5.1',
    what: 'a close reason that is not UTF-8: 1007',
    send: [
      frame(
        OP.close,
        closeBody(
          1000,
          Buffer.from([
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65, 0x64,
          ]),
        ),
      ),
    ],
    noClose: true,
    expect: ['close:1007'],
  },
  ...[1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999].map((code, i) => ({
    id: `7.7.${i + 1}`,
    what: `close code ${code} is valid and is echoed`,
    send: [frame(OP.close, closeBody(code))],
    noClose: true,
    expect: [`close:${code}`],
  })),
  ...[0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999].map((code, i) => ({
    id: `7.9.${i + 1}`,
    what: `close code ${code} is invalid: 1002`,
    send: [frame(OP.close, closeBody(code))],
    noClose: true,
    expect: ['close:1002'],
  })),
  // Autobahn leaves what a server does with these undefined; this one calls them protocol errors.
  ...[5000, 65535].map((code, i) => ({
    id: `7.13.${i + 1}`,
    what: `close code ${code} (outside every range): 1002`,
    send: [frame(OP.close, closeBody(code))],
    noClose: true,
    expect: ['close:1002'],
  })),
  // Beyond Autobahn: what the chapter names
  {
    id: 'x.1',
    what: 'an unmasked client frame: 1002, not echoed',
    send: [frame(OP.text, 'naked', { mask: false })],
    expect: ['close:1002'],
  },
  {
    id: 'x.2',
    what: 'a 64-bit length with its top bit set: 1002',
    send: [Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4])],
    noClose: true,
    expect: ['close:1002'],
  },
];

/** Runs one case against a server and returns the frames it sent back, as strings. */
async function runCase(t: TestHooks, port: number, c: Case): Promise<string[]> {
  const ws = await openRaw(t, port);
  const bytes = Buffer.concat([...c.send, ...(c.noClose ? [] : [frame(OP.close, closeBody(1000))])]);
  if (c.chop === 'frame') {
    // Autobahn's frame-wise chops: each frame its own write(), the next once the last was handed to the kernel.
    for (const part of [...c.send, ...(c.noClose ? [] : [frame(OP.close, closeBody(1000))])])
      await new Promise<void>((resolve) => ws.socket.write(part, () => resolve()));
  } else if (c.chop) await chopped(ws.socket, bytes, c.chop);
  else ws.socket.write(bytes);
  // Every case ends in a close (the client's, or the server's for a broken rule): the server closes TCP at once.
  const frames = await ws.done();
  // Servers never mask and never set RSV bits.
  expect(frames.filter((f) => f.masked || f.rsv !== 0)).toEqual([]);
  return frames.map((f) => show(f.op, f.payload));
}

async function startServer(t: TestHooks, ...flags: string[]): Promise<{ lab: LabProcess; port: number }> {
  const lab = spawnLab(t, '15', ['server', '--port', '0', ...flags]);
  const { port } = await lab.listening();
  return { lab, port };
}

/** The first 'error' each `ws` client emitted: every later wait on that client fails with it. */
const wsErrors = new WeakMap<WebSocket, Error>();

/** A `ws` client (not yet open), terminated when the test ends; its 'error' fails the test's waits on it. */
function newWs(t: TestHooks, url: string, options: WebSocket.ClientOptions = {}): WebSocket {
  const ws = new WebSocket(url, options);
  ws.on('error', (err) => {
    if (!wsErrors.has(ws)) wsErrors.set(ws, err);
  });
  t.onTestFinished(() => ws.terminate());
  return ws;
}

/**
 * The arguments of the next `event` of `ws`, within `ms` (REPLY_MS: the lab answers a local client at once).
 * Fails on an 'error' (now or before), and on a 'close' that comes first: it says what the client saw.
 */
function wsEvent<T extends unknown[] = unknown[]>(
  ws: WebSocket,
  event: string,
  what: string,
  ms = REPLY_MS,
): Promise<T> {
  const waiting = new Promise<T>((resolve, reject) => {
    const failed = wsErrors.get(ws);
    if (failed) return reject(new Error(`${what}: the client had failed already: ${failed.message}`));
    const done = () => {
      ws.off(event, onEvent);
      ws.off('error', onError);
      ws.off('close', onClose);
    };
    const onEvent = (...args: unknown[]) => {
      done();
      resolve(args as T);
    };
    const onError = (err: Error) => {
      done();
      reject(new Error(`${what}: the client failed: ${err.message}`));
    };
    const onClose = (code: number, reason: Buffer) => {
      done();
      reject(new Error(`${what}: the connection closed first (${code} '${reason}')`));
    };
    ws.on(event, onEvent);
    ws.on('error', onError);
    if (event !== 'close') ws.on('close', onClose);
  });
  return settleWithin(waiting, ms, what);
}

/** A `ws` client, open (within REPLY_MS), terminated when the test ends. */
async function wsClient(
  t: TestHooks,
  url: string,
  options: WebSocket.ClientOptions = {},
): Promise<WebSocket> {
  const ws = newWs(t, url, options);
  await wsEvent(ws, 'open', `opening ${url}`);
  return ws;
}

const nextMessage = async (ws: WebSocket, what = 'the next message') => {
  const [data, isBinary] = await wsEvent<[Buffer, boolean]>(ws, 'message', what);
  return { data, isBinary };
};

describe.concurrent('lab 15: WebSocket', () => {
  // First, so that its Chromium test (the slowest) starts with the others, not after the first five of them.
  describe('the chat role', () => {
    async function startChat(t: TestHooks, ...flags: string[]) {
      const lab = spawnLab(t, '15', ['chat', '--port', '0', ...flags]);
      const { port } = await lab.listening();
      return { lab, port };
    }
    async function join(t: TestHooks, port: number, name: string): Promise<WebSocket> {
      const ws = newWs(t, `ws://127.0.0.1:${port}/chat?name=${name}`);
      // The welcome is the first message; listening for it from the start (before 'open') so none is missed.
      const welcome = wsEvent<[Buffer]>(ws, 'message', `${name}'s welcome`, 2 * REPLY_MS);
      await wsEvent(ws, 'open', `${name} joining`).catch((err: unknown) => {
        welcome.catch(() => {}); // fails too, for the same reason: the open's error says it
        throw err;
      });
      expect(String((await welcome)[0])).toMatch(new RegExp(`^\\* welcome, ${name}; \\d+ online$`));
      return ws;
    }
    /** Every text a member receives from now on. */
    const received = (ws: WebSocket) => {
      const got: string[] = [];
      ws.on('message', (d) => got.push(String(d)));
      return got;
    };
    /** Waits until `got` (what `received` collects for `ws`) holds `text`: REPLY_MS per message at most. */
    const until = async (ws: WebSocket, got: string[], text: string) => {
      while (!got.includes(text))
        await wsEvent(ws, 'message', `waiting for ${JSON.stringify(text)} (got ${JSON.stringify(got)})`);
    };
    /** GET / over plain HTTP, within REPLY_MS. */
    const getPage = async (port: number) => {
      const controller = new AbortController();
      try {
        return await settleWithin(
          (async () => {
            const res = await fetch(`http://127.0.0.1:${port}/`, { signal: controller.signal });
            return { res, text: await res.text() };
          })(),
          REPLY_MS,
          'GET / and its body',
        );
      } finally {
        controller.abort();
      }
    };

    it('serves its page at GET / and broadcasts each text to every other member, never back to the sender', async (t) => {
      const { lab, port } = await startChat(t);
      const { res: page, text } = await getPage(port);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(text).toContain("new WebSocket('ws://' + location.host");
      const alice = await join(t, port, 'alice');
      const aliceGot = received(alice);
      const bob = await join(t, port, 'bob');
      const bobGot = received(bob);
      const carol = await join(t, port, 'carol');
      const carolGot = received(carol);
      alice.send('hi all');
      await Promise.all([until(bob, bobGot, 'alice: hi all'), until(carol, carolGot, 'alice: hi all')]);
      // Messages from one sender are handled in order: an echo to alice would come before bob's reply.
      bob.send('hi alice');
      await until(alice, aliceGot, 'bob: hi alice');
      expect(aliceGot.filter((m) => m.includes('hi all'))).toEqual([]);
      expect(bobGot.filter((m) => m === 'alice: hi all')).toHaveLength(1);
      expect(carolGot.filter((m) => m === 'alice: hi all')).toHaveLength(1);
      expect(aliceGot).toEqual(['* bob joined; 2 online', '* carol joined; 3 online', 'bob: hi alice']);
      carol.close();
      await until(alice, aliceGot, '* carol left; 2 online');
      expect(lab.matching(/joined as (alice|bob|carol)/)).toHaveLength(3);
    });

    it('strips terminal control from relayed text: ESC sequences vanish, other controls and format characters become ?', async (t) => {
      const { port } = await startChat(t);
      const alice = await join(t, port, 'alice');
      const bob = await join(t, port, 'bob');
      const next = wsEvent<[Buffer]>(bob, 'message', "alice's relayed text");
      alice.send('red\x1b[31mRED\x1b[0m bell\x07 cr\rx c1\u009b rtl\u202e zw\u200b ls\u2028 ok');
      // U+009B is CSI in its 8-bit form (labs/lib/text.ts): it and what a terminal reads as its sequence (' r',
      // an intermediate byte and a final one) vanish together, as a 7-bit ESC [ sequence does.
      expect(String((await next)[0])).toBe('alice: redRED bell? cr?x c1tl? zw? ls? ok');
    });

    it('names follow chapter 09 (labs/lib/text.ts): any script with its marks; a bad or taken name (folded: Alice, ａｌｉｃｅ, alice) is told why and closed with 1008', async (t) => {
      const { lab, port } = await startChat(t);
      /** Joins as `name` and expects the refusal: one text saying why, then a close 1008 (both listened for from the start). */
      const refused = async (name: string) => {
        const ws = newWs(t, `ws://127.0.0.1:${port}/chat?name=${encodeURIComponent(name)}`);
        const got = received(ws);
        const [code, reason] = await wsEvent<[number, Buffer]>(
          ws,
          'close',
          `${name}'s refusal`,
          2 * REPLY_MS,
        );
        expect([code, String(reason)]).toEqual([1008, 'name refused']);
        return got;
      };
      const alice = await join(t, port, 'alice');
      const aliceGot = received(alice);
      for (const name of ['Alice', 'ALICE', 'ａｌｉｃｅ'])
        expect(await refused(name)).toEqual([`! the name '${name}' is taken`]);
      for (const name of ['bob\x1b[8m', 'x'.repeat(25), '\u0430lice', 'alice\u3164', 'a b'])
        expect((await refused(name))[0]).toMatch(/^! a name /);
      // Real names in any script: Devanagari's vowel signs are marks (\p{M}), not letters.
      for (const name of ['नमस्ते', 'สมชาย', 'محمد', 'Zoë']) await join(t, port, name);
      // No name: anonymous, a name that may be shared.
      for (let i = 0; i < 2; i++) {
        const anon = newWs(t, `ws://127.0.0.1:${port}/chat`);
        const [welcome] = await wsEvent<[Buffer]>(
          anon,
          'message',
          'the welcome of an anonymous member',
          2 * REPLY_MS,
        );
        expect(String(welcome)).toMatch(/^\* welcome, anonymous; \d+ online$/);
      }
      await until(alice, aliceGot, '* anonymous joined; 7 online');
      // Nobody refused ever joined: alice heard of the four real names and the two anonymous members only.
      expect(aliceGot.filter((m) => m.includes('joined'))).toHaveLength(6);
      expect(lab.matching(/refused: /)).toHaveLength(8);
    });

    it('a binary message is closed with 1003, and a page from another Origin is refused with 403', async (t) => {
      const { lab, port } = await startChat(t);
      const alice = await join(t, port, 'alice');
      alice.send(Buffer.from([1, 2, 3]));
      const [code, reason] = await wsEvent<[number, Buffer]>(alice, 'close', 'the close of a binary sender');
      expect([code, String(reason)]).toEqual([1003, 'text messages only']);
      // With an 'unexpected-response' listener ws hands over the response instead of an 'error'.
      const evil = newWs(t, `ws://127.0.0.1:${port}/chat`, { origin: 'http://evil.example' });
      const [, res] = await wsEvent<[unknown, { statusCode: number }]>(
        evil,
        'unexpected-response',
        'the answer to a foreign Origin',
      );
      expect(res.statusCode).toBe(403);
      await lab.waitForLine(/rejected: 403 Origin http:\/\/evil\.example is not this site$/);
    });

    // Debian's chromium-headless-shell where it is installed (.ci/run installs it): the headless-only build that
    // Playwright itself runs for headless Chromium, the same Blink and V8 without the full browser. This test's
    // launch and one page on 2 cores: 0.5 s and 0.55 CPU-s with it, 0.9 s and 0.95 CPU-s with /usr/bin/chromium.
    const browser = ['/usr/bin/chromium-headless-shell', '/usr/bin/chromium'].find((f) => fs.existsSync(f));
    // A page's load, its script and its WebSocket in a headless browser on a loaded machine: five times what a
    // lab takes to answer (the page's status says at once when the WebSocket closed instead, see `see`).
    const BROWSER_MS = 5 * REPLY_MS;
    if (!browser)
      console.log(
        'lab 15: neither chromium-headless-shell nor chromium is installed: the browser chat test is skipped',
      );
    it.skipIf(!browser)(
      'a Chromium page joins the chat from its own page: what it types reaches a ws member, and what that member sends shows on the page as text',
      async (t) => {
        // The lab starts while playwright-core loads and the browser starts (the longest steps of this test, up to
        // 0.9 s and 1.1 s on a loaded machine). playwright-core is imported here, not at the top: its 250 ms would
        // hold up the collection of every test in this file. One page, not two: a second renderer cost about
        // 0.15 s and 0.2 CPU-s more, and the ws member checks what the page sends as exactly as a second page did.
        const chat = startChat(t);
        chat.catch(() => {}); // a lab that fails to start is seen where it is awaited, below
        const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lab15-chromium-'));
        let launching: Promise<BrowserContext> | undefined;
        t.onTestFinished(async () => {
          await (await launching?.catch(() => undefined))?.close();
          fs.rmSync(profile, { recursive: true, force: true });
        });
        const { chromium } = await import('playwright-core');
        launching = chromium.launchPersistentContext(profile, {
          executablePath: browser,
          headless: true,
          args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
          ],
        });
        // A launch that fails is seen where it is awaited, below (not as an unhandled rejection meanwhile).
        launching.catch(() => {});
        const { lab, port } = await chat;
        const bob = await join(t, port, 'bob');
        const bobGot = received(bob);
        const context = await launching;
        // Nothing leaves the machine: every request not for 127.0.0.1 is aborted.
        await context.route('**/*', (route) =>
          new URL(route.request().url()).hostname === '127.0.0.1' ? route.continue() : route.abort(),
        );
        // The persistent context opens with a blank page: that one, not a second renderer.
        const alice = context.pages()[0] ?? (await context.newPage());
        /**
         * Waits (BROWSER_MS at most) for `wanted` on the page, or for its status to say the WebSocket closed:
         * then it fails at once, with what the page shows, instead of waiting for a line that cannot come.
         */
        const see = async (wanted: ReturnType<typeof alice.locator>, what: string) => {
          const closed = alice.locator('#status', { hasText: /^closed: / });
          await wanted.or(closed).first().waitFor({ timeout: BROWSER_MS });
          if ((await closed.count()) > 0)
            throw new Error(
              `${what}: the page's WebSocket ${await closed.textContent()}; its log: ${JSON.stringify(await alice.locator('#log li').allTextContents())}`,
            );
        };
        await alice.goto(`http://127.0.0.1:${port}/?name=alice`, { timeout: BROWSER_MS });
        await see(alice.locator('#status', { hasText: 'connected as alice' }), 'alice connecting');
        await until(bob, bobGot, '* alice joined; 2 online');
        await alice.fill('#text', 'hello from a real browser');
        await alice.press('#text', 'Enter');
        await until(bob, bobGot, 'alice: hello from a real browser');
        // The page sent it as one text frame (its 25 bytes, as the lab logs them).
        await lab.waitForLine(/text message, 25 bytes in 1 frame\(s\)$/);
        bob.send('hi alice <b>not bold</b>');
        // The first line from bob on the page, whatever it says: a garbled one fails the comparison below at once
        // rather than a wait for the right text.
        const line = alice.locator('#log li', { hasText: /^bob: / }).first();
        await see(line, "bob's message reaching the page");
        expect(await line.textContent()).toBe('bob: hi alice <b>not bold</b>');
        // Text, not HTML: the tags arrived as text, so no <b> element exists.
        expect(await alice.locator('#log b').count()).toBe(0);
        expect(bobGot.filter((m) => m.startsWith('alice: '))).toEqual(['alice: hello from a real browser']);
        expect(lab.matching(/joined as (alice|bob) /)).toHaveLength(2);
        expect(lab.matching(/GET \/\?name=alice: served over plain HTTP$/)).toHaveLength(1);
      },
      // The last resort, stretched with the load as the file's own limit is (a browser's start-up is most of it).
      Math.round(30_000 * busy),
    );
  });

  it('plays the demo: handshake, three length encodings, fragments, the close handshake and five misbehaving peers, then exits 0', async (t) => {
    const lab = spawnLab(t, '15');
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expectInOrder(lab.lines, [
      /^\[server\] listening on 127\.0\.0\.1:\d+$/,
      /^\[client\] > Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==$/,
      /^\[client\] < HTTP\/1\.1 101 Switching Protocols$/,
      /^\[client\] < Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=$/,
      /^\[client\] the accept key checks out/,
      /^\[client\] < text 'hello'$/,
      /^\[client\] < binary 125 bytes$/,
      /^\[client\] < binary 126 bytes$/,
      /^\[client\] < binary 65536 bytes$/,
      /^\[server\] \S+ text message, 13 bytes in 3 frame\(s\)$/,
      /^\[client\] < pong 'between fragments'$/,
      /^\[client\] < text '你好, world'$/,
      /^\[client\] < close 1000$/,
      /^\[client\] < close 1002 'unmasked client frame'$/,
      /^\[client\] < close 1002 'reserved opcode 3'$/,
      /^\[client\] < close 1002 'ping frame over 125 bytes'$/,
      /^\[client\] < close 1007 'invalid UTF-8 in a text message'$/,
      /^\[client\] < close 1009 'a frame of 65537 bytes \(limit 65536\)'$/,
      /^\[client\] < HTTP\/1\.1 400 Bad Request$/,
      /^\[demo\] done$/,
    ]);
    expect(lab.matching(/the accept key is WRONG/)).toHaveLength(0);
    expect(lab.matching(/upgraded to WebSocket/)).toHaveLength(6);
    expect(lab.stderr).toEqual([]);
  });

  it("answers RFC 6455's own example: key dGhlIHNhbXBsZSBub25jZQ== gets accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo=, and the masked 'Hello' of §5.7 comes back unmasked", async (t) => {
    const { lab, port } = await startServer(t);
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {}); // a reset ends the waits below: they fail on the close
    t.onTestFinished(() => {
      socket.destroy();
    });
    await settleWithin(once(socket, 'connect'), REPLY_MS, `connecting to the lab on port ${port}`);
    let bytes = Buffer.alloc(0);
    socket.on('data', (b: Buffer) => {
      bytes = Buffer.concat([bytes, b]);
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    /** The next bytes from the server, within REPLY_MS; fails if it closes the connection first. */
    const more = (what: string) =>
      settleWithin(
        Promise.race([
          once(socket, 'data'),
          closed.then(() => {
            throw new Error(`${what}: the server closed the connection; got ${bytes.toString('hex')}`);
          }),
        ]),
        REPLY_MS,
        `${what} (got ${JSON.stringify(bytes.toString('latin1'))})`,
      );
    socket.write(
      'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    while (!bytes.includes('\r\n\r\n')) await more('the end of the handshake response');
    const head = bytes.subarray(0, bytes.indexOf('\r\n\r\n')).toString().split('\r\n');
    expect(head).toEqual([
      'HTTP/1.1 101 Switching Protocols',
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
    ]);
    bytes = bytes.subarray(bytes.indexOf('\r\n\r\n') + 4);
    // §5.7: "A single-frame masked text message", then "A masked Ping request and its unmasked response".
    socket.write(Buffer.from('818537fa213d7f9f4d5158', 'hex'));
    socket.write(Buffer.from('898537fa213d7f9f4d5158', 'hex'));
    await lab.waitForLine(/text message, 5 bytes in 1 frame/);
    const expected = '810548656c6c6f8a0548656c6c6f';
    while (bytes.length < expected.length / 2) await more('the echo and the pong');
    expect(bytes.toString('hex')).toBe(expected);
  });

  it('refuses a bad opening handshake with 400 (426 for another version) and one log line each, and never upgrades it', async (t) => {
    const { lab, port } = await startServer(t);
    const good = {
      Host: `127.0.0.1:${port}`,
      Upgrade: 'websocket',
      Connection: 'keep-alive, Upgrade',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version': '13',
    };
    const bad: [string, string, Record<string, string | undefined>, string][] = [
      ['GET', '400', { 'Sec-WebSocket-Key': undefined }, 'no Sec-WebSocket-Key header'],
      ['GET', '400', { 'Sec-WebSocket-Key': 'c2hvcnQ=' }, 'Sec-WebSocket-Key is not 16 bytes in base64'],
      ['GET', '400', { Upgrade: undefined }, 'no Upgrade: websocket header'],
      ['GET', '400', { Connection: 'keep-alive' }, 'no Connection: Upgrade header'],
      ['GET', '400', { Host: undefined }, 'no Host header'],
      ['POST', '400', {}, 'the method must be GET, got POST'],
      ['GET', '426', { 'Sec-WebSocket-Version': '8' }, 'Sec-WebSocket-Version must be 13'],
    ];
    for (const [method, status, change, reason] of bad) {
      const headers = Object.entries({ ...good, ...change }).filter(([, v]) => v !== undefined);
      const client = await connectClient(t, port);
      client.write(`${method} / HTTP/1.1\r\n${headers.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
      await client.waitForClose();
      expect(client.lines[0], reason).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(client.lines.at(-1)).toBe(reason);
      if (status === '426') expect(client.lines).toContain('Sec-WebSocket-Version: 13');
      await lab.waitForLine(new RegExp(`rejected: ${status} ${reason}$`));
    }
    const huge = await connectClient(t, port);
    huge.write(`GET / HTTP/1.1\r\nX: ${'x'.repeat(9000)}`);
    await huge.waitForClose();
    expect(huge.lines[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(lab.matching(/rejected: /)).toHaveLength(bad.length + 1);
    expect(lab.matching(/upgraded to WebSocket/)).toHaveLength(0);
  });

  it('echoes text and binary messages of every length encoding to the ws package, at any path, and answers its pings', async (t) => {
    const { lab, port } = await startServer(t, '--max-size', '100000');
    const ws = await wsClient(t, `ws://127.0.0.1:${port}/any/path?q=1`);
    await lab.waitForLine(/upgraded to WebSocket \(path \/any\/path\?q=1\)$/);
    for (const size of [0, 1, 125, 126, 65535, 65536, 100000]) {
      const text = 'é'.repeat(Math.floor(size / 2)) + 'x'.repeat(size % 2);
      ws.send(text);
      const echoed = await nextMessage(ws, `the echo of a ${size}-byte text`);
      expect([echoed.isBinary, echoed.data.toString()]).toEqual([false, text]);
      const bin = randomBytes(size);
      ws.send(bin);
      const b = await nextMessage(ws, `the echo of a ${size}-byte binary message`);
      expect(b.isBinary).toBe(true);
      expect(b.data.equals(bin), `binary ${size}`).toBe(true);
    }
    ws.ping('are you there');
    const [pong] = await wsEvent<[Buffer]>(ws, 'pong', 'the pong');
    expect(pong.toString()).toBe('are you there');
    // ws sends a fragmented message when told fin: false.
    ws.send('frag', { fin: false });
    ws.send('ment', { fin: true });
    expect((await nextMessage(ws, 'the echo of a fragmented message')).data.toString()).toBe('fragment');
    await lab.waitForLine(/text message, 8 bytes in 2 frame\(s\)$/);
    ws.close(1000, 'done');
    const [code] = await wsEvent<[number]>(ws, 'close', 'the close handshake');
    expect(code).toBe(1000);
    await lab.waitForLine(/close from peer: 1000 'done'$/);
    await lab.waitForLine(/disconnected$/);
    expect(lab.matching(/ message, /)).toHaveLength(15);
  });

  // Node 22 and later carry a browser-style WebSocket client (undici's) as a global; Node 20 does not.
  const NativeWebSocket = (globalThis as { WebSocket?: typeof globalThis.WebSocket }).WebSocket;
  it.skipIf(!NativeWebSocket)(
    "Node's own global WebSocket client (Node 22+) gets its text and binary messages echoed",
    async (t) => {
      const { lab, port } = await startServer(t);
      const ws = new (NativeWebSocket as typeof globalThis.WebSocket)(`ws://127.0.0.1:${port}/native`);
      ws.binaryType = 'arraybuffer';
      t.onTestFinished(() => ws.close());
      // Its 'error' (a handshake it refused, say) and a 'close' before the event awaited fail the wait at once.
      let failed: string | undefined;
      ws.addEventListener('error', () => {
        failed ??= 'an error event';
      });
      ws.addEventListener('close', (e) => {
        failed ??= `closed (${e.code} '${e.reason}')`;
      });
      const got: unknown[] = [];
      const next = (type: 'open' | 'message', what: string) =>
        settleWithin(
          new Promise<void>((resolve, reject) => {
            if (failed) return reject(new Error(`${what}: the WebSocket had failed: ${failed}`));
            const fail = () => reject(new Error(`${what}: the WebSocket failed: ${failed}`));
            ws.addEventListener('error', fail, { once: true });
            ws.addEventListener('close', fail, { once: true });
            ws.addEventListener(
              type,
              (e) => {
                ws.removeEventListener('error', fail);
                ws.removeEventListener('close', fail);
                if (type === 'message') got.push((e as MessageEvent).data);
                resolve();
              },
              { once: true },
            );
          }),
          REPLY_MS,
          what,
        );
      await next('open', 'the opening handshake');
      const first = next('message', 'the echo of a text');
      ws.send('from undici');
      await first;
      const second = next('message', 'the echo of a binary message');
      ws.send(new Uint8Array([1, 2, 3]));
      await second;
      expect(got[0]).toBe('from undici');
      expect([...new Uint8Array(got[1] as ArrayBuffer)]).toEqual([1, 2, 3]);
      await lab.waitForLine(/upgraded to WebSocket \(path \/native\)$/);
    },
  );

  describe('Autobahn-style cases (a compact port of the testsuite, which needs Docker)', () => {
    // One server for every case (each on a connection of its own, several at a time), owned by no test.
    let port = 0;
    beforeAll(async () => {
      // Room for case 7.1.6's 256 KiB message (the default --max-size is 64 KiB: the largest of the other cases).
      const lab = spawnLab(noTest, '15', ['server', '--port', '0', '--max-size', String(256 * 1024)]);
      ({ port } = await lab.listening());
    });
    for (const c of cases) {
      it(`${c.id}: ${c.what}`, async (t) => {
        expect(await runCase(t, port, c)).toEqual(c.expect);
      });
    }

    it("the cases are Autobahn's sections 1 to 7, by its numbers, every one but 6.4.3 and 6.4.4 (x.N are our own)", () => {
      // Autobahn's case tree (autobahntestsuite/case/): how many cases each numbered group of sections 1-7 holds.
      const tree: [string, number][] = [
        ['1.1', 8],
        ['1.2', 8],
        ['2', 11],
        ['3', 7],
        ['4.1', 5],
        ['4.2', 5],
        ['5', 20],
        ...[3, 4, 2, 4, 5, 11, 4, 2, 4, 3, 5, 8, 5, 10, 1, 3, 5, 5, 5, 7, 8, 34, 7].map(
          (n, i): [string, number] => [`6.${i + 1}`, n],
        ),
        ['7.1', 6],
        ['7.3', 6],
        ['7.5', 1],
        ['7.7', 13],
        ['7.9', 9],
        ['7.13', 2],
      ];
      const autobahn = tree.flatMap(([group, n]) => Array.from({ length: n }, (_, i) => `${group}.${i + 1}`));
      const ours = cases.map((c) => c.id).filter((id) => !id.startsWith('x.'));
      expect(new Set(ours).size).toBe(ours.length);
      expect([...autobahn.filter((id) => !ours.includes(id))]).toEqual(['6.4.3', '6.4.4']);
      expect(ours.filter((id) => !autobahn.includes(id))).toEqual([]);
      expect(ours).toHaveLength(244); // of 246
    });
  });

  it('a message over --max-size is closed with 1009 as soon as the header says so, and a fragmented one when its fragments add up past it', async (t) => {
    const { lab, port } = await startServer(t, '--max-size', '1000');
    const one = await openRaw(t, port);
    // Only the header of a 1 GB frame: the answer comes before any payload, so nothing was buffered.
    one.socket.write(Buffer.from([0x82, 0xff, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4]));
    expect((await one.done()).map((f) => show(f.op, f.payload))).toEqual(['close:1009']);
    await lab.waitForLine(/closing 1009: a frame of 1073741824 bytes \(limit 1000\)$/);
    const frags = await openRaw(t, port);
    frags.socket.write(
      Buffer.concat([frame(OP.text, A(600), { fin: false }), frame(OP.continuation, A(600), { fin: false })]),
    );
    expect((await frags.done()).map((f) => show(f.op, f.payload))).toEqual(['close:1009']);
    await lab.waitForLine(/closing 1009: a message over 1000 bytes$/);
    const exact = await openRaw(t, port);
    exact.socket.write(
      Buffer.concat([
        frame(OP.text, A(500), { fin: false }),
        frame(OP.continuation, A(500)),
        frame(OP.close, closeBody(1000)),
      ]),
    );
    expect((await exact.done()).map((f) => show(f.op, f.payload))).toEqual([
      show(OP.text, A(1000)),
      'close:1000',
    ]);
  });

  it('a reader that never reads is dropped once --max-buffered bytes wait for it; the server goes on', async (t) => {
    const { lab, port } = await startServer(t, '--max-buffered', '65536');
    const slow = await openRaw(t, port);
    slow.socket.pause();
    const message = frame(OP.binary, B(60000));
    // Echoes pile up: first in the kernel's buffers, then in the server's memory, until the limit.
    let sent = 0;
    const dropped = lab.waitForLine(/dropped: SendQ exceeded: \d+ bytes waiting \(limit 65536\)$/);
    let done = false;
    // Either way the loop stops (a failed wait is awaited below, so it is not left unhandled here).
    const stop = () => {
      done = true;
    };
    dropped.then(stop, stop);
    /** Room to write again, or the connection gone (the server resets the one it drops): either ends the wait. */
    const writable = () =>
      new Promise<void>((resolve) => {
        const go = () => {
          for (const event of ['drain', 'close', 'error']) slow.socket.off(event, go);
          resolve();
        };
        for (const event of ['drain', 'close', 'error']) slow.socket.on(event, go);
      });
    while (!done && sent < 2000 && !slow.socket.destroyed) {
      sent++;
      if (!slow.socket.write(message)) await Promise.race([writable(), dropped]);
    }
    await dropped;
    const ws = await wsClient(t, `ws://127.0.0.1:${port}/`);
    ws.send('still here');
    expect((await nextMessage(ws, 'the echo to a second client')).data.toString()).toBe('still here');
  });

  it('a peer that goes on sending once our side is closed (after a refusal, a failure, the close handshake) is reset past a head or --max-size bytes, nothing kept', async (t) => {
    const { lab, port } = await startServer(t, '--max-size', '1000');
    const floodAfterClose = async (opening: (string | Buffer)[], what: string) => {
      const { code } = await floodPastClose(t, port, opening, what);
      // The reset, seen as such, or as a broken pipe by a write that came after it.
      expect(['ECONNRESET', 'EPIPE'], what).toContain(code);
    };
    // A refused handshake (no Sec-WebSocket-Key): 400, our side closed with it, still before any frame.
    const keyless = upgradeRequest(port).replace(/^Sec-WebSocket-Key: .*\r\n/m, '');
    await floodAfterClose([keyless], 'after a 400');
    // A protocol error (an unmasked frame): 1002, our side closed at once.
    await floodAfterClose([upgradeRequest(port), frame(OP.text, 'hi', { mask: false })], 'after a failure');
    // A clean close handshake: the peer's close, our answer, our side closed.
    await floodAfterClose(
      [upgradeRequest(port), frame(OP.close, closeBody(1000))],
      'after the close handshake',
    );
    await lab.waitForLines(/went on sending after the close: \d+ bytes, reset$/, 3);
    // Dropped as it came: reset at the first chunk read past the limit (Node reads up to 64 KiB at a time), which
    // is a request head's 8 KiB before the handshake and --max-size after it.
    const dropped = lab
      .matching(/went on sending after the close: (\d+) bytes/)
      .map(([, bytes]) => Number(bytes));
    expect(lab.matching(/rejected: 400 no Sec-WebSocket-Key header$/)).toHaveLength(1);
    expect(dropped[0]).toBeLessThanOrEqual(8192 + 64 * 1024);
    for (const bytes of dropped.slice(1)) expect(bytes).toBeLessThanOrEqual(1000 + 64 * 1024);
  });

  it('a request head not all there --handshake-ms after the connect is closed with one line, even one that trickles a byte at a time', async (t) => {
    const HANDSHAKE_MS = 300;
    const { lab, port } = await startServer(t, '--handshake-ms', String(HANDSHAKE_MS));
    // The lab's clock starts once it has taken the connection: after this, never before (our 'connect' event may
    // come later than its accept).
    const connecting = performance.now();
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.on('error', () => {});
    t.onTestFinished(() => {
      socket.destroy();
    });
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await settleWithin(once(socket, 'connect'), REPLY_MS, `connecting to the lab on port ${port}`);
    // A byte every HANDSHAKE_MS / 6: an idle timer would be restarted each time and never end it; the head
    // (about 150 bytes) would take 8 s to finish.
    const request = upgradeRequest(port);
    let sent = 0;
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(request.slice(sent, ++sent));
    }, HANDSHAKE_MS / 6);
    t.onTestFinished(() => clearInterval(trickle));
    await settleWithin(gone, HANDSHAKE_MS + REPLY_MS, `the close ${HANDSHAKE_MS} ms after the connect`);
    expect(performance.now() - connecting).toBeGreaterThanOrEqual(HANDSHAKE_MS);
    expect(sent).toBeLessThan(request.length);
    await lab.waitForLine(new RegExp(`no request head within ${HANDSHAKE_MS} ms: closing$`));
  });

  // The idle tests' --idle-ms: 600 ms, stretched with the load as the run began (`busy`). The live peer is a process
  // of its own (wsPeer): a test worker starved under test:all's load answered the lab's ping too late with ws in
  // the worker (CI repros r45 on Node 20 and r47 on Node 24). What must be on time is two processes that sleep
  // until their sockets wake them: the lab (whose overdue verdict waits for the poll phase) and the peer, which has
  // IDLE_MS / 2 to answer a ping or to stop the server. The load read as a test starts (busyNow()) is not used: it
  // stretched the limit with the grade's own load (1.26 times in a quiet grade). The handshakes have
  // --handshake-ms (10 s), not this: when the idle limit bounded them too, a lab starved for 2 s under test:all's
  // load hung up on the silent peer before its 101. 600, not the earlier 1000: with it these two tests were the
  // tail of a grade of lab 15 (2.7 and 2.9 s of 2.95).
  const IDLE_MS = Math.round(600 * busy);

  it(
    'a silent peer gets a ping after half of --idle-ms and is closed with 1001 after the rest; one that answers pings stays',
    async (t) => {
      const { lab, port } = await startServer(t, '--idle-ms', String(IDLE_MS));
      const live = spawnFile(t, wsPeer, [`ws://127.0.0.1:${port}/`]);
      const silent = await openRaw(t, port);
      await live.waitForLine(/^open$/);
      // The silent one: a ping after IDLE_MS / 2, the close after IDLE_MS in all.
      const frames = await silent.done(IDLE_MS + REPLY_MS);
      expect(frames.map((f) => show(f.op, f.payload))).toEqual(['ping:are you there?', 'close:1001']);
      await lab.waitForLine(new RegExp(`closing 1001: no frame for ${IDLE_MS} ms$`));
      // The live one answered its first ping (IDLE_MS / 2 after its opening), so where the silent one was closed,
      // IDLE_MS after the opening, it gets its second ping.
      await live.waitForLine(/^ping 2$/, { quiet: IDLE_MS + REPLY_MS, stalled: undefined });
      expect(live.matching(/^closed/)).toEqual([]);
      expect(lab.matching(/closing 1001/)).toHaveLength(1);
    },
    // The last resort, above the waits' own deadlines (each counts the worker's awake time only).
    Math.round(20_000 * busy),
  );

  it(
    'a pong that waits in the socket while the server is stopped past its idle limit still counts: the overdue timer decides after reading it',
    async (t) => {
      // The peer (a process of its own, as above) stops the server at its first ping, before it would close
      // (IDLE_MS / 2 later), sends its pong into the stopped server's socket, and holds the server past the rest of
      // its limit: when it goes on, its timer is overdue with the pong unread.
      const { lab, port } = await startServer(t, '--idle-ms', String(IDLE_MS));
      const pid = lab.pid as number;
      t.onTestFinished(() => signal(pid, 'SIGCONT')); // whatever happened to the peer
      const peer = spawnFile(t, wsPeer, [
        `ws://127.0.0.1:${port}/`,
        '--stop',
        String(pid),
        String(IDLE_MS / 2 + 50),
      ]);
      // Each step is one of the peer's or the lab's timers, plus REPLY_MS.
      const waitOn = (ms: number) => ({ quiet: ms + REPLY_MS, stalled: undefined });
      await peer.waitForLine(/^open$/);
      await peer.waitForLine(/^stopped$/, waitOn(IDLE_MS / 2));
      await peer.waitForLine(/^resumed$/, waitOn(IDLE_MS / 2 + 50));
      // Alive: the text the peer sends once the server goes on is echoed. The overdue timer runs as the server
      // wakes, before it can read that text, so a server whose verdict does not wait for the pong sends 1001
      // instead, and the peer exits on the close: the wait fails at once.
      await peer.waitForLine(/^message still there\?$/);
      expect(peer.matching(/^closed/)).toEqual([]);
      expect(lab.matching(/closing 1001/)).toEqual([]);
    },
    // The last resort, above the sum of the waits' own deadlines, each counted in the worker's awake time, which
    // the config's 10 s was not: the CI run of stop 22 (test:all, Node 24) timed out there when the worker itself
    // stopped the server, before any wait of its own had failed.
    Math.round(20_000 * busy),
  );

  it('SIGTERM closes every WebSocket with 1001, waits for the close handshake, and exits 0', async (t) => {
    const { lab, port } = await startServer(t);
    const a = await wsClient(t, `ws://127.0.0.1:${port}/`);
    const b = await wsClient(t, `ws://127.0.0.1:${port}/`);
    await lab.waitForLines(/upgraded to WebSocket/, 2);
    const closes = [a, b].map((ws, i) => wsEvent<[number, Buffer]>(ws, 'close', `client ${i + 1}'s close`));
    lab.stop();
    for (const [code, reason] of await Promise.all(closes)) {
      expect([code, String(reason)]).toEqual([1001, 'server shutting down']);
    }
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expectInOrder(lab.lines, [/shutting down: closing 2 WebSocket/, /all connections closed/]);
  });
});
