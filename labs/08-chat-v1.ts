// Lab 08: chat room v1, the notes' TCP chat room done right (notes 001 §1.2.7 and 002).
// Pick a free nickname, then every line you type reaches everyone else; joins and leaves are announced once.
// Run: npm run lab 08 (the demo) · npm run lab 08 server · npm run lab 08 client · nc 127.0.0.1 8088
// Flags: -- --port N (default 8088, the note's) --host H (default 127.0.0.1) --chunks (server: log each 'data')
import { once } from 'node:events';
import net from 'node:net';
import readline from 'node:readline';
import { fatal, parseLabArgs } from './lib/cli.ts';
import { closeWithin, describeLimits, type Guard, guard, LIMITS, type Limits } from './lib/guard.ts';
import { describeError, hostPort, type Log, logger, printListening } from './lib/log.ts';
import { stopOnSignal } from './lib/server.ts';
import { badNick, foldNick, printable } from './lib/text.ts';

const args = parseLabArgs({
  roles: ['server', 'client'],
  port: 8088,
  flags: {
    chunks: { type: 'boolean', help: "server: log the size of every 'data' event (chunks are not lines)" },
  },
});

// #region server
// The prompt ends without a newline so the nickname is typed right after it, as in nc or telnet.
const PROMPT = 'nickname: ';
const usersOnline = (n: number) => `${n} user${n === 1 ? '' : 's'} online`;
// The limits every peer gets (labs/lib/guard.ts): ircd's 512-byte lines, 256 KiB unread per user, 10 idle minutes.
const CHAT_LIMITS: Partial<Limits> = { maxLine: 512, maxQueue: 256 * 1024, idleMs: 10 * 60_000 };

/** Our last words and our FIN; the socket is let go once they are sent, or a second later if the peer does not read. */
function sayLast(socket: net.Socket, words: string): void {
  socket.once('finish', () => socket.destroy());
  closeWithin(socket, 1000, words);
}

function createChatServer(log: Log, options: { chunks: boolean }): net.Server {
  // Only users who have picked a nickname are in the room: nickname -> their socket.
  const users = new Map<string, net.Socket>();
  const guards = new WeakMap<net.Socket, Guard>();
  // Every write to a peer goes through its guard: nothing is written after its end, and a peer that does not
  // read is dropped once 256 KiB wait for it ("SendQ exceeded").
  const write = (socket: net.Socket, text: string) => guards.get(socket)?.send(text);
  // `Alice`, `ALICE` and `ａｌｉｃｅ` are one name: compare folded forms (labs/lib/text.ts).
  const taken = (name: string) => [...users.keys()].some((n) => foldNick(n) === foldNick(name));

  function broadcast(sender: string, line: string): void {
    // A long line is logged by its start and length: the log must not grow with what peers send.
    log(
      `to everyone but ${sender}: ${line.length > 80 ? `${line.slice(0, 60)}… (${line.length} chars)` : line}`,
    );
    // #region exercise-broadcast
    for (const [name, socket] of users) {
      // Skip the sender, and only skip: the loop must not touch the sender's socket or the map.
      if (name !== sender) write(socket, `${line}\r\n`);
    }
    // #endregion exercise-broadcast
  }

  return net.createServer((socket) => {
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    let nick: string | undefined;
    log(`connection from ${peer}`);
    // A client that vanishes (RST) must not take the server down: its 'close' still follows.
    socket.on('error', (err) => log(`${peer} error: ${describeError(err)}`));
    const g = guard(socket, log, CHAT_LIMITS, { tell: (reason) => `* closing: ${reason}\r\n` });
    guards.set(socket, g);
    write(socket, `welcome to the chat room, ${usersOnline(users.size)}\r\n${PROMPT}`);
    if (options.chunks) {
      socket.on('data', (chunk: Buffer) => {
        const ends = chunk.toString('latin1').split('\n').length - 1;
        log(`${peer} 'data': ${chunk.length} bytes, ${ends} line end(s)`);
      });
    }

    // One 'data' event is not one line: the guard frames the byte stream (LF or CRLF) into lines of 512 bytes at most.
    g.lines((line) => {
      const text = line.trim();
      if (text === 'byebye') {
        // Send our FIN, then let go without waiting for the client's: nc keeps its side open until its
        // own input ends, and the room should not wait for that to hear the user has left.
        sayLast(socket, `bye${nick === undefined ? '' : ` ${nick}`}!\r\n`);
        return;
      }
      if (nick === undefined) {
        if (text === '') {
          write(socket, PROMPT);
          return;
        }
        // A name is shown to everyone: letters of any script, no controls, no look-alike tricks.
        const why = badNick(text);
        if (why) {
          write(socket, `! ${why}\r\n${PROMPT}`);
          return;
        }
        // #region exercise-nickname
        if (taken(text)) {
          write(socket, `nickname '${text}' is taken, pick another\r\n${PROMPT}`);
          return;
        }
        nick = text;
        users.set(nick, socket);
        log(`${peer} is ${nick}, ${usersOnline(users.size)}`);
        write(socket, `hi ${nick}! type a line to talk, byebye to leave\r\n`);
        broadcast(nick, `* ${nick} joined`);
        // #endregion exercise-nickname
        return;
      }
      // Escapes, bare CRs and bidi controls would act on the others' terminals: they see them made harmless.
      const said = printable(text).trim();
      if (said !== '') broadcast(nick, `${nick}: ${said}`);
    });

    // 'close' fires exactly once per socket, after 'end' (a polite FIN) or after 'error' (a reset alike),
    // so a leave announced here is announced once, however the user went.
    socket.on('close', () => {
      log(`${peer} closed`);
      // #region exercise-leave
      if (nick !== undefined) {
        users.delete(nick);
        broadcast(nick, `* ${nick} left`);
      }
      // #endregion exercise-leave
    });
  });
}
// #endregion server

// #region client
function runClient(host: string, port: number): Promise<void> {
  const log = logger('client');
  const socket = net.connect({ host, port });
  socket.setEncoding('utf8');
  let atLineStart = true;
  // The client's own remarks go on a line of their own, even right after a prompt.
  const note = (text: string) => {
    if (!atLineStart) process.stdout.write('\n');
    atLineStart = true;
    log(text);
  };
  socket.on('connect', () =>
    note(`connected to ${hostPort(host, port)}: type a line and Enter; byebye or Ctrl-D leaves`),
  );
  // What the room sends is shown as it comes, prompt included, like nc does.
  socket.on('data', (text: string) => {
    process.stdout.write(text);
    atLineStart = text.endsWith('\n');
  });
  // readline hands over one typed line at a time; from a pipe (no terminal) it reads lines all the same.
  const input = readline.createInterface({ input: process.stdin });
  input.on('line', (line) => socket.write(`${line}\r\n`));
  // Ctrl-D, or the end of piped input: we have nothing more to say, and the server closes its side in turn.
  input.on('close', () => {
    if (!socket.destroyed) socket.end();
  });
  return new Promise((resolve) => {
    socket.on('error', (err) => fatal('client', err));
    socket.on('close', () => {
      note('disconnected');
      // Stop reading the keyboard too, so the process can exit when the server hung up first.
      input.close();
      resolve();
    });
  });
}
// #endregion client

// A scripted chat user for the demo: it types lines and waits until the room has said a given text.
function demoUser(name: string, port: number) {
  const log = logger(name);
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  socket.on('error', () => {}); // carol's own reset is on purpose
  let heard = '';
  let shown = 0;
  let closed = false;
  const waiting = new Set<() => void>();
  const wake = () => {
    for (const check of [...waiting]) check();
  };
  socket.on('data', (text: string) => {
    heard += text;
    wake();
  });
  socket.on('close', () => {
    closed = true;
    wake();
  });
  return {
    socket,
    heard: () => heard,
    /** Types these lines in ONE write: TCP may deliver them in one 'data' event. */
    say(...lines: string[]) {
      for (const line of lines) log(`> ${line}`);
      socket.write(lines.map((line) => `${line}\r\n`).join(''));
    },
    /** Resolves once `text` has arrived, printing what came up to it. */
    hear(text: string): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const at = heard.indexOf(text, shown);
          if (at === -1) {
            if (closed) {
              waiting.delete(check);
              reject(new Error(`${name} never heard '${text}'`));
            }
            return;
          }
          waiting.delete(check);
          for (const line of heard.slice(shown, at + text.length).split('\r\n')) if (line) log(`< ${line}`);
          shown = at + text.length;
          resolve();
        };
        waiting.add(check);
        check();
      });
    },
  };
}

async function demo() {
  const log = logger('demo');
  // The demo's server logs every 'data' event (the server role does so with --chunks): chunks are not lines.
  const server = createChatServer(logger('server'), { chunks: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  printListening(logger('server'), server.address());
  const { port } = server.address() as net.AddressInfo;

  log('alice joins an empty room');
  const alice = demoUser('alice', port);
  await alice.hear(PROMPT);
  alice.say('alice');
  await alice.hear('byebye to leave');

  log('bob asks for a nickname that is taken, is asked again, and picks another');
  const bob = demoUser('bob', port);
  await bob.hear(PROMPT);
  bob.say('alice');
  await bob.hear(`pick another\r\n${PROMPT}`);
  bob.say('bob');
  await bob.hear('byebye to leave');
  await alice.hear('* bob joined');

  log('carol joins');
  const carol = demoUser('carol', port);
  await carol.hear(PROMPT);
  carol.say('carol');
  await carol.hear('byebye to leave');
  await Promise.all([alice.hear('* carol joined'), bob.hear('* carol joined')]);

  log('alice talks: everyone else hears her, she gets no echo');
  alice.say('hi all');
  await bob.hear('alice: hi all');
  await carol.hear('alice: hi all');
  bob.say('hi alice');
  await alice.hear('bob: hi alice');
  await carol.hear('bob: hi alice');
  log(`alice heard her own line back: ${alice.heard().includes('alice: hi all') ? 'yes' : 'no'}`);

  log('carol types two lines that leave in one write: the server still sees two lines');
  carol.say('line one', 'line two');
  await alice.hear('carol: line two');
  await bob.hear('carol: line two');

  log('carol vanishes without a goodbye (a reset, not a FIN): her leave is announced once all the same');
  carol.socket.resetAndDestroy();
  await alice.hear('* carol left');
  await bob.hear('* carol left');

  log('bob says byebye: the server answers and closes his connection');
  bob.say('byebye');
  await bob.hear('bye bob!');
  await once(bob.socket, 'close');
  await alice.hear('* bob left');

  alice.socket.end();
  await once(alice.socket, 'close');
  server.close();
  await once(server, 'close');
  log('done');
}

if (args.role === 'server') {
  const log = logger('server');
  const server = createChatServer(log, { chunks: args.has('chunks') });
  server.on('error', (err) => fatal('server', err));
  // End each connection with a last line; one that does not read it is destroyed a second later all the same.
  stopOnSignal(server, log, (socket) => sayLast(socket, '* the server is shutting down\r\n'));
  server.listen(args.port, args.host, () => {
    printListening(log, server.address());
    log(`limits: ${describeLimits({ ...LIMITS, ...CHAT_LIMITS })}`);
  });
} else if (args.role === 'client') {
  await runClient(args.host, args.port);
} else {
  await demo().catch((err) => fatal('demo', err));
}
