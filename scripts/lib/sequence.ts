// From packets (scripts/lib/pcap.ts) and the lines a lab printed to a mermaid sequenceDiagram: one arrow per
// segment or datagram, labelled with flags, relative seq/ack, window, payload length and the payload's first
// bytes; the Node events the lab printed ('connect', 'connection', 'end', 'close', 'drain', …) as notes
// placed among the packets by time. Both clocks are wall-clock microseconds (pcap timestamps; the capture
// tool stamps each line with performance.timeOrigin + performance.now() when it arrives).
import type { Packet } from './pcap.ts';

export interface LabLine {
  us: number;
  text: string;
}

/** The Node events a note is made for: a line that names one of them in quotes. */
export const EVENT =
  /'(connect|connection|data|end|close|drain|error|message|timeout)'|\bconnected at\b|\bconnection from\b|\bclosed$|ECONN[A-Z]+/;

const PREVIEW = 12;

/** The first bytes of a payload, readable and safe inside a mermaid message. */
export function preview(bytes: Uint8Array, length: number): string {
  let s = '';
  for (const b of bytes.subarray(0, PREVIEW)) {
    if (b === 0x0a) s += '\\n';
    else if (b === 0x0d) s += '\\r';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return escapeMermaid(length > PREVIEW ? `${s}…` : s);
}

/** Mermaid treats ; # < > : and quotes specially in a message or note: write them as entity codes. */
export function escapeMermaid(text: string): string {
  return text.replace(/[#;<>"{}]/g, (c) => `#${c.charCodeAt(0)};`);
}

const endpoint = (addr: string, port?: number) =>
  port === undefined ? addr : addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;

/** The conversation a packet belongs to: a TCP connection or UDP flow (either direction), ICMP errors with
 * the flow they quote, IGMP with its own. */
export function conversation(p: Packet): string {
  if (p.proto === 'tcp' || p.proto === 'udp') {
    const a = endpoint(p.src, p.srcPort);
    const b = endpoint(p.dst, p.dstPort);
    return `${p.proto} ${[a, b].sort().join(' ')}`;
  }
  if (p.icmp?.quoted) {
    const q = p.icmp.quoted;
    return `udp ${[endpoint(q.src, q.srcPort), endpoint(q.dst, q.dstPort)].sort().join(' ')}`;
  }
  return p.proto;
}

/** The conversations in order of their first packet. */
export function conversations(packets: readonly Packet[]): string[] {
  return [...new Set(packets.map(conversation))];
}

/** The two ends of an arrow. An ICMP error goes from the port that could not be reached back to the sender. */
function ends(p: Packet): [string, string] {
  if (p.icmp?.quoted) {
    const q = p.icmp.quoted;
    return [endpoint(q.dst, q.dstPort), endpoint(q.src, q.srcPort)];
  }
  return [endpoint(p.src, p.srcPort), endpoint(p.dst, p.dstPort)];
}

const ICMP4: Record<number, string> = {
  0: 'echo reply',
  3: 'unreachable',
  8: 'echo request',
  11: 'time exceeded',
};
const UNREACH: Record<number, string> = { 0: 'net', 1: 'host', 3: 'port' };
const IGMP_RECORD: Record<number, string> = {
  1: 'is-include',
  2: 'is-exclude',
  3: 'leave',
  4: 'join',
  5: 'allow',
  6: 'block',
};

/** The label's first word is its kind (the structure test compares kinds, directions and lengths).
 * `carries`: what the payload is, read by streamUnits (TLS records, WebSocket frames), instead of its bytes. */
export function label(
  p: Packet,
  rel: (p: Packet) => { seq: number; ack?: number; win: number },
  carries?: string,
): string {
  if (p.tcp) {
    const r = rel(p);
    const parts = [p.tcp.flags.replaceAll(',', '+') || 'none', `seq=${r.seq}`];
    if (r.ack !== undefined) parts.push(`ack=${r.ack}`);
    parts.push(`win=${r.win}`, `len=${p.length}`);
    if (carries) parts.push(carries);
    else if (p.length > 0) parts.push(`"${preview(p.payload, p.length)}"`);
    return parts.join(' ');
  }
  if (p.proto === 'udp')
    return `UDP len=${p.length}${p.length > 0 ? ` "${preview(p.payload, p.length)}"` : ''}`;
  if (p.icmp) {
    const name = ICMP4[p.icmp.type] ?? `type ${p.icmp.type}`;
    const what = p.icmp.type === 3 ? ` ${UNREACH[p.icmp.code] ?? `code ${p.icmp.code}`}` : '';
    return `${p.proto === 'icmp' ? 'ICMP' : 'ICMPv6'} ${name}${what} len=${p.length}`;
  }
  if (p.igmp) {
    const g = p.igmp;
    if (g.type === 0x22) {
      const recs = g.groups.map((grp, i) => `${IGMP_RECORD[g.records[i] as number] ?? g.records[i]} ${grp}`);
      return `IGMPv3 report ${recs.join(', ')}`;
    }
    const names: Record<number, string> = { 17: 'query', 18: 'v1 report', 22: 'v2 report', 23: 'leave' };
    return `IGMP ${names[g.type] ?? `type ${g.type}`} ${g.groups.join(', ')}`;
  }
  return `${p.proto} proto=${p.protoNumber} len=${p.length}`;
}

// TLS records (RFC 8446 §5.1: type, version, 2-byte length) and WebSocket frames (RFC 6455 §5.2), read from
// the stream they travel in: a record or frame may start in one segment and end in a later one, and one
// segment may carry several.
const TLS_TYPES: Record<number, string> = {
  20: 'change_cipher_spec',
  21: 'alert',
  22: 'handshake',
  23: 'application_data',
};
const HANDSHAKE: Record<number, string> = {
  1: 'ClientHello',
  2: 'ServerHello',
  4: 'NewSessionTicket',
  11: 'Certificate',
  12: 'ServerKeyExchange',
  14: 'ServerHelloDone',
  16: 'ClientKeyExchange',
};
const WS_OPCODES: Record<number, string> = {
  0: 'continuation',
  1: 'text',
  2: 'binary',
  8: 'close',
  9: 'ping',
  10: 'pong',
};

interface Unit {
  text: string;
  /** Header and body: where the next unit starts. */
  size: number;
}

/** The TLS record at `at`, or undefined if its header was not captured. `clear`: no change_cipher_spec yet
 * this way, so a handshake record's first byte names its message (after it, the bytes are encrypted). */
export function tlsRecord(b: Uint8Array, at: number, clear = true): Unit | undefined {
  if (at + 5 > b.length) return undefined;
  const type = b[at] as number;
  const size = 5 + (((b[at + 3] as number) << 8) | (b[at + 4] as number));
  let text = TLS_TYPES[type] ?? `type 0x${type.toString(16)}`;
  const message = HANDSHAKE[b[at + 5] ?? -1];
  if (type === 0x16 && clear && message) text += ` ${message}`;
  return { text, size };
}

/** The WebSocket frame at `at`, or undefined if its header was not captured. A masked payload is shown as it
 * crossed the wire, then unmasked. */
export function wsFrame(b: Uint8Array, at: number): Unit | undefined {
  if (at + 2 > b.length) return undefined;
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fin = ((b[at] as number) & 0x80) !== 0;
  const opcode = (b[at] as number) & 0x0f;
  const masked = ((b[at + 1] as number) & 0x80) !== 0;
  let length = (b[at + 1] as number) & 0x7f;
  let head = 2;
  if (length === 126) {
    if (at + 4 > b.length) return undefined;
    length = view.getUint16(at + 2);
    head = 4;
  } else if (length === 127) {
    if (at + 10 > b.length) return undefined;
    length = Number(view.getBigUint64(at + 2));
    head = 10;
  }
  const key = masked ? b.subarray(at + head, at + head + 4) : undefined;
  if (key && key.length < 4) return undefined;
  if (key) head += 4;
  const body = b.subarray(at + head, Math.min(b.length, at + head + length));
  const name = `${WS_OPCODES[opcode] ?? `opcode ${opcode}`}${fin ? '' : ' (not FIN)'}, ${length} byte${length === 1 ? '' : 's'}`;
  let text = `${name}: "${preview(body, length)}"`;
  if (key) {
    const hex = [...key].map((x) => x.toString(16).padStart(2, '0')).join('');
    const clear = body.map((x, i) => x ^ (key[i % 4] as number));
    text = `${name} masked with ${hex}: "${preview(body, length)}" = "${preview(clear, length)}"`;
  }
  return { text, size: head + length };
}

/** For each TCP segment of a TLS or WebSocket stream, what it carries: 'TLS: handshake ClientHello',
 * 'WS: text, 5 bytes masked with …'. A direction is TLS when its first payload byte is a handshake record
 * (0x16 0x03); a connection is WebSocket after the server's `HTTP/1.1 101`. */
export function streamUnits(packets: readonly Packet[]): Map<Packet, string> {
  const out = new Map<Packet, string>();
  const state = new Map<string, { kind: 'tls' | 'ws'; next?: number; clear: boolean }>();
  const sent = new Map<string, number>();
  const spoke = new Set<string>();
  for (const p of packets) {
    if (!p.tcp) continue;
    const dir = `${endpoint(p.src, p.srcPort)}>${endpoint(p.dst, p.dstPort)}`;
    const back = `${endpoint(p.dst, p.dstPort)}>${endpoint(p.src, p.srcPort)}`;
    const seq = p.tcp.seq;
    const b = p.payload;
    const firstPayload = p.length > 0 && !spoke.has(dir);
    if (p.length > 0) spoke.add(dir);
    if (firstPayload && b[0] === 0x16 && b[1] === 0x03 && (b[2] as number) <= 4)
      state.set(dir, { kind: 'tls', next: seq, clear: true });
    const end = (seq + p.length) >>> 0;
    const before = sent.get(dir);
    if (before === undefined || ((end - before) | 0) > 0) sent.set(dir, end);
    if (p.length === 0) continue;
    if (new TextDecoder().decode(b.subarray(0, 12)) === 'HTTP/1.1 101') {
      state.set(dir, { kind: 'ws', next: end, clear: true });
      const theirs = sent.get(back);
      if (theirs !== undefined) state.set(back, { kind: 'ws', next: theirs, clear: true });
      continue;
    }
    const st = state.get(dir);
    if (!st || st.next === undefined) continue;
    const off = (st.next - seq) | 0;
    if (off < 0) continue; // a gap (or a retransmission of what was read): no sure boundary
    const units: string[] = [];
    const unit = st.kind === 'tls' ? 'record' : 'frame';
    if (off > 0)
      units.push(off >= p.length ? `(the ${unit} goes on)` : `(the last ${off} bytes of a ${unit})`);
    let at = off;
    while (at < p.length) {
      const u = st.kind === 'tls' ? tlsRecord(b, at, st.clear) : wsFrame(b, at);
      if (!u) {
        units.push('…');
        break;
      }
      if (st.kind === 'tls' && b[at] === 0x14) st.clear = false;
      units.push(u.text);
      at += u.size;
    }
    st.next = at < p.length ? undefined : (seq + at) >>> 0;
    // Runs of the same TLS record type, counted: 'application_data ×4'.
    const runs: string[] = [];
    let n = 0;
    for (const [i, u] of units.entries()) {
      n++;
      if (units[i + 1] === u && st.kind === 'tls') continue;
      runs.push(n > 1 ? `${u} ×${n}` : u);
      n = 0;
    }
    // Preview bytes are escaped for mermaid already; the rest is plain words.
    out.set(p, `${st.kind === 'tls' ? 'TLS' : 'WS'}: ${runs.join(', ')}`);
  }
  return out;
}

export interface DiagramOptions {
  /** Shown as a comment on the first line. */
  title?: string;
  /** Name participants by role instead of address:port (e.g. the server's port → 'server'). */
  names?: Record<string, string>;
  /** All the packets of these conversations, when `packets` is a slice of them: the handshakes there give
   * the initial seq numbers and window scales. */
  context?: readonly Packet[];
  /** Notes for lines within this many µs of the first and last packet (default 50 ms). */
  margin?: number;
  /** A line that names no port is a note only between the first and last packet, or this many ms after
   * (the event the last packet caused, e.g. ECONNREFUSED after the ICMP). */
  after?: number;
}

/** The mermaid text for these packets (in capture order) and the lab's event lines. */
export function sequenceDiagram(
  packets: readonly Packet[],
  lines: readonly LabLine[],
  options: DiagramOptions = {},
): string {
  const participants: string[] = [];
  const id = (e: string) => {
    let i = participants.indexOf(e);
    if (i < 0) i = participants.push(e) - 1;
    return `P${i + 1}`;
  };
  // Relative numbers: each direction's ISN (its SYN, or the first seq seen) and window scale.
  const isn = new Map<string, number>();
  const scale = new Map<string, number>();
  for (const p of options.context ?? packets) {
    if (!p.tcp) continue;
    const dir = `${endpoint(p.src, p.srcPort)}>${endpoint(p.dst, p.dstPort)}`;
    if (!isn.has(dir)) isn.set(dir, p.tcp.seq);
    if (p.tcp.flags.includes('SYN')) {
      isn.set(dir, p.tcp.seq);
      if (p.tcp.wscale !== undefined) scale.set(dir, p.tcp.wscale);
    }
  }
  const rel = (p: Packet) => {
    const t = p.tcp as NonNullable<Packet['tcp']>;
    const dir = `${endpoint(p.src, p.srcPort)}>${endpoint(p.dst, p.dstPort)}`;
    const back = `${endpoint(p.dst, p.dstPort)}>${endpoint(p.src, p.srcPort)}`;
    const mine = isn.get(dir) ?? t.seq;
    const theirs = isn.get(back);
    // Window scaling applies to segments without SYN once both sides offered it.
    const s = !t.flags.includes('SYN') && scale.has(dir) && scale.has(back) ? (scale.get(dir) as number) : 0;
    return {
      seq: (t.seq - mine) >>> 0,
      ack:
        t.flags.includes('ACK') && theirs !== undefined
          ? (t.ack - theirs) >>> 0
          : t.flags.includes('ACK')
            ? t.ack
            : undefined,
      win: t.window * 2 ** s,
    };
  };
  for (const p of packets) for (const e of ends(p)) id(e);
  const body: string[] = [];
  const first = packets[0]?.us ?? 0;
  const last = packets.at(-1)?.us ?? 0;
  const margin = options.margin ?? 50_000;
  const events = lines.filter((l) => EVENT.test(l.text) && l.us >= first - margin && l.us <= last + margin);
  let e = 0;
  const note = (l: LabLine) => {
    // A line that names a port not in this diagram is about another connection; one that names none is
    // kept only inside the diagram's own time span.
    const ports = [...l.text.matchAll(/(?:\d+\.\d+\.\d+\.\d+|\]):(\d{1,5})\b/g)].map((m) => m[1]);
    if (ports.some((port) => !participants.some((p) => p.endsWith(`:${port}`)))) return;
    if (!ports.length && (l.us < first || l.us > last + (options.after ?? 0) * 1000)) return;
    const over = participants.length > 1 ? `P1,P${participants.length}` : 'P1';
    body.push(`  Note over ${over}: ${escapeMermaid(l.text)}`);
  };
  // The next seq each direction will send: a bare ACK one below it is a probe (keepalive or zero window).
  const next = new Map<string, number>();
  // When each connection's first SYN went: a SYN with the same port and seq again is a retry.
  const firstSyn = new Map<string, number>();
  const carries = streamUnits(options.context ?? packets);
  for (const p of packets) {
    while (e < events.length && (events[e] as LabLine).us < p.us) note(events[e++] as LabLine);
    const [from, to] = ends(p);
    const a = id(from);
    const b = id(to);
    let text = label(p, rel, carries.get(p));
    if (p.tcp) {
      const dir = `${from}>${to}`;
      const t = p.tcp;
      const end = (t.seq + p.length + (/SYN|FIN/.test(t.flags) ? 1 : 0)) >>> 0;
      const n = next.get(dir);
      if (t.flags === 'ACK' && p.length === 0 && n === (t.seq + 1) >>> 0)
        text += ' (probe: seq = snd.una − 1)';
      // Bytes sent before, sent again: a timer's call (a tail loss probe when an ACK is late), not the lab's.
      if (p.length > 0 && n !== undefined && ((end - n) | 0) <= 0) text += ' (retransmission)';
      if (t.flags === 'SYN') {
        const key = `${from} ${t.seq}`;
        const at = firstSyn.get(key);
        if (at === undefined) firstSyn.set(key, p.us);
        else text += ` (retry, ${((p.us - at) / 1e6).toFixed(1)} s after the first SYN)`;
      }
      if (n === undefined || ((end - n) | 0) > 0) next.set(dir, end);
    }
    body.push(`  ${a}->>${b}: ${text}`);
  }
  while (e < events.length) note(events[e++] as LabLine);
  // Who opened a TCP connection (sent the first SYN) is its client, who answered it the server.
  const role = new Map<string, string>();
  for (const p of options.context ?? packets)
    if (p.tcp?.flags === 'SYN') {
      const [from, to] = ends(p);
      if (!role.has(from)) role.set(from, 'client');
      if (!role.has(to)) role.set(to, 'server');
    }
  const head = participants.map((p, i) => {
    const name = options.names?.[p] ?? (role.has(p) ? `${role.get(p)} ${p}` : p);
    return `  participant P${i + 1} as ${escapeMermaid(name)}`;
  });
  return [...(options.title ? [`%% ${options.title}`] : []), 'sequenceDiagram', ...head, ...body, ''].join(
    '\n',
  );
}

/**
 * What the structure test compares: per arrow, its direction (participant numbers), kind (flags, UDP, ICMP,
 * IGMP) and payload length; no seq/ack numbers, windows or times, and no retransmissions.
 */
export function structure(mmd: string, options: { bareAcks?: boolean } = {}): string[] {
  const out: string[] = [];
  const igmp: string[] = [];
  const seen = new Map<string, string>();
  for (const line of mmd.split('\n')) {
    const m = /^\s*(P\d+)->>(P\d+): (\S+)(?:.*?\blen=(\d+))?/.exec(line);
    if (!m || line.endsWith(' (retransmission)')) continue;
    // A bare ACK (no payload, no other flag) is sent when the kernel's delayed-ACK timer says: drawn, but
    // compared only when asked (keepalive probes are bare ACKs).
    if (!options.bareAcks && m[3] === 'ACK' && m[4] === '0') continue;
    // IGMP reports go when the kernel's report timer says (repeated, merged): compared apart, below.
    if (m[3]?.startsWith('IGMP')) igmp.push(line.slice(line.indexOf(': ') + 2));
    else {
      // Numbered by first appearance among these arrows: an IGMP report sent earlier or later moves nothing.
      const n = (p: string) => {
        if (!seen.has(p)) seen.set(p, `P${seen.size + 1}`);
        return seen.get(p) as string;
      };
      const from = n(m[1] as string);
      out.push(`${from}>${n(m[2] as string)} ${m[3]}${m[4] !== undefined ? ` len=${m[4]}` : ''}`);
    }
  }
  // Which reports, how many and how merged is the timer's call, and so is which of two groups joined at once
  // is reported first. Compared: that no report leaves a group before a report joins one, whether the last
  // one only leaves, and every group any report names. (Once, on a loaded machine, a capture held no join
  // report at all, only the final leaves: "no leave before a join" holds for that too.)
  if (igmp.length) {
    const records = (r: string) => r.replace(/^IGMP\S* report /, '').split(', ');
    const groups = [...new Set(igmp.flatMap((r) => records(r).map((x) => x.split(' ').at(-1))))].sort();
    const last = records(igmp.at(-1) as string);
    const firstJoin = igmp.findIndex((r) => records(r).some((x) => x.startsWith('join ')));
    const firstLeave = igmp.findIndex((r) => records(r).some((x) => x.startsWith('leave ')));
    const leaveFirst = firstJoin >= 0 && firstLeave >= 0 && firstLeave < firstJoin;
    out.push(
      `IGMP order: ${leaveFirst ? `a leave before the first join: ${igmp[firstLeave]}` : 'no leave before a join'}`,
      `IGMP last: ${last.every((x) => x.startsWith('leave ')) ? 'leaves only' : last.join(', ')}`,
      `IGMP groups: ${groups.join(', ')}`,
    );
  }
  return out;
}
