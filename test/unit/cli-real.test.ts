// Acceptance of issue 2 on files made by other tools: `prunescope analyze --json` reports
// parameter and zero counts that agree exactly with the tensors in the file, counted here
// independently of our readers (onnx-proto decoding for ONNX; TF.js's own decodeWeights for TF.js,
// which dequantizes float16/uint8 the way TF.js does at load time).
// Runs only when PRUNESCOPE_REAL_ONNX_DIR / PRUNESCOPE_REAL_TFJS_DIR are set
// (scripts/fetch-real-models.sh prints them).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as tf from '@tensorflow/tfjs';
import { float16BitsToFloat32 } from '../../src/core/model/tensor-data.js';
import type { ModelReport } from '../../src/shared/report.js';

const CLI = join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const ONNX_DIR = process.env.PRUNESCOPE_REAL_ONNX_DIR;
const TFJS_DIR = process.env.PRUNESCOPE_REAL_TFJS_DIR;

function analyze(path: string): ModelReport {
  const out = execFileSync(process.execPath, [CLI, 'analyze', path, '--json', '--no-spectrum'], { maxBuffer: 1 << 30 });
  return JSON.parse(out.toString('utf8')) as ModelReport;
}

function checkReportSums(r: ModelReport): void {
  const params = r.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(r.totalParams, params, 'totalParams = sum of shape products');
  assert.equal(r.totalZeros, r.tensors.reduce((s, t) => s + t.zeros, 0), 'totalZeros = sum of tensor zeros');
  for (const t of r.tensors) assert.equal(t.params, t.shape.reduce((a, b) => a * b, 1), `${t.name} params`);
}

/** Zeros of one ONNX TensorProto, decoded here without our readers. */
function onnxTensorCounts(t: onnx.ITensorProto): { params: number; zeros: number } {
  const params = (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1);
  const raw = t.rawData && t.rawData.length ? t.rawData : undefined;
  const dt = t.dataType ?? 0;
  let zeros = 0;
  if (raw) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const size = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 }[dt as 1] ?? 0;
    for (let i = 0; i < params; i++) {
      const o = i * size;
      const v =
        dt === 1 ? dv.getFloat32(o, true)
        : dt === 10 ? float16BitsToFloat32(dv.getUint16(o, true))
        : dt === 11 ? dv.getFloat64(o, true)
        : dt === 7 ? Number(dv.getBigInt64(o, true))
        : dt === 6 ? dv.getInt32(o, true)
        : dt === 3 ? dv.getInt8(o)
        : dt === 2 || dt === 9 ? dv.getUint8(o)
        : NaN;
      if (v === 0) zeros++;
    }
  } else {
    const vals = [...(t.floatData ?? []), ...(t.int32Data ?? []), ...(t.doubleData ?? []), ...(t.int64Data ?? []).map(Number)];
    // float16 in int32_data holds bit patterns: 0 and 0x8000 are the zeros
    for (const v of vals) if (Number(v) === 0 || (dt === 10 && Number(v) === 0x8000)) zeros++;
  }
  return { params, zeros };
}

function onnxFileCounts(path: string): { params: number; zeros: number } {
  const m = onnx.ModelProto.decode(readFileSync(path));
  let params = 0;
  let zeros = 0;
  const add = (t: onnx.ITensorProto) => {
    const c = onnxTensorCounts(t);
    params += c.params;
    zeros += c.zeros;
  };
  const visit = (g: onnx.IGraphProto | null | undefined): void => {
    if (!g) return;
    for (const t of g.initializer ?? []) add(t);
    for (const node of g.node ?? []) {
      for (const a of node.attribute ?? []) {
        if (node.opType === 'Constant' && !node.domain) {
          if (a.name === 'value' && a.t) add(a.t);
          if (a.name === 'value_float' || a.name === 'value_int') {
            params += 1;
            if (Number(a.f ?? a.i ?? 0) === 0) zeros++;
          }
          if (a.name === 'value_floats' || a.name === 'value_ints') {
            const vs = a.name === 'value_floats' ? a.floats ?? [] : (a.ints ?? []).map(Number);
            params += vs.length;
            zeros += vs.filter((v) => Number(v) === 0).length;
          }
        }
        visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
    }
  };
  visit(m.graph);
  return { params, zeros };
}

function modelJsonFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...modelJsonFiles(p));
    else if (name.endsWith('.json')) out.push(p);
  }
  return out.sort();
}

async function tfjsFileCounts(path: string): Promise<{ params: number; zeros: number }> {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { weightsManifest?: tf.io.WeightsManifestConfig } | tf.io.WeightsManifestConfig;
  const manifest = Array.isArray(doc) ? doc : doc.weightsManifest ?? [];
  let params = 0;
  let zeros = 0;
  for (const group of manifest) {
    const buffers = group.paths.map((p) => readFileSync(join(path, '..', p)));
    const all = Buffer.concat(buffers);
    const ab = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
    const named = tf.io.decodeWeights(ab, group.weights);
    for (const spec of group.weights) {
      const t = named[spec.name];
      params += t.size;
      if (t.dtype !== 'string') zeros += (t.dataSync() as Float32Array).reduce((n, v) => n + (v === 0 ? 1 : 0), 0);
      t.dispose();
    }
  }
  return { params, zeros };
}

test('analyze --json on PyTorch-exported ONNX files: params and zeros agree with the file', { skip: ONNX_DIR ? false : 'set PRUNESCOPE_REAL_ONNX_DIR (scripts/fetch-real-models.sh)' }, () => {
  const files = readdirSync(ONNX_DIR!).filter((f) => f.endsWith('.onnx')).sort();
  assert.ok(files.length > 0, `no .onnx files in ${ONNX_DIR}`);
  for (const f of files) {
    const path = join(ONNX_DIR!, f);
    const r = analyze(path);
    assert.equal(r.format, 'onnx');
    checkReportSums(r);
    const want = onnxFileCounts(path);
    assert.equal(r.totalParams, want.params, `${f}: totalParams`);
    assert.equal(r.totalZeros, want.zeros, `${f}: totalZeros`);
  }
});

test('analyze --json on TF.js converter outputs: params and zeros agree with tf.io.decodeWeights', { skip: TFJS_DIR ? false : 'set PRUNESCOPE_REAL_TFJS_DIR (scripts/fetch-real-models.sh)' }, async () => {
  await tf.setBackend('cpu');
  const files = modelJsonFiles(TFJS_DIR!);
  assert.ok(files.length > 0, `no model.json files under ${TFJS_DIR}`);
  for (const path of files) {
    const r = analyze(path);
    checkReportSums(r);
    const want = await tfjsFileCounts(path);
    assert.equal(r.totalParams, want.params, `${path}: totalParams`);
    assert.equal(r.totalZeros, want.zeros, `${path}: totalZeros`);
  }
});
