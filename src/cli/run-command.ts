// `prunescope run RECIPE.json [MODEL] [--out PATH] [--candidates FILE]`: replays a recipe (the
// steps of a compression, in order) so a compression can be reproduced. Paths in the recipe are
// relative to the recipe's folder; flags override them. Every output report embeds the recipe.

import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { absoluteRecipe, parseRecipe } from '../core/jobs/recipe-file.js';
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
  // the recipe's relative paths (model, output, candidates, datasets in settings) are relative to its folder
  const abs = absoluteRecipe(recipe, dirname(file));
  const model = modelArg ? resolve(modelArg) : abs.model;
  if (!model) throw new UsageError(`${file} names no model: give one after the recipe`);
  const steps = abs.steps;
  // the recipe's K unless --k is given (the option's default would hide that it was not)
  const kGiven = argv.some((a) => a === '--k' || a.startsWith('--k='));
  const o = { ...values, out: values.out ?? abs.output, candidates: values.candidates ?? abs.candidates, k: kGiven ? values.k : abs.k ?? values.k };
  return runCompressCommand(o, model, steps, steps.map((s) => s.method).join('+'));
}
