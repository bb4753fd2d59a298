// The project tester is tested: the reference passes every stage, each fixture with one stage's bug fails at
// that stage and no earlier, a program that hangs or never listens is reported clearly, and nothing it started
// outlives grading. The tester's own limits are the only timers.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { escapeBytes, showDifference } from '../scripts/lib/projects/bytes.ts';
import { chatProject } from '../scripts/lib/projects/chat.ts';
import { describeStages, readme } from '../scripts/lib/projects/describe.ts';
import { hintFor } from '../scripts/lib/projects/grade.ts';
import { stepsFor } from '../scripts/lib/projects/index.ts';
import { freePort, lineHint, markedPids, runStage, type StageResult } from '../scripts/lib/projects/run.ts';
import { root } from './helpers/lab.ts';

const fixtures = path.join(root, 'test/fixtures/projects/chat');
const seed = 4242;
// Generous: on a busy 2-core machine a TypeScript program can take seconds to start; a correct one answers fast.
const opts = { waitMs: 3000, startMs: 20_000 };

/** Runs stages 1… in order against DIR/run.sh and stops at the first failure, as `npm run grade` does. */
async function gradeDir(dir: string, upTo = chatProject.stages.length) {
  const results: StageResult[] = [];
  for (let n = 1; n <= upTo; n++) {
    const stage = chatProject.stages[n - 1];
    if (!stage) break;
    const r = await runStage(stage, stepsFor(chatProject, n, seed), { dir, ...opts });
    results.push(r);
    // Nothing the program started outlives its stage.
    expect(r.marker && markedPids(r.marker)).toEqual([]);
    if (!r.ok) return { failedAt: n, result: r, results };
  }
  return { failedAt: undefined, result: undefined, results };
}

const stageNo = (slug: string) => chatProject.stages.findIndex((s) => s.slug === slug) + 1;

describe.concurrent('the chat project tester', { timeout: 240_000 }, () => {
  it('passes the reference solution at every stage', async () => {
    const { failedAt, result, results } = await gradeDir(path.join(fixtures, 'reference'));
    expect(
      failedAt,
      `${result?.failure?.message}\n${result?.failure?.details.join('\n')}\n${result?.transcript.slice(-8).join('\n')}`,
    ).toBeUndefined();
    expect(results).toHaveLength(chatProject.stages.length);
  });

  // The tester sees only run.sh and the sockets: a server in another language is graded the same way.
  it.skipIf(spawnSync('python3', ['--version']).status !== 0)(
    'passes a Python server started by run.sh at every stage',
    async () => {
      const { failedAt, result, results } = await gradeDir(path.join(fixtures, 'python'));
      expect(failedAt, result?.failure?.message).toBeUndefined();
      expect(results).toHaveLength(chatProject.stages.length);
    },
  );

  // One fixture per stage: the reference with exactly that stage's bug, graded from stage 1.
  const bugs: [string, string, RegExp][] = [
    ['fixed-port', 'bind', /did not accept a connection|before accepting/],
    ['lf-only', 'greet', /different line/],
    ['keep-cr', 'echo', /different line/],
    ['one-at-a-time', 'clients', /waited 3000 ms/],
    ['echo-to-sender', 'broadcast', /different line/],
    ['leave-twice', 'nicknames', /different line/],
    ['split-colons', 'commands', /different line/],
    ['data-is-line', 'framing', /waited|different line/],
    ['no-send-limit', 'limits', /never dropped|waited|got nothing/],
    ['close-only', 'shutdown', /waited 3000 ms|did not exit/],
  ];
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

  it('reports a stray \\n with a caret under the first wrong byte and a hint', async () => {
    const { result } = await gradeDir(path.join(fixtures, 'bugs', 'lf-only'), 2);
    const f = result?.failure;
    expect(f?.kind).toBe('wrong-line');
    expect(f?.details.join('\n')).toContain('expected: "* welcome, you are anonymous\\r\\n"');
    expect(f?.details.join('\n')).toContain('received: "* welcome, you are anonymous\\n"');
    expect(f?.details[2]).toMatch(/^ {39}\^ byte 28: expected 0x0d, received 0x0a$/);
    expect(f?.hint).toMatch(/ends with \\n alone/);
  });

  it('reports a program that hangs at the stage limit, not later', async () => {
    const { result } = await gradeDir(path.join(fixtures, 'bugs', 'one-at-a-time'), 4);
    const f = result?.failure;
    expect(f?.kind).toBe('timeout');
    expect(f?.message).toMatch(/^B waited 3000 ms for the line "\* welcome, you are anonymous\\r\\n"/);
    // The verdict comes at the limit: start-up, the passing steps, and one wait of waitMs.
    expect((result?.ms ?? 0) - (result?.readyMs ?? 0)).toBeLessThan(opts.waitMs + 2000);
  });

  it('reports a program that exits at once, with its stderr', async () => {
    const r = await runStage(chatProject.stages[0] as never, stepsFor(chatProject, 1, seed), {
      dir: path.join(fixtures, 'odd/crash'),
      ...opts,
    });
    expect(r.failure?.kind).toBe('never-listened');
    expect(r.failure?.message).toMatch(/exited with code 3 before accepting a connection/);
    expect(r.failure?.stderr).toContain('boom: cannot start');
  });

  it('tries a new port when the program says the address is in use, then says so with a hint', async () => {
    const stage = chatProject.stages[0] as never;
    const r = await runStage(stage, stepsFor(chatProject, 1, seed), {
      dir: path.join(fixtures, 'odd/in-use'),
      ...opts,
    });
    expect(r.failure?.message).toMatch(/exited with code 1 before accepting a connection/);
    expect(r.failure?.stderr.join('\n')).toContain('EADDRINUSE');
    expect(hintFor(stage, r, 'en')).toMatch(/^address already in use: .*bind the port given with --port/);
  });

  // freePort() closes the port it found before the program binds it: another test's server can take it meanwhile,
  // and a connection to it then reaches that server. The tester checks who listens before it believes a connection.
  it('tries a new port when another process took the free port before the program bound it', async () => {
    const decoy = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => decoy.listen(0, '127.0.0.1', resolve));
    const taken = (decoy.address() as net.AddressInfo).port;
    try {
      const handed: number[] = [];
      const r = await runStage(chatProject.stages[0] as never, stepsFor(chatProject, 1, seed), {
        dir: path.join(fixtures, 'reference'),
        ...opts,
        ports: async () => {
          handed.push(handed.length ? await freePort() : taken);
          return handed.at(-1) as number;
        },
      });
      expect(r.ok, r.failure?.message).toBe(true);
      expect(handed).toHaveLength(2);
      expect(r.transcript).toContain(
        `127.0.0.1:${taken} is held by another process, not the program: trying a new port`,
      );
      expect(r.transcript).toContain(`A connected to 127.0.0.1:${handed[1]}`);
      // Three taken ports in a row: the tester gives up with a line that says so, not an EOF blamed on the program.
      const again = await runStage(chatProject.stages[0] as never, stepsFor(chatProject, 1, seed), {
        dir: path.join(fixtures, 'reference'),
        ...opts,
        ports: async () => taken,
      });
      expect(again.failure?.kind).toBe('never-listened');
      expect(again.failure?.message).toBe(
        `127.0.0.1:${taken} was held by another process, not the program (3 ports in a row)`,
      );
      expect(markedPids(again.marker as string)).toEqual([]);
    } finally {
      decoy.close();
    }
  });

  it('reports a program that never listens at the start-up limit, and kills it', async () => {
    const r = await runStage(chatProject.stages[0] as never, stepsFor(chatProject, 1, seed), {
      dir: path.join(fixtures, 'odd/silent'),
      waitMs: 1000,
      startMs: 1000,
    });
    expect(r.failure?.message).toMatch(
      /did not accept a connection on 127\.0\.0\.1:\d+ within 1000 ms \(it is still running\)/,
    );
    expect(markedPids(r.marker as string)).toEqual([]);
  });

  it('kills a process the program moved out of its process group (setsid)', async () => {
    const r = await runStage(chatProject.stages[1] as never, stepsFor(chatProject, 2, seed), {
      dir: path.join(fixtures, 'odd/escape'),
      ...opts,
    });
    expect(r.ok, r.failure?.message).toBe(true);
    expect(markedPids(r.marker as string)).toEqual([]);
  });
});

describe('showing bytes', () => {
  it('escapes control bytes and a cut UTF-8 character, keeping whole characters readable', () => {
    expect(escapeBytes('hi\r\n')).toBe('"hi\\r\\n"');
    expect(escapeBytes(Buffer.from('你好').subarray(0, 4))).toBe('"你\\xe5"');
    expect(escapeBytes('a\\b\x1b')).toBe('"a\\\\b\\x1b"');
  });

  it('puts the caret under the first byte that differs', () => {
    const [want, got, caret] = showDifference(Buffer.from('abc\n'), Buffer.from('abd\n'));
    expect(want).toBe('expected: "abd\\n"');
    expect(got).toBe('received: "abc\\n"');
    expect(caret).toBe(`${' '.repeat(13)}^ byte 2: expected 0x64, received 0x63`);
  });

  it('names the usual cause of a wrong line', () => {
    expect(lineHint(Buffer.from('ok\n'), 'ok')).toMatch(/\\n alone/);
    expect(lineHint(Buffer.from('\r\n'), 'ok')).toMatch(/stray \\n/);
    expect(lineHint(Buffer.from('ok\r\r\n'), 'ok')).toMatch(/doubled/);
    expect(lineHint(Buffer.from(' ok\r\n'), 'ok')).toMatch(/spaces/);
  });
});

describe('the project files', () => {
  it('gives every bug fixture a run.sh that execs the reference with its --bug switch', () => {
    for (const dir of fs.readdirSync(path.join(fixtures, 'bugs'))) {
      const sh = fs.readFileSync(path.join(fixtures, 'bugs', dir, 'run.sh'), 'utf8');
      expect(sh).toContain(`--bug ${dir} "$@"`);
      expect(fs.readFileSync(path.join(fixtures, 'reference/server.ts'), 'utf8')).toContain(`'${dir}'`);
    }
  });
});

const grade = (args: string[], env: Record<string, string> = {}) =>
  execa(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/grade.ts'), ...args], {
    cwd: root,
    reject: false,
    env: { ...env, LANG: 'en_US.UTF-8' },
  });

describe.concurrent('npm run grade PROJECT', { timeout: 120_000 }, () => {
  it('writes grade.json, JUnit XML and the GitHub Classroom result (also as the step output), and exits 1', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'project-report-'));
    const output = path.join(dir, 'github-output');
    fs.writeFileSync(output, '');
    const r = await grade(
      ['chat', '--dir', path.join(fixtures, 'bugs/lf-only'), '--report', dir, '--seed', '3'],
      { GITHUB_OUTPUT: output },
    );
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toContain('re-run this stage: npm run grade chat -- --stage 2 --seed 3 --dir');
    expect(r.stdout).toMatch(/chat: 5\/100 points, 1 of 10 stages passed/);
    const classroom = JSON.parse(fs.readFileSync(path.join(dir, 'classroom.json'), 'utf8'));
    expect(classroom).toMatchObject({ version: 1, status: 'fail', max_score: 100 });
    expect(classroom.tests).toHaveLength(10);
    expect(classroom.tests[0]).toMatchObject({
      name: 'chat stage 1: Bind and accept',
      status: 'pass',
      score: 5,
    });
    expect(classroom.tests[1]).toMatchObject({ status: 'fail', score: 0 });
    expect(classroom.tests[1].message).toContain('byte 28: expected 0x0d, received 0x0a');
    for (const t of classroom.tests)
      expect(Object.keys(t).sort()).toEqual(
        ['duration', 'filename', 'line_no', 'message', 'name', 'score', 'status', 'test_code'].sort(),
      );
    // What autograding-grading-reporter decodes: base64 of that JSON, in the step output `result`.
    const [line] = fs.readFileSync(output, 'utf8').trim().split('\n');
    expect(line).toMatch(/^result=[A-Za-z0-9+/=]+$/);
    expect(JSON.parse(Buffer.from(line?.slice('result='.length) ?? '', 'base64').toString())).toEqual(
      classroom,
    );
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'grade.json'), 'utf8'));
    expect(json).toMatchObject({ project: 'chat', seed: 3, score: 5, maxScore: 100 });
    expect(json.stages.map((s: { status: string }) => s.status)).toEqual([
      'passed',
      'failed',
      ...Array(8).fill('not run'),
    ]);
    const junit = fs.readFileSync(path.join(dir, 'junit.xml'), 'utf8');
    expect(junit).toContain('<testsuite name="project chat" tests="10" failures="1" skipped="8">');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says in one line on stderr, exit 2, that a project is not started or a flag is wrong', async () => {
    const missing = await grade(['chat', '--dir', path.join(os.tmpdir(), 'no-such-project-here')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr.trim()).toMatch(
      /^error: .*run\.sh does not exist: start the project with npm run project chat$/,
    );
    const bad = await grade(['chat', '--stage', '11']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr.trim()).toBe("error: --stage must be a whole number from 1 to 10, got '11'");
  });
});

const project = (args: string[]) =>
  execa(process.execPath, ['--import', 'tsx', path.join(root, 'scripts/project.ts'), ...args], {
    cwd: root,
    reject: false,
  });

describe('npm run project', { timeout: 60_000 }, () => {
  it('writes README.md (both languages, every stage as the tester plays it), an empty server.ts and run.sh, and never overwrites them', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'project-new-'));
    const first = await project(['chat', '--dir', base]);
    expect(first.exitCode, first.stderr).toBe(0);
    const dir = path.join(base, 'chat');
    expect(fs.readFileSync(path.join(dir, 'server.ts'), 'utf8')).toBe('');
    expect(fs.readFileSync(path.join(dir, 'run.sh'), 'utf8')).toMatch(
      /^exec node --import tsx server\.ts "\$@"$/m,
    );
    expect(fs.statSync(path.join(dir, 'run.sh')).mode & 0o111).not.toBe(0);
    const readmeText = fs.readFileSync(path.join(dir, 'README.md'), 'utf8');
    expect(readmeText).toBe(readme(chatProject));
    for (const locale of ['zh', 'en'] as const)
      for (const s of describeStages(chatProject, locale)) {
        expect(readmeText).toContain(s.spec);
        expect(readmeText).toContain(s.dialogue.join('\n'));
      }
    fs.writeFileSync(path.join(dir, 'server.ts'), '// my work\n');
    const again = await project(['chat', '--dir', base]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/already exists, so it was left as it is/);
    expect(fs.readFileSync(path.join(dir, 'server.ts'), 'utf8')).toBe('// my work\n');
    const reset = await project(['chat', '--dir', base, '--reset']);
    expect(reset.exitCode, reset.stderr).toBe(0);
    const backup = fs.readdirSync(base).find((f) => f.startsWith('chat.backup-'));
    expect(backup).toBeDefined();
    expect(fs.readFileSync(path.join(base, backup as string, 'server.ts'), 'utf8')).toBe('// my work\n');
    const unknown = await project(['nope']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr.trim()).toMatch(/^error: no project 'nope'/);
    fs.rmSync(base, { recursive: true, force: true });
  });

  it('renders the project pages from the same stage definitions', () => {
    for (const [file, locale] of [
      ['docs/projects/chat.md', 'zh'],
      ['docs/en/projects/chat.md', 'en'],
    ] as const) {
      expect(fs.readFileSync(path.join(root, file), 'utf8')).toContain(
        `<ProjectStages project="chat" locale="${locale}" />`,
      );
    }
    // The dialogue of a stage is what the tester plays for the example seed.
    const [bind] = describeStages(chatProject, 'en');
    expect(bind?.dialogue).toEqual(['A connects']);
  });
});
