// Run history records (RunRecord, shared/protocol.ts) made from finished jobs' specs and results.
// Paths are stored relative to the workspace folder when inside it, with '/' separators.

import { isAbsolute, relative, sep } from 'node:path';
import type { CompressJobResult, MetricPair, PlanView, RunRecord, TreeFeaturesResult, TreeRemovalResult } from '../../shared/protocol.js';
import type { CompareJobSpec, CompressJobSpec, CompressPlanJobSpec, JobResultMap, JobSpec, TreeFeaturesJobSpec, TreeRemovalJobSpec } from './job-types.js';
import { newRunId } from './run-history.js';

/** The job kinds the history keeps. */
export type RecordedSpec = CompressJobSpec | CompressPlanJobSpec | TreeRemovalJobSpec | TreeFeaturesJobSpec | CompareJobSpec;

export function isRecordedSpec(spec: JobSpec): spec is RecordedSpec {
  return spec.kind === 'compress' || spec.kind === 'compress-plan' || spec.kind === 'tree-remove' || spec.kind === 'tree-features' || spec.kind === 'compare';
}

export interface RecordContext {
  /** the workspace folder paths are made relative to */
  workspace: string;
  startedAt: Date;
  seconds: number;
  /** a title the caller chose (e.g. "prune-magnitude 50% (one-shot: no fine-tuning)") */
  title?: string;
  /** batch of the planner's latency figures; default 256 */
  latencyBatch?: number;
}

/** `p` relative to the workspace folder (posix separators) when inside it, else as given. */
export function workspaceRelative(workspace: string, p: string): string {
  const r = relative(workspace, p);
  if (r === '' || r.startsWith('..') || isAbsolute(r)) return p;
  return r.split(sep).join('/');
}

function base(kind: RunRecord['kind'], title: string, model: string, ctx: RecordContext): Omit<RunRecord, 'bytes' | 'outputs'> {
  return { version: 1, id: newRunId(ctx.startedAt), kind, title, model: workspaceRelative(ctx.workspace, model), startedAt: ctx.startedAt.toISOString(), seconds: ctx.seconds };
}

const pair = (p: MetricPair | undefined): RunRecord['ndcg'] => (p ? { before: p.before, after: p.after } : undefined);

function compressRecord(spec: CompressJobSpec | CompareJobSpec, r: CompressJobResult, ctx: RecordContext): RunRecord {
  const c = r.comparison;
  const isCompare = spec.kind === 'compare';
  const title = ctx.title ?? (isCompare ? `compare with ${workspaceRelative(ctx.workspace, r.output)}` : r.method);
  const backends = [...new Set((r.training ?? []).map((t) => t.backend))];
  const record: RunRecord = {
    ...base(isCompare ? 'compare' : 'compress', title, r.original, ctx),
    outputs: isCompare ? [] : r.outputFiles.map((f) => workspaceRelative(ctx.workspace, f)),
    bytes: { before: c.bytes.before ?? r.before.fileBytes, after: c.bytes.after ?? r.after.fileBytes },
    params: { before: c.params.before ?? r.before.totalParams, after: c.params.after ?? r.after.totalParams },
  };
  if (spec.kind === 'compress') record.recipe = spec.steps && spec.steps.length > 0 ? spec.steps : [{ method: spec.method, settings: spec.settings }];
  if (c.dataset) record.dataset = workspaceRelative(ctx.workspace, c.dataset);
  const backend = backends.length ? `tfjs ${backends.join(', ')}` : c.runtime;
  if (backend) record.backend = backend;
  if (c.ndcg || c.hr || c.auc) record.k = c.k;
  if (c.ndcg) record.ndcg = pair(c.ndcg);
  if (c.hr) record.hr = pair(c.hr);
  if (c.auc) record.auc = pair(c.auc);
  if (c.gzipBytes.before !== null && c.gzipBytes.after !== null) record.gzipBytes = { before: c.gzipBytes.before, after: c.gzipBytes.after };
  if (c.latency.length) {
    record.latency = c.latency.map((l) => ({
      batch: l.batch,
      p50Before: l.p50Before,
      p50After: l.p50After,
      withinNoise: l.withinNoise,
      ...(l.pairedRatio !== undefined ? { pairedRatio: l.pairedRatio } : {}),
    }));
  }
  return record;
}

/** "compress to target: 12.3x smaller, 99.2% of NDCG@10" (or "best effort: ..."). */
export function planTitle(v: PlanView): string {
  const m = `${v.metric.toUpperCase()}${v.metric === 'auc' ? '' : `@${v.k}`}`;
  return `compress to target${v.withinBudget ? '' : ' (best effort)'}: ${v.chosen.ratio.toFixed(1)}x smaller, ${(v.chosen.kept * 100).toFixed(1)}% of ${m}`;
}

function planRecord(spec: CompressPlanJobSpec, v: PlanView, ctx: RecordContext): RunRecord {
  const record: RunRecord = {
    ...base('compress-plan', ctx.title ?? planTitle(v), spec.path, ctx),
    outputs: v.output ? [workspaceRelative(ctx.workspace, v.output)] : [],
    recipe: v.chosen.recipe,
    dataset: workspaceRelative(ctx.workspace, v.candidates),
    bytes: { before: v.baseline.bytes, after: v.output ? v.chosen.bytes : v.baseline.bytes },
    k: v.k,
    ndcg: { before: v.baseline.metrics.ndcg, after: v.chosen.metrics.ndcg },
    hr: { before: v.baseline.metrics.hr, after: v.chosen.metrics.hr },
    auc: { before: v.baseline.metrics.auc, after: v.chosen.metrics.auc },
    // measured, as every other run's output is (the search may have compared by the expected figure)
    front: v.front.map((p) => ({ bytes: p.bytes, kept: p.keptMeasured ?? p.kept, label: p.label })),
  };
  if (v.chosen.latency && v.baseline.latencyP50Ms !== undefined) {
    // the planner's figure is a paired one: its ratio and whether it is slower
    const l = v.chosen.latency;
    const withinNoise = !l.slower && l.ratio >= 1 / 1.05;
    record.latency = [{ batch: ctx.latencyBatch ?? 256, p50Before: v.baseline.latencyP50Ms, p50After: l.p50Ms, pairedRatio: l.ratio, withinNoise }];
  }
  return record;
}

function treeRemovalRecord(spec: TreeRemovalJobSpec, r: TreeRemovalResult, ctx: RecordContext): RunRecord {
  const record: RunRecord = {
    ...base('tree-remove', ctx.title ?? `remove ${r.droppedTrees.length} of ${r.before.trees} trees`, r.model, ctx),
    outputs: [workspaceRelative(ctx.workspace, r.outPath)],
    dataset: workspaceRelative(ctx.workspace, spec.test ?? spec.data),
    bytes: { before: r.before.bytes, after: r.after.bytes },
  };
  record[r.heldOut.metric] = { before: r.heldOut.before, after: r.heldOut.after };
  return record;
}

function treeFeaturesRecord(r: TreeFeaturesResult, ctx: RecordContext): RunRecord {
  return {
    ...base('tree-features', ctx.title ?? `drop tree features ${r.removedFeatures.join(', ')}`, r.model, ctx),
    outputs: [workspaceRelative(ctx.workspace, r.outPath)],
    bytes: { before: r.before.bytes, after: r.after.bytes },
  };
}

/** The history record of a finished job. */
export function runRecordOf<S extends RecordedSpec>(spec: S, result: JobResultMap[S['kind']], ctx: RecordContext): RunRecord {
  switch (spec.kind) {
    case 'compress':
    case 'compare':
      return compressRecord(spec, result as CompressJobResult, ctx);
    case 'compress-plan':
      return planRecord(spec, result as PlanView, ctx);
    case 'tree-remove':
      return treeRemovalRecord(spec, result as TreeRemovalResult, ctx);
    case 'tree-features':
      return treeFeaturesRecord(result as TreeFeaturesResult, ctx);
  }
}
