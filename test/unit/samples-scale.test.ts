import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { generateScaleModel } from '../fixtures/scale-model.js';

test('scale fixture (small): external data, planted zero / tail rows, runs in onnxruntime-node', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-scale-'));
  const r = await generateScaleModel(dir, { items: 3000, users: 500, dim: 16, hidden: [8], seed: 4, chunkRows: 700 });
  const data = fs.readFileSync(r.dataPath);
  const [userT, itemT] = r.tables;
  assert.equal(userT.offset, 0);
  assert.equal(itemT.offset % 64, 0);
  assert.equal(data.length, itemT.offset + 3000 * 16 * 4);
  // the model file itself is small: the tables are external
  const proto = onnx.ModelProto.decode(fs.readFileSync(r.onnxPath));
  const item = proto.graph!.initializer!.find((t) => t.name === 'item_embedding/embeddings')!;
  assert.equal(item.dataLocation, onnx.TensorProto.DataLocation.EXTERNAL);
  assert.deepEqual(item.dims!.map(Number), [3000, 16]);
  assert.deepEqual(
    item.externalData!.map((e) => [e.key, e.value]),
    [['location', 'scale-neumf.onnx.data'], ['offset', String(itemT.offset)], ['length', String(3000 * 64)]],
  );

  // planted rows, counted from the file
  const table = new Float32Array(data.buffer.slice(data.byteOffset + itemT.offset, data.byteOffset + itemT.offset + itemT.length));
  let zero = 0;
  let tiny = 0;
  for (let row = 0; row < 3000; row++) {
    let maxAbs = 0;
    for (let j = 0; j < 16; j++) maxAbs = Math.max(maxAbs, Math.abs(table[row * 16 + j]));
    if (maxAbs === 0) zero++;
    else if (maxAbs < 0.01) tiny++;
  }
  assert.equal(zero, itemT.zeroRows);
  assert.equal(tiny, itemT.tailRows);
  assert.ok(zero > 100 && zero < 200, `${zero} zero rows of 3000 at 5%`);
  assert.ok(tiny > 1650 && tiny < 1950, `${tiny} tail rows of 3000 at 60%`);

  // same seed, same bytes
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-scale-'));
  const r2 = await generateScaleModel(dir2, { items: 3000, users: 500, dim: 16, hidden: [8], seed: 4, chunkRows: 1000 });
  assert.ok(fs.readFileSync(r2.dataPath).equals(data), 'chunk size does not change the values');

  const session = await ort.InferenceSession.create(r.onnxPath);
  const out = await session.run({
    user: new ort.Tensor('int64', BigInt64Array.from([0n, 1n, 499n]), [3]),
    item: new ort.Tensor('int64', BigInt64Array.from([0n, 2999n, 5n]), [3]),
  });
  assert.deepEqual(out.score.dims, [3, 1]);
  for (const v of out.score.data as Float32Array) assert.ok(v > 0 && v < 1);
  await session.release();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(dir2, { recursive: true, force: true });
});
