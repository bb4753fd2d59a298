// The project registry: every CLI, the README generator and the pages read this list.
import { chatProject } from './chat.ts';
import type { Project } from './types.ts';

export const projects: readonly Project[] = [chatProject];
export const projectsDirName = 'projects';

export function findProject(name: string): Project | undefined {
  return projects.find((p) => p.name === name);
}

export const maxScore = (p: Project) => p.stages.reduce((s, st) => s + st.points, 0);
