// The chat project: the chat room of chapters 08–09, built stage by stage from an empty file.
// Each stage's steps are what the tester really does; the README and the page render these same steps.
import type { Project, Rng, Stage, Step } from './types.ts';

// The protocol's fixed lines. The server ends every line it sends with \r\n.
export const chat = {
  welcome: '* welcome, you are anonymous',
  defaultName: 'anonymous',
  joined: (name: string) => `* ${name} joined`,
  left: (name: string) => `* ${name} left`,
  youAreNow: (name: string) => `* you are now ${name}`,
  isNow: (before: string, after: string) => `* ${before} is now ${after}`,
  taken: (name: string) => `! the name '${name}' is taken`,
  already: (name: string) => `! you are already ${name}`,
  badName: "! a name is 1 to 24 letters, digits, '_', '-' or '.'",
  said: (name: string, text: string) => `${name}: ${text}`,
  privately: (name: string, text: string) => `${name} (private): ${text}`,
  sentTo: (nick: string) => `* sent to ${nick} only`,
  noUser: (nick: string) => `! no user named '${nick}': message not sent`,
  usage: (form: string) => `! usage: ${form}`,
  unknown: (line: string) => `! unknown command '${line}': type help for the list`,
  online: (names: string[]) => `* ${names.length} online: ${names.join(', ')}`,
  bye: '* bye',
  tooLong: '! line too long',
  shuttingDown: '* the server is shutting down: bye',
  help: [
    '* commands, one per line:',
    '*   e:TEXT        echo TEXT back to you',
    '*   b:TEXT        say TEXT to everyone else',
    '*   c:NICK:TEXT   say TEXT to NICK only',
    '*   n:NICK        change your name (everyone starts as anonymous)',
    '*   l             list who is online',
    '*   help          show this list',
    '*   quit          leave the room',
  ],
  maxLine: 4096,
  maxQueued: 262144,
};

const notices = /^\* .+ (joined|left)$/;
const skipNote = {
  en: 'This stage skips `* NAME joined` and `* NAME left` lines (they come in stage 6), so a finished server passes too.',
  zh: '本阶段会跳过 `* NAME joined` 和 `* NAME left` 这样的通知行（它们属于第 6 阶段），所以完成后的服务器同样能通过。',
};

// Small step builders: the stages below read like the dialogue they are.
const connect = (who: string): Step => ({ op: 'connect', who });
const send = (who: string, data: string, split?: 'bytes' | number[]): Step =>
  split ? { op: 'send', who, data, split } : { op: 'send', who, data };
const line = (who: string, text: string): Step => ({ op: 'line', who, line: text });
const closed = (who: string): Step => ({ op: 'closed', who });
const close = (who: string): Step => ({ op: 'close', who });
const welcome = (who: string) => [connect(who), line(who, chat.welcome)];

/** Two different names, from the seed. */
function names(rng: Rng): [string, string, string] {
  const a = rng.word();
  let b = rng.word();
  while (b === a) b = rng.word();
  let c = rng.word();
  while (c === a || c === b) c = rng.word();
  return [a, b, c];
}
const phrase = (rng: Rng) => `${rng.word()} ${rng.word()} ${rng.int(1000)}`;
const ending = (rng: Rng) => (rng.int(2) ? '\r\n' : '\n');

const stages: Stage[] = [
  {
    slug: 'bind',
    title: { en: 'Bind and accept', zh: '绑定并接受连接' },
    points: 5,
    spec: {
      en: '`run.sh` is started with `--port N`. Listen on TCP port N of 127.0.0.1 (or of every interface) and accept connections. Print what you like: the tester only connects.',
      zh: '`run.sh` 启动时带 `--port N`。在 127.0.0.1（或所有接口）的 TCP 端口 N 上监听并接受连接。输出什么都行：测试器只负责连接。',
    },
    hint: {
      en: 'read the port from the arguments (--port N) and listen on it',
      zh: '从参数（--port N）读出端口并在其上监听',
    },
    steps: () => [connect('A')],
  },
  {
    slug: 'greet',
    title: { en: 'Greet', zh: '问候' },
    points: 5,
    spec: {
      en: `As soon as a connection is accepted, send it the line \`${chat.welcome}\`. Every line the server sends ends with \`\\r\\n\` (CR LF), exactly once.`,
      zh: `连接一被接受，就向它发送一行 \`${chat.welcome}\`。服务器发出的每一行都以 \`\\r\\n\`（CR LF）结尾，且只有一个。`,
    },
    hint: { en: 'write the welcome line as soon as the connection arrives', zh: '连接一到就写出欢迎行' },
    steps: () => welcome('A'),
  },
  {
    slug: 'echo',
    title: { en: 'Echo lines', zh: '回显行' },
    points: 10,
    spec: {
      en: 'A client sends lines ending with `\\n` or `\\r\\n` (drop the ending, and a `\\r` before the `\\n`). Answer `e:TEXT` with the line `TEXT`. An empty line gets no answer.',
      zh: '客户端发送以 `\\n` 或 `\\r\\n` 结尾的行（去掉行尾，以及 `\\n` 前的 `\\r`）。对 `e:TEXT` 回一行 `TEXT`。空行不回答。',
    },
    hint: {
      en: "split what you receive at '\\n' and answer each e: line",
      zh: "在 '\\n' 处切分收到的数据，逐行回答 e: 命令",
    },
    steps: (rng) => {
      const out: Step[] = welcome('A');
      // One line ends with \n, one with \r\n, the third either way.
      for (const end of ['\n', '\r\n', ending(rng)]) {
        const text = phrase(rng);
        out.push(send('A', `e:${text}${end}`), line('A', text));
      }
      const last = rng.word();
      out.push(send('A', '\n'), send('A', `e:${last}\n`), line('A', last));
      return out;
    },
  },
  {
    slug: 'clients',
    title: { en: 'Many clients at once', zh: '同时服务多个客户端' },
    points: 10,
    spec: {
      en: 'Serve every connection at the same time: three clients connect, each is greeted at once, and each gets its echo whatever the order they speak in (the last one to connect speaks first). A client that leaves does not disturb the others.',
      zh: '同时服务每一个连接：三个客户端相继连接，每个都立刻收到问候；无论谁先说话（最后连上的先说），每个都收到自己的回显。一个客户端离开不影响其他人。',
    },
    skip: notices,
    skipNote,
    hint: {
      en: 'a server that serves one connection until it closes keeps the others waiting: handle each connection with its own callbacks (or thread, or task)',
      zh: '一次只服务一个连接、直到它关闭的服务器会让其他人一直等：每个连接用自己的回调（或线程、协程）处理',
    },
    steps: (rng) => {
      const out: Step[] = [...welcome('A'), ...welcome('B'), ...welcome('C')];
      for (const who of ['C', 'A', 'B']) {
        const w = phrase(rng);
        out.push(send(who, `e:${w}\n`), line(who, w));
      }
      const w = rng.word();
      out.push(close('B'), send('A', `e:${w}\n`), line('A', w), send('C', `e:${w}\n`), line('C', w));
      return out;
    },
  },
  {
    slug: 'broadcast',
    title: { en: 'Broadcast to the others', zh: '广播给其他人' },
    points: 10,
    spec: {
      en: `\`b:TEXT\` sends \`NAME: TEXT\` to every other client (everyone is \`${chat.defaultName}\` until stage 6), and nothing to the sender. In relayed text (here and in \`c:\`) each control character becomes \`?\`. The tester checks the sender got nothing by asking it an \`e:\` right after.`,
      zh: `\`b:TEXT\` 向其他每个客户端发送 \`NAME: TEXT\`（第 6 阶段之前所有人都叫 \`${chat.defaultName}\`），发送者本人什么都收不到。转发的文字里（这里和 \`c:\` 中）每个控制字符都换成 \`?\`。测试器随后向发送者发一个 \`e:\`，以此确认它没有收到自己的消息。`,
    },
    skip: notices,
    skipNote,
    hint: {
      en: 'loop over the connected clients and skip the one who sent the line',
      zh: '遍历已连接的客户端，跳过发送这一行的那个',
    },
    steps: (rng) => {
      const out: Step[] = [...welcome('A'), ...welcome('B'), ...welcome('C')];
      for (const [from, others] of [
        ['A', ['B', 'C']],
        ['B', ['A', 'C']],
      ] as const) {
        const text = phrase(rng);
        const mark = rng.word();
        out.push(send(from, `b:${text}\n`));
        for (const o of others) out.push(line(o, chat.said(chat.defaultName, text)));
        out.push(send(from, `e:${mark}\n`), line(from, mark));
      }
      return out;
    },
  },
  {
    slug: 'nicknames',
    title: { en: 'Nicknames, join and leave', zh: '昵称、加入与离开' },
    points: 15,
    spec: {
      en: [
        `Everyone starts as \`${chat.defaultName}\`. When a client connects, every other client gets \`* anonymous joined\`; when a connection ends for any reason, every other client gets \`* NAME left\`, exactly once.`,
        "`n:NICK` renames: NICK is 1 to 24 letters, digits, `_`, `-` or `.` (else `! a name is 1 to 24 letters, digits, '_', '-' or '.'`); `anonymous` (always, even for someone who still has it) or a name someone else has gets `! the name 'NICK' is taken`; your own current name gets `! you are already NICK`. On success the client gets `* you are now NICK` and every other client `* OLD is now NICK`. From this stage on no line is skipped.",
      ].join('\n\n'),
      zh: [
        `每个人一开始都叫 \`${chat.defaultName}\`。有客户端连入时，其他每个客户端收到 \`* anonymous joined\`；一个连接无论因何结束，其他每个客户端收到 \`* NAME left\`，且只收到一次。`,
        "`n:NICK` 改名：NICK 是 1 到 24 个字母、数字、`_`、`-` 或 `.`（否则回 `! a name is 1 to 24 letters, digits, '_', '-' or '.'`）；`anonymous`（始终如此，哪怕本人还叫这个名字）或别人正在用的名字回 `! the name 'NICK' is taken`；自己当前的名字回 `! you are already NICK`。成功时本人收到 `* you are now NICK`，其他每个人收到 `* OLD is now NICK`。从本阶段起不再跳过任何行。",
      ].join('\n\n'),
    },
    hint: {
      en: "announce a departure in one place that runs once per connection, whichever of 'end', 'close' or 'error' comes first",
      zh: "在一个每个连接只执行一次的地方宣布离开，无论 'end'、'close' 还是 'error' 先到",
    },
    steps: (rng) => {
      const [a, b] = names(rng);
      const text = phrase(rng);
      const mark = rng.word();
      return [
        ...welcome('A'),
        ...welcome('B'),
        line('A', chat.joined(chat.defaultName)),
        send('A', `n:${a}\n`),
        line('A', chat.youAreNow(a)),
        line('B', chat.isNow(chat.defaultName, a)),
        send('B', `n:${a}\n`),
        line('B', chat.taken(a)),
        send('B', `n:${b} ${a}\n`),
        line('B', chat.badName),
        send('B', `n:${chat.defaultName}\n`),
        line('B', chat.taken(chat.defaultName)),
        send('B', `n:${b}\n`),
        line('B', chat.youAreNow(b)),
        line('A', chat.isNow(chat.defaultName, b)),
        send('B', `n:${b}\n`),
        line('B', chat.already(b)),
        send('A', `b:${text}\n`),
        line('B', chat.said(a, text)),
        ...welcome('C'),
        line('A', chat.joined(chat.defaultName)),
        line('B', chat.joined(chat.defaultName)),
        close('C'),
        line('A', chat.left(chat.defaultName)),
        line('B', chat.left(chat.defaultName)),
        close('B'),
        line('A', chat.left(b)),
        send('A', `e:${mark}\n`),
        line('A', mark),
      ];
    },
  },
  {
    slug: 'commands',
    title: { en: 'The commands of chapter 09', zh: '第 09 章的命令' },
    points: 15,
    spec: {
      en: [
        '`help` answers with these lines, in order:',
        chat.help.map((l) => `    ${l}`).join('\n'),
        "`l` answers `* N online: NAME, NAME (you), …`, the names in the order their connections arrived, yours marked ` (you)`. `c:NICK:TEXT` sends `NAME (private): TEXT` to NICK only (TEXT may contain `:`) and answers `* sent to NICK only`; no such user: `! no user named 'NICK': message not sent`; several (only `anonymous` can be shared): `! N users are named 'NICK': message not sent`; an empty NICK or TEXT: `! usage: c:NICK:TEXT`. `b:` with no text: `! usage: b:TEXT`; `e:` with no text: `! usage: e:TEXT`. `quit` answers `* bye` and closes the connection (the others get `* NAME left`). Any other line: `! unknown command 'LINE': type help for the list`.",
      ].join('\n\n'),
      zh: [
        '`help` 按顺序回答这几行：',
        chat.help.map((l) => `    ${l}`).join('\n'),
        "`l` 回答 `* N online: NAME, NAME (you), …`，名字按连接到达的顺序排列，自己的后面加 ` (you)`。`c:NICK:TEXT` 只给 NICK 发 `NAME (private): TEXT`（TEXT 里可以有 `:`），并回答 `* sent to NICK only`；没有这个人：`! no user named 'NICK': message not sent`；有好几个（只有 `anonymous` 可能重名）：`! N users are named 'NICK': message not sent`；NICK 或 TEXT 为空：`! usage: c:NICK:TEXT`。`b:` 后没有文字：`! usage: b:TEXT`；`e:` 后没有文字：`! usage: e:TEXT`。`quit` 回答 `* bye` 并关闭连接（其他人收到 `* NAME left`）。其他任何行：`! unknown command 'LINE': type help for the list`。",
      ].join('\n\n'),
    },
    hint: {
      en: "split a command at the FIRST ':' only (c:NICK:TEXT keeps every ':' of TEXT)",
      zh: "命令只在第一个 ':' 处切开（c:NICK:TEXT 要保留 TEXT 里所有的 ':'）",
    },
    steps: (rng) => {
      const [a, b, z] = names(rng);
      const text = `${rng.word()}: ${rng.word()}:${rng.int(100)}`;
      const unknown = `${rng.word()}?`;
      return [
        ...welcome('A'),
        ...welcome('B'),
        line('A', chat.joined(chat.defaultName)),
        send('A', `n:${a}\n`),
        line('A', chat.youAreNow(a)),
        line('B', chat.isNow(chat.defaultName, a)),
        send('B', `n:${b}\n`),
        line('B', chat.youAreNow(b)),
        line('A', chat.isNow(chat.defaultName, b)),
        send('A', 'help\n'),
        ...chat.help.map((h) => line('A', h)),
        send('B', 'l\n'),
        line('B', chat.online([a, `${b} (you)`])),
        send('A', `c:${b}:${text}\n`),
        line('B', chat.privately(a, text)),
        line('A', chat.sentTo(b)),
        send('A', `c:${z}:${text}\n`),
        line('A', chat.noUser(z)),
        send('A', `c:${b}\n`),
        line('A', chat.usage('c:NICK:TEXT')),
        send('A', `c::${text}\n`),
        line('A', chat.usage('c:NICK:TEXT')),
        send('A', 'b:\n'),
        line('A', chat.usage('b:TEXT')),
        send('A', 'e:\n'),
        line('A', chat.usage('e:TEXT')),
        send('B', `${unknown}\n`),
        line('B', chat.unknown(unknown)),
        send('B', 'quit\n'),
        line('B', chat.bye),
        closed('B'),
        line('A', chat.left(b)),
      ];
    },
  },
  {
    slug: 'framing',
    title: { en: 'Framing', zh: '分帧' },
    points: 10,
    spec: {
      en: "TCP delivers bytes, not lines: one 'data' (one `recv`) can hold part of a line, several lines, or part of a UTF-8 character. The tester sends a line one byte at a time, three lines in one write, a line cut at a random byte, a `\\r\\n` cut between `\\r` and `\\n`, and a line whose `你` (3 bytes in UTF-8) is cut after its first byte. Each must be answered as if it came whole.",
      zh: "TCP 传的是字节而不是行：一次 'data'（一次 `recv`）可能是半行、好几行，或半个 UTF-8 字符。测试器会逐字节发送一行、一次写入三行、在随机字节处切开一行、在 `\\r` 与 `\\n` 之间切开 `\\r\\n`，以及把一行里的 `你`（UTF-8 中 3 字节）在第一个字节后切开。每一种都必须像整行到达时那样回答。",
    },
    hint: {
      en: 'keep the bytes after the last \\n until the next chunk arrives, and decode UTF-8 only once a line is whole',
      zh: '把最后一个 \\n 之后的字节留到下一块数据到来，并且等一行完整后再做 UTF-8 解码',
    },
    steps: (rng) => {
      const w1 = rng.word();
      const [x, y, z] = [rng.word(), rng.word(), rng.word()];
      const cut = `${rng.word()}${rng.word()}`;
      const at = 2 + 1 + rng.int(cut.length - 1);
      const crlf = rng.word();
      const hi = `你好 ${rng.word()}`;
      return [
        ...welcome('A'),
        ...welcome('B'),
        line('A', chat.joined(chat.defaultName)),
        send('A', `e:${w1}\n`, 'bytes'),
        line('A', w1),
        send('A', `e:${x}\ne:${y}\ne:${z}\n`),
        line('A', x),
        line('A', y),
        line('A', z),
        send('A', `e:${cut}\n`, [at]),
        line('A', cut),
        send('A', `e:${crlf}\r\n`, [2 + crlf.length + 1]),
        line('A', crlf),
        send('A', `b:${hi}\n`, [3]),
        line('B', chat.said(chat.defaultName, hi)),
      ];
    },
  },
  {
    slug: 'limits',
    title: { en: 'Limits', zh: '限制' },
    points: 10,
    spec: {
      en: `Treat every peer as untrusted. A client that does not read: once more than ${chat.maxQueued} bytes wait to be sent to it (Node: \`socket.writableLength\`), drop it (the others get \`* NAME left\`) while everyone else is still served: every message sent meanwhile reaches the client that reads. A line longer than ${chat.maxLine} bytes (not counting its ending), even before its \`\\n\` arrives (more than ${chat.maxLine + 1} bytes with no \`\\n\` can only be too long): answer \`${chat.tooLong}\` and close that connection. A line of exactly ${chat.maxLine} bytes is fine.`,
      zh: `把每个对端都当作不可信的。不读数据的客户端：等待发给它的字节超过 ${chat.maxQueued}（Node 中是 \`socket.writableLength\`）时，断开它（其他人收到 \`* NAME left\`），其他人照常得到服务：期间发出的每条消息都要送到正常读取的客户端。超过 ${chat.maxLine} 字节的行（不算行尾），哪怕它的 \`\\n\` 还没到（超过 ${chat.maxLine + 1} 字节仍没有 \`\\n\`，就只能是太长了）：回答 \`${chat.tooLong}\` 并关闭该连接。正好 ${chat.maxLine} 字节的行没问题。`,
    },
    hint: {
      en: 'check the size of what you buffer (unsent output, an unfinished line) every time it grows',
      zh: '每次缓冲增长（未发出的输出、未完成的行）时都检查它的大小',
    },
    steps: (rng) => {
      const [a] = names(rng);
      const big = 'y'.repeat(4000);
      const exact = 'x'.repeat(chat.maxLine - 2);
      const mark = rng.word();
      return [
        ...welcome('A'),
        ...welcome('B'),
        line('A', chat.joined(chat.defaultName)),
        send('A', `n:${a}\n`),
        line('A', chat.youAreNow(a)),
        line('B', chat.isNow(chat.defaultName, a)),
        ...welcome('C'),
        line('A', chat.joined(chat.defaultName)),
        line('B', chat.joined(chat.defaultName)),
        { op: 'stall', who: 'C' },
        {
          op: 'flood',
          who: 'A',
          data: `b:${big}\n`,
          reader: 'B',
          each: chat.said(a, big),
          until: chat.left(chat.defaultName),
          maxBytes: 64 * 1024 * 1024,
        },
        line('A', chat.left(chat.defaultName)),
        send('A', `e:${exact}\n`),
        line('A', exact),
        send('B', 'z'.repeat(chat.maxLine + 2 + rng.int(4000))),
        line('B', chat.tooLong),
        closed('B'),
        line('A', chat.left(chat.defaultName)),
        send('A', `e:${mark}\n`),
        line('A', mark),
      ];
    },
  },
  {
    slug: 'shutdown',
    title: { en: 'Graceful shutdown', zh: '优雅关闭' },
    points: 10,
    spec: {
      en: `On SIGTERM: stop accepting, send every client \`${chat.shuttingDown}\`, close every connection, and exit with code 0, all within 2 seconds, even if a client never closes its side. No \`* NAME left\` is sent during shutdown. (\`run.sh\` should \`exec\` your program, so the signal reaches it.)`,
      zh: `收到 SIGTERM 时：停止接受连接，给每个客户端发送 \`${chat.shuttingDown}\`，关闭每个连接，并以退出码 0 退出，全部在 2 秒内完成，哪怕有客户端一直不关闭它那一端。关闭期间不发送 \`* NAME left\`。（\`run.sh\` 应当用 \`exec\` 启动你的程序，好让信号到达它。）`,
    },
    hint: {
      en: 'server.close() only stops accepting and waits for open connections: end (or destroy) each one yourself, then exit',
      zh: 'server.close() 只是停止接受并等待现有连接结束：要自己逐个结束（或销毁）连接，然后退出',
    },
    steps: () => [
      ...welcome('A'),
      ...welcome('B'),
      line('A', chat.joined(chat.defaultName)),
      { op: 'sigterm' },
      line('A', chat.shuttingDown),
      closed('A'),
      line('B', chat.shuttingDown),
      closed('B'),
      { op: 'exit', code: 0 },
    ],
  },
];

export const chatProject: Project = {
  name: 'chat',
  title: { en: 'A chat server from an empty file', zh: '从空文件写一个聊天服务器' },
  chapters: ['08-chat-v1', '09-chat-v2'],
  intro: {
    en: 'Write the chat room of chapters 08 and 09 yourself, in any language, from an empty file. The tester starts your program with `run.sh --port N` for each stage, plays clients over real TCP connections, and stops at the first stage that fails, showing the bytes it sent and received.',
    zh: '自己动手、用任意语言、从一个空文件写出第 08、09 章的聊天室。每个阶段测试器都用 `run.sh --port N` 启动你的程序，通过真实的 TCP 连接扮演客户端，在第一个失败的阶段停下，并给出它发送和收到的字节。',
  },
  stages,
};
