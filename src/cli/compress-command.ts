// `prunescope compress MODEL --candidates VAL.csv --out PATH [...]`: the compress-to-target
// search (core/compress/plan/). Writes the chosen model at --out (atomically, never over the
// original), every front member's recipe beside it (`prunescope run` replays one), and prints the
// front as a table or, with --json, `{chosen, front, evaluated, seconds, ...}`.

import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { CompressPlanner, type PlanPoint, type PlanResult } from '../core/compress/plan/planner.js';
import type { PlanMetric } from '../core/compress/plan/scoring.js';
import { checkOutputFree, commitOutput, OutputExistsError, removeTemp, tempDirFor, writingTo } from '../core/jobs/output-files.js';
import { RECIPE_SCHEMA_VERSION, recipeText } from '../core/jobs/recipe-file.js';
import type { CompressStep } from '../core/jobs/job-types.js';
import { readModel } from '../core/model/read-model.js';
import { formatBytes } from '../core/analysis/opportunities.js';
import { flag, numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';

const OPTIONS = {
  candidates: { type: 'string' },
  'max-drop': { type: 'string' },
  metric: { type: 'string' },
  k: { type: 'string' },
  'target-ratio': { type: 'string' },
  'max-latency-ratio': { type: 'string' },
  'latency-batch': { type: 'string' },
  data: { type: 'string' },
  'budget-minutes': { type: 'string' },
  holdout: { type: 'string' },
  test: { type: 'string' },
  seed: { type: 'string' },
  'finetune-epochs': { type: 'string' },
  'finetune-count': { type: 'string' },
  'no-distill': { type: 'boolean' },
  confidence: { type: 'string' },
  out: { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** Where the front's recipes go: `<out stem>.front/` beside the output (TF.js: beside its folder). */
export function recipesDirFor(out: string): string {
  if (/\.onnx$/i.test(out)) return out.replace(/\.onnx$/i, '.front');
  return `${dirname(out)}.front`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function row(p: PlanPoint, metric: PlanMetric, chosen: boolean): string {
  const m = p.metrics[metric];
  const held = p.heldOut ? pct(p.heldOut.kept).padStart(8) : '       -';
  const lat = p.latency ? `${p.latency.ratio.toFixed(2)}x${p.latency.slower ? ' slower' : ''}` : '-';
  return `${chosen ? '*' : ' '} ${`${p.ratio.toFixed(1)}x`.padStart(7)} ${formatBytes(p.bytes).padStart(10)} ${(m === null ? '-' : m.toFixed(4)).padStart(7)} ${pct(p.kept).padStart(7)} ${held} ${lat.padEnd(13)} ${p.origin.padEnd(9)} ${p.label}`;
}

export function formatPlan(r: PlanResult, out: string, recipes: string): string {
  const M = `${r.metric.toUpperCase()}${r.metric === 'auc' ? '' : `@${r.k}`}`;
  const base = r.baseline.metrics[r.metric];
  const lines = [
    `Original: ${formatBytes(r.baseline.bytes)}, ${M} ${base === null ? '-' : base.toFixed(4)} on ${r.baseline.users} users${r.baseline.latencyP50Ms !== undefined ? `, p50 ${r.baseline.latencyP50Ms.toFixed(3)} ms` : ''}`,
    `Budget: ${r.budget.targetRatio !== undefined ? `>= ${r.budget.targetRatio}x smaller, most accurate` : `keep >= ${pct(1 - (r.budget.maxDrop ?? 0.01))} of ${M}, smallest`}${r.budget.maxLatencyRatio !== undefined ? `, latency <= ${r.budget.maxLatencyRatio}x` : ''}`,
    '',
    `Pareto front (${r.front.length} of ${r.evaluated} candidates evaluated in ${r.seconds.toFixed(0)} s):`,
    `  ${'ratio'.padStart(7)} ${'size'.padStart(10)} ${M.padStart(7)} ${'kept'.padStart(7)} ${'held-out'.padStart(8)} ${'latency'.padEnd(13)} ${'origin'.padEnd(9)} recipe`,
  ];
  const inFront = r.front.some((p) => p.id === r.chosen.id);
  for (const p of r.front) lines.push(row(p, r.metric, p.id === r.chosen.id));
  if (!inFront) lines.push(row(r.chosen, r.metric, true));
  lines.push('', `${r.withinBudget ? 'Chosen' : 'Best effort (nothing met the budget)'}: ${r.chosen.label}: ${r.chosen.ratio.toFixed(1)}x smaller, ${pct(r.chosen.kept)} of ${M}${r.chosen.heldOut ? `, ${pct(r.chosen.heldOut.kept)} held out` : ''} (${r.reason}).`);
  lines.push(`Written: ${out}`, `Recipes of the front: ${recipes} (prunescope run <recipe> replays one)`);
  const offFront = r.trained.filter((p) => !r.front.some((f) => f.id === p.id));
  if (offFront.length > 0) {
    lines.push('', 'Trained candidates not on the front:');
    for (const p of offFront) lines.push(row(p, r.metric, false));
  }
  for (const n of r.notes) lines.push(`- ${n}`);
  return lines.join('\n');
}

function metricArg(v: string | undefined): PlanMetric {
  if (v === undefined) return 'ndcg';
  if (v !== 'ndcg' && v !== 'hr' && v !== 'auc') throw new UsageError(`--metric must be ndcg, hr or auc, got '${v}'`);
  return v;
}

function intArg(args: ReturnType<typeof parseCommandArgs>, name: string, fallback: number, min: number, max: number): number {
  const n = numberArg(args, name, fallback, min, max);
  if (!Number.isInteger(n)) throw new UsageError(`--${name} must be an integer, got '${String(args.values[name])}'`);
  return n;
}

export async function compressCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS);
  const [modelArg, ...extra] = args.positionals;
  if (!modelArg || extra.length > 0) throw new UsageError('give one model (model.json or .onnx)');
  const candidates = stringArg(args, 'candidates');
  if (!candidates) throw new UsageError('--candidates VAL.csv is required (per user one positive and its negatives)');
  const outArg = stringArg(args, 'out');
  if (!outArg) throw new UsageError('--out PATH is required (the chosen model is written there)');
  if (args.values['max-drop'] !== undefined && args.values['target-ratio'] !== undefined) throw new UsageError('give --max-drop or --target-ratio, not both');
  if (args.values.holdout !== undefined && args.values.test !== undefined) throw new UsageError('give --holdout or --test, not both');
  const model = resolve(modelArg);
  const out = resolve(outArg);
  const format = /\.onnx$/i.test(model) ? 'onnx' : 'tfjs';
  if ((format === 'onnx') !== /\.onnx$/i.test(out)) throw new UsageError(`--out must be ${format === 'onnx' ? 'a .onnx file' : 'a model.json in a folder of its own'} (the output keeps the input's format)`);
  const settings = {
    candidates: resolve(candidates),
    metric: metricArg(stringArg(args, 'metric')),
    k: intArg(args, 'k', 10, 1, 1000),
    ...(args.values['target-ratio'] !== undefined ? { targetRatio: numberArg(args, 'target-ratio', 2, 1.0001, 1e6) } : { maxDrop: numberArg(args, 'max-drop', 0.01, 0, 0.99) }),
    ...(args.values['max-latency-ratio'] !== undefined ? { maxLatencyRatio: numberArg(args, 'max-latency-ratio', 1, 0.01, 100) } : {}),
    latencyBatch: intArg(args, 'latency-batch', 256, 1, 1 << 20),
    ...(stringArg(args, 'data') ? { data: resolve(stringArg(args, 'data')!) } : {}),
    budgetMinutes: numberArg(args, 'budget-minutes', 10, 0.1, 24 * 60),
    ...(args.values.holdout !== undefined ? { holdout: numberArg(args, 'holdout', 0.5, 0, 0.9) } : {}),
    ...(stringArg(args, 'test') ? { test: resolve(stringArg(args, 'test')!) } : {}),
    seed: intArg(args, 'seed', 1, 0, 2 ** 31 - 1),
    finetuneEpochs: intArg(args, 'finetune-epochs', 2, 1, 100),
    finetuneCount: intArg(args, 'finetune-count', 6, 0, 50),
    distill: !flag(args, 'no-distill'),
    confidence: numberArg(args, 'confidence', 0, 0, 5),
  };
  const overwrite = flag(args, 'force');
  await checkOutputFree(out, format, overwrite, model);
  const recipesDir = recipesDirFor(out);
  await checkRecipesFree(recipesDir, overwrite);
  const tempDir = tempDirFor(out);
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  let last = 0;
  const progress = (f: number, detail?: string) => {
    if (flag(args, 'json') || Date.now() - last < 1000) return;
    last = Date.now();
    process.stderr.write(`\r${(f * 100).toFixed(0).padStart(3)}% ${(detail ?? '').slice(0, 90).padEnd(90)}`);
  };
  try {
    const ir = await readModel(model, { signal: ac.signal });
    await mkdir(tempDir, { recursive: true });
    const planner = new CompressPlanner(ir, settings, tempDir, basename(out), { signal: ac.signal, onProgress: progress });
    const result = await planner.run();
    if (!flag(args, 'json')) process.stderr.write('\r'.padEnd(96) + '\r');
    await writingTo(out, () => commitOutput(CompressPlanner.dirOf(result, planner), out, format, overwrite, model));
    await writeRecipes(result, recipesDir, model, settings.candidates);
    if (flag(args, 'json')) process.stdout.write(JSON.stringify({ ...result, output: out, recipes: recipesDir }, null, 2) + '\n');
    else process.stdout.write(formatPlan(result, out, recipesDir) + '\n');
    return 0;
  } catch (e) {
    if (ac.signal.aborted) {
      process.stderr.write('\ncancelled: nothing was written\n');
      return 130;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await removeTemp(tempDir);
  }
}

/** The front's recipe folder holds recipes of an earlier search: refuse, or (with --force) clear them. */
async function checkRecipesFree(dir: string, overwrite: boolean): Promise<void> {
  const old = existsSync(dir) ? (await readdir(dir)).filter((n) => n.endsWith('.recipe.json')) : [];
  if (old.length === 0) return;
  if (!overwrite) throw new OutputExistsError(dir);
  for (const n of old) await rm(join(dir, n));
}

/** One recipe per front member (and the choice), paths relative to the recipes' folder. */
async function writeRecipes(r: PlanResult, dir: string, model: string, candidates: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const points = r.front.some((p) => p.id === r.chosen.id) ? r.front : [...r.front, r.chosen];
  for (const [i, p] of points.entries()) {
    const name = `${String(i + 1).padStart(2, '0')}-${p.ratio.toFixed(1)}x${p.id === r.chosen.id ? '-chosen' : ''}.recipe.json`;
    const text = recipeText({ version: RECIPE_SCHEMA_VERSION, model: relative(dir, model), steps: p.recipe as CompressStep[], candidates: relative(dir, candidates) });
    await writingTo(join(dir, name), () => writeFile(join(dir, name), text));
  }
}
