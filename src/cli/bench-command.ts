// `prunescope bench MODEL [--batch 1024] [--batch 1 ...] [--runs 30] [--warmup 3]
// [--backend auto|tfjs-node|webgpu|wasm|cpu] [--ep cpu|webgpu|cuda|auto] [--json]`:
// inference latency p50 / p95 and throughput per batch size in the model's runtime (ORT for
// ONNX on the execution provider --ep names, TF.js for model.json on --backend), plus size on
// disk and gzip size, and what ran it and why.

import { resolve } from 'node:path';
import { evaluateModel } from '../core/eval/evaluate.js';
import type { TfjsBackendPreference } from '../core/runtime/tfjs-backend.js';
import { BENCH } from './command-specs.js';
import { epFor, formatExecution } from './eval-command.js';

export async function benchCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = BENCH.parse(argv);
  const ep = epFor(o.ep, positionals[0]);
  const r = await evaluateModel(resolve(positionals[0]), {
    latency: { batchSizes: o.batch, runs: o.runs, warmup: o.warmup },
    userInput: o['user-input'],
    itemInput: o['item-input'],
    fieldsInput: o['fields-input'],
    backend: o.backend as TfjsBackendPreference | undefined,
    ep,
  });
  const out = {
    model: r.model,
    format: r.format,
    runtime: r.runtime,
    executionProvider: r.executionProvider,
    params: r.params,
    bytes: r.bytes,
    gzipBytes: r.gzipBytes,
    files: r.files,
    latency: r.latency,
  };
  if (o.json) {
    process.stdout.write(JSON.stringify(out, null, 2) + '\n');
    return 0;
  }
  const lines = [`model    ${r.model} (${r.format}, ${r.runtime})`];
  const ran = formatExecution(r.executionProvider);
  if (ran) lines.push(`ran on   ${ran}`);
  lines.push(`params   ${r.params}`, `size     ${r.bytes} bytes, gzip ${r.gzipBytes} bytes`);
  for (const p of r.latency!.points) {
    lines.push(`batch ${String(p.batch).padStart(6)}: p50 ${p.p50Ms.toFixed(3)} ms  p95 ${p.p95Ms.toFixed(3)} ms  ${Math.round(p.pairsPerSecond)} pairs/s  (${p.runs} runs, ${r.latency!.warmup} warm-up)`);
  }
  const fixed = r.latency!.fixedBatch;
  if (fixed) lines.push(`note: the model's inputs have a fixed first dim of ${fixed} (exported without a dynamic batch): each batch ran as calls of ${fixed} rows, the last padded`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
