// The one way the CLIs in scripts/ read their flags: a spec per flag (its type, range or choices, default and
// help), from which both the parsing and the usage text come, so `--help` lists every flag there is. Bad input
// is one line on stderr and exit code 2, never a stack trace. (Labs have their own, labs/lib/cli.ts; the whole
// number check is that file's, so there is one.)
import { parseArgs } from 'node:util';
import { fail, firstSentence, toInt } from '../../labs/lib/cli.ts';

export { fail };

/** The largest delay a Node timer takes (2^31 - 1 ms); a longer one fires at once, with a warning. */
export const maxTimerMs = 2_147_483_647;

interface Common {
  help: string;
  /** A one-letter alias: `-w`. */
  short?: string;
  /** Accepted but left out of the usage text's flag list (a benchmark's internal roles). */
  internal?: boolean;
}
export type FlagSpec =
  | (Common & { type: 'boolean' })
  | (Common & { type: 'string'; value?: string; default?: string })
  | (Common & { type: 'int'; value?: string; min: number; max: number; default?: number })
  | (Common & { type: 'enum'; choices: readonly string[]; default?: string });

type ValueOf<S extends FlagSpec> = S extends { type: 'boolean' }
  ? boolean
  : S extends { type: 'int' }
    ? S extends { default: number }
      ? number
      : number | undefined
    : S extends { type: 'enum'; choices: readonly (infer C)[] }
      ? S extends { default: string }
        ? C
        : C | undefined
      : S extends { default: string }
        ? string
        : string | undefined;

export type Values<F extends Record<string, FlagSpec>> = { [K in keyof F]: ValueOf<F[K]> };

export interface CliSpec<F extends Record<string, FlagSpec>> {
  /** How it is run, without `npm run`: `grade`, `bench 09`. */
  command: string;
  /** The positional part of the usage line: `NN [region]`. */
  args?: string;
  /** What it does, the lines under the usage line. */
  about?: readonly string[];
  flags: F;
  /** How many positionals it takes (default any number). */
  positionals?: { min?: number; max?: number };
  /** Lines after the flag list (exit codes, say). */
  notes?: readonly string[];
}

export interface Parsed<F extends Record<string, FlagSpec>> {
  values: Values<F>;
  positionals: string[];
}

const flagWord = (name: string, spec: FlagSpec) => {
  if (spec.type === 'boolean') return `--${name}`;
  if (spec.type === 'enum') return `--${name} ${spec.choices.join('|')}`;
  return `--${name} ${spec.value ?? (spec.type === 'int' ? 'N' : 'TEXT')}`;
};

/** The usage text, made from the spec: every flag, its range or choices, and its default. */
export function usage<F extends Record<string, FlagSpec>>(spec: CliSpec<F>): string {
  const shown = Object.entries(spec.flags).filter(([, f]) => !f.internal);
  const words = shown.map(([n, f]) => flagWord(n, f));
  const width = Math.max('-h, --help'.length, ...words.map((w) => w.length)) + 2;
  const lines = [
    `usage: npm run ${spec.command}${spec.args ? ` ${spec.args}` : ''}${shown.length ? ' [-- FLAGS]' : ''}`,
    ...(spec.about ?? []).map((l) => `  ${l}`),
  ];
  shown.forEach(([, f], i) => {
    const extra: string[] = [];
    if (f.type === 'int') extra.push(`${f.min} to ${f.max}`);
    if ('default' in f && f.default !== undefined) extra.push(`default ${f.default}`);
    const word = words[i] as string;
    lines.push(
      `  ${word}${' '.repeat(width - word.length)}${f.help}${extra.length ? ` (${extra.join(', ')})` : ''}`,
    );
  });
  lines.push(`  ${'-h, --help'.padEnd(width)}this text`);
  for (const note of spec.notes ?? []) lines.push(note && `  ${note}`);
  return lines.join('\n');
}

/**
 * Parses argv against the spec. `--help` prints the usage and exits 0; an unknown flag, a missing or bad value,
 * a number out of range or a wrong count of positionals is one line on stderr and exit 2.
 */
export function parseCli<const F extends Record<string, FlagSpec>>(
  spec: CliSpec<F>,
  argv: readonly string[] = process.argv.slice(2),
): Parsed<F> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, f] of Object.entries(spec.flags))
    options[name] = { type: f.type === 'boolean' ? 'boolean' : 'string', ...(f.short && { short: f.short }) };
  const hint = `(try npm run ${spec.command} -- --help)`;
  // `--messages -5`: parseArgs calls a value that starts with a dash ambiguous; a negative number is plainly
  // the flag's value (and then out of range, which says more).
  const args = [...argv];
  for (let i = args.length - 1; i > 0; i--) {
    const flag = (args[i - 1] as string).replace(/^--/, '');
    if (/^-\d/.test(args[i] as string) && options[flag]?.type === 'string' && args[i - 1]?.startsWith('--')) {
      args.splice(i - 1, 2, `--${flag}=${args[i]}`);
      i--;
    }
  }
  let raw: ReturnType<typeof parseArgs>;
  try {
    raw = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    fail(`${firstSentence((err as Error).message)} ${hint}`);
  }
  if (raw.values.help) {
    console.log(usage(spec));
    process.exit(0);
  }
  const values: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    const given = raw.values[name];
    if (f.type === 'boolean') {
      values[name] = given === true;
      continue;
    }
    if (typeof given !== 'string') {
      values[name] = f.default;
      continue;
    }
    if (f.type === 'int') values[name] = toInt(name, given.trim(), f.min, f.max);
    else if (f.type === 'enum') {
      if (!f.choices.includes(given)) fail(`--${name} must be ${f.choices.join(' or ')}, got '${given}'`);
      values[name] = given;
    } else {
      if (given === '') fail(`--${name} needs a value ${hint}`);
      values[name] = given;
    }
  }
  const { min = 0, max = Number.POSITIVE_INFINITY } = spec.positionals ?? {};
  const positionals = raw.positionals;
  if (positionals.length > max)
    fail(
      max === 0
        ? `unexpected argument '${positionals[0]}' ${hint}`
        : `expected at most ${max} argument(s) (${spec.args}), got: ${positionals.join(' ')} ${hint}`,
    );
  if (positionals.length < min) {
    console.error(usage(spec));
    process.exit(2);
  }
  return { values: values as Values<F>, positionals };
}

/** A whole number given as a positional or inside a list: the same check and message as a flag's. */
export function intArg(what: string, text: string, min: number, max: number): number {
  return toInt(what, text.trim(), min, max, what);
}

/** `--lang zh|en`, the same in grade, exercise and hint. */
export const langFlag = {
  type: 'enum',
  choices: ['zh', 'en'],
  help: 'only this language (default: both where both are shown; a table follows LANG)',
} as const satisfies FlagSpec;

/** The languages to show: the one asked for, else both (zh first if LANG is Chinese). */
export function languages(lang: 'zh' | 'en' | undefined): ('zh' | 'en')[] {
  if (lang) return [lang];
  return /^zh/i.test(process.env.LANG ?? '') ? ['zh', 'en'] : ['en', 'zh'];
}
