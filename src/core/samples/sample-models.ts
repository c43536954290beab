// One call that makes a real sample recommender: generate interactions with planted
// structure, build and train the model with TF.js, check that it learned (HR@10 on
// leave-one-out candidates against the random baseline), and write it as TF.js and/or ONNX
// next to the data it was trained and evaluated on. Used by `prunescope demo` and by the
// test fixtures.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { initTfjs, TfjsBackendPreference } from '../runtime/tfjs-backend.js';
import { fileSystemSaveHandler } from '../model/tfjs-io.js';
import { generateInteractions, writeInteractionsCsv } from './interactions.js';
import { buildSampleModel, predictScores, rankingMetrics, RankingMetrics, SampleKind, SampleOutput, SAMPLE_SIZES, trainModel, TrainResult } from './models.js';
import { exportLayersModelToOnnx } from './to-onnx.js';

export type SampleFormat = 'tfjs' | 'onnx';

export interface CreateSampleOptions {
  size: 'tiny' | 'demo';
  formats: SampleFormat[];
  seed: number;
  /** TF.js backend for training; default 'auto' */
  backend?: TfjsBackendPreference;
  onEpoch?: (epoch: number, loss: number) => void;
  /**
   * 'logit': the saved model ends in the raw score, like PyTorch exports trained with
   * BCEWithLogitsLoss (trained as a sigmoid model, then its weights are put into the logit twin)
   */
  output?: SampleOutput;
}

export interface SampleModelResult {
  kind: SampleKind;
  /** outDir/<kind>-tfjs/model.json, when 'tfjs' was asked for */
  tfjsModelJson?: string;
  /** outDir/<kind>.onnx, when 'onnx' was asked for */
  onnxPath?: string;
  /** training rows: user,item,label,timestamp (+ DeepFM field columns) */
  interactionsCsv: string;
  /** leave-one-out blocks: per user the held-out positive, then the sampled negatives */
  candidatesCsv: string;
  candidatesPerUser: number;
  training: TrainResult;
  /** HR@10 / NDCG@10 of the trained model on the candidates */
  metrics: RankingMetrics;
  params: number;
  backend: string;
  /** planted facts, for reports: items never seen in training (rows left at their init) */
  coldItems: number;
  uselessFields: string[];
}

export const SAMPLE_KINDS: readonly SampleKind[] = ['neumf', 'two-tower', 'deepfm'];

export async function createSampleModel(kind: SampleKind, outDir: string, opts: CreateSampleOptions): Promise<SampleModelResult> {
  if (!SAMPLE_KINDS.includes(kind)) throw new Error(`unknown sample model kind '${kind}' (expected ${SAMPLE_KINDS.join(', ')})`);
  const size = SAMPLE_SIZES[opts.size];
  if (!size) throw new Error(`unknown sample size '${opts.size}' (expected tiny or demo)`);
  const backend = await initTfjs(opts.backend ?? 'auto');
  const data = generateInteractions({
    users: size.users,
    items: size.items,
    meanPositivesPerUser: size.meanPositivesPerUser,
    seed: opts.seed,
    extraFields: kind === 'deepfm',
  });
  let model = buildSampleModel(kind, data.fields, opts.size, opts.seed);
  try {
    const training = await trainModel(model, data, {
      epochs: size.epochs,
      batchSize: size.batchSize,
      lr: size.lr,
      seed: opts.seed,
      onEpoch: opts.onEpoch,
    });
    const metrics = rankingMetrics(predictScores(model, data.candidates), data.candidatesPerUser, 10);
    if (opts.output === 'logit') {
      // the same weights without the final sigmoid (the ranking, and so the metrics, are unchanged);
      // the sigmoid model goes first so that the twin's variables get unsuffixed names
      const weights = model.getWeights().map((w) => w.clone());
      model.dispose();
      model = buildSampleModel(kind, data.fields, opts.size, opts.seed, 'logit');
      model.setWeights(weights);
      weights.forEach((w) => w.dispose());
    }

    await fs.promises.mkdir(outDir, { recursive: true });
    const result: SampleModelResult = {
      kind,
      interactionsCsv: path.join(outDir, `${kind}-interactions.csv`),
      candidatesCsv: path.join(outDir, `${kind}-candidates.csv`),
      candidatesPerUser: data.candidatesPerUser,
      training,
      metrics,
      params: model.countParams(),
      backend: backend.backend,
      coldItems: data.coldItems.length,
      uselessFields: data.fields.filter((f) => f.useless).map((f) => f.name),
    };
    await writeInteractionsCsv(result.interactionsCsv, data.train, data.fields);
    await writeInteractionsCsv(result.candidatesCsv, data.candidates, data.fields);
    if (opts.formats.includes('tfjs')) {
      result.tfjsModelJson = path.join(outDir, `${kind}-tfjs`, 'model.json');
      await model.save(fileSystemSaveHandler(result.tfjsModelJson));
    }
    if (opts.formats.includes('onnx')) {
      result.onnxPath = path.join(outDir, `${kind}.onnx`);
      await exportLayersModelToOnnx(model, result.onnxPath, {
        graphName: kind.replace('-', '_'),
        metadata: { sample_kind: kind, sample_seed: String(opts.seed), sample_size: opts.size },
      });
    }
    return result;
  } finally {
    // frees the variables, so the next model built in this process gets unsuffixed weight names
    model.dispose();
  }
}
