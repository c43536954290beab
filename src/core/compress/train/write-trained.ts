// Trained values back into a copy of the model file, same format and structure.

import type { DType, ModelIR } from '../../model/ir.js';
import { writeOnnxModel, OnnxTensorReplacement } from '../../model/onnx/write.js';
import { writeTfjsModel, TfjsReplacement } from '../../model/tfjs-write.js';
import { encodeFloats } from '../../model/tensor-data.js';

/** float32 as a view (a 600 MB table is not copied again), other float dtypes through the one encoder. */
function stored(dtype: DType, values: Float32Array, name: string): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return encodeFloats(dtype, values, `trained tensor ${name}`);
}

/** Writes trained values into a copy of the model, same format and structure as `ir`. */
export async function writeTrainedValues(ir: ModelIR, values: Map<string, Float32Array>, outPath: string): Promise<void> {
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  if (ir.format === 'onnx') {
    const replace = new Map<string, OnnxTensorReplacement>();
    for (const [name, v] of values) {
      const t = byName.get(name)!;
      replace.set(name, { dtype: t.dtype, shape: t.shape, data: stored(t.dtype, v, name) });
    }
    await writeOnnxModel(ir, outPath, { replace });
    return;
  }
  const replace = new Map<string, TfjsReplacement>();
  for (const [name, v] of values) replace.set(name, { dtype: 'float32', shape: byName.get(name)!.shape, data: v });
  await writeTfjsModel(ir, outPath, { replace });
}
