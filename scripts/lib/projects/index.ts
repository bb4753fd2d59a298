// The project registry: every CLI, the README generator and the pages read this list.
import { chatProject } from './chat.ts';
import { httpProject } from './http.ts';
import { makeRng, type Project, type Step } from './types.ts';

export const projects: readonly Project[] = [chatProject, httpProject];
export const projectsDirName = 'projects';

export function findProject(name: string): Project | undefined {
  return projects.find((p) => p.name === name);
}

export const maxScore = (p: Project) => p.stages.reduce((s, st) => s + st.points, 0);

/** Stage n's steps (1-based) for a seed: each stage has its own random source, so --stage N --seed S replays it. */
export function stepsFor(project: Project, n: number, seed: number): Step[] {
  const stage = project.stages[n - 1];
  if (!stage) throw new Error(`project ${project.name} has no stage ${n}`);
  return stage.steps(makeRng(seed + n));
}
