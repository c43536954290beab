// The fast engine (compiled-step.ts) against the TF.js tape: same initial weights, same batch,
// same loss by output kind: gradients equal (max |diff| small), and one Adam step from a fresh
// state equal to tf.train.adam's (lazy Adam equals dense Adam on the first step).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readModel } from '../../src/core/model/read-model.js';
import { buildDeepFM, buildNeuMF, buildTwoTower } from '../../src/core/samples/models.js';
import { exportLayersModelToOnnx } from '../../src/core/samples/to-onnx.js';
import { compileLayers, compileOnnx, FastEngine, planFastEngine } from '../../src/core/compress/train/compiled-step.js';
import { layersTrainee, loadTrainee, Trainee } from '../../src/core/compress/train/trainee.js';
import { lossFor } from '../../src/core/compress/train/loss.js';
import type { Batch } from '../../src/core/compress/train/interaction-table.js';
import type { OutputKind } from '../../src/core/compress/train/output-kind.js';
import { DEFAULT_ADAM, SparseTable } from '../../src/core/compress/train/sparse-tables.js';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { distillationLoss } from '../../src/core/compress/distill.js';
import { distillationSeed } from '../../src/core/compress/train/distill-gradient.js';
import { createRng } from '../../src/core/samples/prng.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-compiled-'));

function batchOf(n: number, users: number, items: number, extraVocab: number[] = [], seed = 3): Batch {
  const rng = createRng(seed);
  const E = extraVocab.length;
  const b: Batch = { user: new Int32Array(n), item: new Int32Array(n), extra: new Int32Array(n * E), extraCount: E, label: new Float32Array(n) };
  for (let i = 0; i < n; i++) {
    b.user[i] = rng.int(users);
    b.item[i] = rng.int(items);
    b.label[i] = rng.next() < 0.3 ? 1 : 0;
    extraVocab.forEach((v, e) => (b.extra[i * E + e] = rng.int(v)));
  }
  return b;
}

/** tape gradients by IR name */
function tapeGrads(t: Trainee, b: Batch, kind: OutputKind, distill?: { alpha: number; T: number; teacher: Float32Array }): Map<string, Float32Array> {
  const loss = lossFor(kind);
  const mix = distill ? distillationLoss(kind, distill.alpha, distill.T) : undefined;
  const { grads } = tf.variableGrads(
    () => (mix ? mix(t.forward(b), tf.tensor1d(b.label), tf.tensor1d(distill!.teacher)) : loss(t.forward(b), tf.tensor1d(b.label))),
    t.variables,
  );
  const out = new Map<string, Float32Array>();
  t.variables.forEach((v, i) => {
    const g = grads[v.name];
    out.set(t.names[i], g ? Float32Array.from(g.dataSync() as Float32Array) : new Float32Array(v.size));
  });
  for (const g of Object.values(grads)) g.dispose();
  return out;
}

function compare(engine: FastEngine, t: Trainee, b: Batch, kind: OutputKind, distill?: { alpha: number; T: number; teacher: Float32Array }): number {
  const tape = tapeGrads(t, b, kind, distill);
  const mine = engine.gradients(b, kind, distill ? distillationSeed(kind, distill.alpha, distill.T, () => distill.teacher) : undefined);
  let worst = 0;
  let scale = 0;
  for (const [name, g] of tape) {
    const table = engine.tables.find((x) => x.name === name);
    if (table) {
      const rows = mine.tables.get(name)!;
      for (let r = 0; r < table.rows; r++) {
        const mr = rows.get(r);
        for (let j = 0; j < table.dim; j++) {
          const tv = g[r * table.dim + j];
          worst = Math.max(worst, Math.abs(tv - (mr ? mr[j] : 0)));
          scale = Math.max(scale, Math.abs(tv));
        }
      }
      continue;
    }
    const d = mine.dense.get(name);
    assert.ok(d, `the engine trains ${name}`);
    for (let j = 0; j < g.length; j++) {
      worst = Math.max(worst, Math.abs(g[j] - d[j]));
      scale = Math.max(scale, Math.abs(g[j]));
    }
  }
  assert.ok(scale > 0, 'some gradient is non-zero');
  assert.equal(tape.size, engine.tables.length + engine.dense.length, 'the same tensors train');
  return worst / scale;
}

const nameOf = (w: tf.LayerVariable) => (w as unknown as { originalName?: string }).originalName ?? w.name;

const builders = {
  neumf: (output: 'probability' | 'logit') => buildNeuMF({ users: 30, items: 40, gmfDim: 8, mlpDim: 8, hidden: [16, 8], seed: 2, output }),
  'two-tower': (output: 'probability' | 'logit') => buildTwoTower({ users: 30, items: 40, dim: 8, hidden: [8], seed: 2, output }),
  deepfm: (output: 'probability' | 'logit') => buildDeepFM({ fieldVocab: [30, 40, 5, 7], dim: 4, hidden: [8], seed: 2, output }),
};

for (const kind of ['neumf', 'two-tower', 'deepfm'] as const) {
  for (const output of ['probability', 'logit'] as const) {
    test(`compiled step = TF.js tape: ${kind} (${output}), TF.js layers and its ONNX export`, async (tt) => {
      await initTfjs('wasm').catch(() => initTfjs('cpu'));
      const extra = kind === 'deepfm' ? [5, 7] : [];
      const b = batchOf(64, 30, 40, extra);
      const model = builders[kind](output);
      // TF.js layers
      const t = layersTrainee(model, 'mem');
      const eng = compileLayers(model, { keepZeros: false, nameOf });
      const relLayers = compare(eng, t, b, output);
      assert.ok(relLayers < 1e-4, `layers: max |diff| / max |grad| = ${relLayers}`);
      // ONNX export of the same model
      const file = path.join(work, `${kind}-${output}.onnx`);
      await exportLayersModelToOnnx(model, file);
      const ir = await readModel(file);
      const plan = planFastEngine(ir);
      assert.ok(!('unsupported' in plan), `planned: ${'unsupported' in plan ? plan.unsupported : ''}`);
      const to = await loadTrainee(ir);
      const eo = await compileOnnx(ir, { keepZeros: false });
      const relOnnx = compare(eo, to, b, output);
      assert.ok(relOnnx < 1e-4, `onnx: max |diff| / max |grad| = ${relOnnx}`);
      tt.diagnostic(`relative max |grad diff|: layers ${relLayers.toExponential(2)}, onnx ${relOnnx.toExponential(2)}`);
      // scores equal to the tape's forward
      const mine = eo.score(b);
      const ref = tf.tidy(() => to.forward(b).dataSync() as Float32Array);
      for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - mine[i]) < 1e-5);
      to.dispose();
      eo.dispose();
      eng.dispose();
      model.dispose();
    });
  }
}

test('one lazy Adam step from a fresh state equals tf.train.adam on every weight (ONNX NeuMF)', async (tt) => {
  await initTfjs('wasm').catch(() => initTfjs('cpu'));
  const model = builders.neumf('logit');
  const file = path.join(work, 'adam.onnx');
  await exportLayersModelToOnnx(model, file);
  const ir = await readModel(file);
  const b = batchOf(128, 30, 40);
  const t = await loadTrainee(ir);
  const opt = tf.train.adam(0.01);
  opt.minimize(() => lossFor('logit')(t.forward(b), tf.tensor1d(b.label)), false, t.variables);
  const e = await compileOnnx(ir, { keepZeros: false });
  const before = new Map([...e.values()].map(([k, v]) => [k, v.slice()]));
  e.trainStep(b, 'logit', { lr: 0.01, ...DEFAULT_ADAM }, 1);
  const values = e.values();
  let worst = 0;
  let untouchedChanged = 0;
  t.variables.forEach((v, i) => {
    const ref = v.dataSync() as Float32Array;
    const mine = values.get(t.names[i])!;
    for (let j = 0; j < ref.length; j++) worst = Math.max(worst, Math.abs(ref[j] - mine[j]));
  });
  // rows no id of the batch touched are bit-identical
  for (const table of e.tables) {
    const seen = new Set<number>([...b.user, ...b.item]);
    const old = before.get(table.name)!;
    for (let r = 0; r < table.rows; r++) {
      if (seen.has(r)) continue;
      for (let j = 0; j < table.dim; j++) if (old[r * table.dim + j] !== table.values[r * table.dim + j]) untouchedChanged++;
    }
  }
  tt.diagnostic(`max |weight diff| after one step ${worst.toExponential(2)}`);
  assert.ok(worst < 1e-5, `max |diff| after one step ${worst}`);
  assert.equal(untouchedChanged, 0);
  opt.dispose();
  t.dispose();
  e.dispose();
});

test('SparseTable: per-row sums, lazy Adam only on touched rows, zeros of a row kept', () => {
  const values = Float32Array.from({ length: 5 * 2 }, (_, i) => (i === 2 ? 0 : i + 1));
  const t = new SparseTable('t', values, 2, true);
  t.beginStep();
  t.accumulate(Int32Array.from([1, 3, 1]), Float32Array.from([1, 1, 2, 2, 3, 3]));
  const g = t.stepGradient();
  assert.deepEqual([...g.keys()].sort(), [1, 3]);
  assert.deepEqual(Array.from(g.get(1)!), [4, 4]);
  t.applyAdam({ lr: 0.1, ...DEFAULT_ADAM }, 1);
  assert.equal(t.values[2], 0, 'an exact zero of a touched row stays zero');
  assert.ok(Math.abs(t.values[3] - (4 - 0.1)) < 1e-6);
  assert.equal(t.values[0], 1);
  assert.equal(t.values[8], 9);
  assert.equal(t.touchedRows, 2);
  assert.throws(() => t.gather(Int32Array.from([5]), new Float32Array(2)), /out of range/);
});

test('compiled step = TF.js tape on PyTorch exports (NeuMF, two-tower, DeepFM with fields, sigmoid NeuMF)', async (tt) => {
  const { spawnSync } = await import('node:child_process');
  const python = process.env.PRUNESCOPE_PYTHON ?? '/usr/bin/python3';
  const script = path.resolve(__dirname, '../../../test/fixtures/pytorch/export_models.py');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-compiled-pt-'));
  const r = spawnSync(python, [script, dir, '--seed', '1'], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) {
    if (process.env.CI) assert.fail(`export_models.py: ${r.stderr || r.error}`);
    return tt.skip(`PyTorch exports unavailable (${(r.stdout || String(r.error)).trim().slice(0, 200)})`);
  }
  await initTfjs('wasm').catch(() => initTfjs('cpu'));
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { models: Array<{ file: string; output: OutputKind; inputs: string[] }> };
  for (const m of manifest.models) {
    const ir = await readModel(path.join(dir, m.file));
    const plan = planFastEngine(ir);
    assert.ok(!('unsupported' in plan), `${m.file}: ${'unsupported' in plan ? plan.unsupported : ''}`);
    const rows = ir.tensors.filter((t) => t.role === 'embedding').map((t) => t.shape[0]);
    const fields = m.inputs.includes('fields');
    // ids inside every table: user/item from the two smallest id spaces the graph accepts
    const users = fields ? Math.min(...rows) : ir.tensors.find((t) => /user/i.test(t.name) && t.role === 'embedding')!.shape[0];
    const items = fields ? Math.min(...rows) : ir.tensors.find((t) => /item/i.test(t.name) && t.role === 'embedding')!.shape[0];
    const b = batchOf(96, users, items, fields ? [Math.min(...rows), Math.min(...rows)] : []);
    const to = await loadTrainee(ir);
    const eo = await compileOnnx(ir, { keepZeros: false });
    const rel = compare(eo, to, b, m.output);
    tt.diagnostic(`${m.file} (${m.output}): relative max |grad diff| ${rel.toExponential(2)}; ${eo.describe()}`);
    assert.ok(rel < 1e-4, `${m.file}: ${rel}`);
    to.dispose();
    eo.dispose();
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const output of ['probability', 'logit'] as const) {
  test(`distillation seed (distill-gradient.ts) = tape gradient of distillationLoss: NeuMF ${output}, TF.js layers and ONNX`, async (tt) => {
    await initTfjs('wasm').catch(() => initTfjs('cpu'));
    const b = batchOf(64, 30, 40);
    const rng = createRng(9);
    const teacher = Float32Array.from({ length: 64 }, () => (output === 'logit' ? rng.normal() * 3 : 0.05 + 0.9 * rng.next()));
    const model = builders.neumf(output);
    const t = layersTrainee(model, 'mem');
    const eng = compileLayers(model, { keepZeros: false, nameOf });
    const relLayers = compare(eng, t, b, output, { alpha: 0.5, T: 2, teacher });
    const file = path.join(work, `distill-${output}.onnx`);
    await exportLayersModelToOnnx(model, file);
    const ir = await readModel(file);
    const to = await loadTrainee(ir);
    const eo = await compileOnnx(ir, { keepZeros: false });
    const relOnnx = compare(eo, to, b, output, { alpha: 0.5, T: 2, teacher });
    tt.diagnostic(`relative max |grad diff|: layers ${relLayers.toExponential(2)}, onnx ${relOnnx.toExponential(2)}`);
    assert.ok(relLayers < 1e-4 && relOnnx < 1e-4);
    to.dispose();
    eo.dispose();
    eng.dispose();
    model.dispose();
  });
}
