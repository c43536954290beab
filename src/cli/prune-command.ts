// `prunescope prune MODEL --sparsity 0.9 [--scope global|layer] [--structure none|rows|dims|neurons]
//  [--finetune INTERACTIONS.csv --epochs N] [--steps N] --out PATH`
// With --steps N (unstructured), the sparsity ramps up over N pruning steps along TFMOT's
// polynomial-decay schedule (cubic: large steps first, small ones near the target), with
// fine-tuning between steps when --finetune is given: the network recovers between cuts.

import type { CompressStep } from '../core/jobs/job-types.js';
import { polynomialDecaySparsity } from '../core/compress/prune-magnitude.js';
import { numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';
import { COMMON_COMPRESS_OPTIONS, runCompressCommand } from './run-compress-job.js';

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
      step = { method: 'prune-magnitude', settings: { sparsity, scope, ...(tensors ? { tensors: tensors.split(',') } : {}) } };
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
  const finetune: CompressStep | undefined = data
    ? {
        method: 'finetune',
        settings: {
          data,
          epochs: numberArg(args, 'epochs', 2, 1, 1000),
          lr: numberArg(args, 'lr', 0.001, 0, 10),
          batchSize: numberArg(args, 'batch-size', 1024, 1, 1 << 20),
          masks: structure === 'none' ? 'keep-zeros' : 'none',
        },
      }
    : undefined;
  const nSteps = numberArg(args, 'steps', 1, 1, 100);
  if (!Number.isInteger(nSteps)) throw new UsageError('--steps must be an integer');
  if (nSteps > 1 && structure !== 'none') throw new UsageError('--steps (an iterative schedule) applies to unstructured pruning (--structure none)');
  const steps: CompressStep[] = [];
  for (let i = 1; i <= nSteps; i++) {
    const s = nSteps === 1 ? sparsity : Math.round(polynomialDecaySparsity(i, { initial: 0, final: sparsity, begin: 0, end: nSteps, power: 3 }) * 1e4) / 1e4;
    steps.push(nSteps === 1 ? step : { method: 'prune-magnitude', settings: { ...step.settings, sparsity: s } });
    if (finetune) steps.push(finetune);
  }
  return runCompressCommand(args, steps, structure === 'none' ? `pruned${Math.round(sparsity * 100)}` : `${structure}${Math.round(sparsity * 100)}`);
}
