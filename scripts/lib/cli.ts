// What every CLI in scripts/ does the same way: bad input is one line on stderr and exit code 2.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Lab } from '../../labs/index.ts';
import { fail, firstSentence } from '../../labs/lib/cli.ts';
import { requireExercises, resolveLab, UsageError } from './registry.ts';

export { fail };

/** parseArgs with positionals and -h/--help; an unknown flag is one line pointing at `npm run NAME -- --help`. */
export function parseCli(
  command: string,
  options: NonNullable<ParseArgsConfig['options']>,
): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    fail(`${firstSentence((err as Error).message)} (try npm run ${command} -- --help)`);
  }
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
