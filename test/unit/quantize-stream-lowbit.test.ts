// Streamed float16 and int4/int2 tables equal the whole-table math bit for bit: the files written
// with chunks of any size (also chunks that split rows, for float16) are the same, their
// initializers are the bytes toFloat16 / quantizeRowsLowBit give on the whole table (what the
// code wrote before the tables were streamed), the change texts report the same errors, tables
// of external-data models stay external, and the outputs run in ORT.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { planOnnxQuantization, streamedFloat16, streamedRowsLowBit } from '../../src/core/compress/quantize-onnx.js';
import { quantizeRowsLowBit, toFloat16 } from '../../src/core/compress/quantize-math.js';
import type { LowBits } from '../../src/core/model/packed-codes.js';
import { ModelIR, ModelTensor } from '../../src/core/model/ir.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { writeOnnxModel } from '../../src/core/model/onnx/write.js';
import { writeEditedOnnxModel } from '../../src/core/model/onnx/edit.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { collectBytes } from '../../src/core/model/tensor-stream.js';
import { generateScaleModel } from '../fixtures/scale-model.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-quantize-stream-lowbit-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const DIM = 13; // not a multiple of 2 or 4 codes per byte: rows are padded

interface Case {
  label: string;
  ir: ModelIR;
  external: boolean;
  /** long-tail rows (|x| ~ 1e-3): too small for float16 row scales at 4 bits, not at 2 */
  tail: boolean;
}

/**
 * The external-data scale model (its long-tail rows are too small for float16 row scales), the
 * same model inline, and one without tail rows (float16 row scales).
 */
async function models(dir: string): Promise<Case[]> {
  const r = await generateScaleModel(join(dir, 'ext'), { items: 900, users: 300, dim: DIM, hidden: [8], seed: 5, chunkRows: 128 });
  const ext = await readOnnxModel(r.onnxPath);
  const inlinePath = join(dir, 'inline.onnx');
  await writeOnnxModel(ext, inlinePath, { externalData: false });
  const n = await generateScaleModel(join(dir, 'notail'), { items: 700, users: 200, dim: DIM, hidden: [8], seed: 6, chunkRows: 100, tailShare: 0 });
  const noTailPath = join(dir, 'notail.onnx');
  await writeOnnxModel(await readOnnxModel(n.onnxPath), noTailPath, { externalData: false });
  return [
    { label: 'external data', ir: ext, external: true, tail: true },
    { label: 'inline', ir: await readOnnxModel(inlinePath), external: false, tail: true },
    { label: 'inline, no tail rows', ir: await readOnnxModel(noTailPath), external: false, tail: false },
  ];
}

/** The largest |score difference| of two models in ORT over 64 (user, item) pairs (NaN if any score is not finite). */
async function scoreDiff(original: string, quantized: string, users: number, items: number): Promise<number> {
  const n = 64;
  const ids = (count: number, stride: number) => new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt((i * stride) % count)), [n]);
  const feeds = { user: ids(users, 7), item: ids(items, 31) };
  const [a, b] = await Promise.all([original, quantized].map(async (file) => {
    const session = await ort.InferenceSession.create(file);
    try {
      return (await session.run(feeds)).score.data as Float32Array;
    } finally {
      await session.release();
    }
  }));
  return a.reduce((m, x, i) => (Number.isFinite(b[i]) ? Math.max(m, Math.abs(b[i] - x)) : NaN), 0);
}

/** Every file of a folder: name -> bytes, by name. */
async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const names = (await readdir(dir)).sort();
  return new Map(await Promise.all(names.map(async (f) => [f, await readFile(join(dir, f))] as const)));
}

function bytesOf(a: Uint8Array | Uint16Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** "1.23e-4" as a pattern */
function sci(x: number): RegExp {
  return new RegExp(x.toExponential(2).replace(/[.+]/g, '\\$&'));
}

type Dtype = 'float16' | 'int4' | 'int2';

/** The initializers (name -> bytes) and error figures the whole-table math gives for `t`. */
async function expected(t: ModelTensor, dtype: Dtype): Promise<{ tensors: Map<string, Uint8Array>; figures: RegExp[] }> {
  const values = await readTensorFloat32(t);
  if (dtype === 'float16') {
    const h = toFloat16(values);
    return { tensors: new Map([[`${t.name}_fp16`, bytesOf(h.bits)]]), figures: [sci(h.maxAbsError)] };
  }
  const [rows, cols] = t.shape;
  const rq = quantizeRowsLowBit(values, rows, cols, dtype === 'int4' ? 4 : 2, true);
  return {
    tensors: new Map([
      [`${t.name}_${dtype}`, rq.packed],
      [`${t.name}_scale`, bytesOf(rq.scaleBits ?? rq.scales)],
      [`${t.name}_zero_point`, rq.zeroPoints],
    ]),
    figures: [sci(rq.maxAbsError), sci(rq.rmse)],
  };
}

// 13 columns: 1 Mi (whole table in one chunk), 100 (7 rows for int4/int2; splits rows for
// float16), 7 (one row; splits rows for float16)
const CHUNKS = [1 << 20, 100, 7];
const DTYPES: Dtype[] = ['float16', 'int4', 'int2'];
// the largest |score difference| to the float model in ORT (sigmoid scores; 64 pairs)
const TOLERANCE: Record<Dtype, number> = { float16: 1e-3, int4: 0.05, int2: 0.1 };

for (const dtype of DTYPES) {
  test(`${dtype}: tables streamed in chunks of any size give the same files, equal to the whole-table math; they run in ORT`, async () => {
    await withDir(async (dir) => {
      for (const { label, ir, external, tail } of await models(dir)) {
        // float16 also rewrites the dense kernels (the Cast path); int4/int2 only tables
        const selected = ir.tensors.filter((t) => t.role === 'embedding' || (dtype === 'float16' && t.role === 'dense-kernel'));
        const tables = ir.tensors.filter((t) => t.role === 'embedding');
        assert.equal(tables.length, 2);
        const want = new Map<string, Uint8Array>();
        const figures = new Map<string, RegExp[]>();
        for (const t of selected) {
          const e = await expected(t, dtype);
          for (const [k, v] of e.tensors) want.set(k, v);
          figures.set(t.name, e.figures);
        }
        const f16Scales = dtype === 'int2' || !tail ? 2 : 0;
        let reference: Map<string, Buffer> | undefined;
        let out = '';
        for (const chunkElements of CHUNKS) {
          const plan = await planOnnxQuantization(ir, selected, { dtype, reduceRange: true, dense: 'weights-only', lookup: 'compact', chunkElements });
          assert.deepEqual(plan.skipped, [], `${label}: nothing skipped`);
          if (dtype !== 'float16') assert.deepEqual([plan.float16Scales, plan.float32Scales], [f16Scales, 2 - f16Scales], `${label}: scale types`);
          assert.deepEqual(plan.changes.map((c) => c.tensor).sort(), selected.map((t) => t.name).sort());
          for (const c of plan.changes) for (const f of figures.get(c.tensor)!) assert.match(c.action, f, `${label} ${c.tensor} at ${chunkElements}`);
          for (const s of plan.edit.setInitializers!) {
            const w = want.get(s.name);
            if (w) assert.deepEqual(await collectBytes(s.data), w, `${label} ${s.name} at ${chunkElements} (in the plan)`);
          }
          const d = join(dir, `${dtype}-${label.replace(/\W+/g, '_')}-${chunkElements}`);
          await mkdir(d);
          out = join(d, 'm.onnx');
          await writeEditedOnnxModel(ir, plan.edit, out, external ? { externalData: { fileName: 'm.onnx.data', minBytes: 1024 } } : undefined);
          const files = await filesOf(d);
          if (reference) assert.deepEqual(files, reference, `${label}: chunk ${chunkElements}`);
          else reference = files;
        }
        assert.deepEqual([...reference!.keys()], external ? ['m.onnx', 'm.onnx.data'] : ['m.onnx']);
        // the initializers read back from the written model are the whole-table bytes
        const back = await readOnnxModel(out);
        for (const [name, bytes] of want) {
          const t = back.tensors.find((x) => x.name === name);
          assert.ok(t, `${label}: ${name} written`);
          assert.deepEqual(await readTensorBytes(t), bytes, `${label}: ${name} read back`);
          const table = tables.some((x) => name === `${x.name}_${dtype === 'float16' ? 'fp16' : dtype}`);
          if (external && table) assert.equal(t.storage.source.kind, 'file', `${label}: ${name} stays external`);
        }
        const rows = (name: string): number => tables.find((t) => t.name === name)!.shape[0];
        const diff = await scoreDiff(ir.path, out, rows('user_embedding/embeddings'), rows('item_embedding/embeddings'));
        assert.ok(diff < TOLERANCE[dtype], `${label}: scores differ by ${diff}`);
      }
    });
  });
}

/** A [rows, cols] float32 table held in memory. */
function memoryTable(rows: number, cols: number, values: Float32Array): ModelTensor {
  return {
    name: 'table',
    shape: [rows, cols],
    dtype: 'float32',
    storage: { dtype: 'float32', byteLength: values.byteLength, source: { kind: 'bytes', bytes: bytesOf(values) }, location: 'test table' },
    role: 'embedding',
    layer: 'table',
    trainable: true,
    consumers: ['Gather'],
    origin: 'test',
  };
}

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

test('streamedRowsLowBit equals quantizeRowsLowBit for float16 and float32 row scales, zero and tiny rows, chunks of 1 row to all', async () => {
  const rows = 41;
  const cols = 11;
  const rnd = lcg(3);
  const base = Float32Array.from({ length: rows * cols }, (_, i) => {
    const r = Math.floor(i / cols);
    return r === 4 ? 0 : r === 9 ? -0.25 : (rnd() - 0.3) * (r % 5 === 0 ? 3 : 0.2);
  });
  // with one row of float32 subnormal-sized values no scale fits float16: float32 scales
  const tiny = base.slice();
  for (let c = 0; c < cols; c++) tiny[17 * cols + c] = (c - 5) * 1e-7;
  for (const [what, values] of [['float16 scales', base], ['float32 scales', tiny]] as const) {
    for (const bits of [4, 2] as LowBits[]) {
      const whole = quantizeRowsLowBit(values, rows, cols, bits, true);
      assert.equal(!!whole.scaleBits, what === 'float16 scales');
      for (const chunk of [1 << 20, 5 * cols, cols + 3, cols, 1]) {
        const s = await streamedRowsLowBit(memoryTable(rows, cols, values), bits, true, chunk);
        const at = `${what}, ${bits} bits, chunk ${chunk}`;
        assert.deepEqual(await collectBytes(s.packed), whole.packed, at);
        assert.deepEqual(s.scales, whole.scales, at);
        assert.deepEqual(s.scaleBits, whole.scaleBits, at);
        assert.deepEqual(s.zeroPoints, whole.zeroPoints, at);
        assert.ok(Object.is(s.maxAbsError, whole.maxAbsError) && Object.is(s.rmse, whole.rmse), `${at}: ${s.rmse} vs ${whole.rmse}`);
        // each write streams anew
        assert.deepEqual(await collectBytes(s.packed), whole.packed, `${at}, again`);
      }
    }
  }
  const nan = base.slice();
  nan[30 * cols + 2] = NaN;
  await assert.rejects(streamedRowsLowBit(memoryTable(rows, cols, nan), 4, true, cols), /row 30 holds NaN/);
  assert.throws(() => quantizeRowsLowBit(nan, rows, cols, 4, true), /row 30 holds NaN/);
});

test('streamedFloat16 equals toFloat16: bits, max error and overflow, in chunks that end anywhere', async () => {
  const rnd = lcg(9);
  const values = Float32Array.from({ length: 23 * 7 }, () => (rnd() - 0.5) * 4);
  values[5] = 70000; // overflows float16
  values[40] = -1e5;
  values[77] = 3e-8; // a float16 subnormal
  const whole = toFloat16(values);
  assert.equal(whole.overflow, 2);
  for (const chunk of [1 << 20, 50, 7, 1]) {
    const s = await streamedFloat16(memoryTable(23, 7, values), chunk);
    assert.deepEqual(await collectBytes(s.bits), bytesOf(whole.bits), `chunk ${chunk}`);
    assert.equal(s.overflow, whole.overflow);
    assert.ok(Object.is(s.maxAbsError, whole.maxAbsError), `chunk ${chunk}`);
  }
});
