import { type DefaultTheme, defineConfig } from 'vitepress';
import { guides, labs, parts } from '../labs/index.ts';
import { projects } from '../scripts/lib/projects/index.ts';
import { tokenize } from './search.ts';
import { withDiagrams } from './theme/mermaid-fence.ts';

type Locale = 'zh' | 'en';

// The sidebar comes from labs/index.ts: a lab added there shows up here, in both locales, under its part.
function sidebar(locale: Locale): DefaultTheme.SidebarItem[] {
  const prefix = locale === 'zh' ? '/' : '/en/';
  const item = (l: { slug: string; title: Record<Locale, string> }) => ({
    text: `${l.slug.slice(0, 2)} ${l.title[locale]}`,
    link: `${prefix}${l.slug}`,
  });
  const groups: DefaultTheme.SidebarItem[] = [
    {
      text: locale === 'zh' ? '开始' : 'Start',
      items: guides.filter((g) => g.slug.startsWith('00')).map(item),
    },
  ];
  for (const part of parts) {
    const inPart = labs.filter((l) => l.part === part.id);
    if (inPart.length) groups.push({ text: part.title[locale], items: inPart.map(item) });
  }
  // Projects: a whole server from an empty file, graded by a tester (scripts/lib/projects/).
  groups.push({
    text: locale === 'zh' ? '项目' : 'Projects',
    items: projects.map((p) => ({ text: p.title[locale], link: `${prefix}projects/${p.name}` })),
  });
  const rest = guides.filter((g) => !g.slug.startsWith('00'));
  if (rest.length) {
    groups.push({
      text: locale === 'zh' ? '教学' : 'Teaching',
      items: rest.map((g) => ({ text: g.title[locale], link: `${prefix}${g.slug}` })),
    });
  }
  return groups;
}

export default withDiagrams(
  defineConfig({
    srcDir: 'docs',
    cleanUrls: true,
    lastUpdated: false,
    // A link to a page that does not exist fails the build (the default; said here so nobody turns it off).
    ignoreDeadLinks: false,
    // favicon.ico too: a browser asks for /favicon.ico before the dev server's page has put its <head> in.
    head: [
      ['link', { rel: 'icon', href: '/favicon.ico', sizes: '32x32' }],
      ['link', { rel: 'icon', type: 'image/svg+xml', href: '/favicon.svg' }],
    ],
    title: 'Node 网络编程实验手册',
    description: '用 node:net 与 node:dgram 学 TCP 和 UDP：每章一个可运行的实验和一套测试',
    locales: {
      root: {
        label: '简体中文',
        lang: 'zh-CN',
        themeConfig: {
          nav: [
            { text: '如何使用', link: '/00-how-to-use' },
            { text: '教师指南', link: '/teachers' },
            { text: 'Node API', link: 'https://nodejs.org/api/net.html' },
          ],
          sidebar: sidebar('zh'),
          outline: { level: [2, 3], label: '本页目录' },
          docFooter: { prev: '上一章', next: '下一章' },
          darkModeSwitchLabel: '外观',
          sidebarMenuLabel: '目录',
          returnToTopLabel: '回到顶部',
        },
      },
      en: {
        label: 'English',
        lang: 'en-US',
        title: 'Node Networking Workbook',
        description:
          'Learn TCP and UDP with node:net and node:dgram: a runnable lab and a test suite for every chapter',
        themeConfig: {
          nav: [
            { text: 'How to use', link: '/en/00-how-to-use' },
            { text: 'For teachers', link: '/en/teachers' },
            { text: 'Node API', link: 'https://nodejs.org/api/net.html' },
          ],
          sidebar: sidebar('en'),
          outline: { level: [2, 3] },
        },
      },
    },
    themeConfig: {
      search: {
        provider: 'local',
        options: {
          miniSearch: { options: { tokenize } },
          locales: {
            root: {
              translations: {
                button: { buttonText: '搜索', buttonAriaLabel: '搜索' },
                modal: {
                  noResultsText: '没有找到',
                  resetButtonTitle: '清除',
                  footer: { selectText: '选择', navigateText: '切换', closeText: '关闭' },
                },
              },
            },
          },
        },
      },
    },
    // Mermaid is big; its chunks are loaded only on pages with a diagram (theme/Mermaid.vue imports it).
    vite: { build: { chunkSizeWarningLimit: 4000 } },
  }),
);
