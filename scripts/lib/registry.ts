// Turns what a person types (`07`, `7`, `07-keepalive`, `keepalive`) into one lab from labs/index.ts,
// or into one clear line naming the closest matches.
import type { Lab } from '../../labs/index.ts';
import { fail } from '../../labs/lib/cli.ts';
import { labs } from './workbook.ts';

export class UsageError extends Error {}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j] as number;
      row[j] = Math.min(here + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length] as number;
}

const name = (lab: Lab) => lab.slug.slice(lab.id.length + 1);

/** Stops a CLI that needs exercises at a lab that has none. */
export function requireExercises(lab: Lab): Lab {
  if (lab.exercises.length === 0)
    throw new UsageError(`lab ${lab.id} has no exercises (no // #region exercise-… in it)`);
  return lab;
}

/** Finds one lab, or throws a UsageError whose message is the one line to print. */
export function resolveLab(input: string, all: readonly Lab[] = labs): Lab {
  const text = input
    .trim()
    .toLowerCase()
    .replace(/\.ts$/, '')
    .replace(/^labs\//, '');
  if (/^\d{1,2}$/.test(text)) {
    const lab = all.find((l) => l.id === text.padStart(2, '0'));
    if (lab) return lab;
  }
  const exact = all.find((l) => l.slug === text || name(l) === text);
  if (exact) return exact;
  const partial = text ? all.filter((l) => l.slug.includes(text)) : [];
  if (partial.length === 1) return partial[0] as Lab;
  if (partial.length > 1) {
    throw new UsageError(`'${input}' is ambiguous: it matches ${partial.map((l) => l.slug).join(', ')}`);
  }
  const closest = [...all]
    .map((l) => ({ l, d: Math.min(distance(text, l.id), distance(text, l.slug), distance(text, name(l))) }))
    .sort((x, y) => x.d - y.d)
    .slice(0, 3)
    .map(({ l }) => l.slug);
  throw new UsageError(
    `no lab '${input}'${closest.length ? `; closest: ${closest.join(', ')}` : ''} (npm run lab lists them all)`,
  );
}

/** The lab a person named, or the one line that says why not (unknown, ambiguous, or without exercises). */
export function labOrFail(input: string, options: { withExercises?: boolean } = {}): Lab {
  try {
    const lab = resolveLab(input);
    return options.withExercises ? requireExercises(lab) : lab;
  } catch (err) {
    if (err instanceof UsageError) fail(err.message);
    throw err;
  }
}
