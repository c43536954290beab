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
import { resolve } from 'node:path';
import { composePrune, PruneScheduleError, type PruneFinetune, type PruneSchedule } from '../core/jobs/prune-steps.js';
import { finetuneFromOptions } from '../core/jobs/finetune-step.js';
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

/** Options that belong to one kind of pruning, refused with another (they would be ignored). */
function checkStructureOptions(o: PruneValues, given: ReadonlySet<string>): void {
  const structure = o.structure;
  const wrong = (name: string, what: string) => new UsageError(`--${name} ${what}, not --structure ${structure}`);
  if (structure !== 'none') {
    for (const n of ['granularity', 'per-layer', 'tensors', 'scope', 'ramp-epochs', 'regrow-epochs', 'frequency']) {
      if (given.has(n)) throw wrong(n, 'applies to magnitude pruning (--structure none)');
    }
    if (given.has('steps') && Number(o.steps) > 1) throw wrong('steps', 'above 1 applies to magnitude pruning (--structure none)');
  }
  if (given.has('table') && structure !== 'rows' && structure !== 'dims') throw wrong('table', 'goes with --structure rows or dims');
  if (given.has('importance') && structure !== 'neurons') throw wrong('importance', 'goes with --structure neurons');
}

export async function pruneCommand(argv: string[]): Promise<number> {
  const { values: o, positionals, given } = PRUNE.parse(argv);
  checkStructureOptions(o, given);
  const step = pruneStep(o);
  const model = positionals[0];
  // the unpruned original teaches the fine-tuning (prune-steps.ts), unless --no-teacher
  const ft: PruneFinetune | undefined = finetuneFromOptions(o, resolve(model));
  const schedule: PruneSchedule = {
    ...(o['ramp-epochs'] !== undefined ? { rampEpochs: atMost('ramp-epochs', o['ramp-epochs'], o.epochs) } : {}),
    ...(o['regrow-epochs'] !== undefined ? { regrowEpochs: atMost('regrow-epochs', o['regrow-epochs'], o.epochs) } : {}),
    ...(given.has('steps') ? { steps: o.steps } : {}),
    ...(given.has('frequency') ? { frequency: o.frequency } : {}),
  };
  let steps: CompressStep[];
  try {
    steps = composePrune(step, ft, schedule);
  } catch (e) {
    if (e instanceof PruneScheduleError) throw new UsageError(e.message);
    throw e;
  }
  const name = o.structure === 'none' ? `pruned${Math.round(o.sparsity * 100)}` : `${o.structure}${Math.round(o.sparsity * 100)}`;
  return runCompressCommand(o, model, steps, name);
}
