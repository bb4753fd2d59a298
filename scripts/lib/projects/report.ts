// What a project grading run writes for CI and classrooms: grade.json, JUnit XML, and the result GitHub
// Classroom's grading reporter reads ({version, status, max_score, tests}, base64 in the step output, as
// classroom-resources/autograding-command-grader produces it).
import fs from 'node:fs';
import path from 'node:path';
import { maxScore } from './index.ts';
import type { StageResult } from './run.ts';
import type { Project, Stage } from './types.ts';

export interface StageGrade {
  n: number;
  stage: Stage;
  status: 'passed' | 'failed' | 'not run';
  result?: StageResult;
  /** One paragraph: why it failed, or why it did not run. */
  message: string;
}

export interface ProjectGrade {
  project: Project;
  seed: number;
  stages: StageGrade[];
  score: number;
  max: number;
}

export function summarize(project: Project, seed: number, stages: StageGrade[]): ProjectGrade {
  const score = stages.reduce((s, g) => s + (g.status === 'passed' ? g.stage.points : 0), 0);
  return { project, seed, stages, score, max: maxScore(project) };
}

export function gradeJson(g: ProjectGrade) {
  return {
    project: g.project.name,
    seed: g.seed,
    score: g.score,
    maxScore: g.max,
    stages: g.stages.map((s) => ({
      stage: s.n,
      slug: s.stage.slug,
      title: s.stage.title.en,
      status: s.status,
      points: s.status === 'passed' ? s.stage.points : 0,
      maxPoints: s.stage.points,
      ms: s.result ? Math.round(s.result.ms) : undefined,
      message: s.message || undefined,
    })),
  };
}

const xml = (text: string) =>
  text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');

export function junit(g: ProjectGrade): string {
  const cases = g.stages.map((s) => {
    const time = ((s.result?.ms ?? 0) / 1000).toFixed(3);
    const head = `    <testcase classname="projects.${g.project.name}" name="${xml(`stage ${s.n} ${s.stage.slug}`)}" time="${time}"`;
    if (s.status === 'passed') return `${head}/>`;
    if (s.status === 'not run') return `${head}><skipped message="${xml(s.message)}"/></testcase>`;
    return `${head}><failure message="${xml(s.message.split('\n')[0] ?? '')}">${xml(s.message)}</failure></testcase>`;
  });
  const failures = g.stages.filter((s) => s.status === 'failed').length;
  const skipped = g.stages.filter((s) => s.status === 'not run').length;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="node-net-workbook" tests="${g.stages.length}" failures="${failures}">\n  <testsuite name="project ${g.project.name}" tests="${g.stages.length}" failures="${failures}" skipped="${skipped}">\n${cases.join('\n')}\n  </testsuite>\n</testsuites>\n`;
}

/** The JSON autograding-command-grader puts (base64) in its `result` output, one test per stage. */
export function classroomResult(g: ProjectGrade) {
  return {
    version: 1,
    status: g.stages.every((s) => s.status === 'passed') ? 'pass' : 'fail',
    max_score: g.max,
    tests: g.stages.map((s) => ({
      name: `${g.project.name} stage ${s.n}: ${s.stage.title.en}`,
      status: s.status === 'passed' ? 'pass' : 'fail',
      score: s.status === 'passed' ? s.stage.points : 0,
      message: s.message,
      test_code: `npm run grade ${g.project.name} -- --stage ${s.n} --seed ${g.seed}`,
      filename: '',
      line_no: 0,
      duration: Math.round(s.result?.ms ?? 0),
    })),
  };
}

/** Writes the three files; inside a GitHub Actions step, also sets the step output `result` as the grader does. */
export function writeReport(g: ProjectGrade, dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const classroom = JSON.stringify(classroomResult(g));
  const files = {
    'grade.json': `${JSON.stringify(gradeJson(g), null, 2)}\n`,
    'junit.xml': junit(g),
    'classroom.json': `${classroom}\n`,
    'classroom.b64': `${Buffer.from(classroom).toString('base64')}\n`,
  };
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  if (process.env.GITHUB_OUTPUT)
    fs.appendFileSync(process.env.GITHUB_OUTPUT, `result=${Buffer.from(classroom).toString('base64')}\n`);
  return Object.keys(files).map((f) => path.join(dir, f));
}
