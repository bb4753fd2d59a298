// Which workbook the CLIs work on: this one, or the one named by WORKBOOK_ROOT (the tooling's own tests
// point it at a small fixture workbook). Its labs/index.ts is the registry they read.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as Registry from '../../labs/index.ts';

export const root = process.env.WORKBOOK_ROOT
  ? path.resolve(process.env.WORKBOOK_ROOT)
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const registry = (await import(pathToFileURL(path.join(root, 'labs/index.ts')).href)) as typeof Registry;
export const labs: readonly Registry.Lab[] = registry.labs;
