// Which column of a DeepFM-style `fields` input ([batch, F] ids) each embedding table reads, from
// the model itself: in ONNX, a Gather of the fields input at a constant index followed by a
// Gather of the table at that value (how PyTorch exports `fields[:, j]` and how our writer builds
// it); in a TF.js layers model, the Cropping2D that selects the column in front of the Embedding
// layer (samples/models.ts). A data file's field columns can then be matched to the model's by
// name (a column `genre` feeds the column the `genre_embedding` table reads), whatever their order
// in the file; the readers and distillation both use it.

import type { ModelIR, ModelTensor } from './ir.js';

/** Table base name (the layer, or the name up to the first `/`): `genre_embedding`. */
export function tableBase(t: ModelTensor): string {
  return t.layer || t.name.split('/')[0];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** ONNX: table tensor name -> the column of a graph input ([batch, F]) its Gather reads. */
function onnxColumns(ir: ModelIR): Map<string, number> {
  // a [batch, F] input, F not 1: `user[:, 0]` of a [batch, 1] user input is no fields column
  const inputs = new Set(ir.graph.inputs.filter((i) => i.shape?.length === 2 && i.shape[1] !== 1).map((i) => i.name));
  const constVal = new Map<string, number>();
  for (const t of ir.tensors) {
    if ((t.dtype === 'int64' || t.dtype === 'int32') && t.shape.length <= 1 && (t.shape[0] ?? 1) === 1 && t.storage.source.kind === 'bytes') {
      const b = t.storage.source.bytes;
      if (b.byteLength < (t.dtype === 'int64' ? 8 : 4)) continue;
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      constVal.set(t.name, t.dtype === 'int64' ? Number(dv.getBigInt64(0, true)) : dv.getInt32(0, true));
    }
  }
  const column = new Map<string, number>(); // value name -> column
  const out = new Map<string, number>();
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  // nodes are in topological order: one pass carries a column through a row-pruned model's remap
  // (Gather of a 1-D remap, then Cast) and reshapes to the table's Gather
  for (const n of ir.graph.nodes) {
    if (n.op === 'Gather' && inputs.has(n.inputs[0]) && constVal.has(n.inputs[1])) column.set(n.outputs[0], constVal.get(n.inputs[1])!);
    else if (n.op === 'Gather' && column.has(n.inputs[1])) {
      const from = byName.get(n.inputs[0]);
      if (from && from.shape.length === 1) column.set(n.outputs[0], column.get(n.inputs[1])!);
      else out.set(n.inputs[0], column.get(n.inputs[1])!);
    } else if (['Cast', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity'].includes(n.op) && column.has(n.inputs[0])) column.set(n.outputs[0], column.get(n.inputs[0])!);
  }
  return out;
}

/** TF.js layers: Embedding layer name -> the column its Cropping2D selects. */
function tfjsColumns(ir: ModelIR): Map<string, number> {
  const out = new Map<string, number>();
  const doc = ir.native;
  const topo = isObject(doc) && isObject(doc.modelTopology) ? doc.modelTopology : undefined;
  const model = topo && isObject(topo.model_config) ? topo.model_config : topo;
  const config = model && isObject(model.config) ? model.config : undefined;
  const layers = config && Array.isArray(config.layers) ? config.layers.filter(isObject) : [];
  const byName = new Map(layers.map((l) => [String(isObject(l.config) ? l.config.name ?? l.name : l.name), l]));
  for (const l of layers) {
    if (l.class_name !== 'Embedding') continue;
    const inbound = Array.isArray(l.inbound_nodes) ? l.inbound_nodes[0] : undefined;
    const src = Array.isArray(inbound) && Array.isArray(inbound[0]) ? byName.get(String(inbound[0][0])) : undefined;
    const crop = src?.class_name === 'Cropping2D' && isObject(src.config) ? src.config.cropping : undefined;
    const top = Array.isArray(crop) && Array.isArray(crop[0]) ? Number(crop[0][0]) : NaN;
    const name = isObject(l.config) ? l.config.name ?? l.name : l.name;
    if (Number.isInteger(top)) out.set(String(name), top);
  }
  return out;
}

/**
 * The tables named after a data column: `<column>_embedding` / `<column>_linear` exactly, else
 * those whose name starts `<column>_`, `<column>/` or `<column>.` (as PyTorch names them). Exact
 * first: a column `item` is not `item_category_embedding`.
 */
export function tablesNamedAfter(tables: readonly ModelTensor[], column: string): ModelTensor[] {
  const c = column.toLowerCase();
  const exact = tables.filter((t) => [`${c}_embedding`, `${c}_linear`].includes(tableBase(t).toLowerCase().replace(/\.weight$/, '')));
  return exact.length > 0 ? exact : tables.filter((t) => [`${c}_`, `${c}/`, `${c}.`].some((p) => t.name.toLowerCase().startsWith(p)));
}

/** Which columns of a model's fields input its tables read, by table name and in all. */
export interface FieldColumns {
  /**
   * The column read by the table(s) named after `column` (tablesNamedAfter), or undefined when no
   * such table reads one column. Tables of one name that read different columns give undefined too.
   */
  at(column: string): number | undefined;
  /** every column some table reads (a column no table reads, e.g. a removed field's, feeds nothing) */
  read: ReadonlySet<number>;
  /** the data column a fields-input column takes, by its table's name (`genre` for `genre_embedding`) */
  nameOf(column: number): string | undefined;
}

/** The fields-input columns of the model's tables (ONNX graph or TF.js topology). */
export function fieldColumns(ir: ModelIR): FieldColumns {
  const byTable = ir.format === 'onnx' ? onnxColumns(ir) : tfjsColumns(ir);
  const tables = ir.tensors.filter((t) => t.role === 'embedding' && t.shape.length === 2);
  const columnOf = (t: ModelTensor) => byTable.get(t.name) ?? byTable.get(tableBase(t));
  const at = (column: string) => {
    const found = new Set(tablesNamedAfter(tables, column).map(columnOf).filter((x): x is number => x !== undefined));
    return found.size === 1 ? [...found][0] : undefined;
  };
  const nameOf = (column: number) => {
    const t = tables.find((x) => columnOf(x) === column);
    return t ? tableBase(t).replace(/\.weight$/, '').replace(/_(embedding|linear)$/i, '') : undefined;
  };
  return { at, read: new Set(byTable.values()), nameOf };
}
