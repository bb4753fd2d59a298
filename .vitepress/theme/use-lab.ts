// What every registry-fed chapter component starts with: the lab a page names by id, and whether the page is
// Chinese. An unknown id fails the build with the component's name.
import { useData } from 'vitepress';
import { computed } from 'vue';
import { type Lab, labs } from '../../labs/index.ts';

export function useLab(component: string, id: () => string) {
  const { lang } = useData();
  const zh = computed(() => lang.value.startsWith('zh'));
  const lab = computed((): Lab => {
    const found = labs.find((l) => l.id === id());
    if (!found) throw new Error(`${component}: no lab '${id()}' in labs/index.ts`);
    return found;
  });
  return { zh, lab };
}
