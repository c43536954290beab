// Turns recipes into model files for the search, sharing work between recipes: every prefix of
// steps is written once (a folder of its own inside the search's work folder) and reused by every
// recipe that starts with it, so that 200 candidates over 5 tables factorize each table once per
// energy, not once per candidate. A step that changes nothing is dropped from the recipe.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readModel } from '../../model/read-model.js';
import type { ModelIR } from '../../model/ir.js';
import type { CompressionContext } from '../types.js';
import { runMethodStep } from '../registry.js';
import type { PlanStep } from './space.js';

export interface Materialized {
  /** the model file (inside its own folder, named as the output will be) */
  path: string;
  /** the folder holding exactly this model's files */
  dir: string;
  /** the steps that changed something, in order: the recipe that reproduces this model */
  steps: PlanStep[];
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

  /** The model after `steps`, as an IR (the original's IR for no steps). */
  async irAfter(steps: readonly PlanStep[]): Promise<ModelIR> {
    if (steps.length === 0) return this.original;
    return readModel((await this.build(steps)).path, { signal: this.ctx.signal });
  }

  private async buildUncached(steps: readonly PlanStep[]): Promise<Materialized> {
    if (steps.length === 0) return { path: this.original.path, dir: '', steps: [] };
    const parent = await this.build(steps.slice(0, -1));
    const step = steps[steps.length - 1];
    this.ctx.signal?.throwIfAborted();
    const input = parent.steps.length === 0 && parent.path === this.original.path ? this.original : await readModel(parent.path, { signal: this.ctx.signal });
    const outcome = await runMethodStep(input, step, { signal: this.ctx.signal });
    if (outcome.changes.length === 0 && step.method !== 'finetune') return parent;
    const dir = join(this.workDir, `m${++this.next}`);
    await mkdir(dir, { recursive: true });
    const path = join(dir, this.fileName);
    await outcome.write(path);
    return { path, dir, steps: [...parent.steps, step] };
  }
}
