// The method registry: each compression method's declaration from method-settings.ts (name,
// title, description, typed settings) with its run function. Jobs and the planner run methods
// through here, so settings are checked once, at the boundary, before any work; the methods keep
// their own checks for direct callers. This file loads every method (TF.js included): code that
// only validates or describes settings (extension host, recipes) imports method-settings.ts.

import { COMPRESS_METHODS, type CompressMethod } from '../jobs/job-types.js';
import type { ModelIR } from '../model/ir.js';
import { distillModel } from './distill.js';
import { factorizeModel } from './factorize.js';
import { finetuneModel } from './finetune.js';
import { checkedSettings, isCompressMethod, METHOD_SETTINGS, type MethodSettingsDeclaration, type MethodSettingsMap } from './method-settings.js';
import { pruneDims } from './prune-dims.js';
import { pruneFields } from './prune-fields.js';
import { pruneMagnitude } from './prune-magnitude.js';
import { pruneNeurons } from './prune-neurons.js';
import { pruneRows } from './prune-rows.js';
import { quantizeModel } from './quantize.js';
import type { CompressionContext, CompressionOutcome } from './types.js';

export interface MethodDeclaration<S> extends MethodSettingsDeclaration<S> {
  run(ir: ModelIR, settings: S, ctx: CompressionContext): Promise<CompressionOutcome>;
}

type Runners = { readonly [M in CompressMethod]: MethodDeclaration<MethodSettingsMap[M]>['run'] };

const RUN: Runners = {
  'prune-magnitude': pruneMagnitude,
  'prune-rows': pruneRows,
  'prune-dims': pruneDims,
  'prune-neurons': pruneNeurons,
  'prune-fields': pruneFields,
  quantize: quantizeModel,
  factorize: factorizeModel,
  distill: distillModel,
  finetune: finetuneModel,
};

/** A method's full declaration; throws on an unknown name (listing the known ones). */
export function methodDeclaration<M extends CompressMethod>(name: M): MethodDeclaration<MethodSettingsMap[M]> {
  if (!isCompressMethod(name)) throw new Error(`unknown compression method "${String(name)}" (known: ${COMPRESS_METHODS.join(', ')})`);
  return { ...(METHOD_SETTINGS[name] as MethodSettingsDeclaration<MethodSettingsMap[M]>), run: RUN[name] as Runners[M] };
}

/** Checks raw settings and runs the method; a SettingsError (naming each bad setting) comes before any work. */
export async function runMethodChecked<M extends CompressMethod>(name: M, ir: ModelIR, raw: unknown, ctx: CompressionContext = {}): Promise<CompressionOutcome> {
  const m = methodDeclaration(name);
  return m.run(ir, checkedSettings(name, raw), ctx);
}

/**
 * Runs one step the way a compress job does: the method's job defaults (quantize: no model check,
 * the caller compares the models itself) under the step's settings, checked, then run.
 */
export async function runMethodStep(ir: ModelIR, step: { method: CompressMethod; settings?: Record<string, unknown> }, ctx: CompressionContext = {}): Promise<CompressionOutcome> {
  const m = methodDeclaration(step.method);
  return runMethodChecked(step.method, ir, { ...m.jobDefaults, ...step.settings }, ctx);
}
