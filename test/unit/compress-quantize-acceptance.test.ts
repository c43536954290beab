// Issue 3 acceptance figures for quantization: ONNX NeuMF with 32- and 64-wide tables (1500
// users, 4000 items), trained with TF.js, quantized to int8 and float16; file size ratio and
// NDCG@10 on leave-one-out candidates (99 negatives) in onnxruntime-node.
// Slow (training: minutes on 2 cores), so it runs only with PRUNESCOPE_ACCEPTANCE=1; trained
// models are cached in the temp folder, so reruns take seconds.
//   PRUNESCOPE_ACCEPTANCE=1 node --test out/test/unit/compress-quantize-acceptance.test.js

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { candidateRanking } from '../../src/core/eval/metrics.js';
import { openOrtScorer } from '../../src/core/eval/ort-runner.js';
import { readModel } from '../../src/core/model/read-model.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { generateInteractions, InteractionRows } from '../../src/core/samples/interactions.js';
import { buildNeuMF, trainModel } from '../../src/core/samples/models.js';
import { exportLayersModelToOnnx } from '../../src/core/samples/to-onnx.js';

const enabled = process.env.PRUNESCOPE_ACCEPTANCE === '1';
const dir = path.join(os.tmpdir(), 'prunescope-quantize-acceptance-v1');
const USERS = 1500;
const ITEMS = 4000;

async function ndcg(file: string, c: InteractionRows): Promise<number> {
  const s = await openOrtScorer(file);
  try {
    return candidateRanking(c.user, c.label, await s.score({ user: c.user, item: c.item }, 4096), 10).ndcg;
  } finally {
    await s.close();
  }
}

const targets = { 32: { int8: 3.3, float16: 1.9 }, 64: { int8: 3.7, float16: 1.9 } } as const;

for (const dim of [32, 64] as const) {
  test(`NeuMF ${dim}-wide tables: int8 >= ${targets[dim].int8}x smaller with NDCG@10 within 1%, float16 >= 1.9x within 0.5%`, { skip: !enabled && 'set PRUNESCOPE_ACCEPTANCE=1' }, async () => {
    const data = generateInteractions({ users: USERS, items: ITEMS, seed: 5, meanPositivesPerUser: 25 });
    const file = path.join(dir, `neumf${dim}.onnx`);
    if (!fs.existsSync(file)) {
      await fs.promises.mkdir(dir, { recursive: true });
      await initTfjs('auto');
      const model = buildNeuMF({ users: USERS, items: ITEMS, gmfDim: dim, mlpDim: dim, hidden: [64, 32, 16], seed: 3 });
      await trainModel(model, data, { epochs: 3, batchSize: 512, lr: 0.005 });
      await exportLayersModelToOnnx(model, file);
      model.dispose();
    }
    const base = await ndcg(file, data.candidates);
    assert.ok(base > 0.3, `the float model learned (NDCG@10 ${base})`);
    const ir = await readModel(file);
    for (const dtype of ['int8', 'float16'] as const) {
      const o = await quantizeModel(ir, { dtype });
      const out = path.join(dir, `neumf${dim}-${dtype}.onnx`);
      await o.write(out);
      const ratio = fs.statSync(file).size / fs.statSync(out).size;
      const q = await ndcg(out, data.candidates);
      const rel = Math.abs(q - base) / base;
      console.log(`NeuMF ${dim}: ${dtype} ${fs.statSync(file).size} -> ${fs.statSync(out).size} bytes (${ratio.toFixed(3)}x), NDCG@10 ${base.toFixed(4)} -> ${q.toFixed(4)} (${(100 * rel).toFixed(3)}% rel), probe max |d| ${o.outputDiff?.maxAbsDiff.toExponential(2)}`);
      assert.ok(ratio >= targets[dim][dtype], `${dtype} ratio ${ratio}`);
      assert.ok(rel <= (dtype === 'int8' ? 0.01 : 0.005), `${dtype} NDCG change ${rel}`);
    }
  });
}
