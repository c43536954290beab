// Byte scales for int4/int3/int2 tables (compress/scale-levels.ts): one byte per row holds the
// row's zero point and the index of its scale among the table's levels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { streamedRowsLowBit } from '../../src/core/compress/quantize-onnx.js';
import { dequantizeRowsLowBit, quantizeColumnsLowBit, dequantizeColumnsLowBit, quantizeRowsLowBit } from '../../src/core/compress/quantize-math.js';
import { fitScaleLevels, quantizeRowsLowBitLevels } from '../../src/core/compress/scale-levels.js';
import { LowBits, packedRowBytes, packRowBytes, scaleLevelCount, unpackRowBytes } from '../../src/core/model/packed-codes.js';
import { ModelFileError, type ModelTensor } from '../../src/core/model/ir.js';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readModel } from '../../src/core/model/read-model.js';
import { forEachDequantizedChunk } from '../../src/core/model/codes-data.js';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import { quantizeSteps, searchSpace, splitForm } from '../../src/core/compress/plan/space.js';
import { withTempDir } from '../fixtures/temp-dir.js';
import { createRng } from '../../src/core/samples/prng.js';

const withTemp = (fn: (dir: string) => Promise<void>) => withTempDir('ps-byte-', fn);


/** A table whose rows' norms spread as embedding tables' do: N(0, 1) rows times a log-normal scale per row; row 3 all zero. */
function spreadTable(rows: number, cols: number, seed: number): Float32Array {
  const rng = createRng(seed);
  const gauss = () => rng.normal();
  const t = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const s = 0.05 * Math.exp(gauss());
    for (let c = 0; c < cols; c++) t[r * cols + c] = r === 3 ? 0 : s * gauss();
  }
  return t;
}

function rmse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

/** What the graph reconstructs from a byte-scaled table: (code - zero point) * level, in float32. */
function reconstruct(q: ReturnType<typeof quantizeRowsLowBitLevels>): Float32Array {
  const { scales, zeroPoints } = unpackRowBytes(q.rowBytes, q.levels, q.bits);
  const out = new Float32Array(q.rows * q.cols);
  for (let r = 0; r < q.rows; r++) for (let c = 0; c < q.cols; c++) out[r * q.cols + c] = Math.fround((q.codes[r * q.cols + c] - zeroPoints[r]) * scales[r]);
  return out;
}

test('row bytes: exact layout (level << bits | zero point), round trips, and what does not fit is an error', () => {
  assert.deepEqual([scaleLevelCount(4), scaleLevelCount(3), scaleLevelCount(2)], [16, 32, 64]);
  assert.deepEqual([...packRowBytes(Uint8Array.of(0, 15, 3), Uint8Array.of(0, 15, 7), 4)], [0, 255, 55]);
  assert.deepEqual([...packRowBytes(Uint8Array.of(31, 1), Uint8Array.of(7, 2), 3)], [255, 10]);
  assert.deepEqual([...packRowBytes(Uint8Array.of(63, 2), Uint8Array.of(3, 1), 2)], [255, 9]);
  const u = unpackRowBytes(Uint8Array.of(0, 255, 55), Float32Array.from({ length: 16 }, (_, i) => i + 0.5), 4);
  assert.deepEqual([...u.scales], [0.5, 15.5, 3.5]);
  assert.deepEqual([...u.zeroPoints], [0, 15, 7]);
  assert.throws(() => packRowBytes(Uint8Array.of(16), Uint8Array.of(0), 4), /row 0's level 16 or zero point 0 does not fit one byte at 4 bits/);
  assert.throws(() => packRowBytes(Uint8Array.of(0), Uint8Array.of(8), 3), /zero point 8 does not fit/);
  assert.throws(() => unpackRowBytes(Uint8Array.of(0x50), new Float32Array(4), 4), /row 0 names level 5 of 4/);
});

test('fitScaleLevels: all-zero and one-scale tables, as many distinct scales as levels, and more', () => {
  assert.deepEqual([...fitScaleLevels(new Float32Array(5), 4)], new Array(16).fill(0));
  assert.deepEqual([...fitScaleLevels(Float32Array.of(0, 0.25, 0.25, 0), 4)], new Array(16).fill(0.25));
  // 16 distinct scales (and zero rows) for 16 levels: each is a level of its own
  const distinct = Array.from({ length: 16 }, (_, k) => 2 ** (k - 8));
  const levels = fitScaleLevels(Float32Array.from([0, ...distinct, ...distinct.slice(0, 5)]), 4);
  assert.equal(levels.length, 16);
  levels.forEach((l, k) => assert.ok(Math.abs(l / distinct[k] - 1) < 1e-6, `level ${k}: ${l} vs ${distinct[k]}`));
  // 1000 log-uniform scales over [1e-3, 1]: 64 ascending levels inside the range, placed where the
  // squared error is (each row weighs s^2): a lower weighted cost than levels evenly spaced in log
  const many = Float32Array.from({ length: 1000 }, (_, i) => 1e-3 * 1000 ** (i / 999));
  const l64 = fitScaleLevels(many, 2);
  assert.equal(l64.length, 64);
  for (let k = 1; k < 64; k++) assert.ok(l64[k] > l64[k - 1], 'ascending, no two equal');
  assert.ok(l64[0] >= 1e-3 && l64[63] <= 1);
  const cost = (levels: ArrayLike<number>) =>
    Array.from(many).reduce((c, s) => c + s * s * Math.min(...Array.from(levels, (l) => Math.log(s / l) ** 2)), 0);
  const even = Array.from({ length: 64 }, (_, k) => 1e-3 * 1000 ** ((k + 0.5) / 64));
  assert.ok(cost(l64) < 0.8 * cost(even), `weighted cost ${cost(l64)} vs evenly spaced ${cost(even)}`);
  assert.ok(Math.abs(Math.log(1 / l64[63])) < 0.01, `the largest scale has a level of its own nearly: ${l64[63]}`);
});

test('quantizeRowsLowBitLevels: every row stores a level, zeros stay exact, error near per-row float32 scales and far under per-column ones', () => {
  const rows = 600;
  const cols = 24;
  const t = spreadTable(rows, cols, 7);
  t[10 * cols + 5] = 0;
  for (const bits of [4, 3, 2] as LowBits[]) {
    const q = quantizeRowsLowBitLevels(t, rows, cols, bits);
    assert.equal(q.levels.length, scaleLevelCount(bits));
    assert.equal(q.rowBytes.length, rows);
    const { scales, zeroPoints } = unpackRowBytes(q.rowBytes, q.levels, bits);
    assert.deepEqual([...zeroPoints], [...q.zeroPoints]);
    for (let r = 0; r < rows; r++) assert.equal(r === 3 ? 0 : scales[r], q.scales[r], `row ${r}: the scale the graph reads`);
    const back = reconstruct(q);
    assert.ok(back.subarray(3 * cols, 4 * cols).every((v) => v === 0), 'the all-zero row');
    assert.equal(back[10 * cols + 5], 0, 'a zero weight stays zero');
    assert.ok(Math.abs(rmse(t, back) - q.rmse) <= 1e-9, `reported RMSE ${q.rmse} is the real one ${rmse(t, back)}`);
    const perRow = rmse(t, dequantizeRowsLowBit(quantizeRowsLowBit(t, rows, cols, bits, false)));
    const perColumn = rmse(t, dequantizeColumnsLowBit(quantizeColumnsLowBit(t, rows, cols, bits)));
    // row norms spread 400x here (log-normal, sd 1): 16 levels for int4 still keep the error within 8%
    assert.ok(q.rmse <= perRow * 1.08, `int${bits}: byte scales ${q.rmse} vs per row ${perRow}`);
    assert.ok(q.rmse < perColumn * 0.7, `int${bits}: byte scales ${q.rmse} vs per column ${perColumn}`);
  }
});

test('a row above the top level of a table with fewer distinct scales than levels keeps a level next to its own (regression: it took level 0)', () => {
  // three rows of one shape at 0.01, 1 and 1.0001: the top two share a histogram bin, so a level
  // (their mean) lies just under the largest row's own scale, and the levels above it repeat it
  const cols = 16;
  const base = Float32Array.from({ length: cols }, (_, c) => Math.sin(c * 1.7) + 0.1 * c - 0.5);
  const t = new Float32Array(3 * cols);
  [0.01, 1, 1.0001].forEach((k, r) => base.forEach((v, c) => (t[r * cols + c] = k * v)));
  for (const bits of [4, 3, 2] as LowBits[]) {
    const q = quantizeRowsLowBitLevels(t, 3, cols, bits);
    const own = quantizeRowsLowBit(t, 3, cols, bits, false);
    for (let r = 0; r < 3; r++) assert.ok(Math.abs(q.scales[r] / own.scales[r] - 1) < 0.01, `int${bits} row ${r}: level ${q.scales[r]}, own scale ${own.scales[r]}`);
    assert.ok(q.rmse <= own.rmse * 1.01, `int${bits}: RMSE ${q.rmse} against ${own.rmse} per row`);
  }
});

function memoryTable(rows: number, cols: number, values: Float32Array): ModelTensor {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  return {
    name: 't', shape: [rows, cols], dtype: 'float32', role: 'embedding', layer: 't', trainable: true, consumers: ['Gather'], origin: 'initializer',
    storage: { dtype: 'float32', byteLength: bytes.byteLength, source: { kind: 'bytes', bytes }, location: 'memory' },
  };
}

test('streamedRowsLowBit with byte scales equals quantizeRowsLowBitLevels bit for bit, chunks of 1 row to all', async () => {
  const rows = 97;
  const cols = 13;
  const t = spreadTable(rows, cols, 3);
  for (const bits of [4, 3, 2] as LowBits[]) {
    const whole = quantizeRowsLowBitLevels(t, rows, cols, bits);
    for (const chunk of [cols, 10 * cols, rows * cols]) {
      const s = await streamedRowsLowBit(memoryTable(rows, cols, t), bits, true, chunk, undefined, 'byte');
      assert.deepEqual(s.levels, whole.levels);
      assert.deepEqual(s.rowBytes, whole.rowBytes);
      assert.equal(s.rmse, whole.rmse);
      assert.equal(s.scaleBits, undefined, 'levels are float32');
      const parts: Uint8Array[] = [];
      await s.packed.stream(async (b) => void parts.push(b.slice()));
      assert.deepEqual(Buffer.concat(parts), Buffer.from(whole.packed), `int${bits}, chunks of ${chunk / cols} rows`);
    }
  }
});

async function gatherModel(file: string, t: Float32Array, rows: number, cols: number, opset: number): Promise<void> {
  await writeOnnxFile(file, new OnnxGraphBuilder({ graphName: 'g', opset })
    .input('ids', 'int64', ['batch'])
    .output('y', 'float32', ['batch', cols])
    .initializer('table', 'float32', [rows, cols], t)
    .node('Gather', ['table', 'ids'], ['y'], { axis: 0 }, { name: '/table/Gather' })
    .toModelProto());
}

for (const opset of [17, 18]) {
  test(`ONNX opset ${opset}: byte-scaled int4/int3/int2 tables, exact bytes, ORT equal to our own reconstruction, read back as the values they stand for`, async () => {
    await withTemp(async (dir) => {
      const rows = 400;
      const cols = 21;
      const t = spreadTable(rows, cols, 11);
      const file = path.join(dir, 'm.onnx');
      await gatherModel(file, t, rows, cols, opset);
      const ids = BigInt64Array.from({ length: 150 }, (_, i) => BigInt((i * 13) % rows));
      for (const bits of [4, 3, 2] as LowBits[]) {
        const dtype = `int${bits}` as 'int4' | 'int3' | 'int2';
        const o = await quantizeModel(await readModel(file), { dtype, scales: 'byte' });
        assert.equal(o.settings.scales, 'byte');
        const L = scaleLevelCount(bits);
        assert.deepEqual(o.changes[0].after, [
          { name: `table_${dtype}`, shape: [rows, packedRowBytes(cols, bits)], dtype: 'uint8', bytes: rows * packedRowBytes(cols, bits) },
          { name: 'table_scale_levels', shape: [L], dtype: 'float32', bytes: 4 * L },
          { name: 'table_row_byte', shape: [rows, 1], dtype: 'uint8', bytes: rows },
        ]);
        assert.match(o.changes[0].action, new RegExp(`one byte per row: its zero point and one of the table's ${L} scale levels`));
        assert.ok(o.notes.some((n) => n.includes(`1 with one byte per row, its zero point (low ${bits} bits) and the index of its scale among the table's ${L} levels`)), o.notes.join('\n'));
        assert.ok(o.notes.some((n) => /^Checked in onnxruntime-node against the original/.test(n)), 'the check against the float model ran');
        // against the default per-row layout: 2 bytes a row less (float16 scale + uint8 zero point -> one byte), plus the levels
        const r = await quantizeModel(await readModel(file), { dtype, verify: false });
        const bytes = (x: typeof o) => x.changes[0].after.reduce((n, a) => n + a.bytes, 0);
        assert.equal(bytes(r) - bytes(o), 2 * rows - 4 * L);
        const out = path.join(dir, `q${bits}.onnx`);
        await o.write(out);
        const expected = reconstruct(quantizeRowsLowBitLevels(t, rows, cols, bits));
        const sess = await ort.InferenceSession.create(out);
        const y = (await sess.run({ ids: new ort.Tensor('int64', ids, [ids.length]) })).y.data as Float32Array;
        await sess.release();
        ids.forEach((id, i) => {
          for (let c = 0; c < cols; c++) assert.equal(y[i * cols + c], expected[Number(id) * cols + c], `id ${id} col ${c}`);
        });
        const ir = await readModel(out);
        const ops = new Set(ir.graph.nodes.map((n) => n.op));
        assert.equal(ops.has('BitwiseAnd'), opset >= 18, 'the zero point is masked at opset 18, shifted out before');
        const codes = ir.tensors.find((x) => x.name === `table_${dtype}`)!;
        assert.deepEqual(codes.codes, { bits, shape: [rows, cols], scale: 'table_scale_levels', rowByte: 'table_row_byte', granularity: 'row', lookup: true });
        for (const p of ['table_scale_levels', 'table_row_byte']) {
          const x = ir.tensors.find((q) => q.name === p)!;
          assert.equal(x.role, 'quant-param', p);
          assert.equal(x.layer, codes.layer, 'one layer: the table');
        }
        const values = new Float32Array(rows * cols);
        await forEachDequantizedChunk(codes, (n) => ir.tensors.find((x) => x.name === n), 5 * cols, (c, first) => void values.set(c, first));
        assert.deepEqual(values, expected, 'the reader dequantizes what ORT computes');
        const report = await analyzeModel(ir);
        const tr = report.tensors.find((x) => x.name === `table_${dtype}`)!;
        assert.deepEqual(tr.storedAs, { bits, granularity: 'row' });
        assert.equal(tr.params, rows * cols);
      }
    });
  });
}

test("scales 'byte' and 'column' are for int4/int3/int2; an unknown layout names the three", async () => {
  await withTemp(async (dir) => {
    const file = path.join(dir, 'm.onnx');
    await gatherModel(file, spreadTable(50, 16, 1), 50, 16, 17);
    for (const scales of ['byte', 'column'] as const) {
      for (const dtype of ['int8', 'float16'] as const) {
        await assert.rejects(
          quantizeModel(await readModel(file), { dtype, scales, verify: false }),
          (e: unknown) => e instanceof ModelFileError && e.message.includes(`quantize: scales '${scales}' is for int4, int3 and int2 tables`),
        );
      }
    }
    await assert.rejects(
      quantizeModel(await readModel(file), { dtype: 'int4', scales: 'table' as 'row', verify: false }),
      (e: unknown) => e instanceof ModelFileError && e.message.includes('quantize: scales must be row, byte or column, got "table"'),
    );
  });
});

test('compress search space: byte-scaled options for tables 8 wide or more, and the quantize steps they make', async () => {
  await withTemp(async (dir) => {
    const file = path.join(dir, 'm.onnx');
    await gatherModel(file, spreadTable(200, 16, 2), 200, 16, 17);
    const ir = await readModel(file);
    const unit = searchSpace(ir).find((u) => u.name === 'table')!;
    const ids = unit.options.map((o) => o.id);
    for (const id of ['int4byte', 'int3byte', 'int2byte', 'r0.95+int4byte', 'r0.9+int4byte', 'r0.8+int4byte']) assert.ok(ids.includes(id), id);
    assert.ok(!ids.includes('r0.7+int4byte'), 'not offered at 70% of the energy or less (factors mostly under 8 wide, per column anyway)');
    assert.deepEqual(quantizeSteps([unit], { table: 'int3byte' }, ir), [{ method: 'quantize', settings: { dtype: 'int3', tensors: ['table'], scales: 'byte' } }]);
    assert.deepEqual(splitForm('int4byte'), { dtype: 'int4', scales: 'byte' });
    assert.deepEqual(splitForm('int3col'), { dtype: 'int3', scales: 'column' });
    assert.deepEqual(splitForm('int8'), { dtype: 'int8' });
  });
  await withTemp(async (dir) => {
    // a 6-wide table has per-column scales whatever is asked: no byte option
    const file = path.join(dir, 'n.onnx');
    await gatherModel(file, spreadTable(200, 6, 2), 200, 6, 17);
    const unit = searchSpace(await readModel(file)).find((u) => u.name === 'table')!;
    assert.ok(!unit.options.some((o) => o.id.endsWith('byte')));
  });
  await withTemp(async (dir) => {
    // 60 rows save 120 bytes: enough for int4's 16 levels (64 bytes), not int3's 32 or int2's 64
    const file = path.join(dir, 's.onnx');
    await gatherModel(file, spreadTable(60, 16, 2), 60, 16, 17);
    const unit = searchSpace(await readModel(file)).find((u) => u.name === 'table')!;
    assert.deepEqual(unit.options.filter((o) => o.id.endsWith('byte')).map((o) => o.id), ['int4byte', 'r0.95+int4byte', 'r0.9+int4byte', 'r0.8+int4byte']);
  });
});
