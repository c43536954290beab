// Quantization on models PyTorch trained and exported (test/fixtures/pytorch/exports.ts): int3
// tables and int4 tables with byte scales run in ONNX Runtime and keep the ranking, and int8
// assembled from table shards is the one-process model byte for byte, on logit and sigmoid
// NeuMF, two-tower and DeepFM exports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/core/model/read-model.js';
import { quantizeModel, quantizeShard } from '../../src/core/compress/quantize.js';
import { compareModels } from '../../src/core/eval/evaluate.js';
import { forEachDequantizedChunk } from '../../src/core/model/codes-data.js';
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

test('PyTorch exports, int4 with byte scales: read back as the values ORT computes, run on the exported inputs, user/item models keep >= 95% of NDCG@10', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  const dir = tempDir(t);
  let byteTables = 0;
  for (const m of e.models) {
    const ir = await readModel(path.join(e.dir, m.file));
    const o = await quantizeModel(ir, { dtype: 'int4', scales: 'byte', tensors: 'embeddings', verify: false });
    const out = path.join(dir, `int4byte-${m.file}`);
    await o.write(out);
    const q = await readModel(out);
    for (const c of q.tensors.filter((x) => x.codes?.rowByte !== undefined)) {
      byteTables++;
      // the reader's values are finite and as many as the table the export held
      let n = 0;
      await forEachDequantizedChunk(c, (name) => q.tensors.find((x) => x.name === name), 1 << 16, (chunk) => {
        assert.ok(chunk.every((v) => Number.isFinite(v)), `${m.file}: ${c.name}`);
        n += chunk.length;
      });
      assert.equal(n, c.codes!.shape[0] * c.codes!.shape[1], `${m.file}: ${c.name}`);
    }
    const s = await ort.InferenceSession.create(out);
    const scores = (await s.run(sampleFeeds(m)))[s.outputNames[0]].data as Float32Array;
    await s.release();
    assert.equal(scores.length, m.sample.scores.length, m.file);
    assert.ok(scores.every((x) => Number.isFinite(x)), `${m.file}: non-finite scores`);
    if (m.inputs.join() === 'user,item') {
      const r = await compareModels(path.join(e.dir, m.file), out, { candidates: path.join(e.dir, m.candidates), k: 10, latency: false });
      assert.ok(r.ndcg && r.ndcg.after / r.ndcg.before >= 0.95, `${m.file}: NDCG@10 ${r.ndcg?.before} -> ${r.ndcg?.after}`);
    }
  }
  assert.ok(byteTables >= 2, `${byteTables} tables stored with byte scales across the exports`);
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
