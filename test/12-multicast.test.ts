// Lab 12: multicast on loopback: members, dropMembership, Linux's IP_MULTICAST_ALL, and the note's errata
// (docs/12-multicast.md). Every socket here stays on 127.0.0.1 or inside a network namespace with only lo.
import { randomInt, randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { execa } from 'execa';
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
import { netnsUnavailable } from './helpers/netns.ts';
import { expectInOrder } from './helpers/order.ts';
import { openUdp, type TestUdp } from './helpers/udp.ts';

const linux = process.platform === 'linux';

/** A group of its own for each test (never the lab's default 239.255.42.99, never 239.255.255.250, SSDP):
 * on Linux a member elsewhere on the host would change what a socket that left still hears. */
function randomGroup(): string {
  const third = 1 + randomInt(200);
  return `239.255.${third === 42 ? 43 : third}.${1 + randomInt(250)}`;
}

/** The next group up: another program's group on the same port. */
function nextGroup(group: string): string {
  const parts = group.split('.').map(Number);
  return `${parts[0]}.${parts[1]}.${parts[2]}.${(parts[3] as number) + 1}`;
}

/** A test socket that sends to a group the way the lab does: on 127.0.0.1, and TTL 0 (not even one hop). */
async function groupSender(t: TestHooks): Promise<TestUdp> {
  const udp = await openUdp(t, {}, 'test sender');
  udp.socket.setMulticastInterface('127.0.0.1');
  udp.socket.setMulticastTTL(0);
  return udp;
}

/** A member of a fresh group made of test sockets: bound to the group's address, joined on 127.0.0.1. */
async function testMember(t: TestHooks): Promise<{ member: TestUdp; port: number; group: string }> {
  const group = randomGroup();
  const member = await openUdp(t, { address: group, reuseAddr: true }, 'test member');
  member.socket.addMembership(group, '127.0.0.1');
  return { member, port: member.port, group };
}

/** The datagrams a lab actor printed as received, by their first word ('#1', 'marker'). */
function heard(lab: LabProcess, actor = 'receiver'): string[] {
  return lab.matching(new RegExp(`^\\[${actor}\\] received "([^" \\\\]+)`)).map((m) => m[1] as string);
}

async function receiver(t: TestHooks, group: string, port = 0): Promise<{ lab: LabProcess; port: number }> {
  const lab = spawnLab(t, '12', ['receiver', '--port', String(port), '--host', group]);
  return { lab, port: (await lab.listening()).port };
}

// The lab's timers are the ones these tests set (--interval 20 and the like): a wait fails once the lab (or a
// test socket) has said nothing new for REPLY_MS, so an untouched starter fails in seconds.
setWaitDefaults({ quiet: REPLY_MS, stalled: STALL_MS });

const noNetns = netnsUnavailable();
if (noNetns) console.log(`lab 12: the network-namespace test is skipped: ${noNetns}`);

describe.concurrent('lab 12: multicast', () => {
  it.skipIf(!linux)(
    'plays the demo: members hear the group, a socket that left still hears it while another member stays, nobody hears it once the last one left, and a bystander on 0.0.0.0 hears it all',
    async (t) => {
      const group = randomGroup();
      const g = group.replaceAll('.', '\\.');
      const lab = spawnLab(t, '12', ['--host', group]);
      expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
      const out = lab.lines;
      const order = [
        new RegExp(`^\\[demo\\] group ${g}: IPv4 local scope 239\\.255\\.0\\.0/16`),
        new RegExp(`^\\[receiver A\\] joined ${g} on interface 127\\.0\\.0\\.1$`),
        new RegExp(`^\\[receiver A\\] listening on ${g}:\\d+$`),
        new RegExp(`^\\[receiver B\\] listening on ${g}:\\d+$`),
        /^\[sender\] bound to 127\.0\.0\.1:\d+: TTL 1, loopback on, interface 127\.0\.0\.1$/,
        /^\[sender\] sent "#1"/,
        new RegExp(`^\\[receiver B\\] left ${g}$`),
        /^\[sender\] sent "#2"/,
        new RegExp(`^\\[receiver A\\] left ${g}$`),
        /^\[sender\] sent "#3"/,
        /^\[demo\] the unicast marker sent after #3 is back/,
        /^\[demo\] A heard #1 #2 #4; B heard #1 #2 #4$/,
        /^\[demo\] nobody heard #3: when its last member left, interface 127\.0\.0\.1 left the group$/,
        /^\[demo\] B heard #2 after leaving/,
        /^\[demo\] bystander \(0\.0\.0\.0, no membership\) heard: #5, to the other group, marker, #6$/,
        new RegExp(`^\\[demo\\] receiver A \\(bound to ${g}\\) heard: #5, #6$`),
        /^\[demo\] note receiver heard: marker$/,
        /^\[demo\] done$/,
      ];
      expectInOrder(out, order);
      expect(lab.matching(/listening on /)).toHaveLength(2);
      // Each datagram once per socket: A hears #1 #2 #4 #5 #6, B #1 #2 #4, the note receiver only the marker.
      expect(heard(lab, 'receiver A')).toEqual(['#1', '#2', '#4', '#5', '#6']);
      expect(heard(lab, 'receiver B')).toEqual(['#1', '#2', '#4']);
      expect(heard(lab, 'note receiver')).toEqual(['marker']);
      expect(lab.stderr).toEqual([]);
    },
  );

  it('two receivers in the group each hear every datagram, once each and in order', async (t) => {
    const group = randomGroup();
    const a = await receiver(t, group);
    const b = await receiver(t, group, a.port);
    expect(b.port).toBe(a.port);
    for (const r of [a, b]) {
      // It joins on the interface it names, bound to the group's address, before its one listening line.
      expect(r.lab.lines.slice(0, 3)).toEqual([
        expect.stringMatching(/^\[receiver\] [\d.]+: IPv4 local scope/),
        `[receiver] joined ${group} on interface 127.0.0.1`,
        `[receiver] listening on ${group}:${a.port}`,
      ]);
    }
    const send = await groupSender(t);
    for (const text of ['#1', '#2', '#3']) await send.send(text, a.port, group);
    for (const r of [a, b]) {
      const lines = await r.lab.waitForLines(/^\[receiver\] received "#\d" from 127\.0\.0\.1:(\d+)/, 3);
      expect(lines.map((m) => Number(m[1]))).toEqual([send.port, send.port, send.port]);
    }
    // One send, one copy per member: stop them, then count.
    for (const r of [a, b]) {
      expect(await r.lab.stop()).toEqual({ exitCode: 0, signal: undefined });
      expect(heard(r.lab)).toEqual(['#1', '#2', '#3']);
      expect(r.lab.matching(/stopping: heard 3 datagram\(s\)/)).toHaveLength(1);
      expect(r.lab.matching(/listening on /)).toHaveLength(1);
    }
  });

  it('the sender role sends --count datagrams to the group from 127.0.0.1 with TTL 1, then exits 0', async (t) => {
    const { member, port, group } = await testMember(t);
    const sender = spawnLab(t, '12', [
      'sender',
      ...['--port', String(port), '--host', group, '--count', '3', '--interval', '20'],
    ]);
    expect(await sender.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    const [, from] =
      sender.lines[1]?.match(
        /^\[sender\] bound to 127\.0\.0\.1:(\d+): TTL 1, loopback on, interface 127\.0\.0\.1$/,
      ) ?? [];
    expect(from, sender.output()).toBeDefined();
    expect(sender.matching(/^\[sender\] sent "#\d+ [\d:.]+\\n" to /)).toHaveLength(3);
    expect(sender.lines.at(-1)).toBe('[sender] sent 3 datagram(s), done');
    const got = await member.waitForMessages(/^#\d+ /, 3);
    expect(got.map((d) => d.text.split(' ')[0])).toEqual(['#1', '#2', '#3']);
    expect(got.map((d) => d.rinfo.port)).toEqual([Number(from), Number(from), Number(from)]);
  });

  it('dropMembership stops the only member on this host hearing the group: it misses #2 and hears #3 after joining again', async (t) => {
    const group = randomGroup();
    const { lab, port } = await receiver(t, group);
    const send = await groupSender(t);
    const marker = await openUdp(t, {}, 'marker');
    await send.send('#1', port, group);
    await lab.waitForLine(/received "#1"/);
    lab.write('leave\n');
    await lab.waitForLine(new RegExp(`^\\[receiver\\] left ${group.replaceAll('.', '\\.')}$`));
    await send.send('#2', port, group);
    // No waiting for #2 "not to come": a unicast marker sent after it comes back through the same loopback,
    // so once it is here #2 has been handled, delivered or dropped.
    await send.send('marker', marker.port);
    await marker.waitForMessages(/^marker$/);
    lab.write('join\n');
    await lab.waitForLines(/^\[receiver\] joined /, 2);
    await send.send('#3', port, group);
    await lab.waitForLine(/received "#3"/);
    expect(heard(lab)).toEqual(['#1', '#3']);
    // Typing a command twice is a one-line answer, not a crash.
    lab.write('join\n');
    await lab.waitForLine(/join failed: EADDRINUSE, this socket is already a member/);
    expect(await lab.stop()).toEqual({ exitCode: 0, signal: undefined });
  });

  it.skipIf(!linux)(
    'on Linux a socket that dropped its membership still hears the group while another socket on this host is a member (IP_MULTICAST_ALL)',
    async (t) => {
      const group = randomGroup();
      const { lab, port } = await receiver(t, group);
      // The other member: a test socket bound to the same group and port.
      const other = await openUdp(t, { address: group, port, reuseAddr: true }, 'other member');
      other.socket.addMembership(group, '127.0.0.1');
      const send = await groupSender(t);
      await send.send('#1', port, group);
      await lab.waitForLine(/received "#1"/);
      lab.write('leave\n');
      await lab.waitForLine(/^\[receiver\] left /);
      await send.send('#2', port, group);
      await lab.waitForLine(/received "#2"/);
      await other.waitForMessages(/^#2$/);
      expect(heard(lab)).toEqual(['#1', '#2']);
      expect(other.received.map((d) => d.text)).toEqual(['#1', '#2']);
    },
  );

  it.skipIf(!linux)(
    "on Linux a socket bound to 0.0.0.0 on the group's port hears the group without joining, while a receiver bound to the group address hears only its own group",
    async (t) => {
      const group = randomGroup();
      const other = nextGroup(group);
      // The bystander binds first, on 0.0.0.0 and port 0: the kernel then picks a port that no socket holds on any
      // address. (A receiver's port 0 on the group address is only free there: once another test's socket held
      // it on 127.0.0.1, and the bystander's bind failed with EADDRINUSE.)
      const bystander = await openUdp(t, { address: '0.0.0.0', port: 0, reuseAddr: true }, 'bystander');
      const port = bystander.socket.address().port;
      const { lab } = await receiver(t, group, port);
      // Another program's group on the same port.
      const otherMember = await openUdp(t, { address: other, port, reuseAddr: true }, 'other member');
      otherMember.socket.addMembership(other, '127.0.0.1');
      const send = await groupSender(t);
      await send.send('#1', port, group);
      await send.send('to the other group', port, other);
      await send.send('marker', port, '127.0.0.1');
      await send.send('#2', port, group);
      await bystander.waitForMessages(/./, 4);
      await lab.waitForLine(/received "#2"/);
      await otherMember.waitForMessages(/other group/);
      expect(bystander.received.map((d) => d.text)).toEqual(['#1', 'to the other group', 'marker', '#2']);
      expect(heard(lab)).toEqual(['#1', '#2']);
      expect(otherMember.received.map((d) => d.text)).toEqual(['to the other group']);
    },
  );

  it('the sender role with --ttl 0 still reaches members on this host: the TTL counts router hops, and local delivery takes none', async (t) => {
    const { member, port, group } = await testMember(t);
    const sender = spawnLab(t, '12', [
      'sender',
      ...['--port', String(port), '--host', group, '--ttl', '0', '--count', '2', '--interval', '10'],
    ]);
    expect(await sender.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(sender.matching(/TTL 0, loopback on, interface 127\.0\.0\.1$/)).toHaveLength(1);
    const got = await member.waitForMessages(/^#\d+ /, 2);
    expect(got.map((d) => d.text.split(' ')[0])).toEqual(['#1', '#2']);
  });

  it.skipIf(!linux)(
    'on the loopback interface setMulticastLoopback(false) changes nothing: sending on lo is itself the loop back',
    async (t) => {
      const group = randomGroup();
      const { lab, port } = await receiver(t, group);
      const send = await groupSender(t);
      send.socket.setMulticastLoopback(false);
      await send.send('#1', port, group);
      await lab.waitForLine(/received "#1"/);
      expect(heard(lab)).toEqual(['#1']);
    },
  );

  it.skipIf(noNetns !== undefined)(
    'without naming an interface, a host that has only lo has no route for the group: addMembership fails with ENODEV and send with ENETUNREACH, while naming 127.0.0.1 works',
    async (t) => {
      const ns = `nnw-12-${process.pid}-${randomUUID().slice(0, 8)}`;
      await execa('ip', ['netns', 'add', ns]);
      t.onTestFinished(async () => {
        await execa('ip', ['netns', 'del', ns], { reject: false });
      });
      try {
        await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        // Run only inside the namespace: on a host with a default route the unnamed send would leave it.
        const probe = execa(
          'ip',
          [
            'netns',
            'exec',
            ns,
            process.execPath,
            '--input-type=module',
            '-e',
            noInterfaceProbe(randomGroup()),
          ],
          { cwd: root, reject: false },
        );
        t.onTestFinished(() => {
          probe.kill('SIGKILL');
        });
        const result = await probe;
        expect(result.stderr).toBe('');
        expect(JSON.parse(result.stdout)).toEqual({
          joinWithoutInterface: 'ENODEV',
          joinOn127: 'ok',
          sendWithoutInterface: 'ENETUNREACH',
          sendOn127: 'ok',
          heard: 'named',
        });
      } finally {
        await execa('ip', ['netns', 'del', ns], { reject: false });
      }
    },
  );

  it('names the scope of its group: 224.0.0.0/24 is local control, 239.255.0.0/16 local scope, and the note’s 230.185.192.108 is global', async (t) => {
    const scopes = await Promise.all(
      ['224.0.0.250', '239.255.42.99', '230.185.192.108'].map(async (group) => {
        // Port 9 (discard): nobody on this host listens; the datagram dies on lo.
        const sender = spawnLab(t, '12', ['sender', '--host', group, '--port', '9', '--count', '1']);
        expect(await sender.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
        return sender.lines[0];
      }),
    );
    expect(scopes).toEqual([
      expect.stringMatching(
        /^\[sender\] 224\.0\.0\.250: local network control block 224\.0\.0\.0\/24: .*never forwarded/,
      ),
      expect.stringMatching(
        /^\[sender\] 239\.255\.42\.99: IPv4 local scope 239\.255\.0\.0\/16, inside the administratively scoped 239\.0\.0\.0\/8/,
      ),
      expect.stringMatching(/^\[sender\] 230\.185\.192\.108: globally scoped/),
    ]);
  });

  it('erratum (note 001): server.MulticastTTL is not a function; setMulticastTTL is, and only on a bound socket (EBADF before bind())', async (t) => {
    const socket = dgram.createSocket('udp4');
    t.onTestFinished(() => {
      socket.close();
    });
    expect('MulticastTTL' in socket).toBe(false);
    expect(() => (socket as unknown as { MulticastTTL(ttl: number): void }).MulticastTTL(128)).toThrow(
      TypeError,
    );
    expect(() => socket.setMulticastTTL(128)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    expect(socket.setMulticastTTL(128)).toBe(128);
    expect(() => socket.setMulticastTTL(256)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it("erratum (note 001): the note's sender never calls bind(): its first send binds it to 0.0.0.0 on a random port, and addMembership() before bind() does the same, so a later bind() fails", async (t) => {
    const target = await openUdp(t, {}, 'target');
    const lazy = dgram.createSocket('udp4');
    t.onTestFinished(() => {
      lazy.close();
    });
    const events: string[] = [];
    lazy.on('listening', () => {
      const { address, port } = lazy.address();
      events.push(`listening on ${address}, port ${port === 0 ? 'zero' : 'random'}`);
    });
    // Unicast to a test socket on 127.0.0.1: the point is the implicit bind, not where it goes.
    await new Promise<void>((resolve, reject) =>
      lazy.send('first', target.port, '127.0.0.1', (err) => {
        if (err) return reject(err);
        events.push('sent');
        resolve();
      }),
    );
    expect(events).toEqual(['listening on 0.0.0.0, port random', 'sent']);
    await target.waitForMessages(/^first$/);

    const joinedFirst = dgram.createSocket('udp4');
    t.onTestFinished(() => {
      joinedFirst.close();
    });
    const group = randomGroup();
    joinedFirst.addMembership(group, '127.0.0.1');
    expect(joinedFirst.address().address).toBe('0.0.0.0');
    joinedFirst.bind(0, group);
    const [err] = (await once(joinedFirst, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('EINVAL');
  });

  it("erratum (note 001): a receiver bound to a unicast address (the note's 192.168.1.103, here 127.0.0.1) hears none of the group's datagrams, even as a member", async (t) => {
    const group = randomGroup();
    const { lab, port } = await receiver(t, group);
    const noteStyle = await openUdp(
      t,
      { address: '127.0.0.1', port, reuseAddr: true },
      'note-style receiver',
    );
    noteStyle.socket.addMembership(group, '127.0.0.1');
    const send = await groupSender(t);
    await send.send('#1', port, group);
    await send.send('marker', port, '127.0.0.1');
    await noteStyle.waitForMessages(/^marker$/);
    await lab.waitForLine(/received "#1"/);
    expect(noteStyle.received.map((d) => d.text)).toEqual(['marker']);
    expect(heard(lab)).toEqual(['#1']);
  });

  it('stops cleanly on SIGTERM with exit code 0: the receiver, and the sender that sends until stopped', async (t) => {
    const { member, port, group } = await testMember(t);
    // Both at once: the receiver on a port of its own, the sender aimed at the test's member.
    const lab = spawnLab(t, '12', ['receiver', '--port', '0', '--host', randomGroup()]);
    const sender = spawnLab(t, '12', ['sender', '--port', String(port), '--host', group]);
    await Promise.all([lab.listening(), member.waitForMessages(/^#1 /)]);
    expect(await sender.stop()).toEqual({ exitCode: 0, signal: undefined });
    const [stopped] = sender.matching(/^\[sender\] stopping after (\d+) datagram\(s\)$/);
    expect(Number(stopped?.[1])).toBe(sender.matching(/^\[sender\] sent "#/).length);
    expect(await lab.stop()).toEqual({ exitCode: 0, signal: undefined });
    expect(lab.matching(/^\[receiver\] stopping: heard 0 datagram\(s\)$/)).toHaveLength(1);
  });

  it('a group that is not multicast, a TTL over 255 or an unknown role is one line on stderr and exit code 2', async (t) => {
    const cases: [string[], RegExp][] = [
      [['receiver', '--host', '127.0.0.1'], /^error: --host must be an IPv4 multicast group/],
      [['sender', '--ttl', '300'], /^error: --ttl must be a whole number from 0 to 255, got '300'$/],
      [['listener'], /^error: unknown role 'listener': this lab's roles are sender, receiver/],
    ];
    await Promise.all(
      cases.map(async ([argv, message]) => {
        const lab = spawnLab(t, '12', argv);
        expect(await lab.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
        expect(lab.stderr).toEqual([expect.stringMatching(message)]);
      }),
    );
  });
});

/** Runs inside a namespace with only lo: what addMembership and send do without an interface, and with one. */
function noInterfaceProbe(group: string): string {
  return `
import dgram from 'node:dgram';
import { once } from 'node:events';
const group = ${JSON.stringify(group)};
const code = (fn) => { try { fn(); return 'ok'; } catch (err) { return err.code; } };
const member = dgram.createSocket({ type: 'udp4', reuseAddr: true });
member.bind(0, group);
await once(member, 'listening');
const port = member.address().port;
const result = {};
result.joinWithoutInterface = code(() => member.addMembership(group));
result.joinOn127 = code(() => member.addMembership(group, '127.0.0.1'));
// Bound to 0.0.0.0, so not even the source address hints at an interface.
const sender = dgram.createSocket('udp4');
sender.bind(0);
await once(sender, 'listening');
const send = (text) => new Promise((resolve) => sender.send(text, port, group, (err) => resolve(err ? err.code : 'ok')));
result.sendWithoutInterface = await send('unnamed');
sender.setMulticastInterface('127.0.0.1');
const heard = once(member, 'message');
result.sendOn127 = await send('named');
result.heard = String((await heard)[0]);
console.log(JSON.stringify(result));
member.close();
sender.close();
`;
}
