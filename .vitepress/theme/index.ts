import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import LabTable from './LabTable.vue';

// One component earns its place: the teachers' table of labs, exercises and points, read from labs/index.ts.
export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('LabTable', LabTable);
  },
} satisfies Theme;
