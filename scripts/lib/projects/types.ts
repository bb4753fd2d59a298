// A project is a list of stages; a stage is a list of steps the tester plays over real sockets. The same steps
// are rendered into the project's README and its page, so what a learner reads is what the tester does.

export type Locale = 'zh' | 'en';
export type Text = Record<Locale, string>;

/** One thing the tester does or expects. `who` names a client (A, B, C…); each is its own TCP connection. */
export type Step =
  /** Open a connection; the server must accept it. */
  | { op: 'connect'; who: string }
  /** Send `data` (UTF-8). `split: 'bytes'` writes one byte at a time; numbers are byte offsets where a write ends. */
  | { op: 'send'; who: string; data: string; split?: 'bytes' | number[] }
  /** The next line `who` receives is exactly `line` followed by `\r\n`. */
  | { op: 'line'; who: string; line: string }
  /** The server closes `who`'s connection (EOF or reset) without sending anything more. */
  | { op: 'closed'; who: string }
  /** The client closes its side. */
  | { op: 'close'; who: string }
  /** The client stops reading: what the server sends it piles up. */
  | { op: 'stall'; who: string }
  /** `who` sends `data` over and over while `reader` reads; stops when `reader` gets the line `until`. */
  | { op: 'flood'; who: string; data: string; reader: string; each: string; until: string; maxBytes: number }
  /** The tester sends SIGTERM to the program. */
  | { op: 'sigterm' }
  /** The program exits with this code. */
  | { op: 'exit'; code: number }
  /**
   * Before the program starts, the tester writes this file into the folder it passes as `--root DIR` (or, with
   * `outside`, beside that folder: a file the server must never serve). A stage with a file step gets `--root`.
   */
  | { op: 'file'; path: string; data: string | Uint8Array; outside?: boolean }
  /** The next bytes `who` receives are one whole HTTP/1.1 response, read and checked as below. */
  | ResponseStep;

/**
 * One HTTP/1.1 response: the status line `HTTP/1.1 CODE REASON` exactly, header lines ending with `\r\n`, an
 * empty line, then a body framed by `Content-Length` or by `Transfer-Encoding: chunked` (never both).
 */
export interface ResponseStep {
  op: 'response';
  who: string;
  /** The status codes accepted; the reason phrase must be the standard one for the code. */
  status: number[];
  /** How the body must be framed. */
  framing: 'length' | 'chunked';
  /** Headers that must be there with exactly this value (names in any case). */
  headers?: Record<string, string>;
  /** The exact body. */
  body?: string | Uint8Array;
  /** The body is exactly these lines, in any order. */
  lines?: string[];
  /** Where the exact body comes from, for people: the file's name. */
  file?: string;
  /** The body must not be empty. */
  nonEmpty?: boolean;
  /** The body must not contain this (the contents of a file outside the root). */
  without?: { text: string; file: string };
}

/** The standard reason phrase of each status code a project uses (RFC 9110). */
export const httpReasons: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
};

export interface Stage {
  /** Short name used in reports: `broadcast`. */
  slug: string;
  title: Text;
  points: number;
  /** What the server must do, exactly, in a few sentences (Markdown). */
  spec: Text;
  /** Lines the stage does not look at yet (a later stage's notices): skipped, so a finished server still passes. */
  skip?: RegExp;
  skipNote?: Text;
  /** Said when the program is silent where the stage expected something: the usual cause at this stage. */
  hint?: Text;
  /** The steps, from a seeded random source: same seed, same steps. */
  steps(rng: Rng): Step[];
}

export interface Project {
  name: string;
  /** What the tester adds to `run.sh` (default `--port N`). */
  args?: string;
  /** More points for the README's list of how the project is run and graded (Markdown, one bullet each). */
  notes?: Record<Locale, string[]>;
  title: Text;
  /** The chapters it builds on, as page slugs. */
  chapters: string[];
  intro: Text;
  stages: Stage[];
}

export interface Rng {
  seed: number;
  /** A whole number in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  word(): string;
}

// mulberry32: small, fast and the same everywhere, so a printed seed replays the same inputs.
export function makeRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const words = [
    'apple',
    'river',
    'cloud',
    'tiger',
    'maple',
    'orbit',
    'pixel',
    'lemon',
    'comet',
    'delta',
    'ember',
    'frost',
    'grape',
    'harbor',
    'island',
    'jungle',
    'kettle',
    'lotus',
    'meadow',
    'nectar',
    'ocean',
    'pepper',
    'quartz',
    'raven',
    'saffron',
    'tulip',
    'umber',
    'violet',
    'willow',
    'zephyr',
  ];
  const rng: Rng = {
    seed,
    int: (n) => Math.floor(next() * n),
    pick: (items) => items[rng.int(items.length)] as (typeof items)[number],
    word: () => rng.pick(words),
  };
  return rng;
}
