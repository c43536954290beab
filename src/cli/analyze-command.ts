// `prunescope analyze <model> [--json]`: read the model, compute every statistic, print the
// layer table and the biggest opportunities (or the JSON report). `--shard I/N` analyses one
// shard into a shard report (`prunescope merge` assembles them); `--distribute N --redis URL`
// puts N shards on the job queue, waits for `prunescope worker` processes and merges.

import { dirname, join, resolve } from 'node:path';
import { readModel } from '../core/model/read-model.js';
import { analyzeModel } from '../core/analysis/analyze-model.js';
import { analyzeShard, parseShard } from '../core/analysis/shards.js';
import type { ModelReport } from '../shared/report.js';
import { UsageError } from './args.js';
import { ANALYZE } from './command-specs.js';
import { createProgressBar } from './progress.js';
import { formatReport } from './format-report.js';
import { checkReportFileFree, writeReportFile } from './report-file.js';
import { modelInputs, type CommandInput } from './output-checks.js';

export async function analyzeCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = ANALYZE.parse(argv);
  const path = resolve(positionals[0]);
  let shard;
  try {
    shard = o.shard !== undefined ? parseShard(o.shard) : undefined;
  } catch (e) {
    throw new UsageError(`--shard: ${(e as Error).message}`);
  }
  const out = o.out ? resolve(o.out) : undefined;
  let inputs: CommandInput[] = [{ path, what: 'the original model' }];
  if (out) checkReportFileFree(out, o.force, inputs);
  const bar = createProgressBar('analyze', process.stderr, o.progress);
  try {
    bar.update(0, 'reading');
    const ir = await readModel(path, { onProgress: (f) => bar.update(f * 0.1, 'reading') });
    // its weight files are known now: an --out naming one fails before the analysis
    inputs = modelInputs(ir);
    if (out) checkReportFileFree(out, o.force, inputs);
    const opts = { epsilon: o.epsilon, spectrum: !o['no-spectrum'], onProgress: (p: { fraction: number; tensor: string }) => bar.update(0.1 + 0.9 * p.fraction, p.tensor) };
    if (shard && out) {
      const report = await analyzeShard(ir, shard, opts);
      bar.done();
      await writeReportFile(out, JSON.stringify(report) + '\n', o.force, inputs);
      process.stdout.write(`shard ${shard.index + 1}/${shard.count}: ${report.tensors.length} tensors -> ${out}\n`);
      return 0;
    }
    let report: ModelReport;
    if (o.distribute !== undefined && o.redis) {
      const { distributeAnalysis, redisConnection } = await import('../core/distributed/queue.js');
      const shardDir = o['shard-dir'] ? resolve(o['shard-dir']) : join(dirname(path), '.prunescope-shards');
      bar.update(0.1, `${o.distribute} shards on the queue`);
      report = await distributeAnalysis(path, redisConnection(o.redis), {
        shards: o.distribute,
        outDir: shardDir,
        epsilon: o.epsilon,
        spectrum: !o['no-spectrum'],
        onShardDone: (done, total) => bar.update(0.1 + (0.9 * done) / total, `${done} of ${total} shards done`),
      });
    } else {
      report = await analyzeModel(ir, opts);
    }
    bar.done();
    const json = JSON.stringify(report, null, 2);
    if (out) await writeReportFile(out, json + '\n', o.force, inputs);
    if (o.json) process.stdout.write(json + '\n');
    else process.stdout.write(formatReport(report, { top: o.top, tensors: o.tensors }) + '\n');
    return 0;
  } finally {
    bar.done();
  }
}
