// Registry texts may mark code with `backticks`: split them so a component can render <code> without v-html.
export interface Segment {
  code: boolean;
  text: string;
}

export function inline(text: string): Segment[] {
  return text.split('`').map((part, i) => ({ code: i % 2 === 1, text: part }));
}
