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
import { numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';
import { COMMON_COMPRESS_OPTIONS, OUTPUT_KIND_OPTION, outputKindArg, runCompressCommand } from './run-compress-job.js';

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

export async function pruneCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    ...COMMON_COMPRESS_OPTIONS,
    sparsity: { type: 'string' },
    scope: { type: 'string' },
    structure: { type: 'string' },
    table: { type: 'string' },
    tensors: { type: 'string' },
    importance: { type: 'string' },
    finetune: { type: 'string' },
    epochs: { type: 'string' },
    lr: { type: 'string' },
    'batch-size': { type: 'string' },
    steps: { type: 'string' },
    'ramp-epochs': { type: 'string' },
    frequency: { type: 'string' },
    granularity: { type: 'string' },
    'per-layer': { type: 'string' },
    'regrow-epochs': { type: 'string' },
    ...OUTPUT_KIND_OPTION,
  });
  if (args.values.sparsity === undefined) throw new UsageError('--sparsity is required (a fraction in [0, 1], e.g. 0.9)');
  const sparsity = numberArg(args, 'sparsity', 0, 0, 1);
  const structure = stringArg(args, 'structure') ?? 'none';
  const scope = stringArg(args, 'scope') ?? 'global';
  if (scope !== 'global' && scope !== 'layer') throw new UsageError("--scope must be 'global' or 'layer'");
  const table = stringArg(args, 'table');
  const importance = stringArg(args, 'importance');
  let step: CompressStep;
  switch (structure) {
    case 'none': {
      const tensors = stringArg(args, 'tensors');
      const granularity = stringArg(args, 'granularity') ?? 'element';
      if (granularity !== 'element' && granularity !== 'column') throw new UsageError("--granularity must be 'element' or 'column'");
      const perLayer = perLayerArg(stringArg(args, 'per-layer'));
      if (perLayer && scope !== 'layer') throw new UsageError('--per-layer needs --scope layer');
      step = {
        method: 'prune-magnitude',
        settings: { sparsity, scope, ...(granularity === 'column' ? { granularity } : {}), ...(perLayer ? { perLayer } : {}), ...(tensors ? { tensors: tensors.split(',') } : {}) },
      };
      break;
    }
    case 'rows':
      step = { method: 'prune-rows', settings: { sparsity, ...(table ? { table } : {}) } };
      break;
    case 'dims':
      step = { method: 'prune-dims', settings: { sparsity, ...(table ? { table } : {}) } };
      break;
    case 'neurons':
      if (importance && importance !== 'l2' && importance !== 'l2xnext') throw new UsageError("--importance must be 'l2' or 'l2xnext'");
      step = { method: 'prune-neurons', settings: { sparsity, ...(importance ? { importance } : {}) } };
      break;
    default:
      throw new UsageError(`--structure must be none, rows, dims or neurons, got '${structure}'`);
  }
  const data = stringArg(args, 'finetune');
  if (!data && args.values.epochs !== undefined) throw new UsageError('--epochs needs --finetune INTERACTIONS.csv');
  if (!data && args.values['output-kind'] !== undefined) throw new UsageError('--output-kind needs --finetune INTERACTIONS.csv (it picks the training loss)');
  const finetune: CompressStep | undefined = data
    ? {
        method: 'finetune',
        settings: {
          data,
          epochs: numberArg(args, 'epochs', 2, 1, 1000),
          lr: numberArg(args, 'lr', 0.001, 0, 10),
          batchSize: numberArg(args, 'batch-size', 1024, 1, 1 << 20),
          masks: structure === 'none' ? 'keep-zeros' : 'none',
          ...outputKindArg(args),
        },
      }
    : undefined;
  if (args.values['ramp-epochs'] !== undefined) {
    // gradual pruning inside one training run: one finetune step that prunes as it trains
    if (structure !== 'none') throw new UsageError('--ramp-epochs (gradual pruning) applies to magnitude pruning (--structure none)');
    if (!finetune) throw new UsageError('--ramp-epochs needs --finetune INTERACTIONS.csv (the pruning happens during training)');
    if (args.values.steps !== undefined) throw new UsageError('give --steps (separate prune / fine-tune rounds) or --ramp-epochs (pruning during one training run), not both');
    if (args.values['regrow-epochs'] !== undefined) throw new UsageError('give --ramp-epochs (gradual pruning) or --regrow-epochs (dynamic pruning), not both');
    const epochs = finetune.settings.epochs as number;
    const rampEpochs = numberArg(args, 'ramp-epochs', 0, 0, epochs);
    const frequency = numberArg(args, 'frequency', 100, 1, 1e9);
    if (!Number.isInteger(rampEpochs) || !Number.isInteger(frequency)) throw new UsageError('--ramp-epochs and --frequency must be integers');
    const gradualStep: CompressStep = { method: 'finetune', settings: { ...finetune.settings, masks: 'none', gradual: { prune: step.settings, rampEpochs, frequency } } };
    return runCompressCommand(args, [gradualStep], `pruned${Math.round(sparsity * 100)}`);
  }
  if (args.values['regrow-epochs'] !== undefined && !finetune) throw new UsageError('--regrow-epochs needs --finetune INTERACTIONS.csv (the masks change during training)');
  // Dynamic pruning (dynamic-pruning.ts) by default when one element-wise cut is fine-tuned for 2+
  // epochs: the masks may change for all but the last epoch. On a PyTorch NeuMF (MovieLens-100K,
  // global 90%, 3 epochs) it kept 78% of NDCG@10 where fixed masks kept 71%. --regrow-epochs 0: fixed.
  const granularity = (step.settings.granularity as string | undefined) ?? 'element';
  const regrowDefault = finetune && structure === 'none' && granularity === 'element' && args.values.steps === undefined && (finetune.settings.epochs as number) >= 2 ? (finetune.settings.epochs as number) - 1 : 0;
  const regrowEpochs = args.values['regrow-epochs'] !== undefined ? numberArg(args, 'regrow-epochs', 0, 0, (finetune?.settings.epochs as number | undefined) ?? 0) : regrowDefault;
  if (!Number.isInteger(regrowEpochs)) throw new UsageError('--regrow-epochs must be an integer');
  if (regrowEpochs > 0 && finetune) {
    if (structure !== 'none') throw new UsageError('--regrow-epochs (dynamic pruning) applies to magnitude pruning (--structure none)');
    if (args.values.steps !== undefined) throw new UsageError('give --steps (separate prune / fine-tune rounds) or --regrow-epochs (masks that change during one training run), not both');
    const frequency = numberArg(args, 'frequency', 100, 1, 1e9);
    const dynamicStep: CompressStep = { method: 'finetune', settings: { ...finetune.settings, masks: 'none', dynamic: { prune: step.settings, regrowEpochs, frequency } } };
    return runCompressCommand(args, [dynamicStep], `pruned${Math.round(sparsity * 100)}`);
  }
  if (args.values.frequency !== undefined) throw new UsageError('--frequency goes with --ramp-epochs or --regrow-epochs');
  const nSteps = numberArg(args, 'steps', 1, 1, 100);
  if (!Number.isInteger(nSteps)) throw new UsageError('--steps must be an integer');
  if (nSteps > 1 && structure !== 'none') throw new UsageError('--steps (an iterative schedule) applies to unstructured pruning (--structure none)');
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
  return runCompressCommand(args, steps, structure === 'none' ? `pruned${Math.round(sparsity * 100)}` : `${structure}${Math.round(sparsity * 100)}`);
}
