import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import LabTable from './LabTable.vue';
import Mermaid from './Mermaid.vue';

// Two components earn their place: the teachers' table of labs, exercises and points, read from
// labs/index.ts; and Mermaid, which draws the ```mermaid fences (mermaid-fence.ts) in the browser.
export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('LabTable', LabTable);
    app.component('Mermaid', Mermaid);
  },
} satisfies Theme;
