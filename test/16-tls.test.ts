// Lab 16: TLS and HTTPS with a CA made at run time (docs/16-tls.md). The peers are independent of the lab:
// openssl s_client, curl, and Node's own tls.connect and https.get, plus a TCP relay that watches the wire.
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { execa, execaSync } from 'execa';
import { describe, expect, it } from 'vitest';
import {
  busy,
  gateOf,
  getWaitDefaults,
  type LabProcess,
  REPLY_MS,
  STALL_MS,
  STARTUP_MS,
  setWaitDefaults,
  spawnLab,
  type TestHooks,
} from './helpers/lab.ts';
import { stopPeerExchange } from './helpers/net.ts';
import { feedLines, LineWatcher, settleWithin } from './helpers/watch.ts';

// A lab that is up answers in milliseconds: a wait with nothing new for REPLY_MS has stalled (a starter's gap).
// The same holds for the test's own clients (a TLS socket's lines, a handshake, openssl's output and exit). The
// tests run concurrently, each with servers of its own.
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

const has = (tool: string, ...argv: string[]) => execaSync(tool, argv, { reject: false }).exitCode === 0;
const noOpenssl = has('openssl', 'version') ? undefined : 'openssl is not installed';
const noCurl = has('curl', '--version') ? undefined : 'curl is not installed';
if (noOpenssl) console.log(`lab 16: ${noOpenssl}: every test is skipped (the lab needs it to make its CA)`);
if (noCurl) console.log(`lab 16: ${noCurl}: the curl tests are skipped`);

async function start(
  t: TestHooks,
  role: 'server' | 'https',
  ...flags: string[]
): Promise<{ lab: LabProcess; port: number; ca: string }> {
  const lab = spawnLab(t, '16', [role, '--port', '0', ...flags]);
  const { port } = await lab.listening();
  const ca = (await lab.waitForLine(/^\[\w+\] ca: (\S+)$/))[1] as string;
  return { lab, port, ca };
}

/** The error each TLS client of a test failed with, if it did: its line reader's waits fail with it. */
const tlsErrors = new WeakMap<tls.TLSSocket, Error>();

/**
 * A tls.connect that resolves on 'secureConnect' and rejects with the handshake's error, within REPLY_MS (a
 * handshake on loopback takes milliseconds); destroyed when the test `t` ends.
 */
function connect(t: TestHooks, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: '127.0.0.1', ...options });
  // Every error is the test's to see: the handshake's rejects below, a later one fails the socket's line reader.
  socket.on('error', (err) => {
    if (!tlsErrors.has(socket)) tlsErrors.set(socket, err);
  });
  t.onTestFinished(() => {
    socket.destroy();
  });
  const handshake = new Promise<tls.TLSSocket>((resolve, reject) => {
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('the connection closed before the handshake ended')));
  });
  return settleWithin(handshake, REPLY_MS, `the TLS handshake with 127.0.0.1:${options.port}`);
}

/** The lines a TLS client receives; its waits fail on the file's deadline, or at once when it fails or closes. */
const lineReader = (t: TestHooks, socket: tls.TLSSocket, name: string) => {
  const watcher = new LineWatcher(name, getWaitDefaults(), gateOf(t));
  feedLines(socket, watcher);
  const ended = () => {
    const err = tlsErrors.get(socket);
    watcher.close(err ? `failed: ${err.message}` : 'closed');
  };
  socket.on('error', ended);
  socket.on('close', ended);
  if (socket.destroyed) ended();
  return watcher;
};

/**
 * Runs a command with a pipe for stdin; its output as lines, killed when the test ends. Its waits fail like a
 * lab's: nothing new for REPLY_MS, counted (as for a lab) once it has printed something or after STARTUP_MS.
 */
function run(t: TestHooks, cmd: string, argv: string[]) {
  const child = execa(cmd, argv, {
    reject: false,
    stdin: 'pipe',
    buffer: false,
    env: { NO_PROXY: '*', no_proxy: '*' },
  });
  t.onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const defaults = getWaitDefaults();
  // Both streams also feed one watcher that holds the test's start gate until the command prints, as a lab does.
  const all = new LineWatcher(cmd, defaults, gateOf(t), true, STARTUP_MS);
  const out = new LineWatcher(`${cmd} stdout`, defaults, gateOf(t));
  const err = new LineWatcher(`${cmd} stderr`, defaults, gateOf(t));
  if (child.stdout) {
    feedLines(child.stdout, out);
    feedLines(child.stdout, all);
  }
  if (child.stderr) {
    feedLines(child.stderr, err);
    feedLines(child.stderr, all);
  }
  child.then(() => {
    out.close('exited');
    err.close('exited');
    all.close('exited');
  });
  /** Its exit (execa's result); fails once it has printed nothing new for REPLY_MS and still runs. */
  const exit = () =>
    new Promise<Awaited<typeof child>>((resolve, reject) => {
      const cancel = all.guard(defaults, 'was still running', (why) => reject(new Error(all.describe(why))));
      child.then((result) => {
        cancel();
        resolve(result);
      });
    });
  return { child, out, err, exit };
}

/** curl, or anything quick to start, within its start-up and REPLY_MS (execa's error names it past that). */
const CLIENT_MS = STARTUP_MS + REPLY_MS;

describe.skipIf(noOpenssl)('lab 16: TLS and HTTPS', { concurrent: true }, () => {
  it('plays the demo: a CA made and retired, TLS 1.3, the echo, what the wire shows, three refusals by name, TLS 1.2 on request and HTTPS, then exits 0', async (t) => {
    const lab = spawnLab(t, '16');
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expectInOrder(lab.lines, [
      /^\[ca\] made a throw-away CA \(CN=lab 16 throw-away CA, valid 1 day\) in \S+$/,
      /^\[ca\] issued a certificate for DNS:localhost, IP:127\.0\.0\.1, IP:::1 \(CN=localhost\)/,
      /^\[ca\] deleted the CA key/,
      /^\[server\] listening on 127\.0\.0\.1:\d+$/,
      /^\[client\] protocol TLSv1\.3, cipher \S+, ALPN echo, authorized true$/,
      /^\[client\] peer certificate: subject CN=localhost; issuer CN=lab 16 throw-away CA; SAN DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1$/,
      /^\[server\] secure connection from 127\.0\.0\.1:\d+: TLSv1\.3, \S+, SNI localhost, ALPN echo$/,
      /^\[client\] < hello$/,
      /^\[client\] < world!$/,
      /^\[client\] those 8 bytes crossed the wire as a 30-byte TLS record/,
      /^\[wire\] saw tcp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \(the five-tuple is never hidden\)$/,
      /^\[wire\] 'localhost' in clear: yes$/,
      /^\[wire\] 'hello' in clear: no$/,
      /^\[wire\] 'world!' in clear: no$/,
      /^\[client\] error: UNABLE_TO_VERIFY_LEAF_SIGNATURE: /,
      /^\[server\] a handshake failed: /,
      /^\[client\] error: SELF_SIGNED_CERT_IN_CHAIN: /,
      /^\[client\] error: ERR_TLS_CERT_ALTNAME_INVALID: .*localhost.*DNS:other\.example/,
      /^\[client\] protocol TLSv1\.2, cipher \S+, ALPN echo, authorized true$/,
      /^\[https\] GET \/ from 127\.0\.0\.1:\d+ over TLSv1\.3 \(ALPN none\): 200$/,
      /^\[client\] GET \/ -> 200 "hello over https\\n" over TLSv1\.3$/,
      /^\[demo\] done$/,
    ]);
    expect(lab.matching(/a handshake failed/)).toHaveLength(3);
    expect(lab.stderr).toEqual([]);
    // The temporary folder is gone once the demo has exited.
    const dir = (lab.matching(/made a throw-away CA .* in (\S+)$/)[0] as RegExpMatchArray)[1] as string;
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("the server role prints 'ca: PATH' and 'listening on'; only public files stay on disk, and the folder is removed at exit", async (t) => {
    const { lab, ca } = await start(t, 'server');
    expect(lab.lines.findIndex((l) => / ca: /.test(l))).toBeLessThan(
      lab.lines.findIndex((l) => /listening on/.test(l)),
    );
    const dir = path.dirname(ca);
    expect(fs.readdirSync(dir).sort()).toEqual(['ca.pem', 'localhost-1.pem']);
    const pem = fs.readFileSync(ca, 'utf8');
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----\n/);
    expect(pem).not.toMatch(/PRIVATE KEY/);
    const x509 = new (await import('node:crypto')).X509Certificate(pem);
    expect([x509.subject, x509.ca]).toEqual(['CN=lab 16 throw-away CA', true]);
    lab.stop();
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('openssl s_client -verify_return_error, trusting the CA and checking the name localhost: TLS 1.3, Verification: OK, hello and the echo', async (t) => {
    const { lab, port, ca } = await start(t, 'server');
    const s = run(t, 'openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-CAfile',
      ca,
      '-verify_return_error',
      '-verify_hostname',
      'localhost',
      '-brief',
    ]);
    await s.out.waitForLine(/^hello$/);
    s.child.stdin?.write('world!\n');
    await s.out.waitForLine(/^world!$/);
    s.child.stdin?.end();
    expect((await s.exit()).exitCode).toBe(0);
    expect(s.err.lines).toEqual(
      expect.arrayContaining([
        'Protocol version: TLSv1.3',
        'Verification: OK',
        'Verified peername: localhost',
      ]),
    );
    await lab.waitForLine(
      /secure connection from 127\.0\.0\.1:\d+: TLSv1\.3, \S+, SNI localhost, ALPN none$/,
    );
  });

  it('openssl s_client -verify_return_error without the CA stops at the certificate, and the server hears the alert unknown ca', async (t) => {
    const { lab, port, ca } = await start(t, 'server');
    const untrusted = run(t, 'openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      '-verify_return_error',
      '-brief',
    ]);
    untrusted.child.stdin?.end();
    expect((await untrusted.exit()).exitCode).not.toBe(0);
    expect(untrusted.err.text()).toMatch(/verify error:num=20:unable to get local issuer certificate/);
    await lab.waitForLine(/a handshake failed: ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: tlsv1 alert unknown ca$/);
    // The CA trusted, but the name is not on the certificate.
    const wrongName = run(t, 'openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-CAfile',
      ca,
      '-verify_return_error',
      '-verify_hostname',
      'other.example',
      '-brief',
    ]);
    wrongName.child.stdin?.end();
    expect((await wrongName.exit()).exitCode).not.toBe(0);
    expect(wrongName.err.text()).toMatch(/hostname mismatch/);
    expect(lab.matching(/secure connection from/)).toHaveLength(0);
  });

  it.skipIf(noCurl)(
    'curl --cacert CA gets 200 over TLS 1.3 from the https role, by name and by IP; without it, or for another name, curl exits 60',
    async (t) => {
      const { lab, port, ca } = await start(t, 'https');
      const ok = await execa(
        'curl',
        [
          '-sS',
          '-v',
          '--noproxy',
          '*',
          '--cacert',
          ca,
          '--resolve',
          `localhost:${port}:127.0.0.1`,
          `https://localhost:${port}/`,
        ],
        { reject: false, timeout: CLIENT_MS },
      );
      expect([ok.exitCode, ok.stdout]).toEqual([0, 'hello over https']);
      expect(ok.stderr).toMatch(/SSL connection using TLSv1\.3/);
      expect(ok.stderr).toMatch(/subject: CN=localhost/);
      expect(ok.stderr).toMatch(/issuer: CN=lab 16 throw-away CA/);
      const byIp = await execa(
        'curl',
        ['-sS', '--noproxy', '*', '--cacert', ca, `https://127.0.0.1:${port}/nope`, '-w', '%{http_code}'],
        { reject: false, timeout: CLIENT_MS },
      );
      expect([byIp.exitCode, byIp.stdout]).toEqual([0, 'not found\n404']);
      const untrusted = await execa('curl', ['-sS', '--noproxy', '*', `https://127.0.0.1:${port}/`], {
        reject: false,
        timeout: CLIENT_MS,
      });
      expect(untrusted.exitCode).toBe(60);
      expect(untrusted.stderr).toMatch(/unable to get local issuer certificate/);
      const wrongName = await execa(
        'curl',
        [
          '-sS',
          '--noproxy',
          '*',
          '--cacert',
          ca,
          '--resolve',
          `other.example:${port}:127.0.0.1`,
          `https://other.example:${port}/`,
        ],
        { reject: false, timeout: CLIENT_MS },
      );
      expect(wrongName.exitCode).toBe(60);
      expect(wrongName.stderr).toMatch(/other\.example/);
      await lab.waitForLine(/a handshake failed: ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: tlsv1 alert unknown ca$/);
      // curl offers h2 and http/1.1; https.createServer takes http/1.1.
      expect(ok.stderr).toMatch(/ALPN: server accepted http\/1\.1/);
      expect(lab.matching(/^\[https\] GET \S+ from \S+ (over .*: (200|404))$/).map((m) => m[1])).toEqual([
        'over TLSv1.3 (ALPN http/1.1): 200',
        'over TLSv1.3 (ALPN http/1.1): 404',
      ]);
    },
  );

  it('a peer that opens TCP and never finishes the handshake is closed at --handshake-ms (tls.Server itself only reports the timeout), with one line', async (t) => {
    const HANDSHAKE_MS = 300;
    const { lab, port } = await start(t, 'server', '--handshake-ms', String(HANDSHAKE_MS));
    // Node's timer starts once the lab has taken the connection: after this, never before.
    const connecting = performance.now();
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    t.onTestFinished(() => {
      socket.destroy();
    });
    const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await settleWithin(once(socket, 'connect'), REPLY_MS, `connecting to the lab on port ${port}`);
    // The start of a ClientHello (a handshake record of 16 000 bytes, announced), then nothing more.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x3e, 0x80, 0x01, 0x00, 0x3e, 0x7c, 0x03, 0x03]));
    await settleWithin(gone, HANDSHAKE_MS + REPLY_MS, `the close ${HANDSHAKE_MS} ms after the connect`);
    expect(performance.now() - connecting).toBeGreaterThanOrEqual(HANDSHAKE_MS);
    await lab.waitForLine(/a handshake failed: ERR_TLS_HANDSHAKE_TIMEOUT: TLS handshake timeout$/);
    expect(lab.matching(/a handshake failed/)).toHaveLength(1);
  });

  // 300 ms on an idle machine, stretched with its load (a TLS handshake must fit in it).
  const IDLE_MS = Math.round(300 * busy);
  it('the server role states its limits (labs/lib/guard.ts); a peer silent for --idle-ms gets one line of reason and is closed', async (t) => {
    const { lab, port, ca } = await start(t, 'server', '--idle-ms', String(IDLE_MS));
    await lab.waitForLine(
      new RegExp(
        `limits: 262144 bytes queued per peer, idle after ${IDLE_MS} ms, a TLS handshake within 10000 ms$`,
      ),
    );
    const quiet = await connect(t, { port, servername: 'localhost', ca: fs.readFileSync(ca) });
    const lines = lineReader(t, quiet, 'quiet');
    await lines.waitForLine(/^hello$/);
    await lines.waitForLine(new RegExp(`^error: idle for ${IDLE_MS} ms$`), { quiet: IDLE_MS + REPLY_MS });
    await lab.waitForLine(new RegExp(`closed by the server: idle for ${IDLE_MS} ms$`));
  });

  it(
    'bytes that wait in the socket while the server is stopped past --idle-ms still count: the overdue idle timer decides after reading them',
    async (t) => {
      // The peer, a process of its own (stopPeerExchange, as in labs 13 and 14), stops the server at its
      // greeting, before its limit passes, writes a line and its FIN into the stopped server's socket, and holds it
      // past the whole limit: when the server goes on, its idle timer is overdue with the line unread. A test
      // worker that stopped the server itself could not promise to be in time under a loaded run.
      const idleMs = 2 * IDLE_MS;
      const { lab, port, ca } = await start(t, 'server', '--idle-ms', String(idleMs));
      const got = await stopPeerExchange(t, lab, port, {
        first: '',
        second: 'still here\n',
        holdMs: idleMs + 50,
        ca,
      });
      expect(got).toMatch(/^hello\r?\nstill here\r?\n$/);
      expect(lab.matching(/idle for/)).toEqual([]);
    },
    // The last resort, above the waits' own deadlines.
    Math.round(20_000 * busy),
  );

  it("Node's tls.connect: TLS 1.3 by default, 1.2 when asked, the certificate's subject and issuer, and SNI only for names, never for an IP", async (t) => {
    const { lab, port, ca } = await start(t, 'server');
    const pem = fs.readFileSync(ca);
    const byName = await connect(t, { port, servername: 'localhost', ca: pem, ALPNProtocols: ['echo'] });
    expect(byName.getProtocol()).toBe('TLSv1.3');
    expect(byName.alpnProtocol).toBe('echo');
    expect(byName.authorized).toBe(true);
    const cert = byName.getPeerCertificate();
    expect([cert.subject.CN, cert.issuer.CN]).toEqual(['localhost', 'lab 16 throw-away CA']);
    expect(cert.subjectaltname).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    await lineReader(t, byName, 'byName').waitForLine(/^hello$/);
    await lab.waitForLine(/SNI localhost, ALPN echo$/);
    const old = await connect(t, { port, servername: 'localhost', ca: pem, maxVersion: 'TLSv1.2' });
    expect(old.getProtocol()).toBe('TLSv1.2');
    await lab.waitForLine(/: TLSv1\.2, \S+, SNI localhost, ALPN none$/);
    // No servername: Node checks the IP against the IP SANs and sends no SNI (RFC 6066 forbids IPs there).
    const byIp = await connect(t, { port, ca: pem });
    expect(byIp.authorized).toBe(true);
    await lab.waitForLine(/: TLSv1\.3, \S+, SNI none, ALPN none$/);
  });

  it("Node's tls.connect refuses by name: UNABLE_TO_VERIFY_LEAF_SIGNATURE without the CA, ERR_TLS_CERT_ALTNAME_INVALID for another name", async (t) => {
    const { lab, port, ca } = await start(t, 'server');
    await expect(connect(t, { port, servername: 'localhost' })).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    await expect(
      connect(t, { port, servername: 'other.example', ca: fs.readFileSync(ca) }),
    ).rejects.toMatchObject({
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      reason:
        "Host: other.example. is not in the cert's altnames: DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
    });
    await lab.waitForLines(/a handshake failed/, 2);
    expect(lab.matching(/secure connection from/)).toHaveLength(0);
  });

  it('TLS hides the bytes but not the five-tuple, the name asked for (SNI) or the sizes: an 8-byte write is a 30-byte record on the wire', async (t) => {
    const { port, ca } = await start(t, 'server');
    // A relay in the middle sees what any router on the path sees.
    let up = Buffer.alloc(0);
    let down = Buffer.alloc(0);
    const relayed = new Set<net.Socket>();
    const relay = net.createServer((inbound) => {
      const outbound = net.connect(port, '127.0.0.1');
      relayed.add(inbound).add(outbound);
      inbound.on('data', (b: Buffer) => {
        up = Buffer.concat([up, b]);
      });
      outbound.on('data', (b: Buffer) => {
        down = Buffer.concat([down, b]);
      });
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    t.onTestFinished(() => {
      relay.close();
      for (const socket of relayed) socket.destroy();
    });
    const socket = await connect(t, {
      port: (relay.address() as net.AddressInfo).port,
      servername: 'localhost',
      ca: fs.readFileSync(ca),
    });
    const lines = lineReader(t, socket, 'client');
    await lines.waitForLine(/^hello$/);
    const before = up.length;
    socket.write('secret!\n');
    await lines.waitForLine(/^secret!$/);
    expect(up.length - before).toBe(30);
    const wire = Buffer.concat([up, down]);
    expect(wire.includes('localhost')).toBe(true);
    expect(wire.includes('secret!')).toBe(false);
    expect(wire.includes('hello')).toBe(false);
    // The record header is in clear: type 23 (application data), version 0x0303, length 25 (8 + 1 + 16).
    expect([...up.subarray(before, before + 5)]).toEqual([23, 3, 3, 0, 25]);
  });

  it('the client role, trusting --ca, prints the handshake, the greeting and the echo of what it is given', async (t) => {
    const { port, ca } = await start(t, 'server');
    const client = spawnLab(t, '16', ['client', '--port', String(port), '--ca', ca]);
    // The report comes before the server's greeting: a 'hello' first means it will not come.
    const beforeHello = { failOn: /^hello$/ };
    await client.waitForLine(
      /^\[client\] protocol TLSv1\.3, cipher \S+, ALPN echo, authorized true$/,
      beforeHello,
    );
    await client.waitForLine(
      /^\[client\] peer certificate: subject CN=localhost; issuer CN=lab 16 throw-away CA; /,
      beforeHello,
    );
    await client.waitForLine(/^hello$/);
    client.write('world!\n');
    await client.waitForLine(/^world!$/);
    client.endInput();
    expect(await client.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(
      client.matching(/^\[client\] connected: tcp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+, SNI localhost$/),
    ).toHaveLength(1);
  });

  it('the client role without --ca fails with one line naming the verification error, and exit 1', async (t) => {
    const { port } = await start(t, 'server');
    const untrusted = spawnLab(t, '16', ['client', '--port', String(port)]);
    expect(await untrusted.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(untrusted.stdout).toEqual([]);
    expect(untrusted.stderr).toHaveLength(1);
    expect(untrusted.stderr[0]).toMatch(
      /^\[client\] error: UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate.* \(.*--ca PATH/,
    );
  });

  it('the client role asking for a name the certificate lacks fails with ERR_TLS_CERT_ALTNAME_INVALID, and exit 1', async (t) => {
    const { port, ca } = await start(t, 'server');
    const wrongName = spawnLab(t, '16', [
      'client',
      '--port',
      String(port),
      '--ca',
      ca,
      '--servername',
      'other.example',
    ]);
    expect(await wrongName.waitForExit()).toEqual({ exitCode: 1, signal: undefined });
    expect(wrongName.stderr).toHaveLength(1);
    expect(wrongName.stderr[0]).toMatch(
      /^\[client\] error: ERR_TLS_CERT_ALTNAME_INVALID: Host: other\.example\. is not in the cert's altnames/,
    );
  });

  it('the client role with a --ca file that is not there says so in one line, exit 2', async (t) => {
    const missing = spawnLab(t, '16', ['client', '--port', '1', '--ca', '/nonexistent/ca.pem']);
    expect(await missing.waitForExit()).toEqual({ exitCode: 2, signal: undefined });
    expect(missing.stderr).toEqual(['error: --ca /nonexistent/ca.pem: cannot read it (ENOENT)']);
  });

  it("the https role answers GET / with 200 to Node's https.get trusting the CA, anything else with 404, and stops on SIGTERM", async (t) => {
    const { lab, port, ca } = await start(t, 'https');
    const get = (urlPath: string) =>
      settleWithin(
        new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
          https
            .get(
              {
                host: '127.0.0.1',
                port,
                path: urlPath,
                servername: 'localhost',
                ca: fs.readFileSync(ca),
                agent: false,
              },
              (res) => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', (c: string) => {
                  body += c;
                });
                res.on('end', () => resolve({ status: res.statusCode, body }));
              },
            )
            .on('error', reject);
        }),
        REPLY_MS,
        `https.get ${urlPath} and its body`,
      );
    expect(await get('/')).toEqual({ status: 200, body: 'hello over https\n' });
    expect(await get('/other')).toEqual({ status: 404, body: 'not found\n' });
    lab.stop();
    expect(await lab.waitForExit()).toEqual({ exitCode: 0, signal: undefined });
    expect(lab.matching(/GET \/\S* from .*: (200|404)$/)).toHaveLength(2);
  });
});
