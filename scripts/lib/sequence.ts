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
  /'(connect|connection|end|close|drain|error|message|timeout)'|\bconnected at\b|\bconnection from\b|\bclosed$|ECONN[A-Z]+/;

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

/** The label's first word is its kind (the structure test compares kinds, directions and lengths). */
export function label(p: Packet, rel: (p: Packet) => { seq: number; ack?: number; win: number }): string {
  if (p.tcp) {
    const r = rel(p);
    const parts = [p.tcp.flags.replaceAll(',', '+') || 'none', `seq=${r.seq}`];
    if (r.ack !== undefined) parts.push(`ack=${r.ack}`);
    parts.push(`win=${r.win}`, `len=${p.length}`);
    if (p.length > 0) parts.push(`"${preview(p.payload, p.length)}"`);
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
  for (const p of packets) {
    while (e < events.length && (events[e] as LabLine).us < p.us) note(events[e++] as LabLine);
    const [from, to] = ends(p);
    const a = id(from);
    const b = id(to);
    let text = label(p, rel);
    if (p.tcp) {
      const dir = `${from}>${to}`;
      const t = p.tcp;
      const end = (t.seq + p.length + (/SYN|FIN/.test(t.flags) ? 1 : 0)) >>> 0;
      const n = next.get(dir);
      if (t.flags === 'ACK' && p.length === 0 && n === (t.seq + 1) >>> 0)
        text += ' (probe: seq = snd.una − 1)';
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
 * IGMP) and payload length; no seq/ack numbers, windows or times.
 */
export function structure(mmd: string, options: { bareAcks?: boolean } = {}): string[] {
  const out: string[] = [];
  const igmp: string[] = [];
  const seen = new Map<string, string>();
  for (const line of mmd.split('\n')) {
    const m = /^\s*(P\d+)->>(P\d+): (\S+)(?:.*?\blen=(\d+))?/.exec(line);
    if (!m) continue;
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
  // Which reports, how many and how merged is the timer's call. Compared: the first record of the first
  // report (the first join), whether the last report only leaves, and every group any report names.
  if (igmp.length) {
    const records = (r: string) => r.replace(/^IGMP\S* report /, '').split(', ');
    const groups = [...new Set(igmp.flatMap((r) => records(r).map((x) => x.split(' ').at(-1))))].sort();
    const last = records(igmp.at(-1) as string);
    out.push(
      `IGMP first: ${records(igmp[0] as string)[0]}`,
      `IGMP last: ${last.every((x) => x.startsWith('leave ')) ? 'leaves only' : last.join(', ')}`,
      `IGMP groups: ${groups.join(', ')}`,
    );
  }
  return out;
}
