// labs/index.ts is the one list of labs: every lab, page, twin page and test must match an entry, and back.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { labs } from '../labs/index.ts';
import { checkLabs } from '../scripts/lib/check-labs.ts';
import { resolveLab } from '../scripts/lib/registry.ts';
import { root } from './helpers/lab.ts';

describe('the lab registry', () => {
  it('agrees with labs/, docs/, docs/en/ and test/ (run `npm run check:labs` for the same list)', () => {
    expect(checkLabs(root)).toEqual([]);
  });

  it('says how to fix a lab without an entry, an entry without a page, and a missing region', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-'));
    for (const d of ['labs', 'docs/en', 'test']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    const lab = labs[0];
    if (!lab) throw new Error('no labs');
    fs.writeFileSync(path.join(dir, `labs/${lab.slug}.ts`), '// no regions\n');
    fs.writeFileSync(path.join(dir, 'labs/99-stray.ts'), '');
    fs.writeFileSync(path.join(dir, `docs/${lab.slug}.md`), `<<< ../labs/${lab.slug}.ts#nowhere\n`);
    fs.writeFileSync(path.join(dir, `test/${lab.slug}.test.ts`), '');
    const problems = checkLabs(dir, [lab], []);
    expect(problems).toContain(
      `docs/en/${lab.slug}.md is missing (its English twin of lab ${lab.id} in labs/index.ts): create it, or remove the entry`,
    );
    expect(problems).toContain(
      'labs/99-stray.ts has no entry in labs/index.ts: add one (id, slug, titles, goal, roles, exercises) or remove the file',
    );
    expect(problems).toContain(
      `docs/${lab.slug}.md imports region 'nowhere' from labs/${lab.slug}.ts, which has no '// #region nowhere'`,
    );
    expect(problems.filter((p) => p.includes("has no '// #region exercise-"))).toHaveLength(
      lab.exercises.length,
    );
    fs.rmSync(dir, { recursive: true });
  });

  it('resolves 01, 1, 01-basic-tcp and basic-tcp to the same lab, and names the closest for a typo', () => {
    for (const input of ['01', '1', '01-basic-tcp', 'basic-tcp', 'labs/01-basic-tcp.ts']) {
      expect(resolveLab(input).slug).toBe('01-basic-tcp');
    }
    expect(() => resolveLab('basci-tcp')).toThrow(/^no lab 'basci-tcp'; closest: 01-basic-tcp/);
  });

  it('calls a name that fits several labs ambiguous and lists them', () => {
    const base = labs[0];
    if (!base) throw new Error('no labs');
    const two = [
      { ...base, id: '08', slug: '08-chat-v1' },
      { ...base, id: '09', slug: '09-chat-v2' },
    ];
    expect(() => resolveLab('chat', two)).toThrow("'chat' is ambiguous: it matches 08-chat-v1, 09-chat-v2");
    expect(resolveLab('chat-v2', two).id).toBe('09');
  });
});
