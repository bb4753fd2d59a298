// The pcap reader and the diagram builder on tiny captures made here with tcpdump (test/fixtures/pcap/), then,
// where root and tcpdump exist, the pages' captures re-made and compared by structure with the committed ones.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { labs } from '../labs/index.ts';
import { nagleHeld, pageLines, scenes, structureLines, unavailable } from '../scripts/capture.ts';
import { offLoopback, type Packet, parsePcap } from '../scripts/lib/pcap.ts';
import {
  conversations,
  escapeMermaid,
  preview,
  sequenceDiagram,
  streamUnits,
  structure,
  tlsRecord,
  wsFrame,
} from '../scripts/lib/sequence.ts';

const root = path.resolve(import.meta.dirname, '..');
const fixtureAt = (file: string) => parsePcap(new Uint8Array(fs.readFileSync(file)));
const fixture = (name: string) =>
  parsePcap(new Uint8Array(fs.readFileSync(path.join(root, 'test/fixtures/pcap', name))));

/** A TCP segment on 127.0.0.1 as the pcap reader returns one: PSH+ACK, window 65536 and no payload unless given. */
function tcpSegment(o: {
  us?: number;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack?: number;
  flags?: string;
  window?: number;
  payload?: Uint8Array | string;
}): Packet {
  const payload =
    typeof o.payload === 'string' ? new TextEncoder().encode(o.payload) : (o.payload ?? new Uint8Array(0));
  return {
    us: o.us ?? 1,
    family: 4,
    src: '127.0.0.1',
    dst: '127.0.0.1',
    proto: 'tcp',
    protoNumber: 6,
    srcPort: o.srcPort,
    dstPort: o.dstPort,
    tcp: { seq: o.seq, ack: o.ack ?? 0, flags: o.flags ?? 'PSH,ACK', window: o.window ?? 65536, options: [] },
    length: payload.length,
    payload,
  };
}

describe('pcap reader', () => {
  it('reads an IPv4 TCP exchange on lo (Ethernet link type): handshake, 7 bytes, FIN both ways', () => {
    const c = fixture('tcp4.pcap');
    expect(c.linkType).toBe(1);
    expect(c.skipped).toBe(0);
    expect(c.packets.map((p) => p.tcp?.flags)).toEqual([
      'SYN',
      'SYN,ACK',
      'ACK',
      'PSH,ACK',
      'ACK',
      'FIN,ACK',
      'FIN,ACK',
      'ACK',
    ]);
    const data = c.packets[3] as Packet;
    expect([data.src, data.dst, data.dstPort, data.length]).toEqual(['127.0.0.1', '127.0.0.1', 7000, 7]);
    expect(Buffer.from(data.payload).toString()).toBe('hello\r\n');
    expect(c.packets[0]?.tcp?.wscale).toBe(10);
    // µs timestamps, increasing, in this century.
    expect(c.packets[0]?.us).toBeGreaterThan(1.7e15);
    expect((c.packets[7] as Packet).us).toBeGreaterThanOrEqual((c.packets[0] as Packet).us);
  });

  it('reads IPv6 on Linux cooked v2 (tcpdump -i any -y LINUX_SLL2) and writes ::1 compressed', () => {
    const c = fixture('tcp6-sll2.pcap');
    expect(c.linkType).toBe(276);
    expect(c.packets).toHaveLength(8);
    expect(c.packets.every((p) => p.family === 6 && p.src === '::1' && p.dst === '::1')).toBe(true);
    expect(c.packets[3]?.length).toBe(3);
  });

  it('reads a UDP datagram and the ICMP port unreachable that quotes it (Ethernet and cooked v1)', () => {
    for (const [name, link, port] of [
      ['udp-icmp.pcap', 1, 7001],
      ['udp-sll.pcap', 113, 7003],
    ] as const) {
      const c = fixture(name);
      expect(c.linkType).toBe(link);
      const [udp, icmp] = c.packets as [Packet, Packet];
      expect([udp.proto, udp.dstPort]).toEqual(['udp', port]);
      expect(icmp.proto).toBe('icmp');
      expect([icmp.icmp?.type, icmp.icmp?.code]).toEqual([3, 3]);
      expect(icmp.icmp?.quoted).toEqual({
        src: '127.0.0.1',
        dst: '127.0.0.1',
        srcPort: udp.srcPort,
        dstPort: port,
      });
      // The ICMP error belongs to the flow it quotes.
      expect(conversations(c.packets)).toHaveLength(1);
    }
  });

  it('reads IGMPv3 reports: a join (change to exclude) and a leave (change to include)', () => {
    const c = fixture('igmp.pcap');
    expect(
      c.packets.map((p) => [p.proto, p.src, p.dst, p.igmp?.type, p.igmp?.records, p.igmp?.groups]),
    ).toEqual([
      ['igmp', '0.0.0.0', '224.0.0.22', 0x22, [4], ['239.255.42.99']],
      ['igmp', '0.0.0.0', '224.0.0.22', 0x22, [3], ['239.255.42.99']],
    ]);
  });

  it('rejects what is not a pcap file, and stops at a record cut short', () => {
    expect(() => parsePcap(new Uint8Array(10))).toThrow(/shorter than the 24-byte/);
    expect(() => parsePcap(new Uint8Array(24))).toThrow(/not a libpcap file/);
    const whole = new Uint8Array(fs.readFileSync(path.join(root, 'test/fixtures/pcap/tcp4.pcap')));
    expect(parsePcap(whole.subarray(0, whole.length - 5)).packets).toHaveLength(7);
  });
});

describe('the loopback rule', () => {
  const p = (src: string, dst: string, proto: Packet['proto'] = 'udp'): Packet =>
    ({ src, dst, proto, family: src.includes(':') ? 6 : 4 }) as Packet;
  it('accepts 127/8, ::1, lo broadcast, site-local groups, IGMP from 0.0.0.0 to 224.0.0.x', () => {
    expect(
      offLoopback([
        p('127.0.0.1', '127.255.255.255'),
        p('127.0.0.1', '239.255.42.99'),
        p('::1', '::1', 'tcp'),
        p('0.0.0.0', '224.0.0.22', 'igmp'),
        p('127.0.0.1', '239.255.42.99', 'igmp'),
      ]),
    ).toEqual([]);
  });
  it('rejects anything else', () => {
    const bad = [
      p('10.0.0.1', '127.0.0.1'),
      p('127.0.0.1', '8.8.8.8'),
      p('0.0.0.0', '127.0.0.1'),
      p('127.0.0.1', '224.0.0.251'),
      p('127.0.0.1', '239.1.2.3'),
      p('0.0.0.0', '239.0.0.1', 'igmp'),
      p('::1', 'fe80::1', 'tcp'),
    ];
    expect(offLoopback(bad)).toEqual(bad);
  });
});

describe('sequence diagram', () => {
  it('one arrow per segment, relative seq/ack, scaled window, payload preview; events by time', () => {
    const c = fixture('tcp4.pcap');
    const t0 = (c.packets[0] as Packet).us;
    const lines = [
      { us: t0 - 1000, text: "[client] 'connect' on 127.0.0.1:7000" },
      { us: (c.packets[4] as Packet).us + 1, text: "[server] 'end'" },
      { us: t0 + 5000, text: 'no event here' },
      { us: t0 + 5000, text: "[server] 'close' of 127.0.0.1:7777, another connection" },
      { us: t0 + 60_000_000, text: "[server] 'close' much later" },
    ];
    const mmd = sequenceDiagram(c.packets, lines, { title: 'fixture' });
    const arrows = mmd.split('\n').filter((l) => l.includes('->>'));
    expect(arrows).toHaveLength(8);
    expect(mmd).toContain('participant P1 as client 127.0.0.1:');
    expect(mmd).toContain('participant P2 as server 127.0.0.1:7000');
    expect(arrows[0]).toMatch(/^ {2}P1->>P2: SYN seq=0 win=65495 len=0$/);
    expect(arrows[1]).toMatch(/^ {2}P2->>P1: SYN\+ACK seq=0 ack=1 win=65483 len=0$/);
    expect(arrows[3]).toBe('  P1->>P2: PSH+ACK seq=1 ack=1 win=65536 len=7 "hello\\r\\n"');
    expect(arrows[7]).toMatch(/ACK seq=9 ack=2 /);
    const body = mmd.split('\n');
    // The 'connect' line came before the first packet, 'end' after the fifth; no note for a line without an
    // event, nor for one far outside the capture.
    expect(body.indexOf("  Note over P1,P2: [client] 'connect' on 127.0.0.1:7000")).toBe(
      body.indexOf(arrows[0] as string) - 1,
    );
    expect(body.indexOf("  Note over P1,P2: [server] 'end'")).toBe(body.indexOf(arrows[4] as string) + 1);
    expect(mmd).not.toContain('no event here');
    expect(mmd).not.toContain('much later');
    expect(mmd).not.toContain('another connection');
    expect(structure(mmd)).toEqual([
      'P1>P2 SYN len=0',
      'P2>P1 SYN+ACK len=0',
      'P1>P2 PSH+ACK len=7',
      'P1>P2 FIN+ACK len=0',
      'P2>P1 FIN+ACK len=0',
    ]);
    expect(structure(mmd, { bareAcks: true })).toEqual([
      'P1>P2 SYN len=0',
      'P2>P1 SYN+ACK len=0',
      'P1>P2 ACK len=0',
      'P1>P2 PSH+ACK len=7',
      'P2>P1 ACK len=0',
      'P1>P2 FIN+ACK len=0',
      'P2>P1 FIN+ACK len=0',
      'P1>P2 ACK len=0',
    ]);
  });

  it('draws an ICMP error from the unreachable port back to the sender, and IGMP joins and leaves', () => {
    const u = sequenceDiagram(fixture('udp-icmp.pcap').packets, []);
    expect(u).toContain('participant P2 as 127.0.0.1:7001');
    expect(u).toContain('P1->>P2: UDP len=7 "anyone?"');
    expect(u).toContain('P2->>P1: ICMP unreachable port len=');
    const g = sequenceDiagram(fixture('igmp.pcap').packets, []);
    expect(g).toContain('P1->>P2: IGMPv3 report join 239.255.42.99');
    expect(g).toContain('P1->>P2: IGMPv3 report leave 239.255.42.99');
    expect(structure(g)).toEqual([
      'IGMP order: no leave before a join',
      'IGMP last: leaves only',
      'IGMP groups: 239.255.42.99',
    ]);
  });

  it('compares IGMP by order, last report and groups: a leave before any join is told apart', () => {
    const diagram = (...reports: string[]) =>
      ['sequenceDiagram', ...reports.map((r) => `  P1->>P2: IGMPv3 report ${r}`)].join('\n');
    const usual = structure(diagram('join 239.255.42.99', 'join 239.255.42.99', 'leave 239.255.42.99'));
    // The join reports missing from a capture (seen once under load): the same structure.
    expect(structure(diagram('leave 239.255.42.99'))).toEqual(usual);
    expect(structure(diagram('leave 239.255.42.99', 'join 239.255.42.99', 'leave 239.255.42.99'))).toEqual([
      'IGMP order: a leave before the first join: IGMPv3 report leave 239.255.42.99',
      'IGMP last: leaves only',
      'IGMP groups: 239.255.42.99',
    ]);
    expect(structure(diagram('join 239.255.42.99'))).toContain('IGMP last: join 239.255.42.99');
  });

  it('names TLS records by their first byte (0x16 handshake, 0x14 change_cipher_spec, 0x17 application_data), a hello by its message type', () => {
    // openssl s_server and s_client, TLS 1.3, on lo (tcpdump -s 4096).
    const c = fixture('tls13.pcap');
    const arrows = sequenceDiagram(c.packets, [])
      .split('\n')
      .filter((l) => l.includes('->>'));
    const tls = arrows.map((l) => / TLS: (.*)$/.exec(l)?.[1]).filter((t) => t !== undefined);
    expect(tls.slice(0, 3)).toEqual([
      'handshake ClientHello',
      'handshake ServerHello, change_cipher_spec, application_data ×4',
      'change_cipher_spec, application_data',
    ]);
    // After the handshake everything is application_data, close_notify too (TLS 1.3 encrypts alerts).
    expect(tls.slice(3)).toEqual(Array(5).fill('application_data'));
    // A handshake record after change_cipher_spec is encrypted (TLS 1.2's Finished): its type is not read.
    const b = new Uint8Array([0x16, 3, 3, 0, 4, 1, 0, 0, 0]);
    expect(tlsRecord(b, 0)).toEqual({ text: 'handshake ClientHello', size: 9 });
    expect(tlsRecord(b, 0, false)).toEqual({ text: 'handshake', size: 9 });
    expect(tlsRecord(new Uint8Array([0x15, 3, 3, 0, 2, 1, 0]), 0)).toEqual({ text: 'alert', size: 7 });
    expect(tlsRecord(b, 6)).toBeUndefined();
  });

  it('reads WebSocket frames after the 101: masked bytes as sent and unmasked, a frame across segments', () => {
    let seq = { c: 1000, s: 5000 };
    const seg = (from: 'c' | 's', bytes: number[] | string): Packet => {
      const p = tcpSegment({
        srcPort: from === 'c' ? 40000 : 8090,
        dstPort: from === 'c' ? 8090 : 40000,
        seq: seq[from],
        window: 512,
        payload: typeof bytes === 'string' ? bytes : new Uint8Array(bytes),
      });
      seq = { ...seq, [from]: seq[from] + p.length };
      return p;
    };
    const key = [0x37, 0xfa, 0x21, 0x3d];
    const masked = [...'Hello'].map((ch, i) => (ch.charCodeAt(0) ^ (key[i % 4] as number)) as number);
    const packets = [
      seg('c', 'GET / HTTP/1.1\r\n\r\n'),
      seg('s', 'HTTP/1.1 101 Switching Protocols\r\n\r\n'),
      seg('c', [0x81, 0x85, ...key, ...masked]),
      // A 126-byte binary frame (16-bit length) cut after 50 of its bytes, then a ping in the same segment.
      seg('s', [0x82, 126, 0, 126, ...Array(50).fill(0x61)]),
      seg('s', [...Array(76).fill(0x61), 0x89, 0]),
    ];
    const units = streamUnits(packets);
    expect(units.get(packets[0] as Packet)).toBeUndefined();
    expect(units.get(packets[2] as Packet)).toBe(
      'WS: text, 5 bytes masked with 37fa213d: "\\x7f\\x9fMQX" = "Hello"',
    );
    expect(units.get(packets[3] as Packet)).toBe('WS: binary, 126 bytes: "aaaaaaaaaaaa…"');
    expect(units.get(packets[4] as Packet)).toBe('WS: (the last 76 bytes of a frame), ping, 0 bytes: ""');
    expect(wsFrame(new Uint8Array([0x01, 0xfe, 0, 200]), 0)).toBeUndefined(); // its mask key not captured
  });

  it('marks a SYN sent again with the same seq as a retry, with the time since the first', () => {
    const syn = (us: number) =>
      tcpSegment({ us, srcPort: 40000, dstPort: 6969, seq: 77, flags: 'SYN', window: 65495 });
    const arrows = sequenceDiagram([syn(1e9), syn(1e9 + 1_020_000)], [])
      .split('\n')
      .filter((l) => l.includes('->>'));
    expect(arrows).toEqual([
      '  P1->>P2: SYN seq=0 win=65495 len=0',
      '  P1->>P2: SYN seq=0 win=65495 len=0 (retry, 1.0 s after the first SYN)',
    ]);
    // Data sent again (a tail loss probe when the ACK is late) is marked, and the structure leaves it out.
    const data = (seq: number) =>
      tcpSegment({
        us: 2e9 + seq,
        srcPort: 40000,
        dstPort: 6969,
        seq,
        window: 65495,
        payload: new Uint8Array(4),
      });
    const mmd = sequenceDiagram([syn(1e9), data(78), data(82), data(82)], []);
    expect(mmd).toContain('seq=5 ack=0 win=65495 len=4 "\\x00\\x00\\x00\\x00" (retransmission)');
    expect(structure(mmd)).toEqual(['P1>P2 SYN len=0', 'P1>P2 PSH+ACK len=4', 'P1>P2 PSH+ACK len=4']);
  });

  it('09 nodelay ends once all ten lines were sent, a line the kernel sent again counted once', () => {
    const scene = scenes.find((s) => s.lab === '09' && s.name === 'nodelay');
    const segment = (from: number, seq: number, text: string) =>
      tcpSegment({
        us: 1e9 + seq,
        srcPort: from,
        dstPort: from === 40000 ? 6969 : 40000,
        seq,
        ack: 1,
        flags: text ? 'PSH,ACK' : 'ACK',
        payload: text,
      });
    const line = (n: number) => segment(40000, 100 + 4 * (n - 1), `b:${n % 10}\n`);
    // b:1 … b:9, then b:9 again (a tail loss probe: the ACK was late and the writer descheduled), the ACK,
    // and only then b:0 and the ACK that answers it.
    const packets = [1, 2, 3, 4, 5, 6, 7, 8, 9].map(line);
    packets.push(line(9), segment(6969, 1, ''), line(10), segment(6969, 1, ''));
    expect(scene?.until?.(packets)).toBe(true);
    const picked = scene?.select?.(packets) ?? [];
    expect(picked).toHaveLength(packets.length);
    expect(picked.at(-2)?.payload).toEqual(new TextEncoder().encode('b:0\n'));
  });

  it('escapes what mermaid would read as syntax, and previews bytes', () => {
    expect(escapeMermaid('a;b#c<d>"e"')).toBe('a#59;b#35;c#60;d#62;#34;e#34;');
    expect(preview(new Uint8Array([0x68, 0x00, 0xff, 0x0a]), 4)).toBe('h\\x00\\xff\\n');
    expect(preview(new TextEncoder().encode('0123456789abcdef'), 16)).toBe('0123456789ab…');
  });
});

// The pages' captures, made again and compared by structure with the committed ones (docs/captures/):
// directions, flags, payload lengths; not seq numbers, ports or times. Needs Linux, root, tcpdump, ip netns.
const noCapture = unavailable();
if (noCapture) console.log(`capture: the pages' captures are not re-made: skipped: ${noCapture}`);

// The tests below share one run of every page's capture (a namespace per run, all at once). It is CPU-bound:
// about 20 s on 2 idle cores, over 60 s when other test files load them too; hence their 120 s.
describe.skipIf(noCapture !== undefined)("the pages' captures", () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'capture-test-'));
  const fresh = { made: undefined as Promise<unknown> | undefined };
  const make = () => {
    // One run of the tool for every page (a namespace per lab, all at once), shared by the tests below.
    fresh.made ??= execa(
      process.execPath,
      ['--import', 'tsx', 'scripts/capture.ts', '--all', '--pages', '--out', out],
      {
        cwd: root,
      },
    );
    return fresh.made;
  };
  afterAll(() => fs.rmSync(out, { recursive: true, force: true }));

  for (const scene of scenes) {
    const slug = labs.find((l) => l.id === scene.lab)?.slug as string;
    it(`${scene.lab} ${scene.name}: the same exchange on the wire as docs/captures/${slug}/${scene.name}.mmd, all on loopback`, async () => {
      await make();
      const committed = fs.readFileSync(path.join(root, 'docs/captures', slug, `${scene.name}.mmd`), 'utf8');
      const again = fs.readFileSync(path.join(out, 'captures', slug, `${scene.name}.mmd`), 'utf8');
      const opts = { bareAcks: scene.bareAcks === true };
      const shape = scene.essence ?? ((mmd: string) => structure(mmd, opts));
      expect(shape(again)).toEqual(shape(committed));
      expect(shape(committed).length).toBeGreaterThan(0);
      expect(structure(committed).length).toBeGreaterThan(0);
      for (const file of [path.join(out, 'public', slug), path.join(root, 'docs/public/captures', slug)]) {
        const pcap = fixtureAt(path.join(file, `${scene.name}.pcap`));
        expect(pcap.packets.length).toBeGreaterThan(0);
        expect(offLoopback(pcap.packets)).toEqual([]);
      }
    }, 120_000);
  }

  const remade = (lab: string, name: string) => {
    const slug = labs.find((l) => l.id === lab)?.slug as string;
    return fs.readFileSync(path.join(out, 'captures', slug, `${name}.mmd`), 'utf8');
  };

  it('09: ten 4-byte writes are ten segments with noDelay; with Nagle none leaves while an earlier one is unacknowledged', async () => {
    await make();
    const burst = (mmd: string) =>
      structureLines(mmd)
        .filter((l) => /^\s*P1->>P2: .*"b:/.test(l))
        .map((l) => Number(/\blen=(\d+)/.exec(l)?.[1]));
    const nodelay = burst(remade('09', 'nodelay'));
    const nagle = burst(remade('09', 'nagle'));
    expect(nodelay).toEqual(Array(10).fill(4));
    // How many segments Nagle makes of them is the ACKs' timing (fewer than ten on the page's capture; ten, each
    // ACKed before the next write, once on a loaded machine); that none left with data unacknowledged is not.
    expect(nagleHeld(remade('09', 'nagle'))).toBe(true);
    expect(nagle[0]).toBe(4);
    expect(nagle.reduce((a, b) => a + b, 0)).toBe(40);
  }, 120_000);

  it("nagleHeld tells Nagle's rule kept from broken: the page's two captures", () => {
    const committed = (name: string) =>
      fs.readFileSync(path.join(root, 'docs/captures/09-chat-v2', `${name}.mmd`), 'utf8');
    expect(nagleHeld(committed('nagle'))).toBe(true);
    // noDelay: ten segments within 0.27 ms and one ACK for them all.
    expect(nagleHeld(committed('nodelay'))).toBe(false);
  });

  it('02: with the accept queue full the third SYN gets no SYN+ACK; it is sent again 1 s later, and answered', async () => {
    await make();
    const arrows = structureLines(remade('02', 'backlog-full'));
    // One retry, or more if the machine was too busy to accept within the second.
    const retries = arrows.filter((l) => l.includes('(retry,'));
    expect(retries.length).toBeGreaterThanOrEqual(1);
    // The kernel's first retransmission timeout is 1 s (TCP_TIMEOUT_INIT): never sooner.
    expect(Number(/retry, ([\d.]+) s/.exec(retries[0] as string)?.[1])).toBeGreaterThanOrEqual(1);
    const at = arrows.indexOf(retries[0] as string);
    const [from] = /P\d+/.exec(retries[0] as string) ?? [];
    expect(arrows.slice(0, at).filter((l) => l.startsWith(`  ${from}->>`) && / SYN /.test(l))).toHaveLength(
      1,
    );
    expect(arrows.slice(0, at).some((l) => l.includes(`->>${from}: SYN+ACK`))).toBe(false);
    expect(arrows.slice(at).some((l) => l.includes(`->>${from}: SYN+ACK`))).toBe(true);
  }, 120_000);
});

describe('the committed diagrams', () => {
  it('every scene is shown on its page in both locales: the diagram included in a mermaid fence, the .pcap linked', () => {
    for (const scene of scenes) {
      const slug = labs.find((l) => l.id === scene.lab)?.slug as string;
      for (const page of [`docs/${slug}.md`, `docs/en/${slug}.md`]) {
        const text = fs.readFileSync(path.join(root, page), 'utf8');
        for (const line of pageLines(scene)) expect(text, `${page} shows ${scene.name}`).toContain(line);
      }
      expect(fs.existsSync(path.join(root, 'docs/captures', slug, `${scene.name}.mmd`))).toBe(true);
      expect(fs.existsSync(path.join(root, 'docs/public/captures', slug, `${scene.name}.pcap`))).toBe(true);
    }
  });

  it('every docs/captures/**/*.mmd parses as a mermaid diagram', async () => {
    const { default: mermaid } = await import('mermaid');
    const dir = path.join(root, 'docs/captures');
    const files = fs
      .readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.mmd'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files)
      await expect(mermaid.parse(fs.readFileSync(path.join(dir, f), 'utf8')), f).resolves.toBeTruthy();
  });
});
