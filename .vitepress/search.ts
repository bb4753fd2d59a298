// Index-side tokenizer for VitePress's local search (MiniSearch), so Chinese words are found mid-sentence.
// MiniSearch's default split (spaces and punctuation) leaves a whole Chinese clause as one term, so `握手`
// would never match `三次握手形成会话`. Here each Han run is cut into words with Intl.Segmenter, and the run's
// tail from every word boundary is indexed too: the browser's prefix search then finds `三次握手`, `握手` and
// `服务器` inside a clause. The query side stays MiniSearch's default (a function cannot reach the browser).

const split = /[\n\r\p{Z}\p{P}]+/u; // MiniSearch's default separator
const han = /\p{Script=Han}/u;
const segmenter = new Intl.Segmenter('zh', { granularity: 'word' });
/** Longest indexed tail, in characters: a query longer than this is rare, and the index stays small. */
const maxTail = 24;

export function tokenize(text: string): string[] {
  const terms: string[] = [];
  for (const piece of text.split(split)) {
    if (!piece) continue;
    if (!han.test(piece)) {
      terms.push(piece);
      continue;
    }
    const words = [...segmenter.segment(piece)].filter((s) => s.segment.trim());
    for (const w of words) {
      terms.push(w.segment);
      const tail = piece.slice(w.index, w.index + maxTail);
      if (tail !== w.segment && han.test(tail)) terms.push(tail);
    }
  }
  return terms;
}
