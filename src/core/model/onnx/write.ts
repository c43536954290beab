// Value replacement: writes an ONNX model read by onnx.ts with some tensors given new values
// (maybe new dtypes and shapes). When every change keeps a tensor's byte size and place (and
// nothing moves to or from external data) the file is copied with raw_data patched in place;
// otherwise it is spliced at the wire level (splice.ts). Structural edits: edit.ts.

import { writeAll, writeFilesAtomically } from '../atomic-write.js';
import { ModelFileError, ModelIR, ModelTensor } from '../ir.js';
import { OnnxNative } from '../onnx.js';
import { pipeBytes } from '../tensor-stream.js';
import {
  SpliceCtx,
  TensorLayout,
  TensorPlan,
  TensorSpec,
  keyPrefixes,
  nativeOf,
  offsetInFile,
  outputPaths,
  planTensor,
  spliceModel,
  writeSplicedModel,
} from './splice.js';

/** New dtype, shape and little-endian stored bytes (in memory or streamed). */
export type OnnxTensorReplacement = TensorSpec;

export interface WriteOnnxOptions {
  replace?: Map<string, OnnxTensorReplacement>;
  /**
   * Where tensors go. Without it, tensors that were in external data stay external (in a new
   * file `<output name>.data` next to the output) and the others stay inline. With it, tensors
   * of at least minBytes (and all that were external) go to `fileName` next to the output.
   * false: every tensor inline.
   */
  externalData?: TensorLayout;
}

function samePlace(native: OnnxNative, t: ModelTensor, plan: TensorPlan): boolean {
  const src = t.storage.source;
  return (
    !plan.external && src.kind === 'bytes' && offsetInFile(native, src.bytes) >= 0 && src.bytes.length === plan.data.byteLength &&
    plan.dtype === t.storage.dtype && plan.shape.length === t.shape.length && plan.shape.every((d, i) => d === t.shape[i])
  );
}

/** A copy of the file with the planned tensors' raw_data bytes overwritten in place. */
async function writePatched(native: OnnxNative, out: string, plans: TensorPlan[], byName: Map<string, ModelTensor>): Promise<void> {
  const patches = plans.map((p) => {
    const src = byName.get(p.name)?.storage.source;
    if (src?.kind !== 'bytes') throw new Error('unreachable: patch plan without bytes');
    return { off: offsetInFile(native, src.bytes), plan: p };
  });
  patches.sort((a, b) => a.off - b.off);
  const bytes = native.bytes;
  await writeFilesAtomically((add) =>
    add(out, async (fh) => {
      let pos = 0;
      for (const { off, plan } of patches) {
        await writeAll(fh, bytes.subarray(pos, off), pos);
        pos = off;
        await pipeBytes(plan.data, async (chunk) => {
          await writeAll(fh, chunk, pos);
          pos += chunk.length;
        }, `tensor ${plan.name}`);
      }
      await writeAll(fh, bytes.subarray(pos), pos);
    }),
  );
}

/**
 * Writes `ir` (read by readOnnxModel) to `outPath`, replacing the tensors in `opts.replace`.
 * Atomic (temp files renamed at the end). Never writes to the original model or its data files.
 */
export async function writeOnnxModel(ir: ModelIR, outPath: string, opts?: WriteOnnxOptions): Promise<void> {
  const native = nativeOf(ir, outPath);
  const layout = opts?.externalData;
  const paths = await outputPaths(ir, native, outPath, layout);
  const replace = opts?.replace ?? new Map<string, OnnxTensorReplacement>();
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  for (const name of replace.keys()) {
    if (!byName.has(name)) throw new ModelFileError(outPath, `cannot replace tensor "${name}": no such tensor in ${ir.path}`);
  }
  const plans = new Map<string, TensorPlan>();
  let patchable = layout === undefined;
  for (const t of ir.tensors) {
    const key = native.tensorKeys.get(t.name);
    if (!key) continue;
    let plan: TensorPlan | undefined;
    try {
      plan = planTensor(t, key, replace.get(t.name), layout);
    } catch (e) {
      throw new ModelFileError(outPath, (e as Error).message, { cause: e });
    }
    if (!plan) continue;
    if (!samePlace(native, t, plan)) patchable = false;
    plans.set(key, plan);
  }
  if (patchable) return writePatched(native, paths.out, [...plans.values()], byName);
  const ctx: SpliceCtx = { src: native.bytes, plans, prefixes: keyPrefixes(plans.keys()) };
  await writeSplicedModel(native, paths, layout, ctx, () => spliceModel(ctx));
}
