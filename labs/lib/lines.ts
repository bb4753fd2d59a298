// Line framing over a byte stream. TCP delivers bytes, not messages: one 'data' event can hold half a line,
// several lines, or half of a UTF-8 character. This turns any chunking into whole lines: the framer you wrote
// in chapter 13 (labs/13-framing.ts, readLines), as a callback for the labs that share it.

export interface LineOptions {
  /** Longest line accepted, in bytes. Past it `onOverflow` runs and framing stops: nothing grows without bound. */
  maxBytes?: number;
  onOverflow?: () => void;
}

/** Calls `onLine` once per line ('\n' or '\r\n' ends it; the ending is dropped). A last unended line is flushed at 'end'. */
export function onLines(
  stream: NodeJS.ReadableStream,
  onLine: (line: string) => void,
  options: LineOptions = {},
): void {
  const max = options.maxBytes ?? Number.POSITIVE_INFINITY;
  // Split the raw bytes: '\n' (0x0a) never occurs inside a multi-byte UTF-8 character, so a character split
  // across chunks stays whole, and the limit counts the bytes the peer really sent.
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let stopped = false;
  const emit = (bytes: Buffer) => {
    const line = bytes.toString('utf8');
    onLine(line.endsWith('\r') ? line.slice(0, -1) : line);
  };
  const overflow = () => {
    stopped = true;
    pending = [];
    options.onOverflow?.();
  };

  stream.on('data', (chunk: Buffer | string) => {
    if (stopped) return;
    let rest = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let newline = rest.indexOf(0x0a); newline !== -1; newline = rest.indexOf(0x0a)) {
      if (pendingBytes + newline > max) return overflow();
      emit(
        pending.length ? Buffer.concat([...pending, rest.subarray(0, newline)]) : rest.subarray(0, newline),
      );
      pending = [];
      pendingBytes = 0;
      rest = rest.subarray(newline + 1);
    }
    if (rest.length) {
      pending.push(rest);
      pendingBytes += rest.length;
    }
    if (pendingBytes > max) overflow();
  });
  stream.on('end', () => {
    if (!stopped && pendingBytes) emit(Buffer.concat(pending));
    pending = [];
    pendingBytes = 0;
  });
}
