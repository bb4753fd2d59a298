// ```mermaid fences become <Mermaid code="…"/>: the page carries the diagram's text, and the client-only
// component (Mermaid.vue) draws it. The text travels percent-encoded, so quotes, <, & and {{ }} in a diagram
// can neither end the attribute nor reach Vue's template compiler.
import type { MarkdownRenderer, UserConfig } from 'vitepress';

export const encodeDiagram = (text: string): string => encodeURIComponent(text);
export const decodeDiagram = (code: string): string => decodeURIComponent(code);

/** A markdown-it plugin: the fence rule, wrapped so every other language renders as before. */
export function mermaidFence(md: MarkdownRenderer): void {
  const fence = md.renderer.rules.fence;
  md.renderer.rules.fence = (tokens, idx, options, env, self) => {
    const token = tokens[idx];
    if (token?.info.trim() === 'mermaid') return `<Mermaid code="${encodeDiagram(token.content)}" />\n`;
    return fence ? fence(tokens, idx, options, env, self) : self.renderToken(tokens, idx, options);
  };
}

/**
 * The site config with the fence rule added to its markdown (after any markdown.config of its own), and
 * mermaid pre-bundled by the dev server from the start: found only when the first diagram is drawn, it
 * would make Vite re-bundle and reload the page the reader is on.
 */
export function withDiagrams<T extends UserConfig>(config: T): T {
  const own = config.markdown?.config;
  const optimizeDeps = config.vite?.optimizeDeps;
  return {
    ...config,
    markdown: {
      ...config.markdown,
      config: (md) => {
        own?.(md);
        mermaidFence(md);
      },
    },
    vite: {
      ...config.vite,
      optimizeDeps: { ...optimizeDeps, include: [...(optimizeDeps?.include ?? []), 'mermaid'] },
    },
  };
}
