// The tokenizer of VitePress's local search (MiniSearch), so Chinese words are found mid-sentence.
// MiniSearch's default split (spaces and punctuation) keeps a whole Chinese clause as one term, so `握手`
// would never match `三次握手形成会话`. Here each Han run is cut into words with Intl.Segmenter, and the run's
// tail from every word boundary is indexed too: prefix search then finds `三次握手`, `握手` and `服务器` inside
// a clause. VitePress sends this function to the browser as source text (it is used for queries there too),
// so it must be self-contained: no imports, no variables from outside its body.
export function tokenize(text: string): string[] {
  const split = /[\n\r\p{Z}\p{P}]+/u; // MiniSearch's default separator
  const han = /\p{Script=Han}/u;
  const maxTail = 24; // longest indexed tail, in characters: longer queries are rare, and the index stays small
  const cache = globalThis as { __zhSegmenter?: Intl.Segmenter };
  cache.__zhSegmenter ??= new Intl.Segmenter('zh', { granularity: 'word' });
  const segmenter = cache.__zhSegmenter;
  const terms: string[] = [];
  for (const piece of text.split(split)) {
    if (!piece) continue;
    if (!han.test(piece)) {
      terms.push(piece);
      continue;
    }
    for (const word of segmenter.segment(piece)) {
      if (!word.segment.trim()) continue;
      terms.push(word.segment);
      const tail = piece.slice(word.index, word.index + maxTail);
      if (tail !== word.segment && han.test(tail)) terms.push(tail);
    }
  }
  return terms;
}
