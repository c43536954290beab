// `prunescope run RECIPE.json [MODEL] [--out PATH] [--candidates FILE]`: replays a recipe (the
// steps of a compression, in order) so a compression can be reproduced. Paths in the recipe are
// relative to the recipe's folder; flags override them. Every output report embeds the recipe.

import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseRecipe } from '../core/jobs/recipe-file.js';
import { ioReason, ModelFileError } from '../core/model/ir.js';
import { UsageError } from './args.js';
import { RUN } from './command-specs.js';
import { runCompressCommand } from './run-compress-job.js';

export async function runRecipeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = RUN.parse(argv);
  const [recipePath, modelArg] = positionals;
  const file = resolve(recipePath);
  const text = await readFile(file, 'utf8').catch((e: unknown) => {
    throw new ModelFileError(file, `cannot read the recipe: ${ioReason(e)}`);
  });
  const recipe = parseRecipe(text, file);
  const base = dirname(file);
  const fromRecipe = (p: string | undefined) => (p === undefined ? undefined : isAbsolute(p) ? p : resolve(base, p));
  const model = modelArg ? resolve(modelArg) : fromRecipe(recipe.model);
  if (!model) throw new UsageError(`${file} names no model: give one after the recipe`);
  // resolve the recipe's own relative paths (datasets in settings) against its folder
  const steps = recipe.steps.map((s) => ({
    method: s.method,
    settings: Object.fromEntries(
      Object.entries(s.settings).map(([k, v]) => [k, (k === 'data' || k === 'candidates') && typeof v === 'string' ? fromRecipe(v) : v]),
    ),
  }));
  const o = { ...values, out: values.out ?? fromRecipe(recipe.output), candidates: values.candidates ?? fromRecipe(recipe.candidates) };
  return runCompressCommand(o, model, steps, steps.map((s) => s.method).join('+'));
}
