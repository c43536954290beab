// The fuzzer's seed corpus: REAL model files made by the project's own code. The tiny trained
// sample models (NeuMF, two-tower, DeepFM as TF.js and ONNX, with their interaction CSVs) come
// from test/fixtures/write-fixtures.ts; hand-built ONNX edge models (external data, If/Loop
// subgraphs, Constant nodes, float16, typed fields, sparse initializers) come from model/onnx/build.ts;
// TF.js variants (several shards, uint8/float16 quantization) are derived from the samples.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from 'onnx-proto';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { float32ToFloat16Bits } from '../../src/core/model/tensor-data.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../../test/fixtures/write-fixtures.js';

export type FuzzFormat = 'onnx' | 'tfjs-json' | 'tfjs-shards' | 'csv';
export const FUZZ_FORMATS: readonly FuzzFormat[] = ['onnx', 'tfjs-json', 'tfjs-shards', 'csv'];

/** One seed: a folder of files, and the file the reader is pointed at. */
export interface Seed {
  name: string;
  /** relative path -> bytes */
  files: Map<string, Uint8Array>;
  entry: string;
}

export interface SeedManifestEntry {
  name: string;
  kind: 'onnx' | 'tfjs' | 'csv';
  dir: string;
  entry: string;
}

const SEED_VERSION = 2;

/** The folder the tiny fixtures are cached in by the unit tests too (trained once per machine). */
export function defaultFixtureDir(): string {
  return path.join(os.tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`);
}

function defaultSeedDir(): string {
  return path.join(os.tmpdir(), `prunescope-fuzz-seeds-v${SEED_VERSION}-f${FIXTURE_VERSION}`);
}

function rng32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function floats(n: number, seed: number): Float32Array {
  const r = rng32(seed);
  return Float32Array.from({ length: n }, () => r() - 0.5);
}

async function edgeOnnxModels(dir: string): Promise<void> {
  // 1. external data + float16 + Constant node + int64 typed field
  {
    const d = path.join(dir, 'onnx-external');
    fs.mkdirSync(d, { recursive: true });
    const b = new OnnxGraphBuilder({ graphName: 'ext' })
      .input('user', 'int64', ['batch'])
      .output('y', 'float32', ['batch', 4])
      .initializer('emb.weight', 'float32', [64, 8], floats(512, 1))
      .initializer('fc.weight', 'float32', [8, 4], floats(32, 2))
      .initializer('fc.bias', 'float16', [4], Uint16Array.from([1, 2, 3, 4], (x) => float32ToFloat16Bits(x / 10)))
      .node('Gather', ['emb.weight', 'user'], ['e'], {}, { name: '/emb/Gather' })
      .node('MatMul', ['e', 'fc.weight'], ['m'], {}, { name: '/fc/MatMul' })
      .node('Constant', [], ['k'], { value: { tensor: { dtype: 'float32', shape: [4], data: floats(4, 3) } } }, { name: '/k/Constant' })
      .node('Cast', ['fc.bias'], ['b32'], { to: 1 })
      .node('Add', ['m', 'b32'], ['m2'])
      .node('Add', ['m2', 'k'], ['y']);
    await writeOnnxFile(path.join(d, 'model.onnx'), b.toModelProto(), { externalData: { fileName: 'weights.data', minBytes: 100 } });
  }
  // 2. If / Loop subgraphs with their own initializers, typed fields, a sparse initializer
  {
    const d = path.join(dir, 'onnx-subgraphs');
    fs.mkdirSync(d, { recursive: true });
    const thenB = new OnnxGraphBuilder({ graphName: 'then' })
      .output('t_out', 'float32', [4])
      .initializer('then.weight', 'float32', [4, 4], floats(16, 4))
      .node('ReduceSum', ['then.weight'], ['t_out'], { keepdims: 0 });
    const elseB = new OnnxGraphBuilder({ graphName: 'else' })
      .output('e_out', 'float32', [4])
      .node('Constant', [], ['e_out'], { value: { tensor: { dtype: 'float32', shape: [4], data: floats(4, 5) } } });
    const model = new OnnxGraphBuilder({ graphName: 'sub' })
      .input('cond', 'bool', [])
      .output('y', 'float32', [4])
      .initializer('table', 'float32', [16, 4], floats(64, 6))
      .node('If', ['cond'], ['y'], { then_branch: { graph: thenB.toGraphProto() }, else_branch: { graph: elseB.toGraphProto() } })
      .toModelProto();
    const g = model.graph as onnx.GraphProto;
    g.initializer.push(onnx.TensorProto.create({ name: 'typed.f', dims: [3], dataType: 1, floatData: [1, 2, 3] }));
    g.initializer.push(onnx.TensorProto.create({ name: 'typed.i64', dims: [2], dataType: 7, int64Data: [5, -6] }));
    g.initializer.push(onnx.TensorProto.create({ name: 'typed.s', dims: [2], dataType: 8, stringData: [new TextEncoder().encode('a'), new TextEncoder().encode('bc')] }));
    g.sparseInitializer.push(
      onnx.SparseTensorProto.create({
        values: { name: 'sparse.w', dims: [2], dataType: 1, floatData: [0.5, -0.5] },
        indices: { name: 'sparse.i', dims: [2], dataType: 7, int64Data: [1, 5] },
        dims: [8],
      }),
    );
    fs.writeFileSync(path.join(d, 'model.onnx'), onnx.ModelProto.encode(model).finish());
  }
}

function copyTfjs(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dst, f));
}

interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: Record<string, unknown>;
}

/** TF.js variants: the weights re-split into 4 shards, and quantized (uint8 affine / float16). */
function tfjsVariants(srcDir: string, dir: string): string[] {
  const doc = JSON.parse(fs.readFileSync(path.join(srcDir, 'model.json'), 'utf8')) as { weightsManifest: Array<{ paths: string[]; weights: ManifestWeight[] }> };
  const all = Buffer.concat(doc.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(srcDir, p)))));
  const made: string[] = [];
  {
    const d = path.join(dir, 'tfjs-4shards');
    fs.mkdirSync(d, { recursive: true });
    const weights = doc.weightsManifest.flatMap((g) => g.weights);
    const per = Math.ceil(all.length / 4);
    const paths: string[] = [];
    for (let i = 0; i < 4; i++) {
      const name = `group1-shard${i + 1}of4.bin`;
      fs.writeFileSync(path.join(d, name), all.subarray(i * per, Math.min(all.length, (i + 1) * per)));
      paths.push(name);
    }
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify({ ...doc, weightsManifest: [{ paths, weights }] }));
    made.push(d);
  }
  for (const q of ['uint8', 'float16'] as const) {
    const d = path.join(dir, `tfjs-${q}`);
    fs.mkdirSync(d, { recursive: true });
    const weights: ManifestWeight[] = [];
    const parts: Buffer[] = [];
    let off = 0;
    for (const w of doc.weightsManifest.flatMap((g) => g.weights)) {
      const n = w.shape.reduce((a, b) => a * b, 1);
      const bytes = w.dtype === 'float32' || w.dtype === 'int32' ? n * 4 : n;
      const src = all.subarray(off, off + bytes);
      off += bytes;
      if (w.dtype !== 'float32') {
        weights.push(w);
        parts.push(Buffer.from(src));
        continue;
      }
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = src.readFloatLE(i * 4);
      if (q === 'uint8') {
        let lo = Infinity;
        let hi = -Infinity;
        for (const x of v) (lo = Math.min(lo, x)), (hi = Math.max(hi, x));
        const scale = hi > lo ? (hi - lo) / 255 : 1;
        parts.push(Buffer.from(Uint8Array.from(v, (x) => Math.round((x - lo) / scale))));
        weights.push({ ...w, quantization: { dtype: 'uint8', scale, min: lo, original_dtype: 'float32' } });
      } else {
        const h = Uint16Array.from(v, (x) => float32ToFloat16Bits(x));
        parts.push(Buffer.from(h.buffer));
        weights.push({ ...w, quantization: { dtype: 'float16', original_dtype: 'float32' } });
      }
    }
    fs.writeFileSync(path.join(d, 'group1-shard1of1.bin'), Buffer.concat(parts));
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify({ ...doc, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights }] }));
    made.push(d);
  }
  {
    // a weights-only manifest (a plain array) with string weights: TF.js's length-prefixed strings
    const d = path.join(dir, 'tfjs-strings');
    fs.mkdirSync(d, { recursive: true });
    const te = new TextEncoder();
    const strs = ['user', 'item', '', 'é<script>'];
    const parts: Buffer[] = [Buffer.from(floats(6, 9).buffer)];
    for (const x of strs) {
      const b = te.encode(x);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, Buffer.from(b));
    }
    parts.push(Buffer.from(Int32Array.from([1, -2, 3]).buffer));
    fs.writeFileSync(path.join(d, 'weights.bin'), Buffer.concat(parts));
    const weights = [
      { name: 'dense/kernel', shape: [2, 3], dtype: 'float32' },
      { name: 'vocab', shape: [2, 2], dtype: 'string' },
      { name: 'ids', shape: [3], dtype: 'int32' },
    ];
    fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify([{ paths: ['weights.bin'], weights }]));
    made.push(d);
  }
  return made;
}

/** A small CSV seed: the header and the first rows of a real interaction file. */
function csvHead(src: string, rows: number, tsv: boolean): string {
  const lines = fs.readFileSync(src, 'utf8').split('\n').slice(0, rows + 1);
  return (tsv ? lines.map((l) => l.replace(/,/g, '\t')) : lines).join('\n') + '\n';
}

/** Builds (or finds cached) seeds; returns the manifest. */
export async function buildSeeds(opts: { seedDir?: string; fixtureDir?: string } = {}): Promise<{ dir: string; seeds: SeedManifestEntry[] }> {
  const dir = opts.seedDir ?? defaultSeedDir();
  const stamp = path.join(dir, 'seeds.json');
  if (fs.existsSync(stamp)) return { dir, seeds: JSON.parse(fs.readFileSync(stamp, 'utf8')) as SeedManifestEntry[] };
  const fx = await writeTinyFixtures(opts.fixtureDir ?? defaultFixtureDir());
  const build = path.join(dir + `.tmp-${process.pid}`);
  fs.rmSync(build, { recursive: true, force: true });
  fs.mkdirSync(build, { recursive: true });
  const seeds: SeedManifestEntry[] = [];
  for (const [kind, r] of Object.entries(fx.models)) {
    if (r.onnxPath) {
      const d = path.join(build, `onnx-${kind}`);
      fs.mkdirSync(d);
      fs.copyFileSync(r.onnxPath, path.join(d, 'model.onnx'));
      seeds.push({ name: `onnx-${kind}`, kind: 'onnx', dir: `onnx-${kind}`, entry: 'model.onnx' });
    }
    if (r.tfjsModelJson) {
      const d = path.join(build, `tfjs-${kind}`);
      copyTfjs(path.dirname(r.tfjsModelJson), d);
      seeds.push({ name: `tfjs-${kind}`, kind: 'tfjs', dir: `tfjs-${kind}`, entry: path.basename(r.tfjsModelJson) });
      if (kind === 'neumf') {
        for (const v of tfjsVariants(path.dirname(r.tfjsModelJson), build)) {
          seeds.push({ name: path.basename(v), kind: 'tfjs', dir: path.basename(v), entry: 'model.json' });
        }
      }
    }
    const d = path.join(build, `csv-${kind}`);
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'interactions.csv'), csvHead(r.interactionsCsv, 40, false));
    seeds.push({ name: `csv-${kind}`, kind: 'csv', dir: `csv-${kind}`, entry: 'interactions.csv' });
    if (kind === 'deepfm') {
      const t = path.join(build, 'csv-tsv');
      fs.mkdirSync(t);
      fs.writeFileSync(path.join(t, 'interactions.tsv'), csvHead(r.interactionsCsv, 40, true));
      seeds.push({ name: 'csv-tsv', kind: 'csv', dir: 'csv-tsv', entry: 'interactions.tsv' });
    }
  }
  await edgeOnnxModels(build);
  seeds.push({ name: 'onnx-external', kind: 'onnx', dir: 'onnx-external', entry: 'model.onnx' });
  seeds.push({ name: 'onnx-subgraphs', kind: 'onnx', dir: 'onnx-subgraphs', entry: 'model.onnx' });
  fs.writeFileSync(path.join(build, 'seeds.json'), JSON.stringify(seeds, null, 2));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(build, dir);
  return { dir, seeds };
}

export function loadSeed(dir: string, e: SeedManifestEntry): Seed {
  const files = new Map<string, Uint8Array>();
  const d = path.join(dir, e.dir);
  for (const f of fs.readdirSync(d)) files.set(f, new Uint8Array(fs.readFileSync(path.join(d, f))));
  return { name: e.name, files, entry: e.entry };
}
