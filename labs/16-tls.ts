// Lab 16: TLS and HTTPS (notes 003): chapter 01's greeting echo over tls.createServer / tls.connect, and
// https.createServer, with a throw-away CA and a server certificate made at run time by openssl (no secret in git).
// Run: npm run lab 16 (the demo) · npm run lab 16 server · npm run lab 16 https · npm run lab 16 client -- --ca PATH
// Flags: -- --port N (default 8443) --ca PATH (client: the CA to trust) --servername NAME (client: SNI and the name checked)
//        --idle-ms MS --handshake-ms MS (server)
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fail, fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { describeLimits, guard, LIMITS } from './lib/guard.ts';
import { onLines } from './lib/lines.ts';
import { describeError, fiveTuple, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';

const args = parseLabArgs({
  roles: ['server', 'https', 'client'],
  port: 8443,
  flags: {
    ca: { help: 'client: the CA certificate (PEM) to trust, as printed by the server (ca: PATH)' },
    servername: {
      default: 'localhost',
      help: 'client: the name sent as SNI and checked against the certificate',
    },
    'idle-ms': { default: '300000', help: 'server: a connection silent this long is closed' },
    'handshake-ms': {
      default: '10000',
      help: 'server: a connection whose TLS handshake has not ended this long after the connect is closed',
    },
  },
});

// #region certificates
interface Pki {
  dir: string;
  caFile: string;
  /** Issues a key and a certificate for these names, signed by the CA: `DNS:localhost`, `IP:127.0.0.1`… */
  issue(cn: string, names: string[]): { key: Buffer; cert: Buffer };
  /** Deletes the CA's private key: nothing can be signed by it any more. */
  retire(): void;
}

const openssl = (...argv: string[]) => {
  try {
    execFileSync('openssl', argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT')
      fail('openssl is needed to make the throw-away CA (Debian: apt-get install openssl)', 1);
    fail(
      `openssl ${argv[0]} failed: ${
        String(e.stderr ?? e.message)
          .trim()
          .split('\n')[0]
      }`,
      1,
    );
  }
};

/** A throw-away CA in a fresh temporary folder, removed when the process exits. */
function makeCa(log: Log): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab16-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const at = (name: string) => path.join(dir, name);
  // EC P-256 keys: generated in milliseconds (RSA-2048 takes a while), and what browsers expect today.
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
    '-days',
    '1',
    '-subj',
    '/CN=lab 16 throw-away CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  log(`made a throw-away CA (CN=lab 16 throw-away CA, valid 1 day) in ${dir}`);
  let serial = 0;
  return {
    dir,
    caFile: at('ca.pem'),
    issue(cn, names) {
      const base = at(`${cn}-${++serial}`);
      const ext = [
        'basicConstraints=CA:FALSE',
        'keyUsage=critical,digitalSignature',
        'extendedKeyUsage=serverAuth',
      ];
      // #region exercise-san
      // The names a client checks. Browsers look nowhere else (they ignore the CN), and an IP address only
      // ever matches an IP: entry here.
      ext.push(`subjectAltName=${names.join(',')}`);
      // #endregion exercise-san
      fs.writeFileSync(`${base}.ext`, `${ext.join('\n')}\n`);
      openssl('req', '-new', ...ec, '-keyout', `${base}.key`, '-out', `${base}.csr`, '-subj', `/CN=${cn}`);
      openssl(
        'x509',
        '-req',
        '-in',
        `${base}.csr`,
        '-CA',
        at('ca.pem'),
        '-CAkey',
        at('ca.key'),
        '-set_serial',
        String(1000 + serial),
        '-days',
        '1',
        '-sha256',
        '-extfile',
        `${base}.ext`,
        '-out',
        `${base}.pem`,
      );
      log(`issued a certificate for ${names.join(', ')} (CN=${cn}), signed by the CA`);
      const issued = { key: fs.readFileSync(`${base}.key`), cert: fs.readFileSync(`${base}.pem`) };
      // The private key lives in memory from here on; only public files stay on disk.
      for (const ext of ['key', 'csr', 'ext']) fs.rmSync(`${base}.${ext}`);
      return issued;
    },
    retire() {
      fs.rmSync(at('ca.key'));
      log('deleted the CA key: only the CA certificate is left, and it is public');
    },
  };
}
// #endregion certificates

// #region report
const dn = (name: object | undefined) =>
  Object.entries(name ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** What the handshake settled, as the client sees it. */
function report(socket: tls.TLSSocket): string[] {
  const lines: string[] = [];
  // #region exercise-report
  lines.push(
    `protocol ${socket.getProtocol()}, cipher ${socket.getCipher().name}, ALPN ${socket.alpnProtocol || 'none'}, authorized ${socket.authorized}`,
  );
  const cert = socket.getPeerCertificate();
  lines.push(
    `peer certificate: subject ${dn(cert.subject)}; issuer ${dn(cert.issuer)}; SAN ${cert.subjectaltname}`,
  );
  // #endregion exercise-report
  return lines;
}
// #endregion report

// #region server
/** Chapter 01's server over TLS: 'hello', then every byte echoed. */
function createTlsServer(
  key: Buffer,
  cert: Buffer | Buffer[],
  log: Log,
  limits: { idleMs: number; handshakeMs: number },
): tls.Server {
  const { idleMs, handshakeMs } = limits;
  const server = tls.createServer({
    key,
    cert: Buffer.concat(Array.isArray(cert) ? cert : [cert]),
    ALPNProtocols: ['echo'],
    // A handshake not ended this long after the connect is an error (default 120 s): see 'tlsClientError' below.
    handshakeTimeout: handshakeMs,
  });
  server.on('secureConnection', (socket) => {
    const who = hostPort(socket.remoteAddress, socket.remotePort);
    socket.on('error', (err) => log(`${who} error: ${describeError(err)}`));
    log(
      `secure connection from ${who}: ${socket.getProtocol()}, ${socket.getCipher().name}, SNI ${socket.servername || 'none'}, ALPN ${socket.alpnProtocol || 'none'}`,
    );
    socket.write('hello\r\n');
    // pipe() keeps the send queue bounded: it stops reading while the peer does not read our echo.
    socket.pipe(socket);
    // The limits every server here keeps (labs/lib/guard.ts), as chapter 01's: silent for --idle-ms, closed;
    // 256 KiB waiting for a peer that does not read, dropped. A TLSSocket is a net.Socket: the same guard fits.
    guard(socket, log, { idleMs }).watchBytes();
    socket.on('close', () => log(`${who} closed`));
  });
  // A failed handshake never becomes a 'secureConnection': this is the only place to see why. And the place to
  // close it: for a handshake that timed out, tls.Server only reports the error and leaves the connection open
  // (https.Server closes it itself), so a peer that never finishes would hold its socket for ever.
  server.on('tlsClientError', (err, socket) => {
    log(`a handshake failed: ${describeTls(err)}`);
    socket.destroy();
  });
  return server;
}
// #endregion server

// #region https
// node:http keeps the three limits itself: a header block of maxHeaderSize bytes at most (431 past it), no more
// requests read from a peer while its responses wait unread (past the socket's high-water mark: the send queue),
// and timeouts for a slow request and an idle keep-alive connection. Stated here, not left to defaults that changed between Node versions.
const HTTPS_LIMITS = {
  maxHeaderSize: 16 * 1024,
  headersTimeout: 10_000,
  requestTimeout: 10_000,
  keepAliveTimeout: 5_000,
  handshakeTimeout: 10_000,
};
function createHttpsServer(key: Buffer, cert: Buffer, log: Log): https.Server {
  const l = HTTPS_LIMITS;
  const options = { key, cert, maxHeaderSize: l.maxHeaderSize, handshakeTimeout: l.handshakeTimeout };
  const server = https.createServer(options, (req, res) => {
    const socket = req.socket as tls.TLSSocket;
    const ok = req.method === 'GET' && req.url === '/';
    const status = ok ? 200 : 404;
    log(
      `${req.method} ${req.url} from ${hostPort(socket.remoteAddress, socket.remotePort)} over ${socket.getProtocol()} (ALPN ${socket.alpnProtocol || 'none'}): ${status}`,
    );
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(ok ? 'hello over https\n' : 'not found\n');
  });
  // Properties, which every Node version here has (not all of them take these as createServer options).
  server.headersTimeout = l.headersTimeout;
  server.requestTimeout = l.requestTimeout;
  server.keepAliveTimeout = l.keepAliveTimeout;
  server.on('tlsClientError', (err) => log(`a handshake failed: ${describeTls(err)}`));
  return server;
}
// #endregion https

/** `CODE: message` for a TLS error: the code names the verification step that failed. */
function describeTls(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { reason?: string };
  // A Node client that rejects the certificate just closes: the server learns no reason.
  if (e.code === 'ECONNRESET') return 'ECONNRESET: the client closed the connection during the handshake';
  return e.code ? `${e.code}: ${e.reason ?? e.message}` : describeError(err);
}

// #region client
/** Connects, checks the certificate against `ca` (or the system's CAs) and the name, and reports. */
async function connectTls(
  port: number,
  host: string,
  servername: string,
  ca: Buffer | undefined,
  options: tls.ConnectionOptions = {},
): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    // rejectUnauthorized is true by default: a certificate that does not check out ends the handshake.
    const socket = tls.connect({ port, host, servername, ca, ALPNProtocols: ['echo'], ...options }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
// #endregion client

const parseCa = (file: string) => {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    fail(`--ca ${file}: cannot read it (${(err as NodeJS.ErrnoException).code})`);
  }
};

async function runClient(): Promise<void> {
  const log = logger('client');
  const ca = args.given('ca') ? parseCa(args.flag('ca')) : undefined;
  let socket: tls.TLSSocket;
  try {
    socket = await connectTls(args.port, args.host, args.flag('servername'), ca);
  } catch (err) {
    const hint = (err as NodeJS.ErrnoException).code?.startsWith('ERR_TLS_CERT_ALTNAME')
      ? ' (the certificate is for other names: try --servername localhost)'
      : ca
        ? ''
        : ' (trusting only the system CAs: pass the server\'s CA with --ca PATH, from its "ca:" line)';
    console.error(`[client] error: ${describeTls(err)}${hint}`);
    process.exit(1);
  }
  log(`connected: ${fiveTuple(socket)}, SNI ${args.flag('servername')}`);
  for (const line of report(socket)) log(line);
  socket.on('error', (err) => fatal('client', err));
  onLines(socket, (line) => console.log(line));
  onLines(process.stdin, (line) => socket.write(`${line}\r\n`));
  process.stdin.on('end', () => socket.end());
  await once(socket, 'close');
  log('disconnected');
  process.exit(0);
}

/** A TCP relay between client and server: what anyone on the path sees (addresses, ports, sizes, bytes). */
async function wire(target: number, log: Log) {
  const seen = { up: [] as Buffer[], down: [] as Buffer[], tuple: '' };
  const relay = net.createServer((inbound) => {
    const outbound = net.connect(target, '127.0.0.1');
    seen.tuple = fiveTuple(inbound);
    inbound.on('data', (b: Buffer) => seen.up.push(b));
    outbound.on('data', (b: Buffer) => seen.down.push(b));
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  const bytes = (list: Buffer[]) => list.reduce((n, b) => n + b.length, 0);
  return {
    port: (relay.address() as net.AddressInfo).port,
    upBytes: () => bytes(seen.up),
    summary(words: string[]) {
      const all = Buffer.concat([...seen.up, ...seen.down]);
      log(`saw ${seen.tuple} (the five-tuple is never hidden)`);
      log('it counted every byte each way, record by record: sizes and timing are never hidden');
      for (const w of words) log(`'${w}' in clear: ${all.includes(w) ? 'yes' : 'no'}`);
    },
    close: () => relay.close(),
  };
}

const DEMO_LIMITS = { idleMs: 10_000, handshakeMs: 10_000 };

async function demo(): Promise<void> {
  const log = logger('demo');
  const pki = makeCa(logger('ca'));
  const local = pki.issue('localhost', ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
  const other = pki.issue('other.example', ['DNS:other.example']);
  pki.retire();
  const ca = fs.readFileSync(pki.caFile);
  const slog = logger('server');
  const server = createTlsServer(local.key, local.cert, slog, DEMO_LIMITS);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  printListening(slog, server.address());
  const { port } = server.address() as net.AddressInfo;
  const clog = logger('client');
  const observer = await wire(port, logger('wire'));

  log('1. trusting the CA, asking for localhost: the handshake, what it settled, and the greeting echo');
  // The server's side of each connection, so the demo can wait for it to close too.
  const serverSide = () => once(server, 'secureConnection').then(([s]) => s as tls.TLSSocket);
  const first = serverSide();
  const socket = await connectTls(observer.port, '127.0.0.1', 'localhost', ca);
  for (const line of report(socket)) clog(line);
  const lines: string[] = [];
  onLines(socket, (l) => lines.push(l));
  while (!lines.includes('hello')) await once(socket, 'data');
  clog('< hello');
  const before = observer.upBytes();
  socket.write('world!\r\n');
  clog('> world! (8 bytes with CRLF)');
  while (!lines.includes('world!')) await once(socket, 'data');
  clog('< world!');
  clog(
    `those 8 bytes crossed the wire as a ${observer.upBytes() - before}-byte TLS record (5 header, 8 data, 1 type, 16 tag)`,
  );
  socket.end();
  await once(await first, 'close');
  log('what an observer on the path saw:');
  observer.summary(['localhost', 'hello', 'world!']);
  observer.close();

  // Each refusal is logged by the client, then by the server that saw its handshake fail.
  const refused = async (srv: tls.Server, trust?: Buffer) => {
    const failed = once(srv, 'tlsClientError');
    const { port: p } = srv.address() as net.AddressInfo;
    await connectTls(p, '127.0.0.1', 'localhost', trust).then(
      (s) => {
        clog('connected (it should not have)');
        s.destroy();
      },
      (err) => clog(`error: ${describeTls(err)}`),
    );
    await failed;
  };
  const start = async (key: Buffer, cert: Buffer | Buffer[]) => {
    const srv = createTlsServer(key, cert, slog, DEMO_LIMITS);
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    return srv;
  };

  log('2. not trusting the CA (only the system CAs): the certificate cannot be verified');
  await refused(server);

  log(
    '3. a server that sends its whole chain, CA included: still refused, a root is trusted only if you have it',
  );
  const chained = await start(local.key, [local.cert, ca]);
  await refused(chained);
  chained.close();

  log("4. a good certificate for another name: signed by the trusted CA, but not for 'localhost'");
  const impostor = await start(other.key, other.cert);
  await refused(impostor, ca);
  impostor.close();

  log('5. TLS 1.3 is the default; a client that allows only TLS 1.2 gets 1.2 and its cipher names');
  const second = serverSide();
  const old = await connectTls(port, '127.0.0.1', 'localhost', ca, { maxVersion: 'TLSv1.2' });
  clog(report(old)[0]);
  old.end();
  await once(await second, 'close');

  log('6. HTTPS is HTTP inside the same TLS: https.createServer and https.get');
  const hlog = logger('https');
  const web = createHttpsServer(local.key, local.cert, hlog);
  web.listen(0, '127.0.0.1');
  await once(web, 'listening');
  const webPort = (web.address() as net.AddressInfo).port;
  const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
    https
      .get(
        { host: '127.0.0.1', port: webPort, path: '/', servername: 'localhost', ca, agent: false },
        resolve,
      )
      .on('error', reject),
  );
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res) body += chunk;
  clog(
    `GET / -> ${res.statusCode} ${JSON.stringify(body)} over ${(res.socket as tls.TLSSocket).getProtocol()}`,
  );
  web.close();
  await new Promise((resolve) => server.close(resolve));
  log('done');
}

if (args.role === 'server' || args.role === 'https') {
  const log = logger(args.role);
  const pki = makeCa(log);
  const { key, cert } = pki.issue('localhost', ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1']);
  pki.retire();
  const server =
    args.role === 'server'
      ? createTlsServer(key, cert, log, {
          idleMs: args.int('idle-ms'),
          handshakeMs: args.int('handshake-ms'),
        })
      : createHttpsServer(key, cert, log);
  server.on('error', (err) => fatal(args.role, err));
  if (args.role === 'server') stopOnSignal(server, log);
  else
    onShutdown(async () => {
      log('shutting down');
      (server as https.Server).closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
  server.listen(args.port, args.host, () => {
    log(`ca: ${pki.caFile}`);
    printListening(log, server.address());
    const l = HTTPS_LIMITS;
    log(
      args.role === 'server'
        ? `limits: ${describeLimits({ ...LIMITS, idleMs: args.int('idle-ms') }, false)}, a TLS handshake within ${args.int('handshake-ms')} ms`
        : `limits: headers up to ${l.maxHeaderSize} bytes, a request within ${l.requestTimeout} ms, keep-alive ${l.keepAliveTimeout} ms, no request read while responses wait unread`,
    );
  });
} else if (args.role === 'client') {
  await runClient();
} else {
  await demo();
}
