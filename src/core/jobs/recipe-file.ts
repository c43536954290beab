// Recipe files (`*.recipe.json`): a model, the compression steps applied to it in order, and
// where the result goes. The extension's "Run Recipe" and the quick fix "Write recipe" use this
// one format, so a recipe written from a finding can be edited and run again later.

import { isAbsolute, relative, resolve, sep } from 'node:path';
import { COMPRESS_METHODS, type CompressMethod, type CompressStep } from './job-types.js';
import { isCompressMethod, METHOD_SETTINGS, settingsJsonSchema, validateSettings, type JsonSchema } from '../compress/method-settings.js';

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
  /** the K of HR@K / NDCG@K on the candidates (compress --k writes it); default 10 */
  k?: number;
}

/** Step settings that name files: in a recipe, a relative one is relative to the recipe's folder. */
const PATH_SETTINGS: ReadonlySet<string> = new Set(['data', 'candidates', 'teacher', 'calibration']);

function mapPaths(r: RecipeFile, f: (p: string) => string): RecipeFile {
  const one = (p: string | undefined) => (p === undefined ? undefined : f(p));
  return {
    ...r,
    ...(r.model !== undefined ? { model: one(r.model) } : {}),
    ...(r.output !== undefined ? { output: one(r.output) } : {}),
    ...(r.candidates !== undefined ? { candidates: one(r.candidates) } : {}),
    steps: r.steps.map((s) => ({ ...s, settings: mapSettingPaths(s.settings, f) })),
  };
}

/** The path settings of a step, nested ones too (prune-fields' `fields: { drop, data }`). */
function mapSettingPaths(settings: Record<string, unknown>, f: (p: string) => string): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(settings).map(([k, v]) => [k, PATH_SETTINGS.has(k) && typeof v === 'string' ? f(v) : isRecord(v) ? mapSettingPaths(v, f) : v]),
  );
}

/** The recipe's paths as a job needs them: the relative ones resolved against `base`, its folder. */
export function absoluteRecipe(r: RecipeFile, base: string): RecipeFile {
  return mapPaths(r, (p) => (isAbsolute(p) ? p : resolve(base, p)));
}

/** A recipe to write in folder `dir`, its paths relative to it: moved with its model and data, it still runs. */
export function relativeRecipe(r: RecipeFile, dir: string): RecipeFile {
  // with '/' on Windows too: the file is read the same on every system
  return mapPaths(r, (p) => (isAbsolute(p) ? (relative(dir, p) || '.').split(sep).join('/') : p));
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
    // a problem of the whole file (not valid JSON) has no path: no empty field before its message
    super(`${file}: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`);
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
  if (doc.k !== undefined && !(Number.isInteger(doc.k) && (doc.k as number) >= 1 && (doc.k as number) <= 1000)) {
    problems.push({ path: 'k', message: 'must be an integer from 1 to 1000 (the K of HR@K and NDCG@K)' });
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
    if (!isCompressMethod(s.method)) {
      problems.push({ path: `steps[${i}].method`, message: `unknown method ${JSON.stringify(s.method)}; one of ${COMPRESS_METHODS.join(', ')}` });
    }
    if (s.settings !== undefined && !isRecord(s.settings)) problems.push({ path: `steps[${i}].settings`, message: 'must be an object' });
    else if (isCompressMethod(s.method)) problems.push(...stepSettingsProblems(i, s.method, s.settings));
  });
  return problems;
}

/** A step's settings through the method registry, at paths "steps[i].settings.<key>". */
function stepSettingsProblems(i: number, method: CompressMethod, settings: unknown): RecipeProblem[] {
  const at = `steps[${i}].settings`;
  return validateSettings(method, settings).problems.map((p) => ({ path: p.path ? `${at}.${p.path}` : at, message: p.message }));
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
    ...(d.k !== undefined ? { k: d.k as number } : {}),
  };
}

export function recipeText(r: RecipeFile): string {
  return JSON.stringify(r, null, 2) + '\n';
}

// ---------------- the recipe JSON Schema (media/recipe.schema.json is generated from this) ----------------

function stepSchema(): JsonSchema {
  return {
    type: 'object',
    required: ['method'],
    properties: {
      method: {
        enum: COMPRESS_METHODS,
        enumDescriptions: COMPRESS_METHODS.map((m) => METHOD_SETTINGS[m].description),
        description: 'The compression method (one file per method in the engine).',
      },
      settings: { type: 'object', description: "The method's settings, e.g. { \"sparsity\": 0.5 } or { \"dtype\": \"int8\" }." },
    },
    allOf: COMPRESS_METHODS.map((m) => {
      const d = METHOD_SETTINGS[m];
      const needed = Object.values(d.settings).some((f) => f.required) || (d.exclusive ?? []).some((g) => g.required);
      const then = { ...(needed ? { required: ['settings'] } : {}), properties: { settings: settingsJsonSchema(m) } };
      return { if: { required: ['method'], properties: { method: { const: m } } }, then };
    }),
  };
}

/** The JSON Schema of recipe files; each step's settings are those of its method (from the registry). */
export function recipeJsonSchema(): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'PruneScope recipe',
    description: "Compression steps applied to a model in order; run with 'PruneScope: Run Recipe'.",
    type: 'object',
    required: ['steps'],
    properties: {
      version: { const: RECIPE_SCHEMA_VERSION, description: 'Recipe format version.' },
      model: { type: 'string', description: "The model (model.json or .onnx), relative to this file's folder." },
      output: { type: 'string', description: "Output path, relative to this file's folder. Default: the prunescope.outputPattern setting." },
      candidates: { type: 'string', description: 'Candidates CSV (user,item,label) for HR@K / NDCG@K / AUC before and after.' },
      k: { type: 'integer', minimum: 1, maximum: 1000, description: 'The K of HR@K and NDCG@K on the candidates. Default: 10.' },
      steps: { type: 'array', minItems: 1, items: stepSchema() },
    },
  };
}

function inlineJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(inlineJson).join(', ')}]`;
  if (isRecord(v)) {
    const e = Object.entries(v);
    return e.length ? `{ ${e.map(([k, x]) => `${JSON.stringify(k)}: ${inlineJson(x)}`).join(', ')} }` : '{}';
  }
  return JSON.stringify(v);
}

/** JSON with two-space indents; a value that fits in 120 columns stays on one line. */
function prettyJson(v: unknown, indent = '', prefix = 0): string {
  const one = inlineJson(v);
  if (indent.length + prefix + one.length <= 120 || !(Array.isArray(v) || isRecord(v))) return one;
  const inner = `${indent}  `;
  if (Array.isArray(v)) return `[\n${v.map((x) => inner + prettyJson(x, inner)).join(',\n')}\n${indent}]`;
  const lines = Object.entries(v).map(([k, x]) => `${inner}${JSON.stringify(k)}: ${prettyJson(x, inner, JSON.stringify(k).length + 2)}`);
  return `{\n${lines.join(',\n')}\n${indent}}`;
}

/** The text of media/recipe.schema.json (a unit test keeps the file equal to it). */
export function recipeSchemaText(): string {
  return `${prettyJson(recipeJsonSchema())}\n`;
}
