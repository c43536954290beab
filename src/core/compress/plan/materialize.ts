// Turns recipes into model files for the search, sharing work between recipes: every prefix of
// steps is written once (a folder of its own inside the search's work folder) and reused by every
// recipe that starts with it, so that 200 candidates over 5 tables factorize each table once per
// energy, not once per candidate. A step that changes nothing is dropped from the recipe, and a
// step whose model is byte for byte one built before (factorize at energy 0.5 and 0.6 keep the
// same rank of a narrow table) resolves to that model and its recipe: one candidate, evaluated
// once, listed once on the front.
//
// The folder is held to a disk budget: past it, the models used longest ago are deleted (never
// one being read, never one a training step made, since training is not replayed) and written
// again from their recipe if they are needed again (recipes replay byte for byte). Unbounded, a
// 3-minute search of a 134 MB model wrote 6 GB.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
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

/** What the materializer knows of a model it wrote. */
interface Written {
  bytes: number;
  lastUse: number;
  /** made by a training step: kept (training is not replayed) */
  pinned: boolean;
  /** readers now */
  inUse: number;
  evicted: boolean;
  digest?: Promise<string>;
}

/** Steps whose output is not replayed byte for byte (seeded, but trained): their models are never deleted. */
const TRAINING_METHODS = new Set(['finetune', 'distill']);

/**
 * The work folder's default budget: 8x the original or 2 GiB, whichever is more, but at most
 * half the space free on its disk when the search starts.
 */
export async function defaultDiskBudget(workDir: string, originalBytes: number): Promise<number> {
  const want = Math.max(8 * originalBytes, 2 * 2 ** 30);
  try {
    const fs = await statfs(workDir);
    return Math.min(want, (fs.bavail * fs.bsize) / 2);
  } catch {
    return want;
  }
}

export class Materializer {
  private readonly nodes = new Map<string, Promise<Materialized>>();
  private readonly written = new Map<Materialized, Written>();
  private next = 0;
  private clock = 0;
  /** models deleted to stay within the disk budget, and written again */
  readonly evictions = { deleted: 0, rewritten: 0 };

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
    /** bytes the written models may take together (see defaultDiskBudget); default unbounded */
    public diskBudget = Infinity,
  ) {}

  /** The model after `steps` (each prefix written once; its files may have been deleted since: see use). */
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
    await this.present(m);
    const known = this.irs.get(m.path);
    if (known) return known;
    const ir = await readModel(m.path, { signal: this.ctx.signal });
    if (ir.files.reduce((n, f) => n + f.bytes, 0) <= KEEP_IR_BYTES) this.irs.set(m.path, ir);
    return ir;
  }

  private readonly rootSensitivity: SensitivityMemo = {};

  /**
   * Runs `fn` on the model's path, its files written again first if they were deleted, and kept
   * until `fn` is done.
   */
  async use<T>(m: Materialized, fn: (path: string) => Promise<T>): Promise<T> {
    const w = this.written.get(m);
    if (!w) return fn(m.path);
    w.inUse++;
    try {
      await this.present(m);
      return await fn(m.path);
    } finally {
      w.inUse--;
    }
  }

  /** Writes the model again if its files were deleted, and keeps it from now on (the chosen model). */
  async keep(m: Materialized): Promise<void> {
    const w = this.written.get(m);
    if (!w) return;
    w.pinned = true;
    await this.present(m);
  }

  /** The model's files on disk (written again from its recipe if they were deleted). */
  private async present(m: Materialized): Promise<void> {
    const w = this.written.get(m);
    if (!w) return;
    w.lastUse = ++this.clock;
    if (!w.evicted) return;
    const parent = await this.build(m.steps.slice(0, -1));
    const step = m.steps[m.steps.length - 1];
    await this.writeStep(parent, step, m.path, m.sensitivity);
    w.evicted = false;
    w.lastUse = ++this.clock;
    this.evictions.rewritten++;
    await this.evictPast(m);
  }

  /**
   * Runs `step` on `parent` and writes its output at `path`, the parent's files kept while the
   * step reads them (the output streams from them as it is written); false, and nothing written,
   * when the step changed nothing (a fine-tuning always counts as a change).
   */
  private async writeStep(parent: Materialized, step: PlanStep, path: string, sensitivity: SensitivityMemo): Promise<boolean> {
    return this.use(parent, async () => {
      const outcome = await runMethodStep(await this.irOf(parent), step, { signal: this.ctx.signal, sensitivity });
      if (outcome.changes.length === 0 && step.method !== 'finetune') return false;
      await mkdir(dirname(path), { recursive: true });
      await outcome.write(path);
      return true;
    });
  }

  /** Bytes of the model's files on disk (the original's for no steps), as measured when they were written. */
  bytes(m: Materialized): number {
    return this.written.get(m)?.bytes ?? this.original.files.reduce((n, f) => n + f.bytes, 0);
  }

  /** Deletes the models used longest ago until the rest fit the disk budget (never `keep`). */
  private async evictPast(keep: Materialized): Promise<void> {
    let total = 0;
    for (const w of this.written.values()) if (!w.evicted) total += w.bytes;
    while (total > this.diskBudget) {
      let victim: [Materialized, Written] | undefined;
      for (const [m, w] of this.written) {
        if (m === keep || w.evicted || w.pinned || w.inUse > 0) continue;
        if (!victim || w.lastUse < victim[1].lastUse) victim = [m, w];
      }
      if (!victim) return;
      const [m, w] = victim;
      await rm(m.dir, { recursive: true, force: true });
      this.irs.delete(m.path);
      w.evicted = true;
      total -= w.bytes;
      this.evictions.deleted++;
    }
  }

  /** the models written, by their files' total size */
  private readonly bySize = new Map<number, Materialized[]>();

  /**
   * An earlier model whose files equal those in `dir`, byte for byte (digests are taken only
   * when the total sizes match); else `m` is recorded and undefined returned.
   */
  private async sameAsBuilt(m: Materialized, pinned: boolean): Promise<Materialized | undefined> {
    let size = 0;
    for (const f of await readdir(m.dir)) size += (await stat(join(m.dir, f))).size;
    const mine: Written = { bytes: size, lastUse: ++this.clock, pinned, inUse: 0, evicted: false };
    const peers = this.bySize.get(size) ?? [];
    for (const p of peers) {
      const pw = this.written.get(p)!;
      // a deleted model is compared only if its digest was taken while it was there
      if (pw.evicted && !pw.digest) continue;
      pw.digest ??= folderDigest(p.dir);
      mine.digest ??= folderDigest(m.dir);
      if ((await pw.digest) === (await mine.digest)) return p;
    }
    peers.push(m);
    this.bySize.set(size, peers);
    this.written.set(m, mine);
    return undefined;
  }

  private async buildUncached(steps: readonly PlanStep[]): Promise<Materialized> {
    if (steps.length === 0) return { path: this.original.path, dir: '', steps: [], sensitivity: this.rootSensitivity };
    const parent = await this.build(steps.slice(0, -1));
    const step = steps[steps.length - 1];
    // the prefix resolved to a model built by other steps: continue from those
    if (JSON.stringify(parent.steps) !== JSON.stringify(steps.slice(0, -1))) return this.build([...parent.steps, step]);
    this.ctx.signal?.throwIfAborted();
    // quantize steps share what was measured before them; any other method starts afresh (as a job does)
    const sensitivity = step.method === 'quantize' ? parent.sensitivity : {};
    const dir = join(this.workDir, `m${++this.next}`);
    const path = join(dir, this.fileName);
    if (!(await this.writeStep(parent, step, path, sensitivity))) return parent;
    const built: Materialized = { path, dir, steps: [...parent.steps, step], sensitivity };
    const same = await this.sameAsBuilt(built, TRAINING_METHODS.has(step.method));
    if (same) {
      await rm(dir, { recursive: true, force: true });
      await this.present(same);
      return same;
    }
    await this.evictPast(built);
    return built;
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
