/// <reference lib="dom" />
// Draws a diagram with mermaid, loaded on the first page that has one. One drawing at a time: mermaid's
// configuration is global, so initialize + render of one diagram must not interleave with another's.
let queue: Promise<unknown> = Promise.resolve();
let drawings = 0;

/**
 * The SVG for `text`, laid out inside `stage`: an invisible element in the same place as the shown drawing,
 * so labels are measured under the very CSS and fonts they are shown in (a label measured elsewhere, then
 * shown under other rules, is taller than its box).
 */
export function renderDiagram(text: string, stage: HTMLElement, dark: boolean): Promise<string> {
  const job = queue.then(async () => {
    const { default: mermaid } = await import('mermaid');
    const fontFamily = getComputedStyle(stage).fontFamily;
    // A label is sized once, when it is laid out: its fonts (Inter, the CJK fallback) must be loaded by then.
    await document.fonts.load(`16px ${fontFamily}`, text).catch(() => []);
    await document.fonts.ready;
    mermaid.initialize({
      startOnLoad: false,
      securityLevel: 'strict',
      // A syntax error throws (the component shows it) instead of drawing mermaid's bomb picture.
      suppressErrorRendering: true,
      theme: dark ? 'dark' : 'default',
      fontFamily,
      htmlLabels: true,
      flowchart: { wrappingWidth: 220 },
    });
    drawings += 1;
    const { svg } = await mermaid.render(`mermaid-${drawings}`, text, stage);
    return svg;
  });
  queue = job.catch(() => {});
  return job;
}
