// labs/lib/lines.ts, the line framing several labs share: whole lines whatever the chunking, limits in bytes.
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { onLines } from '../labs/lib/lines.ts';

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

  it('stops at a line that outgrows the limit before its newline comes, and buffers nothing more', async () => {
    expect(await feed(['ab', 'cde', 'f\n', 'g\n'], 4)).toEqual({ lines: [], overflowed: 1 });
  });
});
