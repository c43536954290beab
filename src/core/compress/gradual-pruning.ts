// Gradual magnitude pruning inside one training run (TFMOT's prune_low_magnitude habit): the
// schedule, and the pruner the training loop calls before each optimizer step.

import * as tf from '@tensorflow/tfjs';
import { ModelFileError, ModelIR } from '../model/ir.js';
import { irWithValues, polynomialDecaySparsity, pruneMasks, PruneMagnitudeSettings, PruneMasks } from './prune-magnitude.js';
import type { Trainee } from './train/trainee.js';
import type { FastEngine } from './train/compiled-step.js';

/**
 * Gradual magnitude pruning inside one training run, as TFMOT's prune_low_magnitude does: every
 * `frequency` optimizer steps the masks are recomputed from the current weights, with the targets
 * ramped along the cubic polynomial decay from 0 (step 0) to the final ones (end of epoch
 * `rampEpochs`); the remaining epochs train at the final masks. Pruned weights are zero after every
 * step, and the optimizer (Adam and its moments) runs on through the whole schedule, which
 * separate prune-then-fine-tune rounds cannot do.
 */
export interface GradualPruningSettings {
  /** the pruning reached at the end of the ramp: sparsity, scope, per-layer targets, granularity */
  prune: PruneMagnitudeSettings;
  /** epochs of the ramp; 0 prunes to the final targets before the first step */
  rampEpochs: number;
  /** optimizer steps between two mask updates; default 100 (TFMOT's default) */
  frequency?: number;
}

export function resolveGradual(g: GradualPruningSettings, epochs: number, file: string): Required<GradualPruningSettings> {
  const frequency = g.frequency ?? 100;
  if (!Number.isInteger(g.rampEpochs) || g.rampEpochs < 0 || g.rampEpochs > epochs) {
    throw new ModelFileError(file, `gradual pruning: rampEpochs must be an integer from 0 to the ${epochs} epochs, got ${g.rampEpochs}`);
  }
  if (!Number.isInteger(frequency) || frequency < 1) throw new ModelFileError(file, `gradual pruning: frequency must be a positive integer, got ${frequency}`);
  if (!g.prune || typeof g.prune.sparsity !== 'number') throw new ModelFileError(file, 'gradual pruning needs prune settings with a sparsity');
  return { prune: g.prune, rampEpochs: g.rampEpochs, frequency };
}

/** The model IR with the trainee's current values in place of the stored ones, for pruneMasks. */
function irWithTraineeValues(ir: ModelIR, t: Trainee): ModelIR {
  return irWithValues(ir, new Map(t.names.map((n, i) => [n, t.variables[i].dataSync() as Float32Array])));
}

/** Recomputes the masks of a GradualPruningSettings schedule from the trainee's weights. */
export class GradualPruner {
  last?: PruneMasks;
  updates = 0;
  private readonly rampSteps: number;

  constructor(
    private readonly ir: ModelIR,
    private readonly trainee: Trainee,
    private readonly g: Required<GradualPruningSettings>,
    batchesPerEpoch: number,
    totalSteps: number,
    /** the loop's masks, replaced in place */
    private readonly live: Array<tf.Tensor | undefined>,
    /** zeros from before training that stay zero (keep-zeros), by variable; may be empty */
    private readonly keep: Array<tf.Tensor | undefined>,
  ) {
    // the final targets are set at the last step at the latest (a ramp over every epoch)
    this.rampSteps = Math.min(g.rampEpochs * batchesPerEpoch, totalSteps - 1);
  }

  async beforeStep(step: number): Promise<void> {
    const f = rampFactor(step, this.rampSteps, this.g.frequency);
    if (f === undefined) return;
    const settings = rampSettings(this.g.prune, f);
    const m = await pruneMasks(irWithTraineeValues(this.ir, this.trainee), settings);
    const index = new Map(this.trainee.names.map((n, i) => [n, i]));
    for (const [name, mask] of m.masks) {
      const i = index.get(name);
      if (i === undefined) continue; // a tensor the translation does not train (none today)
      const v = this.trainee.variables[i];
      const old = this.live[i];
      const next = tf.tidy(() => {
        const fresh = tf.tensor(Float32Array.from(mask), v.shape, 'float32');
        const k = this.keep[i];
        return k ? tf.mul(fresh, k) : fresh;
      });
      if (old && old !== this.keep[i]) old.dispose();
      this.live[i] = next;
      tf.tidy(() => v.assign(tf.mul(v, next)));
    }
    this.last = m;
    this.updates++;
  }

  summary(values: Map<string, Float32Array>): string {
    return gradualSummary(this.g, this.last, this.updates, values);
  }
}

/** The ramp position of step `step`: the factor of the final targets, or undefined when the masks stay. */
function rampFactor(step: number, end: number, frequency: number): number | undefined {
  if (!(step === end || (step < end && step % frequency === 0))) return undefined;
  return end === 0 ? 1 : polynomialDecaySparsity(step, { initial: 0, final: 1, begin: 0, end, power: 3 });
}

function rampSettings(p: PruneMagnitudeSettings, f: number): PruneMagnitudeSettings {
  const at = (x: number): number => x * f;
  return {
    ...p,
    sparsity: at(p.sparsity),
    ...(p.perLayer ? { perLayer: Object.fromEntries(Object.entries(p.perLayer).map(([k, v]) => [k, at(v)])) } : {}),
  };
}


/**
 * GradualPruner for the compiled engine (train/compiled-step.ts): the same schedule and masks,
 * set on its tables and dense tensors (whole tables are masked, so pruned rows change even when
 * no batch touches them).
 */
export class EngineGradualPruner {
  last?: PruneMasks;
  updates = 0;
  private readonly rampSteps: number;

  constructor(
    private readonly ir: ModelIR,
    private readonly engine: FastEngine,
    private readonly g: Required<GradualPruningSettings>,
    batchesPerEpoch: number,
    totalSteps: number,
  ) {
    this.rampSteps = Math.min(g.rampEpochs * batchesPerEpoch, totalSteps - 1);
  }

  async beforeStep(step: number): Promise<void> {
    const f = rampFactor(step, this.rampSteps, this.g.frequency);
    if (f === undefined) return;
    const m = await pruneMasks(irWithValues(this.ir, this.engine.values()), rampSettings(this.g.prune, f));
    for (const [name, mask] of m.masks) {
      const t = this.engine.tables.find((x) => x.name === name);
      if (t) t.setPruneMask(mask);
      else this.engine.dense.find((x) => x.name === name)?.setPruneMask(mask);
    }
    this.last = m;
    this.updates++;
  }

  summary(values: Map<string, Float32Array>): string {
    return gradualSummary(this.g, this.last, this.updates, values);
  }
}

function gradualSummary(g: Required<GradualPruningSettings>, last: PruneMasks | undefined, updates: number, values: Map<string, Float32Array>): string {
  const p = g.prune;
  let zeros = 0;
  let n = 0;
  for (const name of last?.masks.keys() ?? []) {
    const v = values.get(name);
    if (!v) continue;
    n += v.length;
    for (let j = 0; j < v.length; j++) if (v[j] === 0) zeros++;
  }
  const cols = (last?.columns ?? []).map((c) => `${c.tables.join(' + ')} ${c.width - c.zeroed} of ${c.width} columns left`).join('; ');
  const targets = p.perLayer ? `, per-layer targets ${Object.entries(p.perLayer).map(([k, v]) => `${k} ${v}`).join(', ')}` : '';
  return (
    `Gradual magnitude pruning during training (${p.granularity ?? 'element'} granularity, ${p.scope ?? 'global'} scope, target ${p.sparsity}${targets}): ` +
    `the targets ramped along the cubic polynomial decay over ${g.rampEpochs} epoch(s), masks recomputed every ${g.frequency} steps (${updates} updates), ` +
    `then training went on at the final masks. ${zeros} of ${n} chosen weights are zero (${((100 * zeros) / Math.max(1, n)).toFixed(1)}%)` +
    (cols ? `; ${cols}.` : '.')
  );
}
