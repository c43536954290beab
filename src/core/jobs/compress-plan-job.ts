// The 'compress-plan' job: the compress-to-target search (core/compress/plan/) run as a job, with
// progress and cancel. The search works in the job's temp folder; only the chosen model is renamed
// into place at outPath, and the temp folder (every other candidate) is removed at the end, on
// success, failure or cancel alike.

import { basename } from 'node:path';
import { CompressPlanner, type PlanSettings } from '../compress/plan/planner.js';
import { readModel } from '../model/read-model.js';
import type { PlanView } from '../../shared/protocol.js';
import type { CompressPlanJobSpec } from './job-types.js';
import { checkOutputFree, commitOutput, makeTempDir, removeTemp, writingTo, type OutputFormat } from './output-files.js';

type Report = (phase: string, fraction: number, detail?: string) => void;

/** The planner's settings from a job spec (only what the spec names; the planner fills defaults). */
export function planSettingsOf(spec: CompressPlanJobSpec): PlanSettings {
  const s: PlanSettings = { candidates: spec.candidates };
  if (spec.data) s.data = spec.data;
  if (spec.targetRatio !== undefined) s.targetRatio = spec.targetRatio;
  else s.maxDrop = spec.maxDrop ?? 0.01;
  if (spec.maxLatencyRatio !== undefined) s.maxLatencyRatio = spec.maxLatencyRatio;
  if (spec.metric) s.metric = spec.metric;
  if (spec.k !== undefined) s.k = spec.k;
  if (spec.budgetMinutes !== undefined) s.budgetMinutes = spec.budgetMinutes;
  if (spec.holdout !== undefined) s.holdout = spec.holdout;
  if (spec.test) s.test = spec.test;
  if (spec.seed !== undefined) s.seed = spec.seed;
  return s;
}

function formatOf(path: string): OutputFormat {
  return /\.onnx$/i.test(path) ? 'onnx' : 'tfjs';
}

export async function runCompressPlanJob(spec: CompressPlanJobSpec, signal: AbortSignal, report: Report): Promise<PlanView> {
  const format = formatOf(spec.path);
  if (formatOf(spec.outPath) !== format) throw new Error(`the output ${spec.outPath} must be ${format === 'onnx' ? 'a .onnx file' : 'a model.json in a folder of its own'} (the output keeps the input's format)`);
  const overwrite = spec.overwrite === true;
  // fail before the search, not after it, when the output is taken
  await checkOutputFree(spec.outPath, format, overwrite, spec.path);
  try {
    report('reading', 0);
    const ir = await readModel(spec.path, { signal });
    signal.throwIfAborted();
    await makeTempDir(spec.tempDir, spec.outPath);
    const planner = new CompressPlanner(ir, planSettingsOf(spec), spec.tempDir, basename(spec.outPath), {
      signal,
      onProgress: (f, detail) => report('searching', 0.01 + 0.97 * f, detail),
    });
    const result = await planner.run();
    signal.throwIfAborted();
    // the original itself can be the answer (nothing smaller within the budget): nothing to write
    if (result.chosen.recipe.length === 0) return { ...result, notes: [...result.notes, 'The original model is the choice: nothing was written.'] };
    report('renaming', 0.99);
    await writingTo(spec.outPath, () => commitOutput(CompressPlanner.dirOf(result, planner), spec.outPath, format, overwrite, spec.path));
    report('done', 1);
    return { ...result, output: spec.outPath };
  } finally {
    await removeTemp(spec.tempDir);
  }
}
