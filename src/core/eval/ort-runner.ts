// Scores (user, item) pairs with an ONNX model in onnxruntime-node. Inputs are bound by name
// (input-binding.ts); ids are cast to each input's dtype (int64 as BigInt64Array, int32, or
// float) and shaped [batch] or [batch, 1] as the input's rank says. The first output is the
// score: [batch] or [batch, 1]. A model whose inputs have a fixed first dim (torch.onnx.export
// without dynamic_axes) runs in calls of exactly that many rows, the last padded with its own
// last row, and only the real rows' scores are kept.

import * as ort from 'onnxruntime-node';
import { ModelFileError } from '../model/ir.js';
import { createOrtSession, ExecutionProviderReport, ExecutionProviderUnavailableError, OrtEpPreference } from '../runtime/ort-providers.js';
import { bindInputs, columnInputs, fieldCountOf, idsFor, InputNameOptions, InputRole, ModelInputInfo, ScoreBatch } from './input-binding.js';

export interface Scorer {
  /** 'onnxruntime-node' or 'tfjs-<backend>' */
  readonly runtime: string;
  readonly inputs: Array<ModelInputInfo & { role: InputRole; dtype: string }>;
  /** the execution provider (ORT) that runs the model, and why; absent for TF.js (see its runtime) */
  readonly executionProvider?: ExecutionProviderReport;
  /**
   * rows per call the model accepts when its inputs have a fixed first dim (exported without a
   * dynamic batch): score() then runs in calls of exactly this many rows whatever `batchSize` is
   */
  readonly fixedBatch?: number;
  /** scores of rows [0, n), in batches of at most `batchSize` */
  score(batch: ScoreBatch, batchSize?: number): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface OrtScorerOptions extends InputNameOptions {
  /** ORT intra-op threads; default ORT's own choice */
  threads?: number;
  /** output name; default the first output */
  output?: string;
  /** execution provider: 'cpu', 'webgpu', 'cuda' or 'auto' (hardware only); default PRUNESCOPE_EP, else CPU */
  ep?: OrtEpPreference;
}

interface BoundInput {
  name: string;
  role: InputRole;
  dtype: string;
  shape: Array<number | string>;
}

function castIds(ids: Int32Array, dtype: string): ort.Tensor['data'] {
  switch (dtype) {
    case 'int64': {
      const out = new BigInt64Array(ids.length);
      for (let i = 0; i < ids.length; i++) out[i] = BigInt(ids[i]);
      return out;
    }
    case 'int32':
      return ids;
    case 'float32':
      return Float32Array.from(ids);
    case 'float64':
      return Float64Array.from(ids);
    default:
      throw new Error(`input dtype ${dtype} is not supported for ids (int64, int32, float32, float64)`);
  }
}

/** ORT's messages run over several lines (the expected dims come after the first): one line of all of them. */
export function ortMessage(e: unknown): string {
  return String((e as Error)?.message ?? e)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ')
    .slice(0, 600);
}

/** The first dim every input fixes (the same number > 0 on all of them), else undefined. */
export function fixedBatchOf(inputs: Array<{ shape: Array<number | string> }>): number | undefined {
  const dims = inputs.map((i) => i.shape[0]);
  const d = dims[0];
  return typeof d === 'number' && d > 0 && dims.every((x) => x === d) ? d : undefined;
}

/** ids[0, b) of `width` values per row, padded to `rows` rows with copies of the last row. */
function padRows(ids: Int32Array, b: number, rows: number, width: number): Int32Array {
  if (b === rows) return ids;
  const out = new Int32Array(rows * width);
  out.set(ids.subarray(0, b * width));
  for (let r = b; r < rows; r++) out.copyWithin(r * width, (b - 1) * width, b * width);
  return out;
}

export async function openOrtScorer(file: string, opts: OrtScorerOptions = {}): Promise<Scorer> {
  let session: ort.InferenceSession;
  let executionProvider: ExecutionProviderReport;
  try {
    const so: ort.InferenceSession.SessionOptions = {};
    if (opts.threads) so.intraOpNumThreads = opts.threads;
    ({ session, provider: executionProvider } = await createOrtSession(ort, file, so, opts.ep));
  } catch (e) {
    if (e instanceof ExecutionProviderUnavailableError) throw e;
    throw new ModelFileError(file, `onnxruntime-node cannot load it: ${ortMessage(e)}`, { cause: e });
  }
  const meta = session.inputMetadata;
  const infos: BoundInput[] = meta.map((m) => {
    if (!m.isTensor) throw new ModelFileError(file, `input '${m.name}' is not a tensor`);
    return { name: m.name, role: 'user', dtype: m.type, shape: [...m.shape].map((d) => (typeof d === 'number' ? d : String(d))) };
  });
  let roles: Map<string, InputRole>;
  try {
    roles = bindInputs(infos, opts, 'the ONNX model');
  } catch (e) {
    await session.release();
    throw new ModelFileError(file, (e as Error).message);
  }
  for (const i of infos) i.role = roles.get(i.name)!;
  const outputName = opts.output ?? session.outputNames[0];
  if (!session.outputNames.includes(outputName)) {
    await session.release();
    throw new ModelFileError(file, `no output '${outputName}' (outputs: ${session.outputNames.join(', ')})`);
  }
  const fieldsInput = infos.find((i) => i.role === 'fields');
  const columns = columnInputs(infos);
  const fixedBatch = fixedBatchOf(infos);

  return {
    runtime: 'onnxruntime-node',
    inputs: infos,
    executionProvider,
    fixedBatch,
    async score(batch: ScoreBatch, batchSize = 4096): Promise<Float32Array> {
      const n = batch.user.length;
      if (batch.item.length !== n) throw new Error(`score: ${n} users but ${batch.item.length} items`);
      const F = fieldsInput ? fieldCountOf(batch, fieldsInput.shape[1], `${file}`) : columns.length ? fieldCountOf(batch, 2 + columns.length, file) : 0;
      const out = new Float32Array(n);
      const step = fixedBatch ?? batchSize;
      for (let s = 0; s < n; s += step) {
        const e = Math.min(n, s + step);
        const b = e - s;
        const rows = fixedBatch ?? b;
        const feeds: Record<string, ort.Tensor> = {};
        for (const inp of infos) {
          const width = inp.role === 'fields' ? F : 1;
          const ids = padRows(idsFor(inp.role, batch, s, e, F, 2 + columns.indexOf(inp.name)), b, rows, width);
          const dims = inp.role === 'fields' ? [rows, F] : inp.shape.length === 2 ? [rows, 1] : [rows];
          feeds[inp.name] = new ort.Tensor(inp.dtype as 'int64', castIds(ids, inp.dtype) as BigInt64Array, dims);
        }
        let result: ort.InferenceSession.OnnxValueMapType;
        try {
          result = await session.run(feeds, [outputName]);
        } catch (err) {
          throw new ModelFileError(file, `onnxruntime-node (${executionProvider.name} provider) failed on rows ${s}..${e - 1}: ${ortMessage(err)}`, { cause: err });
        }
        const y = result[outputName] as ort.Tensor;
        if (y.size !== rows) throw new ModelFileError(file, `output '${outputName}' has ${y.size} values for a batch of ${rows} (dims [${y.dims.join(',')}]); expected one score per row`);
        const data = y.data;
        if (data instanceof Float32Array) out.set(data.subarray(0, b), s);
        else for (let i = 0; i < b; i++) out[s + i] = Number((data as ArrayLike<number | bigint>)[i]);
        y.dispose();
      }
      return out;
    },
    async close(): Promise<void> {
      await session.release();
    },
  };
}
