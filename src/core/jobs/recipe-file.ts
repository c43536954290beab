// Recipe files (`*.recipe.json`): a model, the compression steps applied to it in order, and
// where the result goes. The extension's "Run Recipe" and the quick fix "Write recipe" use this
// one format, so a recipe written from a finding can be edited and run again later.

import { COMPRESS_METHODS, type CompressMethod, type CompressStep } from './job-types.js';

export const RECIPE_SCHEMA_VERSION = 1;

export interface RecipeFile {
  version: number;
  /** the model, relative to the recipe file's folder (or absolute) */
  model?: string;
  steps: CompressStep[];
  /** output path, relative to the recipe's folder; default from the output pattern */
  output?: string;
  /** candidates CSV for the before/after accuracy figures, relative to the recipe's folder */
  candidates?: string;
}

/** One problem with a recipe file, at a JSON path (e.g. "steps[1].method"). */
export interface RecipeProblem {
  path: string;
  message: string;
}

export class RecipeError extends Error {
  constructor(
    readonly file: string,
    readonly problems: RecipeProblem[],
  ) {
    super(`${file}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
    this.name = 'RecipeError';
  }
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Checks a parsed recipe; returns every problem found (empty when valid). */
export function checkRecipe(doc: unknown): RecipeProblem[] {
  const problems: RecipeProblem[] = [];
  if (!isRecord(doc)) return [{ path: '', message: 'a recipe is a JSON object with "steps"' }];
  if (doc.version !== undefined && doc.version !== RECIPE_SCHEMA_VERSION) {
    problems.push({ path: 'version', message: `unsupported version ${String(doc.version)} (this PruneScope reads version ${RECIPE_SCHEMA_VERSION})` });
  }
  for (const key of ['model', 'output', 'candidates'] as const) {
    if (doc[key] !== undefined && (typeof doc[key] !== 'string' || (doc[key] as string).length === 0)) {
      problems.push({ path: key, message: 'must be a non-empty string (a path)' });
    }
  }
  if (!Array.isArray(doc.steps) || doc.steps.length === 0) {
    problems.push({ path: 'steps', message: 'must be a non-empty array of { "method", "settings" }' });
    return problems;
  }
  doc.steps.forEach((s: unknown, i: number) => {
    if (!isRecord(s)) {
      problems.push({ path: `steps[${i}]`, message: 'must be an object { "method", "settings" }' });
      return;
    }
    if (typeof s.method !== 'string' || !(COMPRESS_METHODS as readonly string[]).includes(s.method)) {
      problems.push({ path: `steps[${i}].method`, message: `unknown method ${JSON.stringify(s.method)}; one of ${COMPRESS_METHODS.join(', ')}` });
    }
    if (s.settings !== undefined && !isRecord(s.settings)) problems.push({ path: `steps[${i}].settings`, message: 'must be an object' });
  });
  return problems;
}

export function parseRecipe(text: string, file: string): RecipeFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new RecipeError(file, [{ path: '', message: `not valid JSON: ${(e as Error).message}` }]);
  }
  const problems = checkRecipe(doc);
  if (problems.length > 0) throw new RecipeError(file, problems);
  const d = doc as Record<string, unknown>;
  return {
    version: RECIPE_SCHEMA_VERSION,
    model: d.model as string | undefined,
    steps: (d.steps as Array<Record<string, unknown>>).map((s) => ({ method: s.method as CompressMethod, settings: (s.settings as Record<string, unknown>) ?? {} })),
    output: d.output as string | undefined,
    candidates: d.candidates as string | undefined,
  };
}

export function recipeText(r: RecipeFile): string {
  return JSON.stringify(r, null, 2) + '\n';
}
