// Does every file agree with labs/index.ts? Each problem comes with what to do about it.
import fs from 'node:fs';
import path from 'node:path';
import { guides as allGuides, labs as allLabs, type Guide, type Lab } from '../../labs/index.ts';

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
        const target = path.resolve(at(dir), m[1] as string);
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
  return problems;
}
