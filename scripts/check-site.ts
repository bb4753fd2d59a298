/// <reference lib="dom" />
// npm run check:site [-- dev | built]: open every page, in both locales, in headless Chromium as a reader
// would, both ways a reader reads the workbook: from `npm run dev` (started here on a free port, and stopped)
// and from the built site (npm run build first). It fails on what the build cannot see: a start-up warning
// of the dev server, a script error, a console error or warning, a failed request, a mermaid diagram that
// did not draw, a diagram label taller or wider than its box, a snippet that was not found, a diagram that
// is not drawn again for the dark theme, and a local search that cannot find Chinese words.
// Only 127.0.0.1 is contacted. SITE_SCREENSHOTS=DIR keeps a full-page picture of every page, per mode.
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { guides, labs } from '../labs/index.ts';
import { fail } from '../labs/lib/cli.ts';
import { projects } from './lib/projects/index.ts';
import { root } from './lib/workbook.ts';

type Mode = 'dev' | 'built';
const modes: readonly Mode[] = ['dev', 'built'];

const dist = path.join(root, '.vitepress/dist');
const browserPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const shots = process.env.SITE_SCREENSHOTS; // a folder, to look at the pages as images

const args = process.argv.slice(2);
if (args.includes('-h') || args.includes('--help')) {
  console.log(
    'usage: npm run check:site [-- [dev | built] [/PAGE ...]]   (both ways, every page by default)',
  );
  process.exit(0);
}
const named = args.filter((a) => !a.startsWith('/'));
const unknown = named.find((a) => !modes.includes(a as Mode));
if (unknown !== undefined) fail(`unknown mode '${unknown}': name dev, built or neither (both)`);
const chosen = named.length ? modes.filter((m) => named.includes(m)) : modes;

if (chosen.includes('built') && !fs.existsSync(path.join(dist, 'index.html'))) {
  fail('no built site in .vitepress/dist: run npm run build first', 2);
}
if (!fs.existsSync(browserPath)) {
  const message = `no Chromium at ${browserPath} (Debian: apt-get install chromium fonts-noto-cjk; or set CHROMIUM_PATH)`;
  if (process.env.CI) fail(message, 1);
  console.log(`check:site skipped: ${message}`);
  process.exit(0);
}

const slugs = [
  '',
  ...guides.map((g) => g.slug),
  ...labs.map((l) => l.slug),
  ...projects.map((p) => `projects/${p.name}`),
];
const every = [...slugs.map((s) => `/${s}`), ...slugs.map((s) => `/en/${s}`)];
const asked = args.filter((a) => a.startsWith('/'));
const stranger = asked.find((a) => !every.includes(a));
if (stranger !== undefined)
  fail(`no page '${stranger}' in labs/index.ts or the projects (pages look like /02-handshake, /en/)`);
const pages = asked.length ? asked : every;
// Where the dark theme is tried too: a diagram must be drawn again, and fit again, when the reader switches.
const darkPages = ['/', '/02-handshake', '/en/06-pipe-backpressure', '/12-multicast', '/en/'].filter((p) =>
  pages.includes(p),
);
const searches = [
  ['/', '三次握手'],
  ['/', '服务器'],
  ['/', '握手'],
  ['/en/', 'createServer'],
] as const;
// Tabs reading pages at once, besides the one trying dark and search (measured on 2 cores: see the report).
const readers = 2;

interface Site {
  base: string;
  stop(): Promise<void>;
  /** What the server printed that a person starting it should not see (warnings, errors). */
  complaints(): string[];
}

/** A static server for the built site, with VitePress's clean URLs (/01-basic-tcp → 01-basic-tcp.html). */
async function serveBuilt(): Promise<Site> {
  const types: Record<string, string> = {
    '.html': 'text/html',
    '.js': 'text/javascript',
    '.css': 'text/css',
    '.svg': 'image/svg+xml',
    '.ico': 'image/x-icon',
    '.json': 'application/json',
    '.woff2': 'font/woff2',
  };
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0] as string);
    const candidates = url.endsWith('/') ? [`${url}index.html`] : [url, `${url}.html`];
    for (const c of candidates) {
      const file = path.join(dist, path.normalize(c));
      if (file.startsWith(dist) && fs.existsSync(file) && fs.statSync(file).isFile()) {
        res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
        fs.createReadStream(file).pipe(res);
        return;
      }
    }
    res.writeHead(404).end('not found');
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
    complaints: () => [],
  };
}

async function freePort(): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => probe.once('listening', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// What `vitepress dev` prints when all is well; any other line is something a reader would see.
// Vite's note that its dependency cache is rebuilt is not a warning (a config or lockfile changed).
const banner = [
  /^$/,
  /^vitepress v[\d.]+$/,
  /^➜\s+Local:\s+http/,
  /^➜\s+Network:/,
  /^(Re-optimizing dependencies because|Forced re-optimization of dependencies)/,
];

/** `vitepress dev` as a reader starts it (with a fresh dependency cache, as on a clean clone). */
async function startDev(): Promise<Site> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [
      path.join(root, 'node_modules/vitepress/bin/vitepress.js'),
      'dev',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--strictPort',
      '--force',
    ],
    {
      cwd: root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    },
  );
  const kill = () => {
    try {
      if (child.pid && child.exitCode === null) process.kill(-child.pid, 'SIGTERM');
    } catch {}
  };
  process.once('exit', kill);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      kill();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  let output = '';
  const lines = () =>
    stripVTControlCharacters(output)
      .split('\n')
      .map((l) => l.trim());
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const base = `http://127.0.0.1:${port}`;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`vitepress dev printed no Local: URL within 120 s:\n${output}`)),
      120_000,
    );
    const onData = () => {
      if (lines().some((l) => /^➜\s+Local:/.test(l))) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vitepress dev exited (${code}) before it was ready:\n${output}`));
    });
  });
  return {
    base,
    complaints: () => lines().filter((l) => !banner.some((b) => b.test(l))),
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      kill();
      await exited;
      process.off('exit', kill);
    },
  };
}

/** Labels (flowchart nodes, edges, subgraph titles) whose content is taller or wider than their box. */
function overflowingLabels(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('.mermaid .mermaid-drawing svg foreignObject')].flatMap((box) => {
      const label = box.firstElementChild as HTMLElement | null;
      const text = label?.textContent?.trim() ?? '';
      if (!label || !text) return [];
      const height = (box as SVGForeignObjectElement).height.baseVal.value;
      const width = (box as SVGForeignObjectElement).width.baseVal.value;
      // scrollHeight/Width are whole pixels; the box is fractional: a pixel of rounding is not a cut label.
      if (label.scrollHeight <= height + 1 && label.scrollWidth <= width + 1) return [];
      return [
        `'${text.slice(0, 60)}' is ${label.scrollWidth}×${label.scrollHeight} in a ${width.toFixed(1)}×${height.toFixed(1)} box`,
      ];
    }),
  );
}

/** Waits until every diagram on the page is drawn (for `theme`) or failed; what is wrong with them then. */
/** How many diagrams the page's markdown has: the page must show that many (the dev server renders late). */
function expectedDiagrams(url: string): number {
  const file = path.join(root, 'docs', url.endsWith('/') ? `${url}index.md` : `${url}.md`);
  return (fs.readFileSync(file, 'utf8').match(/^\s*```mermaid\s*$/gm) ?? []).length;
}

/** Waits until the page is rendered and all its diagrams drawn (for `theme`) or failed; what is wrong then. */
async function diagramProblems(
  page: Page,
  url: string,
  theme: 'light' | 'dark',
): Promise<[number, string[]]> {
  const problems: string[] = [];
  const expected = expectedDiagrams(url);
  const settled = await page
    .waitForFunction(
      ([t, n]) => {
        const ds = [...document.querySelectorAll<HTMLElement>('.mermaid')];
        return (
          document.querySelector('#VPContent h1') !== null &&
          ds.length === n &&
          ds.every(
            (d) => d.dataset.state === 'error' || (d.dataset.state === 'drawn' && d.dataset.theme === t),
          )
        );
      },
      [theme, expected] as const,
      { timeout: 60_000 },
    )
    .then(() => true)
    .catch(() => false);
  if (!settled && (await page.locator('#VPContent h1').count()) === 0)
    problems.push(`${url}: the page showed no heading in 60 s`);
  const states = await page.$$eval('.mermaid', (ds) =>
    ds.map((d) => ({
      state: (d as HTMLElement).dataset.state,
      theme: (d as HTMLElement).dataset.theme,
      svg: d.querySelector('.mermaid-drawing svg') !== null,
      error: d.querySelector('.mermaid-error')?.textContent ?? '',
    })),
  );
  if (states.length !== expected)
    problems.push(`${url}: ${states.length} diagram(s) shown, the page's markdown has ${expected}`);
  states.forEach((d, i) => {
    const which = `${url}${theme === 'dark' ? ' (dark)' : ''}: diagram ${i + 1}`;
    if (d.state === 'error') problems.push(`${which} did not draw: ${d.error.slice(0, 160)}`);
    else if (!settled && d.theme !== theme)
      problems.push(`${which} was not drawn for the ${theme} theme in 60 s`);
    else if (!d.svg) problems.push(`${which} has no drawing`);
  });
  for (const label of await overflowingLabels(page)) {
    problems.push(`${url}${theme === 'dark' ? ' (dark)' : ''}: a label does not fit: ${label}`);
  }
  return [states.length, problems];
}

/** /en/02-handshake → en_02-handshake; / → home. */
const shotName = (url: string) => url.replace(/^\/|\/$/g, '').replace(/\//g, '_') || 'home';

async function screenshot(page: Page, mode: Mode, name: string): Promise<void> {
  if (!shots) return;
  fs.mkdirSync(path.join(shots, mode), { recursive: true });
  await page.screenshot({ path: path.join(shots, mode, `${name}.png`), fullPage: true });
}

/** A tab that reports what a reader would notice (script errors, console errors and warnings, failed requests). */
async function tab(context: BrowserContext, mode: Mode, problems: string[]) {
  const page = await context.newPage();
  page.setDefaultTimeout(120_000); // the dev server compiles a page on its first request
  const at = { url: '' };
  const say = (what: string) => problems.push(`${mode} ${at.url}: ${what}`);
  page.on('pageerror', (err) => say(`script error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') say(`console ${msg.type()}: ${msg.text()}`);
  });
  page.on('requestfailed', (req) => {
    const why = req.failure()?.errorText;
    // ERR_ABORTED is the page dropping a request itself: VitePress prefetches the chunks of the pages it links to,
    // and the next navigation cancels those still in flight. A file that is missing answers 404 (below), and a
    // request off the local server is blocked by the route (ERR_BLOCKED_BY_CLIENT): both still count.
    if (why === 'net::ERR_ABORTED' && /^http:\/\/127\.0\.0\.1:\d+\//.test(req.url())) return;
    say(`request failed (${why}): ${req.url()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 400) say(`HTTP ${res.status()} for ${res.url()}`);
  });
  return { page, at, say };
}

async function newContext(browser: Browser, site: Site): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
  // Nothing but the local server: any other request is blocked, and reported (it is a bug in a page).
  await context.route('**/*', (route) =>
    route.request().url().startsWith(site.base) ? route.continue() : route.abort('blockedbyclient'),
  );
  return context;
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

/** Vite's error overlay (dev only): a page that does not compile. */
async function overlay(page: Page, say: (what: string) => void): Promise<void> {
  const shown = page.locator('vite-error-overlay .message-body');
  if (await shown.count())
    say(`the dev server shows an error: ${(await shown.first().textContent())?.slice(0, 200)}`);
}

const oneLine = (p: string) => p.replace(/\s*\n\s*/g, ' ⏎ ').slice(0, 400);

const plural = (n: number, what: string) => (n ? ` (${n} ${what}${n > 1 ? 's' : ''})` : '');

async function checkSite(browser: Browser, mode: Mode, site: Site): Promise<string[]> {
  const problems: string[] = [];

  // Every page, light, read by a few tabs at once (a page mostly waits on the server and on mermaid).
  const reading = await newContext(browser, site);
  const queue = [...pages];
  const reader = async () => {
    const { page, at, say } = await tab(reading, mode, problems);
    for (let url = queue.shift(); url !== undefined; url = queue.shift()) {
      at.url = url;
      const before = problems.length;
      try {
        const response = await page.goto(site.base + url, { waitUntil: 'networkidle' });
        if (response?.status() !== 200) continue; // said by the response handler
        await overlay(page, say);
        const [diagrams, broken] = await diagramProblems(page, url, 'light');
        problems.push(...broken.map((b) => `${mode} ${b}`));
        const body = (await page.locator('#VPContent').textContent()) ?? '';
        if (/Code snippet path not found|Invalid code snippet option/.test(body))
          say('a code snippet was not found');
        await screenshot(page, mode, shotName(url));
        const mark = problems.length === before ? '✓' : '✗';
        console.log(`  ${mark} ${mode} ${url}${plural(diagrams, 'diagram')}`);
        for (const p of problems.slice(before)) console.log(`      ${oneLine(p)}`);
      } catch (err) {
        say(`could not be read: ${firstLine(err)}`);
      }
    }
  };

  // Meanwhile, in a context of its own (the appearance is kept in localStorage, shared by a context's
  // tabs), the reader switches to dark: each diagram is drawn again, and its labels fit again. Then the
  // search box, used the way a reader uses it: Chinese words from the middle of sentences must be found.
  const switching = await newContext(browser, site);
  const switcher = async () => {
    const { page, at, say } = await tab(switching, mode, problems);
    for (const url of darkPages) {
      at.url = `${url} (dark)`;
      const before = problems.length;
      try {
        await page.goto(site.base + url, { waitUntil: 'networkidle' });
        await overlay(page, say);
        await diagramProblems(page, url, 'light');
        await page.locator('.VPNavBarAppearance .VPSwitchAppearance').click({ timeout: 10_000 });
        await page.waitForFunction(() => document.documentElement.classList.contains('dark'));
        const [diagrams, broken] = await diagramProblems(page, url, 'dark');
        problems.push(...broken.map((b) => `${mode} ${b}`));
        await screenshot(page, mode, `${shotName(url)}-dark`);
        // Back to light for the next page.
        await page.locator('.VPNavBarAppearance .VPSwitchAppearance').click({ timeout: 10_000 });
        await page.waitForFunction(() => !document.documentElement.classList.contains('dark'));
        const mark = problems.length === before ? '✓' : '✗';
        console.log(`  ${mark} ${mode} ${url} in dark${plural(diagrams, 'diagram')}`);
        for (const p of problems.slice(before)) console.log(`      ${oneLine(p)}`);
      } catch (err) {
        say(`could not be switched to dark and back: ${firstLine(err)}`);
      }
    }
    // The tab's icon: the ones the page links to, and /favicon.ico, which browsers ask for on their own.
    at.url = 'favicon';
    // With a page list (-- /PAGE) that names none of the dark-mode pages this tab is still blank: read home's.
    if (page.url() === 'about:blank') await page.goto(`${site.base}/`, { waitUntil: 'networkidle' });
    const icons = await page.$$eval('link[rel~="icon"]', (ls) => ls.map((l) => (l as HTMLLinkElement).href));
    if (icons.length === 0) say('the page links to no icon');
    for (const icon of new Set([...icons, `${site.base}/favicon.ico`])) {
      const res = await page.request.get(icon);
      if (!res.ok()) say(`HTTP ${res.status()} for ${icon}`);
    }
    for (const [locale, query] of searches) {
      at.url = `search ${query}`;
      try {
        await page.goto(site.base + locale, { waitUntil: 'networkidle' });
        await page.locator('.VPNavBarSearch button').first().click({ timeout: 10_000 });
        await page.locator('.VPLocalSearchBox input').fill(query, { timeout: 10_000 });
        const results = page.locator('.VPLocalSearchBox .result');
        await results
          .first()
          .waitFor({ timeout: 10_000 })
          .catch(() => {});
        const count = await results.count();
        if (count === 0) say(`search on ${locale} finds nothing for '${query}'`);
        else console.log(`  ✓ ${mode} search ${locale} '${query}': ${count} result(s)`);
      } catch (err) {
        say(`the search box could not be used: ${firstLine(err)}`);
      }
    }
  };

  await Promise.all([switcher(), ...Array.from({ length: readers }, reader)]);
  await reading.close();
  await switching.close();
  return problems;
}

const browser = await chromium.launch({
  executablePath: browserPath,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});
const problems: string[] = [];
const times: string[] = [];
try {
  for (const mode of chosen) {
    const started = Date.now();
    const site = mode === 'dev' ? await startDev() : await serveBuilt();
    try {
      const atStart = site.complaints();
      problems.push(...atStart.map((l) => `${mode}: the server printed at start-up: ${l}`));
      problems.push(...(await checkSite(browser, mode, site)));
      const later = site.complaints().slice(atStart.length);
      problems.push(...later.map((l) => `${mode}: the server printed while pages were read: ${l}`));
    } finally {
      await site.stop();
    }
    times.push(`${mode} ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(`\n✗ the site has ${problems.length} problem(s):`);
  for (const p of problems) console.error(`  - ${oneLine(p)}`);
  process.exit(1);
}
console.log(
  `\n✓ ${pages.length} pages × ${chosen.join(' + ')} (${times.join(', ')}): no console error or failed request, ` +
    'every diagram draws in light and dark with its labels inside their boxes, search finds Chinese words',
);
