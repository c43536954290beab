// TF.js side of quantization: the weights manifest's own quantization (what the tensorflowjs
// converter's --quantize_float16 / --quantize_uint8 / --quantize_uint16 write). TF.js turns the
// stored values back into float32 when it loads the model: the win is on disk and on the
// network, not in memory or speed.

import { ModelTensor } from '../model/ir.js';
import { readTensorFloat32 } from '../model/tensor-data.js';
import type { TfjsReplacement } from '../model/tfjs-write.js';
import { quantizeAffine, toFloat16 } from './quantize-math.js';
import type { TensorChange } from './types.js';

export interface TfjsQuantizePlan {
  replace: Map<string, TfjsReplacement>;
  changes: TensorChange[];
  skipped: Array<{ tensor: string; reason: string }>;
}

export async function planTfjsQuantization(
  selected: ModelTensor[],
  stored: 'float16' | 'uint8' | 'uint16',
  opts: { signal?: AbortSignal; onTensor?: (done: number, total: number, name: string) => void } = {},
): Promise<TfjsQuantizePlan> {
  const plan: TfjsQuantizePlan = { replace: new Map(), changes: [], skipped: [] };
  let done = 0;
  for (const t of selected) {
    opts.signal?.throwIfAborted();
    opts.onTensor?.(done++, selected.length, t.name);
    if (t.dtype !== 'float32') {
      plan.skipped.push({ tensor: t.name, reason: `dtype ${t.dtype}; only float32 weights are quantized` });
      continue;
    }
    if (t.storage.quantization) {
      plan.skipped.push({ tensor: t.name, reason: `already stored as ${t.storage.quantization.dtype}` });
      continue;
    }
    const values = await readTensorFloat32(t);
    const before = { shape: t.shape.slice(), dtype: t.dtype, bytes: t.storage.byteLength };
    if (stored === 'float16') {
      const h = toFloat16(values);
      if (h.overflow > 0) {
        plan.skipped.push({ tensor: t.name, reason: `${h.overflow} values exceed float16's range (±65504)` });
        continue;
      }
      plan.replace.set(t.name, { dtype: 'float32', shape: t.shape.slice(), data: h.bits, quantization: { dtype: 'float16', originalDtype: 'float32' } });
      plan.changes.push({
        tensor: t.name,
        action: `float16 in the weights manifest (max |Δw| ${h.maxAbsError.toExponential(2)})`,
        before,
        after: [{ name: t.name, shape: t.shape.slice(), dtype: 'float16', bytes: h.bits.byteLength }],
      });
      continue;
    }
    const a = quantizeAffine(values, stored === 'uint8' ? 8 : 16);
    plan.replace.set(t.name, {
      dtype: 'float32',
      shape: t.shape.slice(),
      data: a.q,
      quantization: { dtype: stored, scale: a.scale, min: a.min, originalDtype: 'float32' },
    });
    plan.changes.push({
      tensor: t.name,
      action: `${stored} affine per tensor (scale ${a.scale.toExponential(3)}, min ${a.min.toExponential(3)}; max |Δw| ${a.maxAbsError.toExponential(2)})`,
      before,
      after: [{ name: t.name, shape: t.shape.slice(), dtype: stored, bytes: a.q.byteLength }],
    });
  }
  return plan;
}
