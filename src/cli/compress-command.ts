// `prunescope compress MODEL --candidates VAL.csv --out PATH [...]`: the compress-to-target
// search (core/compress/plan/). Writes the chosen model at --out (atomically, never over the
// original), every front member's recipe beside it (`prunescope run` replays one), and prints the
// front as a table or, with --json, `{chosen, front, evaluated, seconds, ...}`.

import { cancelOnSignals } from './cancel-signals.js';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { CompressPlanner, type PlanPoint, type PlanResult } from '../core/compress/plan/planner.js';
import type { PlanMetric } from '../core/compress/plan/scoring.js';
import { checkOutputFree, commitOutput, makeTempDir, modelOutputPath, OutputExistsError, removeTemp, tempDirFor, writingTo } from '../core/jobs/output-files.js';
import { RECIPE_SCHEMA_VERSION, recipeText, relativeRecipe } from '../core/jobs/recipe-file.js';
import type { CompressStep } from '../core/jobs/job-types.js';
import { readModel } from '../core/model/read-model.js';
import { formatBytes } from '../core/analysis/opportunities.js';
import { frontRows } from '../shared/protocol.js';
import { COMPRESS } from './command-specs.js';
import { UsageError } from './args.js';
import { checkOutputFolder, modelOutputFolder } from './output-checks.js';
import { createProgressBar } from './progress.js';

/** Where the front's recipes go: `<out stem>.front/` beside the output (TF.js: beside its folder). */
export function recipesDirFor(out: string): string {
  if (/\.onnx$/i.test(out)) return out.replace(/\.onnx$/i, '.front');
  return `${dirname(out)}.front`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function row(p: PlanPoint, metric: PlanMetric, chosen: boolean, expected: boolean): string {
  const m = p.metrics[metric];
  const held = p.heldOut ? pct(p.heldOut.kept).padStart(8) : '       -';
  const lat = p.latency ? `${p.latency.ratio.toFixed(2)}x${p.latency.slower ? ' slower' : ''}` : '-';
  const measured = expected ? ` ${(p.keptMeasured === undefined ? '-' : pct(p.keptMeasured)).padStart(8)}` : '';
  return `${chosen ? '*' : ' '} ${`${p.ratio.toFixed(1)}x`.padStart(7)} ${formatBytes(p.bytes).padStart(10)} ${(m === null ? '-' : m.toFixed(4)).padStart(7)} ${pct(p.kept).padStart(7)}${measured} ${held} ${lat.padEnd(13)} ${p.origin.padEnd(9)} ${p.label}`;
}

export function formatPlan(r: PlanResult, out: string, recipes: string): string {
  const M = `${r.metric.toUpperCase()}${r.metric === 'auc' ? '' : `@${r.k}`}`;
  const base = r.baseline.metrics[r.metric];
  const expected = r.chooseBy === 'expected';
  const lines = [
    `Original: ${formatBytes(r.baseline.bytes)}, ${M} ${base === null ? '-' : base.toFixed(4)} on ${r.baseline.users} users${r.baseline.latencyP50Ms !== undefined ? `, p50 ${r.baseline.latencyP50Ms.toFixed(3)} ms` : ''}`,
    `Budget: ${r.budget.targetRatio !== undefined ? `>= ${r.budget.targetRatio}x smaller, most accurate` : `keep >= ${pct(1 - (r.budget.maxDrop ?? 0.01))} of ${M}, smallest`}${r.budget.maxLatencyRatio !== undefined ? `, latency <= ${r.budget.maxLatencyRatio}x` : ''}`,
    ...(r.atChance ? [`Warning: the original ranks these candidates no better than chance (${M} ${r.atChance.original.toFixed(4)}, a random order ${r.atChance.mean.toFixed(4)} ± ${r.atChance.sd.toFixed(4)}): every figure below is noise (see the notes).`] : []),
    '',
    `Pareto front (${r.front.length} of ${r.evaluated} candidates evaluated in ${r.seconds.toFixed(0)} s):`,
    `  ${'ratio'.padStart(7)} ${'size'.padStart(10)} ${M.padStart(7)} ${(expected ? 'exp.kept' : 'kept').padStart(7)}${expected ? ` ${'measured'.padStart(8)}` : ''} ${'held-out'.padStart(8)} ${'latency'.padEnd(13)} ${'origin'.padEnd(9)} recipe`,
  ];
  const inFront = r.front.some((p) => p.id === r.chosen.id);
  for (const p of frontRows(r)) lines.push(row(p, r.metric, p.id === r.chosen.id, expected));
  if (!inFront) lines.push(`  (* is off the front: another candidate is no larger and measures more accurate, but is slower; see below)`);
  lines.push('', `${r.withinBudget ? 'Chosen' : 'Best effort (nothing met the budget)'}: ${r.chosen.label}: ${r.chosen.ratio.toFixed(1)}x smaller, ${pct(r.chosen.kept)} of ${M}${expected && r.chosen.keptMeasured !== undefined ? ` expected (${pct(r.chosen.keptMeasured)} measured)` : ''}${r.chosen.heldOut ? `, ${pct(r.chosen.heldOut.kept)} held out` : ''} (${r.reason}).`);
  lines.push(`Written: ${out}`, `Recipes of the front: ${recipes} (prunescope run <recipe> replays one)`);
  // smallest first, as the front
  const offFront = r.trained.filter((p) => p.id !== r.chosen.id && !r.front.some((f) => f.id === p.id)).sort((a, b) => b.ratio - a.ratio);
  if (offFront.length > 0) {
    lines.push('', 'Trained candidates not on the front:');
    for (const p of offFront) lines.push(row(p, r.metric, false, expected));
  }
  for (const n of r.notes) lines.push(`- ${n}`);
  return lines.join('\n');
}

export async function compressCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = COMPRESS.parse(argv);
  const model = resolve(positionals[0]);
  const out = modelOutputPath(model, o.out, 'compressed');
  const format = /\.onnx$/i.test(model) ? 'onnx' : 'tfjs';
  // --holdout 0 (the default, given) goes with --test; a share held out of the candidates does not
  if (o.test && o.holdout !== undefined && o.holdout > 0) throw new UsageError('give --holdout or --test, not both');
  if (o.test && resolve(o.test) === resolve(o.candidates)) {
    throw new UsageError('--test is the --candidates file: the search chooses on those users, so its figures on them are not held out (give other users\' candidates, or --holdout 0.5)');
  }
  const metric: PlanMetric = o.metric;
  const settings = {
    candidates: resolve(o.candidates),
    metric,
    k: o.k,
    ...(o['target-ratio'] !== undefined ? { targetRatio: o['target-ratio'] } : { maxDrop: o['max-drop'] }),
    ...(o['max-latency-ratio'] !== undefined ? { maxLatencyRatio: o['max-latency-ratio'] } : {}),
    latencyBatch: o['latency-batch'],
    ...(o.data ? { data: resolve(o.data) } : {}),
    budgetMinutes: o['budget-minutes'],
    ...(o.holdout ? { holdout: o.holdout } : {}),
    ...(o.test ? { test: resolve(o.test) } : {}),
    seed: o.seed,
    finetuneEpochs: o['finetune-epochs'],
    finetuneCount: o['finetune-count'],
    distill: !o['no-distill'],
    confidence: o.confidence,
    chooseBy: o['choose-by'],
    rounding: o.rounding,
  };
  const overwrite = o.force;
  // nothing is made on a typo: the folder must exist (a TF.js output's own folder is made)
  checkOutputFolder(modelOutputFolder(out));
  await checkOutputFree(out, format, overwrite, model);
  const recipesDir = recipesDirFor(out);
  await checkRecipesFree(recipesDir, overwrite);
  const tempDir = tempDirFor(out);
  const ac = new AbortController();
  const stopListening = cancelOnSignals(ac, tempDir, out);
  // on a terminal, or with --progress; the bar is cleared before anything else is written
  const bar = createProgressBar('compress', process.stderr, o.progress);
  const progress = (f: number, detail?: string) => bar.update(f, detail);
  try {
    const ir = await readModel(model, { signal: ac.signal });
    await makeTempDir(tempDir, out);
    const planner = new CompressPlanner(ir, settings, tempDir, basename(out), { signal: ac.signal, onProgress: progress });
    const result = await planner.run();
    bar.done();
    await writingTo(out, () => commitOutput(CompressPlanner.dirOf(result, planner), out, format, overwrite, model));
    await writeRecipes(result, recipesDir, model, settings.candidates, result.k);
    if (o.json) process.stdout.write(JSON.stringify({ ...result, output: out, recipes: recipesDir }, null, 2) + '\n');
    else process.stdout.write(formatPlan(result, out, recipesDir) + '\n');
    return 0;
  } catch (e) {
    bar.done();
    if (ac.signal.aborted) {
      process.stderr.write(`cancelled: nothing was written (${out})\n`);
      return 130;
    }
    throw e;
  } finally {
    bar.done();
    stopListening();
    await removeTemp(tempDir);
  }
}

async function oldRecipes(dir: string): Promise<string[]> {
  return existsSync(dir) ? (await readdir(dir)).filter((n) => n.endsWith('.recipe.json')) : [];
}

/** The front's recipe folder holds recipes of an earlier search: refused before any work unless --force. */
async function checkRecipesFree(dir: string, overwrite: boolean): Promise<void> {
  if (!overwrite && (await oldRecipes(dir)).length > 0) throw new OutputExistsError(dir);
}

/**
 * One recipe per front member (and the choice), paths relative to the recipes' folder. An earlier
 * search's recipes (allowed by --force) go only now, once the new model is in place.
 */
async function writeRecipes(r: PlanResult, dir: string, model: string, candidates: string, k: number): Promise<void> {
  for (const n of await oldRecipes(dir)) await rm(join(dir, n));
  await mkdir(dir, { recursive: true });
  const points = r.front.some((p) => p.id === r.chosen.id) ? r.front : [...r.front, r.chosen];
  for (const [i, p] of points.entries()) {
    const name = `${String(i + 1).padStart(2, '0')}-${p.ratio.toFixed(1)}x${p.id === r.chosen.id ? '-chosen' : ''}.recipe.json`;
    const text = recipeText(relativeRecipe({ version: RECIPE_SCHEMA_VERSION, model, steps: p.recipe as CompressStep[], candidates, k }, dir));
    await writingTo(join(dir, name), () => writeFile(join(dir, name), text));
  }
}
