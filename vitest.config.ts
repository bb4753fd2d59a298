import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { compileCacheEnv } from './scripts/lib/compile-cache.ts';

// V8's compile cache (scripts/lib/compile-cache.ts): the test workers and every lab, client and CLI the tests
// start inherit it from here.
process.env.NODE_COMPILE_CACHE = compileCacheEnv().NODE_COMPILE_CACHE;

// Vitest's transforms of the test files and their helpers, kept on disk between runs (experimental in 4.1): a
// grade run skips about 0.3 s of transforming and 0.3 s of importing (lab 11's file on 2 cores, Node 24: 269-354
// ms transform and 358-511 ms import without, 15-29 ms and 84-205 ms with). Its key covers a file's content, not
// what the file's imports resolve to, so a renamed helper would meet a stale importer (vitest issue #11246):
// the folder is named after the list of the workbook's own source files, and a rename starts a new one.
const sources = ['labs', 'scripts', 'test']
  .flatMap((dir) => fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((f) => path.join(dir, f)))
  .sort();
const fsModuleCachePath = path.join(
  'node_modules',
  '.vitest-module-cache',
  createHash('sha256').update(sources.join('\n')).digest('hex').slice(0, 16),
);

// The timeout is the last resort (waits fail fast on their own, see test/helpers/watch.ts); on a machine that
// other jobs load it stretches with the load per core, as the harness's deadlines do (at most 4 times).
const busy = Math.min(4, Math.max(1, os.loadavg()[0] / os.availableParallelism()));

// The files that take longest start first, so that none of them starts last and becomes the run's tail. Vitest
// orders by the durations it cached from the last run, but on a clean clone (CI's first run) it has none and
// orders by file size, which started exercises.test.ts and grade.test.ts (about a minute each then) among the
// last. Measured on 2 cores, Node 24, in the whole run: the files over 14 s, longest first.
const longest = [
  'grade',
  'hostile',
  'exercises',
  'projects-http',
  'projects',
  'transcripts',
  '07-keepalive',
  'cli',
];
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = longest.indexOf(path.basename(f.moduleId, '.test.ts'));
      return i < 0 ? longest.length : i;
    };
    // Array.prototype.sort is stable: the other files keep vitest's order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

// Two tiers. `labs`: every lab's tests and the harness they stand on (about 30 s on 2 cores, 54 CPU-s): what a
// change to a lab or a page is checked with. `tooling`: the CLIs (lab, grade, exercise, hint, the project
// testers, the grader's reporter), the transcripts and captures the pages show, and the hostile peers' floods
// (a GiB through lab 02): about 150 CPU-s more, which no 2-core machine runs in 30 s.
const labsTier = [
  'test/[0-9][0-9]-*.test.ts',
  'test/{harness,lines,registry,check-labs,plain-node,loopback-only,site-mermaid,site-search}.test.ts',
];
const exclude = ['test/fixtures/**', 'node_modules/**'];

export default defineConfig({
  test: {
    // `npm test` runs the labs (`--project labs`); `npm run test:all` (npm run check, CI on every Node) both.
    // The tooling's fixture workbook has tests of its own, run only by the grader in the tooling tests.
    projects: [
      // A worker runs file after file, not a fork per file (on 2 cores: 33 s → 30 s, 59 → 54 CPU-s for the
      // tier), and each file still loads its own helpers (test/helpers/fresh-modules.ts).
      {
        extends: true,
        test: {
          name: 'labs',
          include: labsTier,
          exclude,
          isolate: false,
          setupFiles: ['test/helpers/fresh-modules.ts'],
          // Every test of a lab's file at once, not vitest's default of 5: they mostly wait on the labs they
          // start, and with 5 a file's slowest test waited for a free slot (lab 02: its demo's five readers held
          // them all for the demo's 1.5 s). On 2 cores, Node 24: `npm test` 28 s → 19-20 s, 49 → 35 CPU-s. The
          // tooling tier keeps vitest's 5: its tests run whole CLIs, and at 16 they loaded 2 cores past what its
          // timing checks bear (a CI reproduction of test:all).
          maxConcurrency: 16,
        },
      },
      {
        extends: true,
        test: { name: 'tooling', include: ['test/**/*.test.ts'], exclude: [...exclude, ...labsTier] },
      },
    ],
    // The last resort: every wait ends on a line, an exit, a later line or its own deadline before this.
    testTimeout: Math.round(10_000 * busy),
    hookTimeout: Math.round(10_000 * busy),
    // Each file may start servers and clients of its own; files run in parallel, and the tests of a lab's file
    // run concurrently too (describe.concurrent; the harness ties cleanup to each test's context).
    pool: 'forks',
    sequence: { sequencer: LongestFirst },
    // Tests mostly wait on the labs they start, so more files run at once than there are cores
    // (measured on 2 cores: 173 s with the default of one worker, 109 s with four). Not on a Node without type
    // stripping (20): there every lab starts through tsx, at three times the CPU, and four files at once
    // loaded 2 cores to 14 and broke timing tests (a WebSocket handshake past a 300 ms idle limit).
    experimental: { fsModuleCache: true, fsModuleCachePath },
    maxWorkers: (process.features as { typescript?: string | false }).typescript ? 4 : 2,
  },
});
