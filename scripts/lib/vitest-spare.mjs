// A vitest run made ready in advance, for `grade --watch`: it loads vitest and the workbook's config (most of a
// run's start-up) at once, then waits for one line on stdin before it runs the test files, like `vitest run`
// would; then it exits. The watcher keeps one spare ready, so a save is graded without that start-up; each
// spare serves one run, in a process tree (and cgroup) of its own like any run. If stdin ends first (the
// grader is gone), it exits without running anything.
// Plain JavaScript, so it starts without a TypeScript loader. Usage: node vitest-spare.mjs OPTIONS_JSON FILE...
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { createVitest } from 'vitest/node';

const [optionsJson, ...files] = process.argv.slice(2);
process.env.TEST = 'true';
process.env.VITEST = 'true';
process.env.NODE_ENV ??= 'test';
const ctx = await createVitest('test', { ...JSON.parse(optionsJson ?? '{}'), watch: false, run: true });

const go = await new Promise((resolve) => {
  const lines = readline.createInterface({ input: process.stdin });
  lines.once('line', () => {
    resolve(true); // first: close() below emits 'close' at once
    lines.close();
  });
  lines.once('close', () => resolve(false));
});
if (!go) {
  await ctx.close();
  leaveCgroup();
  process.exit(0);
}

/** The grader is gone (killed outright, or it would have ended this run itself): leave no empty cgroup behind. */
function leaveCgroup() {
  try {
    const own = fs
      .readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'))
      ?.slice(3);
    const mount = fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .find((f) => f[f.indexOf('-') + 1] === 'cgroup2')?.[4];
    if (!own || !mount || !path.basename(own).startsWith('workbook-grade-')) return;
    const dir = path.join(mount, own);
    fs.writeFileSync(path.join(path.dirname(dir), 'cgroup.procs'), String(process.pid));
    fs.rmdirSync(dir);
  } catch {
    // not on Linux, or not ours to remove: the next run removes it once it is a minute old
  }
}
try {
  await ctx.start(files);
} catch (err) {
  process.exitCode = 1;
  console.error(err);
}
await ctx.exit(true);
