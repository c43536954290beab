// Option sets that several commands share, declared once (options.ts). Lightweight on purpose:
// main.ts reads every command's spec for the help without loading any engine code.

import { defineGroup, type PositionalSpec } from './options.js';

export const MODEL_POSITIONAL: PositionalSpec = { name: 'model', description: 'the model: a TF.js model.json or an .onnx file', required: true };

/** --k, the same wherever a ranking metric is computed (eval, compress, sensitivity, every compression command). */
export const K_OPTION = { kind: 'integer', min: 1, max: 1000, default: 10, description: 'the K of HR@K and NDCG@K' } as const;

/** Every compression command (prune, quantize, factorize, distill, finetune, run). */
export const COMPRESS_COMMON = defineGroup({
  options: {
    out: { kind: 'path', description: "where to write the compressed model, in the input's format: a .onnx file (its folder must exist), or a TF.js model's folder (made; its parent must exist)", defaultText: 'beside the input, named after the method' },
    force: { kind: 'boolean', description: 'replace --out if it exists' },
    'external-data': { kind: 'boolean', description: 'ONNX: write the output\'s tensors of 1 KiB or more to <out>.data (external data); a model read with external data keeps it anyway' },
    json: { kind: 'boolean', description: 'print the job result as JSON' },
    candidates: { kind: 'path', valueName: 'FILE.csv', description: 'leave-one-out candidates (per user one positive and its negatives): HR/NDCG before and after' },
    k: K_OPTION,
    'no-latency': { kind: 'boolean', description: 'skip the latency comparison' },
    progress: { kind: 'boolean', description: 'show the progress bar even when stderr is not a terminal' },
  },
});

/** Training-sample pruning of the training commands (finetune, distill). */
export const SAMPLE_PRUNING = defineGroup({
  options: {
    'sample-keep': { kind: 'number', min: 0, minExclusive: true, max: 1, valueName: 'FRACTION', description: 'after the warm-up, train on this share of the rows: the hardest ones' },
    'sample-by': { kind: 'choice', choices: ['loss', 'gradnorm'], default: 'loss', description: 'how rows are scored for --sample-keep' },
    'sample-warmup': { kind: 'integer', min: 1, max: 10000, defaultText: '1', description: 'epochs on all rows before the scoring starts' },
  },
  rules: [{ requires: 'sample-keep', when: ['sample-by', 'sample-warmup'] }],
});

/** --output-kind: what the model's output is, for every command that trains it (picks the loss). */
export const OUTPUT_KIND = defineGroup({
  options: {
    'output-kind': {
      kind: 'choice',
      choices: ['auto', 'probability', 'logit', 'rating'],
      defaultText: 'auto',
      description: "what the model's output is (picks the training loss); 'auto' reads the graph, else the scores on the data",
    },
  },
});

/** --engine: which training engine (train/engine-choice.ts). */
export const ENGINE = defineGroup({
  options: {
    engine: { kind: 'choice', choices: ['auto', 'compiled', 'tape'], defaultText: 'auto', description: "training engine: 'compiled' when the graph and backend allow it, or the 'tape'" },
  },
});

/** The model's input names, when they cannot be inferred. */
export const INPUT_NAMES = defineGroup({
  options: {
    'user-input': { kind: 'string', valueName: 'NAME', description: 'the model input that takes user ids', defaultText: 'inferred' },
    'item-input': { kind: 'string', valueName: 'NAME', description: 'the model input that takes item ids', defaultText: 'inferred' },
  },
});

export const FIELDS_INPUT = defineGroup({
  options: {
    'fields-input': { kind: 'string', valueName: 'NAME', description: 'the [batch, F] field-ids input of a DeepFM-style model', defaultText: 'inferred' },
  },
});

/** Where inference runs: the TF.js backend (model.json) or ORT's execution provider (.onnx). */
export const RUNTIME = defineGroup({
  options: {
    backend: {
      kind: 'choice',
      choices: ['auto', 'tfjs-node', 'webgpu', 'wasm', 'cpu'],
      defaultText: 'auto',
      invalidMessage: '--backend must be one of auto, tfjs-node, webgpu, wasm, cpu',
      description: 'the TF.js backend for model.json models',
    },
    ep: {
      kind: 'choice',
      choices: ['auto', 'cpu', 'webgpu', 'cuda'],
      defaultText: 'cpu, or $PRUNESCOPE_EP',
      invalidMessage: '--ep must be one of auto, cpu, webgpu, cuda',
      description: "ONNX Runtime's execution provider (.onnx models only); auto: CUDA, else WebGPU on a hardware adapter, else cpu",
    },
  },
});

/**
 * Work split into shards (analyze, quantize): one shard into a file (`--shard I/N --out F`), or
 * all of them on the job queue at `--redis` for `prunescope worker` processes (`--distribute N`).
 * `shard` and `distribute` describe what the command's shards are.
 */
export function shardingGroup(d: { shard: string; distribute: string; files: string; outHint: string }) {
  return defineGroup({
    options: {
      shard: { kind: 'string', valueName: 'I/N', description: d.shard },
      distribute: { kind: 'integer', min: 1, max: 100_000, valueName: 'N', description: d.distribute },
      redis: { kind: 'string', valueName: 'redis://HOST:6379', description: 'the Redis server of the job queue (with --distribute)' },
      'shard-dir': { kind: 'path', valueName: 'DIR', description: `where workers write ${d.files} (with --distribute; every worker must see it at this path)`, defaultText: 'a folder beside the model' },
    },
    rules: [
      { requires: 'out', when: ['shard'], message: `--shard I/N writes ${d.outHint}` },
      { requires: 'redis', when: ['distribute'] },
      { requires: 'distribute', when: ['redis'] },
      { requires: 'distribute', when: ['shard-dir'] },
    ],
  });
}
