// Lines arriving from somewhere (a lab's output, a test client's socket) and promises that wait for them.
// No timers here: a wait ends on a matching line, or fails when the source closes first.

export class LineWatcher {
  readonly lines: string[] = [];
  /** Every character received, line ends included: for prompts that end without a newline. */
  raw = '';
  private readonly waiters = new Set<() => void>();
  private closedBecause: string | undefined;

  /** Goes into failure messages: `lab 01`, `client :41234`. */
  readonly name: string;

  constructor(name: string) {
    this.name = name;
  }

  push(line: string): void {
    this.lines.push(line);
    this.wake();
  }

  /** Raw text as it arrives; wakes the waits for text. */
  pushRaw(text: string): void {
    this.raw += text;
    this.wake();
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
  waitForLines(pattern: RegExp, count: number): Promise<RegExpMatchArray[]> {
    return new Promise((resolve, reject) => {
      // Each wait scans every line once, as it arrives: a client that receives thousands of lines stays fast.
      const found: RegExpMatchArray[] = [];
      let scanned = 0;
      const check = () => {
        while (found.length < count && scanned < this.lines.length) {
          const m = (this.lines[scanned++] as string).match(pattern);
          if (m) found.push(m);
        }
        if (found.length >= count) {
          this.waiters.delete(check);
          resolve(found);
        } else if (this.closedBecause !== undefined) {
          this.waiters.delete(check);
          const seen = count > 1 ? ` (saw ${found.length} of ${count})` : '';
          reject(new Error(this.describe(`${this.closedBecause} before a line matching ${pattern}${seen}`)));
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Resolves when the raw text received so far matches (a prompt with no newline, say). */
  waitForText(pattern: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.raw.match(pattern);
        if (m) {
          this.waiters.delete(check);
          resolve(m);
        } else if (this.closedBecause !== undefined) {
          this.waiters.delete(check);
          reject(new Error(this.describe(`${this.closedBecause} before the text matched ${pattern}`)));
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  async waitForLine(pattern: RegExp): Promise<RegExpMatchArray> {
    return (await this.waitForLines(pattern, 1))[0] as RegExpMatchArray;
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
