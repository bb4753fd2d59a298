// Lines arriving from somewhere (a lab's output, a test client's socket) and promises that wait for them.
// A wait ends on a matching line, or fails fast, with the output so far: when the source closes first, when a
// line matching `failOn` comes first (a later line of the same scripted timeline), or after `within` ms (a
// deadline derived from the timers the test itself set), or, where a file allows it, as soon as every process
// of the test visibly waits for input with nothing due (`stalled`). The test timeout is only the last resort.
import { canLook, date, type Look, look, stalledBetween } from './stall.ts';

/** How a wait may fail before the test timeout. */
export interface WaitOptions {
  /**
   * Fail after this many ms: derive it from the timers the test set (`--idle 200` → `within: 2000`). For a
   * process the clock starts once it has printed something, so node's start-up on a busy machine is not counted.
   */
  within?: number;
  /**
   * Fail when nothing new has arrived for this many ms since the wait began: a scripted timeline that stalled
   * (a starter's missing part). Only for sources that keep talking until the awaited line; counted like `within`,
   * but in the time this worker was awake to hear it (`awake.now`): a starved worker or a paused machine is no
   * silence of the lab's.
   */
  quiet?: number;
  /** Fail as soon as a line matching this arrives before the awaited one (a later step of the same timeline). */
  failOn?: RegExp;
  /**
   * With `quiet`: fail sooner, once nothing new has come for this many ms and the machine shows that nothing
   * can: every process this test worker started sleeps in a call that waits for ever, and none has run since
   * the last look (test/helpers/stall.ts; Linux only, elsewhere `quiet` alone counts). An untouched starter's
   * missing reply is seen in a few hundred ms instead of `quiet`. Not for a wait that a kernel timer ends (a SYN
   * sent again, a keepalive probe) or one the test itself ends later: there nothing runs, yet something comes.
   */
  stalled?: number;
}

/**
 * Milliseconds this worker's event loop was awake to run callbacks: the real clock less the gaps in which a 20 ms
 * ticker could not run (the worker starved of CPU, a machine paused by its host, a long synchronous call). Lines
 * that came in such a gap wait in a pipe or socket, unread, while a timer due in it fires first when the loop
 * wakes: a quiet deadline counted in real time once failed so, on CI, a reference lab whose line was 4 s "late".
 * The ticker runs only while a quiet wait is armed (`awake.hold()`).
 */
export const awake = (() => {
  const TICK_MS = 20;
  const SLACK_MS = 10; // a tick this much late is an ordinary busy machine, not a gap
  let asleep = 0;
  let last = 0;
  let holders = 0;
  let ticker: NodeJS.Timeout | undefined;
  const gap = (now: number) => Math.max(0, now - last - TICK_MS - SLACK_MS);
  return {
    now(): number {
      const now = performance.now();
      return ticker ? now - asleep - gap(now) : now - asleep;
    },
    /** Keeps the ticker running until the returned release is called. */
    hold(): () => void {
      if (holders++ === 0) {
        last = performance.now();
        ticker = setInterval(() => {
          const now = performance.now();
          asleep += gap(now);
          last = now;
        }, TICK_MS).unref();
      }
      let held = true;
      return () => {
        if (!held) return;
        held = false;
        if (--holders === 0) {
          const now = performance.now();
          asleep += gap(now);
          clearInterval(ticker);
          ticker = undefined;
        }
      };
    },
  };
})();

/**
 * Runs `fn` after the poll phase that follows this timer: a line already waiting in a pipe or socket (a starved
 * worker's timers fire before it reads) is read there first, and can cancel the verdict. Returns the cancel.
 */
function afterPoll(fn: () => void): () => void {
  const pending = setImmediate(fn);
  return () => clearImmediate(pending);
}

export class LineWatcher {
  readonly lines: string[] = [];
  /** Every character received, line ends included: for prompts that end without a newline. */
  raw = '';
  private readonly waiters = new Set<() => void>();
  private closedBecause: string | undefined;

  /** Goes into failure messages: `lab 01`, `client :41234`. */
  readonly name: string;
  /** Applied to every wait that does not say otherwise (`spawnLab(t, id, args, { within })`). */
  readonly defaults: WaitOptions;

  /** Deadlines start once every process of the test is up (see StartGate). */
  private readonly gate: StartGate;
  private readonly isProcess: boolean;

  /**
   * `gate`: the test's processes, shared by every watcher of one test; `isProcess`: this watcher reads a process,
   * which holds the gate closed until its first output, its exit, or `startupMs`.
   */
  constructor(
    name: string,
    defaults: WaitOptions = {},
    gate = new StartGate(),
    isProcess = false,
    startupMs = 3000,
  ) {
    this.name = name;
    this.defaults = defaults;
    this.gate = gate;
    this.isProcess = isProcess;
    if (isProcess) {
      gate.starting(this);
      // A process that prints nothing at all (a starter missing its first line) holds the gate for so long only.
      setTimeout(() => gate.started(this), startupMs).unref();
    }
  }

  push(line: string): void {
    this.lines.push(line);
    this.output();
    this.wake();
  }

  /** Raw text as it arrives; wakes the waits for text. */
  pushRaw(text: string): void {
    this.raw += text;
    this.output();
    this.wake();
  }

  /**
   * Runs `fn` after `ms`, counted from now or, while a process of the test has printed nothing yet, from the
   * moment they all have: node's start-up on a busy machine is not a deadline the test set.
   */
  deadline(ms: number, fn: () => void, clock: () => number = () => performance.now()): () => void {
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    // A timer counts from the event loop's cached clock, which is as old as the loop's current turn: on a
    // starved process a 300 ms timer once fired 1 ms after it was set. So the deadline is checked against the
    // clock, and armed again for what is left.
    const arm = (until: number) => {
      timer = setTimeout(() => {
        if (cancelled) return;
        const left = until - clock();
        if (left > 1) arm(until);
        else fn();
      }, until - clock());
    };
    this.gate.whenOpen(() => {
      if (!cancelled) arm(clock() + ms);
    });
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }

  private output(): void {
    if (this.isProcess) this.gate.started(this);
    for (const reset of [...this.onOutput]) reset();
  }

  /** Called on every new piece of output (the quiet deadlines, a waitForExit with failOn). */
  readonly onOutput = new Set<() => void>();

  /** Arms the `within` and `quiet` deadlines of one wait; `fail` gets the reason. Returns the cancel. */
  guard(options: WaitOptions, what: string, failWith: (reason: string) => void): () => void {
    const cancels: (() => void)[] = [];
    const cancelAll = () => {
      for (const cancel of cancels) cancel();
    };
    // The first verdict disarms the rest (and lets the awake ticker stop).
    const fail = (reason: string) => {
      cancelAll();
      failWith(reason);
    };
    if (options.within !== undefined) {
      const ms = options.within;
      cancels.push(this.deadline(ms, () => fail(`${what} within ${ms} ms`)));
    }
    if (options.quiet !== undefined) {
      const ms = options.quiet;
      const release = awake.hold();
      let cancelQuiet = () => {};
      // Armed now, and again on every new piece of output.
      const arm = () => {
        cancelQuiet();
        cancelQuiet = this.deadline(
          ms,
          () => {
            cancelQuiet = afterPoll(() => fail(`${what}, and nothing new for ${ms} ms`));
          },
          awake.now,
        );
      };
      arm();
      this.onOutput.add(arm);
      cancels.push(() => {
        this.onOutput.delete(arm);
        cancelQuiet();
        release();
      });
      if (options.stalled !== undefined) cancels.push(this.stallGuard(options.stalled, ms, what, fail));
    }
    return cancelAll;
  }

  /**
   * The `stalled` part of a quiet wait: after `ms` with nothing new a look at the test's processes, then one
   * every 100 ms until a look shows them all stalled since the one before. A process that has not run between
   * two looks printed nothing new between them; what it printed before is in a pipe or socket of this process,
   * read in the poll phase that follows this timer: the verdict waits for it (`afterPoll`), and a line read
   * there cancels it. So a starved worker, whose timers fire late, is no reason for a wrong verdict.
   * While the start gate is closed, a look every 100 ms only dates the processes (stall.ts `date`): a process
   * first seen asleep would otherwise count as asleep since its start, and a timer it set then as due sooner.
   * The looks cost about 0.5 ms per process (shared by the waits of a worker); none is taken while lines keep
   * coming.
   */
  private stallGuard(ms: number, quietMs: number, what: string, fail: (reason: string) => void): () => void {
    if (!canLook) return () => {}; // this machine cannot tell: quiet alone
    // While a process of the test is still starting (the gate holds the deadlines), looks that only date them.
    const dating = setInterval(date, 100);
    this.gate.whenOpen(() => clearInterval(dating));
    let before: Look | undefined;
    let since = performance.now();
    let cancel = () => {};
    const probe = (wait: number) => {
      cancel = this.deadline(wait, () => {
        const now = look() as Look;
        // Nothing due before the quiet deadline (and a little after, for the lines a timer's end would print).
        const left = since + quietMs - performance.now() + 100;
        if (before && stalledBetween(before, now, left)) {
          cancel = afterPoll(() =>
            fail(
              `${what}, and nothing new for ${Math.round(performance.now() - since)} ms: every process ` +
                'the test started waits for input, with nothing due',
            ),
          );
          return;
        }
        before = now;
        probe(100);
      });
    };
    const restart = () => {
      cancel();
      before = undefined;
      since = performance.now();
      probe(ms);
    };
    probe(ms);
    this.onOutput.add(restart);
    return () => {
      clearInterval(dating);
      this.onOutput.delete(restart);
      cancel();
    };
  }

  /** No more lines will come; pending waits fail with `reason` and the output so far. */
  close(reason: string): void {
    this.closedBecause ??= reason;
    if (this.isProcess) this.gate.started(this);
    this.wake();
  }

  get closed(): boolean {
    return this.closedBecause !== undefined;
  }

  text(): string {
    return this.lines.join('\n');
  }

  describe(what: string): string {
    return `${this.name} ${what}\n--- ${this.name} output so far (${this.lines.length} lines) ---\n${this.text() || '(nothing)'}\n---`;
  }

  matching(pattern: RegExp): RegExpMatchArray[] {
    return this.lines.map((l) => l.match(pattern)).filter((m): m is RegExpMatchArray => m !== null);
  }

  /** Resolves once `count` lines (ever received) match, with those lines in order. */
  waitForLines(pattern: RegExp, count: number, options: WaitOptions = {}): Promise<RegExpMatchArray[]> {
    const effective = { ...this.defaults, ...options };
    const { failOn } = effective;
    return new Promise((resolve, reject) => {
      // Each wait scans every line once, as it arrives: a client that receives thousands of lines stays fast.
      const found: RegExpMatchArray[] = [];
      let scanned = 0;
      let cancel: (() => void) | undefined;
      const seen = () => (count > 1 ? ` (saw ${found.length} of ${count})` : '');
      const settle = (error?: string) => {
        this.waiters.delete(check);
        cancel?.();
        if (error === undefined) resolve(found);
        else reject(new Error(this.describe(error)));
      };
      const check = () => {
        while (found.length < count && scanned < this.lines.length) {
          const line = this.lines[scanned++] as string;
          const m = line.match(pattern);
          if (m) found.push(m);
          else if (failOn?.test(line))
            return settle(
              `printed ${JSON.stringify(line)} (matching ${failOn}) before a line matching ${pattern}${seen()}`,
            );
        }
        if (found.length >= count) settle();
        else if (this.closedBecause !== undefined)
          settle(`${this.closedBecause} before a line matching ${pattern}${seen()}`);
      };
      this.waiters.add(check);
      check();
      if (this.waiters.has(check))
        cancel = this.guard(effective, `printed no line matching ${pattern}`, (why) =>
          settle(`${why}${seen()}`),
        );
    });
  }

  /** Resolves when the raw text received so far matches (a prompt with no newline, say). */
  waitForText(pattern: RegExp, options: WaitOptions = {}): Promise<RegExpMatchArray> {
    const effective = { ...this.defaults, ...options };
    return new Promise((resolve, reject) => {
      let cancel: (() => void) | undefined;
      const settle = (m: RegExpMatchArray | undefined, error?: string) => {
        this.waiters.delete(check);
        cancel?.();
        if (m) resolve(m);
        else reject(new Error(this.describe(error as string)));
      };
      const check = () => {
        const m = this.raw.match(pattern);
        if (m) settle(m);
        else if (this.closedBecause !== undefined)
          settle(undefined, `${this.closedBecause} before the text matched ${pattern}`);
      };
      this.waiters.add(check);
      check();
      if (this.waiters.has(check))
        cancel = this.guard(effective, `sent no text matching ${pattern}`, (why) => settle(undefined, why));
    });
  }

  async waitForLine(pattern: RegExp, options?: WaitOptions): Promise<RegExpMatchArray> {
    return (await this.waitForLines(pattern, 1, options))[0] as RegExpMatchArray;
  }

  private wake(): void {
    for (const check of [...this.waiters]) check();
  }
}

/**
 * The processes of one test that have not printed anything yet. Deadlines (`within`, `quiet`) start only once
 * it is empty: a wait on a server for a client process's connection must not count that client's start-up.
 */
export class StartGate {
  private readonly pending = new Set<object>();
  private readonly queued: (() => void)[] = [];

  starting(source: object): void {
    this.pending.add(source);
  }

  started(source: object): void {
    if (!this.pending.delete(source) || this.pending.size > 0) return;
    for (const fn of this.queued.splice(0)) fn();
  }

  whenOpen(fn: () => void): void {
    if (this.pending.size === 0) fn();
    else this.queued.push(fn);
  }
}

/** Splits a text stream into lines (LF or CRLF) and feeds them to the watcher. */
export function feedLines(stream: NodeJS.ReadableStream, watcher: LineWatcher, also?: string[]): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    watcher.pushRaw(chunk);
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) {
      also?.push(line.replace(/\r$/, ''));
      watcher.push(line.replace(/\r$/, ''));
    }
  });
  stream.on('end', () => {
    if (!pending) return;
    also?.push(pending);
    watcher.push(pending);
    pending = '';
  });
}

/**
 * `promise`, or a rejection after `ms` naming `what`: for the raw events a test awaits itself (a socket's 'end',
 * a server's 'connection'), which no line watcher guards. `ms` is counted as `quiet` is, in the time this worker
 * was awake (`awake`), and the rejection waits for the poll phase: an event that came while the worker was
 * starved is read and settles the promise first. `what` may be a function, for a message read at the failure.
 */
export function settleWithin<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const release = awake.hold();
    const start = awake.now();
    let cancel = () => {};
    const check = () => {
      const left = ms - (awake.now() - start);
      if (left > 0) {
        const timer = setTimeout(check, left);
        cancel = () => clearTimeout(timer);
        return;
      }
      cancel = afterPoll(() => {
        release();
        reject(new Error(`${typeof what === 'function' ? what() : what}: not within ${ms} ms`));
      });
    };
    const timer = setTimeout(check, ms);
    cancel = () => clearTimeout(timer);
    promise.then(
      (value) => {
        cancel();
        release();
        resolve(value);
      },
      (error: unknown) => {
        cancel();
        release();
        reject(error);
      },
    );
  });
}
