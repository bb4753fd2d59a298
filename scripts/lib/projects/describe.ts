// The stages as a person reads them: the README of `npm run project NAME` and the project's page both come from
// here, from the same steps the tester plays, so the three cannot disagree.
import { escapeBytes, isText } from './bytes.ts';
import { maxScore, stepsFor } from './index.ts';
import { httpReasons, type Locale, type Project, type ResponseStep, type Step } from './types.ts';

/** The seed the README and the page show; a real run prints its own. */
export const exampleSeed = 1;

const t = (locale: Locale, en: string, zh: string) => (locale === 'zh' ? zh : en);

export function stepText(step: Step, locale: Locale): string {
  switch (step.op) {
    case 'connect':
      return t(locale, `${step.who} connects`, `${step.who} 连接`);
    case 'send': {
      const how =
        step.split === 'bytes'
          ? t(locale, '  (one byte per write)', '  （每次写一个字节）')
          : step.split?.length
            ? t(
                locale,
                `  (in ${step.split.length + 1} writes, cut after byte ${step.split.join(', ')})`,
                `  （分 ${step.split.length + 1} 次写入，在第 ${step.split.join('、')} 字节后切开）`,
              )
            : '';
      return `${step.who} → ${escapeBytes(step.data)}${how}`;
    }
    case 'line':
      return `${step.who} ← ${escapeBytes(`${step.line}\r\n`)}`;
    case 'closed':
      return t(
        locale,
        `${step.who} ← (the server closes the connection)`,
        `${step.who} ← （服务器关闭连接）`,
      );
    case 'close':
      return t(locale, `${step.who} closes its connection`, `${step.who} 关闭自己的连接`);
    case 'stall':
      return t(locale, `${step.who} stops reading`, `${step.who} 不再读取`);
    case 'flood':
      return t(
        locale,
        `${step.who} → ${escapeBytes(step.data)} over and over; ${step.reader} ← ${escapeBytes(`${step.each}\r\n`)} for each, until ${step.reader} ← ${escapeBytes(`${step.until}\r\n`)} (at most ${step.maxBytes / 1048576} MiB)`,
        `${step.who} → 反复发送 ${escapeBytes(step.data)}；${step.reader} ← 每条对应 ${escapeBytes(`${step.each}\r\n`)}，直到 ${step.reader} ← ${escapeBytes(`${step.until}\r\n`)}（最多 ${step.maxBytes / 1048576} MiB）`,
      );
    case 'sigterm':
      return t(locale, 'tester → SIGTERM to the program', '测试器 → 向程序发送 SIGTERM');
    case 'exit':
      return t(locale, `the program exits with code ${step.code}`, `程序以退出码 ${step.code} 退出`);
    case 'file': {
      const data = typeof step.data === 'string' ? new TextEncoder().encode(step.data) : step.data;
      const what = isText(data)
        ? `${data.length} ${t(locale, 'bytes', '字节')} ${escapeBytes(data)}`
        : t(locale, `${data.length} bytes of binary`, `${data.length} 字节的二进制数据`);
      return step.outside
        ? t(
            locale,
            `tester → ${step.path} beside ROOT, outside it: ${what}`,
            `测试器 → ${step.path}，在 ROOT 旁边、ROOT 之外：${what}`,
          )
        : t(locale, `tester → ROOT/${step.path}: ${what}`, `测试器 → ROOT/${step.path}：${what}`);
    }
    case 'response':
      return `${step.who} ← ${responseText(step, locale)}`;
  }
}

/** `HTTP/1.1 200 OK · Content-Length: 41 · body: the 41 bytes of apple.txt`: what a response must be. */
function responseText(step: ResponseStep, locale: Locale): string {
  const parts = [
    step.status.map((s) => `HTTP/1.1 ${s} ${httpReasons[s] ?? ''}`).join(t(locale, ' or ', ' 或 ')),
  ];
  const body =
    step.body === undefined
      ? undefined
      : typeof step.body === 'string'
        ? new TextEncoder().encode(step.body)
        : step.body;
  for (const [name, value] of Object.entries(step.headers ?? {})) parts.push(`${name}: ${value}`);
  if (step.framing === 'chunked')
    parts.push(
      t(
        locale,
        'Transfer-Encoding: chunked (no Content-Length)',
        'Transfer-Encoding: chunked（没有 Content-Length）',
      ),
    );
  else parts.push(`Content-Length: ${body ? body.length : 'N'}`);
  let what: string;
  if (body && step.file)
    what = t(locale, `the ${body.length} bytes of ${step.file}`, `${step.file} 的 ${body.length} 个字节`);
  else if (body) what = escapeBytes(body);
  else if (step.lines)
    what = t(
      locale,
      `these lines, in any order: ${step.lines
        .map((l) =>
          escapeBytes(`${l}
`),
        )
        .join(' ')}`,
      `这几行，顺序不限：${step.lines
        .map((l) =>
          escapeBytes(`${l}
`),
        )
        .join(' ')}`,
    );
  else if (step.nonEmpty)
    what = t(locale, 'a short text (any, not empty)', '一小段文字（内容不限，不能为空）');
  else what = t(locale, 'any', '任意');
  if (step.without)
    what += t(
      locale,
      `, never the contents of ${step.without.file}`,
      `，绝不能是 ${step.without.file} 的内容`,
    );
  if (step.framing === 'chunked')
    what += t(
      locale,
      ', in chunks of any size, then "0\\r\\n\\r\\n"',
      '，分成任意大小的块，最后是 "0\\r\\n\\r\\n"',
    );
  parts.push(t(locale, `body: ${what}`, `正文：${what}`));
  return parts.join(' · ');
}

export interface StageView {
  n: number;
  slug: string;
  title: string;
  points: number;
  spec: string;
  skipNote?: string;
  dialogue: string[];
  command: string;
}

export function describeStages(project: Project, locale: Locale, seed = exampleSeed): StageView[] {
  return project.stages.map((stage, i) => ({
    n: i + 1,
    slug: stage.slug,
    title: stage.title[locale],
    points: stage.points,
    spec: stage.spec[locale],
    skipNote: stage.skipNote?.[locale],
    dialogue: stepsFor(project, i + 1, seed).map((s) => stepText(s, locale)),
    command: `npm run grade ${project.name} -- --stage ${i + 1}`,
  }));
}

/** The README written into projects/NAME/: both languages, every stage with exactly what the tester does. */
export function readme(project: Project): string {
  const out: string[] = [];
  for (const locale of ['zh', 'en'] as const) {
    const L = (en: string, zh: string) => t(locale, en, zh);
    const args = project.args ?? '--port N';
    const notes = (project.notes?.[locale] ?? []).map((n) => `\n- ${n}`).join('');
    out.push(
      `# ${project.title[locale]} (${project.name})`,
      '',
      project.intro[locale],
      '',
      L(
        `- \`run.sh\` starts your server; the tester adds \`${args}\`. It runs \`node --import tsx server.ts\` (any Node from 20 on); on Node ≥ 22.18 plain \`node server.ts\` works too. Point it at Python, Go or anything: \`exec python3 server.py "$@"\`.\n- \`npm run grade ${project.name}\` runs every stage in order and stops at the first failure; \`-- --stage N\` runs one; \`-- --seed S\` replays the random inputs of a run; \`-- --watch\` grades on every save.\n- In the dialogues: \`→\` is what a client sends, \`←\` what it must receive, byte for byte (\`\\r\\n\` is CR LF). Words and names are random: they change with the seed (this README shows seed ${exampleSeed}).${notes}\n- Total: ${maxScore(project)} points.`,
        `- \`run.sh\` 启动你的服务器，测试器会加上 \`${args}\`。默认是 \`node --import tsx server.ts\`（Node 20 起都能用）；在 Node ≥ 22.18 上直接 \`node server.ts\` 也行。也可以改成 Python、Go 或任何语言：\`exec python3 server.py "$@"\`。\n- \`npm run grade ${project.name}\` 按顺序运行每个阶段，在第一个失败处停下；\`-- --stage N\` 只运行一个阶段；\`-- --seed S\` 重放某次运行的随机输入；\`-- --watch\` 每次保存都重新评分。\n- 对话中 \`→\` 是客户端发送的内容，\`←\` 是它必须逐字节收到的内容（\`\\r\\n\` 即 CR LF）。单词和名字是随机的，随种子变化（本 README 展示的是种子 ${exampleSeed}）。${notes}\n- 总分：${maxScore(project)} 分。`,
      ),
      '',
    );
    for (const s of describeStages(project, locale)) {
      out.push(
        `## ${L('Stage', '阶段')} ${s.n}: ${s.title} (${s.slug}, ${s.points} ${L('points', '分')})`,
        '',
        s.spec,
        '',
      );
      if (s.skipNote) out.push(s.skipNote, '');
      out.push('```text', ...s.dialogue, '```', '', `\`${s.command}\``, '');
    }
  }
  return out.join('\n');
}
