// Bytes per element of each IR dtype: the one table every reader, writer and method uses.

import { DType } from './ir.js';

/** Bytes per stored element; 0 for 'string' (variable length). */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1,
  string: 0,
  complex64: 8,
};

/** Bytes per element of a fixed-size dtype; 0 for 'string'; throws on a name that is no dtype. */
export function dtypeByteSize(d: DType | string): number {
  const n = (DTYPE_BYTES as Record<string, number>)[d];
  if (n === undefined) throw new Error(`unknown dtype ${String(d)}`);
  return n;
}

/** Whether a dtype holds floating-point values (float32, float16, bfloat16, float64). */
export function isFloatDtype(d: DType | string): boolean {
  return d === 'float32' || d === 'float16' || d === 'bfloat16' || d === 'float64';
}
