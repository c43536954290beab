// Tree-ensemble pruning bench: trains a 150-tree GBDT (depth 6) on generated CTR-like data with
// 4 informative and 8 useless features (test/fixtures/tree-trainer.ts), writes it with our ONNX
// writer, checks ORT against our evaluator, then prints for the original and for each pruning
// job (post-pruning, ensemble pruning, both, feature pruning): file size, nodes, ORT latency p50
// (batch 1 and batch 1000, default ORT threading) and AUC on the validation rows (the ones the
// pruning looked at) and on separate test rows.

import { mkdtemp, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { auc } from '../../src/core/eval/metrics.js';
import { readOnnxModel } from '../../src/core/model/onnx.js';
import { readTreeEnsemble, writeReplacedTreeEnsemble, writeTreeEnsembleModel } from '../../src/core/trees/onnx-trees.js';
import { analyzeTreeEnsemble } from '../../src/core/trees/tree-analysis.js';
import { evaluateTreeEnsemble, singleScore, type FeatureMatrix } from '../../src/core/trees/tree-eval.js';
import type { TreeEnsemble } from '../../src/core/trees/tree-model.js';
import { compareWithOrt, measureTreeLatency } from '../../src/core/trees/tree-ort.js';
import { pruneFeatures, prunePost, pruneTrees, type LabeledRows } from '../../src/core/trees/tree-prune.js';
import { makeCtrData, trainGbdt } from '../../test/fixtures/tree-trainer.js';

export interface TreesBenchOptions {
  trees?: number;
  depth?: number;
  trainRows?: number;
  validRows?: number;
  features?: number;
  /** ORT latency runs per measurement */
  runs?: number;
}

export interface TreesBenchRow {
  name: string;
  bytes: number;
  trees: number;
  nodes: number;
  p50Batch1Ms: number;
  p50Batch1000Ms: number;
  validAuc: number;
  testAuc: number;
  ortMaxAbsDiff: number;
}

function rowsOf(d: LabeledRows, n: number): FeatureMatrix {
  const k = Math.min(n, d.X.rows);
  return { data: d.X.data.subarray(0, k * d.X.features), rows: k, features: d.X.features };
}

function aucOf(e: TreeEnsemble, d: LabeledRows): number {
  return auc(d.labels, singleScore(e, evaluateTreeEnsemble(e, d.X))) ?? NaN;
}

export async function runTreesBench(opts: TreesBenchOptions = {}): Promise<TreesBenchRow[]> {
  const F = opts.features ?? 12;
  const train = makeCtrData(opts.trainRows ?? 8000, F, 11);
  const valid = makeCtrData(opts.validRows ?? 3000, F, 12);
  const test = makeCtrData(opts.validRows ?? 3000, F, 13);
  const t0 = Date.now();
  const gbdt = trainGbdt(train, { trees: opts.trees ?? 150, maxDepth: opts.depth ?? 6, learningRate: 0.1, minRowsPerLeaf: 20, seed: 5 });
  console.log(`trained ${gbdt.trees.length} trees (depth ${opts.depth ?? 6}) on ${train.X.rows} rows x ${F} features in ${Date.now() - t0} ms; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const dir = await mkdtemp(join(tmpdir(), 'ps-trees-bench-'));
  try {
    const src = join(dir, 'gbdt.onnx');
    await writeTreeEnsembleModel(src, gbdt, { nFeatures: F });
    const ir = await readOnnxModel(src);
    const { ref, ensemble } = readTreeEnsemble(ir);

    const a = analyzeTreeEnsemble(ensemble, { features: F });
    console.log(`importance by gain (useless features are f4..f${F - 1}): ${a.importance.map((x) => `f${x.feature}`).join(' > ')}`);
    const withData = analyzeTreeEnsemble(ensemble, { features: F, data: valid.X });
    console.log(`importance by output change on validation: ${withData.importance.map((x) => `f${x.feature}`).join(' > ')}`);

    const runs = opts.runs ?? 200;
    const rows: TreesBenchRow[] = [];
    const measure = async (name: string, path: string, e: TreeEnsemble): Promise<void> => {
      const c = await compareWithOrt(path, e, valid.X);
      const l1 = await measureTreeLatency(path, rowsOf(valid, 1), e.double, runs * 5);
      const l1000 = await measureTreeLatency(path, rowsOf(valid, 1000), e.double, runs);
      let nodes = 0;
      for (const t of e.trees) nodes += t.nodes.length;
      rows.push({
        name,
        bytes: (await stat(path)).size,
        trees: e.trees.length,
        nodes,
        p50Batch1Ms: l1.p50Ms,
        p50Batch1000Ms: l1000.p50Ms,
        validAuc: aucOf(e, valid),
        testAuc: aucOf(e, test),
        ortMaxAbsDiff: c.maxAbsDiff,
      });
    };
    await measure('original', src, ensemble);
    const mt = await compareWithOrt(src, ensemble, valid.X, { threads: 0 });
    console.log(`original with ORT's default thread pool (trees summed in per-thread chunks): max abs diff vs ours ${mt.maxAbsDiff.toExponential(2)}`);

    const jobs: Array<{ name: string; run: () => TreeEnsemble }> = [
      { name: 'post (tol 0)', run: () => prunePost(ensemble, valid).ensemble },
      { name: 'drop=0.5 (tol 0.005)', run: () => pruneTrees(ensemble, valid, { dropFraction: 0.5, tolerance: 0.005 }).ensemble },
      { name: 'post + drop=0.5', run: () => pruneTrees(prunePost(ensemble, valid).ensemble, valid, { dropFraction: 0.5, tolerance: 0.005 }).ensemble },
      {
        name: `features=${(8 / F).toFixed(3)}`,
        run: () => {
          const r = pruneFeatures(ensemble, { fraction: 8 / F, nFeatures: F, data: valid });
          console.log(`feature pruning removed ${r.removedFeatures?.map((f) => `f${f}`).join(' ')}; inputs no longer read: ${r.becameUnused?.map((f) => `f${f}`).join(' ')}`);
          return r.ensemble;
        },
      },
    ];
    for (const j of jobs) {
      const t1 = Date.now();
      const c1 = process.cpuUsage();
      const e = j.run();
      const ms = Date.now() - t1;
      const cpu = process.cpuUsage(c1);
      const cpuMs = Math.round((cpu.user + cpu.system) / 1000);
      const out = join(dir, `${j.name.replace(/[^a-z0-9.=]+/gi, '_')}.onnx`);
      await writeReplacedTreeEnsemble(ir, ref, e, out);
      const back = readTreeEnsemble(await readOnnxModel(out)).ensemble;
      await measure(`${j.name} [${ms} ms wall, ${cpuMs} ms CPU]`, out, back);
    }
    console.log('\n| model | file bytes | trees | nodes | ORT p50 batch 1 (ms) | ORT p50 batch 1000 (ms) | valid AUC | test AUC | ORT vs ours max abs diff |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(`| ${r.name} | ${r.bytes} | ${r.trees} | ${r.nodes} | ${r.p50Batch1Ms.toFixed(4)} | ${r.p50Batch1000Ms.toFixed(3)} | ${r.validAuc.toFixed(5)} | ${r.testAuc.toFixed(5)} | ${r.ortMaxAbsDiff.toExponential(2)} |`);
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module && /trees\.js$/.test(process.argv[1] ?? '')) {
  runTreesBench().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
