// Structured pruning of embedding rows: the least important rows of a table are removed and
// every id maps, through an index-remap table stored IN the model, to its row in the smaller
// table; ids whose rows were removed share one fallback row. The model keeps its inputs (same
// names, dtypes, id ranges) and the outputs for ids of kept rows are identical.
//
// Fallback row = the MEAN of the removed rows (default; 'zero' is the alternative). The mean is
// the single vector closest (least squares) to all the removed rows, so rare / unimportant ids
// keep the "average" representation of their kind, as an out-of-vocabulary bucket trained on
// them would; a zero row would instead turn a GMF product or an FM dot into exactly 0, a score
// no trained id ever had. When rows were removed by small norm, the mean is near zero anyway.
//
// ONNX: table [kept + 1, d] + remap [N] + Gather(remap, ids) inserted before the table's Gather.
// The remap is stored as uint8 / uint16 when the new row count allows (then a Cast to int32 after
// its lookup, since Gather indices must be int32/int64), else int32: a quarter to a half of an
// int64 remap, which keeps the 50%-rows saving near 2x even for narrow tables.
// TF.js: remap = Embedding(N, 1) whose weights hold the new row index (stored uint8/uint16
// quantized with scale 1, min 0: exact integers; float32 above 65535 rows, exact up to 2^24),
// then Reshape back to the id input's shape, then the shrunk Embedding(kept + 1, d), which casts
// its float input to int32. All standard layers: the model saves and loads.

import { isFloatDtype } from '../model/dtype.js';
import { basename } from 'node:path';
import { DType, ModelFileError, ModelIR, ModelTensor } from '../model/ir.js';
import { encodeFloats, forEachTensorChunk } from '../model/tensor-data.js';
import { TensorByteStream, collectBytes } from '../model/tensor-stream.js';
import { OnnxGraphEdit, writeEditedOnnxModel } from '../model/onnx/edit.js';
import { writeTfjsModel } from '../model/tfjs-write.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';
import { DepGraph, buildDepGraph, frozenTensors, kerasLayers, keptCount, layerConfig, selectLowest, tfjsShape } from './graph-deps.js';
import { editedTfjsIr } from './prune-neurons.js';
import { tensorBytes } from './prune-magnitude.js';
import { writeAndMeasure } from './measured-size.js';

export interface PruneRowsSettings {
  /** a table (tensor name or layer name); default every embedding table */
  table?: string;
  /** fraction of the rows kept (give this or sparsity) */
  keep?: number;
  /** fraction of the rows removed */
  sparsity?: number;
  /** 'norm' (row L2 norm, default) or id frequencies on a dataset (counts[id], length = rows of the table) */
  importance?: 'norm' | { counts: Int32Array | Float32Array | number[] };
  /** the shared row of removed ids: 'mean' of the removed rows (default) or 'zero' */
  fallback?: 'mean' | 'zero';
  /** ONNX: write every tensor of 1 KiB or more to `<output>.data` (external data); external data stays external anyway */
  externalData?: boolean;
}

/** Tables that share their id inputs lose the same rows and share one remap per id input. */
export interface RowPlan {
  tables: ModelTensor[];
  rows: number;
  kept: number;
  /** new row index of every old id (kept rows in order, then the fallback row at index kept) */
  remap: Int32Array;
  /** 1 for each removed row */
  drop: Uint8Array;
  fallback: 'mean' | 'zero';
  /** lookups of the tables: the node (ONNX Gather / TF.js Embedding layer) and its ids input */
  lookups: Array<{ node: string; ids: string; table: string }>;
}

const MAX_EXACT_FLOAT_INDEX = 2 ** 24;

function lookupsOf(g: DepGraph, t: ModelTensor): Array<{ node: string; ids: string; table: string }> {
  const out: Array<{ node: string; ids: string; table: string }> = [];
  const other: string[] = [];
  if (g.ir.format === 'onnx') {
    for (const n of g.consumers.get(t.name) ?? []) {
      if (n.op === 'Gather' && n.inputs[0] === t.name && (n.attrs.axis ?? 0) === 0) out.push({ node: n.name, ids: n.inputs[1], table: t.name });
      else other.push(`${n.op} node "${n.name}"${n.op === 'Gather' && n.inputs[0] === t.name ? ` on axis ${String(n.attrs.axis)}` : ''}`);
    }
  } else {
    for (const n of g.nodes) {
      if (n.table?.name !== t.name) continue;
      if (n.op !== 'Embedding') other.push(`${n.op} layer "${n.name}"`);
      else if (n.attrs.mask_zero === true) other.push(`Embedding layer "${n.name}" with mask_zero (id 0 is special)`);
      else if (n.inputs.length !== 1) other.push(`Embedding layer "${n.name}" applied ${n.inputs.length} times`);
      else out.push({ node: n.name, ids: n.inputs[0], table: t.name });
    }
  }
  if (other.length) throw new ModelFileError(g.ir.path, `rows of ${t.name} cannot be remapped: it is also read by ${other.join(', ')}`);
  if (out.length === 0) {
    // read by nodes of a Loop / If / Scan body only (nn.EmbeddingBag exports a Loop): not remapped here
    const nested = g.ir.format === 'onnx' && t.consumers.length > 0 && (g.consumers.get(t.name) ?? []).length === 0;
    throw new ModelFileError(g.ir.path, nested ? `table ${t.name} is read only inside a subgraph (a Loop, If or Scan body, as nn.EmbeddingBag exports), whose lookups are not remapped` : `table ${t.name} is read by no Gather / Embedding lookup`);
  }
  return out;
}

/** Tables grouped by shared id inputs (union-find); a group whose tables differ in rows splits into single tables. */
function groupTables(g: DepGraph, tables: ModelTensor[]): Array<{ tables: ModelTensor[]; lookups: Array<{ node: string; ids: string; table: string }> }> {
  const lookups = new Map(tables.map((t) => [t.name, lookupsOf(g, t)]));
  const parent = new Map(tables.map((t) => [t.name, t.name]));
  const find = (x: string): string => {
    while (parent.get(x) !== x) x = parent.get(x)!;
    return x;
  };
  const byIds = new Map<string, string>();
  for (const t of tables) {
    for (const l of lookups.get(t.name)!) {
      const other = byIds.get(l.ids);
      if (other === undefined) byIds.set(l.ids, t.name);
      else parent.set(find(t.name), find(other));
    }
  }
  const groups = new Map<string, ModelTensor[]>();
  for (const t of tables) groups.set(find(t.name), [...(groups.get(find(t.name)) ?? []), t]);
  const out: Array<{ tables: ModelTensor[]; lookups: Array<{ node: string; ids: string; table: string }> }> = [];
  for (const ts of groups.values()) {
    const parts = ts.every((t) => t.shape[0] === ts[0].shape[0]) ? [ts] : ts.map((t) => [t]);
    for (const p of parts) out.push({ tables: p, lookups: p.flatMap((t) => lookupsOf(g, t)) });
  }
  return out;
}

async function planGroup(
  g: DepGraph,
  group: { tables: ModelTensor[]; lookups: Array<{ node: string; ids: string; table: string }> },
  s: PruneRowsSettings,
): Promise<RowPlan> {
  const ir = g.ir;
  for (const t of group.tables) {
    if (t.shape.length !== 2) throw new ModelFileError(ir.path, `table ${t.name} has shape [${t.shape.join(', ')}], expected [rows, dim]`);
  }
  const N = group.tables[0].shape[0];
  let importance: Float32Array;
  const imp = s.importance ?? 'norm';
  if (imp === 'norm') {
    // one norm over the id's rows in every table of the group, each table read once
    const acc = new Float64Array(N);
    for (const t of group.tables) await addSquaredRowNorms(t, acc);
    // loops, not Float32Array.from(x, fn): `from` gathers the values in a JS array first (tens of MB)
    importance = new Float32Array(N);
    for (let r = 0; r < N; r++) importance[r] = Math.sqrt(acc[r]);
  } else if (typeof imp === 'object' && imp !== null && 'counts' in imp) {
    if (imp.counts.length !== N) throw new ModelFileError(ir.path, `importance counts have ${imp.counts.length} entries, table ${group.tables[0].name} has ${N} rows`);
    importance = new Float32Array(N);
    for (let r = 0; r < N; r++) {
      const c = imp.counts[r];
      if (!(c >= 0)) throw new ModelFileError(ir.path, `importance counts must be non-negative numbers, found ${c}`);
      importance[r] = c;
    }
  } else {
    throw new ModelFileError(ir.path, `importance must be 'norm' or { counts }, got ${JSON.stringify(imp)}`);
  }
  const kept = keptCount(N, s, ir.path);
  const drop = selectLowest(importance, N - kept);
  const remap = new Int32Array(N);
  let k = 0;
  for (let r = 0; r < N; r++) remap[r] = drop[r] ? kept : k++;
  return { tables: group.tables, rows: N, kept, remap, drop, fallback: s.fallback ?? 'mean', lookups: group.lookups };
}

/** Rows per chunk when tables are streamed (about 1 Mi values); tests may lower it. */
export const rowStreaming = { chunkElements: 1 << 20 };

function rowsPerChunk(d: number): number {
  return Math.max(1, Math.floor(rowStreaming.chunkElements / Math.max(1, d)));
}

/** acc[r] += sum of squares of row r of `t`, streamed in whole rows. */
async function addSquaredRowNorms(t: ModelTensor, acc: Float64Array): Promise<void> {
  const d = t.shape[1];
  if (d === 0) return;
  await forEachTensorChunk(t, rowsPerChunk(d) * d, (c, first) => {
    const r0 = first / d;
    const n = c.length / d;
    for (let i = 0; i < n; i++) {
      let a = acc[r0 + i];
      for (let j = 0; j < d; j++) a += c[i * d + j] ** 2;
      acc[r0 + i] = a;
    }
  });
}

/**
 * The pruned table [kept + 1, d] of `t` as stored `dtype` bytes, streamed: kept rows in order,
 * then the fallback row (the mean of the removed rows, summed in row order, or zeros).
 */
export function prunedTableStream(p: RowPlan, t: ModelTensor, dtype: DType): TensorByteStream {
  const d = t.shape[1];
  const per = rowsPerChunk(d);
  const encode = (v: Float32Array): Uint8Array =>
    dtype === 'float32' ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : encodeFloats(dtype, v, t.storage.location);
  return {
    byteLength: tensorBytes(dtype, [p.kept + 1, d]),
    async stream(sink) {
      const out = new Float32Array(Math.min(per, p.rows) * d);
      const mean = new Float64Array(d);
      await forEachTensorChunk(t, per * d, async (c, first) => {
        const r0 = first / d;
        let m = 0;
        for (let i = 0; i < c.length / d; i++) {
          if (p.drop[r0 + i]) for (let j = 0; j < d; j++) mean[j] += c[i * d + j];
          else out.set(c.subarray(i * d, i * d + d), d * m++);
        }
        if (m > 0) await sink(encode(out.subarray(0, m * d)));
      });
      const dropped = p.rows - p.kept;
      const last = new Float32Array(d);
      if (p.fallback === 'mean' && dropped > 0) for (let j = 0; j < d; j++) last[j] = mean[j] / dropped;
      await sink(encode(last));
    },
  };
}

/** The pruned table as float32 values (TF.js writes weights from memory). */
async function prunedTableValues(p: RowPlan, t: ModelTensor): Promise<Float32Array> {
  const b = await collectBytes(prunedTableStream(p, t, 'float32'), t.name);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function remapStorage(kept: number, remap: Int32Array): { values: Float32Array | Uint16Array | Uint8Array; quantization?: ModelTensor['storage']['quantization'] } {
  // rows 0..kept are the new indices: uint8 / uint16 affine quantization with scale 1 and min 0
  // dequantizes to exactly these integers
  if (kept + 1 <= 256) return { values: new Uint8Array(remap), quantization: { dtype: 'uint8', scale: 1, min: 0, originalDtype: 'float32' } };
  if (kept + 1 <= 65536) return { values: new Uint16Array(remap), quantization: { dtype: 'uint16', scale: 1, min: 0, originalDtype: 'float32' } };
  return { values: new Float32Array(remap) };
}

const ONNX_INT32 = 6; // TensorProto.DataType.INT32

/**
 * The smallest remap dtype ORT can look up and widen exactly: uint8 up to 256 new rows, uint16 up
 * to 65536 (then a Cast to int32 after the remap Gather), int32 beyond.
 */
export function onnxRemapDtype(kept: number): 'uint8' | 'uint16' | 'int32' {
  if (kept + 1 <= 256) return 'uint8';
  if (kept + 1 <= 65536) return 'uint16';
  return 'int32';
}

function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  taken.add(name);
  return name;
}

function remapBaseName(p: RowPlan): string {
  return p.tables.length === 1 ? `${p.tables[0].name}/row_remap` : `${p.lookups[0].ids}/row_remap`;
}

async function writeOnnx(ir: ModelIR, plans: RowPlan[], outPath: string, externalData: boolean): Promise<void> {
  const edit: OnnxGraphEdit = { setInitializers: [], insertNodes: [], rewireInputs: [] };
  const taken = new Set<string>([...ir.tensors.map((t) => t.name), ...ir.graph.nodes.flatMap((n) => [n.name, ...n.outputs]), ...ir.graph.inputs.map((i) => i.name)]);
  for (const p of plans) {
    const remapName = uniqueName(remapBaseName(p), taken);
    p.tables.forEach((t) => {
      edit.setInitializers!.push({ name: t.name, dtype: t.storage.dtype, shape: [p.kept + 1, t.shape[1]], data: prunedTableStream(p, t, t.storage.dtype) });
    });
    const rd = onnxRemapDtype(p.kept);
    const remapData = rd === 'uint8' ? new Uint8Array(p.remap) : rd === 'uint16' ? new Uint8Array(new Uint16Array(p.remap).buffer) : new Uint8Array(p.remap.buffer.slice(0));
    edit.setInitializers!.push({ name: remapName, dtype: rd, shape: [p.rows], data: remapData });
    const byIds = new Map<string, string[]>();
    for (const l of p.lookups) byIds.set(l.ids, [...(byIds.get(l.ids) ?? []), l.node]);
    // insert before the first lookup in graph order (the graph is topologically sorted)
    const order = new Map(ir.graph.nodes.map((n, i) => [n.name, i]));
    for (const [ids, nodes] of byIds) {
      const first = nodes.slice().sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0))[0];
      const looked = uniqueName(`${remapName}/${ids}`, taken);
      edit.insertNodes!.push({ before: first, node: { name: uniqueName(`${remapName}/Gather`, taken), op: 'Gather', inputs: [remapName, ids], outputs: [looked], attrs: { axis: 0 } } });
      let out = looked;
      if (rd !== 'int32') {
        // Gather indices must be int32/int64: widen the small remap entries after the lookup
        out = uniqueName(`${looked}/int32`, taken);
        edit.insertNodes!.push({ before: first, node: { name: uniqueName(`${remapName}/Cast`, taken), op: 'Cast', inputs: [looked], outputs: [out], attrs: { to: ONNX_INT32 } } });
      }
      edit.rewireInputs!.push({ from: ids, to: out, nodes });
    }
  }
  await writeEditedOnnxModel(ir, edit, outPath, externalData ? { externalData: { fileName: `${basename(outPath)}.data` } } : undefined);
}

async function writeTfjs(ir: ModelIR, g: DepGraph, plans: RowPlan[], outPath: string): Promise<void> {
  const doc = JSON.parse(JSON.stringify(ir.native)) as unknown;
  const layers = kerasLayers(doc, ir.path);
  const tensors = new Map<string, { values: Float32Array | Uint16Array | Uint8Array; shape: number[]; quantization?: ModelTensor['storage']['quantization'] }>();
  const add: Array<{ name: string; layer: string; role: ModelTensor['role']; before?: string }> = [];
  const taken = new Set<string>(layers.map((l) => String(l.name)));
  const inbound = (name: string) => [[[name, 0, 0, {}]]];
  for (const p of plans) {
    if (p.kept + 1 > MAX_EXACT_FLOAT_INDEX) throw new ModelFileError(ir.path, `${p.tables[0].name}: ${p.kept + 1} rows are more than a float index stays exact for (2^24)`);
    for (const t of p.tables) tensors.set(t.name, { values: await prunedTableValues(p, t), shape: [p.kept + 1, t.shape[1]] });
    const byIds = new Map<string, string[]>();
    for (const l of p.lookups) byIds.set(l.ids, [...(byIds.get(l.ids) ?? []), l.node]);
    for (const [ids, nodes] of byIds) {
      const idShape = tfjsShape(g, ids);
      if (!idShape || idShape.some((x) => !(x > 0))) throw new ModelFileError(ir.path, `the id input "${ids}" of ${nodes.join(', ')} has a shape that cannot be told; cannot insert the row remap`);
      const at = Math.min(...nodes.map((n) => layers.findIndex((x) => x.name === n)));
      if (at < 0) throw new ModelFileError(ir.path, `layer ${nodes[0]} is not in model.json's topology`);
      const remapLayer = uniqueName(`${ids}_row_remap`, taken);
      const reshapeLayer = uniqueName(`${ids}_row_remap_ids`, taken);
      const weight = `${remapLayer}/embeddings`;
      const st = remapStorage(p.kept, p.remap);
      tensors.set(weight, { values: st.values, shape: [p.rows, 1], quantization: st.quantization });
      add.push({ name: weight, layer: remapLayer, role: 'constant', before: p.tables[0].name });
      layers.splice(
        at,
        0,
        {
          class_name: 'Embedding',
          name: remapLayer,
          config: { name: remapLayer, trainable: false, input_dim: p.rows, output_dim: 1, embeddings_initializer: { class_name: 'Zeros', config: {} }, mask_zero: false, dtype: 'float32' },
          inbound_nodes: inbound(ids),
        },
        {
          class_name: 'Reshape',
          name: reshapeLayer,
          config: { name: reshapeLayer, trainable: false, target_shape: idShape, dtype: 'float32' },
          inbound_nodes: inbound(remapLayer),
        },
      );
      for (const n of nodes) {
        const emb = layers.find((x) => x.name === n)!;
        layerConfig(emb).input_dim = p.kept + 1;
        emb.inbound_nodes = inbound(reshapeLayer);
      }
    }
  }
  await writeTfjsModel(editedTfjsIr(ir, doc, tensors, { add }), outPath);
}

/** What a remap adds to the graph per id input besides its values: a Gather and a Cast (or a TF.js layer) and their names; 386-453 bytes measured on PyTorch's DeepFM. */
const REMAP_GRAPH_BYTES = 512;

/** Removes the least important rows of embedding tables, remapping ids in the model. */
export async function pruneRows(ir: ModelIR, settings: PruneRowsSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  const g = buildDepGraph(ir);
  const frozen = frozenTensors(ir);
  const all = ir.tensors.filter((t) => t.role === 'embedding' && t.shape.length === 2 && !frozen.has(t.name));
  // a table stored as codes (int8, packed int4) has no float rows to rewrite: prune, then quantize
  const stored = all.filter((t) => t.codes !== undefined || !isFloatDtype(t.dtype));
  const tables = all.filter((t) => !stored.includes(t));
  const quantizedNote = (names: ModelTensor[]) =>
    `${names.map((t) => `${t.name} is stored as ${t.codes && t.codes.bits !== 8 ? `int${t.codes.bits}` : t.dtype} codes`).join('; ')}: prune rows before quantizing`;
  if (settings.table !== undefined) {
    const named = stored.filter((t) => t.name === settings.table || t.layer === settings.table);
    if (named.length > 0 && !tables.some((t) => t.name === settings.table || t.layer === settings.table)) throw new ModelFileError(ir.path, quantizedNote(named));
  } else if (tables.length === 0 && stored.length > 0) throw new ModelFileError(ir.path, quantizedNote(stored));
  let chosen = tables;
  if (settings.table !== undefined) {
    chosen = tables.filter((t) => t.name === settings.table || t.layer === settings.table);
    if (chosen.length === 0) throw new ModelFileError(ir.path, `no embedding table named "${settings.table}" (tables: ${tables.map((t) => t.name).join(', ')})`);
  }
  if (chosen.length === 0) throw new ModelFileError(ir.path, 'the model has no embedding table');
  if (typeof settings.importance === 'object' && settings.table === undefined) {
    const n = settings.importance.counts.length;
    chosen = chosen.filter((t) => t.shape[0] === n);
    if (chosen.length === 0) throw new ModelFileError(ir.path, `no table has ${n} rows, the length of the importance counts`);
  }
  const fallback = settings.fallback ?? 'mean';
  if (fallback !== 'mean' && fallback !== 'zero') throw new ModelFileError(ir.path, `fallback must be 'mean' or 'zero', got ${String(fallback)}`);
  // every table (none named): one whose rows cannot be remapped (read inside a Loop, by another
  // op, gathered on axis 1) is left as it is, said in a note; the others are pruned
  const unprunable: string[] = [];
  if (settings.table === undefined) {
    const ok = chosen.filter((t) => {
      try {
        lookupsOf(g, t);
        return true;
      } catch (e) {
        if (!(e instanceof ModelFileError)) throw e;
        unprunable.push(e.reason);
        return false;
      }
    });
    if (ok.length === 0) lookupsOf(g, chosen[0]);
    chosen = ok;
  }
  const plans: RowPlan[] = [];
  const groups = groupTables(g, chosen);
  for (const [i, grp] of groups.entries()) {
    ctx?.signal?.throwIfAborted();
    ctx?.onProgress?.(i / groups.length, `rows of ${grp.tables.map((t) => t.name).join(', ')}`);
    const p = await planGroup(g, grp, settings);
    if (p.kept < p.rows) plans.push(p);
  }
  if (plans.length === 0) throw new ModelFileError(ir.path, 'nothing to prune at this setting (every table keeps all its rows)');
  const onnx = ir.format === 'onnx';
  const idInputs = (p: RowPlan) => new Set(p.lookups.map((l) => l.ids)).size;
  const remapBytesOf = (p: RowPlan) =>
    onnx ? p.rows * { uint8: 1, uint16: 2, int32: 4 }[onnxRemapDtype(p.kept)] : idInputs(p) * p.rows * (p.kept + 1 <= 256 ? 1 : p.kept + 1 <= 65536 ? 2 : 4);
  const tableBytes = (t: ModelTensor, rows: number) => tensorBytes(onnx ? t.storage.dtype : 'float32', [rows, t.shape[1]]);
  // a small or narrow table gains nothing: the fallback row, the remap of every id and the remap's
  // nodes cost more than the rows dropped (DeepFM's 5-row age table grew its file by 386 bytes)
  const remapGraphBytes = (p: RowPlan) => REMAP_GRAPH_BYTES * idInputs(p);
  const growing = plans.filter((p) => p.tables.reduce((a, t) => a + tableBytes(t, p.kept + 1) - tableBytes(t, p.rows), 0) + remapBytesOf(p) + remapGraphBytes(p) >= 0);
  // a table asked for by name is pruned all the same (the ids it maps may be the point), with a note
  const grows = settings.table === undefined ? growing : [];
  const named = growing.map((p) => p.tables.map((t) => t.name).join(' + ')).join(', ');
  const growNote =
    growing.length && settings.table !== undefined
      ? [`${named}: the fallback row, the remap of every id and its nodes take more bytes than the rows dropped, so the file does not get smaller.`]
      : grows.length
        ? [
            `Left as they are (a fallback row, a remap of every id and its nodes would take more bytes than the rows dropped): ` +
              grows.map((p) => `${p.tables.map((t) => t.name).join(' + ')} (${p.rows} rows, ${p.rows - p.kept} dropped, remap ${remapBytesOf(p)} bytes + about ${remapGraphBytes(p)} of graph)`).join(', ') +
              '.',
          ]
        : [];
  plans.splice(0, plans.length, ...plans.filter((p) => !grows.includes(p)));
  if (plans.length === 0) throw new ModelFileError(ir.path, `nothing to prune: no table would get smaller. ${growNote[0]}`);
  const changes: TensorChange[] = [];
  for (const p of plans) {
    const remapBytes = remapBytesOf(p);
    p.tables.forEach((t, ti) => {
      changes.push({
        tensor: t.name,
        action: `dropped ${p.rows - p.kept} of ${p.rows} rows; their ids share a ${fallback} fallback row through an index remap${p.tables.length > 1 ? ` shared with ${p.tables.filter((x) => x !== t).map((x) => x.name).join(', ')}` : ''}`,
        before: { shape: t.shape.slice(), dtype: t.dtype, bytes: t.storage.byteLength },
        after: [
          { name: t.name, shape: [p.kept + 1, t.shape[1]], dtype: t.dtype, bytes: tensorBytes(onnx ? t.storage.dtype : 'float32', [p.kept + 1, t.shape[1]]) },
          // the remap is counted once, with the group's first table
          ...(ti === 0 ? [{ name: remapBaseName(p), shape: [p.rows], dtype: (onnx ? onnxRemapDtype(p.kept) : 'float32') as DType, bytes: remapBytes }] : []),
        ],
      });
    });
  }
  const notes = [
    `Removed embedding rows by ${settings.importance === undefined || settings.importance === 'norm' ? 'row L2 norm' : 'id frequency'}: ` +
      plans.map((p) => `${p.tables.map((t) => t.name).join(' + ')} ${p.rows} -> ${p.kept} (+1 fallback)`).join(', ') + '.',
    ...growNote,
    ...(unprunable.length ? [`Left as they are: ${unprunable.join('; ')}.`] : []),
    `Ids of removed rows now share one fallback row (${fallback === 'mean' ? 'the mean of the removed rows' : 'zeros'}); ids of kept rows give exactly the same outputs as before. Tables read with the same ids lose the same rows and share one remap. The model's inputs are unchanged: an index-remap table inside the model maps every id to its new row.`,
  ];
  return {
    method: 'prune-rows',
    settings: { table: settings.table ?? 'all', ...(settings.keep !== undefined ? { keep: settings.keep } : { sparsity: settings.sparsity }), importance: typeof settings.importance === 'object' ? 'counts' : 'norm', fallback, ...(settings.externalData ? { externalData: true } : {}) },
    changes,
    notes,
    write: (outPath) =>
      writeAndMeasure(ir, notes, outPath, () => (onnx ? writeOnnx(ir, plans, outPath, settings.externalData === true) : writeTfjs(ir, g, plans, outPath))),
  };
}
