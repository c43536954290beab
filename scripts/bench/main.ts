// `npm run bench`: every benchmark of the project in one run. Each prints ratios against a
// baseline measured in the same run (this machine is shared and noisy: ratios matter, not
// absolute times). Options:
//   --scale-model PATH   analyse this ONNX scale model (generate one with
//                        `node out/test/fixtures/scale-model.js DIR`); default: bench-data/scale/
//   --quick              smaller inputs, for a smoke run

import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { runAnalysisBench } from './analysis.js';

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const i = argv.indexOf('--scale-model');
  const given = i >= 0 ? argv[i + 1] : undefined;
  const fallback = resolve('bench-data/scale/scale-neumf.onnx');
  const scaleModelPath = given ? resolve(given) : existsSync(fallback) ? fallback : undefined;
  if (!scaleModelPath) {
    process.stdout.write(`(no scale model: generate one with \`npm run build:tests && node out/test/fixtures/scale-model.js bench-data/scale\` to include it)\n`);
  }
  await runAnalysisBench({ scaleModelPath, quick: argv.includes('--quick') });
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).stack ?? e}\n`);
  process.exitCode = 1;
});
