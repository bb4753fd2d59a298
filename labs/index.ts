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

export interface Lab {
  /** Two digits, '01'. */
  id: string;
  /** `NN-name`: names labs/NN-name.ts, docs/NN-name.md, docs/en/NN-name.md and test/NN-name.test.ts. */
  slug: string;
  title: Localized;
  /** One line: what the reader can do after this chapter. */
  goal: Localized;
  /** The roles the lab plays besides its demo (run with no role). */
  roles: readonly string[];
  /** The study notes (../shared/notes) this chapter covers, by number. */
  notes: readonly string[];
  exercises: readonly Exercise[];
}

/** Pages that are not a lab (they have a zh page and an en twin, but no lab file or test). */
export interface Guide {
  slug: string;
  title: Localized;
}

export const guides: readonly Guide[] = [
  { slug: '00-how-to-use', title: { zh: '如何使用本工作簿', en: 'How to use this workbook' } },
  { slug: 'teachers', title: { zh: '教师指南', en: 'For teachers' } },
];

export const labs: readonly Lab[] = [
  {
    id: '01',
    slug: '01-basic-tcp',
    title: { zh: '分层模型与第一个 TCP 服务', en: 'Layers, sockets and a first TCP server' },
    goal: {
      zh: '用 net 写出会打招呼并回显的服务器和客户端，看清一条连接由五元组命名、HTTP 只是 TCP 上的文本',
      en: 'Write a greeting echo server and its client, see that a connection is named by its five-tuple and that HTTP is text over TCP',
    },
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
    slug: '02-handshake',
    title: { zh: '三次握手与四次挥手', en: 'The three-way handshake and the four-way close' },
    goal: {
      zh: '看见内核替你完成握手、连接在 backlog 队列里排队、FIN 只关闭一个方向（半关闭），并从 /proc/net/tcp 读出每一步的 TCP 状态',
      en: 'See the kernel complete the handshake for you, connections queue in the backlog, a FIN close one direction only (half-close), and read the TCP state at each step from /proc/net/tcp',
    },
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
  // lab 03 goes here
  // lab 04 goes here
  // lab 05 goes here
  // lab 06 goes here
  // lab 07 goes here
  // lab 08 goes here
  // lab 09 goes here
  // lab 10 goes here
  // lab 11 goes here
  // lab 12 goes here
];
