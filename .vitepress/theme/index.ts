import type { Theme } from 'vitepress';
import DefaultTheme from 'vitepress/theme';
import LabExercises from './LabExercises.vue';
import LabHeader from './LabHeader.vue';
import LabTable from './LabTable.vue';
import Mermaid from './Mermaid.vue';
import ProjectStages from './ProjectStages.vue';

// Components read labs/index.ts so a page adds prose, not copies: the teachers' table of labs, exercises and
// points, and each chapter's header line and Exercise section; and Mermaid, which draws the ```mermaid fences
// (mermaid-fence.ts) in the browser.
export default {
  extends: DefaultTheme,
  enhanceApp({ app }) {
    app.component('LabTable', LabTable);
    app.component('LabHeader', LabHeader);
    app.component('LabExercises', LabExercises);
    app.component('Mermaid', Mermaid);
    app.component('ProjectStages', ProjectStages);
  },
} satisfies Theme;
