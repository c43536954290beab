// Shared by every compression command: runs a compress job in the engine's worker thread (the
// same job the extension runs), with a progress bar on stderr, Ctrl-C cancelling cleanly (no
// partial output), and the before/after report printed as a table or JSON.

import { formatPairedRatio } from '../shared/format.js';
import { cancelOnSignals } from './cancel-signals.js';
import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { JobCancelledError, runJob } from '../core/jobs/job-runner.js';
import type { CompressJobSpec, CompressStep } from '../core/jobs/job-types.js';
import { modelOutputPath, outputPathFor, removeTemp, tempDirFor } from '../core/jobs/output-files.js';
import type { CompressJobResult, MetricPair } from '../shared/protocol.js';
import { UsageError } from './args.js';
import type { OptionValues } from './options.js';
import type { COMPRESS_COMMON } from './option-groups.js';
import { createProgressBar } from './progress.js';
import { checkOutputFolder, modelOutputFolder } from './output-checks.js';
import { formatCount } from './format-report.js';
import { formatBytes } from '../core/analysis/opportunities.js';
import { formatSettingsProblems, validateSettings } from '../core/compress/method-settings.js';

/** The values of the options every compression command shares (option-groups.ts COMPRESS_COMMON). */
export type CompressCommonValues = OptionValues<(typeof COMPRESS_COMMON)['options']>;

/** The training settings the shared groups give: engine, outputKind, samplePruning (each only when asked for). */
export function trainingGroupSettings(o: {
  engine?: string;
  'output-kind'?: string;
  'sample-keep'?: number;
  'sample-by'?: string;
  'sample-warmup'?: number;
}): Record<string, unknown> {
  return {
    ...(o['output-kind'] !== undefined ? { outputKind: o['output-kind'] } : {}),
    ...(o.engine !== undefined ? { engine: o.engine } : {}),
    ...(o['sample-keep'] !== undefined
      ? { samplePruning: { keep: o['sample-keep'], by: o['sample-by'] ?? 'loss', ...(o['sample-warmup'] !== undefined ? { warmupEpochs: o['sample-warmup'] } : {}) } }
      : {}),
  };
}

/** quantize / factorize --tensors: a keyword, or tensor names separated by commas. */
export function tensorsSetting(v: string | undefined): Record<string, unknown> {
  if (v === undefined || v === '') return {};
  return { tensors: ['all', 'embeddings', 'dense'].includes(v) ? v : v.split(',') };
}

/** Checks every step's settings through the method registry: a bad one is a usage error (exit 2) before any work. */
export function checkStepSettings(steps: readonly CompressStep[]): void {
  for (const [i, s] of steps.entries()) {
    const { problems } = validateSettings(s.method, s.settings);
    if (problems.length === 0) continue;
    const where = steps.length > 1 ? `step ${i + 1} (${s.method})` : s.method;
    throw new UsageError(`${where} settings: ${formatSettingsProblems(problems)}`);
  }
}

/** Runs the steps on the model as a compress job; `o` holds the shared options (--out, --candidates, ...). */
export async function runCompressCommand(o: CompressCommonValues, modelArg: string, steps: CompressStep[], label: string): Promise<number> {
  checkStepSettings(steps);
  const model = resolve(modelArg);
  if (!existsSync(model)) throw new Error(`${model}: cannot open: no such file (ENOENT)`);
  const out = o.out !== undefined ? modelOutputPath(model, o.out, label) : outputPathFor(model, label);
  const candidates = o.candidates;
  const k = o.k;
  // an ONNX file's folder must exist; a TF.js model's own folder is made when it is written
  checkOutputFolder(modelOutputFolder(out));
  if (o['external-data'] && !/\.onnx$/i.test(out)) throw new UsageError('--external-data is an ONNX layout, for ONNX models: a TF.js model keeps its weights in shard files');
  // the temp folder lives beside the output so the final rename stays on one file system; the
  // job removes it when it ends, and we do if the worker dies before it could
  const tempDir = tempDirFor(out);
  const spec: CompressJobSpec = {
    kind: 'compress',
    path: model,
    method: steps[0].method,
    settings: steps[0].settings,
    steps: steps.length > 1 ? steps : undefined,
    outPath: out,
    overwrite: o.force,
    ...(o['external-data'] ? { externalData: true } : {}),
    tempDir,
    evaluate: { candidates: candidates ? resolve(candidates) : undefined, k, latency: !o['no-latency'] },
  };
  const bar = createProgressBar(label, process.stderr, o.progress);
  const abort = new AbortController();
  const stopListening = cancelOnSignals(abort, tempDir, out);
  try {
    const result = await runJob(spec, {
      signal: abort.signal,
      onProgress: (p) => bar.update(p.fraction, `${p.phase}${p.detail ? ` ${p.detail}` : ''}`),
    });
    bar.done();
    if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else process.stdout.write(formatCompressResult(result) + '\n');
    return 0;
  } catch (e) {
    if (e instanceof JobCancelledError) {
      bar.done();
      process.stderr.write(`cancelled: nothing was written (${out})\n`);
      return 130;
    }
    throw e;
  } finally {
    stopListening();
    bar.done();
    await removeTemp(tempDir);
  }
}

function rel(before: number | null | undefined, after: number | null | undefined): string {
  if (before == null || after == null || before === 0) return '';
  const r = (after - before) / Math.abs(before);
  return `${r >= 0 ? '+' : ''}${(r * 100).toFixed(1)}%`;
}

export function formatCompressResult(r: CompressJobResult): string {
  const c = r.comparison;
  const lines: string[] = [];
  lines.push(`${r.method}: ${r.original}`);
  lines.push(`  -> ${r.output} (${r.seconds.toFixed(1)} s)`);
  lines.push('');
  const rows: Array<[string, string, string, string]> = [];
  const show = (x: number | null, f: (v: number) => string) => (x == null ? '-' : f(x));
  const ratio = (p: MetricPair) => {
    if (p.before == null || !p.after) return '';
    const r = p.before / p.after;
    return Math.abs(r - 1) < 0.005 ? 'same size' : r > 1 ? `${r.toFixed(2)}x smaller` : `${(1 / r).toFixed(2)}x larger`;
  };
  const metric = (name: string, p: MetricPair | undefined) => {
    if (p) rows.push([name, show(p.before, (v) => v.toFixed(4)), show(p.after, (v) => v.toFixed(4)), rel(p.before, p.after)]);
  };
  rows.push(['parameters', show(c.params.before, formatCount), show(c.params.after, formatCount), rel(c.params.before, c.params.after)]);
  rows.push(['size on disk', show(c.bytes.before, formatBytes), show(c.bytes.after, formatBytes), ratio(c.bytes)]);
  rows.push(['gzip size', show(c.gzipBytes.before, formatBytes), show(c.gzipBytes.after, formatBytes), ratio(c.gzipBytes)]);
  metric(`HR@${c.k}`, c.hr);
  metric(`NDCG@${c.k}`, c.ndcg);
  metric('AUC', c.auc);
  for (const l of c.latency) {
    const verdict =
      l.withinNoise ? 'within noise'
      : l.pairedRatio !== undefined ? `${formatPairedRatio(l.pairedRatio)} (paired calls)`
      : rel(l.p50Before, l.p50After);
    rows.push([`latency p50, batch ${l.batch}`, `${l.p50Before.toFixed(3)} ms`, `${l.p50After.toFixed(3)} ms`, verdict]);
  }
  const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((x) => x[i].length), ['', 'before', 'after', 'change'][i].length));
  lines.push(['', 'before', 'after', 'change'].map((h, i) => (i === 0 ? h.padEnd(w[i]) : h.padStart(w[i]))).join('  '));
  for (const row of rows) lines.push(row.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  '));
  if (c.runtime || c.dataset) lines.push(`(${[c.runtime && `ran on ${c.runtime}`, c.dataset && `accuracy on ${c.dataset}`].filter(Boolean).join('; ')})`);
  if (r.changes.length) {
    lines.push('');
    lines.push('Changes:');
    for (const ch of r.changes.slice(0, 20)) lines.push(`  ${ch.tensor}: ${ch.action}`);
    if (r.changes.length > 20) lines.push(`  ... and ${r.changes.length - 20} more`);
  }
  // a method that measured its written files says 'Size on disk: raw ...'; the comparison says it too
  const sized = c.summary.some((n) => n.startsWith('Size on disk:'));
  const notes = [...c.summary, ...r.notes.filter((n) => !(sized && n.startsWith('Size on disk: raw ')))];
  if (notes.length) {
    lines.push('');
    lines.push('Notes:');
    for (const n of notes) lines.push(`  - ${n}`);
  }
  return lines.join('\n');
}
