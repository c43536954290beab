// Turns recipes into model files for the search, sharing work between recipes: every prefix of
// steps is written once (a folder of its own inside the search's work folder) and reused by every
// recipe that starts with it, so that 200 candidates over 5 tables factorize each table once per
// energy, not once per candidate. A step that changes nothing is dropped from the recipe.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readModel } from '../../model/read-model.js';
import type { ModelIR } from '../../model/ir.js';
import type { CompressionContext, SensitivityMemo } from '../types.js';
import { runMethodStep } from '../registry.js';
import type { PlanStep } from './space.js';

/** Models up to this size on disk are kept read after their first use. */
const KEEP_IR_BYTES = 16 * 1024 * 1024;

export interface Materialized {
  /** the model file (inside its own folder, named as the output will be) */
  path: string;
  /** the folder holding exactly this model's files */
  dir: string;
  /** the steps that changed something, in order: the recipe that reproduces this model */
  steps: PlanStep[];
  /**
   * what an output-aware quantize step measured on this model or on the model before the quantize
   * steps that made it, as a job replaying the recipe holds it (types.ts SensitivityMemo)
   */
  sensitivity: SensitivityMemo;
}

export class Materializer {
  private readonly nodes = new Map<string, Promise<Materialized>>();
  private next = 0;

  /**
   * @param original the model the search starts from
   * @param workDir a folder of the search's own (removed by the caller)
   * @param fileName the output's file name ("x.onnx" or "model.json")
   */
  constructor(
    private readonly original: ModelIR,
    private readonly workDir: string,
    private readonly fileName: string,
    private readonly ctx: CompressionContext = {},
  ) {}

  /** The model after `steps` (each prefix written once). */
  build(steps: readonly PlanStep[]): Promise<Materialized> {
    const key = JSON.stringify(steps);
    let node = this.nodes.get(key);
    if (!node) {
      node = this.buildUncached(steps);
      this.nodes.set(key, node);
      // a failed build is not cached: the error reaches this caller, a later one tries again
      node.catch(() => this.nodes.delete(key));
    }
    return node;
  }

  private readonly irs = new Map<string, ModelIR>();

  /**
   * The model after `steps`, as an IR (the original's IR for no steps). Many candidates share
   * their structural steps and differ only in dtypes: small models are read once and kept; big
   * ones (a read holds the file) are read again rather than held.
   */
  async irAfter(steps: readonly PlanStep[]): Promise<ModelIR> {
    return steps.length === 0 ? this.original : this.irOf(await this.build(steps));
  }

  private async irOf(m: Materialized): Promise<ModelIR> {
    if (m.steps.length === 0) return this.original;
    const known = this.irs.get(m.path);
    if (known) return known;
    const ir = await readModel(m.path, { signal: this.ctx.signal });
    if (ir.files.reduce((n, f) => n + f.bytes, 0) <= KEEP_IR_BYTES) this.irs.set(m.path, ir);
    return ir;
  }

  private readonly rootSensitivity: SensitivityMemo = {};

  private async buildUncached(steps: readonly PlanStep[]): Promise<Materialized> {
    if (steps.length === 0) return { path: this.original.path, dir: '', steps: [], sensitivity: this.rootSensitivity };
    const parent = await this.build(steps.slice(0, -1));
    const step = steps[steps.length - 1];
    this.ctx.signal?.throwIfAborted();
    const input = await this.irOf(parent);
    // quantize steps share what was measured before them; any other method starts afresh (as a job does)
    const sensitivity = step.method === 'quantize' ? parent.sensitivity : {};
    const outcome = await runMethodStep(input, step, { signal: this.ctx.signal, sensitivity });
    if (outcome.changes.length === 0 && step.method !== 'finetune') return parent;
    const dir = join(this.workDir, `m${++this.next}`);
    await mkdir(dir, { recursive: true });
    const path = join(dir, this.fileName);
    await outcome.write(path);
    return { path, dir, steps: [...parent.steps, step], sensitivity };
  }
}
