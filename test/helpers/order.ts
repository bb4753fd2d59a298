// One assertion for "these lines come in this order", with a failure that says which one is missing or late
// and shows the lines around where it should be (the copies it replaces printed an array holding -1).
import { expect } from 'vitest';

/** How many lines of context a failure shows on each side. */
const around = 3;

/**
 * Asserts that each pattern matches some line and that their first matches come in the order given (a
 * pattern may share its line with the previous one). Returns the index of each first match.
 */
export function expectInOrder(lines: readonly string[], patterns: readonly RegExp[]): number[] {
  const problem = orderProblem(lines, patterns);
  if (problem) expect.fail(problem);
  return patterns.map((re) => lines.findIndex((l) => re.test(l)));
}

/** Why `lines` do not match `patterns` in order (the message expectInOrder fails with), or undefined. */
export function orderProblem(lines: readonly string[], patterns: readonly RegExp[]): string | undefined {
  let previous = -1;
  for (const [i, re] of patterns.entries()) {
    const at = lines.findIndex((l) => re.test(l));
    const which = `pattern ${i + 1} of ${patterns.length}, ${re}`;
    if (at === -1) {
      // Show where it should have been: after the previous pattern's line.
      return `${which}, matches no line; expected after line ${previous + 1}${i > 0 ? ` (pattern ${i}, ${patterns[i - 1]})` : ''}:\n${excerpt(lines, previous + 1, previous)}`;
    }
    if (at < previous) {
      return `${which}, first matches line ${at + 1} (${JSON.stringify(lines[at])}), before line ${previous + 1} where pattern ${i}, ${patterns[i - 1]}, matched; it should come after it:\n${excerpt(lines, previous, previous)}`;
    }
    previous = at;
  }
  return undefined;
}

/** The lines around `center` (numbered from 1), with `>` on `mark`; `(no lines)` for an empty output. */
function excerpt(lines: readonly string[], center: number, mark: number): string {
  if (lines.length === 0) return '  (no lines)';
  const from = Math.max(0, Math.min(center, lines.length) - around);
  const to = Math.min(lines.length, Math.max(center, 0) + around + 1);
  const width = String(to).length;
  const shown = lines
    .slice(from, to)
    .map((l, k) => `${from + k === mark ? '>' : ' '} ${String(from + k + 1).padStart(width)} | ${l}`);
  if (from > 0) shown.unshift(`  … ${from} line(s) before`);
  if (to < lines.length) shown.push(`  … ${lines.length - to} line(s) after`);
  return shown.join('\n');
}
