// labs/lib/lines.ts, the line framing several labs share: whole lines whatever the chunking, limits in bytes.
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { FramingError, onLines, readLines } from '../labs/lib/lines.ts';

async function feed(chunks: (string | Buffer)[], maxBytes?: number) {
  const stream = new PassThrough();
  const lines: string[] = [];
  let overflowed = 0;
  onLines(stream, (l) => lines.push(l), { maxBytes, onOverflow: () => overflowed++ });
  for (const c of chunks) stream.write(c);
  stream.end();
  await once(stream, 'end');
  return { lines, overflowed };
}

describe('onLines (labs/lib/lines.ts)', async () => {
  it('gives whole lines whatever the chunking: byte by byte, several per chunk, LF or CRLF', async () => {
    const text = 'héllo\r\nworld\nπ\r\n';
    const bytes = [...Buffer.from(text)].map((b) => Buffer.from([b]));
    expect((await feed(bytes)).lines).toEqual(['héllo', 'world', 'π']);
    expect((await feed([text])).lines).toEqual(['héllo', 'world', 'π']);
  });

  it('keeps a UTF-8 character whole when it is split across two chunks', async () => {
    const bytes = Buffer.from('中文\n');
    expect((await feed([bytes.subarray(0, 2), bytes.subarray(2)])).lines).toEqual(['中文']);
  });

  it('flushes a last line that has no line end when the stream ends', async () => {
    expect((await feed(['a\nb'])).lines).toEqual(['a', 'b']);
  });

  it('counts the limit in the bytes the peer sent: invalid bytes do not count three times', async () => {
    expect(await feed([Buffer.alloc(10, 0xff), '\n'], 10)).toEqual({
      lines: ['\uFFFD'.repeat(10)],
      overflowed: 0,
    });
    expect(await feed(['abcd\n'], 4)).toEqual({ lines: ['abcd'], overflowed: 0 });
    expect(await feed(['abcde\n', 'more\n'], 4)).toEqual({ lines: [], overflowed: 1 });
  });

  it('counts the limit without the line ending: maxBytes bytes then CRLF is a line, even with the \\r and \\n in two chunks', async () => {
    expect(await feed(['abcd\r\n'], 4)).toEqual({ lines: ['abcd'], overflowed: 0 });
    expect(await feed(['abcd\r', '\n', 'ef\n'], 4)).toEqual({ lines: ['abcd', 'ef'], overflowed: 0 });
    // One byte over that is not '\r' cannot become a line: the overflow comes now, and nothing is flushed at the end.
    expect(await feed(['abcde'], 4)).toEqual({ lines: [], overflowed: 1 });
    expect(await feed(['abcd\r'], 4)).toEqual({ lines: ['abcd'], overflowed: 0 });
  });

  it('is the decoder chapter 13 reads: readLines gives the same lines and throws where onLines overflows', async () => {
    const chunks = ['héllo\r', '\nwor', 'ld\n', 'π\r\n'].map((c) => Buffer.from(c));
    const lines: string[] = [];
    for await (const line of readLines(chunks, 8)) lines.push(line);
    expect(lines).toEqual((await feed(chunks, 8)).lines);
    const over = [Buffer.from('ok\nabcde')];
    expect(await feed(over, 4)).toEqual({ lines: ['ok'], overflowed: 1 });
    const seen: string[] = [];
    const error = await (async () => {
      for await (const line of readLines(over, 4)) seen.push(line);
    })().catch((err: unknown) => err);
    expect(seen).toEqual(['ok']);
    expect(error).toBeInstanceOf(FramingError);
    expect((error as Error).message).toBe('line longer than 4 bytes');
  });

  it('stops at a line that outgrows the limit before its newline comes, and buffers nothing more', async () => {
    expect(await feed(['ab', 'cde', 'f\n', 'g\n'], 4)).toEqual({ lines: [], overflowed: 1 });
  });
});
