// `prunescope bench MODEL [--batch 1024] [--batch 1 ...] [--runs 30] [--warmup 3]
// [--backend auto|tfjs-node|webgpu|wasm|cpu] [--ep cpu|webgpu|cuda|auto] [--json]`:
// inference latency p50 / p95 and throughput per batch size in the model's runtime (ORT for
// ONNX on the execution provider --ep names, TF.js for model.json on --backend), plus size on
// disk and gzip size, and what ran it and why.

import { resolve } from 'node:path';
import { evaluateModel } from '../core/eval/evaluate.js';
import { flag, numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';
import { backendArg, epArg, formatExecution } from './eval-command.js';

export async function benchCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    batch: { type: 'string', multiple: true },
    runs: { type: 'string' },
    warmup: { type: 'string' },
    'user-input': { type: 'string' },
    'item-input': { type: 'string' },
    'fields-input': { type: 'string' },
    backend: { type: 'string' },
    ep: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (args.positionals.length !== 1) throw new UsageError('give exactly one model file');
  const ep = epArg(stringArg(args, 'ep'), args.positionals[0]);
  const raw = args.values.batch as unknown as string[] | undefined;
  const batchSizes = (raw ?? ['1', '64', '1024']).flatMap((b) => b.split(',')).map((b) => {
    const n = Number(b);
    if (!Number.isInteger(n) || n < 1 || n > 1 << 22) throw new UsageError(`--batch must be a positive integer, got '${b}'`);
    return n;
  });
  const runs = numberArg(args, 'runs', 30, 1, 1e6);
  const warmup = numberArg(args, 'warmup', 3, 0, 1e4);
  const r = await evaluateModel(resolve(args.positionals[0]), {
    latency: { batchSizes, runs: Math.round(runs), warmup: Math.round(warmup) },
    userInput: stringArg(args, 'user-input'),
    itemInput: stringArg(args, 'item-input'),
    fieldsInput: stringArg(args, 'fields-input'),
    backend: backendArg(stringArg(args, 'backend')),
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
  if (flag(args, 'json')) {
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
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
