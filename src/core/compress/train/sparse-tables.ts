// Embedding tables that train by the rows a batch touches, outside the WebAssembly heap: the
// values are one plain Float32Array per table (read once from the model), each step gathers the
// rows of its ids, sums the gradient of every distinct row, and updates only those rows with
// row-wise lazy Adam (TF's LazyAdam, TorchRec's row-wise optimizers): m and v exist only for rows
// touched so far, allocated on first touch, with the global step in the bias correction. A row
// no batch touched is never written, so it stays bit-identical to the input (except under
// quantization-aware training, where every row holds its stored form: setFakeQuant).
//
// The dense layers keep ordinary Adam (DenseParam below), on plain Float32Arrays too: they are
// small, and keeping them in JS lets one step upload them once and update them with no tf ops.
//
// Masks 'keep-zeros': a table's zero mask is taken row by row on first touch (the row's values
// before any update), so no table-sized mask is ever built.

import type { TableFakeQuant } from './fake-quant.js';
import { ADAM_KERNEL_WASM_BASE64 } from './adam-kernel-wasm.js';

export interface AdamSettings {
  lr: number;
  beta1: number;
  beta2: number;
  /** TF.js' default epsilon (backend epsilon, 1e-7 on float32 backends) */
  epsilon: number;
}

export const DEFAULT_ADAM: Omit<AdamSettings, 'lr'> = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 };

const PAGE_SHIFT = 12;
const PAGE_ROWS = 1 << PAGE_SHIFT;

// The lazy Adam update runs in WebAssembly SIMD (adam-kernel.wat: bit-identical to adamRows
// below) where the engine has it: each table gets an instance of the kernel whose memory holds the
// table's optimizer state (m and v of a slot side by side, slot-major) and, past it, the step's
// scratch (slots, gradient rows, updates). The table's values stay in their Float32Array: the
// kernel returns the updates in float64 and JS subtracts them, as adamRows does.

let adamModule: WebAssembly.Module | null | undefined;

function adamKernelModule(): WebAssembly.Module | null {
  if (adamModule === undefined) {
    try {
      adamModule = new WebAssembly.Module(Buffer.from(ADAM_KERNEL_WASM_BASE64, 'base64'));
    } catch {
      adamModule = null; // no WebAssembly SIMD: the JS loop serves
    }
  }
  return adamModule;
}

type AdamFn = (n: number, d: number, slots: number, g: number, slab: number, upd: number, lrc: number, ic2: number, b1: number, b2: number, eps: number) => void;

/** a table's kernel instance: the state of `cap` slots at 0, 8 * dim bytes each */
interface AdamKernel {
  memory: WebAssembly.Memory;
  adam: AdamFn;
  cap: number;
}

/** the most bytes a kernel memory may reach (wasm32: 4 GiB; keep room below it) */
const KERNEL_MAX_BYTES = 3.5 * 2 ** 30;

function align16(x: number): number {
  return (x + 15) & ~15;
}

function newAdamKernel(rows: number, dim: number): AdamKernel | undefined {
  // tables whose full state would not fit a 32-bit memory train on the JS pages from the start
  if (rows * dim * 8 + (1 << 24) > KERNEL_MAX_BYTES) return undefined;
  const mod = adamKernelModule();
  if (!mod) return undefined;
  const ex = new WebAssembly.Instance(mod, {}).exports as unknown as { memory: WebAssembly.Memory; adam: AdamFn };
  return { memory: ex.memory, adam: ex.adam, cap: 0 };
}

/** grows a kernel's memory to `bytes` at least; false where it cannot */
function ensureBytes(k: AdamKernel, bytes: number): boolean {
  const have = k.memory.buffer.byteLength;
  if (bytes <= have) return true;
  if (bytes > KERNEL_MAX_BYTES) return false;
  // grow by 1/4 at least, so that steps of a growing state do not grow it each time
  const want = Math.min(KERNEL_MAX_BYTES, Math.max(bytes, have + (have >> 2)));
  try {
    k.memory.grow(Math.ceil((want - have) / 65536));
    return true;
  } catch {
    return false;
  }
}

/** One embedding table trained row-wise; `values` is the table, [rows, dim] row-major. */
export class SparseTable {
  readonly rows: number;
  /** row -> optimizer slot, -1 for rows never touched */
  private readonly slotOf: Int32Array;
  /** Adam state in pages of PAGE_ROWS rows: growing never copies, and nothing is reserved ahead */
  private readonly mPages: Float32Array[] = [];
  private readonly vPages: Float32Array[] = [];
  private slots = 0;
  /** slot -> the columns that were exactly zero at first touch (keep-zeros), when any */
  private readonly zeroCols = new Map<number, Int32Array>();
  // per-step distinct rows: mark[row] === stamp when seen this step, at local index localOf[row]
  private readonly mark: Int32Array;
  private readonly localOf: Int32Array;
  private stamp = 0;
  private uniq = new Int32Array(0);
  private gsum = new Float32Array(0);
  private nUniq = 0;
  /** elements that moved (for reports): sum over steps of distinct rows */
  rowUpdates = 0;

  constructor(
    readonly name: string,
    readonly values: Float32Array,
    readonly dim: number,
    /** masks 'keep-zeros': exact zeros of a row (at its first touch) stay zero */
    public keepZeros: boolean,
  ) {
    if (dim <= 0 || values.length % dim !== 0) throw new Error(`table ${name}: ${values.length} values are not rows of ${dim}`);
    this.rows = values.length / dim;
    this.slotOf = new Int32Array(this.rows).fill(-1);
    this.mark = new Int32Array(this.rows);
    this.localOf = new Int32Array(this.rows);
    this.kernel = newAdamKernel(this.rows, dim);
  }

  /** the WebAssembly instance holding the Adam state; undefined: the state is in mPages / vPages */
  private kernel: AdamKernel | undefined;

  /** Moves the kernel's state into JS pages (the kernel's memory cannot grow further). */
  private leaveKernel(): void {
    const k = this.kernel!;
    const d = this.dim;
    const st = new Float32Array(k.memory.buffer, 0, this.slots * 2 * d);
    for (let s = 0; s < this.slots; s++) {
      if (s >> PAGE_SHIFT >= this.mPages.length) {
        this.mPages.push(new Float32Array(PAGE_ROWS * d));
        this.vPages.push(new Float32Array(PAGE_ROWS * d));
      }
      const o = (s & (PAGE_ROWS - 1)) * d;
      this.mPages[s >> PAGE_SHIFT].set(st.subarray(s * 2 * d, s * 2 * d + d), o);
      this.vPages[s >> PAGE_SHIFT].set(st.subarray(s * 2 * d + d, s * 2 * d + 2 * d), o);
    }
    this.kernel = undefined;
  }

  /** gradual pruning: 0 where the whole table must stay zero (dense, set by setPruneMask) */
  private pruneMask?: Uint8Array;

  /** Gradual pruning's mask for the whole table: zeroes the masked values now, and after every update of a row. */
  setPruneMask(mask: Uint8Array | undefined): void {
    if (mask && mask.length !== this.values.length) throw new Error(`table ${this.name}: mask of ${mask.length} for ${this.values.length} values`);
    this.pruneMask = mask;
    if (!mask) return;
    for (const w of [this.values, this.master]) if (w) for (let j = 0; j < w.length; j++) if (mask[j] === 0) w[j] = 0;
  }

  /** quantization-aware training (fake-quant.ts): the optimizer's float rows; `values` holds them as stored */
  private master?: Float32Array;
  private fake?: TableFakeQuant;

  /**
   * Quantization-aware training on (a fake quantizer) or off (undefined): on, the optimizer
   * updates a float copy of the table and every row it touches is written back into `values` as
   * the quantizer would store it, so the forward reads stored rows and the gradient passes
   * straight through the rounding. Off keeps `values` as they are (quantized, when it was on).
   */
  setFakeQuant(fq: TableFakeQuant | undefined): void {
    if (fq) {
      if (fq.rows !== this.rows || fq.cols !== this.dim) throw new Error(`table ${this.name}: a fake quantizer for [${fq.rows}, ${fq.cols}] on [${this.rows}, ${this.dim}]`);
      this.master ??= this.values.slice();
      fq.all(this.master, this.values);
    } else this.master = undefined;
    this.fake = fq;
  }

  /** Per-column fake quantization: refits the columns' ranges to the float rows and rewrites every row (once per epoch). */
  refitFakeQuant(): void {
    if (this.fake?.perColumn && this.master) this.fake.all(this.master, this.values);
  }

  /** the layout rows are trained through, when quantization-aware */
  get fakeQuantLayout(): string | undefined {
    return this.fake?.layout;
  }

  /** rows that have been updated at least once */
  get touchedRows(): number {
    return this.slots;
  }

  /** ONNX Gather semantics: negative ids count from the end; anything else out of range is an error. */
  row(id: number): number {
    const r = id < 0 ? id + this.rows : id;
    if (!(r >= 0 && r < this.rows)) throw new Error(`id ${id} is out of range for table ${this.name} (${this.rows} rows)`);
    return r;
  }

  /** out[i] = table[ids[i]] (out: ids.length x dim) */
  gather(ids: Int32Array, out: Float32Array): void {
    const d = this.dim;
    const t = this.values;
    for (let i = 0; i < ids.length; i++) {
      const r = this.row(ids[i]) * d;
      const o = i * d;
      for (let j = 0; j < d; j++) out[o + j] = t[r + j];
    }
  }

  /** out[i * stride + offset ..] = table[ids[i]] (rows into a concatenated layout) */
  gatherStrided(ids: Int32Array, out: Float32Array, stride: number, offset: number): void {
    const d = this.dim;
    const t = this.values;
    for (let i = 0; i < ids.length; i++) {
      const r = this.row(ids[i]) * d;
      const o = i * stride + offset;
      for (let j = 0; j < d; j++) out[o + j] = t[r + j];
    }
  }

  /** accumulate() of the columns [offset, offset + dim) of a [ids.length, stride] gradient */
  accumulateStrided(ids: Int32Array, grad: Float32Array, stride: number, offset: number): void {
    this.accumulateFrom(ids, grad, stride, offset);
  }

  /** Starts a step's gradient: sums of grad rows per distinct id. */
  beginStep(): void {
    this.stamp++;
    if (this.stamp === 0x7fffffff) {
      this.mark.fill(0);
      this.stamp = 1;
    }
    this.nUniq = 0;
  }

  /** adds grad (ids.length x dim) into the step's per-row sums */
  accumulate(ids: Int32Array, grad: Float32Array): void {
    this.accumulateFrom(ids, grad, this.dim, 0);
  }

  private accumulateFrom(ids: Int32Array, grad: Float32Array, stride: number, offset: number): void {
    const d = this.dim;
    if (this.uniq.length < this.nUniq + ids.length) {
      const cap = Math.max(this.nUniq + ids.length, this.uniq.length * 2);
      const u = new Int32Array(cap);
      u.set(this.uniq.subarray(0, this.nUniq));
      this.uniq = u;
      const g = new Float32Array(cap * d);
      g.set(this.gsum.subarray(0, this.nUniq * d));
      this.gsum = g;
    }
    const mark = this.mark;
    const localOf = this.localOf;
    const gs = this.gsum;
    for (let i = 0; i < ids.length; i++) {
      const r = this.row(ids[i]);
      let k: number;
      if (mark[r] !== this.stamp) {
        mark[r] = this.stamp;
        k = this.nUniq++;
        localOf[r] = k;
        this.uniq[k] = r;
        gs.fill(0, k * d, k * d + d);
      } else k = localOf[r];
      const o = k * d;
      const s = i * stride + offset;
      for (let j = 0; j < d; j++) gs[o + j] += grad[s + j];
    }
  }

  /** The step's summed gradient rows (for tests): row id -> gradient. */
  stepGradient(): Map<number, Float32Array> {
    const out = new Map<number, Float32Array>();
    for (let k = 0; k < this.nUniq; k++) out.set(this.uniq[k], this.gsum.slice(k * this.dim, (k + 1) * this.dim));
    return out;
  }

  private slot(r: number): number {
    let s = this.slotOf[r];
    if (s >= 0) return s;
    s = this.slots++;
    const d = this.dim;
    const k = this.kernel;
    if (k && s >= k.cap) {
      // the slab grows over what was scratch: zero the new slots' state
      const cap = Math.max(s + 1, Math.ceil(k.cap * 1.5), 256);
      if (ensureBytes(k, cap * 8 * d)) {
        new Float32Array(k.memory.buffer, k.cap * 8 * d, (cap - k.cap) * 2 * d).fill(0);
        k.cap = cap;
      } else this.leaveKernel();
    }
    if (!this.kernel && s >> PAGE_SHIFT >= this.mPages.length) {
      this.mPages.push(new Float32Array(PAGE_ROWS * d));
      this.vPages.push(new Float32Array(PAGE_ROWS * d));
    }
    this.slotOf[r] = s;
    if (this.keepZeros) {
      const base = r * d;
      const w = this.master ?? this.values;
      let zeros = 0;
      for (let j = 0; j < d; j++) if (w[base + j] === 0) zeros++;
      if (zeros > 0) {
        const cols = new Int32Array(zeros);
        let z = 0;
        for (let j = 0; j < d; j++) if (w[base + j] === 0) cols[z++] = j;
        this.zeroCols.set(s, cols);
      }
    }
    return s;
  }

  /** Row-wise lazy Adam on the rows of this step; `step` is the 1-based global step. */
  applyAdam(a: AdamSettings, step: number): void {
    const n = this.nUniq;
    if (this.slotScratch.length < n) this.slotScratch = new Int32Array(Math.max(n, this.slotScratch.length * 2));
    const slots = this.slotScratch;
    const slotOf = this.slotOf;
    const uniq = this.uniq;
    for (let k = 0; k < n; k++) {
      const sk = slotOf[uniq[k]];
      slots[k] = sk >= 0 ? sk : this.slot(uniq[k]);
    }
    const lrc = a.lr / (1 - a.beta1 ** step);
    const ic2 = 1 / (1 - a.beta2 ** step);
    // quantization-aware: the float copy learns, and the touched rows are stored again after
    const w = this.master ?? this.values;
    if (!this.kernel || !this.kernelAdam(w, n, slots, lrc, ic2, a)) {
      adamRows(w, this.mPages, this.vPages, this.gsum, uniq, slots, n, this.dim, lrc, ic2, a.beta1, a.beta2, a.epsilon);
    }
    if (this.keepZeros && this.zeroCols.size > 0) {
      const d = this.dim;
      for (let k = 0; k < n; k++) {
        const zc = this.zeroCols.get(slots[k]);
        if (!zc) continue;
        const wo = this.uniq[k] * d;
        for (let z = 0; z < zc.length; z++) w[wo + zc[z]] = 0;
      }
    }
    const pm = this.pruneMask;
    if (pm) {
      const d = this.dim;
      for (let k = 0; k < n; k++) {
        const wo = uniq[k] * d;
        for (let j = 0; j < d; j++) if (pm[wo + j] === 0) w[wo + j] = 0;
      }
    }
    if (this.fake) for (let k = 0; k < n; k++) this.fake.row(w, this.values, uniq[k]);
    this.rowUpdates += n;
  }
  private slotScratch = new Int32Array(0);

  /** adamRows by the kernel; false (nothing done) where its memory cannot hold the step's scratch */
  private kernelAdam(w: Float32Array, n: number, slots: Int32Array, lrc: number, ic2: number, a: AdamSettings): boolean {
    const k = this.kernel!;
    const d = this.dim;
    const sOff = align16(k.cap * 8 * d);
    const gOff = align16(sOff + n * 4);
    const uOff = align16(gOff + n * d * 4);
    if (!ensureBytes(k, uOff + n * d * 8)) {
      this.leaveKernel();
      return false;
    }
    const buf = k.memory.buffer;
    new Int32Array(buf, sOff, n).set(slots.subarray(0, n));
    new Float32Array(buf, gOff, n * d).set(this.gsum.subarray(0, n * d));
    k.adam(n, d, sOff, gOff, 0, uOff, lrc, ic2, a.beta1, a.beta2, a.epsilon);
    subtractRows(w, new Float64Array(buf, uOff, n * d), this.uniq, n, d);
    return true;
  }
}

/** w[rows[k] * d + j] -= upd[k * d + j] (the kernel's updates, in float64 as in adamRows) */
function subtractRows(w: Float32Array, upd: Float64Array, rows: Int32Array, n: number, d: number): void {
  for (let k = 0; k < n; k++) {
    const wo = rows[k] * d;
    const uo = k * d;
    for (let j = 0; j < d; j++) w[wo + j] -= upd[uo + j];
  }
}

/**
 * Adam on rows: row rows[k] of w (state row slots[k] of m, v) with gradient row k of g. A plain
 * function over typed arrays, so that V8 keeps it monomorphic and tight.
 */
function adamRows(
  w: Float32Array, mPages: Float32Array[], vPages: Float32Array[], g: Float32Array, rows: Int32Array, slots: Int32Array,
  n: number, d: number, lrc: number, ic2: number, b1: number, b2: number, eps: number,
): void {
  const nb1 = 1 - b1;
  const nb2 = 1 - b2;
  for (let k = 0; k < n; k++) {
    const wo = rows[k] * d;
    const m = mPages[slots[k] >> PAGE_SHIFT];
    const v = vPages[slots[k] >> PAGE_SHIFT];
    const mo = (slots[k] & (PAGE_ROWS - 1)) * d;
    const go = k * d;
    for (let j = 0; j < d; j++) {
      const gj = g[go + j];
      const mj = b1 * m[mo + j] + nb1 * gj;
      const vj = b2 * v[mo + j] + nb2 * gj * gj;
      m[mo + j] = mj;
      v[mo + j] = vj;
      w[wo + j] -= (lrc * mj) / (Math.sqrt(vj * ic2) + eps);
    }
  }
}

/** A dense parameter (kernel, bias) with ordinary Adam; `mask` 0 where the value must stay 0. */
export class DenseParam {
  readonly m: Float32Array;
  readonly v: Float32Array;
  readonly grad: Float32Array;
  constructor(
    readonly name: string,
    readonly values: Float32Array,
    readonly shape: number[],
    /** 0 where the value must stay 0 (keep-zeros, times gradual pruning's mask) */
    public mask?: Uint8Array,
  ) {
    this.m = new Float32Array(values.length);
    this.v = new Float32Array(values.length);
    this.grad = new Float32Array(values.length);
  }

  /** the keep-zeros part of `mask` (gradual pruning multiplies its masks by it) */
  keep?: Uint8Array;

  /** Gradual pruning's mask (times the keep-zeros mask); zeroes the masked values now. */
  setPruneMask(prune: Uint8Array | undefined): void {
    if (!prune) {
      this.mask = this.keep;
      return;
    }
    const m = Uint8Array.from(prune);
    if (this.keep) for (let j = 0; j < m.length; j++) m[j] &= this.keep[j];
    this.mask = m;
    for (let j = 0; j < m.length; j++) if (m[j] === 0) this.values[j] = 0;
  }

  private scratchValues?: Float32Array;
  /** a reusable array of n floats (the transposed upload of a kernel) */
  scratch(n: number): Float32Array {
    if (!this.scratchValues || this.scratchValues.length !== n) this.scratchValues = new Float32Array(n);
    return this.scratchValues;
  }

  applyAdam(a: AdamSettings, step: number): void {
    const c1 = 1 - a.beta1 ** step;
    const c2 = 1 - a.beta2 ** step;
    const { m, v, grad: g, values: w } = this;
    const b1 = a.beta1;
    const b2 = a.beta2;
    for (let j = 0; j < w.length; j++) {
      const gj = g[j];
      const mj = b1 * m[j] + (1 - b1) * gj;
      const vj = b2 * v[j] + (1 - b2) * gj * gj;
      m[j] = mj;
      v[j] = vj;
      w[j] -= (a.lr * (mj / c1)) / (Math.sqrt(vj / c2) + a.epsilon);
    }
    const mask = this.mask;
    if (mask) for (let j = 0; j < w.length; j++) if (mask[j] === 0) w[j] = 0;
  }
}

/** 0 where `values` is exactly zero, 1 elsewhere; undefined when nothing is zero. */
export function zeroMask(values: Float32Array): Uint8Array | undefined {
  let zeros = 0;
  for (let j = 0; j < values.length; j++) if (values[j] === 0) zeros++;
  if (zeros === 0) return undefined;
  const m = new Uint8Array(values.length);
  for (let j = 0; j < values.length; j++) m[j] = values[j] === 0 ? 0 : 1;
  return m;
}
