// Compression benchmark: one demo-size NeuMF (built and trained by the sample code), compressed
// by every method that keeps its inputs, then ONNX Runtime latency of the original and of each
// compressed model measured in the same run, with sizes. The ratios are the result; absolute
// times depend on the (shared, noisy) machine.

import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createSampleModel } from '../../src/core/samples/sample-models.js';
import { readModel } from '../../src/core/model/read-model.js';
import { modelVocab, openScorer, evaluateModel } from '../../src/core/eval/evaluate.js';
import { measureLatency } from '../../src/core/eval/latency.js';
import { modelSize } from '../../src/core/eval/size.js';
import { quantizeModel } from '../../src/core/compress/quantize.js';
import { pruneMagnitude } from '../../src/core/compress/prune-magnitude.js';
import { pruneRows } from '../../src/core/compress/prune-rows.js';
import { pruneNeurons } from '../../src/core/compress/prune-neurons.js';
import { factorizeModel } from '../../src/core/compress/factorize.js';
import type { CompressionOutcome } from '../../src/core/compress/types.js';
import type { ModelIR } from '../../src/core/model/ir.js';

interface Variant {
  name: string;
  make: (ir: ModelIR) => Promise<CompressionOutcome>;
}

const VARIANTS: Variant[] = [
  { name: 'pruned 90% (unstructured)', make: (ir) => pruneMagnitude(ir, { sparsity: 0.9 }) },
  { name: 'rows 50% (remap)', make: (ir) => pruneRows(ir, { sparsity: 0.5 }) },
  { name: 'neurons 50%', make: (ir) => pruneNeurons(ir, { sparsity: 0.5 }) },
  { name: 'int8', make: (ir) => quantizeModel(ir, { dtype: 'int8' }) },
  { name: 'int8 fast lookup+dynamic', make: (ir) => quantizeModel(ir, { dtype: 'int8', lookup: 'fast', dense: 'dynamic' }) },
  { name: 'float16', make: (ir) => quantizeModel(ir, { dtype: 'float16' }) },
  { name: 'int4 tables (row scales)', make: (ir) => quantizeModel(ir, { dtype: 'int4' }) },
  { name: 'int4 tables (byte scales)', make: (ir) => quantizeModel(ir, { dtype: 'int4', scales: 'byte' }) },
  { name: 'int4 tables (column scales)', make: (ir) => quantizeModel(ir, { dtype: 'int4', scales: 'column' }) },
  { name: 'factorized (95% energy)', make: (ir) => factorizeModel(ir, { energy: 0.95 }) },
];

export async function runCompressionBench(opts: { quick?: boolean } = {}): Promise<void> {
  const dir = resolve('bench-data/compress');
  const onnx = join(dir, 'neumf.onnx');
  if (!existsSync(onnx)) {
    process.stdout.write('Building the demo-size NeuMF for the compression bench ...\n');
    await mkdir(dir, { recursive: true });
    await createSampleModel('neumf', dir, { size: 'demo', formats: ['onnx'], seed: 7 });
  }
  const candidates = join(dir, 'neumf-candidates.csv');
  const ir = await readModel(onnx);
  const vocab = modelVocab(ir);
  const latencyOpts = { batchSizes: opts.quick ? [1024] : [1, 64, 1024], runs: opts.quick ? 10 : 40, warmup: 5, userVocab: vocab.user, itemVocab: vocab.item };

  const measure = async (path: string) => {
    const scorer = await openScorer(path, { threads: 1 });
    try {
      return await measureLatency(scorer, latencyOpts);
    } finally {
      await scorer.close();
    }
  };
  const base = await measure(onnx);
  const baseSize = await modelSize(onnx);
  const baseEval = await evaluateModel(onnx, { candidates, k: 10 });
  const rows: string[][] = [];
  const p50 = (r: typeof base, b: number) => r.points.find((p) => p.batch === b)?.p50Ms ?? NaN;
  const batches = latencyOpts.batchSizes;
  rows.push(['original', String(baseSize.bytes), '1.00', (baseEval.ndcg ?? 0).toFixed(4), ...batches.map((b) => `${p50(base, b).toFixed(3)} ms`), ...batches.map(() => '1.00')]);
  for (const v of VARIANTS) {
    const out = join(dir, `${v.name.replace(/[^a-z0-9]+/gi, '-')}.onnx`);
    try {
      const outcome = await v.make(ir);
      await outcome.write(out);
      // measure the original again right before each variant: load drifts on a shared machine
      const again = await measure(onnx);
      const lat = await measure(out);
      const size = await modelSize(out);
      const ev = await evaluateModel(out, { candidates, k: 10 });
      rows.push([
        v.name,
        String(size.bytes),
        (baseSize.bytes / size.bytes).toFixed(2),
        (ev.ndcg ?? 0).toFixed(4),
        ...batches.map((b) => `${p50(lat, b).toFixed(3)} ms`),
        ...batches.map((b) => (p50(again, b) / p50(lat, b)).toFixed(2)),
      ]);
    } catch (e) {
      rows.push([v.name, `failed: ${(e as Error).message.slice(0, 80)}`]);
    } finally {
      await rm(out, { force: true });
      await rm(`${out}.data`, { force: true });
    }
  }
  const head = ['model', 'bytes', 'x smaller', 'NDCG@10', ...batches.map((b) => `p50 b=${b}`), ...batches.map((b) => `speed-up b=${b}`)];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  process.stdout.write(`\nCompression: ONNX Runtime latency (1 thread) and size, original vs compressed (${ir.tensors.length} tensors, ${baseSize.bytes} bytes)\n`);
  process.stdout.write(head.map((h, i) => (i === 0 ? h.padEnd(w[i]) : h.padStart(w[i]))).join('  ') + '\n');
  for (const r of rows) process.stdout.write(r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ') + '\n');
  process.stdout.write('speed-up = p50 of the original measured just before / p50 of the compressed model (> 1 is faster).\n');
}
