// Every program output a page shows, as the command a reader types and the peers the session needs.
// `npm run record [NN]` runs them on Node 24 and writes docs/transcripts/NN-slug/NAME.txt;
// test/transcripts.test.ts runs them again and compares. A page imports the file; nobody pastes output.
import type { Mask, Step, Transcript } from './lib/transcript.ts';

const demo = (lab: string, extra: Partial<Transcript> = {}): Transcript => ({
  lab,
  name: 'demo',
  show: `npm run lab ${lab}`,
  ...extra,
});

/** A number after `before` (and before `after`) varies: measured times, counts the kernel decides. */
const n = (before: string, after = ''): Mask => [new RegExp(`(${before})[\\d.]+(${after})`, 'g'), '$1N$2'];

const demos: readonly Transcript[] = [
  demo('01'),
  demo('02', { masks: [n('waited ', ' ms')] }),
  demo('03'),
  // How much of the 64 MiB reaches the server before destroy() is the kernel's (3.9 MB in one run, 4.2 in another);
  // that it is all of it after end() is the point, and stays unmasked.
  demo('04', { masks: [[/(\[bulk destroy\] .* the server read )\d+/, '$1N']] }),
  // How many 'data' events the flood takes is the kernel's choice (identical masked lines count once), and so is
  // how much it is: the client writes until write() says false, which depends on how far the kernel's buffers
  // have grown (60 writes, 3.75 MiB, in most runs; 62 in one on a loaded Node 20).
  demo('05', {
    masks: [
      n("'data' #"),
      n(': ', ' bytes$'),
      n(' in ', " 'data' event"),
      n('after ', ' writes \\('),
      n('writes \\(', ' bytes\\)'),
      n('client sent FIN: ', ' bytes in '),
    ],
    collapse: true,
  }),
  // What the naive sender queues is 32 MiB less what the kernel's buffers took, and they grow as the kernel sees fit
  // (29687808 and 29360128 in two runs): tens of MiB against the polite senders' 65536 is the point.
  demo('06', {
    masks: [
      n('returned false ', ' time'),
      n('fired ', ' time'),
      n('at that moment '),
      n('naive: waiting for the receiver; writableLength '),
      [/(naive: peak writableLength )\d+ \(bufferSize \d+\)/, '$1N (bufferSize N)'],
      [/(peak queued bytes: naive )\d+(.*queued )\d+x/, '$1N$2Nx'],
    ],
  }),
  demo('07', {
    masks: [
      n('after ', ' ms idle'),
      [/timer:\([^)]*\)/g, 'timer:(…)'],
      // The two-hour default shows as 119 or 120 min: ss prints whole minutes, rounded down, and a timer read in
      // the jiffy it was set still has all 7200 s (test:all once saw 120 against the recorded 119). The lab's own
      // test checks the value: within a minute of /proc/sys/net/ipv4/tcp_keepalive_time.
      [/next probe in [\d.]+ (?:min|m?s)/g, 'next probe in N'],
    ],
  }),
  demo('08'),
  demo('09', {
    masks: [n('alice sent ', ' lines'), n('spoke ', ' times'), n('dropped: ', ' bytes')],
    // How many times alice and bob speak before frank's idle limit is the scheduler's call.
    drop: /still here \d+$|me too \d+$/,
  }),
  demo('10', {
    masks: [n('"PING \\d+ ', '"'), n('rtt ', ' ms'), [/rtt min\/avg\/max = \S+/, 'rtt min/avg/max = N']],
  }),
  demo('11'),
  // Multicast membership is per host: lab 12's runs take turns (see `group`).
  demo('12', { group: 'multicast' }),
];

/**
 * One terminal session seen from one of its terminals: `commands` names every process, `shown` picks the
 * one whose output the file keeps; steps use the names given here.
 */
function session(
  lab: string,
  name: string,
  shown: string,
  commands: Record<string, string>,
  extra: Omit<Partial<Transcript>, 'steps'> & { steps?: readonly Step[] } = {},
): Transcript {
  const rename = (n: string) => (n === shown ? 'show' : n);
  const steps = (extra.steps ?? []).map((s) => {
    const out: Record<string, unknown> = { ...s };
    for (const key of ['start', 'wait', 'type', 'eof', 'kill', 'exit'] as const)
      if (key in s) out[key] = rename((s as Record<string, string>)[key] as string);
    return out as Step;
  });
  const others = Object.fromEntries(Object.entries(commands).filter(([n]) => n !== shown));
  return {
    lab,
    name,
    show: commands[shown] as string,
    with: others,
    ...extra,
    steps,
    server: extra.server ? rename(extra.server) : 'show',
  };
}

/** ss pads its columns to the widest address: a 5-digit port widens them, and may glue 'Port' to 'Process'. */
const ssColumns: Mask = [/ {2,}/g, ' '];
const ssHeader: Mask = [/Port ?Process/g, 'Port Process'];

const lab03 = {
  server: 'npm run lab 03 server -- --max-connections 1',
  first: 'nc 127.0.0.1 8080',
  second: 'nc 127.0.0.1 8080',
  refused: 'nc -v 127.0.0.1 8080',
};
const steps03: Step[] = [
  { start: 'server' },
  { start: 'first' },
  { wait: 'first', line: /^hello #1/ },
  { type: 'first', text: 'hi there\n' },
  { wait: 'first', line: /^hi there$/ },
  { start: 'second' },
  { wait: 'server', line: /'drop'/ },
  { type: 'server', text: 'close\n' },
  { wait: 'server', line: /close\(\) called/ },
  { start: 'refused' },
  { exit: 'refused' },
  { kill: 'first', signal: 'SIGINT' },
  { exit: 'server' },
];
const session03 = (name: string, shown: keyof typeof lab03) =>
  session('03', name, shown, lab03, { port: 8080, server: 'server', steps: steps03, tools: ['nc'] });

const lab04 = {
  server: 'npm run lab 04 server',
  nc: "printf 'héllo\\n' | nc -N 127.0.0.1 6969",
  client: 'npm run lab 04 client -- --close reset',
};

const lab07 = { server: 'npm run lab 07 server -- --idle 1000', nc: 'nc 127.0.0.1 8080' };
const steps07: Step[] = [
  { start: 'server' },
  { start: 'nc' },
  { wait: 'nc', line: /^hello/ },
  { wait: 'nc', line: /^idle for/ },
  { type: 'nc', text: 'hi\n' },
  { wait: 'nc', line: /^echo: hi/ },
  { wait: 'nc', line: /^bye: idle too long/ },
  { wait: 'server', line: /closed after/ },
  { eof: 'nc' },
  { exit: 'nc' },
  { kill: 'server', signal: 'SIGINT' },
  { exit: 'server' },
];
const idleMasks: Mask[] = [n('after ', ' ms idle'), n('for another ', ' ms')];

const lab12 = {
  receiver: 'npm run lab 12 receiver',
  bystander: 'nc -ukl 8080',
  sender: 'npm run lab 12 sender -- --count 1',
  nc: 'echo hello from nc | nc -u -w1 -s 127.0.0.1 239.255.42.99 8080',
  socat:
    'echo hi from socat | socat -u - UDP4-DATAGRAM:239.255.42.99:8080,ip-multicast-if=127.0.0.1,ip-multicast-ttl=1',
};
const steps12: Step[] = [
  { start: 'receiver' },
  { start: 'bystander' },
  // nc prints nothing once it is bound: ss shows its socket next to the receiver's.
  { probe: "ss -ulnH 'sport = :8080'", line: /^UNCONN.* (0\.0\.0\.0|\*):\d+ / },
  { start: 'sender' },
  { wait: 'receiver', line: /received "#1/ },
  { start: 'nc' },
  { wait: 'receiver', line: /received "hello from nc/ },
  { start: 'socat' },
  { wait: 'receiver', line: /received "hi from socat/ },
  { wait: 'bystander', line: /^hi from socat/ },
  { kill: 'bystander', signal: 'SIGINT' },
  { kill: 'receiver', signal: 'SIGINT' },
  { exit: 'receiver' },
];
const session12 = (name: string, shown: keyof typeof lab12) =>
  session('12', name, shown, lab12, {
    group: 'multicast',
    port: 8080,
    server: 'receiver',
    steps: steps12,
    tools: ['nc', 'socat', 'ss'],
  });

/** The sessions the pages show besides the demos. */
export const sessions: readonly Transcript[] = [
  session(
    '02',
    'ss-half-open',
    'ss',
    {
      server: 'npm run lab 02 server -- --block enter --half-open',
      nc: "printf 'hello\\n' | nc -N 127.0.0.1 6969",
      ss: "ss -ltn 'sport = :6969'; ss -tn '( sport = :6969 or dport = :6969 )'",
    },
    {
      port: 6969,
      server: 'server',
      steps: [
        { start: 'server' },
        { start: 'nc' },
        { probe: "ss -tnH state close-wait '( sport = :6969 )'", line: /^7\s/ },
        // The server's kernel ACKs the FIN as it takes it; the client's side leaves FIN-WAIT-1 when that ACK is
        // processed, a moment later (ss once saw FIN-WAIT-1 on a loaded machine).
        { probe: "ss -tnH state fin-wait-2 '( dport = :6969 )'", line: /^\d+\s+\d+\s/ },
        { start: 'ss' },
      ],
      masks: [ssColumns, ssHeader],
      order: 'any',
      tools: ['nc', 'ss'],
    },
  ),
  session(
    '02',
    'ss-backlog',
    'ss',
    {
      server: 'npm run lab 02 server -- --backlog 1 --block enter',
      nc1: 'nc 127.0.0.1 6969',
      nc2: 'nc 127.0.0.1 6969',
      nc3: 'nc 127.0.0.1 6969',
      ss: "ss -tn 'dport = :6969'",
    },
    {
      port: 6969,
      server: 'server',
      steps: [
        { start: 'server' },
        { start: 'nc1' },
        { start: 'nc2' },
        { probe: "ss -tnH state established 'dport = :6969'", line: /\S/ },
        { start: 'nc3' },
        { probe: "ss -tnH state syn-sent 'dport = :6969'", line: /\S/ },
        { start: 'ss' },
      ],
      masks: [ssColumns, ssHeader],
      order: 'any',
      tools: ['nc', 'ss'],
    },
  ),
  session03('first-client', 'first'),
  session03('refused', 'refused'),
  session03('server', 'server'),
  session(
    '03',
    'ss-listen',
    'ss',
    { server: lab03.server, ss: "ss -ltn 'sport = :8080'" },
    {
      port: 8080,
      server: 'server',
      steps: [{ start: 'server' }, { start: 'ss' }],
      masks: [ssColumns, ssHeader],
      tools: ['ss'],
    },
  ),
  session(
    '03',
    'stale-socket',
    'again',
    {
      crashed: 'npm run lab 03 server -- --unix',
      nc: 'nc -U /tmp/node-net-workbook-03.sock',
      again: 'npm run lab 03 server -- --unix',
    },
    {
      server: 'none',
      // The check must not touch the path a reader's own server may be using.
      rewrite: (c, tmp) =>
        c
          .replace('--unix', `--path ${tmp}/lab03.sock`)
          .replace('/tmp/node-net-workbook-03.sock', `${tmp}/lab03.sock`),
      steps: [
        { start: 'crashed' },
        { wait: 'crashed', line: /listening on/ },
        { start: 'nc' },
        { wait: 'nc', line: /^hello #1/ },
        { kill: 'crashed', signal: 'SIGKILL' },
        { exit: 'crashed' },
        { start: 'again' },
        { wait: 'again', line: /type `close`/ },
        { kill: 'again', signal: 'SIGINT' },
      ],
      tools: ['nc'],
    },
  ),
  session('04', 'client-reset', 'client', lab04, {
    port: 6969,
    server: 'server',
    steps: [{ start: 'server' }, { start: 'client' }],
  }),
  { lab: '04', name: 'client-refused', show: 'npm run lab 04 client', port: 6969, server: 'none' },
  session('04', 'server', 'server', lab04, {
    port: 6969,
    server: 'server',
    steps: [
      { start: 'server' },
      { start: 'nc' },
      { wait: 'server', line: /#1 totals/ },
      { start: 'client' },
      { exit: 'client' },
      { wait: 'server', line: /#2 totals/ },
      { kill: 'server', signal: 'SIGINT' },
    ],
    tools: ['nc'],
  }),
  session(
    '05',
    'ss-paused',
    'ss',
    { server: 'npm run lab 05 server', nc: 'nc -N 127.0.0.1 8080', ss: "ss -tn 'sport = :8080'" },
    {
      port: 8080,
      server: 'server',
      steps: [
        { start: 'server' },
        { start: 'nc' },
        { type: 'nc', text: 'hello there\n' },
        { probe: "ss -tnH 'sport = :8080'", line: /^ESTAB\s+12\s/ },
        { start: 'ss' },
      ],
      masks: [ssColumns, ssHeader],
      tools: ['nc', 'ss'],
    },
  ),
  ...(['naive', 'polite', 'pipeline'] as const).map((how) =>
    session(
      '06',
      `client-${how}`,
      'client',
      {
        server: 'npm run lab 06 server -- --mode hold',
        client: `npm run lab 06 client -- ${how === 'polite' ? '' : `--${how} `}--mib 256`.replace(
          '--  ',
          '-- ',
        ),
      },
      {
        port: 8080,
        server: 'server',
        steps: [
          { start: 'server' },
          { start: 'client' },
          { wait: 'client', line: /waiting for the receiver/ },
          { type: 'server', text: 'go\n' },
        ],
        slow: '256 MiB through loopback, and the RSS it reports is this machine’s',
        masks: [
          n('writableLength '),
          n('bufferSize '),
          n('at that moment '),
          n('returned false ', ' time'),
          n('fired ', ' time'),
          n('RSS grew by ', ' MiB'),
        ],
      },
    ),
  ),
  {
    lab: '06',
    name: 'bench',
    show: 'npm run bench 06',
    slow: 'a benchmark: tens of seconds, and its numbers are this machine’s',
    // Every number is a measurement: what stays is the table's shape, its rows and its words.
    masks: [[/\d+(?:\.\d+)?/g, 'N'], ssColumns],
    order: 'exact',
  },
  {
    lab: '07',
    name: 'vanish',
    show: 'sudo npm run lab 07 vanish',
    root: 'two network namespaces and a veth pair',
    slow: 'about 15 s of keepalive probes',
    masks: [
      [/nwb07-?p?\d+/g, 'nwb07-PID'],
      [/timer:\([^)]*\)/g, 'timer:(…)'],
      [/next probe in [\d.]+ m?s/g, 'next probe in N'],
      n('\\+', ' s'),
      n('gave up ', ' s'),
    ],
  },
  session('07', 'nc-idle', 'nc', lab07, { port: 8080, server: 'server', steps: steps07, tools: ['nc'] }),
  session('07', 'server-idle', 'server', lab07, {
    port: 8080,
    server: 'server',
    steps: steps07,
    masks: idleMasks,
    tools: ['nc'],
  }),
  session(
    '07',
    'ss-keepalive',
    'ss',
    {
      server: 'npm run lab 07 server -- --keepalive 3000',
      nc: 'nc 127.0.0.1 8080',
      ss: "ss -tno state established '( sport = :8080 )'",
    },
    {
      port: 8080,
      server: 'server',
      steps: [{ start: 'server' }, { start: 'nc' }, { wait: 'nc', line: /^hello/ }, { start: 'ss' }],
      masks: [ssColumns, ssHeader, [/timer:\([^)]*\)/g, 'timer:(…)']],
      tools: ['nc', 'ss'],
    },
  ),
  session(
    '08',
    'alice-nc',
    'alice',
    { server: 'npm run lab 08 server', bob: 'nc 127.0.0.1 8088', alice: 'nc 127.0.0.1 8088' },
    {
      port: 8088,
      server: 'server',
      steps: [
        { start: 'server' },
        { start: 'bob' },
        { wait: 'bob', line: /^welcome/ },
        { type: 'bob', text: 'bob\n' },
        { wait: 'server', line: /is bob/ },
        { start: 'alice' },
        { wait: 'alice', line: /^welcome/ },
        { type: 'alice', text: 'bob\n' },
        { wait: 'alice', line: /taken/ },
        { type: 'alice', text: 'alice\n' },
        { wait: 'bob', line: /alice/ },
        { type: 'bob', text: 'hi alice\n' },
        { wait: 'alice', line: /hi alice$/ },
        { type: 'alice', text: 'byebye\n' },
        { eof: 'alice' },
        { exit: 'alice' },
      ],
      tools: ['nc'],
    },
  ),
  session(
    '09',
    'nc-commands',
    'nc',
    {
      server: 'npm run lab 09 server',
      nc: "printf 'n:nc-user\\nl\\nb:hi\\nhelp\\nhello\\nc:zoe:hi\\nquit\\n' | nc 127.0.0.1 8089",
    },
    { port: 8089, server: 'server', steps: [{ start: 'server' }, { start: 'nc' }], tools: ['nc'] },
  ),
  session(
    '10',
    'nc-server',
    'server',
    { server: 'npm run lab 10 server', nc: 'nc -u 127.0.0.1 41234' },
    {
      port: 41234,
      server: 'server',
      steps: [
        { start: 'server' },
        { start: 'nc' },
        { type: 'nc', text: 'hi\n' },
        { wait: 'server', line: /#1 / },
        { type: 'nc', text: 'there\n' },
        { wait: 'server', line: /#2 / },
        { kill: 'server', signal: 'SIGINT' },
      ],
      tools: ['nc'],
    },
  ),
  session(
    '11',
    'nc-broadcast',
    'receiver',
    {
      receiver: 'npm run lab 11 receiver',
      other: 'npm run lab 11 receiver',
      nc: "echo 'hi from nc' | nc -u -b -w1 127.255.255.255 41235",
    },
    {
      port: 41235,
      server: 'receiver',
      steps: [
        { start: 'receiver' },
        { start: 'other' },
        { wait: 'other', line: /listening on/ },
        { start: 'nc' },
        { wait: 'receiver', line: /received/ },
        { wait: 'other', line: /received/ },
        { kill: 'receiver', signal: 'SIGINT' },
      ],
      tools: ['nc'],
    },
  ),
  {
    lab: '11',
    name: 'ip-route-local',
    show: 'ip route show table local | grep 127.255',
    host: 'this machine’s local routing table',
    tools: ['ip'],
  },
  {
    lab: '12',
    name: 'ip-link-lo',
    show: 'ip link show lo',
    host: 'the flags of this machine’s lo',
    tools: ['ip'],
  },
  session12('receiver-three', 'receiver'),
  session12('nc-bystander', 'bystander'),
];

// Chapter 13: the framing echo server met by the lab's client and by nc with frames written by printf (octal
// escapes: dash's printf has no \x), then a header announcing 4 GiB.
const lab13 = {
  server: 'npm run lab 13 server',
  client: "npm run lab 13 client -- hello 你好 ''",
  nc: "printf '\\0\\0\\0\\5hello\\0\\0\\0\\0' | nc -N 127.0.0.1 8113 | od -An -c",
  oversize: `printf '\\377\\377\\377\\377' | nc -N 127.0.0.1 8113; echo "exit $?"`,
};
const steps13: Step[] = [
  { start: 'server' },
  { start: 'client' },
  { exit: 'client' },
  { wait: 'server', line: /closed the connection after 3 message/ },
  { start: 'nc' },
  { exit: 'nc' },
  { wait: 'server', line: /closed the connection after 2 message/ },
  { start: 'oversize' },
  { exit: 'oversize' },
  { wait: 'server', line: /over the limit of \d+: closing$/ },
  { kill: 'server', signal: 'SIGINT' },
  { exit: 'server' },
];
const session13 = (name: string, shown: keyof typeof lab13, extra: Partial<Transcript> = {}) =>
  session('13', name, shown, lab13, {
    port: 8113,
    server: 'server',
    steps: steps13,
    tools: ['nc', 'od'],
    ...extra,
  });

// Chapter 14: the HTTP server met by curl (one invocation, two URLs, one connection) and by requests typed
// with printf into nc: two pipelined, then one with a malformed header.
const lab14 = {
  server: 'npm run lab 14 server',
  reuse: 'curl -sv http://127.0.0.1:8080/ http://127.0.0.1:8080/chunked',
  echo: "curl -s --data-binary 'hello, echo' http://127.0.0.1:8080/echo",
  headers: "curl -s -H 'X-Tag: one' -H 'x-tag: two' http://127.0.0.1:8080/headers",
  method: 'curl -si -X DELETE http://127.0.0.1:8080/',
  pipelined:
    "printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\nGET /nope HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n' | nc 127.0.0.1 8080",
  bad: "printf 'GET / HTTP/1.1\\r\\nHost x\\r\\n\\r\\n' | nc 127.0.0.1 8080",
};
const steps14: Step[] = [
  { start: 'server' },
  ...(['reuse', 'echo', 'headers', 'method', 'pipelined'] as const).flatMap((name, i): Step[] => [
    { start: name },
    { exit: name },
    // The server has logged this client before the next one connects: its log keeps the clients' order.
    { wait: 'server', line: /-> \d{3} \(request 1 on this connection\)$/, count: i + 1 },
  ]),
  { start: 'bad' },
  { exit: 'bad' },
  { wait: 'server', line: /400 Bad Request: .*; closing$/ },
  { kill: 'server', signal: 'SIGINT' },
  { exit: 'server' },
];
/** curl -v prints where it keeps its connection pool: an address that differs each run. */
const curlPool: Mask = [/\b0x[0-9a-f]+\b/g, '0xADDR'];
const session14 = (name: string, shown: keyof typeof lab14, extra: Partial<Transcript> = {}) =>
  session('14', name, shown, lab14, {
    port: 8080,
    server: 'server',
    steps: steps14,
    tools: ['curl', 'nc'],
    ...extra,
  });

// Chapter 15: the echo server met by nc (RFC 6455's example handshake and frames, as octal escapes: dash's
// printf has no \x) and by a plain HTTP GET.
const lab15 = {
  server: 'npm run lab 15 server',
  nc:
    "printf 'GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n" +
    "\\201\\205\\067\\372\\041\\075\\177\\237\\115\\121\\130\\210\\202\\000\\000\\000\\000\\003\\350' | nc -N 127.0.0.1 8090 | xxd",
  curl: 'curl -si http://127.0.0.1:8090/',
};
const steps15: Step[] = [
  { start: 'server' },
  { start: 'nc' },
  { exit: 'nc' },
  { wait: 'server', line: /disconnected$/ },
  { start: 'curl' },
  { exit: 'curl' },
  { wait: 'server', line: /rejected: 400/ },
  { kill: 'server', signal: 'SIGINT' },
  { exit: 'server' },
];
const session15 = (name: string, shown: keyof typeof lab15) =>
  session('15', name, shown, lab15, {
    port: 8090,
    server: 'server',
    steps: steps15,
    tools: ['nc', 'xxd', 'curl'],
  });

// Chapter 16: each server makes its own CA; the clients name the file it prints (`ca: PATH`), as a reader
// copies it from one terminal into the other.
const caFile = '/tmp/lab16-XXXXXX/ca.pem';
const caLine = /\bca: (\S+)$/;
const lab16 = {
  server: 'npm run lab 16 server',
  s_client: `openssl s_client -connect 127.0.0.1:8443 -servername localhost -CAfile ${caFile} -verify_return_error -verify_hostname localhost -brief 2>&1`,
  s_untrusted:
    'openssl s_client -connect 127.0.0.1:8443 -servername localhost -verify_return_error -brief < /dev/null 2>&1',
  client: `npm run lab 16 client -- --ca ${caFile}`,
  untrusted: 'npm run lab 16 client',
};
const steps16: Step[] = [
  { start: 'server' },
  { wait: 'server', line: caLine, fills: caFile },
  { start: 's_client' },
  { wait: 's_client', line: /^hello$/ },
  { type: 's_client', text: 'world!\n' },
  { wait: 's_client', line: /^world!$/ },
  { eof: 's_client' },
  { exit: 's_client' },
  { wait: 'server', line: / closed$/ },
  { start: 's_untrusted' },
  { exit: 's_untrusted' },
  { wait: 'server', line: /handshake failed: ERR_SSL_TLSV1_ALERT_UNKNOWN_CA/ },
  { start: 'client' },
  { wait: 'client', line: /^hello$/ },
  { type: 'client', text: 'world!\n' },
  { wait: 'client', line: /^world!$/ },
  { eof: 'client' },
  { exit: 'client' },
  { wait: 'server', line: / closed$/, count: 2 },
  { start: 'untrusted' },
  { exit: 'untrusted' },
  { wait: 'server', line: /handshake failed: ECONNRESET/ },
  { kill: 'server', signal: 'SIGINT' },
  { exit: 'server' },
];
/** OpenSSL starts an error line with the thread's id. */
const opensslThread: Mask = [/^[0-9A-F]+:error:/gm, 'THREAD:error:'];
const session16 = (name: string, shown: keyof typeof lab16) =>
  session('16', name, shown, lab16, {
    port: 8443,
    server: 'server',
    steps: steps16,
    masks: [opensslThread],
    tools: ['openssl'],
  });
const https16 = {
  https: 'npm run lab 16 https',
  curl: `curl -sS --cacert ${caFile} https://localhost:8443/`,
  untrusted: 'curl -sS https://localhost:8443/',
};
const stepsHttps16: Step[] = [
  { start: 'https' },
  { wait: 'https', line: caLine, fills: caFile },
  { start: 'curl' },
  { exit: 'curl' },
  { wait: 'https', line: /: 200$/ },
  { start: 'untrusted' },
  { exit: 'untrusted' },
  { wait: 'https', line: /handshake failed: ERR_SSL_TLSV1_ALERT_UNKNOWN_CA/ },
  { kill: 'https', signal: 'SIGINT' },
  { exit: 'https' },
];
const sessionHttps16 = (name: string, shown: keyof typeof https16) =>
  session('16', name, shown, https16, {
    port: 8443,
    server: 'https',
    steps: stepsHttps16,
    tools: ['openssl', 'curl'],
  });

const protocols: readonly Transcript[] = [
  demo('13'),
  // As in 14: the oversize client's connection may still be open when the server is told to stop.
  session13('server', 'server', { masks: [n('closing ', ' connection\\(s\\)')] }),
  session13('client', 'client'),
  session13('nc', 'nc'),
  session13('nc-oversize', 'oversize'),
  demo('14'),
  // nc has exited when the server is told to stop, but whether the server has seen the 400's connection close
  // by then is the scheduler's call (0 or 1 still open): the count is masked, the shutdown line is not.
  session14('server', 'server', { masks: [n('closing ', ' connection\\(s\\)')] }),
  session14('curl-reuse', 'reuse', {
    // curl -v writes its report to stderr and the bodies to stdout: how the two pipes interleave, and in how
    // many pieces curl reads a body, vary from run to run. Every line must be there, as often (one Connected).
    masks: [curlPool, [/\{ \[\d+ bytes data\]/g, '{ [N bytes data]']],
    order: 'any',
  }),
  session14('curl-echo', 'echo'),
  session14('curl-headers', 'headers'),
  session14('curl-405', 'method'),
  session14('nc-pipelined', 'pipelined'),
  session14('nc-400', 'bad'),
  { lab: '14', name: 'raw', show: 'npm run lab 14 raw' },
  demo('15'),
  session15('server', 'server'),
  session15('nc-hello', 'nc'),
  session15('curl-plain-get', 'curl'),
  demo('16', { tools: ['openssl'] }),
  session16('server', 'server'),
  session16('client', 'client'),
  session16('client-untrusted', 'untrusted'),
  session16('s_client', 's_client'),
  session16('s_client-untrusted', 's_untrusted'),
  sessionHttps16('https', 'https'),
  sessionHttps16('curl', 'curl'),
  sessionHttps16('curl-untrusted', 'untrusted'),
];

export const transcripts: readonly Transcript[] = [...demos, ...sessions, ...protocols];
