import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { pruneRows } from '../../src/core/compress/prune-rows.js';
import {
  dequantizeColumnsLowBit,
  dequantizeRowsLowBit,
  quantizeColumnsLowBit,
  quantizeRowsLowBit,
} from '../../src/core/compress/quantize-math.js';
import { LowBits, packedRowBytes, packRowCodes, unpackRowCodes } from '../../src/core/model/packed-codes.js';
import { ModelFileError } from '../../src/core/model/ir.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readModel } from '../../src/core/model/read-model.js';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import { parameterCount } from '../../src/core/eval/evaluate.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';
import { withTempDir } from '../fixtures/temp-dir.js';

const fixturesDir = path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('ps-quantize-int4-', fn);

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** N(0, sd) values (Box-Muller), deterministic. */
function normal(n: number, seed: number, sd = 1): Float32Array {
  const rnd = lcg(seed);
  return Float32Array.from({ length: n }, () => sd * Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd()));
}

test('packing: exact bytes of the planar layout, odd widths, and round trips', () => {
  // int4, 3 wide: w = 2 bytes; byte 0 = col 0 | col 2 << 4, byte 1 = col 1 (padding code 0)
  assert.deepEqual(Array.from(packRowCodes([1, 2, 15], 1, 3, 4)), [0xf1, 0x02]);
  // int2, 5 wide: w = 2; byte 0 = c0 | c2 << 2 | c4 << 4, byte 1 = c1 | c3 << 2
  assert.deepEqual(Array.from(packRowCodes([3, 0, 1, 2, 3], 1, 5, 2)), [3 | (1 << 2) | (3 << 4), 2 << 2]);
  assert.deepEqual(Array.from(packRowCodes([3, 3, 3, 3], 1, 4, 2)), [255]);
  // int3, 3 wide: a 2-bit plane of the low bits (1 byte: c0 | c1 << 2 | c2 << 4), then a 1-bit
  // plane of the high bits (1 byte: c0 | c1 << 1 | c2 << 2); codes 5 = 0b101, 2 = 0b010, 7 = 0b111
  assert.deepEqual(Array.from(packRowCodes([5, 2, 7], 1, 3, 3)), [1 | (2 << 2) | (3 << 4), 1 | (0 << 1) | (1 << 2)]);
  // int3, 10 wide: planes of 3 and 2 bytes; column 9 (code 6 = 0b110) is part 3 of byte 0 of the
  // 2-bit plane (9 % 3, 9 / 3) and part 4 of byte 1 of the 1-bit plane (9 % 2, 9 / 2)
  const ten = packRowCodes([0, 0, 0, 0, 0, 0, 0, 0, 0, 6], 1, 10, 3);
  assert.deepEqual(Array.from(ten), [2 << 6, 0, 0, 0, 1 << 4]);
  assert.equal(packedRowBytes(32, 3), 12);
  assert.equal(packedRowBytes(13, 3), 6);
  assert.equal(packedRowBytes(64, 4), 32);
  assert.equal(packedRowBytes(13, 4), 7);
  assert.equal(packedRowBytes(13, 2), 4);
  assert.equal(packedRowBytes(1, 2), 1);
  for (const bits of [4, 3, 2] as LowBits[]) {
    const top = (1 << bits) - 1;
    for (const cols of [1, 2, 3, 5, 7, 8, 13, 17]) {
      const rows = 4;
      const rnd = lcg(cols * 31 + bits);
      // row 0 all top, row 1 all 0, rows 2-3 random
      const codes = Uint8Array.from({ length: rows * cols }, (_, i) => (i < cols ? top : i < 2 * cols ? 0 : Math.floor(rnd() * (top + 1))));
      const packed = packRowCodes(codes, rows, cols, bits);
      assert.equal(packed.length, rows * packedRowBytes(cols, bits));
      assert.deepEqual(unpackRowCodes(packed, rows, cols, bits), codes, `${bits} bits, ${cols} wide`);
    }
    assert.throws(() => packRowCodes([top + 1], 1, 1, bits), /does not fit/);
    assert.throws(() => unpackRowCodes(new Uint8Array(packedRowBytes(5, bits) + 1), 1, 5, bits), /not 1 packed rows/);
  }
  assert.throws(() => packRowCodes([0], 1, 1, 5 as LowBits), /bits must be 4, 3 or 2/);
});

test('quantizeRowsLowBit: zero rows, all-equal rows, zeros kept, extremes, reported errors are the real ones', () => {
  for (const bits of [4, 2] as LowBits[]) {
    const top = (1 << bits) - 1;
    const cols = 7;
    const values = new Float32Array([
      ...[0, 0, 0, 0, 0, 0, 0], // zero row
      ...Array(7).fill(0.5), // all equal, positive
      ...Array(7).fill(-0.25), // all equal, negative
      ...[-1e30, 0, 1e30, 3, -2, 0, 1e29], // extremes
      ...[0.3, -0.7, 0, 0.1, 0.9, -0.2, 0], // ordinary, with zeros
    ]);
    const q = quantizeRowsLowBit(values, 5, cols, bits);
    assert.equal(q.scales[0], 0);
    assert.equal(q.zeroPoints[0], 0);
    assert.deepEqual(Array.from(q.codes.subarray(0, 7)), Array(7).fill(0));
    // all-equal rows use the whole range: the top code (or 0 for negative rows)
    assert.deepEqual(Array.from(q.codes.subarray(7, 14)), Array(7).fill(top));
    assert.equal(q.zeroPoints[1], 0);
    assert.deepEqual(Array.from(q.codes.subarray(14, 21)), Array(7).fill(0));
    assert.equal(q.zeroPoints[2], top);
    const d = dequantizeRowsLowBit(q);
    for (let i = 7; i < 21; i++) assert.ok(Math.abs(d[i] - values[i]) <= 1e-7 * Math.abs(values[i]) + 1e-9, `${i}: ${d[i]}`);
    // exact zeros stay exactly zero; codes fit; the extreme row is finite
    for (let i = 0; i < values.length; i++) {
      if (values[i] === 0) assert.equal(d[i], 0, `zero at ${i}`);
      assert.ok(q.codes[i] <= top);
      assert.ok(Number.isFinite(d[i]));
    }
    assert.ok(Math.abs(d[21] + 1e30) < 0.6e30 && Math.abs(d[23] - 1e30) < 0.6e30);
    // the reported error is the real one
    let max = 0;
    let sse = 0;
    for (let i = 0; i < values.length; i++) {
      const e = Math.abs(values[i] - d[i]);
      max = Math.max(max, e);
      sse += e * e;
    }
    assert.equal(q.maxAbsError, max);
    assert.ok(Math.abs(q.rmse - Math.sqrt(sse / values.length)) <= 1e-9 * max);
    assert.deepEqual(q.packed, packRowCodes(q.codes, 5, cols, bits));
    assert.throws(() => quantizeRowsLowBit([1, NaN], 1, 2, bits), /NaN/);
    assert.throws(() => quantizeRowsLowBit([1, Infinity], 1, 2, bits), /infinite/);
  }
});

test('quantizeRowsLowBit on a N(0,1) table: RMSE of the clipped asymmetric rows; float16 scales are what the model sees', () => {
  const rows = 2000;
  const cols = 64;
  const v = normal(rows * cols, 3);
  const q4 = quantizeRowsLowBit(v, rows, cols, 4, true);
  const q2 = quantizeRowsLowBit(v, rows, cols, 2, true);
  // measured in /tmp/int4/rmse.py (numpy, 20000 x 64): 4-bit 0.088, 2-bit 0.355 (min-max 0.091 / 0.456)
  assert.ok(q4.rmse > 0.08 && q4.rmse < 0.092, `4-bit rmse ${q4.rmse}`);
  assert.ok(q2.rmse > 0.33 && q2.rmse < 0.37, `2-bit rmse ${q2.rmse}`);
  assert.ok(q4.scaleBits && q2.scaleBits, 'float16 scales');
  // tiny rows whose clipped scale would be a float16 subnormal get float32 scales
  const tiny = quantizeRowsLowBit(Float32Array.from({ length: 64 }, (_, i) => (i - 32) * 1e-6), 1, 64, 4, true);
  assert.equal(tiny.scaleBits, undefined);
});

interface BuiltModel {
  file: string;
  wide: Float32Array;
  odd: Float32Array;
}

/** ids -> Gather(wide [1000, 64]) and Gather(odd [300, 13]) -> Concat -> MLP(fc [77, 8]) -> y; plus a tied table read by Gather and MatMul. */
async function buildModel(dir: string, opset: number): Promise<BuiltModel> {
  const wide = normal(1000 * 64, 11, 0.1);
  const odd = normal(300 * 13, 12, 0.05);
  const b = new OnnxGraphBuilder({ graphName: 'g', opset })
    .input('ids', 'int64', ['batch'])
    .output('y', 'float32', ['batch', 8])
    .output('e', 'float32', ['batch', 77])
    .initializer('wide.weight', 'float32', [1000, 64], wide)
    .initializer('odd.weight', 'float32', [300, 13], odd)
    .initializer('fc.weight', 'float32', [77, 8], normal(77 * 8, 13, 0.2))
    .node('Gather', ['wide.weight', 'ids'], ['ew'], { axis: 0 }, { name: '/wide/Gather' })
    .node('Gather', ['odd.weight', 'ids'], ['eo'], { axis: 0 }, { name: '/odd/Gather' })
    .node('Concat', ['ew', 'eo'], ['e'], { axis: 1 }, { name: '/concat' })
    .node('MatMul', ['e', 'fc.weight'], ['y'], {}, { name: '/fc/MatMul' });
  const file = path.join(dir, `model-op${opset}.onnx`);
  await writeOnnxFile(file, b.toModelProto());
  return { file, wide, odd };
}

/** The float model with the tables replaced by our own dequantization of them. */
async function dequantizedTwin(dir: string, m: BuiltModel, bits: LowBits, opset: number): Promise<string> {
  const twinDir = path.join(dir, `twin${bits}`);
  await fs.promises.mkdir(twinDir);
  const deq = (v: Float32Array, rows: number, cols: number) => dequantizeRowsLowBit(quantizeRowsLowBit(v, rows, cols, bits, true));
  const file = path.join(twinDir, path.basename(m.file));
  const ir = await readModel(m.file);
  const fc = (await import('../../src/core/model/tensor-data.js')).readTensorFloat32;
  const b = new OnnxGraphBuilder({ graphName: 'g', opset })
    .input('ids', 'int64', ['batch'])
    .output('y', 'float32', ['batch', 8])
    .output('e', 'float32', ['batch', 77])
    .initializer('wide.weight', 'float32', [1000, 64], deq(m.wide, 1000, 64))
    .initializer('odd.weight', 'float32', [300, 13], deq(m.odd, 300, 13))
    .initializer('fc.weight', 'float32', [77, 8], await fc(ir.tensors.find((t) => t.name === 'fc.weight')!))
    .node('Gather', ['wide.weight', 'ids'], ['ew'], { axis: 0 })
    .node('Gather', ['odd.weight', 'ids'], ['eo'], { axis: 0 })
    .node('Concat', ['ew', 'eo'], ['e'], { axis: 1 })
    .node('MatMul', ['e', 'fc.weight'], ['y']);
  await writeOnnxFile(file, b.toModelProto());
  return file;
}

async function run(file: string, ids: BigInt64Array): Promise<{ y: Float32Array; e: Float32Array }> {
  const s = await ort.InferenceSession.create(file);
  try {
    const out = await s.run({ ids: new ort.Tensor('int64', ids, [ids.length]) });
    return { y: out.y.data as Float32Array, e: out.e.data as Float32Array };
  } finally {
    await s.release();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * What the reader and the analysis make of a quantized table: the codes tensor is the float table
 * it stands for (shape, parameters, values), its scale and zero point are quantization
 * parameters of the table's layer.
 */
async function checkStoredTable(file: string, table: string, codesName: string, expected: { bits: number; rows: number; cols: number; granularity: 'row' | 'column'; values: Float32Array }): Promise<void> {
  const ir = await readModel(file);
  const codes = ir.tensors.find((t) => t.name === codesName)!;
  assert.deepEqual(codes.codes, {
    bits: expected.bits,
    shape: [expected.rows, expected.cols],
    scale: `${table}_scale`,
    zeroPoint: `${table}_zero_point`,
    granularity: expected.granularity,
    lookup: true,
  });
  for (const p of ['_scale', '_zero_point']) {
    const t = ir.tensors.find((x) => x.name === table + p)!;
    assert.equal(t.role, 'quant-param', t.name);
    assert.equal(t.trainable, false);
    assert.equal(t.layer, codes.layer, 'one layer: the table');
  }
  const report = await analyzeModel(ir);
  const r = report.tensors.find((t) => t.name === codesName)!;
  assert.deepEqual(r.storedAs, { bits: expected.bits, granularity: expected.granularity });
  // factorizing, pruning or quantizing it again works on the float model: no opportunity offered on the codes
  assert.deepEqual(report.opportunities.filter((o) => o.target === codesName), []);
  assert.deepEqual(r.shape, [expected.rows, expected.cols]);
  assert.equal(r.params, expected.rows * expected.cols);
  assert.equal(r.storedDtype, expected.bits === 8 ? 'int8' : `int${expected.bits}`);
  assert.equal(r.dtype, 'float32');
  assert.equal(r.quantError, undefined, 'no int8 opportunity for a table already stored as codes');
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let zeros = 0;
  for (const v of expected.values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    if (v === 0) zeros++;
  }
  assert.ok(Math.abs(r.min! - min) <= 1e-6 && Math.abs(r.max! - max) <= 1e-6, `min ${r.min} vs ${min}, max ${r.max} vs ${max}`);
  assert.ok(Math.abs(r.mean! - sum / expected.values.length) <= 1e-6, `mean ${r.mean} vs ${sum / expected.values.length}`);
  assert.equal(r.zeros, zeros, 'zeros of the dequantized values, not of the packed bytes');
  assert.equal(r.rows?.rows, expected.rows);
}

/** A model that is one Gather of the rows of `t` ([rows, cols], initializer `name`) by its input ids. */
async function gatherModel(file: string, name: string, t: Float32Array, rows: number, cols: number): Promise<string> {
  await writeOnnxFile(file, new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
    .input('ids', 'int64', ['batch'])
    .output('y', 'float32', ['batch', cols])
    .initializer(name, 'float32', [rows, cols], t)
    .node('Gather', [name, 'ids'], ['y'], { axis: 0 }, { name: `/${name}/Gather` })
    .toModelProto());
  return file;
}

/** What ONNX Runtime looks up in a gatherModel-shaped file for these ids. */
async function gatherRows(file: string, ids: BigInt64Array): Promise<Float32Array> {
  const sess = await ort.InferenceSession.create(file);
  try {
    return (await sess.run({ ids: new ort.Tensor('int64', ids, [ids.length]) })).y.data as Float32Array;
  } finally {
    await sess.release();
  }
}

// stored bytes: packed codes + float16 scales + uint8 zero points (int8 'compact': codes + float16 scales)
const EXPECTED_BYTES = {
  int8: { wide: 1000 * 64 + 1000 * 2, odd: 300 * 13 + 300 * 2 }, // 66000, 4500
  int4: { wide: 1000 * 32 + 1000 * 2 + 1000, odd: 300 * 7 + 300 * 2 + 300 }, // 35000, 3000
  int3: { wide: 1000 * 24 + 1000 * 2 + 1000, odd: 300 * 6 + 300 * 2 + 300 }, // 27000, 2700
  int2: { wide: 1000 * 16 + 1000 * 2 + 1000, odd: 300 * 4 + 300 * 2 + 300 }, // 19000, 2100
};

for (const opset of [17, 18]) {
  test(`ONNX opset ${opset}: int4, int3 and int2 tables run in ORT equal to our own dequantized model; bytes are the stored ones`, async () => {
    await withTemp(async (dir) => {
      const m = await buildModel(dir, opset);
      const ir = await readModel(m.file);
      const ids = BigInt64Array.from({ length: 256 }, (_, i) => BigInt((i * 37) % 300));
      const int8 = await quantizeModel(ir, { dtype: 'int8', tensors: 'embeddings', verify: false });
      const bytesOf = (o: typeof int8, name: string) => o.changes.find((c) => c.tensor === name)!.after.reduce((a, x) => a + x.bytes, 0);
      assert.equal(bytesOf(int8, 'wide.weight'), EXPECTED_BYTES.int8.wide);
      assert.equal(bytesOf(int8, 'odd.weight'), EXPECTED_BYTES.int8.odd);
      for (const bits of [4, 3, 2] as LowBits[]) {
        const dtype = `int${bits}` as 'int4' | 'int3' | 'int2';
        const o = await quantizeModel(ir, { dtype });
        assert.deepEqual(o.changes.map((c) => c.tensor).sort(), ['odd.weight', 'wide.weight'], 'all = embedding tables only');
        const wide = o.changes.find((c) => c.tensor === 'wide.weight')!;
        assert.deepEqual(wide.after, [
          { name: `wide.weight_${dtype}`, shape: [1000, (64 * bits) / 8], dtype: 'uint8', bytes: (1000 * 64 * bits) / 8 },
          { name: 'wide.weight_scale', shape: [1000, 1], dtype: 'float16', bytes: 2000 },
          { name: 'wide.weight_zero_point', shape: [1000, 1], dtype: 'uint8', bytes: 1000 },
        ]);
        assert.equal(bytesOf(o, 'wide.weight'), EXPECTED_BYTES[dtype].wide);
        assert.equal(bytesOf(o, 'odd.weight'), EXPECTED_BYTES[dtype].odd);
        // ~1/2, ~3/8 and ~1/4 of int8 on the 64-wide table (scales and zero points are the rest)
        const ratio = EXPECTED_BYTES[dtype].wide / EXPECTED_BYTES.int8.wide;
        assert.ok(ratio < { 4: 0.54, 3: 0.42, 2: 0.29 }[bits], `ratio ${ratio}`);
        // the plan's check against the float model ran
        // outputs: the lookups (sd 0.1 and 0.05) and a 77-term sum of them
        assert.ok(o.outputDiff && o.outputDiff.maxAbsDiff < { 4: 0.1, 3: 0.2, 2: 0.4 }[bits], `diff ${o.outputDiff?.maxAbsDiff}`);
        const unpack = opset >= 18 ? 'BitShift \\+ BitwiseAnd' : 'BitShift,';
        assert.ok(o.notes.some((n) => new RegExp(`stored as ${bits}-bit codes.*float16 row scales.*Gather, ${unpack}`).test(n)), o.notes.join('\n'));
        assert.ok(o.notes.some((n) => /^Checked in onnxruntime-node against the original/.test(n)));
        const out = path.join(dir, `q${bits}.onnx`);
        await o.write(out);
        const q = await readModel(out);
        const ops = new Set(q.graph.nodes.map((n) => n.op));
        assert.equal(ops.has('BitwiseAnd'), opset >= 18);
        assert.ok(ops.has('BitShift') && ops.has('Slice'), 'the 13-wide table is padded, so sliced');
        assert.equal(q.graph.nodes.filter((n) => n.op === 'MatMul').length, 1, 'the dense kernel is untouched');
        // quantizing removes no parameter: eval, bench and the job reports count the values, not the packed bytes
        assert.equal(parameterCount(await readModel(out)), parameterCount(ir));
        await checkStoredTable(out, 'wide.weight', `wide.weight_${dtype}`, { bits, rows: 1000, cols: 64, granularity: 'row', values: dequantizeRowsLowBit(quantizeRowsLowBit(m.wide, 1000, 64, bits, true)) });
        await checkStoredTable(out, 'odd.weight', `odd.weight_${dtype}`, { bits, rows: 300, cols: 13, granularity: 'row', values: dequantizeRowsLowBit(quantizeRowsLowBit(m.odd, 300, 13, bits, true)) });
        const twin = await dequantizedTwin(dir, m, bits, opset);
        const [a, b] = [await run(out, ids), await run(twin, ids)];
        assert.ok(maxDiff(a.e, b.e) <= 1e-5, `lookups ${maxDiff(a.e, b.e)}`);
        assert.ok(maxDiff(a.y, b.y) <= 1e-5, `outputs ${maxDiff(a.y, b.y)}`);
      }
    });
  });
}

test('ONNX int4/int2: dense kernels asked for are errors; narrow, non-Gather and low-opset tables are left with a reason', async () => {
  await withTemp(async (dir) => {
    const m = await buildModel(dir, 17);
    const ir = await readModel(m.file);
    for (const dtype of ['int4', 'int3', 'int2'] as const) {
      await assert.rejects(quantizeModel(ir, { dtype, tensors: 'dense' }), (e: unknown) => e instanceof ModelFileError && /embedding tables only: dense kernels have no 4-, 3- or 2-bit form/.test(e.message));
      await assert.rejects(
        quantizeModel(ir, { dtype, tensors: ['wide.weight', 'fc.weight'] }),
        (e: unknown) => e instanceof ModelFileError && /"fc.weight" is a dense kernel/.test(e.message),
      );
    }
    // a 1-wide table (packed 4-bit rows would be 1 byte, as int8's) is stored as int8; a table
    // also read by MatMul (tied output projection) is left; the 4-wide one is quantized per column (below)
    const b = new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
      .input('ids', 'int64', ['batch'])
      .output('y', 'float32', ['batch', 1])
      .output('z', 'float32', ['batch', 16])
      .initializer('linear', 'float32', [50, 1], normal(50, 1))
      .initializer('tied', 'float32', [16, 16], normal(256, 2))
      .node('Gather', ['linear', 'ids'], ['y'], { axis: 0 }, { name: 'g1' })
      .node('Gather', ['tied', 'ids'], ['t'], { axis: 0 }, { name: 'g2' })
      .node('MatMul', ['t', 'tied'], ['z'], {}, { name: 'mm' });
    const file = path.join(dir, 'odd.onnx');
    await writeOnnxFile(file, b.toModelProto());
    const o = await quantizeModel(await readModel(file), { dtype: 'int4', tensors: 'embeddings' });
    assert.deepEqual(o.changes.map((c) => [c.tensor, c.after.map((a) => a.dtype)]), [['linear', ['int8', 'float32']]]);
    assert.ok(o.notes.includes('Note: linear is only 1 wide: packed int4 rows would take as many bytes as int8 rows, so it is stored as int8.'), o.notes.join('\n'));
    assert.ok(!o.notes.some((n) => /stored as 4-bit codes/.test(n)), 'no table was packed');
    assert.equal((await readModel(file)).tensors.find((t) => t.name === 'tied')!.role, 'embedding');
    assert.ok(o.notes.some((n) => /Left as it was: tied \(read by MatMul \(input 1\)/.test(n)), o.notes.join('\n'));
    const op10 = await buildModel(dir, 10);
    const o10 = await quantizeModel(await readModel(op10.file), { dtype: 'int2', verify: false });
    assert.equal(o10.changes.length, 0);
    assert.ok(o10.notes.some((n) => /Left as it was: wide.weight \(the model's opset 10 is below 11 \(BitShift\)/.test(n)), o10.notes.join('\n'));
  });
});

test('narrow tables (a low-rank factor): int4/int3/int2 per column, exact bytes, ORT equal to our own dequantization', async () => {
  // round trip on values each column can hold exactly: column c takes the levels (k - 1) * (c + 1) / 4
  const rows = 16;
  const cols = 3;
  const exact = Float32Array.from({ length: rows * cols }, (_, i) => (((i * 7) % 16) - 1) * (((i % cols) + 1) / 4));
  const q = quantizeColumnsLowBit(exact, rows, cols, 4);
  assert.deepEqual(Array.from(dequantizeColumnsLowBit(q)), Array.from(exact));
  assert.equal(q.maxAbsError, 0);
  assert.deepEqual(Array.from(q.scales), [0.25, 0.5, 0.75]);
  assert.deepEqual(Array.from(q.zeroPoints), [1, 1, 1]);
  // codes are packed per row of the table, as wide tables' are
  assert.deepEqual(Array.from(q.packed), Array.from(packRowCodes(q.codes, rows, cols, 4)));
  await withTemp(async (dir) => {
    const table = normal(500 * 6, 21, 0.3);
    for (let r = 0; r < 500; r++) for (let c = 0; c < 6; c++) table[r * 6 + c] *= 1 + c; // columns of different scales
    const model = (t: Float32Array, name: string) => gatherModel(path.join(dir, name), 'factor', t, 500, 6);
    const file = await model(table, 'factor.onnx');
    const ids = BigInt64Array.from({ length: 200 }, (_, i) => BigInt((i * 13) % 500));
    for (const bits of [4, 3, 2] as LowBits[]) {
      const dtype = `int${bits}` as 'int4' | 'int3' | 'int2';
      const o = await quantizeModel(await readModel(file), { dtype, verify: false });
      assert.deepEqual(o.changes[0].after, [
        { name: `factor_${dtype}`, shape: [500, packedRowBytes(6, bits)], dtype: 'uint8', bytes: 500 * packedRowBytes(6, bits) },
        { name: 'factor_scale', shape: [6], dtype: 'float32', bytes: 24 },
        { name: 'factor_zero_point', shape: [6], dtype: 'float32', bytes: 24 },
      ]);
      assert.match(o.changes[0].action, new RegExp(`^${dtype} per-column asymmetric \\(only 6 wide`));
      assert.ok(o.notes.some((n) => n.includes('1 narrower than 8 with a float32 scale and zero point per column;')), o.notes.join('\n'));
      const out = path.join(dir, `f${bits}.onnx`);
      await o.write(out);
      const twin = await model(dequantizeColumnsLowBit(quantizeColumnsLowBit(table, 500, 6, bits)), `twin${bits}.onnx`);
      const [a, b] = [await gatherRows(out, ids), await gatherRows(twin, ids)];
      assert.ok(maxDiff(a, b) <= 1e-6, `lookups ${maxDiff(a, b)}`);
      // per column, the narrowest column (sd 0.3) keeps its own steps: one range for the table
      // (column 5 is 6x wider) would leave it an RMSE of about 0.2 / 0.45 / 1.0
      const d = dequantizeColumnsLowBit(quantizeColumnsLowBit(table, 500, 6, bits));
      let sse = 0;
      for (let r = 0; r < 500; r++) sse += (d[r * 6] - table[r * 6]) ** 2;
      const rmse0 = Math.sqrt(sse / 500);
      assert.ok(rmse0 < { 4: 0.06, 3: 0.12, 2: 0.25 }[bits], `column 0 RMSE ${rmse0}`);
    }
  });
});

test("scales 'column': a wide table gets one scale and zero point per column as asked; exact bytes, ORT equal to our own dequantization", async () => {
  await withTemp(async (dir) => {
    const rows = 300;
    const cols = 32;
    const table = normal(rows * cols, 5, 0.2);
    const model = (t: Float32Array, name: string) => gatherModel(path.join(dir, name), 'table', t, rows, cols);
    const file = await model(table, 'wide.onnx');
    const ids = BigInt64Array.from({ length: 120 }, (_, i) => BigInt((i * 7) % rows));
    for (const bits of [4, 3, 2] as LowBits[]) {
      const dtype = `int${bits}` as 'int4' | 'int3' | 'int2';
      const o = await quantizeModel(await readModel(file), { dtype, scales: 'column', verify: false });
      assert.equal(o.settings.scales, 'column');
      // no per-row bytes: the codes plus two float32 vectors of 32
      assert.deepEqual(o.changes[0].after, [
        { name: `table_${dtype}`, shape: [rows, packedRowBytes(cols, bits)], dtype: 'uint8', bytes: rows * packedRowBytes(cols, bits) },
        { name: 'table_scale', shape: [cols], dtype: 'float32', bytes: 128 },
        { name: 'table_zero_point', shape: [cols], dtype: 'float32', bytes: 128 },
      ]);
      assert.match(o.changes[0].action, new RegExp(`^${dtype} per-column asymmetric \\(one float32 scale`));
      assert.ok(o.notes.some((n) => n.includes('1 with a float32 scale and zero point per column, as asked')), o.notes.join('\n'));
      const out = path.join(dir, `w${bits}.onnx`);
      await o.write(out);
      const twin = await model(dequantizeColumnsLowBit(quantizeColumnsLowBit(table, rows, cols, bits)), `wtwin${bits}.onnx`);
      const [a, b] = [await gatherRows(out, ids), await gatherRows(twin, ids)];
      assert.ok(maxDiff(a, b) <= 1e-6, `lookups ${maxDiff(a, b)}`);
      await checkStoredTable(out, 'table', `table_${dtype}`, { bits, rows, cols, granularity: 'column', values: dequantizeColumnsLowBit(quantizeColumnsLowBit(table, rows, cols, bits)) });
      // per row (the default) on the same table: 3 more bytes per row (float16 scale + uint8 zero point)
      const r = await quantizeModel(await readModel(file), { dtype, verify: false });
      assert.equal(r.settings.scales, undefined);
      assert.equal(r.changes[0].after.reduce((n, x) => n + x.bytes, 0) - o.changes[0].after.reduce((n, x) => n + x.bytes, 0), rows * 3 - 256);
    }
    // other dtypes refusing it: quantize-byte-scales.test.ts, with 'byte'
  });
});

test("scales 'column' on a table over 256 MiB: left as it was, with the reason (per-column scales are fitted in memory)", async () => {
  await withTemp(async (dir) => {
    const rows = 1_100_000;
    const cols = 64; // 281.6 MB of float32, in a sparse external data file: nothing is read
    const proto = new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
      .input('ids', 'int64', ['batch'])
      .output('y', 'float32', ['batch', cols])
      .initializer('big', 'float32', [1, cols], new Float32Array(cols))
      .node('Gather', ['big', 'ids'], ['y'], { axis: 0 }, { name: '/big/Gather' })
      .toModelProto();
    const t = proto.graph!.initializer![0];
    t.dims = [rows, cols];
    t.rawData = new Uint8Array(0);
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: 'big.bin' }];
    await fs.promises.writeFile(path.join(dir, 'big.bin'), '');
    await fs.promises.truncate(path.join(dir, 'big.bin'), rows * cols * 4);
    const file = path.join(dir, 'big.onnx');
    await writeOnnxFile(file, proto);
    const o = await quantizeModel(await readModel(file), { dtype: 'int4', scales: 'column', verify: false });
    assert.equal(o.changes.length, 0);
    assert.ok(o.notes.some((n) => n.includes('Left as it was: big (269 MiB: per-column scales are fitted on the whole table in memory (at most 256 MiB); per-row scales stream it)')), o.notes.join('\n'));
  });
});

test('TF.js int4/int3/int2 are refused: manifests have no 4-, 3- or 2-bit dtype', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const ir = await readModel(fx.models['two-tower'].tfjsModelJson!);
  for (const dtype of ['int4', 'int3', 'int2'] as const) {
    await assert.rejects(
      quantizeModel(ir, { dtype }),
      (e: unknown) => e instanceof ModelFileError && e.message.includes(`${dtype} is ONNX only: TF.js weight manifests have no 4-, 3- or 2-bit dtype (uint8 is the smallest)`),
    );
  }
});

test('NeuMF fixture (8-wide tables): int4 runs in ORT, smaller than int8', async () => {
  const fx = await writeTinyFixtures(fixturesDir);
  const ir = await readModel(fx.models.neumf.onnxPath!);
  const o4 = await quantizeModel(ir, { dtype: 'int4' });
  const o8 = await quantizeModel(ir, { dtype: 'int8', tensors: 'embeddings', verify: false });
  const sum = (o: typeof o4) => o.changes.reduce((a, c) => a + c.after.reduce((b, x) => b + x.bytes, 0), 0);
  assert.equal(o4.changes.length, o8.changes.length);
  // 500 x 8 item table: int8 4000 + 1000; int4 2000 + 1000 + 500
  const item = o4.changes.find((c) => c.tensor === 'item_gmf_embedding/embeddings')!;
  assert.deepEqual(item.after.map((a) => a.bytes), [2000, 1000, 500]);
  assert.ok(sum(o4) < 0.71 * sum(o8));
  assert.ok(o4.outputDiff && o4.outputDiff.maxAbsDiff < 0.1, `diff ${o4.outputDiff?.maxAbsDiff}`);
});

test('int8 tables and dense kernels: the reader finds their scales, the analysis reports the values ONNX Runtime computes', async () => {
  await withTemp(async (dir) => {
    const rows = 200;
    const cols = 24;
    // rank 2: the float table has a factorize opportunity, its int8 codes must not
    const lowRank = Float32Array.from({ length: rows * cols }, (_, i) => {
      const [r, c] = [Math.floor(i / cols), i % cols];
      return Math.sin(r) * Math.cos(c) + 0.5 * Math.cos(2 * r) * Math.sin(3 * c);
    });
    const file = await gatherModel(path.join(dir, 'table.onnx'), 'table', lowRank, rows, cols);
    assert.ok((await analyzeModel(await readModel(file))).opportunities.some((o) => o.target === 'table' && o.kind === 'factorize'));
    const out = path.join(dir, 'table-int8.onnx');
    await (await quantizeModel(await readModel(file), { dtype: 'int8', verify: false })).write(out);
    const ir = await readModel(out);
    const codes = ir.tensors.find((t) => t.name === 'table_int8')!;
    assert.deepEqual(codes.codes, { bits: 8, shape: [rows, cols], scale: 'table_scale', granularity: 'row', lookup: true });
    assert.equal(ir.tensors.find((t) => t.name === 'table_scale')!.role, 'quant-param');
    assert.equal(ir.tensors.find((t) => t.name === 'table_scale')!.layer, codes.layer);
    // ORT's lookup of every row is the table the model computes with
    const looked = await gatherRows(out, BigInt64Array.from({ length: rows }, (_, i) => BigInt(i)));
    const report = await analyzeModel(ir);
    assert.deepEqual(report.opportunities.filter((o) => o.target === 'table_int8'), [], 'factorize the float model, not its codes');
    const r = report.tensors.find((t) => t.name === 'table_int8')!;
    assert.deepEqual([r.shape, r.params, r.storedDtype], [[rows, cols], rows * cols, 'int8']);
    assert.ok(Math.abs(r.min! - Math.min(...looked)) <= 1e-7 && Math.abs(r.max! - Math.max(...looked)) <= 1e-7);
    assert.ok(Math.abs(r.mean! - looked.reduce((a, b) => a + b, 0) / looked.length) <= 1e-7);
    // quantized again: nothing to do, and the notes say why
    const again = await quantizeModel(ir, { dtype: 'int8', verify: false });
    assert.deepEqual(again.changes, []);
    assert.ok(again.notes.includes('No tensor was quantized: the output is the same model. 1 of its tensors is stored as codes already (int8): quantize the float model to store them otherwise.'), again.notes.join('\n'));
    // its rows cannot be pruned in place: a clear refusal, not a write error
    await assert.rejects(pruneRows(ir, { sparsity: 0.5 }), (e: unknown) => e instanceof ModelFileError && e.message.endsWith('table_int8 is stored as int8 codes: prune rows before quantizing'));

    // a dense kernel: x [n, 16] @ W [16, 8]; with x = I, ORT outputs the kernel the model computes with
    const w = normal(16 * 8, 22, 0.4);
    const dense = path.join(dir, 'dense.onnx');
    await writeOnnxFile(dense, new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
      .input('x', 'float32', ['batch', 16])
      .output('y', 'float32', ['batch', 8])
      .initializer('fc.weight', 'float32', [16, 8], w)
      .node('MatMul', ['x', 'fc.weight'], ['y'], {}, { name: '/fc/MatMul' })
      .toModelProto());
    const dq = path.join(dir, 'dense-int8.onnx');
    await (await quantizeModel(await readModel(dense), { dtype: 'int8', verify: false })).write(dq);
    const dir2 = await readModel(dq);
    const k = dir2.tensors.find((t) => t.codes)!;
    assert.deepEqual(k.codes, { bits: 8, shape: [16, 8], scale: dir2.tensors.find((t) => t.role === 'quant-param')!.name, granularity: 'column', lookup: false });
    const sess = await ort.InferenceSession.create(dq);
    let kernel: Float32Array;
    try {
      const eye = new Float32Array(16 * 16).map((_, i) => (i % 17 === 0 ? 1 : 0));
      kernel = (await sess.run({ x: new ort.Tensor('float32', eye, [16, 16]) })).y.data as Float32Array;
    } finally {
      await sess.release();
    }
    const kr = (await analyzeModel(dir2, { spectrum: false })).tensors.find((t) => t.name === k.name)!;
    assert.equal(kr.storedDtype, 'int8');
    assert.ok(Math.abs(kr.min! - Math.min(...kernel)) <= 1e-7 && Math.abs(kr.max! - Math.max(...kernel)) <= 1e-7, `${kr.min} ${kr.max}`);
    assert.ok(Math.abs(kr.mean! - kernel.reduce((a, b) => a + b, 0) / kernel.length) <= 1e-7);
  });
});

test("another exporter's QDQ weight (DequantizeLinear with a zero point, unnamed nodes): its scale and zero point join the weight's layer", async () => {
  await withTemp(async (dir) => {
    const file = path.join(dir, 'qdq.onnx');
    const codes = Int8Array.from({ length: 16 * 8 }, (_, i) => ((i * 37) % 255) - 127);
    const scale = Float32Array.from({ length: 8 }, (_, i) => 0.01 * (i + 1));
    const zero = Int8Array.from({ length: 8 }, (_, i) => i - 4);
    await writeOnnxFile(file, new OnnxGraphBuilder({ graphName: 'g', opset: 17 })
      .input('x', 'float32', ['batch', 16])
      .output('y', 'float32', ['batch', 8])
      .initializer('w_q', 'int8', [16, 8], codes)
      .initializer('w_s', 'float32', [8], scale)
      .initializer('w_z', 'int8', [8], zero)
      .node('DequantizeLinear', ['w_q', 'w_s', 'w_z'], ['w'], { axis: 1 }, { name: 'DequantizeLinear_0' })
      .node('MatMul', ['x', 'w'], ['y'], {}, { name: 'MatMul_1' })
      .toModelProto());
    const ir = await readModel(file);
    const w = ir.tensors.find((t) => t.name === 'w_q')!;
    assert.deepEqual(w.codes, { bits: 8, shape: [16, 8], scale: 'w_s', zeroPoint: 'w_z', granularity: 'column', lookup: false });
    assert.deepEqual(ir.tensors.filter((t) => t.layer === w.layer).map((t) => [t.name, t.role]).sort(), [['w_q', 'dense-kernel'], ['w_s', 'quant-param'], ['w_z', 'quant-param']]);
    assert.deepEqual(ir.layers.map((l) => l.name), [w.layer], 'no layer of its own for the DequantizeLinear');
    // the values: (code - zero point) x scale, per column
    const r = (await analyzeModel(ir, { spectrum: false })).tensors.find((t) => t.name === 'w_q')!;
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < codes.length; i++) {
      const v = Math.fround((codes[i] - zero[i % 8]) * scale[i % 8]);
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    assert.ok(Math.abs(r.min! - min) < 1e-6 && Math.abs(r.max! - max) < 1e-6, `${r.min} ${r.max} vs ${min} ${max}`);
  });
});
