// Turns recipes into model files for the search, sharing work between recipes: every prefix of
// steps is written once (a folder of its own inside the search's work folder) and reused by every
// recipe that starts with it, so that 200 candidates over 5 tables factorize each table once per
// energy, not once per candidate. A step that changes nothing is dropped from the recipe, and a
// step whose model is byte for byte one built before (factorize at energy 0.5 and 0.6 keep the
// same rank of a narrow table) resolves to that model and its recipe: one candidate, evaluated
// once, listed once on the front.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
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

  /** the models written, by their files' total size; each one's digest once asked for */
  private readonly bySize = new Map<number, Array<{ m: Materialized; digest?: Promise<string> }>>();

  /**
   * An earlier model whose files equal those in `dir`, byte for byte (digests are taken only
   * when the total sizes match); else `m` is recorded and undefined returned.
   */
  private async sameAsBuilt(m: Materialized): Promise<Materialized | undefined> {
    const files = (await readdir(m.dir)).sort();
    let size = 0;
    for (const f of files) size += (await stat(join(m.dir, f))).size;
    const mine = { m, digest: undefined as Promise<string> | undefined };
    const peers = this.bySize.get(size) ?? [];
    for (const p of peers) {
      p.digest ??= folderDigest(p.m.dir);
      mine.digest ??= folderDigest(m.dir);
      if ((await p.digest) === (await mine.digest)) return p.m;
    }
    peers.push(mine);
    this.bySize.set(size, peers);
    return undefined;
  }

  private async buildUncached(steps: readonly PlanStep[]): Promise<Materialized> {
    if (steps.length === 0) return { path: this.original.path, dir: '', steps: [], sensitivity: this.rootSensitivity };
    const parent = await this.build(steps.slice(0, -1));
    const step = steps[steps.length - 1];
    // the prefix resolved to a model built by other steps: continue from those
    if (JSON.stringify(parent.steps) !== JSON.stringify(steps.slice(0, -1))) return this.build([...parent.steps, step]);
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
    const built: Materialized = { path, dir, steps: [...parent.steps, step], sensitivity };
    const same = await this.sameAsBuilt(built);
    if (!same) return built;
    await rm(dir, { recursive: true, force: true });
    return same;
  }
}

/** sha256 over a folder's file names and contents, in name order. */
async function folderDigest(dir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of (await readdir(dir)).sort()) {
    h.update(`${f}\0`);
    for await (const chunk of createReadStream(join(dir, f))) h.update(chunk as Buffer);
  }
  return h.digest('hex');
}
