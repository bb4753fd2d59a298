// What a grading run says: a score table for people, a JSON summary and a JUnit XML file for CI and classrooms.
import type { Lab } from '../../labs/index.ts';
import type { TestResult } from './run-tests.ts';
import { table } from './table.ts';

/** Every lab is worth the same; its points are the share of its tests that pass. */
export const pointsPerLab = 10;

/** 'error': the run did not show every test's result (stopped, a dead worker, a file that did not load…). */
export type Status = 'passed' | 'failing' | 'not started' | 'error';

export interface LabGrade {
  lab: Lab;
  status: Status;
  tests: TestResult[];
  passed: number;
  /** The tests the lab HAS (counted when its test file was collected), not the results that arrived. */
  total: number;
  points: number;
  /** Why the results are not complete; a lab with problems is never 'passed'. */
  problems: string[];
}

export interface Completeness {
  /** How many tests the lab's test file has; undefined: unknown (it was never collected). */
  expected?: number;
  problems?: readonly string[];
}

/**
 * Points are the share of the lab's tests that passed, counted against every test it has (a test that never
 * reported counts as not passed), to a tenth: full points only when every test passed. Any problem with the run
 * makes the lab an 'error', never a pass.
 */
export function gradeLab(lab: Lab, tests: TestResult[] | undefined, run: Completeness = {}): LabGrade {
  if (tests === undefined)
    return { lab, status: 'not started', tests: [], passed: 0, total: 0, points: 0, problems: [] };
  const skipped = tests.filter((t) => t.state === 'skipped').length;
  const passed = tests.filter((t) => t.state === 'passed').length;
  const total = Math.max((run.expected ?? tests.length) - skipped, tests.length - skipped);
  const problems = [...(run.problems ?? [])];
  if (run.expected !== undefined && tests.length < run.expected && problems.length === 0)
    problems.push(`only ${tests.length} of its ${run.expected} tests reported a result`);
  const ok = total > 0 && passed === total;
  return {
    lab,
    status: problems.length ? 'error' : ok ? 'passed' : 'failing',
    tests,
    passed,
    total,
    // To a tenth, and never all of them while a test fails (262 of 263 rounded to 10/10 on a failing lab).
    points: ok
      ? pointsPerLab
      : total && Math.min(Math.round((pointsPerLab * passed * 10) / total) / 10, pointsPerLab - 0.1),
    problems,
  };
}

/** The whole run: 'error' if any lab's results are incomplete, else 'passed' only when every lab passed. */
export function overallStatus(grades: readonly LabGrade[]): 'passed' | 'failing' | 'error' {
  if (grades.some((g) => g.status === 'error')) return 'error';
  return grades.length > 0 && grades.every((g) => g.status === 'passed') ? 'passed' : 'failing';
}

const mark: Record<Status, string> = {
  passed: '✓ passed',
  failing: '✗ failing',
  'not started': '· not started',
  error: '! grading error',
};

export function scoreTable(grades: readonly LabGrade[], locale: 'zh' | 'en'): string {
  const rows = grades.map((g) => [
    g.lab.id,
    g.lab.title[locale],
    g.status === 'not started' ? '-' : `${g.passed}/${g.total}`,
    mark[g.status],
    `${g.points}/${pointsPerLab}`,
  ]);
  const score = grades.reduce((sum, g) => sum + g.points, 0);
  const max = grades.length * pointsPerLab;
  const passedLabs = grades.filter((g) => g.status === 'passed').length;
  return `${table(['lab', 'title', 'tests', 'status', 'points'], rows)}\n\ntotal: ${Math.round(score * 10) / 10} / ${max} points, ${passedLabs} of ${grades.length} labs passed`;
}

/** The first lines of a failure: enough to see what is missing without a wall of text. */
export function firstLines(text: string | undefined, count = 6): string[] {
  if (!text) return [];
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.length > count ? [...lines.slice(0, count), `… (${lines.length - count} more lines)`] : lines;
}

export function failureDetails(grades: readonly LabGrade[]): string {
  const out: string[] = [];
  for (const g of grades) {
    for (const t of g.tests.filter((x) => x.state === 'failed')) {
      out.push(`${g.lab.id} ✗ ${t.name}`);
      for (const line of firstLines(t.error)) out.push(`     ${line}`);
      const log = firstLines(t.log, 10);
      if (log.length) out.push('     what the lab printed:', ...log.map((l) => `       ${l}`));
    }
  }
  return out.join('\n');
}

export function jsonSummary(grades: readonly LabGrade[], extra: { problems?: readonly string[] } = {}) {
  const problems = [...(extra.problems ?? [])];
  return {
    status: problems.length ? 'error' : overallStatus(grades),
    ...(problems.length ? { problems } : {}),
    score: Math.round(grades.reduce((s, g) => s + g.points, 0) * 10) / 10,
    maxScore: grades.length * pointsPerLab,
    labs: grades.map((g) => ({
      id: g.lab.id,
      slug: g.lab.slug,
      title: g.lab.title.en,
      status: g.status,
      tests: g.total,
      passed: g.passed,
      points: g.points,
      maxPoints: pointsPerLab,
      ...(g.problems.length ? { problems: g.problems } : {}),
      failures: g.tests
        .filter((t) => t.state === 'failed')
        .map((t) => ({ test: t.name, message: firstLines(t.error).join('\n') })),
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

/** JUnit XML, the format GitHub Classroom and most CI systems read. A lab not started is one failing case. */
export function junitXml(grades: readonly LabGrade[]): string {
  const suites = grades.map((g) => {
    const name = `${g.lab.slug}`;
    const cases =
      g.status === 'not started'
        ? [
            `    <testcase classname="${xml(name)}" name="exercise started"><failure message="not started">npm run exercise ${g.lab.id}</failure></testcase>`,
          ]
        : g.tests.map((t) => {
            const time = ((t.durationMs ?? 0) / 1000).toFixed(3);
            const head = `    <testcase classname="${xml(name)}" name="${xml(t.name)}" time="${time}"`;
            if (t.state === 'failed') {
              const message = firstLines(t.error, 1)[0] ?? 'failed';
              return `${head}><failure message="${xml(message)}">${xml([t.error ?? '', t.log ?? ''].join('\n'))}</failure></testcase>`;
            }
            if (t.state === 'skipped') return `${head}><skipped/></testcase>`;
            return `${head}/>`;
          });
    // A run that did not show every result is one more case, in error: CI sees it even if each case passed.
    if (g.problems.length)
      cases.push(
        `    <testcase classname="${xml(name)}" name="grading complete"><error message="${xml(g.problems[0] as string)}">${xml(g.problems.join('\n'))}</error></testcase>`,
      );
    const failures = g.status === 'not started' ? 1 : g.tests.filter((t) => t.state === 'failed').length;
    const errors = g.problems.length ? 1 : 0;
    const skipped = g.tests.filter((t) => t.state === 'skipped').length;
    const count = g.status === 'not started' ? 1 : g.tests.length + errors;
    return `  <testsuite name="${xml(`${g.lab.id} ${g.lab.title.en}`)}" tests="${count}" failures="${failures}"${errors ? ` errors="${errors}"` : ''} skipped="${skipped}">\n${cases.join('\n')}\n  </testsuite>`;
  });
  const tests = grades.reduce(
    (n, g) => n + (g.status === 'not started' ? 1 : g.tests.length + (g.problems.length ? 1 : 0)),
    0,
  );
  const errors = grades.filter((g) => g.problems.length).length;
  const failures = grades.reduce(
    (n, g) => n + (g.status === 'not started' ? 1 : g.tests.filter((t) => t.state === 'failed').length),
    0,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="node-net-workbook" tests="${tests}" failures="${failures}"${errors ? ` errors="${errors}"` : ''}>\n${suites.join('\n')}\n</testsuites>\n`;
}
