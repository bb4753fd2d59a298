// Line framing over a byte stream. TCP delivers bytes, not messages: one 'data' event can hold half a line,
// several lines, or half of a UTF-8 character. LineDecoder turns any chunking into whole lines; chapter 13
// reads it (readLines, its async form) and every lab that reads lines uses it through onLines().

const LF = 0x0a;
const CR = 0x0d;

// #region line-decoder
/** What a framer throws: the peer broke the framing, so the connection cannot go on. */
export class FramingError extends Error {}

/**
 * Delimiter framing, one chunk at a time: push() gives the lines a chunk completes ('\n' or '\r\n' ends one; the
 * ending is dropped) and keeps the start of the next. A line longer than `maxBytes` (counted in bytes, without
 * its ending) throws as soon as the bytes held prove it, without waiting for its end: nothing grows past the limit.
 */
export class LineDecoder {
  readonly maxBytes: number;
  #parts: Buffer[] = []; // the start of a line that has not ended yet
  #have = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** How many bytes of an unended line are held. */
  get pending(): number {
    return this.#have;
  }

  *push(chunk: Buffer): Generator<string> {
    let rest = chunk;
    // '\n' never occurs inside a multi-byte UTF-8 character, so splitting the bytes here keeps characters whole.
    for (let nl = rest.indexOf(LF); nl !== -1; nl = rest.indexOf(LF)) {
      const head = rest.subarray(0, nl);
      let line = this.#parts.length > 0 ? Buffer.concat([...this.#parts, head]) : head;
      rest = rest.subarray(nl + 1);
      this.#parts = [];
      this.#have = 0;
      if (line.at(-1) === CR) line = line.subarray(0, -1);
      if (line.length > this.maxBytes) throw new FramingError(`line longer than ${this.maxBytes} bytes`);
      yield line.toString('utf8');
    }
    if (rest.length > 0) {
      this.#parts.push(rest);
      this.#have += rest.length;
    }
    // The unended line may still end with '\r\n': one byte over the limit is allowed, if that byte is the '\r'.
    const over = this.#have - this.maxBytes;
    if (over > 1 || (over === 1 && this.#parts.at(-1)?.at(-1) !== CR)) {
      throw new FramingError(`line longer than ${this.maxBytes} bytes`);
    }
  }

  /** At the end of the stream: the unended last line, if any (a protocol decides whether that is an error). */
  end(): string | undefined {
    if (this.#have === 0) return undefined;
    let line = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#have = 0;
    if (line.at(-1) === CR) line = line.subarray(0, -1);
    if (line.length > this.maxBytes) throw new FramingError(`line longer than ${this.maxBytes} bytes`);
    return line.toString('utf8');
  }
}

/** Anything that hands out chunks: a socket, or (in the tests) an array of Buffers. */
export type Chunks = AsyncIterable<Buffer> | Iterable<Buffer>;

/** The same decoder as an async generator: for await (const line of readLines(socket, 4096)). */
export async function* readLines(source: Chunks, maxBytes: number): AsyncGenerator<string> {
  const decoder = new LineDecoder(maxBytes);
  for await (const chunk of source) yield* decoder.push(chunk);
  const have = decoder.pending;
  if (have > 0) throw new FramingError(`the stream ended inside a line (${have} bytes and no '\\n')`);
}
// #endregion line-decoder

export interface LineOptions {
  /** Longest line accepted, in bytes. Past it `onOverflow` runs and framing stops: nothing grows without bound. */
  maxBytes?: number;
  onOverflow?: () => void;
}

// #region on-lines
/**
 * LineDecoder as a callback, for the labs that share it: `onLine` runs once per line. A last unended line is
 * flushed at 'end'; a line over `maxBytes` calls `onOverflow` once and stops the framing.
 */
export function onLines(
  stream: NodeJS.ReadableStream,
  onLine: (line: string) => void,
  options: LineOptions = {},
): void {
  const decoder = new LineDecoder(options.maxBytes ?? Number.POSITIVE_INFINITY);
  let stopped = false;
  const framed = (take: () => void) => {
    if (stopped) return;
    try {
      take();
    } catch (err) {
      if (!(err instanceof FramingError)) throw err; // onLine's own error is the caller's
      stopped = true;
      options.onOverflow?.();
    }
  };
  stream.on('data', (chunk: Buffer | string) =>
    framed(() => {
      for (const line of decoder.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) onLine(line);
    }),
  );
  stream.on('end', () =>
    framed(() => {
      const last = decoder.end();
      if (last !== undefined) onLine(last);
    }),
  );
}
// #endregion on-lines
