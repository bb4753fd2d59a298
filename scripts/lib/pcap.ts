// A small reader (and writer) for the libpcap file format, enough for what `tcpdump -i lo -w F` writes:
// the 24-byte global header (either byte order, µs or ns timestamps), then one 16-byte record header per
// packet. Link types: Ethernet (1, what Linux `lo` gives), Linux cooked v1 (113) and v2 (276) (`-i any`),
// raw IP (101) and BSD loopback (0). Above them IPv4 and IPv6, and TCP, UDP, ICMP, ICMPv6, IGMP.
// Reference: https://www.tcpdump.org/manpages/pcap-savefile.5.html and the link-layer header types page.

export type Proto = 'tcp' | 'udp' | 'icmp' | 'icmp6' | 'igmp' | 'other';

export interface Packet {
  /** Wall-clock time in microseconds since the epoch (the capture's own clock, CLOCK_REALTIME). */
  us: number;
  family: 4 | 6;
  src: string;
  dst: string;
  proto: Proto;
  /** The IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmp6, 2 igmp). */
  protoNumber: number;
  srcPort?: number;
  dstPort?: number;
  /** TCP only. */
  tcp?: { seq: number; ack: number; flags: string; window: number; options: number[]; wscale?: number };
  /** ICMP / ICMPv6 type and code; for an error, the quoted datagram's ports (the original UDP's). */
  icmp?: {
    type: number;
    code: number;
    quoted?: { src: string; dst: string; srcPort: number; dstPort: number };
  };
  /** IGMP type (0x16 v2 report, 0x17 leave, 0x22 v3 report) and the group(s) it names. */
  igmp?: { type: number; groups: string[]; records: number[] };
  /** Payload length as sent (from the IP header, not the snapped length). */
  length: number;
  /** The first bytes of the payload that the capture kept (snaplen may cut the rest). */
  payload: Uint8Array;
}

export interface Capture {
  linkType: number;
  snaplen: number;
  packets: Packet[];
  /** The raw records, for writing a filtered copy. */
  records: { header: Uint8Array; data: Uint8Array; packet?: Packet }[];
  header: Uint8Array;
  littleEndian: boolean;
  /** Records that were not IPv4/IPv6 (ARP, …), counted, not lost silently. */
  skipped: number;
}

const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'];

function ipv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

function ipv6(v: DataView, o: number): string {
  const words: string[] = [];
  for (let i = 0; i < 8; i++) words.push(v.getUint16(o + i * 2).toString(16));
  // Compress the longest run of zero words (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (words[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(':');
  return `${words.slice(0, best).join(':')}::${words.slice(best + bestLen).join(':')}`;
}

/** The offset of the IP header in one frame, or -1 when the frame carries no IP. */
function ipOffset(linkType: number, v: DataView, len: number): number {
  switch (linkType) {
    case 1: {
      // Ethernet: 14 bytes, maybe an 802.1Q tag.
      if (len < 14) return -1;
      let type = v.getUint16(12);
      let off = 14;
      if (type === 0x8100 && len >= 18) {
        type = v.getUint16(16);
        off = 18;
      }
      return type === 0x0800 || type === 0x86dd ? off : -1;
    }
    case 113: {
      if (len < 16) return -1;
      const type = v.getUint16(14);
      return type === 0x0800 || type === 0x86dd ? 16 : -1;
    }
    case 276: {
      if (len < 20) return -1;
      const type = v.getUint16(0);
      return type === 0x0800 || type === 0x86dd ? 20 : -1;
    }
    case 0:
      return len >= 4 ? 4 : -1;
    case 101:
    case 228:
    case 229:
      return 0;
    default:
      throw new Error(`pcap: link type ${linkType} is not supported (1, 113, 276, 101 and 0 are)`);
  }
}

function transport(
  p: Packet,
  b: Uint8Array,
  v: DataView,
  off: number,
  end: number,
  ipPayloadLen: number,
): void {
  const avail = Math.max(0, end - off);
  if (p.protoNumber === 6 && avail >= 20) {
    p.proto = 'tcp';
    p.srcPort = v.getUint16(off);
    p.dstPort = v.getUint16(off + 2);
    const dataOff = (b[off + 12] as number) >> 4;
    const flagsByte = b[off + 13] as number;
    const flags = TCP_FLAGS.filter((_, i) => flagsByte & (1 << i));
    const options: number[] = [];
    let wscale: number | undefined;
    for (let i = off + 20; i < Math.min(end, off + dataOff * 4); ) {
      const kind = b[i] as number;
      if (kind === 0) break;
      if (kind === 1) {
        i++;
        continue;
      }
      options.push(kind);
      if (kind === 3) wscale = b[i + 2];
      i += Math.max(2, b[i + 1] ?? 2);
    }
    p.tcp = {
      seq: v.getUint32(off + 4),
      ack: v.getUint32(off + 8),
      flags: flags.join(','),
      window: v.getUint16(off + 14),
      options,
      wscale,
    };
    p.length = ipPayloadLen - dataOff * 4;
    p.payload = b.subarray(Math.min(end, off + dataOff * 4), end);
  } else if (p.protoNumber === 17 && avail >= 8) {
    p.proto = 'udp';
    p.srcPort = v.getUint16(off);
    p.dstPort = v.getUint16(off + 2);
    p.length = v.getUint16(off + 4) - 8;
    p.payload = b.subarray(off + 8, end);
  } else if ((p.protoNumber === 1 || p.protoNumber === 58) && avail >= 8) {
    p.proto = p.protoNumber === 1 ? 'icmp' : 'icmp6';
    p.icmp = { type: b[off] as number, code: b[off + 1] as number };
    p.length = ipPayloadLen - 8;
    p.payload = b.subarray(off + 8, end);
    // An ICMP error quotes the datagram that caused it: IP header + at least 8 bytes (the UDP ports).
    const isError = p.proto === 'icmp' ? p.icmp.type === 3 || p.icmp.type === 11 : p.icmp.type < 128;
    const q = off + 8;
    if (isError && p.proto === 'icmp' && end - q >= 20) {
      const ihl = ((b[q] as number) & 0x0f) * 4;
      if (end - q >= ihl + 4)
        p.icmp.quoted = {
          src: ipv4(b, q + 12),
          dst: ipv4(b, q + 16),
          srcPort: v.getUint16(q + ihl),
          dstPort: v.getUint16(q + ihl + 2),
        };
    } else if (isError && p.proto === 'icmp6' && end - q >= 44) {
      p.icmp.quoted = {
        src: ipv6(v, q + 8),
        dst: ipv6(v, q + 24),
        srcPort: v.getUint16(q + 40),
        dstPort: v.getUint16(q + 42),
      };
    }
  } else if (p.protoNumber === 2 && avail >= 8) {
    p.proto = 'igmp';
    const type = b[off] as number;
    const groups: string[] = [];
    const records: number[] = [];
    if (type === 0x22 && avail >= 8) {
      // IGMPv3 report: records of type, aux len, source count, group, sources.
      const n = v.getUint16(off + 6);
      let r = off + 8;
      for (let i = 0; i < n && r + 8 <= end; i++) {
        groups.push(ipv4(b, r + 4));
        records.push(b[r] as number);
        r += 8 + v.getUint16(r + 2) * 4 + (b[r + 1] as number) * 4;
      }
    } else {
      groups.push(ipv4(b, off + 4));
    }
    p.igmp = { type, groups, records };
    p.length = ipPayloadLen;
    p.payload = b.subarray(off, end);
  } else {
    p.length = ipPayloadLen;
    p.payload = b.subarray(off, end);
  }
}

function decode(linkType: number, us: number, b: Uint8Array): Packet | undefined {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const off = ipOffset(linkType, v, b.length);
  if (off < 0 || off >= b.length) return undefined;
  const version = (b[off] as number) >> 4;
  const p: Packet = {
    us,
    family: 4,
    src: '',
    dst: '',
    proto: 'other',
    protoNumber: 0,
    length: 0,
    payload: new Uint8Array(),
  };
  if (version === 4 && b.length - off >= 20) {
    const ihl = ((b[off] as number) & 0x0f) * 4;
    const total = v.getUint16(off + 2);
    p.protoNumber = b[off + 9] as number;
    p.src = ipv4(b, off + 12);
    p.dst = ipv4(b, off + 16);
    const end = Math.min(b.length, off + total);
    transport(p, b, v, off + ihl, end, total - ihl);
    return p;
  }
  if (version === 6 && b.length - off >= 40) {
    p.family = 6;
    const payloadLen = v.getUint16(off + 4);
    let next = b[off + 6] as number;
    p.src = ipv6(v, off + 8);
    p.dst = ipv6(v, off + 24);
    let t = off + 40;
    const end = Math.min(b.length, off + 40 + payloadLen);
    // Skip hop-by-hop (0), routing (43), destination options (60) headers: MLD reports carry hop-by-hop.
    while ((next === 0 || next === 43 || next === 60) && t + 8 <= end) {
      const hlen = ((b[t + 1] as number) + 1) * 8;
      next = b[t] as number;
      t += hlen;
    }
    p.protoNumber = next;
    transport(p, b, v, t, end, off + 40 + payloadLen - t);
    return p;
  }
  return undefined;
}

export function parsePcap(file: Uint8Array): Capture {
  if (file.length < 24)
    throw new Error(`pcap: ${file.length} bytes is shorter than the 24-byte global header`);
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const magicBE = v.getUint32(0, false);
  let littleEndian: boolean;
  let nano: boolean;
  if (magicBE === 0xa1b2c3d4 || magicBE === 0xa1b23c4d) {
    littleEndian = false;
    nano = magicBE === 0xa1b23c4d;
  } else {
    const magicLE = v.getUint32(0, true);
    if (magicLE !== 0xa1b2c3d4 && magicLE !== 0xa1b23c4d)
      throw new Error(
        `pcap: magic 0x${magicBE.toString(16)} is not a libpcap file (pcapng is not supported: tcpdump -w writes pcap)`,
      );
    littleEndian = true;
    nano = magicLE === 0xa1b23c4d;
  }
  const snaplen = v.getUint32(16, littleEndian);
  const linkType = v.getUint32(20, littleEndian) & 0x0fffffff;
  const packets: Packet[] = [];
  const records: Capture['records'] = [];
  let skipped = 0;
  // A capture cut short (tcpdump killed mid-write) ends with a partial record: stop there.
  for (let o = 24; o + 16 <= file.length; ) {
    const sec = v.getUint32(o, littleEndian);
    const frac = v.getUint32(o + 4, littleEndian);
    const incl = v.getUint32(o + 8, littleEndian);
    if (o + 16 + incl > file.length) break;
    const data = file.subarray(o + 16, o + 16 + incl);
    const us = sec * 1e6 + (nano ? Math.floor(frac / 1000) : frac);
    const p = decode(linkType, us, data);
    if (p) packets.push(p);
    else skipped++;
    records.push({ header: file.subarray(o, o + 16), data, ...(p ? { packet: p } : {}) });
    o += 16 + incl;
  }
  return { linkType, snaplen, packets, records, header: file.subarray(0, 24), littleEndian, skipped };
}

/** A pcap file with only the records `keep` chooses (same global header). */
export function writePcap(capture: Capture, keep: (i: number) => boolean): Uint8Array {
  const parts: Uint8Array[] = [capture.header];
  capture.records.forEach((r, i) => {
    if (keep(i)) parts.push(r.header, r.data);
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * The loopback rule. A source is in 127.0.0.0/8 or is ::1, except that an IGMP report may come from 0.0.0.0
 * (Linux sends lo's reports so, RFC 3376 §4.2.13 allows it). A destination is in 127.0.0.0/8 (127.255.255.255,
 * lo's broadcast, included) or is ::1; or, for UDP, a group in 239.255.0.0/16 (the labs' site-local groups);
 * or, for IGMP, a group in 224.0.0.0/24 (224.0.0.22 takes IGMPv3 reports, 224.0.0.2 v2 leaves) or
 * 239.255.0.0/16 (a v2 report goes to its group). Returns the packets that break it.
 */
export function offLoopback(packets: readonly Packet[]): Packet[] {
  const loop = (a: string) => a === '::1' || /^127\.\d+\.\d+\.\d+$/.test(a);
  const site = (a: string) => /^239\.255\.\d+\.\d+$/.test(a);
  const link = (a: string) => /^224\.0\.0\.\d+$/.test(a);
  return packets.filter((p) => {
    const igmp = p.proto === 'igmp';
    const srcOk = loop(p.src) || (igmp && p.src === '0.0.0.0');
    const dstOk = loop(p.dst) || (p.proto === 'udp' && site(p.dst)) || (igmp && (link(p.dst) || site(p.dst)));
    return !(srcOk && dstOk);
  });
}
