// A pruning step plus the fine-tuning the user chose, as the steps of one compress job. Composed
// as `prunescope prune --finetune` does: element-wise magnitude pruning fine-tuned for 2+ epochs
// uses dynamic masks (regrown for all but the last epoch), gradual pruning is one finetune step
// that prunes while it trains, structured pruning is followed by a plain fine-tuning.

import type { CompressStep } from './job-types.js';

export type PruneTuning =
  | { kind: 'one-shot' }
  | { kind: 'finetune'; data: string; epochs: number }
  /** TFMOT-style: the sparsity ramps up over `rampEpochs` inside one training run of `epochs` */
  | { kind: 'gradual'; data: string; epochs: number; rampEpochs: number };

/** Optimizer steps between two mask updates (the CLI's --frequency default). */
const MASK_FREQUENCY = 100;

function finetuneSettings(data: string, epochs: number, masks: 'keep-zeros' | 'none'): Record<string, unknown> {
  return { data, epochs, lr: 0.001, batchSize: 1024, masks };
}

export function pruneSteps(step: CompressStep, tuning: PruneTuning): CompressStep[] {
  if (tuning.kind === 'one-shot') return [step];
  const magnitude = step.method === 'prune-magnitude';
  if (tuning.kind === 'gradual') {
    if (!magnitude) throw new Error('gradual pruning (pruning while training) applies to magnitude pruning');
    const gradual = { prune: step.settings, rampEpochs: tuning.rampEpochs, frequency: MASK_FREQUENCY };
    return [{ method: 'finetune', settings: { ...finetuneSettings(tuning.data, tuning.epochs, 'none'), gradual } }];
  }
  const elementWise = magnitude && (step.settings.granularity ?? 'element') === 'element';
  if (elementWise && tuning.epochs >= 2) {
    const dynamic = { prune: step.settings, regrowEpochs: tuning.epochs - 1, frequency: MASK_FREQUENCY };
    return [{ method: 'finetune', settings: { ...finetuneSettings(tuning.data, tuning.epochs, 'none'), dynamic } }];
  }
  return [step, { method: 'finetune', settings: finetuneSettings(tuning.data, tuning.epochs, magnitude ? 'keep-zeros' : 'none') }];
}

/** Words for titles and notifications, e.g. "one-shot: no fine-tuning", "fine-tuned 2 epochs". */
export function describeTuning(tuning: PruneTuning): string {
  switch (tuning.kind) {
    case 'one-shot':
      return 'one-shot: no fine-tuning';
    case 'finetune':
      return `fine-tuned ${tuning.epochs} epoch${tuning.epochs === 1 ? '' : 's'}`;
    case 'gradual':
      return `gradual: pruned while training ${tuning.epochs} epochs (ramp over ${tuning.rampEpochs})`;
  }
}
