import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { fileSystemLoadHandler } from '../../src/core/model/tfjs-io.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { rankingMetrics } from '../../src/core/samples/models.js';
import { layersModelToOnnx } from '../../src/core/samples/to-onnx.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const dir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

function readCsv(file: string): { header: string[]; rows: number[][] } {
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  return { header: lines[0].split(','), rows: lines.slice(1).map((l) => l.split(',').map(Number)) };
}

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  test(`${kind}: ONNX export gives the TF.js predictions (max abs diff <= 1e-5) in onnxruntime-node`, async () => {
    await initTfjs('auto');
    const fx = await writeTinyFixtures(dir);
    const r = fx.models[kind];
    assert.ok(r.metrics.hitRate > 2 * r.metrics.randomHitRate, `trained HR@10 ${r.metrics.hitRate}`);

    const { header, rows } = readCsv(r.candidatesCsv);
    assert.deepEqual(header.slice(0, 4), ['user', 'item', 'label', 'timestamp']);
    const n = rows.length;
    const tfModel = await tf.loadLayersModel(fileSystemLoadHandler(r.tfjsModelJson!));
    const session = await ort.InferenceSession.create(r.onnxPath!);
    let tfScores: Float32Array;
    let feeds: Record<string, ort.Tensor>;
    if (kind === 'deepfm') {
      // fields = user, item, then the extra columns in CSV order
      const F = 2 + header.length - 4;
      assert.equal(F, 6);
      const fv = new Int32Array(n * F);
      rows.forEach((row, i) => {
        fv[i * F] = row[0];
        fv[i * F + 1] = row[1];
        for (let f = 2; f < F; f++) fv[i * F + f] = row[f + 2];
      });
      tfScores = (tfModel.predict(tf.tensor2d(fv, [n, F], 'int32')) as tf.Tensor).dataSync() as Float32Array;
      feeds = { fields: new ort.Tensor('int64', BigInt64Array.from(fv, BigInt), [n, F]) };
    } else {
      const users = Int32Array.from(rows, (row) => row[0]);
      const items = Int32Array.from(rows, (row) => row[1]);
      tfScores = (tfModel.predict([tf.tensor2d(users, [n, 1], 'int32'), tf.tensor2d(items, [n, 1], 'int32')]) as tf.Tensor).dataSync() as Float32Array;
      feeds = {
        user: new ort.Tensor('int64', BigInt64Array.from(users, BigInt), [n]),
        item: new ort.Tensor('int64', BigInt64Array.from(items, BigInt), [n]),
      };
    }
    const out = await session.run(feeds);
    assert.deepEqual(session.outputNames, ['score']);
    assert.deepEqual(out.score.dims, [n, 1]);
    const onnxScores = out.score.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < n; i++) maxDiff = Math.max(maxDiff, Math.abs(onnxScores[i] - tfScores[i]));
    assert.ok(maxDiff <= 1e-5, `max abs diff ${maxDiff}`);
    // the saved model is the trained one: same HR@10 as recorded at training time
    assert.equal(rankingMetrics(tfScores, r.candidatesPerUser, 10).hitRate, r.metrics.hitRate);

    // the graph uses the plain ops analysis expects: Gather on named embedding tables
    const proto = onnx.ModelProto.decode(fs.readFileSync(r.onnxPath!));
    const ops = new Set(proto.graph!.node!.map((nd) => nd.opType));
    for (const op of ['Gather', 'MatMul', 'Add', 'Sigmoid']) assert.ok(ops.has(op), op);
    const tables = proto.graph!.initializer!.filter((t) => t.name!.endsWith('/embeddings')).map((t) => t.name);
    assert.ok(tables.includes(kind === 'neumf' ? 'item_gmf_embedding/embeddings' : 'item_embedding/embeddings'));
    await session.release();
  });
}

test('to-onnx refuses layers it cannot translate, naming the layer', async () => {
  await initTfjs('auto');
  const user = tf.input({ shape: [1], dtype: 'int32', name: 'user' });
  const e = tf.layers.embedding({ inputDim: 5, outputDim: 3, name: 'emb' }).apply(user) as tf.SymbolicTensor;
  const f = tf.layers.flatten({ name: 'flat' }).apply(e) as tf.SymbolicTensor;
  const d = tf.layers.dropout({ rate: 0.5, name: 'drop' }).apply(f) as tf.SymbolicTensor;
  const o = tf.layers.dense({ units: 1, activation: 'softmax', name: 'out' }).apply(d) as tf.SymbolicTensor;
  assert.throws(() => layersModelToOnnx(tf.model({ inputs: user, outputs: o })), /layer 'drop' of class Dropout is not supported/);
  const o2 = tf.layers.dense({ units: 1, activation: 'softmax', name: 'out2' }).apply(f) as tf.SymbolicTensor;
  assert.throws(() => layersModelToOnnx(tf.model({ inputs: user, outputs: o2 })), /activation 'softmax' of layer 'out2' is not supported/);
});
