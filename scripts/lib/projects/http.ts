// The http project: a static-file HTTP/1.1 server (chapter 14's protocol), built stage by stage from an empty
// file. Each stage's steps are what the tester really does; the README and the page render these same steps.
// No Buffer here: the page renders these steps in the browser too.
import type { Project, ResponseStep, Rng, Stage, Step } from './types.ts';

export const http = {
  /** Request line and headers together, before the empty line that ends them. */
  maxHead: 8192,
  host: 'Host: 127.0.0.1',
};

// Small step builders: the stages below read like the dialogue they are.
const connect = (who: string): Step => ({ op: 'connect', who });
const send = (who: string, data: string, split?: 'bytes' | number[]): Step =>
  split ? { op: 'send', who, data, split } : { op: 'send', who, data };
const closed = (who: string): Step => ({ op: 'closed', who });
const close = (who: string): Step => ({ op: 'close', who });
const file = (path: string, data: string | Uint8Array, outside = false): Step =>
  outside ? { op: 'file', path, data, outside } : { op: 'file', path, data };
/** A GET request, every line ending with \r\n, the empty line included. */
const get = (target: string, extra: string[] = []) =>
  `GET ${target} HTTP/1.1\r\n${[http.host, ...extra].map((h) => `${h}\r\n`).join('')}\r\n`;
const ok = (who: string, name: string, data: string | Uint8Array): ResponseStep => ({
  op: 'response',
  who,
  status: [200],
  framing: 'length',
  body: data,
  file: name,
});
const error = (who: string, status: number[], extra: Partial<ResponseStep> = {}): ResponseStep => ({
  op: 'response',
  who,
  status,
  framing: 'length',
  nonEmpty: true,
  ...extra,
});
const listing = (who: string, lines: string[]): ResponseStep => ({
  op: 'response',
  who,
  status: [200],
  framing: 'chunked',
  lines,
});

/** Names the seed makes: `maple-417.txt`; never the same twice in one stage. */
function namer(rng: Rng) {
  const taken = new Set<string>();
  return (ext: string, prefix = '') => {
    for (;;) {
      const name = `${prefix}${rng.word()}-${rng.int(1000)}${ext}`;
      if (!taken.has(name)) {
        taken.add(name);
        return name;
      }
    }
  };
}

/** A few lines of words with a character that is 3 bytes in UTF-8: its size in bytes is not its length. */
function text(rng: Rng): string {
  const lines = Array.from({ length: 2 + rng.int(4) }, () => `${rng.word()} ${rng.word()} ${rng.int(10000)}`);
  return `${lines.join('\n')}\n你好, ${rng.word()}!\n`;
}

/** Random bytes, with NUL, CR, LF and bytes that are never valid UTF-8 near the start. */
function binary(rng: Rng, size: number): Uint8Array {
  const bytes = Uint8Array.from({ length: size }, () => rng.int(256));
  bytes.set([0x89, 0x00, 0x0d, 0x0a, 0xff, 0xfe, 0xc3], 0);
  return bytes;
}

const stages: Stage[] = [
  {
    slug: 'bind',
    title: { en: 'Bind and accept', zh: '绑定并接受连接' },
    points: 5,
    spec: {
      en: '`run.sh` is started with `--port N --root DIR`. Listen on TCP port N of 127.0.0.1 (or of every interface) and accept connections. DIR is a folder the tester fills with files before it starts your program (a fresh one for every stage; the dialogues call it ROOT). Here the tester only connects.',
      zh: '`run.sh` 启动时带 `--port N --root DIR`。在 127.0.0.1（或所有接口）的 TCP 端口 N 上监听并接受连接。DIR 是测试器在启动你的程序之前放好文件的文件夹（每个阶段都是新的；对话里叫它 ROOT）。本阶段测试器只负责连接。',
    },
    hint: {
      en: 'read --port N and --root DIR from the arguments (an argument parser that rejects unknown options must know both) and listen on the port',
      zh: '从参数里读出 --port N 和 --root DIR（拒绝未知选项的参数解析器必须认识这两个）并在端口上监听',
    },
    steps: (rng) => [file(namer(rng)('.txt'), text(rng)), connect('A')],
  },
  {
    slug: 'file',
    title: { en: 'Serve a file', zh: '提供一个文件' },
    points: 15,
    spec: {
      en: [
        'A request is a request line `GET /PATH HTTP/1.1`, header lines `Name: value`, and an empty line; every line ends with `\\r\\n`. Read up to the empty line, then answer a GET for a file under ROOT with the status line `HTTP/1.1 200 OK`, a header `Content-Length: N` (the size of the file in bytes), an empty line, and the exact bytes of the file: text or binary.',
        'The path is the request target up to a `?` (the query is ignored); `/a/b.txt` is the file ROOT/a/b.txt. Here every request comes on a connection of its own, which the tester closes after the response. Other headers are up to you (`Content-Type` is a good idea).',
      ].join('\n\n'),
      zh: [
        '请求由请求行 `GET /PATH HTTP/1.1`、若干 `Name: value` 头部行和一个空行组成，每一行都以 `\\r\\n` 结尾。读到空行为止，然后对 ROOT 下某个文件的 GET 回答：状态行 `HTTP/1.1 200 OK`、头部 `Content-Length: N`（文件的字节数）、一个空行，以及文件一字不差的字节——文本或二进制都一样。',
        '路径是请求目标里 `?` 之前的部分（查询串忽略）；`/a/b.txt` 就是文件 ROOT/a/b.txt。本阶段每个请求都走自己的连接，测试器收到响应后关闭它。其他头部随你（带上 `Content-Type` 是个好主意）。',
      ].join('\n\n'),
    },
    hint: {
      en: 'read the request up to the empty line, take the path from the request line, read ROOT + path as bytes (no encoding), then write the status line, Content-Length, the empty line and those bytes',
      zh: '读到请求的空行为止，从请求行取出路径，按字节（不指定编码）读取 ROOT + 路径，然后写出状态行、Content-Length、空行和这些字节',
    },
    steps: (rng) => {
      const name = namer(rng);
      const [t, b, dir] = [name('.txt'), name('.bin'), rng.word()];
      const inner = name('.txt');
      const [tData, bData, iData] = [text(rng), binary(rng, 30000 + rng.int(20000)), text(rng)];
      return [
        file(t, tData),
        file(b, bData),
        file(`${dir}/${inner}`, iData),
        connect('A'),
        send('A', get(`/${t}`)),
        ok('A', t, tData),
        close('A'),
        connect('B'),
        send('B', get(`/${b}`, ['Accept: */*'])),
        ok('B', b, bData),
        close('B'),
        connect('C'),
        send('C', get(`/${dir}/${inner}?v=${rng.int(100)}`)),
        ok('C', `${dir}/${inner}`, iData),
        close('C'),
      ];
    },
  },
  {
    slug: 'missing',
    title: { en: 'Not found', zh: '找不到' },
    points: 10,
    spec: {
      en: 'A GET for a path with no file under ROOT gets `HTTP/1.1 404 Not Found`, with a short text body saying so and its `Content-Length`. From here on every error response carries a short text body (any words) and its `Content-Length`. The server stays up: a file asked for afterwards is still served.',
      zh: '对 ROOT 下不存在的文件的 GET 回答 `HTTP/1.1 404 Not Found`，正文是一小段说明找不到的文字，并带上它的 `Content-Length`。从这里开始，每个错误响应都带一小段文字正文（内容随意）和它的 `Content-Length`。服务器不能倒下：之后请求的文件照样要提供。',
    },
    hint: {
      en: 'opening a missing file fails (ENOENT): catch that and answer 404; in Node an exception thrown from an event handler ends the whole process',
      zh: '打开不存在的文件会失败（ENOENT）：捕获它并回答 404；在 Node 里，从事件处理函数抛出的异常会结束整个进程',
    },
    steps: (rng) => {
      const name = namer(rng);
      const [t, missing, dir] = [name('.txt'), name('.txt'), rng.word()];
      const data = text(rng);
      return [
        file(t, data),
        connect('A'),
        send('A', get(`/${missing}`)),
        error('A', [404]),
        close('A'),
        connect('B'),
        send('B', get(`/${dir}/${missing}`)),
        error('B', [404]),
        close('B'),
        connect('C'),
        send('C', get(`/${t}`)),
        ok('C', t, data),
        close('C'),
      ];
    },
  },
  {
    slug: 'keep-alive',
    title: { en: 'Keep-alive and pipelining', zh: '保持连接与流水线' },
    points: 15,
    spec: {
      en: 'In HTTP/1.1 a connection stays open after a response (keep-alive is the default): read the next request on the same connection. Answer requests in the order they came, also several sent in one write (pipelining): the bytes after one request are the start of the next. A request with the header `Connection: close` is answered, then the server closes the connection (its response may say `Connection: close` too).',
      zh: 'HTTP/1.1 里连接在响应之后保持打开（默认就是 keep-alive）：在同一个连接上读下一个请求。按到达顺序回答请求，一次写入好几个（流水线）也一样：一个请求之后的字节就是下一个请求的开头。带 `Connection: close` 头部的请求，回答之后服务器关闭连接（响应里也可以写上 `Connection: close`）。',
    },
    hint: {
      en: 'after a response keep the connection and go on reading: keep the bytes after one request, they begin the next; close only after a request that says Connection: close',
      zh: '响应之后保留连接、继续读：一个请求之后的字节要留着，它们是下一个请求的开头；只有请求里写了 Connection: close 才关闭',
    },
    steps: (rng) => {
      const name = namer(rng);
      const [f1, f2, missing] = [name('.txt'), name('.txt'), name('.txt')];
      const [d1, d2] = [text(rng), text(rng)];
      return [
        file(f1, d1),
        file(f2, d2),
        connect('A'),
        send('A', get(`/${f1}`)),
        ok('A', f1, d1),
        send('A', get(`/${missing}`)),
        error('A', [404]),
        send('A', get(`/${f2}`)),
        ok('A', f2, d2),
        send('A', get(`/${f2}`) + get(`/${f1}`)),
        ok('A', f2, d2),
        ok('A', f1, d1),
        send('A', get(`/${f1}`, ['Connection: close'])),
        ok('A', f1, d1),
        closed('A'),
      ];
    },
  },
  {
    slug: 'framing',
    title: { en: 'Framing', zh: '分帧' },
    points: 15,
    spec: {
      en: [
        "TCP delivers bytes, not requests: one 'data' (one `recv`) can hold part of a request, or the end of one and the start of the next. The tester sends a request one byte at a time, a request cut at random bytes (one cut between a `\\r` and its `\\n`), and a POST with a body, cut inside the body and followed by a GET in the same write.",
        "Only GET is served: any other method gets `HTTP/1.1 405 Method Not Allowed` with the header `Allow: GET`. First read and throw away the request's body: its `Content-Length` says how many bytes follow the empty line, and the next request starts right after them.",
      ].join('\n\n'),
      zh: [
        "TCP 传的是字节而不是请求：一次 'data'（一次 `recv`）可能只是请求的一部分，也可能是一个请求的结尾加下一个请求的开头。测试器会逐字节发送一个请求，在随机字节处切开一个请求（其中一刀切在 `\\r` 和它的 `\\n` 之间），再发一个带正文的 POST，在正文中间切开，后面同一次写入里紧跟一个 GET。",
        '只提供 GET：其他方法一律回答 `HTTP/1.1 405 Method Not Allowed`，并带头部 `Allow: GET`。先把请求的正文读完扔掉：它的 `Content-Length` 说明空行之后还有多少字节，下一个请求紧接在这些字节之后开始。',
      ].join('\n\n'),
    },
    hint: {
      en: "keep the bytes of an unfinished request until more arrive (one 'data' is not one request), and after the headers skip Content-Length more bytes, the body, before parsing the next request",
      zh: "把没收完的请求的字节留到下一块数据到来（一次 'data' 不等于一个请求）；读完头部后，先跳过 Content-Length 个字节的正文，再解析下一个请求",
    },
    steps: (rng) => {
      const name = namer(rng);
      const [f1, f2] = [name('.txt'), name('.txt')];
      const [d1, d2] = [text(rng), text(rng)];
      const cut = get(`/${f2}`, [`User-Agent: ${rng.word()}/${rng.int(10)}`, 'Accept: */*']);
      const crAt = cut.indexOf('\r\n', cut.indexOf(http.host)) + 1;
      const firstCut = 1 + rng.int(crAt - 2);
      const lastCut = crAt + 2 + rng.int(cut.length - crAt - 3);
      const body = `${rng.word()}=${rng.word()}&${rng.word()}=${rng.int(1000)}`;
      const head = `POST /${f1} HTTP/1.1\r\n${http.host}\r\nContent-Length: ${body.length}\r\n\r\n`;
      const inBody = 1 + rng.int(body.length - 2);
      return [
        file(f1, d1),
        file(f2, d2),
        connect('A'),
        send('A', get(`/${f1}`), 'bytes'),
        ok('A', f1, d1),
        send('A', cut, [firstCut, crAt, lastCut]),
        ok('A', f2, d2),
        send('A', head + body.slice(0, inBody)),
        send('A', body.slice(inBody) + get(`/${f2}`)),
        error('A', [405], { headers: { Allow: 'GET' } }),
        ok('A', f2, d2),
        send('A', get(`/${f1}`)),
        ok('A', f1, d1),
      ];
    },
  },
  {
    slug: 'concurrent',
    title: { en: 'Many connections at once', zh: '同时服务多个连接' },
    points: 15,
    spec: {
      en: 'Serve every connection at the same time. The tester opens a connection that sends nothing, and another that sends a request without its final empty line; then two more connections send whole requests, which must be answered at once while the first two wait. Then the unfinished request is finished, and answered. A server that reads one connection until it is done (or blocks in `recv` on it) fails here: use callbacks, a thread per connection, or an event loop (`selectors`, `asyncio`).',
      zh: '同时服务每一个连接。测试器先打开一个什么都不发的连接，再打开一个发送请求却不发最后那个空行的连接；接着另外两个连接发送完整的请求，它们必须立刻得到回答，前两个连接则继续等着。然后那个没发完的请求补完，也要得到回答。一个连接处理完（或在它的 `recv` 上阻塞）才处理下一个的服务器在这里会失败：用回调、每连接一个线程，或者事件循环（`selectors`、`asyncio`）。',
    },
    hint: {
      en: 'a server that serves one connection until it ends keeps everyone else waiting: handle each connection with its own callbacks (or thread, or task)',
      zh: '一次只服务一个连接、直到它结束的服务器会让其他人一直等：每个连接用自己的回调（或线程、协程）处理',
    },
    steps: (rng) => {
      const name = namer(rng);
      const [f1, f2, f3, missing] = [name('.txt'), name('.txt'), name('.bin'), name('.txt')];
      const [d1, d2, d3] = [text(rng), text(rng), binary(rng, 2000 + rng.int(3000))];
      const half = get(`/${f1}`);
      return [
        file(f1, d1),
        file(f2, d2),
        file(f3, d3),
        connect('A'),
        connect('B'),
        send('B', half.slice(0, -2)),
        connect('C'),
        send('C', get(`/${f2}`)),
        ok('C', f2, d2),
        connect('D'),
        send('D', get(`/${missing}`)),
        error('D', [404]),
        send('C', get(`/${f3}`)),
        ok('C', f3, d3),
        send('B', '\r\n'),
        ok('B', f1, d1),
        close('C'),
        send('D', get(`/${f2}`)),
        ok('D', f2, d2),
      ];
    },
  },
  {
    slug: 'chunked',
    title: { en: 'Directory listings, chunked', zh: '目录列表与分块传输' },
    points: 10,
    spec: {
      en: [
        'A GET for a directory, its path ending in `/` (`/` is ROOT itself), answers `200 OK` with a listing: one line per entry, its name (UTF-8) followed by `/` if it is a directory, then `\\n`, in any order.',
        'Send it with `Transfer-Encoding: chunked` and no `Content-Length`: a server writes a listing as it reads the directory, before it knows how long it will be. Each chunk is its size in bytes in hex, `\\r\\n`, the bytes, `\\r\\n`; the chunk of size 0 and an empty line (`0\\r\\n\\r\\n`) end the body. One chunk per entry is fine. The tester decodes the chunks, checks the lines, and then asks for a file on the same connection. (What `/dir` without the final `/` does is up to you: the tester does not ask.)',
      ].join('\n\n'),
      zh: [
        '对目录（路径以 `/` 结尾，`/` 就是 ROOT 本身）的 GET 回答 `200 OK` 和一份列表：每一项一行，是它的名字（UTF-8），如果是目录就在后面加 `/`，然后是 `\\n`，顺序不限。',
        '用 `Transfer-Encoding: chunked` 发送，不带 `Content-Length`：服务器边读目录边写列表，写头部的时候还不知道它有多长。每一块是十六进制的字节数、`\\r\\n`、这些字节、`\\r\\n`；大小为 0 的块加一个空行（`0\\r\\n\\r\\n`）结束正文。每项一块就可以。测试器解码这些块、检查各行，然后在同一个连接上再请求一个文件。（不带结尾 `/` 的 `/dir` 怎么处理随你：测试器不会问。）',
      ].join('\n\n'),
    },
    hint: {
      en: 'write "Transfer-Encoding: chunked", then each piece as its size in bytes (hex), \\r\\n, the bytes, \\r\\n, and 0\\r\\n\\r\\n at the end',
      zh: '写出 "Transfer-Encoding: chunked"，然后每一块是十六进制的字节数、\\r\\n、这些字节、\\r\\n，最后是 0\\r\\n\\r\\n',
    },
    steps: (rng) => {
      const name = namer(rng);
      const [t, b, utf8, dir] = [name('.txt'), name('.bin'), name('.txt', '笔记-'), rng.word()];
      const [i1, i2] = [name('.txt'), name('.txt')];
      const [dt, di] = [text(rng), text(rng)];
      return [
        file(t, dt),
        file(b, binary(rng, 100 + rng.int(200))),
        file(utf8, text(rng)),
        file(`${dir}/${i1}`, di),
        file(`${dir}/${i2}`, text(rng)),
        connect('A'),
        send('A', get('/')),
        listing('A', [t, b, utf8, `${dir}/`]),
        send('A', get(`/${dir}/`)),
        listing('A', [i1, i2]),
        send('A', get(`/${dir}/${i1}`)),
        ok('A', `${dir}/${i1}`, di),
      ];
    },
  },
  {
    slug: 'garbage',
    title: { en: 'Untrusted requests', zh: '不可信的请求' },
    points: 15,
    spec: {
      en: [
        'Treat every request as untrusted. A request line that is not `METHOD /TARGET HTTP/1.1` (or `HTTP/1.0`; single spaces, the target starting with `/`), or a header line without a colon, gets `HTTP/1.1 400 Bad Request`, then the server closes the connection: it cannot know where the next request would start.',
        `More than ${http.maxHead} bytes without the empty line that ends the headers gets \`HTTP/1.1 431 Request Header Fields Too Large\` (400 is accepted too) as soon as they have arrived, then the server closes the connection: never buffer a peer's bytes without a bound.`,
        'A path that leaves ROOT (`..`, as is or percent-encoded as `%2e%2e`) gets 403 or 404, never the file: resolve the path, then check it is still inside ROOT. Afterwards the server still serves a file.',
      ].join('\n\n'),
      zh: [
        '把每个请求都当作不可信的。请求行不是 `METHOD /TARGET HTTP/1.1`（或 `HTTP/1.0`；单个空格分隔，目标以 `/` 开头），或者某个头部行没有冒号：回答 `HTTP/1.1 400 Bad Request`，然后关闭连接——服务器已经没法知道下一个请求从哪里开始了。',
        `超过 ${http.maxHead} 字节还没出现结束头部的空行：一收到就回答 \`HTTP/1.1 431 Request Header Fields Too Large\`（400 也算对），然后关闭连接——绝不无限制地缓存对端的字节。`,
        '离开 ROOT 的路径（`..`，原样或百分号编码成 `%2e%2e`）回答 403 或 404，绝不返回那个文件：先解析路径，再检查它仍在 ROOT 里面。之后服务器照样能提供文件。',
      ].join('\n\n'),
    },
    hint: {
      en: 'check the request line and every header line, count the bytes you buffer before the empty line, and check that a resolved path is still inside ROOT',
      zh: '检查请求行和每个头部行，数一数空行之前缓存了多少字节，并检查解析后的路径仍在 ROOT 里面',
    },
    steps: (rng) => {
      const name = namer(rng);
      const [f1, secret, dir] = [name('.txt'), name('.txt', 'secret-'), rng.word()];
      const d1 = text(rng);
      const hidden = `${rng.word()} ${rng.int(1_000_000)} top secret\n`;
      const badLines = [
        `${rng.word()}\r\n\r\n`,
        `GET /${f1}\r\n${http.host}\r\n\r\n`,
        `GET ${f1} HTTP/1.1\r\n${http.host}\r\n\r\n`,
        `GET /${f1} HTTP/1.1 ${rng.word()}\r\n${http.host}\r\n\r\n`,
      ];
      const noColon = `GET /${f1} HTTP/1.1\r\n${http.host}\r\nX-${rng.word()} ${rng.word()}\r\n\r\n`;
      // Header lines of 100 bytes, past the limit, and never the empty line.
      let big = `GET /${f1} HTTP/1.1\r\n${http.host}\r\n`;
      const over = http.maxHead + rng.int(1000);
      for (let i = 0; big.length <= over; i++)
        big += `X-Fill-${String(i).padStart(3, '0')}: ${'a'.repeat(85)}\r\n`;
      const without = { text: hidden, file: secret };
      return [
        file(f1, d1),
        file(`${dir}/${name('.txt')}`, text(rng)),
        file(secret, hidden, true),
        connect('A'),
        send('A', rng.pick(badLines)),
        error('A', [400]),
        closed('A'),
        connect('B'),
        send('B', noColon),
        error('B', [400]),
        closed('B'),
        connect('C'),
        send('C', big),
        error('C', [431, 400]),
        closed('C'),
        connect('D'),
        send('D', get(`/../${secret}`)),
        error('D', [403, 404], { without }),
        send('D', get(`/${dir}/../../${secret}`)),
        error('D', [403, 404], { without }),
        send('D', get(`/%2e%2e/${secret}`)),
        error('D', [403, 404], { without }),
        send('D', get(`/${f1}`)),
        ok('D', f1, d1),
      ];
    },
  },
];

export const httpProject: Project = {
  name: 'http',
  args: '--port N --root DIR',
  title: { en: 'A static-file HTTP server from an empty file', zh: '从空文件写一个静态文件 HTTP 服务器' },
  chapters: ['14-http'],
  intro: {
    en: 'Write an HTTP/1.1 server that serves the files of a folder, in any language, from an empty file, on a plain TCP socket (no HTTP library: chapter 14 shows the protocol). The tester fills a folder with files, starts your program with `run.sh --port N --root DIR` for each stage, plays clients over real TCP connections, and stops at the first stage that fails, showing the bytes it sent and received.',
    zh: '用任意语言、从一个空文件、直接在 TCP 套接字上（不用 HTTP 库：协议见第 14 章）写一个提供文件夹里文件的 HTTP/1.1 服务器。每个阶段测试器都先往一个文件夹里放好文件，用 `run.sh --port N --root DIR` 启动你的程序，通过真实的 TCP 连接扮演客户端，在第一个失败的阶段停下，并给出它发送和收到的字节。',
  },
  notes: {
    en: [
      '`--root DIR` is a folder the tester fills with files before it starts your program, a fresh one for every stage (the dialogues call it ROOT): serve the files under it, and nothing outside it.',
      'An `←` of HTTP says what is checked: the status line exactly (`HTTP/1.1`, the code, the standard reason phrase), the headers shown (names in any case; other headers are up to you), and the body. Every line of a response ends with `\\r\\n`. Every response carries `Content-Length`, except directory listings, which are chunked.',
    ],
    zh: [
      '`--root DIR` 是测试器在启动你的程序前放好文件的文件夹，每个阶段都是新的（对话里叫它 ROOT）：提供它下面的文件，绝不提供它之外的任何东西。',
      'HTTP 的 `←` 说明要检查什么：状态行一字不差（`HTTP/1.1`、状态码、标准的原因短语）、列出的头部（名字大小写随意；其他头部随你），以及正文。响应的每一行都以 `\\r\\n` 结尾。除了按块发送的目录列表，每个响应都带 `Content-Length`。',
    ],
  },
  stages,
};
