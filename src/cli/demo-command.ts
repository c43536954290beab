// `prunescope demo`: the README's first command. Builds a sample recommender with the real
// libraries (TF.js layers, trained briefly on generated interactions with planted structure),
// saves it as TF.js and ONNX, analyses both, compresses the ONNX model two ways (int8, and half
// of the embedding rows dropped), and prints the analysis and the before/after reports.

import { resolve } from 'node:path';
import { createSampleModel } from '../core/samples/sample-models.js';
import type { SampleKind } from '../core/samples/models.js';
import { readModel } from '../core/model/read-model.js';
import { analyzeModel } from '../core/analysis/analyze-model.js';
import { DEMO } from './command-specs.js';
import { formatReport } from './format-report.js';
import { createProgressBar } from './progress.js';
import { join } from 'node:path';
import { runJob } from '../core/jobs/job-runner.js';
import { tempDirFor } from '../core/jobs/output-files.js';
import type { CompressStep } from '../core/jobs/job-types.js';
import { formatCompressResult } from './run-compress-job.js';


export async function demoCommand(argv: string[]): Promise<number> {
  const { values: o } = DEMO.parse(argv);
  const kind: SampleKind = o.model;
  const dir = resolve(o.dir);
  const json = o.json;
  const log = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');

  log(`Building a sample ${kind} recommender in ${dir} (TF.js layers, trained on generated interactions)...`);
  const t0 = Date.now();
  const sample = await createSampleModel(kind, dir, {
    size: 'demo',
    formats: ['tfjs', 'onnx'],
    seed: 42,
    onEpoch: (epoch, loss) => log(`  epoch ${epoch + 1}: loss ${loss.toFixed(4)}`),
  });
  log(
    `Built in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${sample.backend}: ${sample.params.toLocaleString('en-US')} params, ` +
      `HR@10 ${sample.metrics.hitRate.toFixed(3)} / NDCG@10 ${sample.metrics.ndcg.toFixed(3)} on ${sample.candidatesPerUser - 1} sampled negatives per user ` +
      `(random ranking: HR@10 ${(10 / sample.candidatesPerUser).toFixed(3)}); ${sample.coldItems} items never seen in training.`,
  );

  const reports = [];
  for (const path of [sample.tfjsModelJson, sample.onnxPath].filter((p): p is string => !!p)) {
    const bar = createProgressBar(`analyze ${kind}`);
    const ir = await readModel(path);
    const report = await analyzeModel(ir, { onProgress: (p) => bar.update(p.fraction, p.tensor) });
    bar.done();
    reports.push(report);
    if (!json) {
      log('');
      log(formatReport(report));
    }
  }
  // Compress the ONNX model: the two methods our users reach for first on table-heavy models.
  const jobs: Array<{ tag: string; step: CompressStep }> = [
    { tag: 'int8', step: { method: 'quantize', settings: { dtype: 'int8' } } },
    { tag: 'rows50', step: { method: 'prune-rows', settings: { sparsity: 0.5 } } },
  ];
  const compressions = [];
  for (const { tag, step } of jobs) {
    const outPath = join(dir, `${kind}-${tag}.onnx`);
    const bar = createProgressBar(`${step.method}`);
    const result = await runJob(
      {
        kind: 'compress',
        path: sample.onnxPath!,
        method: step.method,
        settings: step.settings,
        outPath,
        overwrite: true,
        tempDir: tempDirFor(outPath),
        evaluate: { candidates: sample.candidatesCsv, k: 10, latency: true },
      },
      { onProgress: (p) => bar.update(p.fraction, p.phase) },
    );
    bar.done();
    compressions.push(result);
    if (!json) {
      log('');
      log(formatCompressResult(result));
    }
  }
  if (json) process.stdout.write(JSON.stringify({ sample, reports, compressions }, null, 2) + '\n');
  else {
    log('');
    log(`Next: prunescope analyze ${sample.onnxPath} --json`);
    log(`      prunescope prune ${sample.onnxPath} --sparsity 0.9 --finetune ${sample.interactionsCsv} --epochs 2 --candidates ${sample.candidatesCsv}`);
  }
  return 0;
}
