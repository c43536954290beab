// `prunescope quantize MODEL --dtype int8|int4|int3|int2|float16|uint8|uint16 [--tensors ...]
// [--rounding output-aware [--calibration PAIRS.csv]] [--finetune INTERACTIONS.csv --epochs N]
// --out PATH` (options: command-specs.ts QUANTIZE). With --finetune, int4/int3/int2 tables are
// fine-tuned quantization-aware first (quantize-steps.ts). ONNX int8 also runs in table shards:
// `--shard I/N --out F.qshard` computes one, `--from-shards` assembles the model from all N,
// `--distribute N --redis URL` puts N on the job queue for `prunescope worker`s and assembles
// when they are done.

import { readdir, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { composeQuantize, QuantizeTuningError } from '../core/jobs/quantize-steps.js';
import { finetuneFromOptions } from '../core/jobs/finetune-step.js';
import { lowBitsOf } from '../core/compress/quantize-math.js';
import type { CompressStep } from '../core/jobs/job-types.js';
import { UsageError } from './args.js';
import { QUANTIZE } from './command-specs.js';
import { checkReportFileFree } from './report-file.js';
import { modelInputs } from './output-checks.js';
import { runCompressCommand, tensorsSetting } from './run-compress-job.js';

/** Shard files named on the command line: files as given, folders as every *.qshard in them. */
async function shardFiles(args: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const a of args.map((x) => resolve(x))) {
    const st = await stat(a).catch(() => undefined);
    if (!st) throw new UsageError(`--from-shards: ${a} does not exist`);
    if (!st.isDirectory()) files.push(a);
    else {
      const inDir = (await readdir(a)).filter((f) => f.endsWith('.qshard')).sort().map((f) => join(a, f));
      if (inDir.length === 0) throw new UsageError(`--from-shards: the folder ${a} holds no *.qshard file`);
      files.push(...inDir);
    }
  }
  return files;
}

export async function quantizeCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = QUANTIZE.parse(argv);
  const settings: Record<string, unknown> = {
    dtype: o.dtype,
    ...tensorsSetting(o.tensors),
    ...(o.dense ? { dense: o.dense } : {}),
    ...(o.lookup ? { lookup: o.lookup } : {}),
    ...(o.scales ? { scales: o.scales } : {}),
    ...(o['full-range'] ? { reduceRange: false } : {}),
  };
  if (o.rounding === 'output-aware') {
    if (lowBitsOf(o.dtype) === undefined) throw new UsageError(`--rounding output-aware is for --dtype int4, int3 or int2; ${o.dtype} rounds to nearest`);
    Object.assign(settings, { rounding: 'output-aware', ...(o.calibration ? { calibration: resolve(o.calibration) } : {}) });
  } else if (o.rounding === 'nearest' && o.calibration) throw new UsageError('--calibration goes with --rounding output-aware');
  const sharded = o.shard !== undefined || o['from-shards'] !== undefined || o.distribute !== undefined;
  if (sharded && o.dtype !== 'int8') throw new UsageError('--shard, --from-shards and --distribute are for --dtype int8');
  const model = resolve(positionals[0]);
  if (o.shard !== undefined) {
    const { parseShard } = await import('../core/analysis/shards.js');
    let shard;
    try {
      shard = parseShard(o.shard);
    } catch (e) {
      throw new UsageError(`--shard: ${(e as Error).message}`);
    }
    const out = resolve(o.out!);
    checkReportFileFree(out, o.force, [{ path: model, what: 'the original model' }]);
    const { readModel } = await import('../core/model/read-model.js');
    const { quantizeShard } = await import('../core/compress/quantize.js');
    const ir = await readModel(model);
    checkReportFileFree(out, o.force, modelInputs(ir));
    const header = await quantizeShard(ir, settings as { dtype: 'int8' }, shard, out);
    const bytes = header.tables.reduce((s, t) => s + t.codes.length + t.scales.length, 0);
    process.stdout.write(`shard ${shard.index + 1}/${shard.count}: ${header.tables.length} table(s), ${bytes} bytes -> ${out}\n`);
    return 0;
  }
  if (o['from-shards'] !== undefined) settings.fromShards = await shardFiles(o['from-shards']);
  if (o.distribute !== undefined && o.redis) {
    const { distributeQuantization, redisConnection } = await import('../core/distributed/queue.js');
    const shardDir = o['shard-dir'] ? resolve(o['shard-dir']) : join(dirname(model), '.prunescope-shards');
    process.stderr.write(`quantize: ${o.distribute} table shards on the queue at ${o.redis}\n`);
    settings.fromShards = await distributeQuantization(model, redisConnection(o.redis), {
      shards: o.distribute,
      outDir: shardDir,
      settings: settings as { dtype: 'int8' },
      onShardDone: (done, total) => process.stderr.write(`quantize: ${done} of ${total} shards done\n`),
    });
  }
  let steps: CompressStep[];
  try {
    // the unquantized original teaches the fine-tuning, unless --no-teacher
    steps = composeQuantize(settings, finetuneFromOptions(o, model));
  } catch (e) {
    if (e instanceof QuantizeTuningError) throw new UsageError(e.message);
    throw e;
  }
  return runCompressCommand(o, positionals[0], steps, o.finetune ? `${o.dtype}-qat` : o.dtype);
}
