// Does every file agree with labs/index.ts? Each problem comes with what to do about it.
import fs from 'node:fs';
import path from 'node:path';
import { guides as allGuides, labs as allLabs, type Guide, type Lab } from '../../labs/index.ts';
import { transcripts } from '../transcripts.ts';

/** `// #region exercise-NAME` … `// #endregion exercise-NAME` */
export const exerciseRegion = /^\s*\/\/ #region exercise-([\w-]+)\s*$/gm;

export function exerciseRegions(source: string): string[] {
  return [...source.matchAll(exerciseRegion)].map((m) => m[1] as string);
}

function listDir(dir: string, pattern: RegExp): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => pattern.test(f)) : [];
}

export function checkLabs(
  root: string,
  labs: readonly Lab[] = allLabs,
  guides: readonly Guide[] = allGuides,
): string[] {
  const problems: string[] = [];
  const at = (...p: string[]) => path.join(root, ...p);
  const exists = (...p: string[]) => fs.existsSync(at(...p));
  const slugs = new Set([...labs.map((l) => l.slug), ...guides.map((g) => g.slug)]);

  const ids = new Set<string>();
  for (const lab of labs) {
    if (!/^\d\d$/.test(lab.id)) problems.push(`labs/index.ts: id '${lab.id}' must be two digits, like '07'`);
    if (!lab.slug.startsWith(`${lab.id}-`))
      problems.push(`labs/index.ts: slug '${lab.slug}' must start with its id '${lab.id}-'`);
    if (ids.has(lab.id)) problems.push(`labs/index.ts: id '${lab.id}' is used twice`);
    ids.add(lab.id);
    const wants: [string, string][] = [
      [`labs/${lab.slug}.ts`, 'the runnable lab'],
      [`docs/${lab.slug}.md`, 'the Chinese chapter'],
      [`docs/en/${lab.slug}.md`, 'its English twin'],
      [`test/${lab.slug}.test.ts`, "the lab's tests"],
    ];
    for (const [file, what] of wants) {
      if (!exists(file))
        problems.push(
          `${file} is missing (${what} of lab ${lab.id} in labs/index.ts): create it, or remove the entry`,
        );
    }
    if (exists(`labs/${lab.slug}.ts`)) {
      const regions = exerciseRegions(fs.readFileSync(at(`labs/${lab.slug}.ts`), 'utf8'));
      for (const ex of lab.exercises) {
        if (!regions.includes(ex.region)) {
          problems.push(
            `labs/${lab.slug}.ts has no '// #region exercise-${ex.region}' for the exercise listed in labs/index.ts`,
          );
        }
        if (ex.hints.length === 0)
          problems.push(`labs/index.ts: exercise '${ex.region}' of lab ${lab.id} needs at least one hint`);
      }
      for (const region of regions) {
        if (!lab.exercises.some((ex) => ex.region === region)) {
          problems.push(
            `labs/${lab.slug}.ts marks exercise region '${region}' that labs/index.ts does not list: add it with a task and hints`,
          );
        }
      }
    }
  }
  for (const guide of allGuides.filter((g) => guides.includes(g))) {
    for (const file of [`docs/${guide.slug}.md`, `docs/en/${guide.slug}.md`]) {
      if (!exists(file)) problems.push(`${file} is missing (guide '${guide.slug}' in labs/index.ts)`);
    }
  }

  const orphan = (file: string, slug: string) => {
    if (!slugs.has(slug))
      problems.push(
        `${file} has no entry in labs/index.ts: add one (id, slug, titles, goal, roles, exercises) or remove the file`,
      );
  };
  for (const f of listDir(at('labs'), /^\d\d-.+\.ts$/)) orphan(`labs/${f}`, f.replace(/\.ts$/, ''));
  for (const f of listDir(at('test'), /^\d\d-.+\.test\.ts$/))
    orphan(`test/${f}`, f.replace(/\.test\.ts$/, ''));
  for (const dir of ['docs', 'docs/en']) {
    for (const f of listDir(at(dir), /^\d\d-.+\.md$/)) orphan(`${dir}/${f}`, f.replace(/\.md$/, ''));
  }

  // VitePress includes the whole file when a `<<< file#region` names a region that is not there; catch it here.
  for (const dir of ['docs', 'docs/en']) {
    for (const f of listDir(at(dir), /\.md$/)) {
      const page = fs.readFileSync(at(dir, f), 'utf8');
      for (const m of page.matchAll(/^<<< *(\S+?)(?:#([\w-]+))?(?:[ {[].*)?$/gm)) {
        // VitePress's @ is the srcDir, docs/.
        const spec = m[1] as string;
        const target = spec.startsWith('@/') ? at('docs', spec.slice(2)) : path.resolve(at(dir), spec);
        const rel = path.relative(root, target);
        if (!fs.existsSync(target)) {
          problems.push(`${dir}/${f} imports ${m[1]}, which does not exist`);
        } else if (
          m[2] &&
          !new RegExp(`^\\s*// #region ${m[2]}\\s*$`, 'm').test(fs.readFileSync(target, 'utf8'))
        ) {
          problems.push(
            `${dir}/${f} imports region '${m[2]}' from ${rel}, which has no '// #region ${m[2]}'`,
          );
        }
      }
    }
  }
  problems.push(...checkPages(root, labs, guides), ...checkTranscriptImports(root, labs));
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// The pages against the registry, the labs and the tests: one fact, one place.

const read = (file: string) => fs.readFileSync(file, 'utf8');

/** The lines of a page outside fenced code blocks, with their 1-based line numbers. */
function prose(page: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  let fence = false;
  page.split('\n').forEach((line, i) => {
    if (/^```/.test(line)) fence = !fence;
    else if (!fence) out.push({ line, n: i + 1 });
  });
  return out;
}

/** The fenced blocks of a page: info string, first line number, body lines. */
export function fences(page: string): { info: string; n: number; body: string[] }[] {
  const out: { info: string; n: number; body: string[] }[] = [];
  let open: { info: string; n: number; body: string[] } | undefined;
  page.split('\n').forEach((line, i) => {
    if (/^```/.test(line)) {
      if (open) {
        out.push(open);
        open = undefined;
      } else open = { info: line.slice(3).trim(), n: i + 1, body: [] };
    } else open?.body.push(line);
  });
  return out;
}

/** What the twins must share: heading levels, `<<<` imports, components, and the number of diagrams. */
export function skeleton(page: string, dir = '.'): string[] {
  const parts: string[] = [];
  for (const { line } of prose(page)) {
    const h = /^(#{1,6}) /.exec(line);
    const file = /^<<< *(\S+)/.exec(line)?.[1];
    const component = /^<([A-Z]\w+)[\s/>]/.exec(line)?.[1];
    if (h) parts.push(`heading level ${h[1]?.length}`);
    else if (file) {
      // `../labs/x.ts` from docs/ and `../../labs/x.ts` from docs/en/ are the same import.
      parts.push(`import ${file.startsWith('@/') ? file : path.posix.join(dir, file)}`);
    } else if (component) parts.push(`component <${component}>`);
  }
  for (const f of fences(page)) if (f.info === 'mermaid') parts.push('a mermaid diagram');
  return parts;
}

/** The roles a lab passes to parseLabArgs({ roles: [...] }). */
export function labRoles(source: string): string[] | undefined {
  const m = /parseLabArgs\(\{[\s\S]*?\broles: \[([^\]]*)\]/.exec(source);
  if (!m) return undefined;
  return [...(m[1] as string).matchAll(/'([^']+)'|"([^"]+)"/g)].map((r) => (r[1] ?? r[2]) as string);
}

/** The note numbers a lab's header comment names: `(notes 000, 002)`, `(note 001, section 2.7)`. */
export function headerNotes(source: string): string[] | undefined {
  const header = source
    .split('\n')
    .filter((l) => l.startsWith('//'))
    .slice(0, 6)
    .join(' ');
  const m = /\bnotes? (\d{3}[^)]*)/.exec(header);
  if (!m) return undefined;
  return [...(m[1] as string).matchAll(/\b(\d{3})\b/g)]
    .map((r) => r[1] as string)
    .filter((n) => /^0\d\d$/.test(n));
}

export const noteId = (n: Lab['notes'][number]) => (typeof n === 'string' ? n : n.id);

/** Every test name in a test file: it('…'), test("…"), it.skipIf(x)(`…`), it.each([...])('… %s'). */
export function testNames(source: string): string[] {
  const names: string[] = [];
  const call =
    /\b(?:it|test)(?:\.\w+(?:\([^()]*(?:\([^()]*\)[^()]*)*\))?)*\(\s*(?:'((?:\\.|[^'\\])*)'|"((?:\\.|[^"\\])*)"|`((?:\\.|[^`\\])*)`)/g;
  for (const m of source.matchAll(call)) {
    names.push((m[1] ?? m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
  }
  return names;
}

/** Does a name cited on a page match a test name (`%s` and `${…}` in the test name match anything)? */
export function citesTest(cited: string, names: readonly string[]): boolean {
  return names.some((name) => {
    if (name === cited) return true;
    if (!/%[sdji]|\$\{/.test(name)) return false;
    const literal = name.split(/%[sdji]|\$\{[^}]*\}/);
    // A name that is mostly placeholders ('%s %j') would match anything: only exact matches count for it.
    if (literal.join('').trim().length < 12) return false;
    const pattern = literal.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+');
    return new RegExp(`^${pattern}$`).test(cited);
  });
}

/** The test names an Errata section cites: backticked text in the last column of its table. */
export function citedTests(page: string): { name: string; n: number }[] {
  const out: { name: string; n: number }[] = [];
  let inErrata = false;
  for (const { line, n } of prose(page)) {
    if (/^## /.test(line)) inErrata = /^## (原文勘误|Errata)/.test(line);
    if (!inErrata || !line.startsWith('|') || /^\|[-| ]+\|$/.test(line)) continue;
    const cells = line.split('|').slice(1, -1);
    const last = cells[cells.length - 1] ?? '';
    // A text-only erratum says why no test can show it; what it puts in backticks is not a test's name.
    if (/^\s*(仅文字|text-only)/i.test(last)) continue;
    for (const m of last.matchAll(/`([^`]+)`/g)) out.push({ name: m[1] as string, n });
  }
  return out;
}

/** A fenced block that looks like program output pasted by hand. */
export function looksLikeOutput(body: readonly string[]): boolean {
  return body.some(
    (l) =>
      /^\[[\w .:-]+\] /.test(l) ||
      /\blistening on \S+:\d+/.test(l) ||
      /^\$ /.test(l) ||
      /^(State|Netid|Recv-Q)\s+\S/.test(l),
  );
}

export function checkPages(
  root: string,
  labs: readonly Lab[] = allLabs,
  guides: readonly Guide[] = allGuides,
): string[] {
  const problems: string[] = [];
  const at = (...p: string[]) => path.join(root, ...p);
  const testDir = at('test');
  const allNames = listDir(testDir, /\.test\.ts$/).flatMap((f) => testNames(read(path.join(testDir, f))));

  for (const lab of labs) {
    const labFile = at('labs', `${lab.slug}.ts`);
    if (fs.existsSync(labFile)) {
      const source = read(labFile);
      const roles = labRoles(source);
      if (roles) {
        for (const r of roles.filter((r) => !lab.roles.includes(r)))
          problems.push(
            `labs/${lab.slug}.ts: parseLabArgs({ roles }) has '${r}', which labs/index.ts does not list for lab ${lab.id}: add it to roles there, or remove it from the lab`,
          );
        for (const r of lab.roles.filter((r) => !roles.includes(r)))
          problems.push(
            `labs/index.ts lists role '${r}' for lab ${lab.id}, which labs/${lab.slug}.ts does not accept in parseLabArgs({ roles }): add it to the lab, or remove it from the registry`,
          );
      }
      const want = lab.notes.map(noteId);
      const said = headerNotes(source);
      if (!said)
        problems.push(
          `labs/${lab.slug}.ts: its header comment names no notes; labs/index.ts says ${want.join(', ')}: write "(notes ${want.join(', ')})" in its first lines`,
        );
      else if (said.join(',') !== want.join(','))
        problems.push(
          `labs/${lab.slug}.ts: its header comment names notes ${said.join(', ')}, labs/index.ts says ${want.join(', ')}: make them the same`,
        );
    }
  }

  const pages = [
    ...labs.map((l) => ({ slug: l.slug, title: l.title, h1: (t: string) => `${l.id} ${t}`, lab: l })),
    ...guides.map((g) => ({ slug: g.slug, title: g.title, h1: (t: string) => t, lab: undefined })),
  ];
  for (const page of pages) {
    const files = { zh: `docs/${page.slug}.md`, en: `docs/en/${page.slug}.md` } as const;
    const texts: Partial<Record<'zh' | 'en', string>> = {};
    for (const locale of ['zh', 'en'] as const) {
      const file = files[locale];
      if (!fs.existsSync(at(file))) continue;
      const text = read(at(file));
      texts[locale] = text;
      const h1 = prose(text).find((p) => p.line.startsWith('# '));
      const want = `# ${page.h1(page.title[locale])}`;
      const wantGuide = page.slug.startsWith('00')
        ? `# ${page.slug.slice(0, 2)} ${page.title[locale]}`
        : want;
      if (h1?.line !== want && h1?.line !== wantGuide)
        problems.push(
          `${file}: its H1 is '${h1?.line ?? '(none)'}' but labs/index.ts says '${want}': change the page or the registry's title.${locale} so they agree`,
        );
      if (page.lab) {
        const lab = page.lab;
        for (const component of ['LabHeader', 'LabExercises']) {
          const ids = [...text.matchAll(new RegExp(`^<${component} id="(\\d\\d)" />$`, 'gm'))].map(
            (m) => m[1],
          );
          if (ids.length !== 1 || ids[0] !== lab.id)
            problems.push(
              `${file}: needs exactly one <${component} id="${lab.id}" /> (found ${ids.length ? ids.map((i) => `id="${i}"`).join(', ') : 'none'}): the header line and the Exercise section come from labs/index.ts`,
            );
        }
      }
      for (const { name, n } of citedTests(text)) {
        if (!citesTest(name, allNames))
          problems.push(
            `${file}:${n} cites the test \`${name}\`, which no test file has: use the name of a real it('…'), or write the test`,
          );
      }
      for (const block of fences(text)) {
        // In a chapter every text block so far was program output; elsewhere only what looks like it counts.
        const plain = block.info === 'text' || block.info === 'console' || block.info === '';
        // A shell block with a `$ command` line and lines that are not commands holds output too.
        const prompt =
          block.body.some((l) => l.startsWith('$ ')) && block.body.some((l) => l.trim() && !/^[$#]/.test(l));
        if ((plain && (page.lab || looksLikeOutput(block.body))) || prompt)
          problems.push(
            `${file}:${block.n}: a fenced block of pasted program output (${block.body.length} lines; a block that is not output gets another info string, such as txt): add the command to scripts/transcripts.ts, run \`npm run record${page.lab ? ` ${page.lab.id}` : ''}\`, and import the file with <<< @/transcripts/…`,
          );
      }
    }
    if (texts.zh !== undefined && texts.en !== undefined) {
      const a = skeleton(texts.zh, 'docs');
      const b = skeleton(texts.en, 'docs/en');
      const n = Math.max(a.length, b.length);
      for (let i = 0; i < n; i++) {
        if (a[i] !== b[i]) {
          problems.push(
            `${files.zh} and ${files.en} differ in shape at item ${i + 1}: ${a[i] ?? '(nothing)'} vs ${b[i] ?? '(nothing)'}: the twins need the same headings, imports, components and diagrams`,
          );
          break;
        }
      }
    }
  }
  return problems;
}

/** Every transcript in scripts/transcripts.ts is imported by both pages of its lab, and every import has an entry. */
export function checkTranscriptImports(
  root: string,
  labs: readonly Lab[] = allLabs,
  table: readonly { lab: string; name: string }[] = transcripts,
): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const t of table) {
    const key = `${t.lab}/${t.name}`;
    if (seen.has(key))
      problems.push(
        `scripts/transcripts.ts lists ${key} twice: one file per transcript, give it another name`,
      );
    seen.add(key);
    if (!allLabs.some((l) => l.id === t.lab))
      problems.push(
        `scripts/transcripts.ts: transcript ${key} names lab ${t.lab}, which labs/index.ts does not have`,
      );
  }
  for (const lab of labs) {
    const mine = table.filter((t) => t.lab === lab.id).map((t) => `@/transcripts/${lab.slug}/${t.name}.txt`);
    for (const file of [`docs/${lab.slug}.md`, `docs/en/${lab.slug}.md`]) {
      if (!fs.existsSync(path.join(root, file))) continue;
      const imports = [...read(path.join(root, file)).matchAll(/^<<< *(@\/transcripts\/\S+)/gm)].map(
        (m) => m[1] as string,
      );
      for (const t of mine.filter((t) => !imports.includes(t)))
        problems.push(`${file} does not import ${t}: add \`<<< ${t}\` where the page runs that command`);
      for (const t of imports.filter((i) => !mine.includes(i)))
        problems.push(
          `${file} imports ${t}, which scripts/transcripts.ts does not record: add it there, then npm run record ${lab.id}`,
        );
    }
  }
  return problems;
}
