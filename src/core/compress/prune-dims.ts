// Structured pruning of embedding dimensions: the columns of smallest L2 norm of an embedding
// table are removed, with everything that reads them (graph-deps.ts): the rows of the next
// Dense / MatMul / Gemm kernel (shifted by the table's place in a Concat), and, where the
// table's vectors meet another table element-wise (a GMF product, a FM or two-tower dot), the
// paired table's same columns, so that the products still line up. Where the channels cannot be
// followed, it refuses with a message naming the op.

import { ModelFileError, ModelIR } from '../model/ir.js';
import type { CompressionContext, CompressionOutcome } from './types.js';
import { ChannelGroup, buildDepGraph, channelGroup, channelSources, keptCount, selectLowest } from './graph-deps.js';
import { PlannedGroup, applyGroups, groupImportance, tensorOf, writeStructured } from './prune-neurons.js';
import { writeAndMeasure } from './measured-size.js';

export interface PruneDimsSettings {
  /** fraction of the columns kept (give this or sparsity) */
  keep?: number;
  sparsity?: number;
  /** a table (tensor name or layer name); default every table whose columns can be followed */
  table?: string;
}

export async function pruneDims(ir: ModelIR, settings: PruneDimsSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  const g = buildDepGraph(ir);
  const tables = channelSources(g).filter((s) => s.kind === 'table');
  if (tables.length === 0) throw new ModelFileError(ir.path, 'the model has no embedding table read by a Gather / Embedding layer');
  let chosen = tables;
  if (settings.table !== undefined) {
    chosen = tables.filter((s) => s.tensor === settings.table || s.node === settings.table || tensorOf(ir, s.tensor).layer === settings.table);
    if (chosen.length === 0) throw new ModelFileError(ir.path, `no embedding table named "${settings.table}" (tables: ${tables.map((s) => s.tensor).join(', ')})`);
  }
  const plans: PlannedGroup[] = [];
  const skipped: string[] = [];
  const claimed = new Set<string>();
  const cache = new Map<string, Float32Array>();
  for (const [i, s] of chosen.entries()) {
    ctx?.signal?.throwIfAborted();
    ctx?.onProgress?.(i / chosen.length, `dependencies of ${s.tensor}`);
    if (claimed.has(s.node) || s.width <= 1) continue;
    let group: ChannelGroup;
    try {
      group = channelGroup(g, s);
    } catch (e) {
      if (settings.table !== undefined) throw e;
      skipped.push(`${s.tensor}: ${(e as Error).message.replace(`${ir.path}: `, '')}`);
      continue;
    }
    for (const src of group.sources) claimed.add(src.node);
    const kept = keptCount(group.width, settings, ir.path);
    if (kept === group.width) continue;
    const imp = await groupImportance(g, group, 'l2', cache);
    plans.push({ group, drop: selectLowest(imp, group.width - kept), label: group.sources.map((x) => x.tensor).join(' + ') });
  }
  if (plans.length === 0) {
    throw new ModelFileError(ir.path, skipped.length ? `no embedding dimension can be pruned: ${skipped.join('; ')}` : 'nothing to prune at this setting (every table keeps all its columns)');
  }
  const res = await applyGroups(g, plans, cache);
  const notes = [
    'Removed embedding columns of smallest L2 norm (summed over tables whose vectors meet element-wise, which lose the same columns): ' +
      plans.map((p) => `${p.label} ${p.group.width} -> ${p.group.width - p.drop.reduce((a, b) => a + b, 0)}`).join(', ') + '.',
    'The rows of the next layers that read those columns are removed too: the file shrinks and the model keeps its inputs and outputs.',
  ];
  for (const s of skipped) notes.push(`Not pruned: ${s}`);
  return {
    method: 'prune-dims',
    settings: { ...(settings.keep !== undefined ? { keep: settings.keep } : { sparsity: settings.sparsity }), table: settings.table ?? 'all' },
    changes: res.changes,
    notes,
    write: (outPath) => writeAndMeasure(ir, notes, outPath, () => writeStructured(ir, res, outPath)),
  };
}
