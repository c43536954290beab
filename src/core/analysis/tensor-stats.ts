// One fused pass of per-tensor statistics over float32 chunks. A tensor is seen as a matrix
// [rows, rowLength] (N-D flattened to [shape[0], rest]); chunks must hold whole rows, so that
// per-row figures (row L2 norm, per-row int8 error) are finished inside the chunk while the row
// is still in L1 cache. Everything a report needs from the values is gathered in this single
// loop: zeros, near-zeros, min/max, shifted float64 sums (mean/std), mean |w|, the log-spaced
// magnitude histogram (read from the float's bits, no Math.log), float16 round-trip error
// (from the bits as well), row norms, per-row int8 error, heatmap tile sums and an optional
// row-sampled Gram matrix for the spectrum.

const ABS_MASK = 0x7fffffff;
const INF_BITS = 0x7f800000;
/** histogram bin = |w| bits >>> 21: 8 exponent bits + 2 mantissa bits = 4 bins per octave */
export const HIST_SHIFT = 21;
export const HIST_BINS = 1 << (31 - HIST_SHIFT); // 1024
const F16_MIN_NORMAL_BITS = 0x38800000; // 2^-14
const F16_OVERFLOW_BITS = 0x477ff000; // 65520: rounds to +Infinity in float16
const TWO_POW_24 = 16777216;

/** weight of one unit of the 13 mantissa bits float16 drops, per float32 exponent */
const F16_ULP_UNIT = (() => {
  const t = new Float64Array(256);
  for (let e = 0; e < 256; e++) t[e] = 2 ** (e - 127 - 23);
  return t;
})();

export const MAX_TILE_CELLS = 256;

export interface TileGeometry {
  rows: number;
  cols: number;
  cellRows: number;
  cellCols: number;
}

/** How [rows, cols] is cut into at most maxCells x maxCells cells of equal size (the last smaller). */
export function tileGeometry(rows: number, cols: number, maxCells = MAX_TILE_CELLS): TileGeometry {
  const cellRows = Math.max(1, Math.ceil(rows / maxCells));
  const cellCols = Math.max(1, Math.ceil(cols / maxCells));
  return { rows: Math.ceil(rows / cellRows), cols: Math.ceil(cols / cellCols), cellRows, cellCols };
}

export interface TensorStatsConfig {
  /** elements per row (product of shape[1..]; 1 for 1-D tensors and scalars) */
  rowLength: number;
  rows: number;
  /** |w| <= epsilon counts as near zero */
  epsilon: number;
  /** keep every row's L2 norm (embedding tables) */
  keepRowNorms?: boolean;
  /** symmetric int8 error per row, fused (embedding tables, [out, in] kernels) */
  int8PerRow?: boolean;
  /** heatmap tiles, at most this many cells per side (0 = none) */
  maxTileCells?: number;
  /** accumulate the Gram matrix (rowLength x rowLength) of every `gramEvery`-th row */
  gramEvery?: number;
  /** keep the max |w| of every column (dead output neurons / per-column int8 of [in, out] kernels) */
  columnAbsMax?: boolean;
}

export interface TensorStats {
  count: number;
  finite: number;
  nonFinite: number;
  zeros: number;
  nearZeros: number;
  min: number;
  max: number;
  mean: number;
  /** population standard deviation */
  std: number;
  absMean: number;
  /** sum of w^2 (float64) */
  sumSquares: number;
  absMax: number;
  /** HIST_BINS counts of finite non-zero |w| by bits >>> 21 */
  histogram: Float64Array;
  float16: { maxAbs: number; sumSq: number; overflow: number };
  int8PerRow?: { maxAbs: number; sumSq: number };
  rowNorms?: Float32Array;
  zeroRows: number;
  tiles?: { geometry: TileGeometry; sumAbs: Float64Array; zeros: Float64Array; counts: Float64Array };
  gram?: { matrix: Float64Array; rowsUsed: number };
  columnAbsMax?: Float32Array;
}

export class TensorStatsAccumulator {
  private readonly d: number;
  private readonly rows: number;
  private readonly epsBits: number;
  private readonly hist = new Float64Array(HIST_BINS);
  private count = 0;
  private nonFinite = 0;
  private zeros = 0;
  private nearZeros = 0;
  private min = Infinity;
  private max = -Infinity;
  private shift = NaN;
  private s1 = 0;
  private s2 = 0;
  private sAbs = 0;
  private sSq = 0;
  private f16Max = 0;
  private f16Sq = 0;
  private f16Overflow = 0;
  private i8Max = 0;
  private i8Sq = 0;
  private zeroRows = 0;
  private readonly int8PerRow: boolean;
  private readonly rowNorms?: Float32Array;
  private readonly tileGeo?: TileGeometry;
  private readonly tileSum?: Float64Array;
  private readonly tileZeros?: Float64Array;
  private readonly colAbs: Float64Array;
  private readonly colZeros: Float64Array;
  private readonly colCell?: Int32Array;
  private readonly gramEvery: number;
  private readonly gram?: Float64Array;
  private gramRows = 0;
  private readonly colMax?: Float32Array;
  private rowsSeen = 0;

  constructor(cfg: TensorStatsConfig) {
    const d = Math.max(1, cfg.rowLength);
    this.d = d;
    this.rows = cfg.rows;
    const eps = Math.fround(Math.abs(cfg.epsilon));
    const f = new Float32Array([eps]);
    this.epsBits = new Uint32Array(f.buffer)[0];
    this.int8PerRow = cfg.int8PerRow ?? false;
    if (cfg.keepRowNorms) this.rowNorms = new Float32Array(cfg.rows);
    this.colAbs = new Float64Array(d);
    this.colZeros = new Float64Array(d);
    if (cfg.maxTileCells && cfg.maxTileCells > 0) {
      const g = tileGeometry(cfg.rows, d, cfg.maxTileCells);
      this.tileGeo = g;
      this.tileSum = new Float64Array(g.rows * g.cols);
      this.tileZeros = new Float64Array(g.rows * g.cols);
      this.colCell = new Int32Array(d);
      for (let j = 0; j < d; j++) this.colCell[j] = Math.floor(j / g.cellCols);
    }
    this.gramEvery = cfg.gramEvery && cfg.gramEvery > 0 ? Math.floor(cfg.gramEvery) : 0;
    if (this.gramEvery) this.gram = new Float64Array(d * d);
    if (cfg.columnAbsMax) this.colMax = new Float32Array(d);
  }

  /** `chunk` holds whole rows and starts at element `firstElement` (a multiple of rowLength). */
  add(chunk: Float32Array, firstElement: number): void {
    const d = this.d;
    if (firstElement % d !== 0 || (chunk.length % d !== 0 && firstElement + chunk.length !== this.rows * d)) {
      throw new Error(`TensorStatsAccumulator: chunk [${firstElement}, +${chunk.length}) is not row-aligned (row length ${d})`);
    }
    const u = new Uint32Array(chunk.buffer, chunk.byteOffset, chunk.length);
    const hist = this.hist;
    const epsBits = this.epsBits;
    const colAbs = this.colAbs;
    const colZeros = this.colZeros;
    const rowNorms = this.rowNorms;
    const int8PerRow = this.int8PerRow;
    const colMax = this.colMax;
    if (Number.isNaN(this.shift)) {
      for (let i = 0; i < chunk.length; i++) {
        if ((u[i] & ABS_MASK) < INF_BITS) {
          this.shift = chunk[i];
          break;
        }
      }
    }
    const K = Number.isNaN(this.shift) ? 0 : this.shift;
    let zeros = 0;
    let near = 0;
    let nonFinite = 0;
    let mn = this.min;
    let mx = this.max;
    let s1 = 0;
    let s2 = 0;
    let sAbs = 0;
    let sSq = 0;
    let f16Max = this.f16Max;
    let f16Sq = 0;
    let f16Over = 0;
    let i8Max = this.i8Max;
    let i8Sq = 0;
    let zeroRows = 0;
    const nRows = Math.ceil(chunk.length / d);
    let row = firstElement / d;
    for (let r = 0, base = 0; r < nRows; r++, base += d, row++) {
      let rs = 0;
      let ra = 0;
      for (let j = 0; j < d; j++) {
        const i = base + j;
        const a = u[i] & ABS_MASK;
        if (a >= INF_BITS) {
          nonFinite++;
          continue;
        }
        const x = chunk[i];
        const ax = x < 0 ? -x : x;
        if (a <= epsBits) {
          near++;
          if (a === 0) {
            zeros++;
            colZeros[j]++;
          }
        }
        hist[a >>> HIST_SHIFT]++;
        if (x < mn) mn = x;
        if (x > mx) mx = x;
        const y = x - K;
        s1 += y;
        s2 += y * y;
        sAbs += ax;
        rs += x * x;
        if (ax > ra) ra = ax;
        colAbs[j] += ax;
        // float16 round-trip error from the 13 mantissa bits it drops (ties have the same
        // error whichever way they round, so no tie rule is needed for the figure)
        let e: number;
        if (a >= F16_MIN_NORMAL_BITS) {
          if (a < F16_OVERFLOW_BITS) {
            const m = a & 0x1fff;
            e = (m <= 0x1000 ? m : 0x2000 - m) * F16_ULP_UNIT[a >>> 23];
          } else {
            f16Over++;
            e = 0;
          }
        } else {
          const t = ax * TWO_POW_24;
          const rt = t - Math.round(t);
          e = (rt < 0 ? -rt : rt) / TWO_POW_24;
        }
        f16Sq += e * e;
        if (e > f16Max) f16Max = e;
      }
      sSq += rs;
      if (rs === 0) zeroRows++;
      if (rowNorms) rowNorms[row] = Math.sqrt(rs);
      if (int8PerRow && ra > 0) {
        const scale = ra / 127;
        const inv = 127 / ra;
        for (let j = 0; j < d; j++) {
          const x = chunk[base + j];
          if ((u[base + j] & ABS_MASK) >= INF_BITS) continue;
          const e = x - Math.round(x * inv) * scale;
          const ae = e < 0 ? -e : e;
          i8Sq += e * e;
          if (ae > i8Max) i8Max = ae;
        }
      }
      if (colMax) {
        for (let j = 0; j < d; j++) {
          const x = chunk[base + j];
          const ax = x < 0 ? -x : x;
          if (ax > colMax[j]) colMax[j] = ax; // NaN never wins a comparison
        }
      }
      if (this.gram && row % this.gramEvery === 0) this.addGramRow(chunk, base);
      if (this.tileGeo && ((row + 1) % this.tileGeo.cellRows === 0 || row + 1 === this.rows)) this.foldTileRow(row);
    }
    this.rowsSeen += nRows;
    this.count += chunk.length;
    this.nonFinite += nonFinite;
    this.zeros += zeros;
    this.nearZeros += near;
    this.min = mn;
    this.max = mx;
    this.s1 += s1;
    this.s2 += s2;
    this.sAbs += sAbs;
    this.sSq += sSq;
    this.f16Max = f16Max;
    this.f16Sq += f16Sq;
    this.f16Overflow += f16Over;
    this.i8Max = i8Max;
    this.i8Sq += i8Sq;
    this.zeroRows += zeroRows;
    if (!this.tileGeo) {
      colAbs.fill(0);
      colZeros.fill(0);
    }
  }

  private addGramRow(chunk: Float32Array, base: number): void {
    const d = this.d;
    const g = this.gram!;
    for (let p = 0; p < d; p++) {
      const xp = chunk[base + p];
      if (xp === 0 || !Number.isFinite(xp)) continue;
      const off = p * d;
      for (let q = p; q < d; q++) g[off + q] += xp * chunk[base + q];
    }
    this.gramRows++;
  }

  private foldTileRow(row: number): void {
    const g = this.tileGeo!;
    const cr = Math.floor(row / g.cellRows);
    const off = cr * g.cols;
    const colCell = this.colCell!;
    const colAbs = this.colAbs;
    const colZeros = this.colZeros;
    for (let j = 0; j < this.d; j++) {
      const c = off + colCell[j];
      this.tileSum![c] += colAbs[j];
      this.tileZeros![c] += colZeros[j];
    }
    colAbs.fill(0);
    colZeros.fill(0);
  }

  finish(): TensorStats {
    const finite = this.count - this.nonFinite;
    const mean = finite > 0 ? this.shift + this.s1 / finite : NaN;
    const centered = finite > 0 ? this.s2 / finite - (this.s1 / finite) ** 2 : NaN;
    const stats: TensorStats = {
      count: this.count,
      finite,
      nonFinite: this.nonFinite,
      zeros: this.zeros,
      nearZeros: this.nearZeros,
      min: finite > 0 ? this.min : NaN,
      max: finite > 0 ? this.max : NaN,
      mean,
      std: finite > 0 ? Math.sqrt(Math.max(0, centered)) : NaN,
      absMean: finite > 0 ? this.sAbs / finite : NaN,
      sumSquares: this.sSq,
      absMax: finite > 0 ? Math.max(Math.abs(this.min), Math.abs(this.max)) : NaN,
      histogram: this.hist,
      float16: { maxAbs: this.f16Max, sumSq: this.f16Sq, overflow: this.f16Overflow },
      zeroRows: this.zeroRows,
    };
    if (this.int8PerRow) stats.int8PerRow = { maxAbs: this.i8Max, sumSq: this.i8Sq };
    if (this.rowNorms) stats.rowNorms = this.rowNorms;
    if (this.tileGeo) {
      const g = this.tileGeo;
      const counts = new Float64Array(g.rows * g.cols);
      for (let r = 0; r < g.rows; r++) {
        const nr = Math.min(g.cellRows, this.rows - r * g.cellRows);
        for (let c = 0; c < g.cols; c++) counts[r * g.cols + c] = nr * Math.min(g.cellCols, this.d - c * g.cellCols);
      }
      stats.tiles = { geometry: g, sumAbs: this.tileSum!, zeros: this.tileZeros!, counts };
    }
    if (this.gram) {
      const d = this.d;
      const g = this.gram;
      for (let p = 0; p < d; p++) for (let q = 0; q < p; q++) g[p * d + q] = g[q * d + p];
      stats.gram = { matrix: g, rowsUsed: this.gramRows };
    }
    if (this.colMax) stats.columnAbsMax = this.colMax;
    return stats;
  }
}

/** Statistics of an array in one call (tests, small tensors). */
export function computeTensorStats(values: Float32Array, cfg: Partial<TensorStatsConfig> & { epsilon: number }): TensorStats {
  const rowLength = cfg.rowLength ?? 1;
  const acc = new TensorStatsAccumulator({ ...cfg, rowLength, rows: cfg.rows ?? Math.ceil(values.length / rowLength) });
  acc.add(values, 0);
  return acc.finish();
}

/**
 * Symmetric int8 error with one scale per column of a [rows, cols] matrix (per output channel of
 * an [in, out] kernel). Given a single column max (`[absMax]`) it is the per-tensor error: every
 * element then falls in "column" 0. A second pass: the scales need every row's values first.
 */
export class Int8ColumnErrorAccumulator {
  private maxAbs = 0;
  private sumSq = 0;
  private readonly inv: Float64Array;
  private readonly scale: Float64Array;
  constructor(private readonly colAbsMax: ArrayLike<number>) {
    const d = colAbsMax.length;
    this.inv = new Float64Array(d);
    this.scale = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      const m = colAbsMax[j];
      this.scale[j] = m > 0 ? m / 127 : 0;
      this.inv[j] = m > 0 ? 127 / m : 0;
    }
  }
  add(chunk: Float32Array, firstElement: number): void {
    const d = this.inv.length;
    const inv = this.inv;
    const scale = this.scale;
    let j = firstElement % d;
    let mx = this.maxAbs;
    let sq = 0;
    for (let i = 0; i < chunk.length; i++) {
      const x = chunk[i];
      if (Number.isFinite(x)) {
        const e = x - Math.round(x * inv[j]) * scale[j];
        const ae = e < 0 ? -e : e;
        sq += e * e;
        if (ae > mx) mx = ae;
      }
      if (++j === d) j = 0;
    }
    this.maxAbs = mx;
    this.sumSq += sq;
  }
  result(): { maxAbs: number; sumSq: number } {
    return { maxAbs: this.maxAbs, sumSq: this.sumSq };
  }
}

/** Round-trip figures from an error sum of squares: JSON-safe (null where undefined). */
export function errorFigures(maxAbs: number, sumSq: number, count: number, sumSquaresOfValues: number) {
  if (count === 0) return { maxAbs: null, rmse: null, relRmse: null };
  const rmse = Math.sqrt(sumSq / count);
  const rms = Math.sqrt(sumSquaresOfValues / count);
  return { maxAbs: finiteOrNull(maxAbs), rmse: finiteOrNull(rmse), relRmse: rms > 0 ? finiteOrNull(rmse / rms) : null };
}

export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}
