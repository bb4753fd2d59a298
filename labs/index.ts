// The one registry of the workbook: every lab, its pages, its test and its exercises.
// The lab runner, the sidebar, the tests, the exercise generator and the grader all read this list;
// nothing else keeps one. `npm run check:labs` says what to add when a file and this list disagree.

/** A text in both locales of the site. */
export interface Localized {
  zh: string;
  en: string;
}

/** One part of a lab that a learner writes: `// #region exercise-NAME` … `// #endregion exercise-NAME`. */
export interface Exercise {
  /** The region's name without the `exercise-` prefix, e.g. `greet` for `// #region exercise-greet`. */
  region: string;
  /** What to write: goes into the `// TODO:` comment of the starter file. Never the answer. */
  task: Localized;
  /** Hints from gentle to nearly-the-answer, shown one at a time by `npm run hint NN`. */
  hints: readonly Localized[];
}

/** Which part of the workbook a lab belongs to: the sidebar groups chapters by it. */
export type Part = 'tcp' | 'udp' | 'protocols';

export const parts: readonly { id: Part; title: Localized }[] = [
  { id: 'tcp', title: { zh: 'TCP · node:net', en: 'TCP · node:net' } },
  { id: 'udp', title: { zh: 'UDP · node:dgram', en: 'UDP · node:dgram' } },
  { id: 'protocols', title: { zh: '应用层协议', en: 'Application protocols' } },
];

/** A study note (../shared/notes) by number, optionally with the sections a chapter covers. */
export type Note = string | { id: string; about: Localized };

export interface Lab {
  /** Two digits, '01'. */
  id: string;
  part: Part;
  /** `NN-name`: names labs/NN-name.ts, docs/NN-name.md, docs/en/NN-name.md and test/NN-name.test.ts. */
  slug: string;
  title: Localized;
  /** The roles the lab plays besides its demo (run with no role). */
  roles: readonly string[];
  /** The study notes this chapter covers; the lab's header comment names the same numbers. */
  notes: readonly Note[];
  /** Test files besides test/NN-slug.test.ts that check this chapter. */
  alsoTests?: readonly string[];
  /** It has a benchmark, scripts/bench/NN-slug.ts (`npm run bench NN`). */
  bench?: boolean;
  exercises: readonly Exercise[];
}

/** Pages that are not a lab (they have a zh page and an en twin, but no lab file or test). */
export interface Guide {
  slug: string;
  title: Localized;
}

export const guides: readonly Guide[] = [
  { slug: '00-how-to-use', title: { zh: '如何使用本手册', en: 'How to use this workbook' } },
  { slug: 'teachers', title: { zh: '教师指南', en: 'For teachers' } },
];

export const labs: readonly Lab[] = [
  {
    id: '01',
    part: 'tcp',
    slug: '01-basic-tcp',
    title: { zh: '分层模型与第一个 TCP 服务', en: 'Layers, sockets and a first TCP server' },
    roles: ['server', 'client'],
    notes: ['000', '002', '003', '004'],
    exercises: [
      {
        region: 'greet',
        task: {
          zh: "向新连接写入问候语 'hello\\r\\n'，再把 socket 接到它自己身上，把收到的字节原样回显",
          en: "Write the greeting 'hello\\r\\n' to the new connection, then pipe the socket into itself to echo every byte back",
        },
        hints: [
          {
            zh: 'socket 是一个双工流：既能 write()，也能作为可读流 pipe() 到别处——包括它自己。',
            en: 'A socket is a duplex stream: you can write() to it, and as a readable you can pipe() it anywhere, itself included.',
          },
          {
            zh: "两行就够：socket.write('hello\\r\\n'); 然后 socket.pipe(socket);",
            en: "Two lines are enough: socket.write('hello\\r\\n'); then socket.pipe(socket);",
          },
        ],
      },
      {
        region: 'client',
        task: {
          zh: "连上后发送 'world!\\r\\n'；用 onLines 把收到的每一行打印成 'received: 行内容'；等 'world!' 这一行回显回来，用 end() 优雅地关闭连接",
          en: "Once connected, send 'world!\\r\\n'; print every line that comes back as 'received: LINE' (onLines does the framing); after the 'world!' line, close the connection gracefully with end()",
        },
        hints: [
          {
            zh: "'connect' 事件之后才能可靠地写。回显的那一行由 onLine 回调交给你。",
            en: "Write once 'connect' has fired. The echoed line reaches you through the onLine callback.",
          },
          {
            zh: "在 connect 回调里 socket.write('world!\\r\\n')；在 onLine 里，当 line === 'world!' 时调用 socket.end()。",
            en: "In the connect callback call socket.write('world!\\r\\n'); in onLine, when line === 'world!', call socket.end().",
          },
        ],
      },
    ],
  },
  {
    id: '02',
    part: 'tcp',
    slug: '02-handshake',
    title: { zh: '三次握手与四次挥手', en: 'The three-way handshake and the four-way close' },
    roles: ['server', 'client'],
    notes: ['000', '002', '004'],
    exercises: [
      {
        region: 'block',
        task: {
          zh: "阻塞事件循环：block 为 'enter' 时，同步地从标准输入（fd 0）读，直到读到换行或输入结束；否则忙等 block 毫秒",
          en: "Block the event loop: when block is 'enter', read standard input (fd 0) synchronously until a newline or end of input; otherwise busy-wait for block milliseconds",
        },
        hints: [
          {
            zh: '"阻塞"就是不把控制权交还给事件循环：不用回调、不用 Promise、不用定时器。',
            en: 'Blocking means never handing control back to the event loop: no callback, no promise, no timer.',
          },
          {
            zh: 'fs.readSync(0, buffer) 会在 read() 系统调用里一直等；返回 0 表示输入结束。忙等可以用一个检查 Date.now() 的 while 循环。',
            en: 'fs.readSync(0, buffer) waits inside the read() system call; it returns 0 at end of input. A busy wait is a while loop that checks Date.now().',
          },
          {
            zh: '每次读 1 个字节：while (fs.readSync(0, byte) === 1 && byte[0] !== 0x0a); 忙等：const end = Date.now() + Number(block); while (Date.now() < end);',
            en: 'Read one byte at a time: while (fs.readSync(0, byte) === 1 && byte[0] !== 0x0a); busy wait: const end = Date.now() + Number(block); while (Date.now() < end);',
          },
        ],
      },
      {
        region: 'reply',
        task: {
          zh: "在客户端的 FIN（'end'）之后回复一行 'you sent N bytes\\n'，并在 write 的回调里打印结果：成功打印 \"reply sent after the client's FIN\"，失败打印 'reply lost: ' 加上错误信息",
          en: "After the client's FIN ('end'), reply with the line 'you sent N bytes\\n', and report the outcome in write's callback: \"reply sent after the client's FIN\" on success, 'reply lost: ' and the error's message on failure",
        },
        hints: [
          {
            zh: 'socket.write(data, callback)：回调的第一个参数是错误（成功时为空）。半关闭下这次写能成功；默认情况下 Node 已经替你结束了写方向。',
            en: "socket.write(data, callback): the callback's first argument is an error (empty on success). With half-open the write succeeds; by default Node has already ended your side.",
          },
          {
            zh: "received 已经数好了字节数。socket.write('you sent ' + received + ' bytes\\n', (err) => …)：有 err 时打印 'reply lost: ' 加 err.message，否则打印 \"reply sent after the client's FIN\"。",
            en: "received already holds the byte count. socket.write('you sent ' + received + ' bytes\\n', (err) => …): with an err, log 'reply lost: ' and err.message; without, log \"reply sent after the client's FIN\".",
          },
        ],
      },
      {
        region: 'parse',
        task: {
          zh: '解析 /proc/net/tcp 的一行：取出本端端口、对端端口和状态码（十六进制），放进 sockets',
          en: 'Parse one line of /proc/net/tcp: take the local port, the remote port and the state code (hex), and push them onto sockets',
        },
        hints: [
          {
            zh: '按空白切分：第 2、3、4 个字段是 local_address、rem_address、st。在终端里 cat /proc/net/tcp 看一眼。',
            en: 'Split on whitespace: fields 2, 3 and 4 are local_address, rem_address and st. Look at cat /proc/net/tcp in a terminal.',
          },
          {
            zh: '地址形如 0100007F:1B39：最后一个冒号后面是十六进制端口，Number.parseInt(text, 16)。tcp6 的地址更长，但端口同样在最后一个冒号之后。',
            en: 'An address looks like 0100007F:1B39: after the last colon is the port in hex, Number.parseInt(text, 16). tcp6 addresses are longer, but the port is still after the last colon.',
          },
          {
            zh: "const [, local = '', remote = '', code = ''] = line.trim().split(/\\s+/); 然后 sockets.push({ localPort, remotePort, code })。",
            en: "const [, local = '', remote = '', code = ''] = line.trim().split(/\\s+/); then sockets.push({ localPort, remotePort, code }).",
          },
        ],
      },
    ],
  },
  {
    id: '03',
    part: 'tcp',
    slug: '03-net-server',
    title: { zh: 'net.Server：监听、计数与关闭', en: 'net.Server: listening, counting and closing' },
    roles: ['server'],
    notes: ['000', '001', '003', '004'],
    exercises: [
      {
        region: 'max-connections',
        task: {
          zh: "设置 server.maxConnections = max，并监听 'drop' 事件：每丢弃一个超限的连接就打印一行 \"'drop': 地址:端口 is over maxConnections (max); Node closed it at once\"",
          en: "Set server.maxConnections = max and listen for 'drop': for every connection over the limit log \"'drop': ADDRESS:PORT is over maxConnections (max); Node closed it at once\"",
        },
        hints: [
          {
            zh: "限流只是服务器上的一个属性；超限时 Node 先接受连接，再立刻关闭它，并发出 'drop' 事件。",
            en: "The limit is just a property of the server; over it, Node accepts the connection, closes it at once and emits 'drop'.",
          },
          {
            zh: "'drop' 的参数可能是 undefined（例如 Unix 套接字），它有 remoteAddress 和 remotePort；用 hostPort() 拼成地址。",
            en: "The 'drop' argument may be undefined (a Unix socket, say); it has remoteAddress and remotePort: hostPort() formats them.",
          },
          {
            zh: "两句：先 server.maxConnections = max；再 server.on('drop', (info) => log(...))，日志里用 hostPort(info?.remoteAddress, info?.remotePort) 和 max。",
            en: "Two statements: server.maxConnections = max; then server.on('drop', (info) => log(...)), with hostPort(info?.remoteAddress, info?.remotePort) and max in the message.",
          },
        ],
      },
      {
        region: 'stale-socket',
        task: {
          zh: '套接字文件已存在：确认它是套接字（否则 fatal 退出），试着连接它。连得上说明有服务器在用 → fatal；ECONNREFUSED 说明是崩溃留下的 → 删除文件并打印一行 "removed a stale socket file: nobody answered on 路径 (ECONNREFUSED)"',
          en: 'The socket file exists: make sure it is a socket (else fatal), then try to connect to it. A connection means a live server → fatal; ECONNREFUSED means a crash left it → delete it and log "removed a stale socket file: nobody answered on PATH (ECONNREFUSED)"',
        },
        hints: [
          {
            zh: "文件在，不代表有人在听。问一问它：net.connect(路径)，看是 'connect' 还是 'error'。",
            en: "A file being there does not mean anyone listens. Ask it: net.connect(path) and see whether 'connect' or 'error' comes.",
          },
          {
            zh: "fs.lstatSync(file).isSocket() 判断类型；错误对象的 code 为 ECONNREFUSED 时才可以 fs.unlinkSync(file)；其余情况都用 fatal('server', 说明) 退出。",
            en: "fs.lstatSync(file).isSocket() checks the type; only when the error's code is ECONNREFUSED call fs.unlinkSync(file); anything else is fatal('server', why).",
          },
          {
            zh: "const probe = net.connect(file); const answer = await new Promise((r) => { probe.once('connect', () => r('live')); probe.once('error', (e) => r(e.code)); }); probe.destroy(); 然后按 answer 分三种情况处理。",
            en: "const probe = net.connect(file); const answer = await new Promise((r) => { probe.once('connect', () => r('live')); probe.once('error', (e) => r(e.code)); }); probe.destroy(); then handle the three cases of answer.",
          },
        ],
      },
    ],
  },
  {
    id: '04',
    part: 'tcp',
    slug: '04-net-socket',
    title: {
      zh: 'net.Socket：两端、字节与三种挂断',
      en: 'net.Socket: two ends, bytes and three ways to hang up',
    },
    roles: ['server', 'client'],
    notes: ['000', '001', '004'],
    exercises: [
      {
        region: 'peer-events',
        task: {
          zh: "为每条连接监听 'end'、'error'、'close'，各打印一行：\"#N 'end': the peer sent FIN, it will send nothing more\"、\"#N 'error': \" 加 describeError(err)、\"#N 'close': hadError = \" 加 hadError",
          en: "For each connection, listen for 'end', 'error' and 'close' and log one line each: \"#N 'end': the peer sent FIN, it will send nothing more\", \"#N 'error': \" plus describeError(err), \"#N 'close': hadError = \" plus hadError",
        },
        hints: [
          {
            zh: "三个事件，三个监听器。少了 'error' 监听器，对端的一个 RST 就会让整个服务器崩溃。",
            en: "Three events, three listeners. Without an 'error' listener, one RST from a peer crashes the whole server.",
          },
          {
            zh: "'close' 的监听器收到一个布尔参数 hadError：只有之前发出过 'error' 时它才是 true。",
            en: "The 'close' listener gets one boolean, hadError: true only when an 'error' was emitted before it.",
          },
          {
            zh: "socket.on('end', () => log(…)); socket.on('error', (err) => log(… describeError(err))); socket.on('close', (hadError) => log(… hadError));",
            en: "socket.on('end', () => log(…)); socket.on('error', (err) => log(… describeError(err))); socket.on('close', (hadError) => log(… hadError));",
          },
        ],
      },
      {
        region: 'hang-up',
        task: {
          zh: "按 how 挂断连接：'end' 用 end()（先发完再发 FIN），'destroy' 用 destroy()（立刻关闭），'reset' 用 resetAndDestroy()（发 RST）",
          en: "Hang up according to how: 'end' with end() (send what is queued, then FIN), 'destroy' with destroy() (close now), 'reset' with resetAndDestroy() (send RST)",
        },
        hints: [
          {
            zh: 'net.Socket 自己就有这三个方法，每种情况调用一个。',
            en: 'net.Socket has all three methods; call one per case.',
          },
          {
            zh: "if (how === 'end') socket.end(); else if (how === 'destroy') socket.destroy(); else socket.resetAndDestroy();",
            en: "if (how === 'end') socket.end(); else if (how === 'destroy') socket.destroy(); else socket.resetAndDestroy();",
          },
        ],
      },
      {
        region: 'decode',
        task: {
          zh: '让这个客户端收到的是字符串而不是 Buffer，并且被拆到两个数据块里的多字节字符不会变成 U+FFFD',
          en: 'Make this client receive strings instead of Buffers, so that a multi-byte character split across two chunks does not turn into U+FFFD',
        },
        hints: [
          {
            zh: '逐块 toString() 会把半个字符解成替换字符。要有东西把不完整的字节留到下一块。',
            en: 'Calling toString() chunk by chunk decodes half a character into a replacement character. Something must keep the incomplete bytes for the next chunk.',
          },
          {
            zh: "socket 上就有这样的解码器：client.setEncoding('utf8')。",
            en: "The socket has such a decoder built in: client.setEncoding('utf8').",
          },
        ],
      },
    ],
  },
  {
    id: '05',
    part: 'tcp',
    slug: '05-pause-resume',
    title: {
      zh: '暂停与恢复：pause()、resume() 与两种读取模式',
      en: 'Pause and resume: two ways to read a socket',
    },
    roles: ['server', 'client'],
    notes: ['001', '002'],
    exercises: [
      {
        region: 'resume',
        task: {
          zh: "流动模式：为 socket 注册 'data' 监听器，每收到一块就用 seen.add(字节数) 记一笔并原样写回；然后让数据真正流起来",
          en: "Flowing mode: add a 'data' listener that records each chunk with seen.add(its length) and writes it back; then make the data actually flow",
        },
        hints: [
          {
            zh: "pauseOnConnect 创建的 socket 一开始 readableFlowing 就是 false：只加 'data' 监听器不会让它开始流动。",
            en: "A pauseOnConnect socket starts with readableFlowing === false: adding a 'data' listener alone does not start the flow.",
          },
          {
            zh: "socket.on('data', (chunk: Buffer) => { seen.add(chunk.length); socket.write(chunk); }); 之后调用 socket.resume()。",
            en: "socket.on('data', (chunk: Buffer) => { seen.add(chunk.length); socket.write(chunk); }); then call socket.resume().",
          },
        ],
      },
      {
        region: 'read-loop',
        task: {
          zh: "暂停模式：监听 'readable'，在回调里反复调用 socket.read() 直到它返回 null；每块用 seen.add(字节数) 记一笔并原样写回",
          en: "Paused mode: listen for 'readable' and, in the callback, call socket.read() until it returns null; record each chunk with seen.add(its length) and write it back",
        },
        hints: [
          {
            zh: "'readable' 只是说“缓冲区里有东西了”，数据要你自己用 read() 取；加上 'readable' 监听器本身就会让 socket 开始从内核读。",
            en: "'readable' only says \"the buffer has something\"; you pull the data with read(). Adding a 'readable' listener is itself what makes the socket start reading from the kernel.",
          },
          {
            zh: '一个 for 循环就够：for (let chunk = socket.read(); chunk !== null; chunk = socket.read()) { … }',
            en: 'One for loop does it: for (let chunk = socket.read(); chunk !== null; chunk = socket.read()) { … }',
          },
        ],
      },
    ],
  },
  {
    id: '06',
    part: 'tcp',
    slug: '06-pipe-backpressure',
    title: { zh: 'pipe、unpipe 与背压', en: 'pipe, unpipe and backpressure' },
    roles: ['server', 'client'],
    notes: ['000', '001', '003'],
    bench: true,
    exercises: [
      {
        region: 'pipe-file',
        task: {
          zh: "把 socket 接进文件流 out，但客户端结束时不要关闭文件；收到客户端的 FIN（'end'）后，写入 TRAILER 再关闭文件，关闭完成时调用 saved",
          en: "Pipe the socket into the file stream out without closing the file when the client ends; on the client's FIN ('end'), write TRAILER, close the file, and call saved once it is closed",
        },
        hints: [
          {
            zh: 'pipe() 默认会在源结束时调用目标的 end()。它的第二个参数可以关掉这个行为。',
            en: "By default pipe() calls the destination's end() when the source ends. Its second argument turns that off.",
          },
          {
            zh: "socket.pipe(out, { end: false }); socket.on('end', () => out.end(TRAILER, saved)); ——如果 unpipe 已经关了文件（out.writableEnded），就别再 end。",
            en: "socket.pipe(out, { end: false }); socket.on('end', () => out.end(TRAILER, saved)); and skip the end() if unpipe already closed the file (out.writableEnded).",
          },
        ],
      },
      {
        region: 'polite',
        task: {
          zh: "当 write() 返回 false 时：记一次 m.falses，第一次时调用 stuck()，然后等到 'drain' 再继续写",
          en: "When write() returns false: count it in m.falses, call stuck() the first time, then wait for 'drain' before writing on",
        },
        hints: [
          {
            zh: "write() 返回 false 的意思是：Node 的写队列已经超过 writableHighWaterMark，请先停一停。队列清空时 socket 会发出 'drain'。",
            en: "write() returning false means Node's write queue is past writableHighWaterMark: stop for now. The socket emits 'drain' when the queue is empty again.",
          },
          {
            zh: "在 async 函数里：if (!ok) { m.falses++; if (m.falses === 1) stuck(); await once(socket, 'drain'); }",
            en: "Inside the async function: if (!ok) { m.falses++; if (m.falses === 1) stuck(); await once(socket, 'drain'); }",
          },
        ],
      },
    ],
  },
  {
    id: '07',
    part: 'tcp',
    slug: '07-keepalive',
    title: { zh: '空闲超时与 TCP keepalive', en: 'Idle timeouts and TCP keepalive' },
    roles: ['server', 'client', 'vanish'],
    notes: ['001', '002'],
    exercises: [
      {
        region: 'idle',
        task: {
          zh: "处理 'timeout' 事件：第一次只写一行以 'idle for' 开头的提醒（连接仍然可写）；第二次用 end() 写 'bye: idle too long\\r\\n' 主动关闭；如果已经 end() 过、客户端却一直不关它那一侧，就 destroy()",
          en: "Handle 'timeout': the first time only write a warning line starting with 'idle for' (the socket is still writable); the second time end() it yourself with 'bye: idle too long\\r\\n'; if you already called end() and the client still has not closed its side, destroy() it",
        },
        hints: [
          {
            zh: "'timeout' 不会关闭任何东西，连接还开着。计数器 timeouts 已经替你数好了这是第几次。",
            en: "'timeout' closes nothing: the socket is still open. The counter timeouts already tells you which time this is.",
          },
          {
            zh: 'end() 只发出我们的 FIN；像 nc 这样的对端可能一直不回 FIN。socket.writableEnded 告诉你是否已经 end() 过。',
            en: 'end() only sends our FIN; a peer such as nc may never send its own. socket.writableEnded tells you whether you already called end().',
          },
          {
            zh: "if (timeouts === 1) socket.write('idle for …\\r\\n'); else if (!socket.writableEnded) socket.end('bye: idle too long\\r\\n'); else socket.destroy();",
            en: "if (timeouts === 1) socket.write('idle for …\\r\\n'); else if (!socket.writableEnded) socket.end('bye: idle too long\\r\\n'); else socket.destroy();",
          },
        ],
      },
      {
        region: 'disable',
        task: {
          zh: '客户端发来 notimeout 时，关掉这条连接的空闲超时',
          en: "When the client sends notimeout, turn this connection's idle timeout off",
        },
        hints: [
          {
            zh: '开启空闲超时用的是同一个方法，只是参数不同。',
            en: 'The same method that turned the idle timeout on turns it off, with a different argument.',
          },
          { zh: 'socket.setTimeout(0)', en: 'socket.setTimeout(0)' },
        ],
      },
      {
        region: 'keepalive',
        task: {
          zh: '为这条连接打开 TCP keepalive，initialDelay 用变量 keepalive（毫秒）',
          en: 'Turn TCP keepalive on for this connection, with the variable keepalive (ms) as the initialDelay',
        },
        hints: [
          {
            zh: 'net.Socket 有一个方法同时接收"是否开启"和"空闲多久后发第一个探测包"。',
            en: 'net.Socket has one method that takes both "on or off" and "how long idle before the first probe".',
          },
          { zh: 'socket.setKeepAlive(true, keepalive)', en: 'socket.setKeepAlive(true, keepalive)' },
        ],
      },
    ],
  },
  {
    id: '08',
    part: 'tcp',
    slug: '08-chat-v1',
    title: { zh: '聊天室 v1：把笔记里的聊天室写对', en: "Chat room v1: the notes' chat room, done right" },
    roles: ['server', 'client'],
    notes: [
      { id: '001', about: { zh: '1.2.7 聊天室 1.0', en: '1.2.7, chat room 1.0' } },
      { id: '002', about: { zh: '带昵称检查的聊天室', en: 'the chat room with a nickname check' } },
    ],
    exercises: [
      {
        region: 'broadcast',
        task: {
          zh: '把 line 加上 \\r\\n 写给房间里除 sender 以外的每个用户；循环里不要动发送者的 socket，也不要改 users',
          en: "Write line plus '\\r\\n' to every user in the room except sender; inside the loop, leave the sender's socket and the users map alone",
        },
        hints: [
          {
            zh: 'users 是 Map：昵称 → socket。for...of 遍历它会依次得到 [name, socket]。用 write(socket, 文本) 写：它经过这个连接的 guard（发送队列上限）。',
            en: "users is a Map from nickname to socket; for...of over it yields [name, socket] pairs. Write with write(socket, text): it goes through that peer's guard (the send-queue limit).",
          },
          {
            zh: '只有一个判断：名字不是 sender 的，才 write。笔记 001 的错误就是在循环里销毁并删除了发送者。',
            en: "One test is enough: write only when the name is not sender. Note 001's bug was destroying and deleting the sender inside this loop.",
          },
          {
            zh: '骨架：for (const [name, socket] of users) { if (name !== sender) { /* 写一行 */ } }',
            en: 'The shape: for (const [name, socket] of users) { if (name !== sender) { /* write the line */ } }',
          },
        ],
      },
      {
        region: 'nickname',
        task: {
          zh: "处理第一行（昵称）：已被占用就回复 \"nickname 'X' is taken, pick another\" 并再次提示；否则记下昵称、加入 users、向本人问好，并向其他人广播 '* X joined'",
          en: "Handle the first line (the nickname): if it is taken, reply \"nickname 'X' is taken, pick another\" and prompt again; otherwise remember it, add it to users, greet the user and broadcast '* X joined' to the others",
        },
        hints: [
          {
            zh: '昵称是否被占用，问 taken(text)：它比较折叠后的形式，Alice、ALICE 和 alice 算同一个名字。被拒绝时要写出提示语 PROMPT，客户端才知道该重新输入。',
            en: 'Whether a nickname is taken is taken(text): it compares folded forms, so Alice, ALICE and alice are one name. After refusing, write PROMPT again so the client knows to retype.',
          },
          {
            zh: "接受昵称：nick = text; users.set(nick, socket); 再用 write(socket, …) 写问候语 'hi X! type a line to talk, byebye to leave'。",
            en: "To accept it: nick = text; users.set(nick, socket); then write(socket, …) the greeting 'hi X! type a line to talk, byebye to leave'.",
          },
          {
            zh: "最后调用 broadcast(nick, '* ' + nick + ' joined')：发送者是新用户自己，所以只有其他人收到。",
            en: "Finish with broadcast(nick, '* ' + nick + ' joined'): the sender is the newcomer, so only the others get it.",
          },
        ],
      },
      {
        region: 'leave',
        task: {
          zh: "连接关闭时，如果这个用户已经有昵称：把他从 users 里删掉，并向其他人广播 '* X left'",
          en: "When the connection closes and this user has a nickname: remove them from users and broadcast '* X left' to the others",
        },
        hints: [
          {
            zh: "'close' 每个 socket 只触发一次，无论对方是 FIN 还是 RST，所以在这里通知离开不会重复。",
            en: "'close' fires once per socket, whether the peer sent a FIN or a reset, so a leave announced here is never doubled.",
          },
          {
            zh: '还没选昵称的连接（nick 为 undefined）不在房间里，什么都不用做。',
            en: 'A connection that never picked a nickname (nick is undefined) was never in the room: nothing to do.',
          },
          {
            zh: "骨架：if (nick !== undefined) { /* 从 users 删掉 nick */ broadcast(nick, '* ' + nick + ' left'); }",
            en: "The shape: if (nick !== undefined) { /* delete nick from users */ broadcast(nick, '* ' + nick + ' left'); }",
          },
        ],
      },
    ],
  },
  {
    id: '09',
    part: 'tcp',
    slug: '09-chat-v2',
    title: {
      zh: '聊天室 2.0：一个经得起折腾的行协议',
      en: 'Chat room v2: a line protocol that survives real clients',
    },
    roles: ['server', 'client'],
    notes: [
      {
        id: '001',
        about: {
          zh: '1.2.8 聊天室 2.0，以及 1.1.4、1.2.5、1.2.6',
          en: '1.2.8 chat room 2.0, plus 1.1.4, 1.2.5, 1.2.6',
        },
      },
      '002',
    ],
    bench: true,
    exercises: [
      {
        region: 'private-message',
        task: {
          zh: '实现 c:NICK:TEXT：从 rest 里拆出昵称和内容（格式不对回复用法），在房间里按名字找人；恰好一个就只发给他（"名字 (private): 内容"）并告诉发送者已送出；没有或不止一个就回一行错误，谁也不发',
          en: "Implement c:NICK:TEXT: split rest into the name and the text (reply with the usage when malformed), look the name up in the room; exactly one match gets the text alone ('NAME (private): TEXT') and the sender is told it was sent; none or several get one error line and nobody receives anything",
        },
        hints: [
          {
            zh: '名字里不会有冒号，所以 rest 里第一个冒号把昵称和内容分开，内容里还可以有冒号。',
            en: 'A name never contains a colon, so the first colon in rest separates the name from the text; the text may contain more colons.',
          },
          {
            zh: '用 [...room.values()].filter((u) => sameName(u.name, nick)) 找人（按折叠后的形式比较，ALICE 也能找到 alice）：长度 0 是"没有这个人"，大于 1 只可能是好几个 anonymous。',
            en: "Find people with [...room.values()].filter((u) => sameName(u.name, nick)) (folded, so ALICE finds alice): length 0 means no such user, more than 1 can only be several 'anonymous'.",
          },
          {
            zh: "恰好一个时：send(target, user.name + ' (private): ' + clean(text))，再 send(user, '* sent to ' + nick + ' only')；否则 send(user, \"! no user named '\" + nick + \"': message not sent\")。",
            en: "For exactly one: send(target, user.name + ' (private): ' + clean(text)), then send(user, '* sent to ' + nick + ' only'); otherwise send(user, \"! no user named '\" + nick + \"': message not sent\").",
          },
        ],
      },
      {
        region: 'line-limit',
        task: {
          zh: '给 onLines 加上行长上限：lineOptions.maxBytes 取 limits.maxLine；超长时让这个用户离开（原因 line too long），回一行错误并关闭连接',
          en: "Give onLines a line limit: lineOptions.maxBytes is limits.maxLine; on overflow the user leaves (reason 'line too long'), gets one error line, and the connection is closed",
        },
        hints: [
          {
            zh: 'labs/lib/lines.ts 的 onLines 接受 { maxBytes, onOverflow }：超过上限就停止缓存并调用 onOverflow。',
            en: 'onLines in labs/lib/lines.ts takes { maxBytes, onOverflow }: past the limit it stops buffering and calls onOverflow.',
          },
          {
            zh: '在 onOverflow 里先 socket.pause()（不再读它发来的任何字节），再 leave(user, ...) 通知其他人，最后用 close(socket, 最后一句) 礼貌地结束连接。',
            en: 'In onOverflow, first socket.pause() (read nothing more from that peer), then leave(user, ...) so the others are told, then close(socket, lastWords) to end the connection politely.',
          },
          {
            zh: "lineOptions.maxBytes = limits.maxLine; lineOptions.onOverflow = () => { socket.pause(); leave(user, 'line too long'); close(socket, '! line longer than ' + limits.maxLine + ' bytes: closing'); };",
            en: "lineOptions.maxBytes = limits.maxLine; lineOptions.onOverflow = () => { socket.pause(); leave(user, 'line too long'); close(socket, '! line longer than ' + limits.maxLine + ' bytes: closing'); };",
          },
        ],
      },
      {
        region: 'slow-consumer',
        task: {
          zh: '每次 write 之后检查 socket.writableLength：超过 limits.maxBuffered 就记一行日志、让这个用户离开（原因 too slow），并用 RST 立刻断开它',
          en: "After each write, check socket.writableLength: past limits.maxBuffered, log one line, make the user leave (reason 'too slow') and cut the connection at once with a reset",
        },
        hints: [
          {
            zh: 'write() 从不拒绝数据：对方不读时，字节先填满内核缓冲区，然后堆在 writableLength 里，也就是这个进程的内存里。',
            en: "write() never refuses data: when the peer does not read, bytes fill the kernel's buffers and then pile up in writableLength, this process's memory.",
          },
          {
            zh: '没法先告诉它再关：它根本不读。socket.resetAndDestroy() 发 RST，连内核里那几 MB 也一起释放。',
            en: 'You cannot tell it first: it does not read. socket.resetAndDestroy() sends a RST and frees the megabytes held in the kernel too.',
          },
          {
            zh: "if (socket.writableLength > limits.maxBuffered) { log(user.key + ' dropped: …'); leave(user, 'too slow'); socket.resetAndDestroy(); }",
            en: "if (socket.writableLength > limits.maxBuffered) { log(user.key + ' dropped: …'); leave(user, 'too slow'); socket.resetAndDestroy(); }",
          },
        ],
      },
    ],
  },
  {
    id: '10',
    part: 'udp',
    slug: '10-udp',
    title: { zh: '用 dgram 收发 UDP 数据报', en: 'UDP with dgram' },
    roles: ['server', 'client'],
    notes: [
      { id: '001', about: { zh: '第 2 节 UDP', en: 'section 2, UDP' } },
      { id: '002', about: { zh: 'TCP 与 UDP 的区别', en: 'TCP vs UDP' } },
    ],
    exercises: [
      {
        region: 'send-forms',
        task: {
          zh: "用 send(msg, port, address, cb) 把 'hello' 发给服务器；再用 send(buf, offset, length, port, address, cb) 只发出缓冲区 'hello, world' 里的 'world' 这 5 个字节。回调都用 sent(...) 生成",
          en: "Send 'hello' to the server with send(msg, port, address, cb); then send only the 5 bytes 'world' out of the buffer 'hello, world' with send(buf, offset, length, port, address, cb). Make both callbacks with sent(...)",
        },
        hints: [
          {
            zh: 'UDP 套接字不需要先连接：每次 send() 都写明目标端口和地址。',
            en: 'A UDP socket needs no connection: every send() names the destination port and address.',
          },
          {
            zh: "'world' 从 'hello, world' 的第 7 个字节开始，长 5 个字节：先 Buffer.from('hello, world')。",
            en: "'world' starts at byte 7 of 'hello, world' and is 5 bytes long: start with Buffer.from('hello, world').",
          },
          {
            zh: "socket.send('hello', port, host, sent(\"'hello' with send(msg, port, address)\")); 然后 socket.send(buf, 7, 5, port, host, sent(\"'world' with send(buf, 7, 5, port, address)\"));",
            en: "socket.send('hello', port, host, sent(\"'hello' with send(msg, port, address)\")); then socket.send(buf, 7, 5, port, host, sent(\"'world' with send(buf, 7, 5, port, address)\"));",
          },
        ],
      },
      {
        region: 'echo',
        task: {
          zh: '把收到的数据报原样发回给发送它的那个套接字；发送失败时用 log 打印一行原因',
          en: 'Send the datagram back, unchanged, to the socket that sent it; if sending fails, log one line saying why',
        },
        hints: [
          {
            zh: 'UDP 没有连接可以"回复"：发送者是谁，只有 rinfo 知道。',
            en: 'There is no connection to reply on: only rinfo knows who sent the datagram.',
          },
          {
            zh: 'socket.send(msg, rinfo.port, rinfo.address, (err) => { if (err) log(...) });',
            en: 'socket.send(msg, rinfo.port, rinfo.address, (err) => { if (err) log(...) });',
          },
        ],
      },
      {
        region: 'summary',
        task: {
          zh: "ping 结束后打印一行 'N pings sent, M replies, P% loss'（P 四舍五入为整数），若有回复，再打印一行 'rtt min/avg/max = a/b/c ms'（保留三位小数）",
          en: "After the pings, print 'N pings sent, M replies, P% loss' (P rounded to a whole number) and, if any reply came, 'rtt min/avg/max = a/b/c ms' (three decimals)",
        },
        hints: [
          {
            zh: 'rtts 数组里只有收到回复的那些 ping 的往返时间；丢失的个数是 count - rtts.length。',
            en: 'rtts holds the round-trip times of the pings that got a reply; the lost ones number count - rtts.length.',
          },
          {
            zh: 'Math.min(...rtts)、Math.max(...rtts)，平均值是总和除以个数；n.toFixed(3) 保留三位小数。',
            en: 'Math.min(...rtts), Math.max(...rtts), and the average is the sum divided by the count; n.toFixed(3) gives three decimals.',
          },
        ],
      },
    ],
  },
  {
    id: '11',
    part: 'udp',
    slug: '11-broadcast',
    title: { zh: 'UDP 广播', en: 'UDP broadcast' },
    roles: ['sender', 'receiver'],
    notes: [{ id: '001', about: { zh: '第 2.6 节 广播', en: 'section 2.6, broadcast' } }],
    exercises: [
      {
        region: 'set-broadcast',
        task: {
          zh: '当 setBroadcast 为 true 时，允许这个（已绑定的）套接字向广播地址发送',
          en: 'When setBroadcast is true, allow this (already bound) socket to send to a broadcast address',
        },
        hints: [
          {
            zh: '不做这一步，发往 127.255.255.255 的 send() 会以 EACCES 失败：内核要求套接字明确声明要广播（SO_BROADCAST）。',
            en: 'Without it, a send() to 127.255.255.255 fails with EACCES: the kernel wants the socket to say it means to broadcast (SO_BROADCAST).',
          },
          {
            zh: 'if (setBroadcast) socket.setBroadcast(true);',
            en: 'if (setBroadcast) socket.setBroadcast(true);',
          },
        ],
      },
      {
        region: 'receive',
        task: {
          zh: '为收到的每个数据报打印一行：received "内容" from 地址:端口 (N bytes)',
          en: 'Log one line for every datagram: received "TEXT" from ADDRESS:PORT (N bytes)',
        },
        hints: [
          {
            zh: 'msg 是 Buffer，rinfo 里有 address、port 和 size；hostPort() 会把地址和端口写成 127.0.0.1:41235 的样子。',
            en: 'msg is a Buffer; rinfo has address, port and size; hostPort() writes an address and a port as 127.0.0.1:41235.',
          },
          {
            zh: '用一个模板字符串拼出这一行：内容用 JSON.stringify(msg.toString())（引号和转义都有了），地址用 hostPort(rinfo.address, rinfo.port)，字节数用 rinfo.size，再交给 log()。',
            en: 'Build the line with one template string: the text as JSON.stringify(msg.toString()) (quotes and escapes for free), the address as hostPort(rinfo.address, rinfo.port), the size as rinfo.size; hand it to log().',
          },
        ],
      },
    ],
  },
  {
    id: '12',
    part: 'udp',
    slug: '12-multicast',
    title: { zh: 'UDP 组播', en: 'UDP multicast' },
    roles: ['sender', 'receiver'],
    notes: [{ id: '001', about: { zh: '2.7 节', en: 'section 2.7' } }],
    alsoTests: ['test/loopback-only.test.ts'],
    exercises: [
      {
        region: 'join',
        task: {
          zh: '让这个套接字在接口 iface 上加入组 group，然后打印一行 `joined <group> on interface <iface>`',
          en: 'Make this socket join the group `group` on the interface `iface`, then log `joined <group> on interface <iface>`',
        },
        hints: [
          {
            zh: '加入组播组是套接字上的一个方法，它有两个参数：组地址和接口地址。不写接口，内核会按路由表替你挑一块网卡。',
            en: 'Joining a group is a method of the socket with two arguments: the group and the interface address. Leave the interface out and the kernel picks a network card from the routing table.',
          },
          {
            zh: '`socket.addMembership(group, iface)`，再 `log(...)` 打印那一行。',
            en: '`socket.addMembership(group, iface)`, then `log(...)` the line.',
          },
        ],
      },
      {
        region: 'leave',
        task: {
          zh: '让这个套接字在接口 iface 上离开组 group，然后打印一行 `left <group>`',
          en: 'Make this socket leave the group `group` on the interface `iface`, then log `left <group>`',
        },
        hints: [
          {
            zh: '离开和加入是一对方法，参数也一样。',
            en: 'Leaving is the twin of joining and takes the same arguments.',
          },
          {
            zh: '`socket.dropMembership(group, iface)`，再用 `log()` 打印 left 加组地址。',
            en: '`socket.dropMembership(group, iface)`, then `log()` the word left and the group.',
          },
        ],
      },
    ],
  },
  {
    id: '13',
    part: 'protocols',
    slug: '13-framing',
    title: { zh: '消息分帧：粘包与拆包', en: 'Message framing: one data event is not one message' },
    roles: ['server', 'client'],
    notes: ['001', '002'],
    exercises: [
      {
        region: 'frame-decoder',
        task: {
          zh: '写长度前缀解码器：把收到的块攒起来，凑够 4 字节就读出大端无符号长度（超过 maxSize 就抛 FramingError），凑够这么多字节就 yield 一条消息；一个块里可能有半条、一条或好几条消息，头部也可能被切开；流结束时还剩半个帧就抛 FramingError',
          en: 'Write the length-prefix decoder: gather the chunks; once 4 bytes are there read the big-endian unsigned length (over maxSize: throw a FramingError), once that many bytes are there yield one message; a chunk may hold half a message, one, or several, and may cut a header; a stream that ends inside a frame throws a FramingError',
        },
        hints: [
          {
            zh: '需要跨块保存的状态只有两样：还没交出去的字节（parts 和它们的总长 have），以及当前帧头说的长度（还没读到头时为 -1）。',
            en: 'Only two things must survive from one chunk to the next: the bytes not yet handed out (parts and their total, have), and the size the current header announced (-1 while the header is incomplete).',
          },
          {
            zh: '写一个 take(n)：把 parts 拼起来（只有一块时不用拼），返回前 n 个字节，其余留在 parts 里。每来一块，就循环：没读头且 have >= 4 时读头；读了头且 have >= size 时交出一条消息；两样都不够就等下一块。',
            en: 'Write take(n): join parts (no copy when there is only one), return the first n bytes and keep the rest. For each chunk, loop: with no header yet and have >= 4, read one; with a header and have >= size, hand out a message; with neither, wait for the next chunk.',
          },
          {
            zh: "size = take(4).readUInt32BE(0); if (size > maxSize) throw new FramingError('frame header announces ' + size + ' bytes, over the limit of ' + maxSize); 循环结束后：size !== -1 或 have > 0 说明流停在半个帧里，分别抛出 'the stream ended inside a frame (…)' 和 '…inside a frame header (…)'。",
            en: "size = take(4).readUInt32BE(0); if (size > maxSize) throw new FramingError('frame header announces ' + size + ' bytes, over the limit of ' + maxSize); after the loop, size !== -1 or have > 0 means the stream stopped inside a frame: throw 'the stream ended inside a frame (…)' or '…inside a frame header (…)'.",
          },
        ],
      },
    ],
  },
  {
    id: '14',
    part: 'protocols',
    slug: '14-http',
    title: { zh: 'HTTP/1.1 就是 TCP 上的文本', en: 'HTTP/1.1 is text over TCP' },
    roles: ['server', 'raw'],
    notes: ['002', '003'],
    bench: true,
    exercises: [
      {
        region: 'chunked',
        task: {
          zh: '写 chunked 编码的响应体：每个非空的片段写成"十六进制长度 CRLF 字节 CRLF"，最后写一个长度为 0 的块 "0\\r\\n\\r\\n" 表示结束',
          en: 'Write a chunked body: each non-empty piece as "size in hex, CRLF, the bytes, CRLF", then the last chunk of size 0, "0\\r\\n\\r\\n", to end the body',
        },
        hints: [
          {
            zh: '长度是字节数，不是字符数："你好\\n" 是 7 个字节。先 Buffer.from(piece)，再看 .length。',
            en: 'The size counts bytes, not characters: "你好\\n" is 7 bytes. Buffer.from(piece) first, then .length.',
          },
          {
            zh: '空片段要跳过：长度为 0 的块就是"结束"。十六进制用 n.toString(16)。',
            en: 'Skip empty pieces: a chunk of size 0 means "the end". Hex is n.toString(16).',
          },
          {
            zh: "for (const piece of pieces) { const bytes = Buffer.from(piece); if (!bytes.length) continue; socket.write(bytes.length.toString(16) + '\\r\\n'); socket.write(bytes); socket.write('\\r\\n'); } socket.write('0\\r\\n\\r\\n');",
            en: "for (const piece of pieces) { const bytes = Buffer.from(piece); if (!bytes.length) continue; socket.write(bytes.length.toString(16) + '\\r\\n'); socket.write(bytes); socket.write('\\r\\n'); } socket.write('0\\r\\n\\r\\n');",
          },
        ],
      },
    ],
  },
  {
    id: '15',
    part: 'protocols',
    slug: '15-websocket',
    title: { zh: 'WebSocket：在裸套接字上握手与分帧', en: 'WebSocket on the raw socket' },
    roles: ['server', 'chat'],
    notes: ['003'],
    exercises: [
      {
        region: 'accept-key',
        task: {
          zh: '计算 Sec-WebSocket-Accept：把客户端的 key 和 GUID 拼起来，求 SHA-1，再写成 base64，赋给 accept',
          en: "Compute Sec-WebSocket-Accept: append the GUID to the client's key, take the SHA-1 of that, write it in base64, and assign it to accept",
        },
        hints: [
          {
            zh: 'RFC 6455 §4.2.2 第 5 步：服务器不解码 key，直接把这 24 个字符和 GUID 当作字符串拼接。',
            en: 'RFC 6455 §4.2.2, step 5: the server does not decode the key; it appends the GUID to those 24 characters as a string.',
          },
          {
            zh: "node:crypto 的 createHash('sha1') 有 update() 和 digest()；digest('base64') 直接给出 base64 文本。",
            en: "createHash('sha1') from node:crypto has update() and digest(); digest('base64') gives the base64 text directly.",
          },
          {
            zh: "accept = createHash('sha1').update(key + GUID).digest('base64'); 用 RFC 的例子检查：dGhlIHNhbXBsZSBub25jZQ== 得到 s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            en: "accept = createHash('sha1').update(key + GUID).digest('base64'); check it with the RFC's example: dGhlIHNhbXBsZSBub25jZQ== gives s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
          },
        ],
      },
      {
        region: 'frame-length',
        task: {
          zh: '读出扩展长度：7 位长度是 126 时，后面 2 个字节（大端）才是长度；是 127 时，后面 8 个字节（大端，最高位必须是 0）才是长度。更新 length 和 at（载荷或掩码键开始的位置），字节还没到齐就返回 undefined',
          en: 'Read the extended length: when the 7-bit length is 126, the next 2 bytes (big-endian) are the length; when it is 127, the next 8 bytes (big-endian, top bit 0) are. Update length and at (where the masking key or payload starts), and return undefined while those bytes have not all arrived',
        },
        hints: [
          {
            zh: '帧头：第 2 个字节的低 7 位是长度；0-125 就是长度本身，126 和 127 是“往后看”的记号（RFC 6455 §5.2）。',
            en: 'The header: the low 7 bits of the second byte are the length; 0-125 is the length itself, 126 and 127 say "look further" (RFC 6455 §5.2).',
          },
          {
            zh: 'buf.readUInt16BE(2) 读 2 字节长度，此时 at = 4；buf.readBigUInt64BE(2) 读 8 字节长度（BigInt），此时 at = 10。读之前先看 buf.length 够不够。',
            en: 'buf.readUInt16BE(2) reads the 2-byte length, and then at = 4; buf.readBigUInt64BE(2) reads the 8-byte one (a BigInt), and then at = 10. Check buf.length first.',
          },
          {
            zh: 'if (length === 126) { if (buf.length < 4) return undefined; length = buf.readUInt16BE(2); at = 4; } else if (length === 127) { …readBigUInt64BE(2)，最高位为 1 就 throw new ProtocolError(1002, …)，否则 length = Number(big); at = 10; }',
            en: 'if (length === 126) { if (buf.length < 4) return undefined; length = buf.readUInt16BE(2); at = 4; } else if (length === 127) { …readBigUInt64BE(2); top bit set: throw new ProtocolError(1002, …); else length = Number(big); at = 10; }',
          },
        ],
      },
      {
        region: 'unmask',
        task: {
          zh: '去掉客户端的掩码：masked 时，载荷的第 i 个字节与掩码键（从 buf[maskAt] 开始的 4 个字节）的第 i % 4 个字节做异或',
          en: 'Unmask the payload: when masked, XOR byte i of the payload with byte i % 4 of the masking key (the 4 bytes starting at buf[maskAt])',
        },
        hints: [
          {
            zh: '客户端发出的每一帧都带 4 字节掩码键（RFC 6455 §5.3），为的是让中间的代理无法把帧误当成 HTTP 缓存下来；服务器用同一个键再异或一次就还原了。',
            en: 'Every client frame carries a 4-byte masking key (RFC 6455 §5.3), so that proxies in between cannot mistake it for HTTP and cache it; XOR with the same key again restores it.',
          },
          {
            zh: 'payload 是一份拷贝，可以原地修改：payload[i] = payload[i] ^ buf[maskAt + (i % 4)]。',
            en: 'payload is a copy, so change it in place: payload[i] = payload[i] ^ buf[maskAt + (i % 4)].',
          },
        ],
      },
    ],
  },
  {
    id: '16',
    part: 'protocols',
    slug: '16-tls',
    title: { zh: 'TLS 与 HTTPS：运行时现做的 CA', en: 'TLS and HTTPS with a CA made at run time' },
    roles: ['server', 'https', 'client'],
    notes: ['003'],
    exercises: [
      {
        region: 'san',
        task: {
          zh: '给证书加上 subjectAltName 扩展：把 names（如 DNS:localhost、IP:127.0.0.1）用逗号连起来，作为一行 subjectAltName=… 放进 ext',
          en: 'Give the certificate its subjectAltName extension: join names (such as DNS:localhost, IP:127.0.0.1) with commas and push one line subjectAltName=… onto ext',
        },
        hints: [
          {
            zh: '浏览器只拿主机名核对 subjectAltName，完全不看 CN；Node 只在证书里没有任何 DNS 名字时才退回去看 CN；按 IP 地址连接时，证书里必须有 IP: 这一项。',
            en: 'Browsers check the host name against subjectAltName only and ignore the CN; Node falls back to the CN only when there is no DNS name at all; to connect by IP address the certificate needs an IP: entry.',
          },
          {
            zh: 'ext 里的每一行最后都写进 openssl x509 -extfile 读的文件，格式是 名字=值。',
            en: 'Every line of ext ends up in the file that openssl x509 -extfile reads, one name=value per line.',
          },
          {
            zh: "ext.push('subjectAltName=' + names.join(','));",
            en: "ext.push('subjectAltName=' + names.join(','));",
          },
        ],
      },
      {
        region: 'report',
        task: {
          zh: "写出握手的结果，两行：'protocol 版本, cipher 名字, ALPN 协议（没有就写 none）, authorized 真假'，以及 'peer certificate: subject …; issuer …; SAN …'（用 dn() 把名字写成 CN=…）",
          en: "Report what the handshake settled, in two lines: 'protocol VERSION, cipher NAME, ALPN PROTOCOL (none if none), authorized BOOLEAN' and 'peer certificate: subject …; issuer …; SAN …' (dn() writes a name as CN=…)",
        },
        hints: [
          {
            zh: 'TLSSocket 有 getProtocol()、getCipher()、alpnProtocol、authorized 和 getPeerCertificate()。',
            en: 'A TLSSocket has getProtocol(), getCipher(), alpnProtocol, authorized and getPeerCertificate().',
          },
          {
            zh: '证书对象里有 subject、issuer（对象）和 subjectaltname（字符串）；没协商 ALPN 时 alpnProtocol 是 false。',
            en: 'The certificate object has subject and issuer (objects) and subjectaltname (a string); with no ALPN agreed, alpnProtocol is false.',
          },
          {
            zh: "lines.push('protocol ' + socket.getProtocol() + ', cipher ' + socket.getCipher().name + ', ALPN ' + (socket.alpnProtocol || 'none') + ', authorized ' + socket.authorized); 然后 const cert = socket.getPeerCertificate(); 再 push 第二行",
            en: "lines.push('protocol ' + socket.getProtocol() + ', cipher ' + socket.getCipher().name + ', ALPN ' + (socket.alpnProtocol || 'none') + ', authorized ' + socket.authorized); then const cert = socket.getPeerCertificate(); and push the second line",
          },
        ],
      },
    ],
  },
];
