// `prunescope analyze <model> [--json]`: read the model, compute every statistic, print the
// layer table and the biggest opportunities (or the JSON report).

import { writeFile, rename } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { readModel } from '../core/model/read-model.js';
import { analyzeModel } from '../core/analysis/analyze-model.js';
import { flag, numberArg, parseCommandArgs, stringArg, UsageError } from './args.js';
import { createProgressBar } from './progress.js';
import { formatReport } from './format-report.js';

export async function analyzeCommand(argv: string[]): Promise<number> {
  const args = parseCommandArgs(argv, {
    json: { type: 'boolean' },
    out: { type: 'string' },
    epsilon: { type: 'string' },
    'no-spectrum': { type: 'boolean' },
    top: { type: 'string' },
    tensors: { type: 'boolean' },
    progress: { type: 'boolean' },
  });
  if (args.positionals.length !== 1) throw new UsageError('give exactly one model file');
  const path = resolve(args.positionals[0]);
  const epsilon = numberArg(args, 'epsilon', 1e-6, 0, 1e6);
  const top = numberArg(args, 'top', 3, 0, 1000);

  const bar = createProgressBar('analyze', process.stderr, flag(args, 'progress'));
  try {
    bar.update(0, 'reading');
    const ir = await readModel(path, { onProgress: (f) => bar.update(f * 0.1, 'reading') });
    const report = await analyzeModel(ir, {
      epsilon,
      spectrum: !flag(args, 'no-spectrum'),
      onProgress: (p) => bar.update(0.1 + 0.9 * p.fraction, p.tensor),
    });
    bar.done();
    const json = JSON.stringify(report, null, 2);
    const out = stringArg(args, 'out');
    if (out) {
      // temp + rename: a crash never leaves half a report
      const target = resolve(out);
      const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
      await writeFile(tmp, json + '\n');
      await rename(tmp, target);
    }
    if (flag(args, 'json')) process.stdout.write(json + '\n');
    else process.stdout.write(formatReport(report, { top, tensors: flag(args, 'tensors') }) + '\n');
    return 0;
  } finally {
    bar.done();
  }
}
