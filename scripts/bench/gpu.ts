// GPU check (scripts/gpu-check.sh, `npm run bench -- --only=gpu`): what WebGPU / CUDA buy on
// this machine, side by side with the CPU paths measured in the same run.
//  - the WebGPU adapter Dawn sees (vendor, architecture, fallback or not): on a software adapter
//    (Mesa's lavapipe) the figures are CPU figures and the report says so up front;
//  - TF.js training samples/s of a NeuMF the size of the MovieLens-100K one (943 users, 1,682
//    items, GMF 32 + MLP 64-32-16, ~175k parameters) on webgpu vs wasm, batch 1024 and 8192;
//  - ONNX Runtime latency p50 at batch 1, 256, 4096 on the CPU provider vs WebGPU (and CUDA when
//    ORT's CUDA provider is installed), with the largest |difference| of the scores vs CPU.
// Run: npm run build && node dist/bench.js --only=gpu [--quick] [--json]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initTfjs } from '../../src/core/runtime/tfjs-backend.js';
import { describeAdapter, probeWebGpuAdapter, type GpuAdapterSummary } from '../../src/core/runtime/webgpu-adapter.js';
import { ortCudaProvider, type OrtEpPreference } from '../../src/core/runtime/ort-providers.js';
import { openOrtScorer } from '../../src/core/eval/ort-runner.js';
import { measureLatency, syntheticBatch, type LatencyPoint } from '../../src/core/eval/latency.js';
import { buildNeuMF } from '../../src/core/samples/models.js';
import { exportLayersModelToOnnx } from '../../src/core/samples/to-onnx.js';

const USERS = 943;
const ITEMS = 1682;
const neumf = () => buildNeuMF({ users: USERS, items: ITEMS, gmfDim: 32, mlpDim: 32, hidden: [64, 32, 16], seed: 7 });

export interface TrainingFigure {
  backend: string;
  batch: number;
  samplesPerSecond?: number;
  steps?: number;
  firstStepSeconds?: number;
  error?: string;
}

export interface OrtFigure {
  ep: OrtEpPreference;
  ran?: string;
  reason?: string;
  points?: LatencyPoint[];
  maxAbsDiffVsCpu?: number;
  error?: string;
}

export interface GpuBenchResult {
  adapter?: GpuAdapterSummary;
  adapterReason?: string;
  software: boolean;
  training: TrainingFigure[];
  ort: OrtFigure[];
  autoOrt?: { ran: string; reason: string };
  autoTfjs?: { ran: string; reason: string };
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 240);
}

/** samples/s of Adam steps at `batch` on `backend`, fresh ids per step (uploaded each time, as in real training), for about `seconds`. */
async function trainingSpeed(backend: 'webgpu' | 'wasm', batch: number, seconds: number): Promise<TrainingFigure> {
  let chosen;
  try {
    chosen = await initTfjs(backend);
  } catch (e) {
    return { backend, batch, error: firstLine(e) };
  }
  const model = neumf();
  model.compile({ optimizer: tf.train.adam(0.001), loss: 'binaryCrossentropy' });
  let seed = 12345;
  const next = (m: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % m;
  };
  const step = async () => {
    const u = Int32Array.from({ length: batch }, () => next(USERS));
    const i = Int32Array.from({ length: batch }, () => next(ITEMS));
    const y = Float32Array.from({ length: batch }, () => (next(5) === 0 ? 1 : 0));
    const xs = [tf.tensor2d(u, [batch, 1], 'int32'), tf.tensor2d(i, [batch, 1], 'int32')];
    const ys = tf.tensor2d(y, [batch, 1]);
    try {
      // the loss is read back every step, as a training loop that reports it does
      return Number(await model.trainOnBatch(xs, ys));
    } finally {
      tf.dispose([...xs, ys]);
    }
  };
  try {
    const t0 = performance.now();
    await step(); // shader compiles / JIT
    await step();
    const firstStepSeconds = (performance.now() - t0) / 1000;
    let steps = 0;
    const start = performance.now();
    while (steps < 5 || (performance.now() - start < seconds * 1000 && steps < 2000)) {
      await step();
      steps++;
    }
    const elapsed = (performance.now() - start) / 1000;
    return { backend: chosen.backend, batch, samplesPerSecond: (steps * batch) / elapsed, steps, firstStepSeconds };
  } catch (e) {
    return { backend, batch, error: firstLine(e) };
  } finally {
    model.optimizer?.dispose();
    model.dispose();
  }
}

async function ortFigures(file: string, ep: OrtEpPreference, batches: number[], reference?: Float32Array): Promise<OrtFigure & { scores?: Float32Array }> {
  let scorer;
  try {
    scorer = await openOrtScorer(file, { ep });
  } catch (e) {
    return { ep, error: firstLine(e) };
  }
  try {
    const check = syntheticBatch(4096, { userVocab: USERS, itemVocab: ITEMS, seed: 99 });
    const scores = await scorer.score(check, 4096);
    let maxAbsDiffVsCpu: number | undefined;
    if (reference) {
      maxAbsDiffVsCpu = 0;
      for (let i = 0; i < scores.length; i++) maxAbsDiffVsCpu = Math.max(maxAbsDiffVsCpu, Math.abs(scores[i] - reference[i]));
    }
    const lat = await measureLatency(scorer, { batchSizes: batches, userVocab: USERS, itemVocab: ITEMS, warmup: 3, runs: 50, maxSecondsPerBatch: 3 });
    return { ep, ran: scorer.executionProvider?.name, reason: scorer.executionProvider?.reason, points: lat.points, maxAbsDiffVsCpu, scores };
  } catch (e) {
    return { ep, error: firstLine(e) };
  } finally {
    await scorer.close();
  }
}

const pad = (s: string, n: number) => s.padEnd(n);
const num = (x: number | undefined, digits = 0) => (x === undefined ? 'n/a' : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));

export async function runGpuBench(o: { quick?: boolean; log?: (line: string) => void } = {}): Promise<GpuBenchResult> {
  const log = o.log ?? ((s: string) => process.stdout.write(s + '\n'));
  const seconds = o.quick ? 3 : 8;
  log('# GPU check');
  const probe = await probeWebGpuAdapter();
  const a = probe.adapter;
  const result: GpuBenchResult = { adapter: a, adapterReason: probe.reason, software: a?.software ?? false, training: [], ort: [] };
  if (!a) {
    log(`WebGPU adapter: none (${probe.reason}). WebGPU figures below will be errors.`);
  } else {
    log(`WebGPU adapter (Dawn): ${describeAdapter(a)}`);
    log(`  vendor '${a.vendor}', architecture '${a.architecture}', device '${a.device}', isFallbackAdapter ${a.isFallbackAdapter}`);
    if (a.software) {
      log('');
      log('  *** SOFTWARE ADAPTER: this is a CPU driver (Mesa lavapipe or similar), not a GPU. ***');
      log('  *** The "webgpu" numbers below measure the CPU through Vulkan: they are NOT GPU figures, ***');
      log("  *** and 'auto' never picks this adapter (WASM / the ORT CPU provider are faster).        ***");
      log('');
    }
  }
  const cuda = ortCudaProvider();
  log(`ORT CUDA provider: ${cuda.installed ? `installed (${cuda.file})` : cuda.reason}`);
  const tfAuto = await initTfjs('auto');
  result.autoTfjs = { ran: tfAuto.backend, reason: tfAuto.reason };
  log(`TF.js 'auto' would run on: ${tfAuto.backend} (${tfAuto.reason})`);

  log('');
  const sized = neumf();
  log(`## TF.js training, NeuMF ${USERS} users x ${ITEMS} items, GMF 32 + MLP 64-32-16 (${sized.countParams()} params), Adam, ~${seconds} s per figure`);
  sized.dispose();
  for (const batch of [1024, 8192]) {
    // wasm first: a tensor living on WebGPU cannot move to another backend in Node (no sync reads)
    const w = await trainingSpeed('wasm', batch, seconds);
    const g = await trainingSpeed('webgpu', batch, seconds);
    result.training.push(w, g);
    const ratio = w.samplesPerSecond && g.samplesPerSecond ? `${(g.samplesPerSecond / w.samplesPerSecond).toFixed(2)}x` : 'n/a';
    log(
      `batch ${String(batch).padStart(5)}: wasm ${pad(w.error ? `error: ${w.error}` : `${num(w.samplesPerSecond)} samples/s`, 22)}` +
        ` webgpu ${g.error ? `error: ${g.error}` : `${num(g.samplesPerSecond)} samples/s (first 2 steps ${num(g.firstStepSeconds, 1)} s)`}` +
        `   webgpu/wasm ${ratio}${a?.software ? ' [software adapter]' : ''}`,
    );
  }

  log('');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prunescope-gpu-check-'));
  try {
    await initTfjs('wasm');
    const m = neumf();
    const file = path.join(dir, 'neumf.onnx');
    await exportLayersModelToOnnx(m, file);
    m.dispose();
    const batches = [1, 256, 4096];
    log(`## ONNX Runtime latency p50 (ms), same NeuMF as ONNX (${(fs.statSync(file).size / 1e6).toFixed(2)} MB), batches ${batches.join(', ')}`);
    const cpu = await ortFigures(file, 'cpu', batches);
    const eps: OrtEpPreference[] = ['webgpu', ...(cuda.installed ? (['cuda'] as const) : [])];
    const figures: OrtFigure[] = [cpu];
    for (const ep of eps) figures.push(await ortFigures(file, ep, batches, cpu.scores));
    const auto = await ortFigures(file, 'auto', [1]);
    result.autoOrt = auto.ran ? { ran: auto.ran, reason: auto.reason ?? '' } : undefined;
    log(`${pad('provider', 10)}${batches.map((b) => pad(`batch ${b}`, 17)).join('')}max |diff| vs cpu`);
    for (const f of figures) {
      const { scores: _scores, ...plain } = f as OrtFigure & { scores?: Float32Array };
      result.ort.push(plain);
      if (f.error) {
        log(`${pad(f.ep, 10)}error: ${f.error}`);
        continue;
      }
      const cells = batches.map((b) => {
        const p = f.points?.find((x) => x.batch === b);
        const vsCpu = p && f.ep !== 'cpu' ? cpu.points?.find((x) => x.batch === b) : undefined;
        return pad(p ? `${p.p50Ms.toFixed(3)}${vsCpu ? ` (${(vsCpu.p50Ms / p.p50Ms).toFixed(2)}x)` : ''}` : 'n/a', 17);
      });
      log(`${pad(f.ep, 10)}${cells.join('')}${f.maxAbsDiffVsCpu !== undefined ? f.maxAbsDiffVsCpu.toExponential(2) : '-'}`);
    }
    log('  (Nx): speed vs the CPU provider at that batch (> 1: faster)');
    if (result.autoOrt) log(`ORT 'auto' runs on: ${result.autoOrt.ran} (${result.autoOrt.reason})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (a?.software) log('\nREMINDER: software adapter (CPU): the webgpu figures above are not GPU figures.');
  return result;
}

// the file-name check keeps this CLI from running when the module is bundled into dist/bench.js
if (require.main === module && /gpu\.js$/.test(process.argv[1] ?? '')) {
  const argv = process.argv.slice(2);
  runGpuBench({ quick: argv.includes('--quick') }).then(
    (r) => {
      if (argv.includes('--json')) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    },
    (e) => {
      process.stderr.write(`gpu bench failed: ${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
