// Showing bytes to a person: escaped so a stray \r or a cut UTF-8 character is visible, with a caret under the
// first byte that differs. No Buffer here: the project's page renders the same dialogues in the browser.
const utf8 = new TextDecoder('utf-8', { fatal: true });
const encode = (text: string) => new TextEncoder().encode(text);

function decodeOrEmpty(seq: Uint8Array): string {
  try {
    return utf8.decode(seq);
  } catch {
    return '';
  }
}

interface Piece {
  text: string;
  bytes: number;
}

/** Splits bytes into printable pieces: ASCII as is, \r \n \t and other controls escaped, valid UTF-8 kept, the rest \xHH. */
function pieces(buf: Uint8Array): Piece[] {
  const out: Piece[] = [];
  for (let i = 0; i < buf.length; ) {
    const b = buf[i] as number;
    if (b === 0x0a) out.push({ text: '\\n', bytes: 1 });
    else if (b === 0x0d) out.push({ text: '\\r', bytes: 1 });
    else if (b === 0x09) out.push({ text: '\\t', bytes: 1 });
    else if (b === 0x5c) out.push({ text: '\\\\', bytes: 1 });
    else if (b >= 0x20 && b < 0x7f) out.push({ text: String.fromCharCode(b), bytes: 1 });
    else {
      const len = b >= 0xf0 && b < 0xf8 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
      const seq = buf.subarray(i, i + len);
      let ok = len > 0 && seq.length === len;
      for (let k = 1; ok && k < len; k++) ok = ((seq[k] as number) & 0xc0) === 0x80;
      // Right lead and continuation bytes can still be no character (an overlong form, a surrogate, past U+10FFFF).
      const text = ok ? decodeOrEmpty(seq) : '';
      if (text && !/[\p{Cc}\p{Cf}\uFFFD]/u.test(text)) {
        out.push({ text, bytes: len });
        i += len;
        continue;
      }
      out.push({ text: `\\x${b.toString(16).padStart(2, '0')}`, bytes: 1 });
    }
    i += 1;
  }
  return out;
}

const shorten = 160;

/** `"hi\r\n"`, long runs cut in the middle. */
export function escapeBytes(buf: Uint8Array | string): string {
  const b = typeof buf === 'string' ? encode(buf) : buf;
  const text = pieces(b)
    .map((p) => p.text)
    .join('');
  if (text.length <= shorten) return `"${text}"`;
  return `"${text.slice(0, 60)}…(${b.length} bytes)…${text.slice(-40)}"`;
}

/** Index of the first byte that differs, or -1. */
export function firstDifference(got: Uint8Array, want: Uint8Array): number {
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) if (got[i] !== want[i]) return i;
  return got.length === want.length ? -1 : n;
}

/** Three lines: expected, received, and a caret under the first differing byte (with its offset). */
export function showDifference(got: Uint8Array, want: Uint8Array): string[] {
  const at = firstDifference(got, want);
  // Show a window around the difference so a 4 KB line still fits on a screen.
  const from = Math.max(0, at - 40);
  const cut = (buf: Uint8Array) => pieces(buf.subarray(from, from + 100));
  const g = cut(got);
  const w = cut(want);
  const column = (ps: Piece[]) => {
    let bytes = from;
    let col = 0;
    for (const p of ps) {
      if (bytes >= at) break;
      bytes += p.bytes;
      col += [...p.text].length;
    }
    return col;
  };
  const lead = from > 0 ? '…' : '';
  const text = (ps: Piece[]) => ps.map((p) => p.text).join('');
  const col = Math.min(column(g), column(w));
  const byte = (buf: Uint8Array) =>
    at < buf.length ? `0x${(buf[at] as number).toString(16).padStart(2, '0')}` : 'the end';
  return [
    `expected: ${lead}"${text(w)}"`,
    `received: ${lead}"${text(g)}"`,
    `          ${' '.repeat(lead.length + 1 + col)}^ byte ${at}: expected ${byte(want)}, received ${byte(got)}`,
  ];
}

const hex2 = (b: number) => b.toString(16).padStart(2, '0');

/** One row of a hex dump: offset, 16 bytes in hex, the same bytes as ASCII ('.' for the rest). */
function hexRow(buf: Uint8Array, row: number): string {
  const bytes = buf.subarray(row, row + 16);
  const hex = Array.from({ length: 16 }, (_, i) => (i < bytes.length ? hex2(bytes[i] as number) : '  '));
  const ascii = Array.from(bytes, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `${row.toString(16).padStart(8, '0')}  ${hex.join(' ')}  |${ascii}|`;
}

/**
 * For bytes that are not text (a binary file): the 16-byte row holding the first difference, expected and
 * received, as `xxd` shows them, with a caret under the byte that differs.
 */
export function hexDifference(got: Uint8Array, want: Uint8Array): string[] {
  const at = firstDifference(got, want);
  const row = Math.floor(at / 16) * 16;
  const byte = (buf: Uint8Array) => (at < buf.length ? `0x${hex2(buf[at] as number)}` : 'the end');
  return [
    `expected: ${hexRow(want, row)}`,
    `received: ${hexRow(got, row)}`,
    `${' '.repeat('expected: '.length + 10 + (at - row) * 3)}^^ byte ${at}: expected ${byte(want)}, received ${byte(got)}`,
  ];
}

/** True when the bytes are UTF-8 text a person can read escaped (no NUL or other binary noise). */
export function isText(buf: Uint8Array): boolean {
  // Tab, \n, \r and friends are text; NUL and the other C0 controls are not.
  for (const b of buf) if ((b < 0x20 && (b < 0x09 || b > 0x0d)) || b === 0x7f) return false;
  try {
    utf8.decode(buf);
    return true;
  } catch {
    return false;
  }
}
