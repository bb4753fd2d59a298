// What every lab does the same way: read its role and flags, turn a fatal error into one clear line,
// and stop cleanly on Ctrl-C / SIGTERM. Kept small on purpose: a lab must stay readable without this file.
import { parseArgs } from 'node:util';
import { describeError } from './log.ts';

export interface FlagSpec {
  /** 'string' (the default) takes a value: `--count 3`; 'boolean' is a switch: `--verbose`. */
  type?: 'string' | 'boolean';
  default?: string;
  help: string;
}

export interface LabSpec<Role extends string> {
  /** The roles besides the demo; run with no role, a lab plays its demo. */
  roles: readonly Role[];
  /** The port a server binds and a client targets when `--port` is not given. */
  port: number;
  /** Defaults to 127.0.0.1: labs stay on loopback unless the reader asks otherwise. */
  host?: string;
  flags?: Record<string, FlagSpec>;
  argv?: readonly string[];
}

export interface LabArgs<Role extends string> {
  role: Role | 'demo';
  host: string;
  port: number;
  /** A string flag's value (its default when not given). */
  flag(name: string): string;
  /** A string flag's value as a whole number, or a clear error and exit 2. */
  int(name: string): number;
  /** Whether a string flag was given at all (for flags with no default). */
  given(name: string): boolean;
  /** A boolean flag. */
  has(name: string): boolean;
}

/** Prints one line to stderr and exits: the learner sees what went wrong, not a stack trace. */
export function fail(message: string, exitCode = 2): never {
  console.error(`error: ${message}`);
  process.exit(exitCode);
}

/** The error handler for a server or client that cannot go on: one line, exit 1. */
export function fatal(actor: string, err: unknown): never {
  console.error(`[${actor}] error: ${describeError(err)}`);
  process.exit(1);
}

/** `text` as a whole number from min to max, or undefined (the one check, used by scripts/lib/cli.ts too). */
export function wholeNumber(text: string, min: number, max: number): number | undefined {
  const n = Number(text);
  return /^\d+$/.test(text) && n >= min && n <= max ? n : undefined;
}

/** A flag's whole number, or one line and exit 2. `what` is the flag's name, or a phrase for a positional. */
export function toInt(name: string, text: string, min: number, max: number, what = `--${name}`): number {
  const n = wholeNumber(text, min, max);
  if (n === undefined) fail(`${what} must be a whole number from ${min} to ${max}, got '${text}'`);
  return n;
}

export function parseLabArgs<const Role extends string>(spec: LabSpec<Role>): LabArgs<Role> {
  const flags = spec.flags ?? {};
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    port: { type: 'string' },
    host: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, f] of Object.entries(flags)) options[name] = { type: f.type ?? 'string' };
  const usage = () => {
    const roles = spec.roles.length ? `[${spec.roles.join('|')}]` : '';
    const lines = [
      `usage: npm run lab <id> ${roles} [-- --port N --host H${Object.keys(flags)
        .map((n) => ` --${n}`)
        .join('')}]`,
      '  no role: play the demo and exit',
      `  --port N   port to bind (server, receiver) or to reach (client, sender); default ${spec.port}`,
      `  --host H   address to bind or to reach; default ${spec.host ?? '127.0.0.1'}`,
      ...Object.entries(flags).map(
        ([n, f]) => `  --${n}${f.default !== undefined ? ` (default ${f.default})` : ''}   ${f.help}`,
      ),
    ];
    return lines.join('\n');
  };

  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...(spec.argv ?? process.argv.slice(2))],
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    // parseArgs explains itself well ("Unknown option '--prot'"); keep its words, drop the stack.
    fail(`${firstSentence((err as Error).message)} (try --help)`);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(usage());
    process.exit(0);
  }
  if (positionals.length > 1) fail(`expected at most one role, got: ${positionals.join(' ')} (try --help)`);
  const role = positionals[0] ?? 'demo';
  if (role !== 'demo' && !spec.roles.includes(role as Role)) {
    const known = spec.roles.length ? spec.roles.join(', ') : 'none';
    fail(`unknown role '${role}': this lab's roles are ${known} (or no role for the demo)`);
  }
  const str = (name: string) => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  return {
    role: role as Role | 'demo',
    host: str('host') ?? spec.host ?? '127.0.0.1',
    port: str('port') === undefined ? spec.port : toInt('port', str('port') as string, 0, 65535),
    flag(name) {
      const v = str(name) ?? flags[name]?.default;
      if (v === undefined) fail(`--${name} is required (try --help)`);
      return v;
    },
    int(name) {
      return toInt(name, this.flag(name), 0, Number.MAX_SAFE_INTEGER);
    },
    given(name) {
      return str(name) !== undefined;
    },
    has(name) {
      return values[name] === true;
    },
  };
}

/**
 * Runs `stop` on the first SIGINT or SIGTERM so a server can say goodbye and exit 0.
 * A second signal while stopping exits at once (press Ctrl-C twice to force).
 */
export function onShutdown(stop: (signal: NodeJS.Signals) => void | Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    Promise.resolve(stop(signal)).then(
      () => process.exit(0),
      (err) => fatal('shutdown', err),
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

/** parseArgs's first sentence ("Unknown option '--prot'"), without its advice about positionals. */
export function firstSentence(message: string): string {
  return (message.split('\n')[0] as string).replace(/\. To specify a positional argument.*$/, '');
}
