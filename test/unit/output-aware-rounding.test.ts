// Output-aware rounding of low-bit tables: the factor, the coding (row and column grids, zeros
// kept), what it measures on real graphs (the tiny NeuMF, a DeepFM with a fields input), recipes
// whose later quantize steps reuse the first step's measurement, and the search's steps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { feedbackFactor, outputAwareBlocker } from '../../src/core/compress/output-aware-rounding.js';
import {
  dequantizeColumnsLowBit,
  dequantizeRowsLowBit,
  quantizeColumnsLowBit,
  quantizeRowsLowBit,
} from '../../src/core/compress/quantize-math.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { readModel } from '../../src/core/model/read-model.js';
import { runJobInProcess } from '../../src/core/jobs/run-job-in-process.js';
import { mulberry32 } from '../../src/core/samples/prng.js';
import type { CompressJobResult } from '../../src/shared/protocol.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import { pytorchExports } from '../fixtures/pytorch/exports.js';

const fixturesDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ps-output-aware-'));

/**
 * A random symmetric positive definite d x d matrix, as a score sees a table: a few directions
 * dominate (B B^T, B d x 3, plus 0.05 I), and a random table.
 */
function problem(seed: number, rows: number, d: number): { H: Float64Array; table: Float32Array } {
  const r = mulberry32(seed);
  const B = Array.from({ length: d * 3 }, () => r() - 0.5);
  const H = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
    let s = i === j ? 0.05 : 0;
    for (let k = 0; k < 3; k++) s += B[i * 3 + k] * B[j * 3 + k];
    H[i * d + j] = s;
  }
  const table = Float32Array.from({ length: rows * d }, () => (r() - 0.5) * 2);
  return { H, table };
}

/** sum over rows of e^T H e, e = the row's error */
function weighted(H: Float64Array, a: ArrayLike<number>, b: ArrayLike<number>, d: number): number {
  let s = 0;
  for (let r = 0; r < a.length / d; r++) {
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) s += (a[r * d + i] - b[r * d + i]) * H[i * d + j] * (a[r * d + j] - b[r * d + j]);
  }
  return s;
}

test('feedbackFactor: upper triangular U with U^T U = (H + 1% of its mean diagonal)^-1; an unreached column gets 1', () => {
  const d = 6;
  const { H } = problem(3, 1, d);
  const U = feedbackFactor(H, d);
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) assert.equal(U[i * d + j], 0);
  let mean = 0;
  for (let i = 0; i < d; i++) mean += H[i * d + i] / d;
  const damped = Float64Array.from(H, (v, k) => (k % (d + 1) === 0 ? v + 0.01 * mean : v));
  // (U^T U) (H + damping) = I
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) {
        let utu = 0;
        for (let m = 0; m < d; m++) utu += U[m * d + i] * U[m * d + k];
        s += utu * damped[k * d + j];
      }
      assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-9, `(${i}, ${j}): ${s}`);
    }
  }
  // a column no pair reached: the factor is 1 on it and 0 off it (rounded to nearest, passes nothing on)
  const H2 = Float64Array.from(H);
  for (let k = 0; k < d; k++) H2[2 * d + k] = H2[k * d + 2] = 0;
  const U2 = feedbackFactor(H2, d);
  for (let k = 0; k < d; k++) assert.equal(U2[2 * d + k], k === 2 ? 1 : 0);
  assert.throws(() => feedbackFactor(H, d + 1), /36 values for a 7 x 7 matrix/);
});

test('output-aware codes: the same scales, zero points and packing as rounding to nearest, less error as H sees it, zeros kept', () => {
  for (const [bits, d] of [[4, 16], [3, 12], [2, 9]] as const) {
    const { H, table } = problem(7 + bits, 300, d);
    table[5] = 0; // a pruned weight
    table[d + 3] = 0;
    const U = feedbackFactor(H, d);
    const near = quantizeRowsLowBit(table, 300, d, bits, true);
    const aware = quantizeRowsLowBit(table, 300, d, bits, true, U);
    assert.deepEqual(aware.scales, near.scales);
    assert.deepEqual(aware.zeroPoints, near.zeroPoints);
    assert.equal(aware.packed.length, near.packed.length);
    const a = dequantizeRowsLowBit(aware);
    const n = dequantizeRowsLowBit(near);
    assert.equal(a[5], 0);
    assert.equal(a[d + 3], 0);
    const [ea, en] = [weighted(H, table, a, d), weighted(H, table, n, d)];
    assert.ok(ea < 0.9 * en, `int${bits} rows: ${ea} vs ${en}`);
    // the weights' own error grows: it went where H does not look
    assert.ok(aware.rmse > near.rmse, `${aware.rmse} vs ${near.rmse}`);

    const nearCols = quantizeColumnsLowBit(table, 300, d, bits);
    const awareCols = quantizeColumnsLowBit(table, 300, d, bits, U);
    assert.deepEqual(awareCols.scales, nearCols.scales);
    assert.deepEqual(awareCols.zeroPoints, nearCols.zeroPoints);
    const ac = dequantizeColumnsLowBit(awareCols);
    assert.equal(ac[5], 0);
    const [eca, ecn] = [weighted(H, table, ac, d), weighted(H, table, dequantizeColumnsLowBit(nearCols), d)];
    assert.ok(eca < 0.9 * ecn, `int${bits} columns: ${eca} vs ${ecn}`);
    // with H = I (no column matters more than another, none seen through another) nothing is passed on
    const I = new Float64Array(d * d).map((_, k) => (k % (d + 1) === 0 ? 1 : 0));
    assert.deepEqual(quantizeRowsLowBit(table, 300, d, bits, true, feedbackFactor(I, d)).codes, near.codes);
  }
});

/** ORT scores of a model with user and item inputs on a candidates CSV (probabilities as logits). */
async function scores(file: string, csv: string, probability = true): Promise<{ z: Float64Array; per: number }> {
  const rows = fs.readFileSync(csv, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
  const ids = (c: number) => new ort.Tensor('int64', BigInt64Array.from(rows.map((r) => BigInt(r[c]))), [rows.length]);
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  const out = Object.values(await s.run({ user: ids(0), item: ids(1) }))[0].data as Float32Array;
  await s.release();
  let per = 0;
  while (per < rows.length && rows[per][0] === rows[0][0]) per++;
  return { z: Float64Array.from(out, (p) => (probability ? Math.log(p / (1 - p)) : p)), per };
}

/** Share of each user's candidate pairs whose order differs from the original's. */
function flips(a: Float64Array, b: Float64Array, per: number): number {
  let f = 0;
  let n = 0;
  for (let u = 0; u + per <= a.length; u += per) {
    for (let j = u; j < u + per; j++) {
      for (let k = j + 1; k < u + per; k++) {
        if ((a[j] - a[k]) * (b[j] - b[k]) < 0) f++;
        n++;
      }
    }
  }
  return f / n;
}

test('quantize int3 output-aware on the tiny NeuMF: the same size, fewer candidate pairs swapped than rounding to nearest; the settings checked', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const m = fx.models.neumf;
  const ir = await readModel(m.onnxPath!);
  const near = await quantizeModel(ir, { dtype: 'int3', verify: false });
  const aware = await quantizeModel(ir, { dtype: 'int3', rounding: 'output-aware', verify: false });
  assert.deepEqual(aware.settings.rounding, 'output-aware');
  assert.equal(aware.settings.calibration, undefined);
  assert.ok(aware.notes.some((n) => n.startsWith('Output-aware rounding: ') && n.includes('measured on 4800 random user x item pairs.')), aware.notes.join('\n'));
  assert.ok(aware.changes.every((c) => c.action.includes('output-aware rounding; ')));
  const [pn, pa] = [path.join(work, 'near.onnx'), path.join(work, 'aware.onnx')];
  await near.write(pn);
  await aware.write(pa);
  assert.equal(fs.statSync(pa).size, fs.statSync(pn).size);
  const base = await scores(m.onnxPath!, m.candidatesCsv);
  const [fn, fa] = [flips(base.z, (await scores(pn, m.candidatesCsv)).z, base.per), flips(base.z, (await scores(pa, m.candidatesCsv)).z, base.per)];
  assert.ok(fa < fn, `pairs swapped: output-aware ${fa}, nearest ${fn}`);
  // calibration pairs from a file: the candidates
  const fromFile = await quantizeModel(ir, { dtype: 'int3', rounding: 'output-aware', calibration: m.candidatesCsv, verify: false });
  assert.ok(fromFile.notes.some((n) => n.includes(`pairs of ${m.candidatesCsv}.`)), fromFile.notes.join('\n'));

  await assert.rejects(quantizeModel(ir, { dtype: 'int8', rounding: 'output-aware' }), (e: unknown) => e instanceof ModelFileError && /rounding 'output-aware' is for int4, int3 and int2 tables; int8 rounds to nearest/.test(e.message));
  await assert.rejects(quantizeModel(ir, { dtype: 'int4', calibration: m.candidatesCsv }), /calibration goes with rounding 'output-aware'/);
});

test("a fields model (DeepFM): random pairs cannot be made, so the tables are rounded to nearest and the note says why; on its training interactions they are not", async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const m = fx.models.deepfm;
  const ir = await readModel(m.onnxPath!);
  const plain = await quantizeModel(ir, { dtype: 'int4', rounding: 'output-aware', verify: false });
  assert.ok(plain.notes.some((n) => /^Output-aware rounding was asked for, but its input '.*' takes fields whose values random pairs cannot make up: give calibration pairs: every table was rounded to nearest\.$/.test(n)), plain.notes.join('\n'));
  const near = await quantizeModel(ir, { dtype: 'int4', verify: false });
  assert.deepEqual(plain.changes.map((c) => c.action), near.changes.map((c) => c.action));
  // the search asks first: rounded to nearest unless it has training interactions to measure on
  assert.match(outputAwareBlocker(ir) ?? '', /takes fields whose values random pairs cannot make up/);
  assert.equal(outputAwareBlocker(ir, m.interactionsCsv), undefined);
  assert.equal(outputAwareBlocker(await readModel(fx.models.neumf.onnxPath!)), undefined);
  assert.equal(outputAwareBlocker(await readModel(fx.models.neumf.tfjsModelJson!)), 'low-bit tables are ONNX only');
  const calibrated = await quantizeModel(ir, { dtype: 'int4', rounding: 'output-aware', calibration: m.interactionsCsv, verify: false });
  const aware = calibrated.changes.filter((c) => c.action.includes('output-aware rounding; '));
  assert.ok(aware.length > 0, calibrated.notes.join('\n'));
});

test('a recipe of two output-aware quantize steps: the second uses what the first measured (the graph then holds packed tables), and replays byte for byte', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const m = fx.models.neumf;
  const steps = [
    { method: 'quantize' as const, settings: { dtype: 'int4', tensors: ['user_gmf_embedding/embeddings', 'item_gmf_embedding/embeddings'], rounding: 'output-aware' } },
    { method: 'quantize' as const, settings: { dtype: 'int3', scales: 'column', tensors: ['user_mlp_embedding/embeddings', 'item_mlp_embedding/embeddings'], rounding: 'output-aware' } },
  ];
  const run = async (name: string) => {
    const out = path.join(work, `${name}.onnx`);
    const spec = { kind: 'compress' as const, path: m.onnxPath!, method: 'quantize' as const, settings: steps[0].settings, steps, outPath: out, tempDir: path.join(work, `${name}.tmp`) };
    const r = (await runJobInProcess(spec, new AbortController().signal, () => undefined)) as CompressJobResult;
    return { r, bytes: fs.readFileSync(out) };
  };
  const a = await run('two-a');
  const b = await run('two-b');
  assert.deepEqual(a.bytes, b.bytes);
  const oa = a.r.notes.filter((n) => n.startsWith('Output-aware rounding: '));
  assert.equal(oa.length, 2, a.r.notes.join('\n'));
  assert.ok(!oa[0].includes('by an earlier quantize step'));
  assert.ok(oa[1].includes('measured on 4800 random user x item pairs by an earlier quantize step of this recipe.'), oa[1]);
  assert.equal(a.r.changes.filter((c) => c.action.includes('output-aware rounding; ')).length, 4);
});

test('PyTorch exports (NeuMF with logit and sigmoid outputs, two-tower, DeepFM with a fields input): measured and rounded output-aware, the same size, no more pairs swapped', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  for (const m of e.models) {
    const file = path.join(e.dir, m.file);
    const ir = await readModel(file);
    const fields = m.inputs.includes('fields');
    // a fields model measures on its training interactions; the others on random pairs
    const calibration = fields ? path.join(e.dir, 'deepfm_train.csv') : undefined;
    const near = await quantizeModel(ir, { dtype: 'int3', verify: false });
    const aware = await quantizeModel(ir, { dtype: 'int3', rounding: 'output-aware', ...(calibration ? { calibration } : {}), verify: false });
    const note = aware.notes.find((n) => n.startsWith('Output-aware rounding: '));
    assert.ok(note && note.includes(fields ? `pairs of ${calibration}.` : 'random user x item pairs.'), `${m.file}: ${aware.notes.join('\n')}`);
    // DeepFM's 1-wide linear tables are int8 (packed rows would be no smaller): no codes to choose
    const packed = aware.changes.filter((c) => c.before.shape[1] !== 1);
    assert.ok(packed.length >= 2 && packed.every((c) => c.action.includes('output-aware rounding; ')), `${m.file}: ${aware.changes.map((c) => c.action).join('; ')}`);
    assert.ok(aware.changes.filter((c) => c.before.shape[1] === 1).every((c) => c.action.startsWith('int8 ')), m.file);
    const [pn, pa] = [path.join(work, `near-${m.file}`), path.join(work, `aware-${m.file}`)];
    await near.write(pn);
    await aware.write(pa);
    assert.equal(fs.statSync(pa).size, fs.statSync(pn).size, m.file);
    if (fields) continue;
    const csv = path.join(e.dir, m.candidates);
    const probability = m.output === 'probability';
    const base = await scores(file, csv, probability);
    const fn = flips(base.z, (await scores(pn, csv, probability)).z, base.per);
    const fa = flips(base.z, (await scores(pa, csv, probability)).z, base.per);
    // measured with seed 1 (16-wide tables): NeuMF 6.28% -> 6.23%, two-tower 3.05% -> 2.02%
    assert.ok(fa <= fn, `${m.file}: pairs swapped output-aware ${fa}, nearest ${fn}`);
    if (m.file.startsWith('twotower')) assert.ok(fa < 0.8 * fn, `${m.file}: ${fa} vs ${fn}`);
  }
});
