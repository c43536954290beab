#!/usr/bin/env node
// Writes the fixture workspace the integration tests open in VS Code: a tiny ONNX model and a
// tiny TF.js layers model, with known shapes and a known number of exact zeros, plus
// `expected.json` stating what an analysis of each must report.
// Usage: node scripts/vscode-host/make-workspace.mjs <folder>
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/**
 * Deterministic values with chosen exact zeros. Non-zero values keep |x| >= 0.05 so that a
 * "near zero" threshold, if the analysis uses one, counts the same zeros as an exact test.
 */
function values(count, zeroAt, seed) {
  const out = new Float32Array(count);
  let s = seed >>> 0;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const mag = 0.05 + (s / 2 ** 32) * 0.9;
    out[i] = zeroAt.has(i) ? 0 : i % 2 === 0 ? mag : -mag;
  }
  return out;
}

const zerosIn = (arr) => arr.reduce((n, x) => n + (x === 0 ? 1 : 0), 0);
const product = (shape) => shape.reduce((a, b) => a * b, 1);
const bytesOf = (f32) => new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);

/** Gather(table[10,4], ids) -> MatMul(., w[4,2]): an embedding lookup and a projection. */
function writeOnnx(dir) {
  const table = values(40, new Set([12, 13, 14, 15]), 7); // row 3 entirely zero
  const proj = values(8, new Set([1, 6]), 11);
  const tensor = (name, dims, data) =>
    onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytesOf(data) });
  const valueInfo = (name, elemType, dims) =>
    onnx.ValueInfoProto.create({
      name,
      type: onnx.TypeProto.create({
        tensorType: onnx.TypeProto.Tensor.create({
          elemType,
          shape: onnx.TensorShapeProto.create({
            dim: dims.map((d) =>
              typeof d === 'string' ? onnx.TensorShapeProto.Dimension.create({ dimParam: d }) : onnx.TensorShapeProto.Dimension.create({ dimValue: d }),
            ),
          }),
        }),
      }),
    });
  const graph = onnx.GraphProto.create({
    name: 'tiny_recommender',
    node: [
      onnx.NodeProto.create({ name: 'lookup', opType: 'Gather', input: ['item_table', 'item_ids'], output: ['item_vec'], attribute: [
        onnx.AttributeProto.create({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }),
      ] }),
      onnx.NodeProto.create({ name: 'project', opType: 'MatMul', input: ['item_vec', 'proj_w'], output: ['scores'] }),
    ],
    initializer: [tensor('item_table', [10, 4], table), tensor('proj_w', [4, 2], proj)],
    input: [valueInfo('item_ids', onnx.TensorProto.DataType.INT64, ['batch'])],
    output: [valueInfo('scores', onnx.TensorProto.DataType.FLOAT, ['batch', 2])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'prunescope-fixtures',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 13 })],
    graph,
  });
  const file = path.join(dir, 'onnx', 'tiny.onnx');
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
  return {
    file: path.relative(dir, file),
    format: 'onnx',
    tensors: { item_table: [10, 4], proj_w: [4, 2] },
    totalParams: product([10, 4]) + product([4, 2]),
    totalZeros: zerosIn(table) + zerosIn(proj),
  };
}

/** Sequential(Embedding(10 -> 4), Flatten, Dense(2)) saved as a TF.js layers model. */
function writeTfjs(dir) {
  const embeddings = values(40, new Set([0, 1, 2, 3]), 3); // row 0 entirely zero
  const kernel = values(8, new Set([2, 5]), 5);
  const bias = values(2, new Set(), 9);
  const modelDir = path.join(dir, 'tfjs');
  mkdirSync(modelDir, { recursive: true });
  const weights = [
    { name: 'item_embedding/embeddings', shape: [10, 4], dtype: 'float32', data: embeddings },
    { name: 'score/kernel', shape: [4, 2], dtype: 'float32', data: kernel },
    { name: 'score/bias', shape: [2], dtype: 'float32', data: bias },
  ];
  const bin = Buffer.concat(weights.map((w) => Buffer.from(bytesOf(w.data))));
  writeFileSync(path.join(modelDir, 'group1-shard1of1.bin'), bin);
  const modelJson = {
    format: 'layers-model',
    generatedBy: 'TensorFlow.js tfjs-layers v4.22.0',
    convertedBy: null,
    modelTopology: {
      class_name: 'Sequential',
      config: {
        name: 'tiny_recommender',
        layers: [
          {
            class_name: 'Embedding',
            config: {
              name: 'item_embedding',
              trainable: true,
              batch_input_shape: [null, 1],
              dtype: 'float32',
              input_dim: 10,
              output_dim: 4,
              embeddings_initializer: { class_name: 'RandomUniform', config: { minval: -0.05, maxval: 0.05, seed: null } },
              embeddings_regularizer: null,
              activity_regularizer: null,
              embeddings_constraint: null,
              mask_zero: false,
              input_length: 1,
            },
          },
          { class_name: 'Flatten', config: { name: 'flatten', trainable: true, data_format: 'channels_last' } },
          {
            class_name: 'Dense',
            config: {
              name: 'score',
              trainable: true,
              units: 2,
              activation: 'linear',
              use_bias: true,
              kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
              bias_initializer: { class_name: 'Zeros', config: {} },
              kernel_regularizer: null,
              bias_regularizer: null,
              activity_regularizer: null,
              kernel_constraint: null,
              bias_constraint: null,
            },
          },
        ],
      },
      keras_version: 'tfjs-layers 4.22.0',
      backend: 'tensor_flow.js',
    },
    weightsManifest: [
      { paths: ['group1-shard1of1.bin'], weights: weights.map(({ name, shape, dtype }) => ({ name, shape, dtype })) },
    ],
  };
  const file = path.join(modelDir, 'model.json');
  writeFileSync(file, JSON.stringify(modelJson, null, 2) + '\n');
  return {
    file: path.relative(dir, file),
    format: 'tfjs-layers',
    tensors: Object.fromEntries(weights.map((w) => [w.name, w.shape])),
    totalParams: weights.reduce((n, w) => n + product(w.shape), 0),
    totalZeros: weights.reduce((n, w) => n + zerosIn(w.data), 0),
  };
}

/**
 * The tiny trained sample models (NeuMF, two-tower, DeepFM as TF.js and ONNX, with their
 * interaction and candidate CSVs) from test/fixtures/write-fixtures.ts, built once into a cache
 * beside the host (training takes ~30 s) and copied into the workspace's `samples/`.
 */
async function copyTrainedSamples(dir, cacheDir) {
  const compiled = path.join(REPO_ROOT, 'out', 'test', 'fixtures', 'write-fixtures.js');
  if (!existsSync(compiled)) throw new Error(`${compiled} is missing: run \`npm run build:tests\` first`);
  const require = createRequire(import.meta.url);
  const { writeTinyFixtures } = require(compiled);
  const fx = await writeTinyFixtures(cacheDir);
  const samples = path.join(dir, 'samples');
  cpSync(cacheDir, samples, { recursive: true });
  const rel = (p) => path.relative(dir, path.join(samples, path.relative(cacheDir, p)));
  return Object.fromEntries(
    Object.entries(fx.models).map(([kind, m]) => [
      kind,
      { tfjs: rel(m.tfjsModelJson), onnx: rel(m.onnxPath), candidates: rel(m.candidatesCsv), interactions: rel(m.interactionsCsv) },
    ]),
  );
}

/**
 * A small gradient-boosted tree ensemble (ai.onnx.ml TreeEnsembleRegressor, 20 trees of depth 3
 * over 8 features) trained by test/fixtures/tree-trainer.ts, and validation rows for it. Features
 * 0..3 carry the label, 4..5 are noise, 6..7 are constant (no split can use them): 4..7 are the
 * planted useless ones, 6..7 the unused ones.
 */
async function writeTrees(dir) {
  const compiled = (...p) => path.join(REPO_ROOT, 'out', ...p);
  const trainer = compiled('test', 'fixtures', 'tree-trainer.js');
  if (!existsSync(trainer)) throw new Error(`${trainer} is missing: run \`npm run build:tests\` first`);
  const require = createRequire(import.meta.url);
  const { makeCtrData, trainGbdt } = require(trainer);
  const { writeTreeEnsembleModel } = require(compiled('src', 'core', 'trees', 'onnx-trees.js'));
  const { formatTreeCsv } = require(compiled('src', 'core', 'trees', 'tree-data.js'));
  const F = 8;
  const constant = (d) => {
    for (let r = 0; r < d.X.rows; r++) {
      d.X.data[r * F + 6] = 0.5;
      d.X.data[r * F + 7] = 0.25;
    }
    return d;
  };
  const train = constant(makeCtrData(2000, F, 11));
  const valid = constant(makeCtrData(500, F, 12));
  const ensemble = trainGbdt(train, { trees: 20, maxDepth: 3, learningRate: 0.3, seed: 5 });
  mkdirSync(path.join(dir, 'trees'), { recursive: true });
  const file = path.join(dir, 'trees', 'gbdt.onnx');
  await writeTreeEnsembleModel(file, ensemble, { nFeatures: F });
  writeFileSync(path.join(dir, 'trees', 'gbdt-valid.csv'), formatTreeCsv(valid));
  return { file: path.relative(dir, file), csv: path.join('trees', 'gbdt-valid.csv'), trees: 20, features: F, useless: [4, 5, 6, 7], unused: [6, 7] };
}

/** Code that loads models, for the "Analyze model" CodeLens. */
function writeCode(dir) {
  writeFileSync(
    path.join(dir, 'serve.ts'),
    [
      "import * as tf from '@tensorflow/tfjs';",
      "import * as ort from 'onnxruntime-node';",
      '',
      'export async function load() {',
      "  const ranker = await tf.loadLayersModel('file://./tfjs/model.json');",
      "  const session = await ort.InferenceSession.create('onnx/tiny.onnx');",
      "  const missing = await ort.InferenceSession.create('onnx/missing.onnx');",
      '  return { ranker, session, missing };',
      '}',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'check.py'), ['import onnx', '', 'model = onnx.load("onnx/tiny.onnx")', 'print(len(model.graph.node))', ''].join('\n'));
}

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

export async function makeWorkspace(dir, opts = {}) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const expected = { onnx: writeOnnx(dir), tfjs: writeTfjs(dir) };
  if (opts.samplesCache) expected.samples = await copyTrainedSamples(dir, opts.samplesCache);
  if (opts.samplesCache) expected.trees = await writeTrees(dir);
  writeCode(dir);
  // A file that is not a model, for tests that must leave other files alone.
  writeFileSync(path.join(dir, 'README.md'), '# PruneScope integration-test workspace\n\nGenerated by scripts/vscode-host/make-workspace.mjs.\n');
  writeFileSync(path.join(dir, 'expected.json'), JSON.stringify(expected, null, 2) + '\n');
  return expected;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const dir = process.argv[2];
  if (!dir) {
    console.error('usage: node scripts/vscode-host/make-workspace.mjs <folder>');
    process.exit(2);
  }
  const cache = process.argv[3];
  console.log(JSON.stringify(await makeWorkspace(path.resolve(dir), cache ? { samplesCache: path.resolve(cache) } : {}), null, 2));
}
