// `prunescope prune MODEL --sparsity 0.9 [--scope global|layer] [--structure none|rows|dims|neurons]
//  [--granularity element|column] [--per-layer NAME=S,...] [--finetune INTERACTIONS.csv --epochs N]
//  [--steps N | --ramp-epochs N | --regrow-epochs N] [--frequency 100] --out PATH`
// With --steps N (unstructured), the sparsity ramps up over N pruning steps along TFMOT's
// polynomial-decay schedule (cubic: large steps first, small ones near the target), with
// fine-tuning between steps when --finetune is given: the network recovers between cuts. Per-layer
// targets ramp along the same curve (each step prunes every layer to the same share of its target).
// With --ramp-epochs N instead, the pruning happens inside one training run (TFMOT's
// prune_low_magnitude): masks recomputed every --frequency optimizer steps while the targets ramp
// over the first N epochs, then training goes on at the final masks; Adam's state carries through.
// With --regrow-epochs N (the default for one element-wise cut fine-tuned 2+ epochs: N = epochs - 1)
// the target is held from the start but pruned weights keep learning in a shadow copy and the
// masks are chosen again every --frequency steps for N epochs, then fixed (dynamic-pruning.ts).

import type { CompressStep } from '../core/jobs/job-types.js';
import { polynomialDecaySparsity } from '../core/compress/prune-magnitude.js';
import { UsageError } from './args.js';
import { PRUNE } from './command-specs.js';
import type { OptionValues } from './options.js';
import { runCompressCommand } from './run-compress-job.js';

type PruneValues = OptionValues<(typeof PRUNE)['options']>;

/** `name=0.9,other=1`: per-layer (or per-tensor) sparsity targets */
function perLayerArg(text: string | undefined): Record<string, number> | undefined {
  if (text === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const eq = part.lastIndexOf('=');
    const name = part.slice(0, eq).trim();
    const v = Number(part.slice(eq + 1));
    if (eq <= 0 || name === '' || !(v >= 0 && v <= 1)) throw new UsageError(`--per-layer wants NAME=SPARSITY pairs with sparsities in [0, 1], got '${part}'`);
    out[name] = v;
  }
  return out;
}

/** A bound that depends on another option (--epochs): the same message as the spec's ranges. */
function atMost(name: string, v: number, max: number): number {
  if (v > max) throw new UsageError(`--${name} must be a number in [0, ${max}], got '${v}'`);
  return v;
}

/** The pruning step itself, from --structure and its options. */
function pruneStep(o: PruneValues): CompressStep {
  const { sparsity, table, importance } = o;
  switch (o.structure) {
    case 'none': {
      const perLayer = perLayerArg(o['per-layer']);
      if (perLayer && o.scope !== 'layer') throw new UsageError('--per-layer needs --scope layer');
      const granularity = o.granularity === 'column' ? { granularity: o.granularity } : {};
      return { method: 'prune-magnitude', settings: { sparsity, scope: o.scope, ...granularity, ...(perLayer ? { perLayer } : {}), ...(o.tensors ? { tensors: o.tensors } : {}) } };
    }
    case 'rows':
      return { method: 'prune-rows', settings: { sparsity, ...(table ? { table } : {}) } };
    case 'dims':
      return { method: 'prune-dims', settings: { sparsity, ...(table ? { table } : {}) } };
    default:
      return { method: 'prune-neurons', settings: { sparsity, ...(importance ? { importance } : {}) } };
  }
}

export async function pruneCommand(argv: string[]): Promise<number> {
  const { values: o, positionals, given } = PRUNE.parse(argv);
  const { sparsity, structure } = o;
  const step = pruneStep(o);
  const model = positionals[0];
  const finetune: CompressStep | undefined = o.finetune
    ? {
        method: 'finetune',
        settings: {
          data: o.finetune,
          epochs: o.epochs,
          lr: o.lr,
          batchSize: o['batch-size'],
          masks: structure === 'none' ? 'keep-zeros' : 'none',
          ...(o['output-kind'] !== undefined ? { outputKind: o['output-kind'] } : {}),
        },
      }
    : undefined;
  if (o['ramp-epochs'] !== undefined) {
    // gradual pruning inside one training run: one finetune step that prunes as it trains
    if (structure !== 'none') throw new UsageError('--ramp-epochs (gradual pruning) applies to magnitude pruning (--structure none)');
    const rampEpochs = atMost('ramp-epochs', o['ramp-epochs'], o.epochs);
    const gradualStep: CompressStep = { method: 'finetune', settings: { ...finetune!.settings, masks: 'none', gradual: { prune: step.settings, rampEpochs, frequency: o.frequency } } };
    return runCompressCommand(o, model, [gradualStep], `pruned${Math.round(sparsity * 100)}`);
  }
  // Dynamic pruning (dynamic-pruning.ts) by default when one element-wise cut is fine-tuned for 2+
  // epochs: the masks may change for all but the last epoch. On a PyTorch NeuMF (MovieLens-100K,
  // global 90%, 3 epochs) it kept 78% of NDCG@10 where fixed masks kept 71%. --regrow-epochs 0: fixed.
  const regrowDefault = finetune && structure === 'none' && o.granularity === 'element' && !given.has('steps') && o.epochs >= 2 ? o.epochs - 1 : 0;
  const regrowEpochs = o['regrow-epochs'] !== undefined ? atMost('regrow-epochs', o['regrow-epochs'], o.epochs) : regrowDefault;
  if (regrowEpochs > 0 && finetune) {
    if (structure !== 'none') throw new UsageError('--regrow-epochs (dynamic pruning) applies to magnitude pruning (--structure none)');
    if (given.has('steps')) throw new UsageError('give --steps (separate prune / fine-tune rounds) or --regrow-epochs (masks that change during one training run), not both');
    const dynamicStep: CompressStep = { method: 'finetune', settings: { ...finetune.settings, masks: 'none', dynamic: { prune: step.settings, regrowEpochs, frequency: o.frequency } } };
    return runCompressCommand(o, model, [dynamicStep], `pruned${Math.round(sparsity * 100)}`);
  }
  if (given.has('frequency')) throw new UsageError('--frequency goes with --ramp-epochs or --regrow-epochs');
  const nSteps = o.steps;
  if (nSteps > 1 && structure !== 'none') throw new UsageError('--steps (an iterative schedule) applies to unstructured pruning (--structure none)');
  return runCompressCommand(o, model, schedule(step, finetune, nSteps, sparsity), structure === 'none' ? `pruned${Math.round(sparsity * 100)}` : `${structure}${Math.round(sparsity * 100)}`);
}

/** N cuts along the cubic schedule, each followed by the fine-tuning when there is one. */
function schedule(step: CompressStep, finetune: CompressStep | undefined, nSteps: number, sparsity: number): CompressStep[] {
  const steps: CompressStep[] = [];
  for (let i = 1; i <= nSteps; i++) {
    // the share of every target reached at step i
    const f = polynomialDecaySparsity(i, { initial: 0, final: 1, begin: 0, end: nSteps, power: 3 });
    const at = (target: number): number => Math.round(target * f * 1e4) / 1e4;
    const perLayer = step.settings.perLayer as Record<string, number> | undefined;
    const ramped = { ...step.settings, sparsity: at(sparsity), ...(perLayer ? { perLayer: Object.fromEntries(Object.entries(perLayer).map(([k, v]) => [k, at(v)])) } : {}) };
    steps.push(nSteps === 1 ? step : { method: 'prune-magnitude', settings: ramped });
    if (finetune) steps.push(finetune);
  }
  return steps;
}
