// Quantization on models PyTorch trained and exported (test/fixtures/pytorch/exports.ts): int3
// tables run in ONNX Runtime and keep the ranking, and int8 assembled from table shards is the
// one-process model byte for byte, on logit and sigmoid NeuMF, two-tower and DeepFM exports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/core/model/read-model.js';
import { quantizeModel, quantizeShard } from '../../src/core/compress/quantize.js';
import { compareModels } from '../../src/core/eval/evaluate.js';
import { pytorchExports, sampleFeeds } from '../fixtures/pytorch/exports.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-quantize-pytorch-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('PyTorch exports, int3 tables: the model runs in ORT on the exported inputs, and user/item models keep >= 90% of NDCG@10', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const dir = tempDir(t);
  for (const m of e.models) {
    const ir = await readModel(path.join(e.dir, m.file));
    const o = await quantizeModel(ir, { dtype: 'int3', verify: false });
    assert.ok(o.changes.length >= 2, `${m.file}: ${o.changes.length} tables quantized`);
    for (const c of o.changes) {
      // DeepFM's 1-wide linear tables: int3 rows would take a byte, as int8's do, so they are int8
      if (c.before.shape[1] === 1) assert.match(c.action, /^int8 symmetric with one scale for the table/, `${m.file}: ${c.tensor}`);
      else assert.match(c.action, /^int3 per-row asymmetric \(3-bit codes in a 2-bit and a 1-bit plane/, `${m.file}: ${c.tensor}`);
    }
    const out = path.join(dir, `int3-${m.file}`);
    await o.write(out);
    const s = await ort.InferenceSession.create(out);
    const scores = (await s.run(sampleFeeds(m)))[s.outputNames[0]].data as Float32Array;
    assert.equal(scores.length, m.sample.scores.length, m.file);
    assert.ok(scores.every((x) => Number.isFinite(x)), `${m.file}: non-finite scores`);
    if (m.inputs.join() === 'user,item') {
      const r = await compareModels(path.join(e.dir, m.file), out, { candidates: path.join(e.dir, m.candidates), k: 10, latency: false });
      assert.ok(r.ndcg && r.ndcg.after / r.ndcg.before >= 0.9, `${m.file}: NDCG@10 ${r.ndcg?.before} -> ${r.ndcg?.after}`);
    }
  }
});

test('PyTorch exports, int8 in two table shards: the assembled model equals the one-process model byte for byte', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const dir = tempDir(t);
  for (const m of e.models) {
    const ir = await readModel(path.join(e.dir, m.file));
    const shards = [0, 1].map((index) => path.join(dir, `${m.file}-${index + 1}.qshard`));
    for (const [index, f] of shards.entries()) await quantizeShard(ir, { dtype: 'int8' }, { index, count: 2 }, f);
    const one = path.join(dir, 'one', m.file);
    const assembled = path.join(dir, 'assembled', m.file);
    for (const d of [one, assembled]) fs.mkdirSync(path.dirname(d), { recursive: true });
    await (await quantizeModel(ir, { dtype: 'int8', verify: false })).write(one);
    await (await quantizeModel(ir, { dtype: 'int8', verify: false, fromShards: shards })).write(assembled);
    assert.ok(fs.readFileSync(one).equals(fs.readFileSync(assembled)), `${m.file}: the assembled model differs`);
  }
});
