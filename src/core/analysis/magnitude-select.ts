// Exact order statistics of |w| without sorting. For non-negative IEEE floats the order of the
// values equals the order of their bit patterns read as unsigned integers, so the k-th smallest
// |w| can be found with two counting passes: one histogram of the high 16 bits of |w| picks the
// bucket holding rank k, a second histogram of the low 16 bits inside that bucket picks the
// exact value. O(n), no sort (a sort of 64M floats takes ~10 s here; this ~0.2 s).
//
// NaN policy: NaNs are ignored (they are neither counted in n nor ever selected). -0 is |w| = 0.

import { PRIVATE_KERNEL_BYTES, privateKernel } from './private-kernel.js';

const HIGH_BINS = 1 << 15; // high 16 bits of |w| (sign cleared): 0 .. 0x7fff
const ABS_MASK = 0x7fffffff;
const INF_BITS = 0x7f800000;

// The counting passes of big arrays run in WebAssembly (kernels/stats-kernel.wat hist16 / low16):
// no JIT warm-up to pay in a one-shot CLI run (each JS loop ran 2-5x slower on its first call:
// the quantiles of 2M row norms took ~60 ms of CPU, now ~10), and 4 interleaved histograms
// instead of a chain of float64 increments. Values are copied in blocks into the private instance
// of the module (private-kernel.ts, its own memory: an analysis pass keeps its chunks in the statistics kernel's
// memory across awaits, this must not touch them). A whole array given at once (the functions
// below the class) is selected in one synchronous run that keeps every count in that memory;
// the class, whose passes may interleave with other selectors', folds them into its own.
/** arrays from this many values use the WebAssembly passes */
const WASM_MIN_VALUES = 1 << 16;
/**
 * values copied in per call: small, so that the first calls, run by the baseline compiler while
 * the optimized code is compiled in the background, are short (2-3x faster than 1M blocks)
 */
const WASM_BLOCK = 1 << 16;
/** pass 2 in WebAssembly serves at most this many distinct buckets (low histograms) */
const WASM_MAX_SLOTS = 16;
const W_HIST = 0; // 4 x HIGH_BINS int32
const W_SLOT = 4 * HIGH_BINS * 4; // HIGH_BINS int32: byte offset into the low histograms, or -1
const W_LOW = W_SLOT + HIGH_BINS * 4; // WASM_MAX_SLOTS x 65536 int32
const W_DATA = W_LOW + WASM_MAX_SLOTS * 65536 * 4; // WASM_BLOCK float32
const W_OUT = W_DATA + WASM_BLOCK * 4; // one int32 result of locate
const W_END = W_OUT + 16;

interface SelectWasm {
  hist16: (p: number, n: number, hist: number) => number;
  low16: (p: number, n: number, slot: number, low: number) => void;
  sum4: (hist: number) => void;
  locate: (h: number, nb: number, k: number, out: number) => number;
  out: Int32Array;
  hist: Int32Array;
  slot: Int32Array;
  low: Int32Array;
  data: Float32Array;
}

let selectWasm: SelectWasm | null | undefined;

function selectKernel(): SelectWasm | null {
  if (selectWasm === undefined) {
    const k = W_END <= PRIVATE_KERNEL_BYTES ? privateKernel() : null;
    selectWasm = k && {
      hist16: k.hist16,
      low16: k.low16,
      sum4: k.sum4,
      locate: k.locate,
      out: new Int32Array(k.buffer, W_OUT, 1),
      hist: new Int32Array(k.buffer, W_HIST, 4 * HIGH_BINS),
      slot: new Int32Array(k.buffer, W_SLOT, HIGH_BINS),
      low: new Int32Array(k.buffer, W_LOW, WASM_MAX_SLOTS * 65536),
      data: new Float32Array(k.buffer, W_DATA, WASM_BLOCK),
    };
  }
  return selectWasm;
}

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

function floatFromBits(bits: number): number {
  scratchU[0] = bits;
  return scratchF[0];
}

function bitsView(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

/**
 * Finds the k-th smallest |w| (1-based ranks) of a stream that can be read twice.
 * Feed every chunk to `addPass1`, call `beginPass2`, feed every chunk again to `addPass2`,
 * then `results()`. Several ranks share the two passes (quantiles).
 */
export class MagnitudeSelector {
  private readonly high = new Float64Array(HIGH_BINS);
  private count = 0;
  private ranks: number[] = [];
  private targetBin: number[] = [];
  private rankInBin: number[] = [];
  /** high bin -> slot in `low` (or -1) */
  private slotOf: Int32Array | undefined;
  private low: Float64Array[] = [];
  private pass = 1;

  addPass1(values: Float32Array): void {
    if (this.pass !== 1) throw new Error('MagnitudeSelector: addPass1 after beginPass2');
    const k = values.length >= WASM_MIN_VALUES ? selectKernel() : null;
    if (k) {
      const high = this.high;
      const h = k.hist;
      let nan = 0;
      for (let off = 0; off < values.length; ) {
        // int32 bins: folded into the float64 ones every 2^30 values at most
        h.fill(0);
        const stop = Math.min(values.length, off + 2 ** 30);
        for (; off < stop; off += WASM_BLOCK) {
          const n = Math.min(WASM_BLOCK, stop - off);
          k.data.set(values.subarray(off, off + n));
          nan += k.hist16(W_DATA, n, W_HIST);
        }
        for (let b = 0; b < HIGH_BINS; b++) high[b] += h[b] + h[b + HIGH_BINS] + h[b + 2 * HIGH_BINS] + h[b + 3 * HIGH_BINS];
      }
      this.count += values.length - nan;
      return;
    }
    const u = bitsView(values);
    const high = this.high;
    let nan = 0;
    for (let i = 0; i < u.length; i++) {
      const a = u[i] & ABS_MASK;
      if (a > INF_BITS) {
        nan++;
        continue;
      }
      high[a >>> 16]++;
    }
    this.count += u.length - nan;
  }

  /** number of non-NaN values seen in pass 1 */
  get size(): number {
    return this.count;
  }

  /** `ranks`: 1-based ranks among the non-NaN values, each in 1..size. */
  beginPass2(ranks: number[]): void {
    if (this.pass !== 1) throw new Error('MagnitudeSelector: beginPass2 called twice');
    this.pass = 2;
    const slotOf = new Int32Array(HIGH_BINS).fill(-1);
    this.ranks = ranks.slice();
    for (const k of ranks) {
      if (!Number.isInteger(k) || k < 1 || k > this.count) throw new RangeError(`rank ${k} outside 1..${this.count}`);
      // cumulative counts up to the bin containing rank k
      let before = 0;
      let b = 0;
      for (; b < HIGH_BINS; b++) {
        const c = this.high[b];
        if (before + c >= k) break;
        before += c;
      }
      this.targetBin.push(b);
      this.rankInBin.push(k - before);
      if (slotOf[b] < 0) {
        slotOf[b] = this.low.length;
        this.low.push(new Float64Array(1 << 16));
      }
    }
    this.slotOf = slotOf;
  }

  addPass2(values: Float32Array): void {
    if (this.pass !== 2 || !this.slotOf) throw new Error('MagnitudeSelector: addPass2 before beginPass2');
    const slotOf = this.slotOf;
    const low = this.low;
    const k = values.length >= WASM_MIN_VALUES && low.length <= WASM_MAX_SLOTS ? selectKernel() : null;
    if (k) {
      k.slot.fill(-1);
      for (let b = 0; b < HIGH_BINS; b++) if (slotOf[b] >= 0) k.slot[b] = slotOf[b] * 65536 * 4;
      const kl = k.low;
      for (let off = 0; off < values.length; ) {
        kl.fill(0, 0, low.length * 65536);
        const stop = Math.min(values.length, off + 2 ** 30);
        for (; off < stop; off += WASM_BLOCK) {
          const n = Math.min(WASM_BLOCK, stop - off);
          k.data.set(values.subarray(off, off + n));
          k.low16(W_DATA, n, W_SLOT, W_LOW);
        }
        for (let s = 0; s < low.length; s++) {
          const l = low[s];
          const base = s * 65536;
          for (let j = 0; j < 65536; j++) l[j] += kl[base + j];
        }
      }
      return;
    }
    const u = bitsView(values);
    if (low.length === 1) {
      // the common case (one threshold): one bucket, no slot lookup in the loop
      const target = this.targetBin[0];
      const l = low[0];
      for (let i = 0; i < u.length; i++) {
        const a = u[i] & ABS_MASK;
        if (a >>> 16 === target && a <= INF_BITS) l[a & 0xffff]++;
      }
      return;
    }
    for (let i = 0; i < u.length; i++) {
      const a = u[i] & ABS_MASK;
      if (a > INF_BITS) continue;
      const s = slotOf[a >>> 16];
      if (s >= 0) low[s][a & 0xffff]++;
    }
  }

  /** the selected |w| for each rank given to beginPass2, in the same order */
  results(): number[] {
    if (this.pass !== 2 || !this.slotOf) throw new Error('MagnitudeSelector: results before pass 2');
    return this.ranks.map((_, i) => {
      const b = this.targetBin[i];
      const l = this.low[this.slotOf![b]];
      let left = this.rankInBin[i];
      for (let j = 0; j < 1 << 16; j++) {
        left -= l[j];
        if (left <= 0) return floatFromBits((b << 16) | j);
      }
      throw new Error('MagnitudeSelector: the second pass saw fewer values than the first (source changed between passes)');
    });
  }
}

/**
 * Selection over a whole array in WebAssembly (one synchronous run, counts kept in the kernel's
 * memory): pass 1, then `ranksFor(n)` (n = the non-NaN values) gives the 1-based ranks to
 * select, then pass 2 (once per 16 distinct buckets). Undefined where the kernel cannot serve
 * (small arrays, no WebAssembly SIMD, 2^31 values or more).
 */
function selectWhole(values: Float32Array, ranksFor: (n: number) => number[]): { n: number; selected: number[] } | undefined {
  const k = values.length >= WASM_MIN_VALUES && values.length < 2 ** 31 ? selectKernel() : null;
  if (!k) return undefined;
  k.hist.fill(0);
  let nan = 0;
  for (let off = 0; off < values.length; off += WASM_BLOCK) {
    const n = Math.min(WASM_BLOCK, values.length - off);
    k.data.set(values.subarray(off, off + n));
    nan += k.hist16(W_DATA, n, W_HIST);
  }
  k.sum4(W_HIST);
  const n = values.length - nan;
  const ranks = ranksFor(n);
  const bins = ranks.map((r) => {
    const b = k.locate(W_HIST, HIGH_BINS, r, W_OUT);
    if (b < 0) throw new Error('MagnitudeSelector: rank beyond the counted values');
    return { bin: b, rank: k.out[0] };
  });
  const selected = new Array<number>(ranks.length);
  let todo = ranks.map((_, i) => i);
  while (todo.length > 0) {
    // the ranks of at most WASM_MAX_SLOTS distinct buckets per sweep over the values
    const slotOf = new Map<number, number>();
    const now: number[] = [];
    const later: number[] = [];
    for (const i of todo) {
      const b = bins[i].bin;
      if (!slotOf.has(b) && slotOf.size < WASM_MAX_SLOTS) slotOf.set(b, slotOf.size);
      (slotOf.has(b) ? now : later).push(i);
    }
    k.slot.fill(-1);
    for (const [b, sl] of slotOf) k.slot[b] = sl * 65536 * 4;
    k.low.fill(0, 0, slotOf.size * 65536);
    for (let off = 0; off < values.length; off += WASM_BLOCK) {
      const m = Math.min(WASM_BLOCK, values.length - off);
      k.data.set(values.subarray(off, off + m));
      k.low16(W_DATA, m, W_SLOT, W_LOW);
    }
    for (const i of now) {
      const b = bins[i].bin;
      const j = k.locate(W_LOW + slotOf.get(b)! * 65536 * 4, 65536, bins[i].rank, W_OUT);
      if (j < 0) throw new Error('MagnitudeSelector: the second pass saw fewer values than the first');
      selected[i] = floatFromBits((b << 16) | j);
    }
    todo = later;
  }
  return { n, selected };
}

/** Number of weights a sparsity prunes: floor(sparsity * n). Throws on sparsity outside [0, 1]. */
export function prunedCount(n: number, sparsity: number): number {
  if (!(sparsity >= 0 && sparsity <= 1)) throw new RangeError(`sparsity ${sparsity} outside [0, 1]`);
  return Math.floor(sparsity * n);
}

/**
 * Magnitude threshold for a target sparsity: with n the number of non-NaN values and
 * k = floor(sparsity * n), returns the k-th smallest |w| (1-based). Zeroing every w with
 * |w| <= threshold prunes at least k weights (exactly k when the k-th value has no ties).
 * k = 0 returns -Infinity: nothing is pruned. O(n), two passes, never a sort.
 */
export function magnitudeThreshold(values: Float32Array, sparsity: number): number {
  if (!(sparsity >= 0 && sparsity <= 1)) throw new RangeError(`sparsity ${sparsity} outside [0, 1]`);
  const whole = selectWhole(values, (n) => {
    const k = prunedCount(n, sparsity);
    return k === 0 ? [] : [k];
  });
  if (whole) return whole.selected.length === 0 ? -Infinity : whole.selected[0];
  const sel = new MagnitudeSelector();
  sel.addPass1(values);
  const k = prunedCount(sel.size, sparsity);
  if (k === 0) return -Infinity;
  sel.beginPass2([k]);
  sel.addPass2(values);
  return sel.results()[0];
}

/**
 * The same threshold over a source too large for memory: `forEachChunk` must stream the same
 * values both times it is called (e.g. `cb => forEachTensorChunk(t, 1 << 20, cb)`).
 */
export async function magnitudeThresholdStreaming(
  forEachChunk: (cb: (chunk: Float32Array) => void) => Promise<void>,
  sparsity: number,
): Promise<number> {
  const sel = new MagnitudeSelector();
  await forEachChunk((c) => sel.addPass1(c));
  const k = prunedCount(sel.size, sparsity);
  if (k === 0) return -Infinity;
  sel.beginPass2([k]);
  await forEachChunk((c) => sel.addPass2(c));
  return sel.results()[0];
}

/**
 * Quantiles (0..1) of non-negative values (e.g. row norms) by exact selection: the value of
 * rank max(1, ceil(q * n)) ("nearest rank" definition; q = 0 gives the minimum, 1 the maximum).
 * Returns NaN for each quantile of an empty input.
 */
export function magnitudeQuantiles(values: Float32Array, qs: number[]): number[] {
  for (const q of qs) if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} outside [0, 1]`);
  const rank = (n: number, q: number) => Math.min(n, Math.max(1, Math.ceil(q * n)));
  const whole = selectWhole(values, (n) => (n === 0 ? [] : qs.map((q) => rank(n, q))));
  if (whole) return whole.n === 0 ? qs.map(() => NaN) : whole.selected;
  const sel = new MagnitudeSelector();
  sel.addPass1(values);
  const n = sel.size;
  if (n === 0) return qs.map(() => NaN);
  const ranks = qs.map((q) => {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} outside [0, 1]`);
    return Math.min(n, Math.max(1, Math.ceil(q * n)));
  });
  sel.beginPass2(ranks);
  sel.addPass2(values);
  return sel.results();
}
