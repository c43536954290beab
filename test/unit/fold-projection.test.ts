import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { foldIntoKernel } from '../../src/core/compress/fold-projection.js';
import { factorizeModel } from '../../src/core/compress/factorize.js';
import { readModel } from '../../src/core/model/read-model.js';
import { scoreModel } from '../../src/core/eval/evaluate.js';
import { fieldsMatrix, readInteractions } from '../../src/core/eval/interactions.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import { pytorchExports, sampleFeeds } from '../fixtures/pytorch/exports.js';
import * as ort from 'onnxruntime-node';

const fixtureDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-fold-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

test('foldIntoKernel: rows (axis 0) and columns (axis 1) of each slice become P . slice; the others are copied', () => {
  // K [5, 2]: rows 0..4 = [1,2] [3,4] [5,6] [7,8] [9,10]; fold rows 1..2 with P [1, 2] = [1, -1],
  // rows 3..4 with P [3, 2] = [[1,0],[0,1],[2,2]]
  const k = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const rows = foldIntoKernel(k, [5, 2], [
    { axis: 0, offset: 3, width: 2, rank: 3, proj: Float32Array.from([1, 0, 0, 1, 2, 2]) },
    { axis: 0, offset: 1, width: 2, rank: 1, proj: Float32Array.from([1, -1]) },
  ]);
  assert.deepEqual(rows.shape, [5, 2]);
  // row 0; [3,4]-[5,6]; [7,8]; [9,10]; 2[7,8]+2[9,10]
  assert.deepEqual([...rows.values], [1, 2, -2, -2, 7, 8, 9, 10, 32, 36]);

  // the same kernel stored transposed (Gemm transB: [out 2, in 5]): columns fold the same way
  const kt = Float32Array.from([1, 3, 5, 7, 9, 2, 4, 6, 8, 10]);
  const cols = foldIntoKernel(kt, [2, 5], [
    { axis: 1, offset: 1, width: 2, rank: 1, proj: Float32Array.from([1, -1]) },
    { axis: 1, offset: 3, width: 2, rank: 3, proj: Float32Array.from([1, 0, 0, 1, 2, 2]) },
  ]);
  assert.deepEqual(cols.shape, [2, 5]);
  assert.deepEqual([...cols.values], [1, -2, 7, 9, 32, 2, -2, 8, 10, 36]);

  // a rank-1 fold shrinks the axis: [5, 2] -> [4, 2]
  const shrink = foldIntoKernel(k, [5, 2], [{ axis: 0, offset: 0, width: 2, rank: 1, proj: Float32Array.from([0.5, 0.5]) }]);
  assert.deepEqual([shrink.shape, [...shrink.values]], [[4, 2], [2, 3, 5, 6, 7, 8, 9, 10]]);

  assert.throws(() => foldIntoKernel(k, [5, 2], [
    { axis: 0, offset: 0, width: 2, rank: 1, proj: Float32Array.from([1, 1]) },
    { axis: 0, offset: 1, width: 2, rank: 1, proj: Float32Array.from([1, 1]) },
  ]), /overlap/);
  assert.throws(() => foldIntoKernel(k, [5, 2], [{ axis: 0, offset: 0, width: 2, rank: 2, proj: Float32Array.from([1, 1]) }]), /not \[2, 2\]/);
});

async function scores(model: string, csv: string, deepfm: boolean): Promise<Float32Array> {
  const t = await readInteractions(csv, { extraColumns: deepfm ? 'all' : undefined });
  return scoreModel(model, { user: t.user, item: t.item, fields: deepfm ? fieldsMatrix(t) : undefined }, { backend: 'cpu' });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// which tables fold: NeuMF's MLP tables (Concat -> MatMul) and a two-tower's (straight into each
// tower); NeuMF's GMF tables and every DeepFM table meet another table element-wise and keep a projection
const expected = {
  neumf: { 'user_mlp_embedding/embeddings': ['mlp_dense_0/kernel'], 'item_mlp_embedding/embeddings': ['mlp_dense_0/kernel'] },
  'two-tower': { 'user_embedding/embeddings': ['user_tower_0/kernel'], 'item_embedding/embeddings': ['item_tower_0/kernel'] },
  deepfm: {},
} as const;

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  for (const format of ['onnx', 'tfjs'] as const) {
    test(`${kind} ${format}: a folded factorization scores as the unfolded one, with fewer parameters and no projection tensor`, async () => {
      const fx = await writeTinyFixtures(fixtureDir);
      const src = format === 'onnx' ? fx.models[kind].onnxPath! : fx.models[kind].tfjsModelJson!;
      const ir = await readModel(src);
      const out = (name: string) => (format === 'onnx' ? path.join(work, `${kind}-${name}.onnx`) : path.join(work, `${kind}-${name}`, 'model.json'));
      const folded = await factorizeModel(ir, { tensors: 'embeddings', rank: 3 });
      const plain = await factorizeModel(ir, { tensors: 'embeddings', rank: 3, fold: false });
      assert.deepEqual(Object.fromEntries(folded.factorized.filter((f) => f.foldedInto).map((f) => [f.tensor, f.foldedInto])), expected[kind]);
      assert.equal(plain.factorized.some((f) => f.foldedInto), false);
      for (const f of folded.factorized.filter((x) => !x.foldedInto)) assert.match(f.notFolded ?? '', /meet|cannot follow/, f.tensor);
      await folded.write(out('folded'));
      await plain.write(out('plain'));
      const csv = fx.models[kind].candidatesCsv;
      const d = maxAbsDiff(await scores(out('folded'), csv, kind === 'deepfm'), await scores(out('plain'), csv, kind === 'deepfm'));
      assert.ok(d < 1e-5, `max |score diff| ${d}`);

      const after = await readModel(out('folded'));
      const names = new Set(after.tensors.map((t) => t.name));
      for (const f of folded.factorized) {
        const proj = format === 'onnx' ? `${f.tensor}_proj` : `${f.tensor.split('/')[0]}_proj/kernel`;
        assert.equal(names.has(proj), !f.foldedInto, `${proj} present only where not folded`);
      }
      // each absorbing kernel: its input axis lost (d - r) per folded table, as the change says
      for (const kernel of new Set(folded.factorized.flatMap((f) => f.foldedInto ?? []))) {
        const before = ir.tensors.find((t) => t.name === kernel)!.shape;
        const now = after.tensors.find((t) => t.name === kernel)!.shape;
        const lost = folded.factorized.filter((f) => f.foldedInto?.includes(kernel)).reduce((n, f) => n + f.shape[1] - f.rank, 0);
        assert.equal(before[0] - now[0] + (before[1] - now[1]), lost, kernel);
        assert.deepEqual(folded.changes.find((c) => c.tensor === kernel)!.after[0].shape, now);
      }
      const paramsOf = (o: typeof folded) => o.factorized.reduce((n, f) => n + f.paramsAfter, 0);
      if (Object.keys(expected[kind]).length) assert.ok(paramsOf(folded) < paramsOf(plain), `${paramsOf(folded)} < ${paramsOf(plain)}`);
      else assert.equal(paramsOf(folded), paramsOf(plain));
    });
  }
}

test('PyTorch exports (Gemm with transB, logits out): folded factorizations score as unfolded ones; the NeuMF MLP tables fold into the first Gemm', async (t) => {
  const ex = pytorchExports();
  if (!ex) return t.skip('PyTorch is not installed');
  const run = async (file: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> => {
    const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
    try {
      return Float32Array.from((await s.run(feeds))[s.outputNames[0]].data as Float32Array);
    } finally {
      await s.release();
    }
  };
  const seen: string[] = [];
  for (const m of ex.models) {
    const src = path.join(ex.dir, m.file);
    const ir = await readModel(src);
    const folded = await factorizeModel(ir, { tensors: 'embeddings', rank: 4 });
    const plain = await factorizeModel(ir, { tensors: 'embeddings', rank: 4, fold: false });
    const a = path.join(work, `pt-folded-${m.file}`);
    const b = path.join(work, `pt-plain-${m.file}`);
    await folded.write(a);
    await plain.write(b);
    const feeds = sampleFeeds(m);
    const d = maxAbsDiff(await run(a, feeds), await run(b, feeds));
    assert.ok(d < 1e-4, `${m.file}: max |logit diff| ${d}`);
    for (const f of folded.factorized.filter((x) => x.foldedInto)) {
      seen.push(`${f.tensor} -> ${f.foldedInto!.join(',')}`);
      // a Gemm with transB stores [out, in]: the columns of the folded block shrink
      const k = (await readModel(a)).tensors.find((x) => x.name === f.foldedInto![0])!;
      const before = ir.tensors.find((x) => x.name === f.foldedInto![0])!;
      assert.ok(k.shape[0] * k.shape[1] < before.shape[0] * before.shape[1], `${k.name} [${before.shape}] -> [${k.shape}]`);
    }
    assert.ok(fs.statSync(a).size <= fs.statSync(b).size, m.file);
  }
  assert.ok(seen.includes('embed_user_MLP.weight -> MLP_layers.0.weight') && seen.includes('embed_item_MLP.weight -> MLP_layers.0.weight'), seen.join('; '));
});
