// Quantization-aware training of embedding tables (fake quantization with a straight-through
// gradient): the optimizer updates float "master" rows, and the forward reads each row as the
// low-bit quantizer would store it (quantize-math.ts, the same fit and rounding). At the end the
// table holds quantized values, so `quantize --dtype intN` afterwards finds nothing left to round
// (per row exactly; per column up to a refit of each column's range). Which tables, and in which
// layout, follows quantize-onnx.ts: tables under NARROW_TABLE_COLS wide or asked per column get
// column scales; a table whose packed rows would take as many bytes as int8 is left in float (quantize stores it as int8).

import type { LowBits } from '../../model/packed-codes.js';
import { columnScaled, fakeQuantRowColumns, fakeQuantRowLowBit, lowBitsOf, packsSmallerThanInt8, quantizeColumnsLowBit } from '../quantize-math.js';
import type { SparseTable } from './sparse-tables.js';

export type QuantAwareDtype = 'int4' | 'int3' | 'int2';

export interface QuantAwareSettings {
  dtype: QuantAwareDtype;
  /** 'row' (default): a scale per row; 'column': one per column (tables under 8 wide always) */
  scales?: 'row' | 'column';
}

/** The fake quantizer of one table, or why the table stays float (what quantize would do to it). */
export function tableFakeQuant(s: QuantAwareSettings, rows: number, cols: number): TableFakeQuant | { leftBecause: string } {
  const bits = lowBitsOf(s.dtype)!;
  if (!packsSmallerThanInt8(cols, bits)) return { leftBecause: `only ${cols} wide: packed ${s.dtype} rows would take as many bytes as int8 rows, so quantize stores it as int8, whose error is not trained through` };
  return new TableFakeQuant(bits, columnScaled(cols, s.scales), rows, cols);
}

export class TableFakeQuant {
  private colScales?: Float32Array;
  private colZeroPoints?: Uint8Array;

  constructor(
    readonly bits: LowBits,
    readonly perColumn: boolean,
    readonly rows: number,
    readonly cols: number,
  ) {}

  get layout(): string {
    return `int${this.bits} ${this.perColumn ? 'per column' : 'per row'}`;
  }

  /** Per column: fits each column's scale and zero point to the master table (at the start and once per epoch). */
  refit(master: Float32Array): void {
    if (!this.perColumn) return;
    const q = quantizeColumnsLowBit(master, this.rows, this.cols, this.bits);
    this.colScales = q.scales;
    this.colZeroPoints = q.zeroPoints;
  }

  /** out's row r = master's row r as stored */
  row(master: Float32Array, out: Float32Array, r: number): void {
    const at = r * this.cols;
    if (!this.perColumn) fakeQuantRowLowBit(master, at, this.cols, this.bits, out);
    else {
      if (!this.colScales) this.refit(master);
      fakeQuantRowColumns(master, at, this.cols, this.bits, this.colScales!, this.colZeroPoints!, out);
    }
  }

  /** every row of out from master */
  all(master: Float32Array, out: Float32Array): void {
    this.refit(master);
    for (let r = 0; r < this.rows; r++) this.row(master, out, r);
  }
}

/** Quantization-aware training set up on an engine's tables: what the notes say, and the per-epoch refit. */
export interface QuantAwareRun {
  /** tables trained through the rounding, with their layout */
  trained: Array<{ table: string; layout: string }>;
  /** tables left in float, with the reason */
  left: Array<{ table: string; reason: string }>;
  /** refits per-column ranges (call between epochs) */
  refit(): void;
}

export function startQuantAware(tables: SparseTable[], s: QuantAwareSettings): QuantAwareRun {
  const trained: QuantAwareRun['trained'] = [];
  const left: QuantAwareRun['left'] = [];
  for (const t of tables) {
    const fq = tableFakeQuant(s, t.rows, t.dim);
    if ('leftBecause' in fq) {
      left.push({ table: t.name, reason: fq.leftBecause });
      continue;
    }
    t.setFakeQuant(fq);
    trained.push({ table: t.name, layout: fq.layout });
  }
  return { trained, left, refit: () => tables.forEach((t) => t.refitFakeQuant()) };
}
