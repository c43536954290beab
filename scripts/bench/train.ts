// Training benchmarks and acceptance figures for fine-tuning and distillation (issue 3, method 5):
//  - ONNX round trip: the TF.js translation of an ONNX NeuMF equals ORT before training; a copy
//    pruned to 90% (magnitude, global over embeddings and kernels) is fine-tuned with its zeros
//    kept: NDCG@10 before/after, zeros after, and the written ONNX run in ORT;
//  - distillation: a student with >= 8x fewer parameters vs the teacher's NDCG@10;
//  - training throughput (samples/s) of our fine-tuning loop on the wasm and cpu backends.
// Run: npx tsc -p tsconfig.test.json && node out/scripts/bench/train.js [--quick] [--size tiny|demo]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { ModelIR } from '../../src/core/model/ir.js';
import { readModel } from '../../src/core/model/read-model.js';
import { readTensorFloat32 } from '../../src/core/model/tensor-data.js';
import { writeOnnxModel, OnnxTensorReplacement } from '../../src/core/model/onnx/write.js';
import { buildTfjsFunctionFromOnnx } from '../../src/core/model/onnx-to-tfjs.js';
import { finetuneModel } from '../../src/core/compress/finetune.js';
import { EpochSampler, readInteractionTable, tableAsBatch } from '../../src/core/compress/train/interaction-table.js';
import { loadTrainee, scoreRows } from '../../src/core/compress/train/trainee.js';
import { candidateMetrics } from '../../src/core/compress/train/candidate-metrics.js';
import { trainLoop } from '../../src/core/compress/train/loop.js';
import { distillModel } from '../../src/core/compress/distill.js';
import { initTfjs, TfjsBackendPreference } from '../../src/core/runtime/tfjs-backend.js';
import { createSampleModel } from '../../src/core/samples/sample-models.js';
import { buildNeuMF, SampleKind } from '../../src/core/samples/models.js';
import { exportLayersModelToOnnx } from '../../src/core/samples/to-onnx.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { compileOnnx } from '../../src/core/compress/train/compiled-step.js';
import { fastTrainLoop } from '../../src/core/compress/train/fast-loop.js';
import { createRng } from '../../src/core/samples/prng.js';

/** Zeros the `sparsity` share of smallest-magnitude weights over all embeddings and kernels (global). Returns the zero count. */
export async function pruneOnnxByMagnitude(ir: ModelIR, sparsity: number, outPath: string): Promise<number> {
  const targets = ir.tensors.filter((t) => t.role === 'embedding' || t.role === 'dense-kernel');
  const values = await Promise.all(targets.map((t) => readTensorFloat32(t)));
  const all = new Float32Array(values.reduce((a, v) => a + v.length, 0));
  let o = 0;
  for (const v of values) {
    for (let i = 0; i < v.length; i++) all[o++] = Math.abs(v[i]);
  }
  const k = Math.floor(all.length * sparsity);
  const threshold = all.sort()[k];
  const replace = new Map<string, OnnxTensorReplacement>();
  let zeros = 0;
  let budget = k;
  targets.forEach((t, ti) => {
    const v = values[ti];
    for (let i = 0; i < v.length; i++) {
      if (Math.abs(v[i]) < threshold && budget > 0) {
        v[i] = 0;
        zeros++;
        budget--;
      }
    }
    replace.set(t.name, { dtype: 'float32', shape: t.shape, data: new Uint8Array(v.buffer) });
  });
  await writeOnnxModel(ir, outPath, { replace });
  return zeros;
}

function candidateFeeds(table: Awaited<ReturnType<typeof readInteractionTable>>): Record<string, ort.Tensor> {
  const n = table.user.length;
  return {
    user: new ort.Tensor('int64', BigInt64Array.from(table.user, BigInt), [n]),
    item: new ort.Tensor('int64', BigInt64Array.from(table.item, BigInt), [n]),
  };
}

async function ortScores(file: string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  try {
    const out = await s.run(feeds);
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

export interface RoundTripFigures {
  translationMaxAbsDiff: number;
  dense: { ndcg: number; hr: number };
  pruned: { ndcg: number; hr: number; zeros: number };
  finetuned: { ndcg: number; hr: number; zerosAfter: number; losses: number[]; samplesPerSecond: number; backend: string };
  ortRunsWrittenModel: boolean;
}

export async function onnxRoundTrip(dir: string, opts: { size: 'tiny' | 'demo'; epochs: number; sparsity: number }): Promise<RoundTripFigures> {
  await initTfjs('auto');
  const sample = await createSampleModel('neumf', dir, { size: opts.size, formats: ['onnx'], seed: 5 });
  const cands = await readInteractionTable(sample.candidatesCsv);
  const feeds = candidateFeeds(cands);
  const ir = await readModel(sample.onnxPath!);
  const fn = await buildTfjsFunctionFromOnnx(ir);
  const ref = await ortScores(sample.onnxPath!, feeds);
  const mine = tf.tidy(() => fn.predict({ user: tf.tensor1d(cands.user, 'int32'), item: tf.tensor1d(cands.item, 'int32') }).dataSync() as Float32Array);
  fn.dispose();
  let diff = 0;
  for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(ref[i] - mine[i]));
  const dense = candidateMetrics(cands.user, cands.label, ref);

  const prunedPath = path.join(dir, 'neumf-pruned.onnx');
  const zeros = await pruneOnnxByMagnitude(ir, opts.sparsity, prunedPath);
  const prunedScores = await ortScores(prunedPath, feeds);
  const pruned = candidateMetrics(cands.user, cands.label, prunedScores);

  const prunedIr = await readModel(prunedPath);
  const outcome = await finetuneModel(prunedIr, { data: sample.interactionsCsv, epochs: opts.epochs, batchSize: 512, lr: 0.002 });
  const outPath = path.join(dir, 'neumf-pruned-finetuned.onnx');
  await outcome.write(outPath);
  const ftScores = await ortScores(outPath, feeds);
  const ft = candidateMetrics(cands.user, cands.label, ftScores);
  const outIr = await readModel(outPath);
  let zerosAfter = 0;
  for (const t of outIr.tensors.filter((x) => x.role === 'embedding' || x.role === 'dense-kernel')) {
    const v = await readTensorFloat32(t);
    for (let i = 0; i < v.length; i++) if (v[i] === 0) zerosAfter++;
  }
  const training = (outcome as unknown as { training: { losses: number[]; samplesPerSecond: number; backend: string } }).training;
  return {
    translationMaxAbsDiff: diff,
    dense: { ndcg: dense.ndcg, hr: dense.hr },
    pruned: { ndcg: pruned.ndcg, hr: pruned.hr, zeros },
    finetuned: { ndcg: ft.ndcg, hr: ft.hr, zerosAfter, losses: training.losses, samplesPerSecond: training.samplesPerSecond, backend: training.backend },
    ortRunsWrittenModel: ftScores.length === ref.length,
  };
}

export interface DistillFigures {
  kind: SampleKind;
  format: 'onnx' | 'tfjs';
  teacherParams: number;
  studentParams: number;
  ratio: number;
  teacherNdcg: number;
  studentNdcg: number;
  kept: number;
  seconds: number;
}

export async function distillBench(dir: string, kind: SampleKind, format: 'onnx' | 'tfjs', opts: { size: 'tiny' | 'demo'; epochs: number; ratio: number }): Promise<DistillFigures> {
  await initTfjs('auto');
  const sample = await createSampleModel(kind, dir, { size: opts.size, formats: [format], seed: 5 });
  const teacherPath = format === 'onnx' ? sample.onnxPath! : sample.tfjsModelJson!;
  const teacher = await readModel(teacherPath);
  const t0 = Date.now();
  const outcome = await distillModel(teacher, { data: sample.interactionsCsv, ratio: opts.ratio, epochs: opts.epochs, alpha: 0.5, candidates: sample.candidatesCsv });
  const seconds = (Date.now() - t0) / 1000;
  const out = format === 'onnx' ? path.join(dir, `${kind}-student.onnx`) : path.join(dir, `${kind}-student-tfjs`, 'model.json');
  await outcome.write(out);
  // evaluate both from the written files through the same path
  const cands = sample.candidatesCsv;
  const evalFile = async (file: string): Promise<number> => {
    const t = await loadTrainee(await readModel(file));
    try {
      const table = await readInteractionTable(cands);
      return candidateMetrics(table.user, table.label, scoreRows(t, tableAsBatch(table))).ndcg;
    } finally {
      t.dispose();
    }
  };
  const teacherNdcg = await evalFile(teacherPath);
  const studentNdcg = await evalFile(out);
  const d = (outcome as unknown as { distill: { teacherParams: number; studentParams: number } }).distill;
  return {
    kind,
    format,
    teacherParams: d.teacherParams,
    studentParams: d.studentParams,
    ratio: d.teacherParams / d.studentParams,
    teacherNdcg,
    studentNdcg,
    kept: studentNdcg / teacherNdcg,
    seconds,
  };
}

/** samples/s of one fine-tuning epoch of the NeuMF sample on `backend`. */
export async function trainingThroughput(dir: string, backend: TfjsBackendPreference, size: 'tiny' | 'demo', maxRows: number): Promise<{ backend: string; samplesPerSecond: number; rows: number }> {
  const sample = await createSampleModel('neumf', path.join(dir, `tp-${backend}`), { size, formats: ['onnx'], seed: 5, backend: 'wasm' });
  // after the sample (trained on wasm either way): the backend under test
  const choice = await initTfjs(backend);
  const table = await readInteractionTable(sample.interactionsCsv);
  const n = Math.min(maxRows, table.user.length);
  const cut = { ...table, user: table.user.slice(0, n), item: table.item.slice(0, n), label: table.label.slice(0, n), extra: table.extra.slice(0, 0) };
  const t = await loadTrainee(await readModel(sample.onnxPath!));
  try {
    const r = await trainLoop(t.variables, t.forward, new EpochSampler(cut, 4), { epochs: 1, batchSize: 1024, lr: 0.001, seed: 1, outputKind: 'probability' });
    return { backend: choice.backend, samplesPerSecond: r.samplesPerSecond, rows: r.samples };
  } finally {
    t.dispose();
  }
}

const ML100K = process.env.PRUNESCOPE_ML100K ?? path.resolve(__dirname, '../../../../shared/data/ml-100k/u.data');
const PYTHON = process.env.PRUNESCOPE_PYTHON ?? '/usr/bin/python3';

function torchAvailable(): boolean {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' });
  return r.status === 0;
}

function findUData(): string | undefined {
  for (const p of [ML100K, path.resolve('../shared/data/ml-100k/u.data'), '/work/shared/data/ml-100k/u.data']) if (fs.existsSync(p)) return p;
  return undefined;
}

function pytorchBench(script: string, uData: string): number {
  const out = execFileSync(PYTHON, [script, '--data', uData, '--bench-only', '--threads', '1'], { encoding: 'utf8' });
  const line = out.trim().split('\n').pop()!;
  return (JSON.parse(line) as { samplesPerSecond: number }).samplesPerSecond;
}

export interface PytorchComparison {
  model: string;
  data: string;
  samples: number;
  ours: number[];
  oursOverall: number[];
  pytorch: number[];
  tape?: number;
  loss: number;
}

/**
 * Our compiled engine against PyTorch (1 thread) on the MovieLens NeuMF (GMF 32 + MLP 32/32,
 * MLP 64-32-16, predict 48 -> 1), one epoch of 4 sampled negatives per positive, batch 512,
 * Adam lr 0.001, measured alternately in this run. Both sides time the optimizer steps only
 * (PyTorch's bench does not time negative sampling; ours excludes sampler.epoch()).
 */
export async function pytorchComparison(dir: string, log: (s: string) => void, rounds = 2, tapeRows = 100_000): Promise<PytorchComparison | undefined> {
  await initTfjs('wasm').catch(() => initTfjs('auto'));
  fs.mkdirSync(dir, { recursive: true });
  const uData = findUData();
  const script = [path.resolve('scripts/bench/pytorch_neumf.py'), path.resolve(__dirname, '../../../scripts/bench/pytorch_neumf.py')].find((p) => fs.existsSync(p)) ?? 'scripts/bench/pytorch_neumf.py';
  const torch = fs.existsSync(script) && torchAvailable();
  if (!uData) log('MovieLens-100K not found (PRUNESCOPE_ML100K or ../shared/data/ml-100k/u.data): training on generated data of the same size, no PyTorch comparison');
  if (!torch) log(`PyTorch not available (${PYTHON} -c "import torch" failed): our own NeuMF of the same shape, no PyTorch figure`);
  let onnxPath: string;
  let trainCsv: string;
  let model: string;
  if (torch && uData) {
    execFileSync(PYTHON, [script, '--data', uData, '--out', dir, '--epochs', '1', '--threads', '1'], { encoding: 'utf8' });
    onnxPath = path.join(dir, 'neumf_teacher.onnx');
    trainCsv = path.join(dir, 'train.csv');
    model = 'PyTorch-exported NeuMF teacher (logit output)';
  } else {
    const m = buildNeuMF({ users: 943, items: 1682, gmfDim: 32, mlpDim: 32, hidden: [32, 16], seed: 1, output: 'logit' });
    onnxPath = path.join(dir, 'neumf_ours.onnx');
    await exportLayersModelToOnnx(m, onnxPath);
    m.dispose();
    trainCsv = path.join(dir, 'train.csv');
    const lines = ['user,item'];
    if (uData) {
      for (const l of fs.readFileSync(uData, 'utf8').split('\n')) {
        const [u, i] = l.split('\t');
        if (u && i) lines.push(`${Number(u) - 1},${Number(i) - 1}`);
      }
    } else {
      const rng = createRng(1);
      for (let r = 0; r < 99_057; r++) lines.push(`${rng.int(943)},${rng.int(1682)}`);
    }
    fs.writeFileSync(trainCsv, lines.join('\n') + '\n');
    model = "PruneScope's own NeuMF of the same shape (logit output)";
  }
  const ir = await readModel(onnxPath);
  const table = await readInteractionTable(trainCsv);
  const ours: number[] = [];
  const oursOverall: number[] = [];
  const pytorch: number[] = [];
  let samples = 0;
  let loss = NaN;
  for (let r = 0; r < rounds; r++) {
    if (torch && uData) pytorch.push(pytorchBench(script, uData));
    const engine = await compileOnnx(ir, { keepZeros: false });
    const res = await fastTrainLoop(engine, new EpochSampler(table, 4), { epochs: 1, batchSize: 512, lr: 0.001, seed: 1 + r, outputKind: 'logit' });
    engine.dispose();
    ours.push(res.stepSamplesPerSecond);
    oursOverall.push(res.samplesPerSecond);
    samples = res.samples;
    loss = res.losses[0];
  }
  let tape: number | undefined;
  if (tapeRows > 0) {
    const t = await loadTrainee(ir);
    const n = Math.min(tapeRows / 5, table.user.length);
    const cut = { ...table, user: table.user.slice(0, n), item: table.item.slice(0, n), label: table.label.slice(0, n), extra: table.extra.slice(0, 0) };
    const r = await trainLoop(t.variables, t.forward, new EpochSampler(cut, 4), { epochs: 1, batchSize: 512, lr: 0.001, seed: 1, outputKind: 'logit' });
    t.dispose();
    tape = r.samples / Math.max(1e-9, r.seconds - (r.samplingSeconds ?? 0));
  }
  return { model, data: uData ? `MovieLens-100K (${uData})` : 'generated', samples, ours, oursOverall, pytorch, tape, loss };
}

export interface TrainingBenchOptions {
  quick?: boolean;
  size?: 'tiny' | 'demo';
  /** run one part only */
  only?: 'roundtrip' | 'distill' | 'throughput' | 'pytorch';
  log?: (line: string) => void;
}

/** Prints the acceptance figures of fine-tuning / distillation and the training throughput per backend. */
export async function runTrainingBench(o: TrainingBenchOptions = {}): Promise<void> {
  const quick = o.quick ?? false;
  const size = o.size ?? (quick ? 'tiny' : 'demo');
  const only = o.only;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-train-bench-'));
  const log = o.log ?? ((s: string) => process.stdout.write(s + '\n'));
  log(`# training bench (size ${size}) in ${dir}`);
  if (!only || only === 'pytorch') {
    const tapeRows = quick ? 0 : 100_000;
    const c = await pytorchComparison(path.join(dir, 'pytorch'), log, quick ? 1 : 5, tapeRows);
    if (c) {
      const best = (a: number[]) => Math.max(...a);
      log(`NeuMF training speed, ${c.model}, ${c.data}: ${c.samples} samples/epoch, batch 512, Adam 1e-3, timed: optimizer steps only on both sides (negative sampling excluded)`);
      log(`  ours (compiled engine, TF.js ${tf.getBackend()}): ${c.ours.map((x) => Math.round(x)).join(', ')} samples/s (with sampling: ${c.oursOverall.map((x) => Math.round(x)).join(', ')}); loss ${c.loss.toFixed(4)}`);
      if (c.pytorch.length) {
        log(`  PyTorch ${'1 thread'}: ${c.pytorch.map((x) => Math.round(x)).join(', ')} samples/s`);
        const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
        log(`  ratio ours / PyTorch: ${(best(c.ours) / best(c.pytorch)).toFixed(2)}x (best of each), ${(med(c.ours) / med(c.pytorch)).toFixed(2)}x (medians); 1x PyTorch = ${(c.samples / best(c.pytorch)).toFixed(2)} s per epoch, ours ${(c.samples / best(c.ours)).toFixed(2)} s`);
      }
      if (c.tape !== undefined) log(`  TF.js tape path (trainLoop, the engine before; steps only, ${tapeRows} samples): ${Math.round(c.tape)} samples/s (${(best(c.ours) / c.tape).toFixed(1)}x slower than the compiled engine)`);
    }
  }
  if (!only || only === 'roundtrip') {
    const r = await onnxRoundTrip(path.join(dir, 'rt'), { size, epochs: quick ? 1 : 3, sparsity: 0.9 });
    log(`ONNX round trip: translation vs ORT max abs diff ${r.translationMaxAbsDiff.toExponential(2)}`);
    log(`  dense NDCG@10 ${r.dense.ndcg.toFixed(4)} | pruned 90% (${r.pruned.zeros} zeros) ${r.pruned.ndcg.toFixed(4)} | fine-tuned ${r.finetuned.ndcg.toFixed(4)} (zeros after ${r.finetuned.zerosAfter}, ORT runs it: ${r.ortRunsWrittenModel})`);
    log(`  losses ${r.finetuned.losses.map((l) => l.toFixed(4)).join(' -> ')}, ${Math.round(r.finetuned.samplesPerSecond)} samples/s on ${r.finetuned.backend}`);
  }
  if (!only || only === 'distill') {
    for (const [kind, format] of [['neumf', 'onnx'], ['neumf', 'tfjs'], ['two-tower', 'onnx'], ['deepfm', 'onnx']] as const) {
      const d = await distillBench(path.join(dir, `d-${kind}-${format}`), kind, format, { size, epochs: quick ? 2 : 8, ratio: kind === 'deepfm' ? 4 : 8 });
      log(`distill ${kind} (${format}): params ${d.teacherParams} -> ${d.studentParams} (${d.ratio.toFixed(1)}x), NDCG@10 teacher ${d.teacherNdcg.toFixed(4)} student ${d.studentNdcg.toFixed(4)} (${(100 * d.kept).toFixed(1)}%), ${d.seconds.toFixed(1)} s`);
    }
  }
  if (!only || only === 'throughput') {
    for (const b of ['wasm', 'cpu'] as const) {
      const r = await trainingThroughput(dir, b, size, quick ? 5000 : 20000);
      log(`training throughput ${r.backend}: ${Math.round(r.samplesPerSecond)} samples/s (${r.rows} rows, batch 1024, NeuMF ${size})`);
    }
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const si = argv.indexOf('--size');
  await runTrainingBench({
    quick: argv.includes('--quick'),
    size: si >= 0 ? (argv[si + 1] as 'tiny' | 'demo') : undefined,
    only: argv.find((a) => a.startsWith('--only='))?.slice(7) as TrainingBenchOptions['only'],
  });
}

// the file-name check keeps this CLI from running when the module is bundled into dist/bench.js
if (require.main === module && /train\.js$/.test(process.argv[1] ?? '')) {
  main().catch((e) => {
    process.stderr.write(`train bench failed: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  });
}
