// ONNX TensorProto.DataType <-> IR DType. Kept apart so the reader, the writer and the builder
// agree on one table. Enum values are those of onnx.proto (stable across ONNX versions).

import { DType } from '../ir.js';
import { DTYPE_BYTES } from '../dtype.js';

export const ONNX_DTYPE_CODE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  complex64: 14,
  bfloat16: 16,
};

const CODE_TO_DTYPE = new Map<number, DType>(
  (Object.entries(ONNX_DTYPE_CODE) as Array<[DType, number]>).map(([d, c]) => [c, d]),
);

/** Names of ONNX element types the IR cannot represent, for error messages. */
const UNSUPPORTED_NAMES: Record<number, string> = {
  0: 'UNDEFINED',
  15: 'COMPLEX128',
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
  23: 'FLOAT4E2M1',
};

export function dtypeFromOnnx(code: number): DType | undefined {
  return CODE_TO_DTYPE.get(code);
}

export function onnxDtypeName(code: number): string {
  const d = CODE_TO_DTYPE.get(code);
  return d ?? UNSUPPORTED_NAMES[code] ?? `data_type ${code}`;
}

export function onnxDtypeCode(d: DType): number {
  const c = ONNX_DTYPE_CODE[d];
  if (c === undefined) throw new Error(`no ONNX element type for dtype ${String(d)}`);
  return c;
}

/** Bytes per element as stored in raw_data; 0 for string (the IR's one table). */
export const ONNX_ELEMENT_BYTES = DTYPE_BYTES;
