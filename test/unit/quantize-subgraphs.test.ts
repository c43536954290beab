// Tables read inside subgraphs (the Loop torch.onnx writes for nn.EmbeddingBag, an If's
// branches): quantize rewrites their row lookups where they are, or leaves the table with its
// reason. Models built by hand, so that each case is exact; the PyTorch export itself is in
// pytorch-layouts.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { planOnnxQuantization } from '../../src/core/compress/quantize-onnx.js';
import { searchSpace } from '../../src/core/compress/plan/space.js';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import type { onnx } from 'onnx-proto';

const ROWS = 200;
const DIM = 8;
const table = (seed: number): Float32Array => Float32Array.from({ length: ROWS * DIM }, (_, i) => Math.sin(seed * 7.3 + i * 1.7) * (1 + (i % 5)));

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ps-quantize-subgraphs-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A Loop that sums the rows of `t` for `ids` (one per iteration), as torch exports an EmbeddingBag. */
function bagLoop(b: OnnxGraphBuilder, t: string, out: string, name: string): OnnxGraphBuilder {
  const body = new OnnxGraphBuilder({ graphName: `${name}_body` })
    .input(`${name}_i`, 'int64', [])
    .input(`${name}_c`, 'bool', [])
    .input(`${name}_acc`, 'float32', [DIM])
    .output(`${name}_c_out`, 'bool', [])
    .output(`${name}_acc_out`, 'float32', [DIM])
    .node('Identity', [`${name}_c`], [`${name}_c_out`], {}, { name: `${name}_keep` })
    .node('Gather', ['ids', `${name}_i`], [`${name}_id`], { axis: { i: 0 } }, { name: `${name}_pick` })
    .node('Gather', [t, `${name}_id`], [`${name}_row`], { axis: { i: 0 } }, { name: `${name}_lookup` })
    .node('Add', [`${name}_acc`, `${name}_row`], [`${name}_acc_out`], {}, { name: `${name}_sum` })
    .toGraphProto();
  return b.node('Loop', ['trip', 'yes', 'zero'], [out], { body: { graph: body } }, { name });
}

function loopBase(): OnnxGraphBuilder {
  return new OnnxGraphBuilder({ graphName: 'bags', opset: 13 })
    .input('ids', 'int64', [3])
    .initializer('trip', 'int64', [], new BigInt64Array([3n]))
    .initializer('yes', 'bool', [], new Uint8Array([1]))
    .initializer('zero', 'float32', [DIM], new Float32Array(DIM));
}

/** An If whose branches both gather W; U is gathered in the else branch and in the main graph. */
function ifModel(): onnx.ModelProto {
  const thenB = new OnnxGraphBuilder({ graphName: 'then' })
    .output('t_out', 'float32', [3, DIM])
    .node('Gather', ['W', 'ids'], ['t_w'], { axis: { i: 0 } }, { name: 't_lookup' })
    .node('Add', ['t_w', 'u'], ['t_out'], {}, { name: 't_add' })
    .toGraphProto();
  const elseB = new OnnxGraphBuilder({ graphName: 'else' })
    .output('e_out', 'float32', [3, DIM])
    .node('Gather', ['W', 'ids'], ['e_w'], { axis: { i: 0 } }, { name: 'e_lookup_w' })
    .node('Gather', ['U', 'ids'], ['e_u'], { axis: { i: 0 } }, { name: 'e_lookup_u' })
    .node('Sub', ['e_w', 'e_u'], ['e_out'], {}, { name: 'e_sub' })
    .toGraphProto();
  return new OnnxGraphBuilder({ graphName: 'branches', opset: 13 })
    .input('flag', 'float32', [])
    .input('ids', 'int64', [3])
    .output('y', 'float32', [3, DIM])
    .initializer('W', 'float32', [ROWS, DIM], table(1))
    .initializer('U', 'float32', [ROWS, DIM], table(2))
    .initializer('nought', 'float32', [], new Float32Array([0]))
    .node('Greater', ['flag', 'nought'], ['cond'], {}, { name: 'positive' })
    .node('Gather', ['U', 'ids'], ['u'], { axis: { i: 0 } }, { name: 'main_lookup' })
    .node('If', ['cond'], ['y'], { then_branch: { graph: thenB }, else_branch: { graph: elseB } }, { name: 'branch' })
    .toModelProto();
}

async function run(path: string, feeds: Record<string, ort.Tensor>): Promise<number[]> {
  const s = await ort.InferenceSession.create(path);
  try {
    return Array.from((await s.run(feeds))[s.outputNames[0]].data as Float32Array);
  } finally {
    await s.release();
  }
}

/** What the lookups give: the stored rows of `name`, dequantized as the int8 graph does (codes x row scale). */
async function int8Rows(path: string, name: string): Promise<Float32Array> {
  const ir = await readOnnxModel(path);
  const codes = await readTensorFloat32(ir.tensors.find((t) => t.name === `${name}_int8`)!);
  const scales = await readTensorFloat32(ir.tensors.find((t) => t.name === `${name}_scale`)!);
  return codes.map((c, i) => c * scales[Math.floor(i / DIM)]);
}

test('an If whose two branches gather the same table: both rewritten, the float tables go, scores equal the dequantized tables exactly', async () => {
  await withDir(async (dir) => {
    const src = join(dir, 'if.onnx');
    await writeOnnxFile(src, ifModel());
    const o = await quantizeModel(await readOnnxModel(src), { dtype: 'int8', tensors: ['W', 'U'] });
    assert.deepEqual(o.changes.map((c) => c.tensor).sort(), ['U', 'W']);
    assert.match(o.notes.join('\n'), /W, U are gathered inside subgraphs \(branch\/then_branch, branch\/else_branch/);
    const out = join(dir, 'q.onnx');
    await o.write(out);
    const q = await readOnnxModel(out);
    assert.deepEqual(q.tensors.filter((t) => t.name === 'W' || t.name === 'U'), []);
    // the reference: the original graph with the tables as the quantized file stores them
    const ref = ifModel();
    const W = await int8Rows(out, 'W');
    const U = await int8Rows(out, 'U');
    for (const t of ref.graph!.initializer!) if (t.name === 'W' || t.name === 'U') t.rawData = new Uint8Array((t.name === 'W' ? W : U).buffer);
    const refPath = join(dir, 'ref.onnx');
    await writeOnnxFile(refPath, ref);
    for (const flag of [1, -1]) {
      const feeds = { flag: new ort.Tensor('float32', [flag], []), ids: new ort.Tensor('int64', BigInt64Array.from([39n, 0n, 7n]), [3]) };
      const got = await run(out, feeds);
      assert.deepEqual(got, await run(refPath, feeds), `flag ${flag}`);
      const float = await run(src, feeds);
      assert.ok(got.some((x, i) => x !== float[i]), 'the tables are rounded');
    }
  });
});

test('a table gathered in a Loop and also read by a Transpose in the main graph is left float32, with the reason; a bag table beside it is rewritten', async () => {
  await withDir(async (dir) => {
    const m = bagLoop(loopBase(), 'W', 'w_sum', 'w_bag');
    bagLoop(m, 'V', 'v_sum', 'v_bag')
      .output('y', 'float32', [DIM])
      .output('wt', 'float32', [DIM, ROWS])
      .initializer('W', 'float32', [ROWS, DIM], table(3))
      .initializer('V', 'float32', [ROWS, DIM], table(4))
      .node('Add', ['w_sum', 'v_sum'], ['y'], {}, { name: 'add' })
      .node('Transpose', ['W'], ['wt'], { perm: { ints: [1, 0] } }, { name: 'tr' });
    const src = join(dir, 'tied.onnx');
    await writeOnnxFile(src, m.toModelProto());
    const ir = await readOnnxModel(src);
    for (const dtype of ['float16', 'int8', 'int4'] as const) {
      const o = await quantizeModel(ir, { dtype, tensors: ['W', 'V'] });
      assert.deepEqual(o.changes.map((c) => c.tensor), ['V'], dtype);
      assert.match(o.notes.join('\n'), /Left as it was: W \(used inside a subgraph \(If\/Loop\/Scan body\): gathered inside w_bag\/body and read by Transpose \(input 0\) in the main graph/, dtype);
      const out = join(dir, `${dtype}.onnx`);
      await o.write(out);
      const feeds = { ids: new ort.Tensor('int64', BigInt64Array.from([1n, 2n, 39n]), [3]) };
      assert.equal((await run(out, feeds)).length, DIM, `${dtype}: runs`);
    }
    // the search does not offer W storage types that would be the float model again, nor does the analysis advise any
    assert.deepEqual(searchSpace(ir).filter((u) => u.kind === 'table').map((u) => u.name), ['V']);
    const advice = (await analyzeModel(ir)).opportunities;
    assert.ok(advice.some((o) => o.target === 'V'), JSON.stringify(advice.map((o) => o.title)));
    assert.deepEqual(advice.filter((o) => o.target === 'W'), []);
  });
});

test('two Loops of one name (a model ONNX Runtime refuses): the plan leaves their tables with the reason and still quantizes a main-graph table', async () => {
  await withDir(async (dir) => {
    const m = bagLoop(loopBase(), 'W1', 's1', 'bag');
    bagLoop(m, 'W2', 's2', 'bag')
      .output('y', 'float32', [DIM])
      .output('u', 'float32', [3, DIM])
      .initializer('W1', 'float32', [ROWS, DIM], table(5))
      .initializer('W2', 'float32', [ROWS, DIM], table(6))
      .initializer('U', 'float32', [ROWS, DIM], table(7))
      .node('Add', ['s1', 's2'], ['y'], {}, { name: 'add' })
      .node('Gather', ['U', 'ids'], ['u'], { axis: { i: 0 } }, { name: 'main_lookup' });
    const src = join(dir, 'dup.onnx');
    await writeOnnxFile(src, m.toModelProto());
    const ir = await readOnnxModel(src);
    const plan = await planOnnxQuantization(ir, ir.tensors.filter((t) => ['W1', 'W2', 'U'].includes(t.name)), { dtype: 'int8', reduceRange: false, dense: 'weights-only', lookup: 'compact' });
    assert.deepEqual(plan.changes.map((c) => c.tensor), ['U']);
    assert.deepEqual(plan.skipped, ['W1', 'W2'].map((tensor) => ({ tensor, reason: 'used inside a subgraph (If/Loop/Scan body): read inside bag/body, and 2 main-graph nodes have that name' })));
    assert.equal(plan.edit.subgraphEdits, undefined);
  });
});
