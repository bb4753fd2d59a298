// A ```mermaid fence reaches the page as <Mermaid code="…"/> and comes back out character for character:
// quotes, <, &, {{ }} and Chinese can neither end the attribute nor reach Vue's template compiler. The
// renderer is VitePress's own, with the fence rule the site uses (.vitepress/theme/mermaid-fence.ts).
import { createMarkdownRenderer } from 'vitepress';
import { describe, expect, it } from 'vitest';
import { decodeDiagram, mermaidFence } from '../.vitepress/theme/mermaid-fence.ts';
import { root } from './helpers/lab.ts';

const diagram = [
  'flowchart LR',
  '  A["接受队列 ESTABLISHED，最多 backlog + 1 条"] -->|"a < b && c > d"| B[\'single\']',
  '  B --> C["{{ notVue }} </Mermaid> <script>alert(1)</script>"]',
  '',
].join('\n');

describe('the mermaid fence', async () => {
  const md = await createMarkdownRenderer(root, {}, '/');
  mermaidFence(md);

  it('becomes one <Mermaid> whose code attribute decodes to the diagram as written', () => {
    const html = md.render(`text\n\n\`\`\`mermaid\n${diagram}\`\`\`\n`);
    const tags = [...html.matchAll(/<Mermaid code="([^"]*)" \/>/g)];
    expect(tags).toHaveLength(1);
    const code = tags[0]?.[1] ?? '';
    expect(code).not.toMatch(/[<>"&{}\s]/); // ' may stay: the attribute is in double quotes
    expect(decodeDiagram(code)).toBe(diagram);
    expect(html).not.toContain('<script>');
  });

  it('leaves every other fence to VitePress', () => {
    const html = md.render('```ts\nconst a = 1;\n```\n');
    expect(html).not.toContain('<Mermaid');
    expect(html).toContain('language-ts');
  });
});
