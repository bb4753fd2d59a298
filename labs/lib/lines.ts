// Line framing over a byte stream. TCP delivers bytes, not messages: one 'data' event can hold half a line,
// several lines, or half of a UTF-8 character. This turns any chunking into whole lines.
import { StringDecoder } from 'node:string_decoder';

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
  const decoder = new StringDecoder('utf8');
  const max = options.maxBytes ?? Number.POSITIVE_INFINITY;
  let pending = '';
  let stopped = false;
  const emit = (line: string) => onLine(line.endsWith('\r') ? line.slice(0, -1) : line);

  const tooLong = (text: string) => max !== Number.POSITIVE_INFINITY && Buffer.byteLength(text) > max;
  const overflow = () => {
    stopped = true;
    pending = '';
    options.onOverflow?.();
  };

  stream.on('data', (chunk: Buffer | string) => {
    if (stopped) return;
    pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    for (let newline = pending.indexOf('\n'); newline !== -1; newline = pending.indexOf('\n')) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (tooLong(line)) return overflow();
      emit(line);
    }
    if (tooLong(pending)) overflow();
  });
  stream.on('end', () => {
    if (stopped) return;
    pending += decoder.end();
    if (pending) emit(pending);
    pending = '';
  });
}
