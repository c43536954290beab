// Trained values back into a copy of the model file, same format and structure.

import { DType, ModelIR } from '../../model/ir.js';
import { writeOnnxModel, OnnxTensorReplacement } from '../../model/onnx-write.js';
import { writeTfjsModel, TfjsReplacement } from '../../model/tfjs-write.js';
import { float32ToFloat16Bits } from '../../model/tensor-data.js';

function storedBytes(dtype: DType, values: Float32Array): Uint8Array {
  if (dtype === 'float32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (dtype === 'float64') {
    const d = Float64Array.from(values);
    return new Uint8Array(d.buffer);
  }
  if (dtype === 'float16') {
    const h = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) h[i] = float32ToFloat16Bits(values[i]);
    return new Uint8Array(h.buffer);
  }
  throw new Error(`cannot store trained values as ${dtype}`);
}

/** Writes trained values into a copy of the model, same format and structure as `ir`. */
export async function writeTrainedValues(ir: ModelIR, values: Map<string, Float32Array>, outPath: string): Promise<void> {
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  if (ir.format === 'onnx') {
    const replace = new Map<string, OnnxTensorReplacement>();
    for (const [name, v] of values) {
      const t = byName.get(name)!;
      replace.set(name, { dtype: t.dtype, shape: t.shape, data: storedBytes(t.dtype, v) });
    }
    await writeOnnxModel(ir, outPath, { replace });
    return;
  }
  const replace = new Map<string, TfjsReplacement>();
  for (const [name, v] of values) replace.set(name, { dtype: 'float32', shape: byName.get(name)!.shape, data: v });
  await writeTfjsModel(ir, outPath, { replace });
}
