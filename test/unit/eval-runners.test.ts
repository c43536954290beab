import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compareModels, evaluateModel, modelVocab, openScorer, scoreModel } from '../../src/core/eval/evaluate.js';
import { fieldsMatrix, readInteractions } from '../../src/core/eval/interactions.js';
import { measureLatency, measurePairedLatency, pairedVerdict, percentile } from '../../src/core/eval/latency.js';
import type { Scorer } from '../../src/core/eval/ort-runner.js';
import { bindInputs } from '../../src/core/eval/input-binding.js';
import { modelSize } from '../../src/core/eval/size.js';
import { readModel } from '../../src/core/model/read-model.js';
import { evalCommand } from '../../src/cli/eval-command.js';
import { benchCommand } from '../../src/cli/bench-command.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import { onnx } from 'onnx-proto';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';

const dir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

test('eval --data with star ratings on a model that outputs a probability: RMSE and MAE come with a note that the scales differ', async () => {
  const fx = await writeTinyFixtures(dir);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-eval-stars-'));
  const stars = path.join(work, 'ratings.csv');
  fs.writeFileSync(stars, 'userId,movieId,rating\n0,1,4.5\n1,2,1\n2,3,3\n');
  for (const model of [fx.models.neumf.onnxPath!, fx.models.neumf.tfjsModelJson!]) {
    const e = await evaluateModel(model, { data: stars });
    assert.ok(e.rmse! > 0 && e.mae! > 0);
    assert.equal(e.auc, undefined);
    assert.match(e.labelsAsRatings ?? '', /ratings\.csv: RMSE and MAE compare this model's (Sigmoid|Dense\(activation=sigmoid\)) output \(a probability, 0 to 1\) with rating values up to 4\.5: the model was not trained on this scale/, model);
  }
});

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  test(`${kind}: ORT runner equals TF.js runner within 1e-5, and evaluateModel gives the training-time HR/NDCG in both`, async () => {
    const fx = await writeTinyFixtures(dir);
    const r = fx.models[kind];
    const t = await readInteractions(r.candidatesCsv, { extraColumns: kind === 'deepfm' ? 'all' : undefined });
    const batch = { user: t.user, item: t.item, fields: t.extra.length > 0 ? fieldsMatrix(t) : undefined };
    // odd batch size: the last batch is partial
    const onnxScores = await scoreModel(r.onnxPath!, batch, { batchSize: 999 });
    const tfScores = await scoreModel(r.tfjsModelJson!, batch, { batchSize: 999 });
    assert.equal(onnxScores.length, t.rows);
    let maxDiff = 0;
    for (let i = 0; i < t.rows; i++) maxDiff = Math.max(maxDiff, Math.abs(onnxScores[i] - tfScores[i]));
    assert.ok(maxDiff <= 1e-5, `max abs diff ${maxDiff}`);

    for (const model of [r.onnxPath!, r.tfjsModelJson!]) {
      const e = await evaluateModel(model, { candidates: r.candidatesCsv, k: 10 });
      assert.equal(e.users, 300);
      assert.equal(e.candidatesPerUser, 100);
      assert.ok(Math.abs(e.hr! - r.metrics.hitRate) < 1e-12, `${model}: HR ${e.hr} vs ${r.metrics.hitRate}`);
      assert.ok(Math.abs(e.ndcg! - r.metrics.ndcg) < 1e-9, `${model}: NDCG ${e.ndcg} vs ${r.metrics.ndcg}`);
      assert.ok(e.auc! > 0.5 && e.auc! <= 1, `AUC ${e.auc}`);
      assert.equal(e.params, r.params);
      assert.equal(e.runtime, model.endsWith('.onnx') ? 'onnxruntime-node' : `tfjs-${r.backend}`);
    }
  });
}

test('size: every file of the model (model.json + shard), gzip per file', async () => {
  const fx = await writeTinyFixtures(dir);
  const json = fx.models.neumf.tfjsModelJson!;
  const s = await modelSize(json);
  const shard = path.join(path.dirname(json), 'group1-shard1of1.bin');
  assert.deepEqual(s.files.map((f) => path.basename(f.path)).sort(), ['group1-shard1of1.bin', 'model.json']);
  assert.equal(s.bytes, fs.statSync(json).size + fs.statSync(shard).size);
  assert.ok(s.gzipBytes > 0 && s.gzipBytes < s.bytes);
  const o = await modelSize(fx.models.neumf.onnxPath!);
  assert.equal(o.bytes, fs.statSync(fx.models.neumf.onnxPath!).size);
});

test('latency report shape for ORT and TF.js (no timing assertions)', async () => {
  const fx = await writeTinyFixtures(dir);
  for (const model of [fx.models.neumf.onnxPath!, fx.models.deepfm.tfjsModelJson!]) {
    const scorer = await openScorer(model);
    try {
      const rep = await measureLatency(scorer, { batchSizes: [1, 16], warmup: 1, runs: 5, userVocab: 300, itemVocab: 500, fieldVocab: [300, 500, 1, 1, 1, 1] });
      assert.equal(rep.runtime, scorer.runtime);
      assert.deepEqual(rep.points.map((p) => p.batch), [1, 16]);
      for (const p of rep.points) {
        assert.equal(p.runs, 5);
        assert.ok(p.p50Ms > 0 && p.p95Ms >= p.p50Ms && p.pairsPerSecond > 0);
      }
    } finally {
      await scorer.close();
    }
  }
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5), 5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95), 10);
});

test('paired latency: calls alternate in pairs, and the ratio is taken within each pair (a machine that slows down every other pair)', async () => {
  // a virtual clock: each call advances it by its model's cost times the machine's state
  let clock = 0;
  let calls = 0;
  const order: string[] = [];
  const slowPair = () => Math.floor((calls - 6) / 2) % 2 === 1; // after 3 warm-up pairs
  const fake = (name: string, cost: number): Scorer => ({
    runtime: 'fake',
    inputs: [],
    score: async (batch, n) => {
      assert.equal(n, 8);
      assert.equal(batch.user.length, 8);
      order.push(name);
      clock += cost * (calls >= 6 && slowPair() ? 10 : 1);
      calls++;
      return new Float32Array(8);
    },
    close: async () => {},
  });
  const r = await measurePairedLatency(fake('base', 1), fake('other', 2), 8, { warmup: 3, runs: 6, maxSecondsPerBatch: 100 }, () => clock);
  assert.deepEqual(order, [...'bobobo'.split(''), ...'bo ob bo ob bo ob'.replace(/ /g, '').split('')].map((c) => (c === 'b' ? 'base' : 'other')));
  assert.equal(r.pairs, 6);
  // within every pair the other model took twice as long; across pairs the machine was 10x slower in half
  assert.equal(r.ratio, 2);
  assert.equal(r.slowerShare, 1);
  assert.deepEqual(r.base, { p50Ms: 1, p95Ms: 10 });
  assert.deepEqual(r.other, { p50Ms: 2, p95Ms: 20 });
  // the time budget stops it, after at least 5 pairs
  clock = 0;
  calls = 0;
  const short = await measurePairedLatency(fake('base', 1), fake('other', 2), 8, { warmup: 3, runs: 100, maxSecondsPerBatch: 0.001 }, () => clock);
  assert.equal(short.pairs, 5);
});

test('input binding: by name, explicit names, fields; unknown inputs named', () => {
  const roles = bindInputs([{ name: 'user_id', shape: [-1] }, { name: 'movie', shape: [-1] }], { itemInput: 'movie' }, 'm');
  assert.deepEqual([...roles], [['movie', 'item'], ['user_id', 'user']]);
  assert.deepEqual([...bindInputs([{ name: 'input_1', shape: [-1, 6] }], {}, 'm')], [['input_1', 'fields']]);
  assert.deepEqual([...bindInputs([{ name: 'UserIndex', shape: [-1] }, { name: 'ItemIndex', shape: [-1] }], {}, 'm')], [['UserIndex', 'user'], ['ItemIndex', 'item']]);
  assert.throws(() => bindInputs([{ name: 'a', shape: [-1] }, { name: 'b', shape: [-1] }], {}, 'the ONNX model'), /cannot tell what input 'a' takes.*--user-input/);
  assert.throws(() => bindInputs([{ name: 'user', shape: [-1] }], { itemInput: 'x' }, 'm'), /has no input 'x'/);
  // a DeepFM exported with an input per field: past user and item, each reads the column of its name
  const perField = bindInputs([{ name: 'user', shape: ['batch'] }, { name: 'item', shape: ['batch'] }, { name: 'genre', shape: ['batch'] }, { name: 'year', shape: ['batch', 1] }], {}, 'm');
  assert.deepEqual([...perField], [['user', 'user'], ['item', 'item'], ['genre', 'column'], ['year', 'column']]);
  assert.throws(() => bindInputs([{ name: 'user', shape: [-1] }, { name: 'item', shape: [-1] }, { name: 'history', shape: [-1, 20] }], {}, 'm'), /cannot tell what input 'history' takes .*: it is not one id per row \(shape \[-1, 20\]\)/);
});

test('ids outside the model\'s tables: clear error naming the file, line and table size', async () => {
  const fx = await writeTinyFixtures(dir);
  const ir = await readModel(fx.models.neumf.onnxPath!);
  const v = modelVocab(ir);
  assert.deepEqual([v.user, v.item], [300, 500]);
  const deepfm = modelVocab(await readModel(fx.models.deepfm.tfjsModelJson!));
  assert.deepEqual(['item_category', 'user_segment', 'noise_a', 'noise_b', 'nothing'].map((c) => deepfm.ofColumn(c)), [16, 8, 40, 25, undefined]);
  const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-eval-')), 'cand.csv');
  fs.writeFileSync(bad, 'user,item,label\n0,1,1\n0,500,0\n');
  await assert.rejects(evaluateModel(fx.models.neumf.onnxPath!, { candidates: bad }), /cand\.csv: line 3: item 500 is outside the model's embedding table \(500 rows/);
});

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const write = process.stdout.write;
  let out = '';
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await fn();
    return { code, out };
  } finally {
    process.stdout.write = write;
  }
}

test('CLI eval --json and bench --json', async () => {
  const fx = await writeTinyFixtures(dir);
  const r = fx.models['two-tower'];
  const e = await capture(() => evalCommand([r.onnxPath!, '--candidates', r.candidatesCsv, '--k', '5', '--user-input', 'user', '--json']));
  assert.equal(e.code, 0);
  const j = JSON.parse(e.out);
  assert.equal(j.k, 5);
  assert.equal(j.users, 300);
  for (const key of ['hr', 'ndcg', 'auc', 'logloss', 'bytes', 'gzipBytes']) assert.equal(typeof j[key], 'number', key);
  assert.equal(j.runtime, 'onnxruntime-node');
  // 100 candidates a user at K = 5: a random order hits 5% of users; the model does far better
  assert.ok(Math.abs(j.chance.hr - 0.05) < 1e-12 && j.chance.ndcg > 0 && j.chance.ndcg < j.chance.hr, JSON.stringify(j.chance));
  assert.equal(j.chance.atChance, false);
  const text = await capture(() => evalCommand([r.onnxPath!, '--candidates', r.candidatesCsv, '--k', '5', '--user-input', 'user']));
  assert.match(text.out, /HR@5 {4}0\.\d{4} {2}\(a random order: 0\.0500\)/);
  assert.doesNotMatch(text.out, /warning/);
  // the same candidates with each user's positive moved to another of its rows: the model is at chance, and says so
  const [header, ...lines] = fs.readFileSync(r.candidatesCsv, 'utf8').trim().split('\n');
  const moved = lines.map((l, i) => {
    const f = l.split(',');
    f[2] = lines[i - 1]?.split(',')[0] === f[0] && lines[i - 1].split(',')[2] === '1' ? '1' : '0';
    return f.join(',');
  });
  const off = path.join(dir, 'two-tower-moved-positives.csv');
  fs.writeFileSync(off, [header, ...moved].join('\n') + '\n');
  const atChance = await capture(() => evalCommand([r.onnxPath!, '--candidates', off, '--k', '5', '--user-input', 'user']));
  assert.match(atChance.out, /warning {2}the model ranks these candidates no better than a random order/);
  const b = await capture(() => benchCommand([r.tfjsModelJson!, '--batch', '1,8', '--runs', '5', '--json']));
  assert.equal(b.code, 0);
  const bj = JSON.parse(b.out);
  assert.deepEqual(bj.latency.points.map((p: { batch: number }) => p.batch), [1, 8]);
  assert.equal(bj.bytes, (await modelSize(r.tfjsModelJson!)).bytes);
  await assert.rejects(evalCommand([r.onnxPath!]), /give --candidates/);
  await assert.rejects(benchCommand([r.onnxPath!, '--batch', '0']), /--batch must be a positive integer/);
});

test('compareModels: before/after report of a model against its TF.js twin', async () => {
  const fx = await writeTinyFixtures(dir);
  const r = fx.models.neumf;
  const rep = await compareModels(r.onnxPath!, r.tfjsModelJson!, { candidates: r.candidatesCsv, latency: { batchSizes: [1], runs: 5, warmup: 1 } });
  assert.equal(rep.params.before, r.params);
  assert.equal(rep.params.relative, 0);
  assert.ok(Math.abs(rep.ndcg!.relative!) < 1e-9);
  assert.equal(rep.bytes.before, fs.statSync(r.onnxPath!).size);
  assert.equal(rep.latency.length, 1);
  assert.equal(typeof rep.latency[0].withinNoise, 'boolean');
  // the verdict comes from paired calls: their ratio is in the report
  assert.ok(rep.latency[0].pairedRatio! > 0, String(rep.latency[0].pairedRatio));
  assert.deepEqual(
    [{ ratio: 2.3, slowerShare: 0.9 }, { ratio: 0.5, slowerShare: 0.1 }, { ratio: 1.3, slowerShare: 0.6 }, { ratio: 1.04, slowerShare: 1 }].map(pairedVerdict),
    ['slower', 'faster', 'same', 'same'],
  );
  assert.match(rep.summary[0], /^Size on disk: \d+ -> \d+ bytes \((\d+\.\d\dx (smaller|larger)|the same size)\); gzip/);
  assert.match(rep.summary.join(' '), /NDCG@10: 0\.\d{4} -> 0\.\d{4} \([+-]0\.0%\)/);
});

test('a model whose inputs fix the batch (torch.onnx.export without dynamic_axes) runs in calls of that many rows, the last padded: same scores as with a dynamic batch', async () => {
  const fx = await writeTinyFixtures(dir);
  const r = fx.models.neumf;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-fixed-batch-'));
  const fixed = path.join(work, 'fixed.onnx');
  const proto = onnx.ModelProto.decode(fs.readFileSync(r.onnxPath!));
  for (const i of proto.graph!.input!) i.type!.tensorType!.shape!.dim![0] = onnx.TensorShapeProto.Dimension.create({ dimValue: 7 });
  fs.writeFileSync(fixed, onnx.ModelProto.encode(proto).finish());
  const t = await readInteractions(r.candidatesCsv);
  const batch = { user: t.user, item: t.item };
  const want = await scoreModel(r.onnxPath!, batch, { batchSize: 999 });
  // 30000 rows: 4285 calls of 7 and a last one of 5 real rows
  const got = await scoreModel(fixed, batch, { batchSize: 999 });
  assert.equal(t.rows % 7, 5);
  assert.deepEqual(got, want);
  const scorer = await openScorer(fixed);
  try {
    assert.equal(scorer.fixedBatch, 7);
    const lat = await measureLatency(scorer, { batchSizes: [10], runs: 5, warmup: 1 });
    assert.equal(lat.fixedBatch, 7);
  } finally {
    await scorer.close();
  }
  const e = await evaluateModel(fixed, { candidates: r.candidatesCsv, k: 10 });
  assert.ok(Math.abs(e.ndcg! - r.metrics.ndcg) < 1e-9, `NDCG ${e.ndcg} vs ${r.metrics.ndcg}`);
  fs.rmSync(work, { recursive: true, force: true });
});

test('a table stored [dim, ids] and gathered on axis 1 (torch.index_select(W, 1, ids)): read as a transposed embedding, its ids along shape[1]; eval scores ids past its dim', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-axis1-'));
  try {
    const users = 5, items = 40, dim = 4;
    const U = Float32Array.from({ length: dim * users }, (_, i) => Math.sin(i + 1));
    const V = Float32Array.from({ length: items * dim }, (_, i) => Math.cos(i * 0.7));
    const file = path.join(work, 'mf_t.onnx');
    await writeOnnxFile(
      file,
      new OnnxGraphBuilder({ graphName: 'mf', opset: 11, irVersion: 6 })
        .input('user', 'int64', ['batch'])
        .input('item', 'int64', ['batch'])
        .output('score', 'float32', ['batch'])
        .initializer('user_factors', 'float32', [dim, users], U)
        .initializer('item_embedding.weight', 'float32', [items, dim], V)
        .node('Gather', ['user_factors', 'user'], ['u_t'], { axis: 1 }, { name: 'gather_user' })
        .node('Transpose', ['u_t'], ['u'], { perm: [1, 0] }, { name: 'transpose_user' })
        .node('Gather', ['item_embedding.weight', 'item'], ['v'], {}, { name: 'gather_item' })
        .node('Mul', ['u', 'v'], ['uv'], {}, { name: 'mul' })
        .node('ReduceSum', ['uv'], ['score'], { axes: [1], keepdims: 0 }, { name: 'sum' })
        .toModelProto(),
    );
    const ir = await readModel(file);
    const t = ir.tensors.find((x) => x.name === 'user_factors')!;
    assert.deepEqual([t.role, t.transposed], ['embedding', true]);
    assert.equal(ir.tensors.find((x) => x.name === 'item_embedding.weight')!.transposed, undefined);
    assert.equal(modelVocab(ir).user, users);
    // user 4 is past the table's 4 rows of coordinates but inside its 5 ids: scored, not refused
    const csv = path.join(work, 'c.csv');
    const lines = ['user,item,label'];
    for (let u = 0; u < users; u++) for (let i = 0; i < 10; i++) lines.push(`${u},${(u * 7 + i) % items},${i === 0 ? 1 : 0}`);
    fs.writeFileSync(csv, lines.join('\n') + '\n');
    const e = await evaluateModel(file, { candidates: csv, k: 5 });
    assert.equal(e.users, users);
    const s = await scoreModel(file, { user: Int32Array.from([4]), item: Int32Array.from([3]) });
    let want = 0;
    for (let d = 0; d < dim; d++) want += U[d * users + 4] * V[3 * dim + d];
    assert.ok(Math.abs(s[0] - want) < 1e-5, `${s[0]} vs ${want}`);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('a DeepFM exported with one input per field (user, item, genre): each extra input reads the data column of its name, in ORT; a file without that column is refused naming it', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-per-field-'));
  try {
    const users = 6, items = 30, genres = 4, dim = 3;
    const U = Float32Array.from({ length: users * dim }, (_, i) => Math.sin(i + 1));
    const V = Float32Array.from({ length: items * dim }, (_, i) => Math.cos(i * 0.3));
    const G = Float32Array.from({ length: genres }, (_, i) => 0.5 * i - 1);
    const file = path.join(work, 'per_field.onnx');
    await writeOnnxFile(
      file,
      new OnnxGraphBuilder({ graphName: 'pf', opset: 11, irVersion: 6 })
        .input('user', 'int64', ['batch'])
        .input('item', 'int64', ['batch'])
        .input('genre', 'int64', ['batch'])
        .output('score', 'float32', ['batch'])
        .initializer('user_embedding', 'float32', [users, dim], U)
        .initializer('item_embedding', 'float32', [items, dim], V)
        .initializer('genre_bias', 'float32', [genres], G)
        .node('Gather', ['user_embedding', 'user'], ['u'], {}, { name: 'gu' })
        .node('Gather', ['item_embedding', 'item'], ['v'], {}, { name: 'gv' })
        .node('Gather', ['genre_bias', 'genre'], ['g'], {}, { name: 'gg' })
        .node('Mul', ['u', 'v'], ['uv'], {}, { name: 'mul' })
        .node('ReduceSum', ['uv'], ['dot'], { axes: [1], keepdims: 0 }, { name: 'sum' })
        .node('Add', ['dot', 'g'], ['score'], {}, { name: 'add' })
        .toModelProto(),
    );
    const rows: Array<[number, number, number, number]> = [];
    for (let u = 0; u < users; u++) for (let i = 0; i < 8; i++) rows.push([u, (u * 5 + i) % items, (u + i) % genres, i === 0 ? 1 : 0]);
    const csv = path.join(work, 'c.csv');
    // the genre column comes before item in the file: columns are found by name
    fs.writeFileSync(csv, 'user,genre,item,label\n' + rows.map(([u, i, g, l]) => `${u},${g},${i},${l}`).join('\n') + '\n');
    const scorer = await openScorer(file);
    try {
      assert.deepEqual(scorer.inputs.map((i) => [i.name, i.role]), [['user', 'user'], ['item', 'item'], ['genre', 'column']]);
    } finally {
      await scorer.close();
    }
    const e = await evaluateModel(file, { candidates: csv, k: 3 });
    assert.equal(e.users, users);
    // the same ranking by hand
    let ndcg = 0;
    for (let u = 0; u < users; u++) {
      const mine = rows.filter((r) => r[0] === u).map(([, i, g, l]) => {
        let s = G[g];
        for (let d = 0; d < dim; d++) s += U[u * dim + d] * V[i * dim + d];
        return { s, l };
      });
      const pos = mine.find((m) => m.l === 1)!.s;
      const rank = mine.filter((m) => m.l === 0 && m.s >= pos).length;
      if (rank < 3) ndcg += 1 / Math.log2(rank + 2);
    }
    assert.ok(Math.abs(e.ndcg! - ndcg / users) < 1e-9, `NDCG ${e.ndcg} vs ${ndcg / users}`);
    const noGenre = path.join(work, 'no-genre.csv');
    fs.writeFileSync(noGenre, 'user,item,label\n0,1,1\n0,2,0\n');
    await assert.rejects(evaluateModel(file, { candidates: noGenre }), /no-genre\.csv.*no column 'genre'/);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
