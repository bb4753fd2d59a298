// Exercise starters: a lab with the bodies of its `// #region exercise-NAME` blocks replaced by a TODO that
// states the task. The markers stay, so a learner sees where to write and `npm run hint` can name the part.
import fs from 'node:fs';
import path from 'node:path';
import type { Exercise, Lab } from '../../labs/index.ts';

export const exercisesDirName = 'exercises';

const start = /^(\s*)\/\/ #region exercise-([\w-]+)\s*$/;
const end = /^\s*\/\/ #endregion exercise-([\w-]+)\s*$/;

export interface RegionSpan {
  name: string;
  /** Line index of the `#region` marker. */
  open: number;
  /** Line index of the `#endregion` marker. */
  close: number;
  indent: string;
}

/** The exercise regions of a source file, in order. Throws on a region that is not closed. */
export function findRegions(source: string): RegionSpan[] {
  const lines = source.split('\n');
  const spans: RegionSpan[] = [];
  let open: { name: string; line: number; indent: string } | undefined;
  lines.forEach((line, i) => {
    const s = line.match(start);
    if (s) {
      if (open) throw new Error(`exercise region '${s[2]}' opens inside '${open.name}' (line ${i + 1})`);
      open = { name: s[2] as string, line: i, indent: s[1] as string };
      return;
    }
    const e = line.match(end);
    if (e && open) {
      if (e[1] !== open.name)
        throw new Error(`'#endregion exercise-${e[1]}' closes '${open.name}' (line ${i + 1})`);
      spans.push({ name: open.name, open: open.line, close: i, indent: open.indent });
      open = undefined;
    }
  });
  if (open) throw new Error(`exercise region '${open.name}' is never closed`);
  return spans;
}

function todo(indent: string, lab: Lab, ex: Exercise | undefined, name: string): string[] {
  if (!ex) return [`${indent}// TODO: write the part '${name}' of this lab`];
  return [
    `${indent}// TODO (${name}): ${ex.task.en}`,
    `${indent}// TODO (${name})：${ex.task.zh}`,
    `${indent}// Stuck? npm run hint ${lab.id}`,
  ];
}

/**
 * Makes the starter: every exercise region's body becomes a TODO (or only the region `only`, for the proof
 * that each region is noticed by a test). Relative imports are rewritten to point back into labs/, so the
 * starter, written one folder over, still finds the shared helpers.
 */
export function makeStarter(source: string, lab: Lab, only?: string, labsPath = '../labs'): string {
  const lines = source.split('\n');
  const spans = findRegions(source).filter((r) => only === undefined || r.name === only);
  if (only !== undefined && spans.length === 0)
    throw new Error(`lab ${lab.id} has no exercise region '${only}'`);
  for (const span of [...spans].reverse()) {
    const ex = lab.exercises.find((e) => e.region === span.name);
    lines.splice(span.open + 1, span.close - span.open - 1, ...todo(span.indent, lab, ex, span.name));
  }
  return rewriteImports(lines.join('\n'), labsPath);
}

/**
 * `from './lib/cli.ts'` → `from '../labs/lib/cli.ts'`: a starter in exercises/ (beside labs/) still finds the
 * shared helpers. `labsPath` is the way from the starter's folder to labs/.
 */
export function rewriteImports(source: string, labsPath = '../labs'): string {
  const to = labsPath.split(path.sep).join('/').replace(/\/$/, '');
  return source.replace(/(from\s+|import\s*\(\s*|import\s+)(['"])\.\/([^'"]+)\2/g, `$1$2${to}/$3$2`);
}

/** The relative way from a folder to labs/, as an import path. */
export function labsPathFrom(root: string, dir: string): string {
  const rel = path.relative(path.resolve(root, dir), path.join(root, 'labs'));
  return rel.startsWith('.') ? rel : `./${rel}`;
}

export function exerciseFile(root: string, lab: Lab, dir = exercisesDirName): string {
  return path.resolve(root, dir, `${lab.slug}.ts`);
}

/** `01-basic-tcp.backup-20261122-001233.ts`, beside the file it keeps. */
export function backupName(file: string, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '-');
  let candidate = file.replace(/\.ts$/, `.backup-${stamp}.ts`);
  for (let n = 2; fs.existsSync(candidate); n++)
    candidate = file.replace(/\.ts$/, `.backup-${stamp}-${n}.ts`);
  return candidate;
}

/**
 * A folder outside the workbook has no `package.json` saying `"type": "module"`, so tsx would compile the files
 * in it as CommonJS (and top-level await fails). Writes one beside them when the nearest package.json up the
 * tree does not make them ES modules; never overwrites one. Returns the file written, if any.
 */
export function ensureEsm(dir: string): string | undefined {
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    const file = path.join(at, 'package.json');
    if (fs.existsSync(file)) {
      let type: unknown;
      try {
        type = JSON.parse(fs.readFileSync(file, 'utf8')).type;
      } catch {
        type = undefined;
      }
      if (type === 'module' || at === path.resolve(dir)) return undefined; // ESM already, or the folder's own
      break;
    }
    if (path.dirname(at) === at) break;
  }
  const file = path.join(dir, 'package.json');
  fs.writeFileSync(
    file,
    `${JSON.stringify({ type: 'module', description: 'written by the workbook: these files are ES modules' }, null, 2)}\n`,
    { flag: 'wx' },
  );
  return file;
}

/** The same file, by a different name (a symlink, a hard link, `labs/../labs`)? */
export function sameFile(a: string, b: string): boolean {
  try {
    const x = fs.statSync(a);
    const y = fs.statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return path.resolve(a) === path.resolve(b);
  }
}

/**
 * Makes sure files can be written in `dir` (creating it), by writing one: a read-only folder or file system,
 * a path through a file, and (as root, where permission bits do not stop writes) a read-only mount all show.
 * Returns the reason it cannot, in a few words, or undefined.
 */
export function cannotWriteIn(dir: string): string | undefined {
  try {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) return 'it is a file, not a folder';
    fs.mkdirSync(dir, { recursive: true });
    const probe = fs.mkdtempSync(path.join(dir, '.write-test-'));
    fs.rmdirSync(probe);
    return undefined;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why: Record<string, string> = {
      EACCES: 'permission denied',
      EPERM: 'permission denied',
      EROFS: 'a read-only file system',
      ENOTDIR: 'part of the path is a file',
      EEXIST: 'it is a file, not a folder',
      ENOSPC: 'no space left',
    };
    return why[e.code ?? ''] ?? e.code ?? e.message;
  }
}

/**
 * The relative imports of a file that lead nowhere from where it is (a file copied from exercises/ to a folder at
 * another depth keeps `../labs/lib/…`), each with the path that would reach the workbook's labs/ instead.
 */
export function unresolvedImports(file: string, root: string): { spec: string; instead?: string }[] {
  const text = fs.readFileSync(file, 'utf8');
  const found: { spec: string; instead?: string }[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)(['"])(\.{1,2}\/[^'"]+)\1/g)) {
    const spec = m[2] as string;
    if (fs.existsSync(path.resolve(path.dirname(file), spec))) continue;
    const tail = spec.match(/(?:^|\/)labs\/(.+)$/)?.[1];
    const target = tail ? path.join(root, 'labs', tail) : undefined;
    found.push({
      spec,
      instead:
        target && fs.existsSync(target)
          ? `${labsPathFrom(root, path.dirname(file)).split(path.sep).join('/')}/${tail}`
          : undefined,
    });
  }
  return found;
}
