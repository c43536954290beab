// `prunescope sensitivity MODEL --candidates FILE.csv [--budget 0.01] [--sparsities 0.5,0.7,0.9]`:
// prunes each layer alone at several sparsities, evaluates, and proposes per-layer targets that
// keep the metric drop within the budget (checked with every layer pruned at once). `--recipe
// OUT.json` writes the proposal as a recipe that `prunescope run` replays.

import { resolve } from 'node:path';
import { readModel } from '../core/model/read-model.js';
import { sensitivityAnalysis } from '../core/compress/sensitivity.js';
import { recipeText } from '../core/jobs/recipe-file.js';
import { SENSITIVITY } from './command-specs.js';
import { createProgressBar } from './progress.js';
import { checkReportFileFree, writeReportFile } from './report-file.js';

export async function sensitivityCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = SENSITIVITY.parse(argv);
  if (o.recipe) checkReportFileFree(resolve(o.recipe), o.force);
  const candidates = o.candidates;
  const path = resolve(positionals[0]);
  const bar = createProgressBar('sensitivity', process.stderr, o.progress);
  const ir = await readModel(path);
  const r = await sensitivityAnalysis(
    ir,
    {
      candidates: resolve(candidates),
      k: o.k,
      budget: o.budget,
      metric: o.metric,
      sparsities: o.sparsities,
      userInput: o['user-input'],
      itemInput: o['item-input'],
    },
    { onProgress: (f, d) => bar.update(f, d) },
  );
  bar.done();
  const recipeOut = o.recipe;
  if (recipeOut) {
    const perLayer = Object.fromEntries(Object.entries(r.proposal).filter(([, v]) => v > 0));
    await writeReportFile(
      resolve(recipeOut),
      recipeText({
        version: 1,
        model: path,
        steps: [{ method: 'prune-magnitude', settings: { sparsity: 0, scope: 'layer', perLayer, tensors: Object.keys(perLayer) } }],
        candidates: resolve(candidates),
      }),
      o.force,
    );
  }
  if (o.json) {
    process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    return 0;
  }
  const m = r.metric.toUpperCase();
  const lines = [
    `${path}`,
    `baseline ${m}@${r.k} ${(r.metric === 'ndcg' ? r.baseline.ndcg : r.baseline.hr).toFixed(4)}; budget: at most ${(r.budget * 100).toFixed(1)}% relative drop`,
    '',
  ];
  const sps = r.rows[0]?.points.map((p) => p.sparsity) ?? [];
  const head = ['tensor', 'params', ...sps.map((s) => `drop@${Math.round(s * 100)}%`), 'proposed'];
  const rows = r.rows.map((row) => [
    row.tensor,
    row.params.toLocaleString('en-US'),
    ...row.points.map((p) => `${(p.drop * 100).toFixed(1)}%`),
    `${Math.round((r.proposal[row.tensor] ?? 0) * 100)}%`,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i].length)));
  lines.push(head.map((h, i) => (i === 0 ? h.padEnd(w[i]) : h.padStart(w[i]))).join('  '));
  for (const x of rows) lines.push(x.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
  lines.push('');
  lines.push(
    `All proposed targets at once: ${(r.combined.sparsity * 100).toFixed(1)}% of the studied weights pruned, ${m}@${r.k} ${(r.metric === 'ndcg' ? r.combined.ndcg : r.combined.hr).toFixed(4)} (drop ${(r.combined.drop * 100).toFixed(2)}%)` +
      (r.backoffs ? `, after scaling the targets back ${r.backoffs} time(s) to meet the budget together.` : '.'),
  );
  if (recipeOut) lines.push(`Recipe written to ${resolve(recipeOut)}: prunescope run ${recipeOut}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
