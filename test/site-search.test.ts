// The site's local search finds Chinese words in the middle of sentences: index and queries are tokenized
// with .vitepress/search.ts, with VitePress's own search options (prefix search, a little fuzziness).
// npm run check:site tries the real search box of the built site in Chromium.
import fs from 'node:fs';
import path from 'node:path';
import MiniSearch from 'minisearch';
import { describe, expect, it } from 'vitest';
import { tokenize } from '../.vitepress/search.ts';
import { root } from './helpers/lab.ts';

const pages = ['00-how-to-use', '01-basic-tcp'].map((slug) => ({
  id: slug,
  text: fs.readFileSync(path.join(root, 'docs', `${slug}.md`), 'utf8'),
}));

// VitePress's own search options in the browser (VPLocalSearchBox.vue): prefix and a little fuzziness.
const browser = {
  prefix: true,
  fuzzy: 0.2,
  tokenize: MiniSearch.getDefault('tokenize') as (t: string) => string[],
};

function index(withTokenizer: boolean) {
  const ms = new MiniSearch({
    fields: ['text'],
    ...(withTokenizer ? { tokenize } : {}),
    searchOptions: browser,
  });
  ms.addAll(pages);
  return ms;
}

describe('site search', () => {
  it.each([
    ['服务器', '01-basic-tcp'],
    ['三次握手', '01-basic-tcp'],
    ['握手', '01-basic-tcp'],
    ['五元组', '01-basic-tcp'],
    ['createServer', '01-basic-tcp'],
    ['回环地址', '00-how-to-use'],
  ])('finds %j inside a sentence (in %s)', (query, page) => {
    expect(
      index(true)
        .search(query)
        .map((r) => r.id),
    ).toContain(page);
  });

  it("needs the tokenizer: MiniSearch's default split finds no Chinese word inside a sentence", () => {
    for (const word of ['握手', '问候语', '监听']) {
      expect(index(false).search(word), word).toEqual([]);
      expect(index(true).search(word).length, word).toBeGreaterThan(0);
    }
  });

  it('survives being sent to the browser as source text (VitePress serializes it): it uses nothing from outside', () => {
    const revived = new Function(`return ${tokenize.toString()}`)() as typeof tokenize;
    expect(revived('三次握手形成会话')).toEqual(tokenize('三次握手形成会话'));
  });

  it('cuts Han runs into words and indexes the tail of the run from each word boundary', () => {
    const terms = tokenize('三次握手形成会话，net.createServer 创建服务器');
    expect(terms).toEqual(expect.arrayContaining(['net', 'createServer', '三次握手形成会话']));
    expect(terms.some((t) => t.startsWith('握手'))).toBe(true);
    expect(terms.some((t) => t.startsWith('服务器'))).toBe(true);
  });
});
