// `prunescope analyze <model> [--json]`: read the model, compute every statistic, print the
// layer table and the biggest opportunities (or the JSON report).

import { writeFile, rename } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { readModel } from '../core/model/read-model.js';
import { analyzeModel } from '../core/analysis/analyze-model.js';
import { ANALYZE } from './command-specs.js';
import { createProgressBar } from './progress.js';
import { formatReport } from './format-report.js';

export async function analyzeCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = ANALYZE.parse(argv);
  const path = resolve(positionals[0]);
  const bar = createProgressBar('analyze', process.stderr, o.progress);
  try {
    bar.update(0, 'reading');
    const ir = await readModel(path, { onProgress: (f) => bar.update(f * 0.1, 'reading') });
    const report = await analyzeModel(ir, {
      epsilon: o.epsilon,
      spectrum: !o['no-spectrum'],
      onProgress: (p) => bar.update(0.1 + 0.9 * p.fraction, p.tensor),
    });
    bar.done();
    const json = JSON.stringify(report, null, 2);
    if (o.out) {
      // temp + rename: a crash never leaves half a report
      const target = resolve(o.out);
      const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.tmp`);
      await writeFile(tmp, json + '\n');
      await rename(tmp, target);
    }
    if (o.json) process.stdout.write(json + '\n');
    else process.stdout.write(formatReport(report, { top: o.top, tensors: o.tensors }) + '\n');
    return 0;
  } finally {
    bar.done();
  }
}
