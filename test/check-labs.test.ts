// npm run check:labs compares the pages with the registry, the labs and the tests. Each check must be able
// to fail: each test below copies lab 01 into a scratch workbook, breaks one thing, and reads the message.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { labs } from '../labs/index.ts';
import {
  checkLabs,
  checkPages,
  checkTranscriptImports,
  citedTests,
  citesTest,
  testNames,
} from '../scripts/lib/check-labs.ts';
import { root } from './helpers/lab.ts';

const lab = labs.find((l) => l.id === '01');
if (!lab) throw new Error('no lab 01');
const files = [
  `labs/${lab.slug}.ts`,
  `docs/${lab.slug}.md`,
  `docs/en/${lab.slug}.md`,
  `test/${lab.slug}.test.ts`,
  `docs/transcripts/${lab.slug}/demo.txt`,
];

/** A scratch workbook holding lab 01's files, with `change` applied to one of them. */
function workbook(file?: string, change?: (text: string) => string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'check-labs-'));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    const text = fs.readFileSync(path.join(root, f), 'utf8');
    fs.writeFileSync(path.join(dir, f), f === file && change ? change(text) : text);
  }
  return dir;
}

const citedTestsOf = (page: string) => citedTests(page).map((c) => c.name);

function problemsWith(file?: string, change?: (text: string) => string): string[] {
  const dir = workbook(file, change);
  try {
    return checkLabs(dir, [lab as (typeof labs)[number]], []);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

describe('check:labs', () => {
  it('finds nothing wrong with lab 01 copied as it is', () => {
    expect(problemsWith()).toEqual([]);
  });

  it("fails when a page's H1 is not the registry's title, and says to make them agree", () => {
    const problems = problemsWith(`docs/en/${lab.slug}.md`, (t) =>
      t.replace(/^# .*$/m, '# 01 A first server'),
    );
    expect(problems).toEqual([
      `docs/en/${lab.slug}.md: its H1 is '# 01 A first server' but labs/index.ts says '# 01 ${lab.title.en}': change the page or the registry's title.en so they agree`,
    ]);
  });

  it('fails when a lab accepts a role the registry does not list', () => {
    const problems = problemsWith(`labs/${lab.slug}.ts`, (t) =>
      t.replace("roles: ['server', 'client']", "roles: ['server', 'client', 'spy']"),
    );
    expect(problems).toEqual([
      `labs/${lab.slug}.ts: parseLabArgs({ roles }) has 'spy', which labs/index.ts does not list for lab 01: add it to roles there, or remove it from the lab`,
    ]);
  });

  it('fails when the registry lists a role the lab does not accept', () => {
    const problems = problemsWith(`labs/${lab.slug}.ts`, (t) =>
      t.replace("roles: ['server', 'client']", "roles: ['server']"),
    );
    expect(problems).toEqual([
      `labs/index.ts lists role 'client' for lab 01, which labs/${lab.slug}.ts does not accept in parseLabArgs({ roles }): add it to the lab, or remove it from the registry`,
    ]);
  });

  it('fails when an erratum cites a test that does not exist', () => {
    const problems = problemsWith(`docs/${lab.slug}.md`, (t) =>
      t.replace(
        '`a port already in use is one clear line and exit code 1, not a stack trace (erratum: note 000 throws)`',
        '`a port already in use prints a poem`',
      ),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^docs\/01-basic-tcp\.md:\d+ cites the test `a port already in use prints a poem`, which no test file has: use the name of a real it\('…'\), or write the test$/,
    );
  });

  it('reads no test name from a text-only erratum, whose backticks name commands or flags', () => {
    const rows = (last: string) =>
      `## 原文勘误\n\n| 笔记 | 实际 | 测试 |\n|---|---|---|\n| a | b | ${last} |\n`;
    expect(citedTestsOf(rows('仅文字：`tcpdump` 把它印成 `[S]`'))).toEqual([]);
    expect(citedTestsOf(rows('text-only: `npm run bench 06` is a benchmark'))).toEqual([]);
    expect(citedTestsOf(rows('`a real test name`'))).toEqual(['a real test name']);
  });

  it("fails when the lab header's notes are not the registry's", () => {
    const problems = problemsWith(`labs/${lab.slug}.ts`, (t) =>
      t.replace('notes 000, 002, 003, 004', 'notes 000, 002'),
    );
    expect(problems).toEqual([
      `labs/${lab.slug}.ts: its header comment names notes 000, 002, labs/index.ts says 000, 002, 003, 004: make them the same`,
    ]);
  });

  it('fails when the twins differ in shape: a heading, an import or a diagram only one of them has', () => {
    const heading = problemsWith(`docs/en/${lab.slug}.md`, (t) => t.replace('## Run it', '### Run it'));
    expect(heading).toHaveLength(1);
    expect(heading[0]).toMatch(
      /differ in shape at item \d+: heading level 2 vs heading level 3: the twins need/,
    );
    const diagram = problemsWith(`docs/${lab.slug}.md`, (t) => t.replace(/```mermaid[\s\S]*?```\n/, ''));
    expect(diagram.join('\n')).toMatch(
      /differ in shape at item \d+: (a mermaid diagram|\(nothing\)) vs a mermaid diagram/,
    );
  });

  it('fails on pasted program output, naming the page, the line and the command that records it', () => {
    const problems = problemsWith(`docs/en/${lab.slug}.md`, (t) =>
      t.replace(
        '<<< @/transcripts/01-basic-tcp/demo.txt',
        '```text\n[server] listening on 127.0.0.1:8124\n```',
      ),
    );
    expect(problems).toContain(
      `docs/en/${lab.slug}.md does not import @/transcripts/${lab.slug}/demo.txt: add \`<<< @/transcripts/${lab.slug}/demo.txt\` where the page runs that command`,
    );
    expect(problems.find((p) => p.includes('pasted program output'))).toMatch(
      /^docs\/en\/01-basic-tcp\.md:\d+: a fenced block of pasted program output \(1 lines; .*\): add the command to scripts\/transcripts\.ts, run `npm run record 01`, and import the file with <<< @\/transcripts\/…$/,
    );
  });

  it("fails when a chapter's header line or Exercise section is not the registry's", () => {
    const problems = problemsWith(`docs/${lab.slug}.md`, (t) =>
      t.replace('<LabExercises id="01" />', '<LabExercises id="02" />'),
    );
    expect(problems).toContain(
      `docs/${lab.slug}.md: needs exactly one <LabExercises id="01" /> (found id="02"): the header line and the Exercise section come from labs/index.ts`,
    );
  });

  it('fails when the transcript table names one file twice', () => {
    const twice = [
      { lab: '01', name: 'demo' },
      { lab: '01', name: 'demo' },
    ];
    expect(checkTranscriptImports(root, [lab], twice)).toContain(
      'scripts/transcripts.ts lists 01/demo twice: one file per transcript, give it another name',
    );
  });

  it('fails when a page imports a transcript nobody records', () => {
    expect(checkTranscriptImports(root, [lab], [])).toContain(
      `docs/${lab.slug}.md imports @/transcripts/${lab.slug}/demo.txt, which scripts/transcripts.ts does not record: add it there, then npm run record 01`,
    );
  });

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the test's name mentions the placeholder
  it('reads test names from it(), it.skipIf()(), it.each()() and matches %s and ${} placeholders', () => {
    const names = testNames(
      [
        "it('plain name', () => {});",
        'it.skipIf(!linux)(\n  "a name with \'quotes\'",\n  async () => {},\n);',
        "it.each(['a', 'b'])('resolves %s to one lab', () => {});",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the source of a test whose name has a placeholder
        'test(`lab ${id} works on every Node`, () => {});',
        "it.each([1])('%s %j', () => {});",
      ].join('\n'),
    );
    expect(names).toEqual([
      'plain name',
      "a name with 'quotes'",
      'resolves %s to one lab',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the name as written in that source
      'lab ${id} works on every Node',
      '%s %j',
    ]);
    expect(citesTest('resolves 01-basic-tcp to one lab', names)).toBe(true);
    expect(citesTest('lab 07 works on every Node', names)).toBe(true);
    expect(citesTest('resolves to one lab', names)).toBe(false);
    // A name made of placeholders matches only itself, or every citation would pass.
    expect(citesTest('anything at all', names)).toBe(false);
  });

  it('agrees with the real pages (npm run check:labs says the same)', () => {
    expect(checkPages(root)).toEqual([]);
  });
});
