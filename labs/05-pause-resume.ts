// Lab 05: pause and resume a TCP socket (notes 001, 002). The server accepts connections paused
// (pauseOnConnect) and reads nothing until it is told "go"; what the client sent meanwhile then arrives whole.
// Run: npm run lab 05 (the demo) · npm run lab 05 server (type go + Enter to resume) · npm run lab 05 client
// Flags: -- --port N (default 8080) --mode flowing|paused (server) --flood (client: write until write() says false)
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { Writable } from 'node:stream';
import { fail, fatal, onShutdown, parseLabArgs } from './lib/cli.ts';
import { describeLimits, type Guard, guard, LIMITS, type Limits } from './lib/guard.ts';
import { onLines } from './lib/lines.ts';
import { hostPort, type Log, logger, printListening } from './lib/log.ts';

const args = parseLabArgs({
  roles: ['server', 'client'],
  port: 8080,
  flags: {
    mode: { default: 'flowing', help: "server: read with 'data' (flowing) or 'readable' + read() (paused)" },
    flood: {
      type: 'boolean',
      help: "client: write 64 KiB chunks until write() returns false, then wait for 'drain'",
    },
  },
});

type Mode = 'flowing' | 'paused';
const mode = args.flag('mode');
if (mode !== 'flowing' && mode !== 'paused') fail(`--mode must be flowing or paused, got '${mode}'`);

// A flood makes dozens of chunks: show the first few, count them all.
function tally(log: Log, what: string) {
  let events = 0;
  return {
    add(bytes: number) {
      events++;
      if (events <= 3) log(`${what} #${events}: ${bytes} bytes`);
      else if (events === 4) log(`(more ${what} events: counted, not shown)`);
    },
    get events() {
      return events;
    },
  };
}

// #region flowing
/** Flowing mode: Node pushes chunks at us through 'data'. Everything read is echoed back. */
function readFlowing(socket: net.Socket, log: Log) {
  const seen = tally(log, "'data'");
  // #region exercise-resume
  socket.on('data', (chunk: Buffer) => {
    seen.add(chunk.length);
    socket.write(chunk);
  });
  // pauseOnConnect left readableFlowing === false: a 'data' listener alone does not start the flow, resume() does.
  socket.resume();
  // #endregion exercise-resume
  socket.on('end', () => log(`client sent FIN: ${socket.bytesRead} bytes in ${seen.events} 'data' event(s)`));
}
// #endregion flowing

// #region paused
/** Paused mode: 'readable' says "the buffer has something"; we pull it with read() until it returns null. */
function readPaused(socket: net.Socket, log: Log) {
  const seen = tally(log, 'read()');
  // #region exercise-read-loop
  socket.on('readable', () => {
    for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
      seen.add(chunk.length);
      socket.write(chunk);
    }
  });
  // #endregion exercise-read-loop
  socket.on('end', () => log(`client sent FIN: ${socket.bytesRead} bytes in ${seen.events} read() call(s)`));
}
// #endregion paused

// #region server
// The limits every server here keeps (labs/lib/guard.ts). This echo ignores write()'s return value on purpose
// (the lesson is reading), so its send-queue bound is generous: the demo's flood (the kernel's buffers, a few MB)
// comes back whole, and a client that floods and never reads is still dropped at 16 MiB.
const PAUSE_LIMITS: Partial<Limits> = { maxQueue: 16 * 1024 * 1024 };

function createPausingServer(log: Log) {
  const waiting = new Set<net.Socket>();
  const guards = new WeakMap<net.Socket, Guard>();
  const open = new Set<net.Socket>();
  // pauseOnConnect: the connection is accepted, but Node does not read from it. The client's bytes wait in
  // the kernel's receive buffer; when that is full, TCP tells the client to stop (its window closes).
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    log(`connection from ${peer}: paused (pauseOnConnect), nothing is read yet`);
    open.add(socket);
    waiting.add(socket);
    socket.on('error', (err) => log(`${peer} error: ${err.message}`));
    socket.on('end', () => socket.end()); // after the echo: our writes are queued before this FIN
    socket.on('close', () => {
      open.delete(socket);
      waiting.delete(socket);
    });
    // Held unread, a peer is idle as far as we can tell: 5 minutes without "go", and it is closed.
    guards.set(socket, guard(socket, log, PAUSE_LIMITS));
  });
  /** The signal: every connection waiting now starts reading, in the given mode. */
  function go(how: Mode) {
    if (waiting.size === 0) log('go: no connection is waiting');
    for (const socket of waiting) {
      waiting.delete(socket);
      const before = socket.bytesRead;
      if (how === 'flowing') readFlowing(socket, log);
      else readPaused(socket, log);
      // The two modes differ in these two fields: flowing = true; paused = false with a 'readable' listener.
      log(
        `go (${how} mode): ${before} bytes had been read; readableFlowing=${socket.readableFlowing}, ` +
          `'readable' listeners=${socket.listenerCount('readable')}`,
      );
      // After the echo's listener, so each check sees what it just wrote.
      guards.get(socket)?.watchBytes(how === 'flowing' ? 'data' : 'readable');
    }
  }
  return { server, go, open };
}
// #endregion server

const CHUNK = 64 * 1024;
/** Chunk i is filled with one letter, A to Z, so an echo that came back out of order would show. */
const chunkNo = (i: number) => Buffer.alloc(CHUNK, 65 + (i % 26));

// #region flood
/** Writes chunks until write() returns false: the kernel buffers are full and Node has started queueing. */
function flood(socket: net.Socket, log: Log): Buffer[] {
  const sent: Buffer[] = [];
  let ok = true;
  while (ok) {
    const chunk = chunkNo(sent.length);
    sent.push(chunk);
    ok = socket.write(chunk);
  }
  log(
    `write() returned false after ${sent.length} writes (${sent.length * CHUNK} bytes): Node still holds ` +
      `${socket.writableLength} (writableLength), over writableHighWaterMark ${socket.writableHighWaterMark}; ` +
      'the kernel took the rest',
  );
  return sent;
}
// #endregion flood

// #region client
/**
 * Sends five lines in five writes (or floods with --flood), then waits for the echo and checks it byte for byte.
 * `ready` runs once the writes are done: by hand it prints a hint; the demo says "go" to its server there.
 */
function runClient(host: string, port: number, floodIt: boolean, ready: () => void): Promise<void> {
  const log = logger('client');
  const socket = net.connect({ host, port });
  let sent: Buffer[] = [];
  const echoed: Buffer[] = [];
  socket.on('connect', () => {
    if (floodIt) {
      sent = flood(socket, log);
      socket.once('drain', () => {
        log(`'drain': Node's queue went to the kernel (writableLength ${socket.writableLength}); ending`);
        socket.end();
      });
      ready();
      return;
    }
    for (let i = 1; i <= 5; i++) {
      const line = Buffer.from(`line ${i}\r\n`);
      sent.push(line);
      const ok = socket.write(line, i === 5 ? ready : undefined);
      log(`write #${i} ${JSON.stringify(line.toString())} -> ${ok}`);
    }
  });
  socket.on('data', (chunk: Buffer) => echoed.push(chunk));
  if (!floodIt) {
    onLines(socket, (line) => {
      log(`received: ${line}`);
      if (line === 'line 5') socket.end();
    });
  }
  return new Promise((resolve) => {
    socket.on('error', (err) => fatal('client', err));
    socket.on('end', () => {
      const want = Buffer.concat(sent);
      const got = Buffer.concat(echoed);
      log(
        got.equals(want)
          ? `echo complete and in order: ${got.length} bytes`
          : `echo differs: sent ${want.length} bytes, got ${got.length}`,
      );
    });
    socket.on('close', () => {
      log('closed');
      resolve();
    });
  });
}
// #endregion client

// #region note-002
/** Note 002's pattern: pause(), then pipe() on every 'timeout'. 'timeout' fires after each idle spell, not once. */
function timeoutPipeServer(log: Log, sink: Writable) {
  let pipes = 0;
  return net.createServer((socket) => {
    socket.pause();
    socket.setTimeout(150);
    socket.on('timeout', () => {
      pipes++;
      log(`'timeout' #${pipes}: pipe() into the sink`);
      socket.pipe(sink, { end: false });
    });
    socket.on('error', () => socket.destroy());
  });
}
// #endregion note-002

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

async function note002(log: Log) {
  const changed = new EventEmitter();
  let text = '';
  let pipes = 0;
  const sinkLog = logger('sink');
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      sinkLog(JSON.stringify(chunk.toString()));
      done();
      changed.emit('change');
    },
  });
  // 'pipe' is emitted on the destination each time something is piped into it.
  sink.on('pipe', () => {
    pipes++;
    changed.emit('change');
  });
  const copies = (word: string) => text.split(`${word}\n`).length - 1;
  const until = (done: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!done()) return;
        changed.off('change', check);
        resolve();
      };
      changed.on('change', check);
      check();
    });

  const server = timeoutPipeServer(logger('server'), sink);
  const port = await listen(server);
  const client = net.connect(port, '127.0.0.1');
  await once(client, 'connect');
  // Waits on events only: the 150 ms idle timer is the server's own, as in the note.
  client.write('first\n'); // held by the paused socket until the first idle 'timeout' pipes it
  await until(() => copies('first') === 1);
  client.write('second\n'); // flows at once through pipe #1
  await until(() => copies('second') === 1);
  await until(() => pipes === 2); // the next idle spell: 'timeout' again, so pipe() again
  client.write('third\n');
  await until(() => copies('third') === pipes);
  log(
    `"third" reached the sink ${copies('third')} times: once per pipe(), and pipe() ran once per 'timeout'`,
  );
  client.destroy();
  server.close();
  await once(server, 'close');
}

async function demo() {
  const log = logger('demo');
  const { server, go } = createPausingServer(logger('server'));
  const port = await listen(server);
  printListening(logger('server'), server.address());

  const parts: [string, Mode, boolean][] = [
    ["part 1: pauseOnConnect, then resume() and 'data' (flowing mode)", 'flowing', false],
    ["part 2: the same, read with 'readable' + read() (paused mode)", 'paused', false],
    ['part 3: a client that keeps writing to a paused server', 'flowing', true],
  ];
  for (const [title, how, floodIt] of parts) {
    log(title);
    const accepted = once(server, 'connection');
    // The signal is an event: the client's last write reached the kernel (or write() said false), not a timer.
    await runClient('127.0.0.1', port, floodIt, () => {
      accepted.then(() => {
        log('the client is done writing: go');
        go(how);
      });
    });
  }
  server.close();
  await once(server, 'close');

  log("part 4: note 002's pattern: pause(), then pipe() on 'timeout'");
  await note002(log);
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const { server, go, open } = createPausingServer(log);
  server.on('error', (err) => fatal('server', err));
  onShutdown(async () => {
    log(`shutting down, closing ${open.size} connection(s)`);
    for (const socket of open) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  // The signal by hand: a line 'go' typed into this terminal (a test writes it to stdin).
  onLines(process.stdin, (line) => {
    if (line.trim() === 'go') go(mode as Mode);
    else if (line.trim()) log(`type go to resume the waiting connections (got ${JSON.stringify(line)})`);
  });
  server.listen(args.port, args.host, () => {
    printListening(log, server.address());
    log(`limits: ${describeLimits({ ...LIMITS, ...PAUSE_LIMITS }, false)}`);
  });
} else if (args.role === 'client') {
  const log = logger('client');
  await runClient(args.host, args.port, args.has('flood'), () =>
    log('done writing; the server holds it all until you type go in its terminal'),
  );
} else {
  await demo();
}
