// npm run grade PROJECT [-- --stage N] [--seed S] [--watch] [--report DIR] [--dir DIR] [--timeout MS]
// Runs the project's stages in order against DIR/run.sh and stops at the first failure.
import fs from 'node:fs';
import path from 'node:path';
import { langFlag, parseCli } from '../cli.ts';
import { findProject, projectsDirName, stepsFor } from './index.ts';
import { type ProjectGrade, type StageGrade, summarize, writeReport } from './report.ts';
import { runStage, type StageResult } from './run.ts';
import type { Locale, Project, Stage } from './types.ts';

function die(message: string, code = 2): never {
  console.error(`error: ${message}`);
  process.exit(code);
}

const generic: Record<string, Record<Locale, string>> = {
  'never-listened': {
    en: 'the program must keep running and listen on the port run.sh passes as --port N; its stderr, if it printed any, usually says why it stopped',
    zh: '程序必须持续运行，并在 run.sh 传入的 --port N 端口上监听；它的 stderr（如果有输出）通常说明了它为什么停下',
  },
  exited: {
    en: 'the program stopped in the middle of the stage: an exception thrown from an event handler ends a Node process; its stderr says what was thrown',
    zh: '程序在阶段中途退出了：事件处理函数里抛出的异常会结束 Node 进程；它的 stderr 说明抛出了什么',
  },
  eof: {
    en: 'EOF: the server closed the connection where it should have sent more (did it end the socket too early?)',
    zh: 'EOF：服务器在还应当发送内容的地方关闭了连接（是不是太早结束了 socket？）',
  },
  reset: {
    en: 'connection reset: the server destroyed the socket or its process died; a Node socket without an error listener crashes the process',
    zh: '连接被重置：服务器销毁了 socket，或者进程死了；没有 error 监听器的 Node socket 会让进程崩溃',
  },
  'not-closed': {
    en: 'after its last line the server must close the connection (socket.end())',
    zh: '发完最后一行后，服务器必须关闭连接（socket.end()）',
  },
  'exit-code': {
    en: 'handle SIGTERM yourself and exit with code 0 (without a handler, the signal kills the process); run.sh should exec the program so the signal reaches it',
    zh: '自己处理 SIGTERM 并以退出码 0 退出（没有处理函数时，信号会直接杀死进程）；run.sh 应当用 exec 启动程序，让信号到达它',
  },
  flood: {
    en: "a peer that does not read makes the server's send queue grow without bound: check socket.writableLength after each write",
    zh: '不读数据的对端会让服务器的发送队列无限增长：每次 write 之后检查 socket.writableLength',
  },
};

export function hintFor(stage: Stage, r: StageResult, locale: Locale): string {
  const f = r.failure;
  if (!f) return '';
  if (f.stderr.some((l) => /EADDRINUSE|address already in use/i.test(l)))
    return locale === 'zh'
      ? '地址已被占用：另一个服务器实例（或别的程序）占着这个端口；请绑定 --port 给出的端口，而不是写死的端口，并确认没有旧进程还在运行'
      : 'address already in use: another copy of your server (or something else) holds the port; bind the port given with --port, not a fixed one, and check no old copy is still running';
  if (f.hint) return locale === 'zh' && f.hintZh ? f.hintZh : f.hint;
  if (f.kind === 'timeout') {
    const base = locale === 'zh' ? '超时：程序在等什么？' : 'timeout: what is the program waiting for? ';
    return `${base}${stage.hint?.[locale] ?? ''}`;
  }
  if (['wrong-line', 'wrong-status', 'wrong-header', 'wrong-body', 'bad-response'].includes(f.kind))
    return stage.hint?.[locale] ?? '';
  // A connection closed too early: the usual cause at this stage says more than EOF alone.
  if (f.kind === 'eof' && stage.hint) return `${generic.eof?.[locale]}; ${stage.hint[locale]}`;
  return generic[f.kind]?.[locale] ?? '';
}

interface Options {
  project: Project;
  dir: string;
  seed: number;
  only?: number;
  waitMs: number;
  locale: Locale;
}

const rel = (p: string) => path.relative(process.cwd(), p) || p;

async function gradeOnce(o: Options): Promise<ProjectGrade> {
  const { project } = o;
  console.log(`grading ${project.name} (${rel(path.join(o.dir, 'run.sh'))}), seed ${o.seed}`);
  const grades: StageGrade[] = [];
  let stopped = false;
  for (const [i, stage] of project.stages.entries()) {
    const n = i + 1;
    const label = `stage ${String(n).padStart(2)} ${stage.slug.padEnd(10)} ${stage.title[o.locale]}`;
    if ((o.only !== undefined && n !== o.only) || stopped) {
      grades.push({
        n,
        stage,
        status: 'not run',
        message: stopped ? `not run: an earlier stage failed` : `not run: --stage ${o.only} only`,
      });
      continue;
    }
    // Each stage has its own random source from the seed, so --stage N --seed S replays exactly this stage.
    const steps = stepsFor(project, n, o.seed);
    const result = await runStage(stage, steps, {
      dir: o.dir,
      waitMs: o.waitMs,
      startMs: Math.max(5000, o.waitMs),
    });
    const ready = result.readyMs;
    const secs =
      ready === undefined
        ? `${(result.ms / 1000).toFixed(2)} s`
        : `${(result.ms / 1000).toFixed(2)} s (start-up ${(ready / 1000).toFixed(2)} s, verdict ${((result.ms - ready) / 1000).toFixed(2)} s)`;
    if (result.ok) {
      console.log(`  ✓ ${label}  ${secs}  +${stage.points}`);
      grades.push({ n, stage, status: 'passed', result, message: '' });
      continue;
    }
    const f = result.failure as NonNullable<StageResult['failure']>;
    const rerun = `npm run grade ${project.name} -- --stage ${n} --seed ${o.seed}${o.dir === path.resolve(projectsDirName, project.name) ? '' : ` --dir ${rel(o.dir)}`}`;
    const hint = hintFor(stage, result, o.locale);
    const out: string[] = [
      `✗ stage ${n} ${stage.slug} (${stage.title.en} / ${stage.title.zh}) failed after ${secs}`,
    ];
    out.push(`  ${f.message}`);
    for (const d of f.details) out.push(`    ${d}`);
    if (result.transcript.length) {
      out.push('  the conversation (→ sent by the tester, ← received from your server):');
      if (result.transcript.length > 16) out.push(`    … (${result.transcript.length - 16} earlier events)`);
      for (const t of result.transcript.slice(-16)) out.push(`    ${t}`);
    }
    if (f.stderr.length) {
      out.push("  your program's stderr:");
      for (const l of f.stderr) out.push(`    ${l}`);
    }
    if (hint) out.push(`  hint: ${hint}`);
    out.push(`  re-run this stage: ${rerun}`);
    console.log(`  ✗ ${label}  ${secs}\n`);
    console.log(out.join('\n'));
    grades.push({ n, stage, status: 'failed', result, message: out.join('\n') });
    stopped = true;
  }
  const g = summarize(project, o.seed, grades);
  const passed = grades.filter((s) => s.status === 'passed').length;
  const ran = grades.filter((s) => s.status !== 'not run').length;
  const total = grades.reduce((s, x) => s + (x.result?.ms ?? 0), 0);
  console.log(
    `\n${project.name}: ${g.score}/${g.max} points, ${passed} of ${project.stages.length} stages passed (${ran} run, ${(total / 1000).toFixed(1)} s)`,
  );
  return g;
}

/** The `grade` CLI for a project; never returns (it exits, or watches until stopped). */
export async function gradeProject(name: string, argv: string[]): Promise<never> {
  const project = findProject(name);
  if (!project) die(`no project '${name}'`);
  const { values } = parseCli(
    {
      command: `grade ${name}`,
      about: [
        `runs the stages of project '${name}' in order against ${projectsDirName}/${name}/run.sh, stopping at the first failure`,
      ],
      flags: {
        stage: {
          type: 'int',
          value: 'N',
          min: 1,
          max: project.stages.length,
          help: 'run stage N only (the command a failure prints)',
        },
        seed: {
          type: 'int',
          value: 'S',
          min: 0,
          max: 2 ** 31 - 1,
          help: 'replay the random inputs of an earlier run (each run prints its seed)',
        },
        watch: { type: 'boolean', help: 'grade again every time a file in the project folder is saved' },
        report: {
          type: 'string',
          value: 'DIR',
          help: 'also write DIR/grade.json, DIR/junit.xml, DIR/classroom.json (+ .b64, GitHub Classroom)',
        },
        dir: {
          type: 'string',
          value: 'DIR',
          help: `grade the project in DIR instead of ${projectsDirName}/${name}/`,
        },
        timeout: {
          type: 'int',
          value: 'MS',
          min: 100,
          max: 600_000,
          default: 2000,
          help: 'how long to wait for one expected line',
        },
        lang: { ...langFlag, help: 'language of the stage titles (default: from LANG)' },
      },
      positionals: { max: 0 },
      notes: ['', 'exit codes: 0 every stage passed · 1 a stage failed · 2 bad usage · 3 grading error'],
    },
    argv,
  );
  const only = values.stage;
  const seed = values.seed ?? Math.floor(Math.random() * 1_000_000);
  const waitMs = values.timeout;
  const locale: Locale = values.lang ?? (/^zh/i.test(process.env.LANG ?? '') ? 'zh' : 'en');
  const dir = path.resolve(typeof values.dir === 'string' ? values.dir : path.join(projectsDirName, name));
  if (!fs.existsSync(path.join(dir, 'run.sh'))) {
    const msg = `${rel(path.join(dir, 'run.sh'))} does not exist: start the project with npm run project ${name}`;
    if (typeof values.report !== 'string') die(msg);
    // A class's CI still gets its report (zero points) for a student who has not started.
    console.error(`error: ${msg}`);
    const g = summarize(
      project,
      seed,
      project.stages.map((stage, i) => ({ n: i + 1, stage, status: 'failed' as const, message: msg })),
    );
    for (const f of writeReport(g, values.report)) console.log(`report: ${rel(f)}`);
    process.exit(1);
  }
  const options: Options = { project, dir, seed, only, waitMs, locale };
  const once = async () => {
    try {
      const g = await gradeOnce(options);
      if (typeof values.report === 'string')
        for (const f of writeReport(g, values.report)) console.log(`report: ${rel(f)}`);
      return g.stages.every((s) => s.status === 'passed' || (only !== undefined && s.status === 'not run'))
        ? 0
        : 1;
    } catch (err) {
      console.error(`error: grading stopped: ${(err as Error).stack ?? err}`);
      return 3;
    }
  };
  const code = await once();
  if (!values.watch) process.exit(code);
  let running = false;
  let again = false;
  let pending: NodeJS.Timeout | undefined;
  const regrade = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    console.log(`\n── ${new Date().toLocaleTimeString()} a file changed ──`);
    await once();
    console.log(`\nwatching ${rel(dir)}: save a file to grade again, Ctrl-C to stop`);
    running = false;
    if (again) {
      again = false;
      void regrade();
    }
  };
  fs.watch(dir, (_event, file) => {
    if (!file || file.startsWith('.') || /\.backup-/.test(file)) return;
    clearTimeout(pending);
    pending = setTimeout(() => void regrade(), 150);
  });
  process.on('SIGINT', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  console.log(`\nwatching ${rel(dir)}: save a file to grade again, Ctrl-C to stop`);
  return new Promise<never>(() => {});
}
