// Scores (user, item) pairs with an ONNX model in onnxruntime-node. Inputs are bound by name
// (input-binding.ts); ids are cast to each input's dtype (int64 as BigInt64Array, int32, or
// float) and shaped [batch] or [batch, 1] as the input's rank says. The first output is the
// score: [batch] or [batch, 1].

import * as ort from 'onnxruntime-node';
import { ModelFileError } from '../model/ir.js';
import { createOrtSession, ExecutionProviderReport, ExecutionProviderUnavailableError, OrtEpPreference } from '../runtime/ort-providers.js';
import { bindInputs, fieldCountOf, idsFor, InputNameOptions, InputRole, ModelInputInfo, ScoreBatch } from './input-binding.js';

export interface Scorer {
  /** 'onnxruntime-node' or 'tfjs-<backend>' */
  readonly runtime: string;
  readonly inputs: Array<ModelInputInfo & { role: InputRole; dtype: string }>;
  /** the execution provider (ORT) that runs the model, and why; absent for TF.js (see its runtime) */
  readonly executionProvider?: ExecutionProviderReport;
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

export async function openOrtScorer(file: string, opts: OrtScorerOptions = {}): Promise<Scorer> {
  let session: ort.InferenceSession;
  let executionProvider: ExecutionProviderReport;
  try {
    const so: ort.InferenceSession.SessionOptions = {};
    if (opts.threads) so.intraOpNumThreads = opts.threads;
    ({ session, provider: executionProvider } = await createOrtSession(ort, file, so, opts.ep));
  } catch (e) {
    if (e instanceof ExecutionProviderUnavailableError) throw e;
    throw new ModelFileError(file, `onnxruntime-node cannot load it: ${(e as Error).message.split('\n')[0]}`, { cause: e });
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

  return {
    runtime: 'onnxruntime-node',
    inputs: infos,
    executionProvider,
    async score(batch: ScoreBatch, batchSize = 4096): Promise<Float32Array> {
      const n = batch.user.length;
      if (batch.item.length !== n) throw new Error(`score: ${n} users but ${batch.item.length} items`);
      const F = fieldsInput ? fieldCountOf(batch, fieldsInput.shape[1], `${file}`) : 0;
      const out = new Float32Array(n);
      for (let s = 0; s < n; s += batchSize) {
        const e = Math.min(n, s + batchSize);
        const b = e - s;
        const feeds: Record<string, ort.Tensor> = {};
        for (const inp of infos) {
          const ids = idsFor(inp.role, batch, s, e, F);
          const dims = inp.role === 'fields' ? [b, F] : inp.shape.length === 2 ? [b, 1] : [b];
          feeds[inp.name] = new ort.Tensor(inp.dtype as 'int64', castIds(ids, inp.dtype) as BigInt64Array, dims);
        }
        let result: ort.InferenceSession.OnnxValueMapType;
        try {
          result = await session.run(feeds, [outputName]);
        } catch (err) {
          throw new ModelFileError(file, `onnxruntime-node (${executionProvider.name} provider) failed on rows ${s}..${e - 1}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
        }
        const y = result[outputName] as ort.Tensor;
        if (y.size !== b) throw new ModelFileError(file, `output '${outputName}' has ${y.size} values for a batch of ${b} (dims [${y.dims.join(',')}]); expected one score per row`);
        const data = y.data;
        if (data instanceof Float32Array) out.set(data, s);
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
