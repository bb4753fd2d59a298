// Lines arriving from somewhere (a lab's output, a test client's socket) and promises that wait for them.
// A wait ends on a matching line, or fails fast, with the output so far: when the source closes first, when a
// line matching `failOn` comes first (a later line of the same scripted timeline), or after `within` ms (a
// deadline derived from the timers the test itself set). The test timeout is only the last resort.

/** How a wait may fail before the test timeout. */
export interface WaitOptions {
  /**
   * Fail after this many ms: derive it from the timers the test set (`--idle 200` → `within: 2000`). For a
   * process the clock starts once it has printed something, so node's start-up on a busy machine is not counted.
   */
  within?: number;
  /**
   * Fail when nothing new has arrived for this many ms since the wait began: a scripted timeline that stalled
   * (a starter's missing part). Only for sources that keep talking until the awaited line; counted like `within`.
   */
  quiet?: number;
  /** Fail as soon as a line matching this arrives before the awaited one (a later step of the same timeline). */
  failOn?: RegExp;
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

  /** Deadlines wait for the first output (a process starting); a socket's start at once. */
  private readonly clockStartsOnOutput: boolean;
  private readonly onFirstOutput: (() => void)[] = [];

  constructor(name: string, defaults: WaitOptions = {}, clockStartsOnOutput = false) {
    this.name = name;
    this.defaults = defaults;
    this.clockStartsOnOutput = clockStartsOnOutput;
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

  /** Runs `fn` after `ms`, counted from now or, for a process that has printed nothing yet, from its first output. */
  deadline(ms: number, fn: () => void): () => void {
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = () => {
      if (!cancelled) timer = setTimeout(fn, ms);
    };
    if (this.clockStartsOnOutput && this.raw === '' && this.lines.length === 0) this.onFirstOutput.push(arm);
    else arm();
    return () => {
      cancelled = true;
      if (timer) clearTimeout(timer);
    };
  }

  private output(): void {
    for (const arm of this.onFirstOutput.splice(0)) arm();
    for (const reset of [...this.onOutput]) reset();
  }

  private readonly onOutput = new Set<() => void>();

  /** Arms the `within` and `quiet` deadlines of one wait; `fail` gets the reason. Returns the cancel. */
  guard(options: WaitOptions, what: string, fail: (reason: string) => void): () => void {
    const cancels: (() => void)[] = [];
    if (options.within !== undefined) {
      const ms = options.within;
      cancels.push(this.deadline(ms, () => fail(`${what} within ${ms} ms`)));
    }
    if (options.quiet !== undefined) {
      const ms = options.quiet;
      let cancelQuiet = this.deadline(ms, () => fail(`${what}, and nothing new for ${ms} ms`));
      const reset = () => {
        cancelQuiet();
        cancelQuiet = this.deadline(ms, () => fail(`${what}, and nothing new for ${ms} ms`));
      };
      this.onOutput.add(reset);
      cancels.push(() => {
        this.onOutput.delete(reset);
        cancelQuiet();
      });
    }
    return () => {
      for (const cancel of cancels) cancel();
    };
  }

  /** No more lines will come; pending waits fail with `reason` and the output so far. */
  close(reason: string): void {
    this.closedBecause ??= reason;
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
