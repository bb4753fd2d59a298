// Text from one peer shown to another: a relay must never pass on what a terminal obeys instead of printing.
// ESC starts a command (CSI `\x1b[2J` clears the screen, OSC `\x1b]0;title\x07` retitles the window), a bare CR
// moves back to the start of the line so the next text overwrites it (a forged "bob: ..."), and Unicode's
// format characters reorder or hide text: U+202E flips what follows, U+200B and U+FEFF are invisible.

// Unicode general categories: Cc (C0 and C1 controls, DEL), Cf (format: bidi overrides and isolates,
// zero-width characters, the BOM), Zl and Zp (U+2028, U+2029: line breaks that are not '\n').
const UNSAFE = /\p{Cc}|\p{Cf}|\p{Zl}|\p{Zp}/gu;
// A whole escape sequence, so its parameters do not stay behind as visible junk: CSI (ESC [ … final byte),
// OSC and the other string commands (ESC ] … BEL or ESC \), and two-byte escapes (ESC and one character).
// The same in their 8-bit forms (U+009B CSI, U+009D OSC…), which some terminals obey too.
const ESCAPES =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this is for
  /(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?|(?:\x1b[\]PX^_]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?|\x1b[\x20-\x7e]?/g;

/** Text safe to write to someone else's terminal: escape sequences removed, every other control or format character shown as '?'. */
export function printable(text: string): string {
  return text.replace(ESCAPES, '').replace(UNSAFE, '?');
}

// A nickname: letters of any script WITH their combining marks (Devanagari vowel signs and viramas, Thai
// tone marks, Arabic harakat are \p{M}, not \p{L}), digits, and '_', '-', '.'; it starts with a letter or digit.
// No ':' (chat v2's c:NICK:TEXT needs it), no spaces, no controls, no format characters (those are not in the class).
export const NICK = /^[\p{L}\p{N}][\p{L}\p{M}\p{N}_.-]*$/u;
export const NICK_MAX = 24;
export const NICK_RULE = `1 to ${NICK_MAX} characters: letters (with their accents and vowel signs, any script), digits, '_', '-' or '.'`;

/** Why `name` is not a nickname, or undefined when it is one. Length counts what a reader sees (code points after NFC). */
export function badNick(name: string): string | undefined {
  const nfc = name.normalize('NFC');
  if (!NICK.test(nfc) || [...nfc].length > NICK_MAX) return `a name is ${NICK_RULE}`;
  // Fullwidth letters, ligatures and other compatibility forms must fold to something that is itself a name
  // (U+3164 HANGUL FILLER is a "letter" that shows as blank and folds to U+1160, another blank).
  const folded = foldNick(nfc);
  if (!NICK.test(folded) || /[\u115f\u1160\u3164\uffa0]/u.test(nfc + folded))
    return `a name is ${NICK_RULE} (no blank fillers)`;
  // Latin, Cyrillic and Greek share look-alike letters ('а' U+0430 is not 'a'): one name uses one of them at most.
  if (LOOKALIKE_SCRIPTS.filter((script) => script.test(nfc)).length > 1)
    return 'a name mixes Latin, Cyrillic or Greek letters (look-alikes): use one of them';
  return undefined;
}

const LOOKALIKE_SCRIPTS = [/\p{Script=Latin}/u, /\p{Script=Cyrillic}/u, /\p{Script=Greek}/u];

/** The form two names are compared in: `Alice`, `ALICE`, `ａｌｉｃｅ` (fullwidth) and `alice` are all `alice`. */
export function foldNick(name: string): string {
  // NFKC folds compatibility forms (fullwidth, ligatures, superscripts); toLowerCase is the case fold
  // JavaScript has (close to Unicode's, not identical: 'ß' stays 'ß'); NFKC again after lowering.
  return name.normalize('NFKC').toLowerCase().normalize('NFKC');
}
