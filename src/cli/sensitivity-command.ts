// `prunescope sensitivity MODEL --candidates FILE.csv [--budget 0.01] [--sparsities 0.5,0.7,0.9]`:
// prunes each layer alone at several sparsities, evaluates, and proposes per-layer targets that
// keep the metric drop within the budget (checked with every layer pruned at once). `--recipe
// OUT.json` writes the proposal as a recipe that `prunescope run` replays.

import { dirname, resolve } from 'node:path';
import { readModel } from '../core/model/read-model.js';
import { sensitivityAnalysis } from '../core/compress/sensitivity.js';
import { recipeText, relativeRecipe } from '../core/jobs/recipe-file.js';
import { SENSITIVITY } from './command-specs.js';
import { createProgressBar } from './progress.js';
import { checkReportFileFree, writeReportFile } from './report-file.js';
import { modelInputs, type CommandInput } from './output-checks.js';

export async function sensitivityCommand(argv: string[]): Promise<number> {
  const { values: o, positionals } = SENSITIVITY.parse(argv);
  const path = resolve(positionals[0]);
  const candidates = resolve(o.candidates);
  const recipeOut = o.recipe ? resolve(o.recipe) : undefined;
  const dataInputs: CommandInput[] = [{ path: candidates, what: 'the --candidates file' }];
  if (recipeOut) checkReportFileFree(recipeOut, o.force, [{ path, what: 'the original model' }, ...dataInputs]);
  const bar = createProgressBar('sensitivity', process.stderr, o.progress);
  let r;
  try {
    const ir = await readModel(path);
    // its weight files are known now: a --recipe naming one fails before the study
    const inputs = [...modelInputs(ir), ...dataInputs];
    if (recipeOut) checkReportFileFree(recipeOut, o.force, inputs);
    r = await sensitivityAnalysis(
      ir,
      {
        candidates,
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
    if (recipeOut) {
      const perLayer = Object.fromEntries(Object.entries(r.proposal).filter(([, v]) => v > 0));
      await writeReportFile(
        recipeOut,
        recipeText(
          relativeRecipe(
            {
              version: 1,
              model: path,
              steps: [{ method: 'prune-magnitude', settings: { sparsity: 0, scope: 'layer', perLayer, tensors: Object.keys(perLayer) } }],
              candidates,
            },
            dirname(recipeOut),
          ),
        ),
        o.force,
        inputs,
      );
    }
  } finally {
    // an error starts on a line of its own
    bar.done();
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
  // 'alone': the largest sparsity within the budget for the tensor by itself (JSON rows[].proposed);
  // 'together': after scaling all of them back until they meet it at once (JSON proposal)
  const head = ['tensor', 'params', ...sps.map((s) => `drop@${Math.round(s * 100)}%`), 'alone', 'together'];
  const rows = r.rows.map((row) => [
    row.tensor,
    row.params.toLocaleString('en-US'),
    ...row.points.map((p) => `${(p.drop * 100).toFixed(1)}%`),
    `${Math.round(row.proposed * 100)}%`,
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
  if (recipeOut) lines.push(`Recipe written to ${recipeOut}: prunescope run ${o.recipe}`);
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
