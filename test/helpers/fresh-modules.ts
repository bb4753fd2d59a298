// The labs tier runs with `isolate: false` (vitest.config.ts): a worker process runs file after file instead of
// being forked again for each. This setup file runs before each file and drops the modules the last file
// loaded, so every file still gets its own helpers (test/helpers/*: its wait defaults, its load factor read as
// it starts, its afterAll cleanup) and its own lab modules. What is kept is the worker and Node's own module
// cache (vitest, execa): the part of a fork that cost most of a file's start-up.
import { vi } from 'vitest';

vi.resetModules();
(globalThis as { workbookFileSetupAt?: number }).workbookFileSetupAt = performance.now();
