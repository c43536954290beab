// Scores (user, item) pairs with a TF.js model: a layers model (tf.loadLayersModel) or a graph
// model (tf.loadGraphModel), read through our file-system handler. Id inputs are int32
// [batch, 1] (or [batch] when the input is rank 1), `fields` inputs int32 [batch, F]; the
// first output is the score. Every batch's tensors are disposed.

import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { ModelFileError } from '../model/ir.js';
import { fileSystemLoadHandler } from '../model/tfjs-io.js';
import { initTfjs, TfjsBackendPreference } from '../runtime/tfjs-backend.js';
import { bindInputs, columnInputs, fieldCountOf, idsFor, InputNameOptions, InputRole, ScoreBatch } from './input-binding.js';
import { Scorer } from './ort-runner.js';

export interface TfjsScorerOptions extends InputNameOptions {
  /** default 'auto' (see initTfjs) */
  backend?: TfjsBackendPreference;
}

interface BoundInput {
  name: string;
  role: InputRole;
  dtype: string;
  shape: Array<number | string>;
}

async function isGraphModel(file: string): Promise<boolean> {
  let json: unknown;
  try {
    json = JSON.parse(await fs.promises.readFile(file, 'utf8'));
  } catch (e) {
    throw new ModelFileError(file, `cannot read as TF.js model.json: ${(e as Error).message}`, { cause: e });
  }
  const j = json as { format?: unknown; modelTopology?: { node?: unknown } };
  return j.format === 'graph-model' || Array.isArray(j.modelTopology?.node);
}

export async function openTfjsScorer(file: string, opts: TfjsScorerOptions = {}): Promise<Scorer> {
  const choice = await initTfjs(opts.backend ?? 'auto');
  const graph = await isGraphModel(file);
  let layers: tf.LayersModel | undefined;
  let graphModel: tf.GraphModel | undefined;
  let infos: BoundInput[];
  try {
    if (graph) {
      graphModel = await tf.loadGraphModel(fileSystemLoadHandler(file));
      infos = graphModel.inputs.map((t) => ({ name: t.name, role: 'user', dtype: t.dtype, shape: (t.shape ?? []).map((d) => d ?? -1) }));
    } else {
      layers = await tf.loadLayersModel(fileSystemLoadHandler(file));
      const m = layers;
      infos = m.inputNames.map((name, i) => ({ name, role: 'user', dtype: m.inputs[i].dtype, shape: m.inputs[i].shape.map((d) => d ?? -1) }));
    }
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(file, `TF.js cannot load it: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const dispose = () => {
    layers?.dispose();
    graphModel?.dispose();
  };
  let roles: Map<string, InputRole>;
  try {
    roles = bindInputs(infos, opts, 'the TF.js model');
  } catch (e) {
    dispose();
    throw new ModelFileError(file, (e as Error).message);
  }
  for (const i of infos) i.role = roles.get(i.name)!;
  const fieldsInput = infos.find((i) => i.role === 'fields');
  const columns = columnInputs(infos);

  return {
    runtime: `tfjs-${choice.backend}`,
    inputs: infos,
    async score(batch: ScoreBatch, batchSize = 4096): Promise<Float32Array> {
      const n = batch.user.length;
      if (batch.item.length !== n) throw new Error(`score: ${n} users but ${batch.item.length} items`);
      const F = fieldsInput ? fieldCountOf(batch, fieldsInput.shape[1], file) : columns.length ? fieldCountOf(batch, 2 + columns.length, file) : 0;
      const out = new Float32Array(n);
      for (let s = 0; s < n; s += batchSize) {
        const e = Math.min(n, s + batchSize);
        const b = e - s;
        const xs = infos.map((inp) => {
          const ids = idsFor(inp.role, batch, s, e, F, 2 + columns.indexOf(inp.name));
          const shape = inp.role === 'fields' ? [b, F] : inp.shape.length === 1 ? [b] : [b, 1];
          return tf.tensor(ids, shape, inp.dtype === 'float32' ? 'float32' : 'int32');
        });
        let y: tf.Tensor | tf.Tensor[] | undefined;
        try {
          if (layers) {
            y = layers.predict(xs.length === 1 ? xs[0] : xs) as tf.Tensor | tf.Tensor[];
          } else {
            const feeds: tf.NamedTensorMap = {};
            infos.forEach((inp, i) => (feeds[inp.name] = xs[i]));
            y = (await graphModel!.executeAsync(feeds)) as tf.Tensor | tf.Tensor[];
          }
          const first = Array.isArray(y) ? y[0] : y;
          if (first.size !== b) {
            throw new ModelFileError(file, `the first output has ${first.size} values for a batch of ${b} (shape [${first.shape.join(',')}]); expected one score per row`);
          }
          const data = await first.data();
          out.set(data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>), s);
        } catch (err) {
          if (err instanceof ModelFileError) throw err;
          throw new ModelFileError(file, `TF.js failed on rows ${s}..${e - 1}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
        } finally {
          tf.dispose(xs);
          if (y) tf.dispose(y);
        }
      }
      return out;
    },
    async close(): Promise<void> {
      dispose();
    },
  };
}
