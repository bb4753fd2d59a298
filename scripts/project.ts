// npm run project [NAME] [-- --reset]: lists the projects, or writes projects/NAME/ (README.md, server.ts, run.sh)
// to build a whole server from an empty file. It never overwrites your work: --reset first moves the old folder
// to a timestamped backup beside it.
import fs from 'node:fs';
import path from 'node:path';
import { fail, parseCli } from './lib/cli.ts';
import { readme } from './lib/projects/describe.ts';
import { findProject, maxScore, projects, projectsDirName } from './lib/projects/index.ts';
import { root } from './lib/workbook.ts';

const { values, positionals } = parseCli({
  command: 'project',
  args: '[NAME]',
  about: [
    'no NAME: list the projects and their stages',
    `writes ${projectsDirName}/NAME/: README.md (the stages), an empty server.ts, and run.sh (how the tester starts it)`,
  ],
  flags: {
    reset: {
      type: 'boolean',
      help: 'start over: the old folder is first moved to a timestamped backup beside it',
    },
    dir: {
      type: 'string',
      value: 'DIR',
      help: `write the project under DIR instead of ${projectsDirName}/ (relative to the workbook)`,
    },
  },
  positionals: { max: 1 },
});
if (positionals.length === 0) {
  for (const p of projects) {
    console.log(
      `${p.name}: ${p.title.en} / ${p.title.zh} (${p.stages.length} stages, ${maxScore(p)} points)`,
    );
    p.stages.forEach((s, i) => {
      console.log(
        `  ${String(i + 1).padStart(2)} ${s.slug.padEnd(10)} ${String(s.points).padStart(2)} pts  ${s.title.en} / ${s.title.zh}`,
      );
    });
    console.log(`  start: npm run project ${p.name}, then npm run grade ${p.name}`);
  }
  process.exit(0);
}
const name = positionals[0] as string;
const project = findProject(name);
if (!project)
  fail(
    `no project '${name}': the projects are ${projects.map((p) => p.name).join(', ')} (npm run project lists them)`,
  );

const base = path.resolve(root, typeof values.dir === 'string' ? values.dir : projectsDirName);
const target = path.join(base, project.name);
const shown = path.relative(process.cwd(), target) || target;

function backupName(dir: string, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replace(/[-:]/g, '')
    .replace('T', '-');
  let candidate = `${dir}.backup-${stamp}`;
  for (let n = 2; fs.existsSync(candidate); n++) candidate = `${dir}.backup-${stamp}-${n}`;
  return candidate;
}

if (fs.existsSync(target)) {
  if (!values.reset) {
    fail(
      `${shown} already exists, so it was left as it is. Keep going with npm run grade ${project.name}, or start over with npm run project ${project.name} -- --reset (your folder is backed up first)`,
      1,
    );
  }
  const backup = backupName(target);
  fs.renameSync(target, backup);
  console.log(`moved your old folder to ${path.relative(process.cwd(), backup) || backup}`);
}

fs.mkdirSync(base, { recursive: true });
// mkdir without recursive fails instead of writing into a folder that appeared meanwhile.
fs.mkdirSync(target);
const files: Record<string, string> = {
  'README.md': readme(project),
  'server.ts': '',
  // tsx runs TypeScript on every supported Node (20 on); on Node >= 22.18 `exec node server.ts "$@"` works too.
  'run.sh': `#!/bin/sh\n# The tester runs this with ${project.args ?? '--port N'}. Keep the exec: then SIGTERM reaches your server itself.\n# Another language: exec python3 server.py "$@"   (or go run ., ./server, …)\nexec node --import tsx server.ts "$@"\n`,
};
for (const [file, text] of Object.entries(files))
  fs.writeFileSync(path.join(target, file), text, { flag: 'wx' });
fs.chmodSync(path.join(target, 'run.sh'), 0o755);
console.log(
  `wrote ${shown}/: README.md (${project.stages.length} stages, ${maxScore(project)} points), server.ts (empty), run.sh`,
);
console.log(
  `next: read ${shown}/README.md, write server.ts, then npm run grade ${project.name} (or -- --watch)`,
);
