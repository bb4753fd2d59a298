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
  // lab 02 goes here
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
