// scripts/lib/cli.ts, the one flag parser of the CLIs: every bad number is one line and exit 2 (before any work
// starts), --lang behaves the same in grade, exercise and hint, and every --help lists every flag there is.
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it, vi } from 'vitest';
import { type CliSpec, type FlagSpec, usage } from '../scripts/lib/cli.ts';
import { root } from './helpers/lab.ts';

const fixture = path.join(root, 'test/fixtures/workbook');
// Each case starts a CLI (a second or more under load) and a few run at once.
vi.setConfig({ testTimeout: 60_000 });

/** A script run on the fixture workbook (the benchmarks belong to this one). */
function run(file: string, args: string[], workbook: string | null = fixture) {
  return execa(process.execPath, ['--import', 'tsx', path.join(root, 'scripts', file), ...args], {
    cwd: root,
    env: { LANG: 'C', NO_COLOR: '1', ...(workbook ? { WORKBOOK_ROOT: workbook } : {}) },
    extendEnv: false,
    reject: false,
  });
}

describe.concurrent('a bad number is one line on stderr and exit code 2', () => {
  it.each([
    ['check-exercises.ts', ['91', '--jobs', 'x'], "--jobs must be a whole number from 1 to 64, got 'x'"],
    ['check-exercises.ts', ['91', '--jobs', '0'], "--jobs must be a whole number from 1 to 64, got '0'"],
    [
      'check-exercises.ts',
      ['91', '--timeout', '3000000000'],
      "--timeout must be a whole number from 100 to 715827882, got '3000000000'",
    ],
    [
      'check-exercises.ts',
      ['--timeout', '50'],
      "--timeout must be a whole number from 100 to 715827882, got '50'",
    ],
    [
      'grade.ts',
      ['91', '--timeout', '2147483648'],
      "--timeout must be a whole number from 100 to 2147483647, got '2147483648'",
    ],
    [
      'grade.ts',
      ['91', '--timeout', '99'],
      "--timeout must be a whole number from 100 to 2147483647, got '99'",
    ],
    [
      'grade.ts',
      ['91', '--timeout', '1e4'],
      "--timeout must be a whole number from 100 to 2147483647, got '1e4'",
    ],
    [
      'grade.ts',
      ['91', '--timeout'],
      "Option '--timeout <value>' argument missing (try npm run grade -- --help)",
    ],
    ['grade.ts', ['91', '--lang', 'fr'], "--lang must be zh or en, got 'fr'"],
    ['exercise.ts', ['91', '--lang', 'fr'], "--lang must be zh or en, got 'fr'"],
    ['hint.ts', ['91', '--lang', 'fr'], "--lang must be zh or en, got 'fr'"],
    [
      'hint.ts',
      ['91', 'greet', 'extra'],
      'expected at most 2 argument(s) (NN [region]), got: 91 greet extra (try npm run hint -- --help)',
    ],
    ['check-labs.ts', ['--strict'], "Unknown option '--strict' (try npm run check:labs -- --help)"],
  ])('%s %j', async (file, args, message) => {
    const r = await run(file, args);
    expect(r.stderr).toBe(`error: ${message}`);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
  });

  it.each([
    [['09', 'abc'], "each client count must be a whole number from 1 to 100000, got 'abc'"],
    [['09', '10,x'], "each client count must be a whole number from 1 to 100000, got 'x'"],
    [['09', '--messages', '-5'], "--messages must be a whole number from 1 to 100000, got '-5'"],
    [['09', '--messages=-5'], "--messages must be a whole number from 1 to 100000, got '-5'"],
    [['09', '--every', 'x'], "--every must be a whole number from 1 to 60000, got 'x'"],
    [['09', '--every', '0'], "--every must be a whole number from 1 to 60000, got '0'"],
    [['06', '--mib', '3'], "--mib must be a whole number from 16 to 65536, got '3'"],
    [['06', 'extra'], "unexpected argument 'extra' (try npm run bench 06 -- --help)"],
    [['14', '--requests', 'abc'], "--requests must be a whole number from 1 to 10000000, got 'abc'"],
    [['14', '--rounds', '0'], "--rounds must be a whole number from 1 to 1000, got '0'"],
    [['14', '--nope'], "Unknown option '--nope' (try npm run bench 14 -- --help)"],
    [['99'], "no lab '99'; closest:"],
  ])('bench %j', async (args, message) => {
    const r = await run('bench.ts', args, null);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`error: ${message}`);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe('');
  });
});

describe.concurrent('--help is made from the flags, so it lists every one', () => {
  it.each([
    ['grade.ts', [], ['--watch', '--report DIR', '--dir DIR', '--timeout MS', '--lang zh|en', '-h, --help']],
    ['exercise.ts', [], ['--reset', '--dir DIR', '--lang zh|en']],
    ['hint.ts', [], ['--all', '--dir DIR', '--lang zh|en']],
    ['check-exercises.ts', [], ['--timeout MS', '--jobs N']],
    ['check-labs.ts', [], ['-h, --help']],
    ['lab.ts', [], ['usage: npm run lab [NN [role] [-- FLAGS of the lab]]']],
    ['bench.ts', [], ['usage: npm run bench [NN [-- FLAGS of the benchmark]]', '09']],
    ['bench.ts', ['09'], ['--messages N', '--every MS', 'default 100', 'default 50']],
    ['bench.ts', ['06'], ['--mib N', '16 to 65536']],
    [
      'bench.ts',
      ['14'],
      ['usage: npm run bench 14', '--requests N', '--rounds N', 'default 5000', 'default 3'],
    ],
  ] as const)('%s %j --help', async (file, before, words) => {
    const r = await run(file, [...before, '--help'], file === 'bench.ts' ? null : fixture);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const word of words) expect(r.stdout).toContain(word);
  });

  it('grade --help states the exit codes and what kills a run on other systems', async () => {
    const r = await run('grade.ts', ['--help']);
    expect(r.stdout).toMatch(/exit codes: 0 every lab passed · 1 a test failed .* 2 bad usage/);
    expect(r.stdout).toContain('3 grading error');
    expect(r.stdout).toContain('128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM)');
    expect(r.stdout).toContain('elsewhere by its process group');
  });

  it('usage() shows every flag but internal ones, with ranges, choices and defaults', () => {
    const flags = {
      count: { type: 'int', min: 1, max: 9, default: 3, help: 'how many' },
      name: { type: 'string', value: 'WHO', help: 'who' },
      loud: { type: 'boolean', help: 'shout' },
      mode: { type: 'enum', choices: ['a', 'b'], default: 'a', help: 'how' },
      role: { type: 'enum', choices: ['x'], internal: true, help: 'child only' },
    } satisfies Record<string, FlagSpec>;
    const spec: CliSpec<typeof flags> = { command: 'demo', args: 'NN', flags };
    const text = usage(spec);
    expect(text.split('\n')).toEqual([
      'usage: npm run demo NN [-- FLAGS]',
      '  --count N   how many (1 to 9, default 3)',
      '  --name WHO  who',
      '  --loud      shout',
      '  --mode a|b  how (default a)',
      '  -h, --help  this text',
    ]);
  });
});

describe.concurrent('--lang is the same flag in grade, exercise and hint', () => {
  it('hint --lang zh shows only the Chinese, --lang en only the English; without it, both', async () => {
    const zh = await run('hint.ts', ['91', 'greet', '--all', '--lang', 'zh', '--dir', '/dev/null/none']);
    expect(zh.stdout).toContain('提示 1/2：用 console.log');
    expect(zh.stdout).not.toContain('hint 1/2');
    const en = await run('hint.ts', ['91', 'greet', '--all', '--lang', 'en', '--dir', '/dev/null/none']);
    expect(en.stdout).toContain('hint 1/2: Use console.log');
    expect(en.stdout).not.toContain('提示');
    const both = await run('hint.ts', ['91', 'greet', '--all', '--dir', '/dev/null/none']);
    expect(both.stdout).toContain('hint 1/2: Use console.log');
    expect(both.stdout).toContain('提示 1/2：用 console.log');
  });
});
