// TEMPORARY until the registry lands
import type { ModelIR } from '../../model/ir.js';
import type { CompressionContext, CompressionOutcome } from '../types.js';
import { quantizeModel } from '../quantize.js';
import { pruneRows } from '../prune-rows.js';
import { pruneDims } from '../prune-dims.js';
import { factorizeModel } from '../factorize.js';
import { finetuneModel } from '../finetune.js';
import { distillModel } from '../distill.js';
import type { PlanStep } from './space.js';
export async function runMethodStep(ir: ModelIR, step: PlanStep, ctx: CompressionContext): Promise<CompressionOutcome> {
  const s = step.settings as any;
  switch (step.method) {
    case 'quantize': return quantizeModel(ir, { verify: false, ...s }, ctx);
    case 'prune-rows': return pruneRows(ir, s, ctx);
    case 'prune-dims': return pruneDims(ir, s, ctx);
    case 'factorize': return factorizeModel(ir, s, ctx);
    case 'finetune': return finetuneModel(ir, s, ctx);
    case 'distill': return distillModel(ir, s, ctx);
  }
}
