// Real exported models (e.g. PyTorch's silero_vad.onnx from npm packages). Runs only when
// PRUNESCOPE_REAL_ONNX_DIR names a folder of .onnx files; see the ONNX helper report for how to
// fetch them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { GraphValueInfo, ModelIR } from '../../src/core/model/ir.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { writeOnnxModel } from '../../src/core/model/onnx/write.js';
import { readTensorBytes, readTensorFloat32 } from '../../src/core/model/tensor-data.js';

const DIR = process.env.PRUNESCOPE_REAL_ONNX_DIR;

/** Every TensorProto the reader should find, counted independently from the decoded proto. */
function protoTensorCount(m: onnx.IModelProto): number {
  let n = 0;
  const visit = (g: onnx.IGraphProto | null | undefined): void => {
    if (!g) return;
    n += (g.initializer ?? []).length + (g.sparseInitializer ?? []).length;
    for (const node of g.node ?? []) {
      if (node.opType === 'Constant' && !node.domain && (node.attribute ?? []).some((a) => /^(value|value_floats?|value_ints?)$/.test(a.name ?? ''))) n++;
      for (const a of node.attribute ?? []) {
        visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
    }
  };
  visit(m.graph);
  return n;
}

/**
 * Generated inputs: dims named like a batch, and the first dim, are 1; other unknown dims are
 * `fill` ('all'), or only the last dim of 2-D inputs is (`'last2d'`: audio [batch, samples]).
 */
function feedsFor(inputs: GraphValueInfo[], fill: number, intValue: bigint, mode: 'all' | 'last2d'): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  let seed = 7;
  const rnd = (): number => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647 - 0.5;
  };
  for (const inp of inputs) {
    const dims = inp.shape ?? [];
    const shape = dims.map((d, i) => {
      if (typeof d === 'number' && d >= 0) return d;
      if (i === 0 || (typeof d === 'string' && /batch/i.test(d))) return 1;
      if (mode === 'all' || (dims.length === 2 && i === 1)) return fill;
      return 1;
    });
    const n = shape.reduce((a, b) => a * b, 1);
    if (inp.dtype === 'int64') feeds[inp.name] = new ort.Tensor('int64', new BigInt64Array(n).fill(intValue), shape);
    else if (inp.dtype === 'float32') feeds[inp.name] = new ort.Tensor('float32', Float32Array.from({ length: n }, rnd), shape);
    else throw new Error(`no generated input for ${inp.dtype}`);
  }
  return feeds;
}

async function outputsOf(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, number[]>> {
  const s = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
  try {
    const out = await s.run(feeds);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, Array.from(v.data as ArrayLike<number>, Number)]));
  } finally {
    await s.release();
  }
}

/** Proto as canonical JSON without tensor payloads (they are compared through the IR). */
function canonical(m: onnx.ModelProto): string {
  const o = onnx.ModelProto.toObject(m, { longs: String, bytes: String, defaults: false });
  return JSON.stringify(o, (k, v: unknown) => (['rawData', 'externalData', 'dataLocation', 'floatData', 'int32Data', 'int64Data', 'doubleData', 'uint64Data'].includes(k) ? undefined : v));
}

async function checkModel(path: string, work: string): Promise<void> {
  const ir = await readOnnxModel(path);
  const proto = onnx.ModelProto.decode(await readFile(path));
  assert.equal(ir.tensors.length, protoTensorCount(proto), 'every initializer / Constant / subgraph tensor found');
  // values read == shape products, for every numeric tensor
  let params = 0;
  let shapeProducts = 0;
  for (const t of ir.tensors) {
    if (t.dtype === 'string') continue;
    params += (await readTensorFloat32(t)).length;
    shapeProducts += t.shape.reduce((a, b) => a * b, 1);
  }
  assert.equal(params, shapeProducts);

  const base = path.split('/').pop() as string;
  const same = join(work, `same-${base}`);
  await writeOnnxModel(ir, same);
  assert.deepEqual(await readFile(same), await readFile(path), 'unchanged write is byte-identical');
  const spliced = join(work, `spliced-${base}`);
  await writeOnnxModel(ir, spliced, { externalData: { fileName: `spliced-${base}.data`, minBytes: Number.MAX_SAFE_INTEGER } });
  assert.deepEqual(await readFile(spliced), await readFile(path), 'wire-level rewrite with nothing changed is byte-identical');

  // all tensors >= 1 KiB moved to external data: every field except tensor payloads stays equal
  const ext = join(work, `ext-${base}`);
  await writeOnnxModel(ir, ext, { externalData: { fileName: `ext-${base}.data`, minBytes: 1024 } });
  const back: ModelIR = await readOnnxModel(ext);
  assert.deepEqual(back.tensors.map((t) => [t.name, t.dtype, t.shape, t.role, t.layer]), ir.tensors.map((t) => [t.name, t.dtype, t.shape, t.role, t.layer]));
  for (let i = 0; i < ir.tensors.length; i++) {
    if (ir.tensors[i].dtype === 'string') continue;
    assert.deepEqual(await readTensorBytes(back.tensors[i]), await readTensorBytes(ir.tensors[i]), ir.tensors[i].name);
  }
  assert.deepEqual(back.graph, ir.graph);
  assert.deepEqual(back.metadata, ir.metadata);
  assert.equal(canonical(onnx.ModelProto.decode(await readFile(ext))), canonical(proto));

  // the rewritten model gives identical outputs in onnxruntime-node
  let compared = false;
  const tries: Array<[number, 'all' | 'last2d']> = [[512, 'last2d'], [512, 'all'], [32, 'all'], [1, 'all']];
  for (const [fill, mode] of tries) {
    // 16000: a sample rate, what the audio models in the test set take as their int64 input
    for (const iv of [16000n, 1n]) {
      let feeds: Record<string, ort.Tensor>;
      let want: Record<string, number[]>;
      try {
        feeds = feedsFor(ir.graph.inputs, fill, iv, mode);
        want = await outputsOf(path, feeds);
      } catch {
        continue; // these generated inputs do not suit the model; try others
      }
      assert.deepEqual(await outputsOf(ext, feeds), want);
      compared = true;
      break;
    }
    if (compared) break;
  }
  if (!compared) console.log(`# ${base}: no generated input ran in ORT; outputs not compared`);
}

test('real ONNX exports: read, params, lossless round trip, identical ORT outputs', async (t) => {
  if (!DIR) {
    t.skip('set PRUNESCOPE_REAL_ONNX_DIR to a folder of .onnx files to run this test');
    return;
  }
  const files = (await readdir(DIR)).filter((f) => f.endsWith('.onnx')).sort();
  assert.ok(files.length > 0, `no .onnx files in ${DIR}`);
  const work = await mkdtemp(join(tmpdir(), 'ps-onnx-real-'));
  try {
    for (const f of files) await t.test(f, () => checkModel(join(DIR, f), work));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
