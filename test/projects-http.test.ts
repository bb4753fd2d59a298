// The http project's tester is tested: the reference passes every stage, so does a Python server through
// run.sh; each fixture with one stage's bug fails at that stage and no earlier, with the message and hint that
// bug deserves; a server that hangs is reported at the stage's limit; the files the tester writes are gone
// afterwards, and nothing the program started outlives grading. The tester's own limits are the only timers.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { hexDifference, isText } from '../scripts/lib/projects/bytes.ts';
import { describeStages, readme, stepText } from '../scripts/lib/projects/describe.ts';
import { hintFor } from '../scripts/lib/projects/grade.ts';
import { httpProject } from '../scripts/lib/projects/http.ts';
import { stepsFor } from '../scripts/lib/projects/index.ts';
import { markedPids, runStage, type StageResult } from '../scripts/lib/projects/run.ts';
import { root } from './helpers/lab.ts';

const fixtures = path.join(root, 'test/fixtures/projects/http');
const seed = 4242;
// Generous: on a busy 2-core machine a TypeScript program can take seconds to start; a correct one answers fast.
const opts = { waitMs: 3000, startMs: 20_000 };

/** The ROOT a stage's program was given, read from the transcript. */
const rootOf = (r: StageResult) =>
  r.transcript.map((t) => /--root (\S+)$/.exec(t)?.[1]).find((x) => x !== undefined);

/** Runs stages 1… in order against DIR/run.sh and stops at the first failure, as `npm run grade` does. */
async function gradeDir(dir: string, upTo = httpProject.stages.length) {
  const results: StageResult[] = [];
  for (let n = 1; n <= upTo; n++) {
    const stage = httpProject.stages[n - 1];
    if (!stage) break;
    const r = await runStage(stage, stepsFor(httpProject, n, seed), { dir, ...opts });
    results.push(r);
    // Nothing the program started outlives its stage, and neither do the files the tester wrote for it.
    expect(r.marker && markedPids(r.marker)).toEqual([]);
    const given = rootOf(r);
    expect(given, 'every stage gives the program --root').toBeDefined();
    expect(fs.existsSync(path.dirname(given as string))).toBe(false);
    if (!r.ok) return { failedAt: n, result: r, results };
  }
  return { failedAt: undefined, result: undefined, results };
}

const stageNo = (slug: string) => httpProject.stages.findIndex((s) => s.slug === slug) + 1;

// One fixture per mistake: the reference with exactly that bug, graded from stage 1.
const bugs: [string, string, RegExp][] = [
  ['port-only', 'bind', /exited with code 1 before accepting a connection/],
  ['lf-only', 'file', /^A received a line that ends with \\n alone$/],
  ['char-length', 'file', /^A received "Content-Length: \d+", but [\w-]+\.txt has \d+ bytes$/],
  ['utf8-body', 'file', /^B received a different body from the bytes of [\w-]+\.bin/],
  ['crash-on-missing', 'missing', /^the program exited with code 1: the server closed A's connection/],
  // The exit a second after the connection closed (under load it can lag): still the program's exit, not an EOF.
  ['exit-later', 'missing', /^the program exited with code 1: the server closed A's connection/],
  ['no-length', 'missing', /^A received a response without Content-Length$/],
  ['close-each', 'keep-alive', /^the server closed A's connection \(EOF\)/],
  // One 'data' taken as one request: it waits for the rest of a request that already came (a timeout), or,
  // when the kernel merged some of the pieces, answers 400 to a valid request; which one is the chunking's call.
  [
    'data-is-request',
    'framing',
    /^A (waited 3000 ms for the status line "HTTP\/1\.1 200 OK\\r\\n"|expected the status 200 and received 400)/,
  ],
  ['ignore-body', 'framing', /^A expected the status 200 and received 400$/],
  ['one-at-a-time', 'concurrent', /^C waited 3000 ms for the status line/],
  ['no-final-chunk', 'chunked', /^A waited 3000 ms for the next chunk/],
  [
    'listing-length',
    'chunked',
    /^A expected the header "Transfer-Encoding: chunked", not "Content-Length: \d+"$/,
  ],
  [
    'chunk-chars',
    'chunked',
    /bytes its chunk size announced, and they are followed by ".*" instead of "\\r\\n"$/,
  ],
  [
    'traversal',
    'garbage',
    /^D expected the status 403 or 404 and received 200: it answered a path that leaves ROOT/,
  ],
  ['no-header-limit', 'garbage', /^C waited 3000 ms for the status line "HTTP\/1\.1 431 /],
];

describe.concurrent('the http project tester', { timeout: 240_000 }, () => {
  it('passes the reference solution at every stage', async () => {
    const { failedAt, result, results } = await gradeDir(path.join(fixtures, 'reference'));
    expect(
      failedAt,
      `${result?.failure?.message}\n${result?.transcript.slice(-8).join('\n')}`,
    ).toBeUndefined();
    expect(results).toHaveLength(httpProject.stages.length);
  });

  // The tester sees only run.sh and the sockets: a server in another language is graded the same way.
  it.skipIf(spawnSync('python3', ['--version']).status !== 0)(
    'passes a Python server (a thread per connection) started by run.sh at every stage',
    async () => {
      const { failedAt, result, results } = await gradeDir(path.join(fixtures, 'python'));
      expect(
        failedAt,
        `${result?.failure?.message}\n${result?.transcript.slice(-8).join('\n')}`,
      ).toBeUndefined();
      expect(results).toHaveLength(httpProject.stages.length);
    },
  );

  for (const [bug, slug, message] of bugs) {
    it(`fails the '${bug}' bug at stage ${stageNo(slug)} (${slug}) and no earlier`, async () => {
      const { failedAt, result } = await gradeDir(path.join(fixtures, 'bugs', bug));
      expect(
        failedAt,
        `the '${bug}' fixture should fail at stage ${stageNo(slug)}: ${result?.failure?.message}\n${result?.transcript.slice(-8).join('\n')}`,
      ).toBe(stageNo(slug));
      expect(result?.failure?.message).toMatch(message);
    });
  }

  it('shows a wrong byte of a binary file as a hex dump row with a caret, and says why', async () => {
    const { result } = await gradeDir(path.join(fixtures, 'bugs/utf8-body'), 2);
    const f = result?.failure;
    expect(f?.kind).toBe('wrong-body');
    // The file starts 89 00 0d 0a ff fe c3; decoded as UTF-8 and encoded again, 0x89 becomes U+FFFD (ef bf bd).
    expect(f?.details[0]).toMatch(/^expected: 00000000 {2}89 00 0d 0a ff fe c3 /);
    expect(f?.details[1]).toMatch(/^received: 00000000 {2}ef bf bd 00 0d 0a /);
    expect(f?.details[2]).toBe(`${' '.repeat(20)}^^ byte 0: expected 0x89, received 0xef`);
    expect(hintFor(httpProject.stages[1] as never, result as StageResult, 'en')).toMatch(
      /^send a file as the bytes you read/,
    );
  });

  it('names a bare \\n with a caret under it, and counts Content-Length in bytes, in both languages', async () => {
    const lf = (await gradeDir(path.join(fixtures, 'bugs/lf-only'), 2)).result as StageResult;
    expect(lf.failure?.details).toEqual([
      'expected: "HTTP/1.1 200 OK\\r\\n"',
      'received: "HTTP/1.1 200 OK\\n"',
      `${' '.repeat(26)}^ byte 15: expected 0x0d, received 0x0a`,
    ]);
    const chars = (await gradeDir(path.join(fixtures, 'bugs/char-length'), 2)).result as StageResult;
    const stage = httpProject.stages[1] as never;
    expect(hintFor(stage, chars, 'en')).toMatch(/^Content-Length counts bytes, not characters/);
    expect(hintFor(stage, chars, 'zh')).toMatch(/^Content-Length 数的是字节而不是字符/);
  });

  it('reports a server that hangs, and a response that never ends, at the stage limit', async () => {
    for (const [bug, n] of [
      ['one-at-a-time', stageNo('concurrent')],
      ['no-final-chunk', stageNo('chunked')],
    ] as const) {
      const r = await runStage(httpProject.stages[n - 1] as never, stepsFor(httpProject, n, seed), {
        dir: path.join(fixtures, 'bugs', bug),
        ...opts,
      });
      expect(r.failure?.kind).toBe('timeout');
      // The verdict comes at the limit: start-up, the passing steps, and one wait of waitMs.
      expect(r.ms - (r.readyMs ?? 0)).toBeGreaterThanOrEqual(opts.waitMs);
      expect(r.ms - (r.readyMs ?? 0)).toBeLessThan(opts.waitMs + 2000);
      expect(markedPids(r.marker as string)).toEqual([]);
    }
  });
});

describe('the http stages as a person reads them', () => {
  it('shows what each response must be, and the files the tester writes', () => {
    const [bind, file] = describeStages(httpProject, 'en');
    expect(bind?.dialogue[0]).toMatch(/^tester → ROOT\/[\w-]+\.txt: \d+ bytes "/);
    expect(bind?.dialogue[1]).toBe('A connects');
    expect(file?.dialogue).toContainEqual(
      expect.stringMatching(/^tester → ROOT\/[\w-]+\.bin: \d+ bytes of binary$/),
    );
    expect(file?.dialogue).toContainEqual(
      expect.stringMatching(
        /^A ← HTTP\/1\.1 200 OK · Content-Length: \d+ · body: the \d+ bytes of [\w-]+\.txt$/,
      ),
    );
    const chunked = stepsFor(httpProject, stageNo('chunked'), 1).find((s) => s.op === 'response');
    expect(stepText(chunked as never, 'en')).toMatch(
      /^A ← HTTP\/1\.1 200 OK · Transfer-Encoding: chunked \(no Content-Length\) · body: these lines, in any order: .*"笔记-.*, then "0\\r\\n\\r\\n"$/,
    );
    const secret = stepsFor(httpProject, stageNo('garbage'), 1).find((s) => s.op === 'file' && s.outside);
    expect(stepText(secret as never, 'zh')).toMatch(
      /^测试器 → secret-[\w-]+\.txt，在 ROOT 旁边、ROOT 之外：/,
    );
  });

  it('draws a hex dump row for bytes that are not text', () => {
    const want = Uint8Array.from([...Array(20).keys()]);
    const got = Uint8Array.from(want);
    got[17] = 0x41;
    expect(hexDifference(got, want)).toEqual([
      'expected: 00000010  10 11 12 13                                      |....|',
      'received: 00000010  10 41 12 13                                      |.A..|',
      `${' '.repeat(23)}^^ byte 17: expected 0x11, received 0x41`,
    ]);
    expect(isText(new TextEncoder().encode('你好\r\n'))).toBe(true);
    expect(isText(Uint8Array.from([0x68, 0x00]))).toBe(false);
    expect(isText(Uint8Array.from([0xff]))).toBe(false);
  });

  it('gives every bug fixture a run.sh that execs the reference with its --bug switch', () => {
    const reference = fs.readFileSync(path.join(fixtures, 'reference/server.ts'), 'utf8');
    const dirs = fs.readdirSync(path.join(fixtures, 'bugs'));
    // Every fixture is graded above, and every graded bug has its fixture.
    expect(dirs.sort()).toEqual(bugs.map(([bug]) => bug).sort());
    for (const dir of dirs) {
      expect(fs.readFileSync(path.join(fixtures, 'bugs', dir, 'run.sh'), 'utf8')).toContain(
        `--bug ${dir} "$@"`,
      );
      expect(reference).toContain(`'${dir}'`);
    }
  });

  it('renders the project pages from the same stage definitions', () => {
    for (const [file, locale] of [
      ['docs/projects/http.md', 'zh'],
      ['docs/en/projects/http.md', 'en'],
    ] as const)
      expect(fs.readFileSync(path.join(root, file), 'utf8')).toContain(
        `<ProjectStages project="http" locale="${locale}" />`,
      );
  });
});

const cli = (script: string, args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, ['--import', 'tsx', path.join(root, 'scripts', script), ...args], {
    cwd: root,
    reject: false,
    env: { ...env, LANG: 'en_US.UTF-8' },
  });

describe.concurrent('npm run grade http and npm run project http', { timeout: 120_000 }, () => {
  it('grades a project folder and writes grade.json, JUnit XML and the GitHub Classroom result', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'project-http-report-'));
    const r = await cli('grade.ts', [
      'http',
      '--dir',
      path.join(fixtures, 'bugs/no-length'),
      '--report',
      dir,
      '--seed',
      '7',
    ]);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toContain('re-run this stage: npm run grade http -- --stage 3 --seed 7 --dir');
    expect(r.stdout).toMatch(/http: 20\/100 points, 2 of 8 stages passed/);
    const classroom = JSON.parse(fs.readFileSync(path.join(dir, 'classroom.json'), 'utf8'));
    expect(classroom).toMatchObject({ version: 1, status: 'fail', max_score: 100 });
    expect(classroom.tests.map((t: { status: string; score: number }) => [t.status, t.score])).toEqual([
      ['pass', 5],
      ['pass', 15],
      ['fail', 0],
      ...Array(5).fill(['fail', 0]),
    ]);
    expect(classroom.tests[2].message).toContain('A received a response without Content-Length');
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'grade.json'), 'utf8'));
    expect(json).toMatchObject({ project: 'http', seed: 7, score: 20, maxScore: 100 });
    expect(fs.readFileSync(path.join(dir, 'junit.xml'), 'utf8')).toContain(
      '<testsuite name="project http" tests="8" failures="1" skipped="5">',
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes projects/http/ with the README of these stages and a run.sh that says what it is given', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'project-http-new-'));
    const r = await cli('project.ts', ['http', '--dir', base]);
    expect(r.exitCode, r.stderr).toBe(0);
    const dir = path.join(base, 'http');
    expect(fs.readFileSync(path.join(dir, 'server.ts'), 'utf8')).toBe('');
    const sh = fs.readFileSync(path.join(dir, 'run.sh'), 'utf8');
    expect(sh).toContain('# The tester runs this with --port N --root DIR.');
    expect(sh).toMatch(/^exec node --import tsx server\.ts "\$@"$/m);
    const text = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
    expect(text).toBe(readme(httpProject));
    for (const locale of ['zh', 'en'] as const)
      for (const s of describeStages(httpProject, locale)) expect(text).toContain(s.dialogue.join('\n'));
    const list = await cli('project.ts', []);
    expect(list.stdout).toMatch(
      /^http: A static-file HTTP server from an empty file .*\(8 stages, 100 points\)$/m,
    );
    fs.rmSync(base, { recursive: true, force: true });
  });
});
