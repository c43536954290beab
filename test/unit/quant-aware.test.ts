// Quantization-aware training of embedding tables: the fake quantizer is the quantizer (bit for
// bit), the optimizer's float rows learn as they would without it, and a fine-tuned model's
// tables are what `quantize` then stores: on our fixture and on models PyTorch exported (logit
// outputs, a DeepFM's 1-wide linear tables that int4 leaves as they are).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import {
  dequantizeColumnsLowBit,
  dequantizeRowsLowBit,
  fakeQuantRowColumns,
  fakeQuantRowLowBit,
  quantizeColumnsLowBit,
  quantizeRowsLowBit,
} from '../../src/core/compress/quantize-math.js';
import type { LowBits } from '../../src/core/model/packed-codes.js';
import { tableFakeQuant, TableFakeQuant } from '../../src/core/compress/train/fake-quant.js';
import { DEFAULT_ADAM, SparseTable } from '../../src/core/compress/train/sparse-tables.js';
import { finetuneModel } from '../../src/core/compress/finetune.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { createRng } from '../../src/core/samples/prng.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import { pytorchExports } from '../fixtures/pytorch/exports.js';

const fixtureDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-qat-'));

function randomTable(rows: number, cols: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const v = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const norm = 0.05 + rng.next() * 2; // rows of different scales, as trained tables have
    for (let c = 0; c < cols; c++) v[r * cols + c] = (rng.next() * 2 - 1) * norm;
  }
  v.fill(0, 0, cols); // an all-zero row
  for (let c = 0; c < cols; c++) v[cols + c] = 0.1 + c * 0.01; // a row of positives only
  return v;
}

test('fakeQuantRowLowBit writes what quantizeRowsLowBit stores, row by row and for the whole table, and is idempotent', () => {
  for (const cols of [5, 16, 33]) {
    for (const bits of [4, 3, 2] as LowBits[]) {
      const rows = 40;
      const v = randomTable(rows, cols, cols * 10 + bits);
      const fq = new Float32Array(v.length);
      for (let r = 0; r < rows; r++) {
        fakeQuantRowLowBit(v, r * cols, cols, bits, fq);
        const one = dequantizeRowsLowBit(quantizeRowsLowBit(v.subarray(r * cols, (r + 1) * cols), 1, cols, bits, true));
        assert.deepEqual(fq.subarray(r * cols, (r + 1) * cols), one, `row ${r}, ${cols} wide, int${bits}`);
      }
      assert.ok(fq.subarray(0, cols).every((x) => x === 0), 'the zero row stays zero');
      // the table of fake-quantized rows is stored as it is: quantize finds nothing to round
      assert.deepEqual(dequantizeRowsLowBit(quantizeRowsLowBit(fq, rows, cols, bits, true)), fq, `${cols} wide, int${bits}: stored again`);
      const again = new Float32Array(v.length);
      for (let r = 0; r < rows; r++) fakeQuantRowLowBit(fq, r * cols, cols, bits, again);
      assert.deepEqual(again, fq);
    }
  }
});

test('fakeQuantRowColumns with a table\'s column scales equals dequantizeColumnsLowBit', () => {
  const rows = 50;
  const cols = 6;
  const v = randomTable(rows, cols, 3);
  for (const bits of [4, 3, 2] as LowBits[]) {
    const q = quantizeColumnsLowBit(v, rows, cols, bits);
    const out = new Float32Array(v.length);
    for (let r = 0; r < rows; r++) fakeQuantRowColumns(v, r * cols, cols, bits, q.scales, q.zeroPoints, out);
    assert.deepEqual(out, dequantizeColumnsLowBit(q));
  }
});

test('tableFakeQuant follows quantize: layout by width and scales, tables it would leave are left with the reason', () => {
  const left = tableFakeQuant({ dtype: 'int3' }, 100, 2);
  assert.deepEqual(left, { leftBecause: 'only 2 wide: packed int3 rows would take as many bytes as int8 rows, so quantize stores it as int8, whose error is not trained through' });
  const cases: Array<[Parameters<typeof tableFakeQuant>[0], number, string]> = [
    [{ dtype: 'int4' }, 2, 'int4 per column'],
    [{ dtype: 'int4' }, 6, 'int4 per column'],
    [{ dtype: 'int4' }, 16, 'int4 per row'],
    [{ dtype: 'int4', scales: 'column' }, 16, 'int4 per column'],
    [{ dtype: 'int2', scales: 'row' }, 8, 'int2 per row'],
  ];
  for (const [s, cols, layout] of cases) {
    const fq = tableFakeQuant(s, 10, cols);
    assert.ok(fq instanceof TableFakeQuant, `${s.dtype} ${cols} wide`);
    assert.equal(fq.layout, layout);
  }
});

test('SparseTable with a fake quantizer: the float rows learn as without it, the forward reads them as stored', () => {
  const rows = 30;
  const cols = 12;
  const init = randomTable(rows, cols, 9);
  const plain = new SparseTable('t', init.slice(), cols, false);
  const qat = new SparseTable('t', init.slice(), cols, false);
  const fq = tableFakeQuant({ dtype: 'int4' }, rows, cols) as TableFakeQuant;
  qat.setFakeQuant(fq);
  assert.equal(qat.fakeQuantLayout, 'int4 per row');
  const stored = (v: Float32Array) => {
    const out = new Float32Array(v.length);
    for (let r = 0; r < rows; r++) fakeQuantRowLowBit(v, r * cols, cols, 4, out);
    return out;
  };
  // every row is stored from the start, touched or not
  assert.deepEqual(qat.values, stored(init));
  const rng = createRng(5);
  const ids = Int32Array.of(3, 7, 3, 20);
  for (let step = 1; step <= 3; step++) {
    const grad = Float32Array.from({ length: ids.length * cols }, () => rng.next() - 0.5);
    for (const t of [plain, qat]) {
      t.beginStep();
      t.accumulate(ids, grad);
      t.applyAdam({ lr: 0.05, ...DEFAULT_ADAM }, step);
    }
  }
  // the straight-through gradient: the float rows moved exactly as the plain table's did
  assert.deepEqual(qat.values, stored(plain.values));
  assert.notDeepEqual(plain.values.subarray(3 * cols, 4 * cols), init.subarray(3 * cols, 4 * cols));
  // off: the values stay as stored
  qat.setFakeQuant(undefined);
  assert.equal(qat.fakeQuantLayout, undefined);
  assert.deepEqual(qat.values, stored(plain.values));
  assert.throws(() => qat.setFakeQuant(tableFakeQuant({ dtype: 'int4' }, rows + 1, cols) as TableFakeQuant), /a fake quantizer for \[31, 12\] on \[30, 12\]/);
});

test('finetune --quant-aware on an ONNX NeuMF: its tables are what quantize stores, ORT scores match; TF.js and gradual pruning are refused', async () => {
  await initTfjs('auto');
  const fx = await writeTinyFixtures(fixtureDir);
  const r = fx.models.neumf;
  const ir = await readModel(r.onnxPath!);
  const tables = ir.tensors.filter((t) => t.role === 'embedding');
  assert.ok(tables.length > 0 && tables.every((t) => t.shape[1] >= 8), `tables ${tables.map((t) => t.shape.join('x')).join(', ')}: this test wants per-row scales`);
  const outcome = await finetuneModel(ir, { data: r.interactionsCsv, epochs: 1, batchSize: 256, lr: 0.005, quantAware: { dtype: 'int4' } });
  assert.deepEqual(outcome.settings.quantAware, { dtype: 'int4', scales: 'row' });
  assert.ok(outcome.notes.some((n) => n.startsWith('Quantization-aware (int4, scales row): ') && n.includes('which stores them with no further rounding')), outcome.notes.join('\n'));
  const qatPath = path.join(work, 'neumf-qat.onnx');
  await outcome.write(qatPath);
  const qatIr = await readModel(qatPath);
  for (const t of qatIr.tensors.filter((x) => x.role === 'embedding')) {
    const v = await readTensorFloat32(t);
    const [rows, cols] = t.shape;
    assert.deepEqual(dequantizeRowsLowBit(quantizeRowsLowBit(v, rows, cols, 4, true)), v, `${t.name} is on its int4 grid`);
  }
  const q = await quantizeModel(qatIr, { dtype: 'int4', tensors: tables.map((t) => t.name) });
  const qPath = path.join(work, 'neumf-qat-int4.onnx');
  await q.write(qPath);
  const feeds = { user: new ort.Tensor('int64', BigInt64Array.from([0, 1, 2, 3, 4, 5], BigInt), [6]), item: new ort.Tensor('int64', BigInt64Array.from([9, 8, 7, 6, 5, 4], BigInt), [6]) };
  const score = async (file: string) => {
    const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
    const out = (await s.run(feeds)).score.data as Float32Array;
    await s.release();
    return out;
  };
  const a = await score(qatPath);
  const b = await score(qPath);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-6, `score ${i}: ${a[i]} vs ${b[i]}`);

  await assert.rejects(
    finetuneModel(await readModel(r.tfjsModelJson!), { data: r.interactionsCsv, epochs: 1, quantAware: { dtype: 'int4' } }),
    /quantization-aware training is for ONNX models, .*TF\.js, whose manifests have no such type/,
  );
  await assert.rejects(
    finetuneModel(ir, { data: r.interactionsCsv, epochs: 1, quantAware: { dtype: 'int4' }, gradual: { prune: { sparsity: 0.5 }, rampEpochs: 1 } }),
    /quantization-aware training and gradual or dynamic pruning cannot be combined/,
  );
});

test('PyTorch exports: quantization-aware fine-tuning keeps each output kind, and quantize stores the tables it wrote', async (t) => {
  const e = pytorchExports();
  if (!e) return t.skip('PyTorch not installed');
  await initTfjs('auto');
  for (const m of e.models) {
    const file = path.join(e.dir, m.file);
    const ir = await readModel(file);
    const data = path.join(e.dir, m.inputs.includes('fields') ? 'deepfm_train.csv' : 'train.csv');
    const outcome = await finetuneModel(ir, { data, epochs: 1, teacher: file, quantAware: { dtype: 'int4' } });
    assert.equal(outcome.settings.outputKind, m.output, m.file);
    const trained = outcome.changes.filter((c) => c.action.includes('quantization-aware (int4 per row')).map((c) => c.tensor);
    assert.ok(trained.length >= 2, `${m.file}: ${outcome.changes.map((c) => `${c.tensor}: ${c.action}`).join('; ')}`);
    // a DeepFM's 1-wide linear tables: int4 would pack them no smaller than int8, so they stay float
    if (m.inputs.includes('fields')) assert.ok(outcome.notes.some((n) => /^Left in float \(not quantization-aware\): user_linear\.weight \(only 1 wide/.test(n)), outcome.notes.join('\n'));
    const qatPath = path.join(work, `qat-${m.file}`);
    await outcome.write(qatPath);
    const qatIr = await readModel(qatPath);
    // every row is a fixed point of the quantizer (trained rows whose extreme codes went unused
    // would otherwise be stored on a narrower grid)
    for (const name of trained) {
      const t = qatIr.tensors.find((x) => x.name === name)!;
      const v = await readTensorFloat32(t);
      assert.deepEqual(dequantizeRowsLowBit(quantizeRowsLowBit(v, t.shape[0], t.shape[1], 4, true)), v, `${m.file}: ${name} is on its int4 grid`);
    }
    const q = await quantizeModel(qatIr, { dtype: 'int4', tensors: trained });
    const qPath = path.join(work, `qat-int4-${m.file}`);
    await q.write(qPath);
    const ins = m.sample.inputs;
    const n = m.sample.scores.length;
    const ints = (v: number[]) => BigInt64Array.from(v, (x) => BigInt(x));
    const feeds: Record<string, ort.Tensor> = ins.fields
      ? { fields: new ort.Tensor('int64', ints((ins.fields as number[][]).flat()), [n, (ins.fields as number[][])[0].length]) }
      : { user: new ort.Tensor('int64', ints(ins.user as number[]), [n]), item: new ort.Tensor('int64', ints(ins.item as number[]), [n]) };
    const scores = async (f: string) => {
      const s = await ort.InferenceSession.create(f, { logSeverityLevel: 3 });
      const out = (await s.run(feeds))[s.outputNames[0]].data as Float32Array;
      await s.release();
      return Float32Array.from(out);
    };
    const a = await scores(qatPath);
    const b = await scores(qPath);
    for (let i = 0; i < n; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * Math.max(1, Math.abs(a[i])), `${m.file} row ${i}: ${a[i]} vs ${b[i]}`);
  }
});
