// `npm run bench`: every benchmark of the project in one run. Each prints ratios against a
// baseline measured in the same run (this machine is shared and noisy: ratios matter, not
// absolute times). Options:
//   --scale-model PATH   analyse this ONNX model instead of the generated scale model
//   --no-scale           skip the ~540 MB scale model (generated into bench-data/scale/ once, ~20 s)
//   --quick              smaller inputs, for a smoke run
//   --only=analysis|compress|training|trees   one part only
//   --only=gpu           the GPU check only (WebGPU/CUDA vs CPU; never part of a plain run:
//                        scripts/gpu-check.sh runs it)

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { runAnalysisBench } from './analysis.js';
import { runCompressionBench } from './compress.js';
import { runTrainingBench } from './train.js';
import { runTreesBench } from './trees.js';
import { runGpuBench } from './gpu.js';
import { generateScaleModel } from '../../test/fixtures/scale-model.js';

async function scaleModel(argv: string[]): Promise<string | undefined> {
  const i = argv.indexOf('--scale-model');
  if (i >= 0) return resolve(argv[i + 1]);
  if (argv.includes('--no-scale') || argv.includes('--quick')) return undefined;
  const path = resolve('bench-data/scale/scale-neumf.onnx');
  if (!existsSync(path)) {
    process.stdout.write('Generating the scale model (2M x 64 item table, external data) into bench-data/scale/ ...\n');
    const r = await generateScaleModel(resolve('bench-data/scale'));
    process.stdout.write(`  ${(r.bytes / 1e6).toFixed(0)} MB in ${r.seconds.toFixed(1)} s\n`);
  }
  return path;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const only = (name: string) => !argv.some((a) => a.startsWith('--only=')) || argv.includes(`--only=${name}`);
  if (only('analysis')) await runAnalysisBench({ scaleModelPath: await scaleModel(argv), quick });
  if (only('compress')) await runCompressionBench({ quick });
  if (only('training')) await runTrainingBench({ quick });
  if (only('trees')) await runTreesBench();
  if (argv.includes('--only=gpu')) {
    const r = await runGpuBench({ quick });
    if (argv.includes('--json')) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
