// Feature-field pruning for deep CTR models (DeepFM-style: one embedding table per field, each
// field picked out of a `fields` input by a column select). Removing a field means its
// contribution becomes zero, and the graph is rewritten so that the zero is never computed:
//
//   - the field's column select (ONNX Gather on axis 1 / TF.js Cropping2D), its table lookups
//     (embedding and first-order "linear" tables) and the tables themselves go;
//   - ops that give zero when one input is zero (products, FM dot pairs, ReduceSum, Flatten,
//     Relu, MatMul of the zero) go with them;
//   - sums (Add) drop the zero terms (a sum left with one term is replaced by that term);
//   - a Concat drops the zero parts, and the dense kernels that read the Concat lose the rows of
//     those parts. The part's mean embedding (over the table's rows) times those rows is folded
//     into the dense layer's bias, so that the layer sees the field's average, not a zero
//     (`compensate`, default on): the deep part then loses only the field's variation.
//   - with `compensate`, the removed additive terms (first-order weights, FM pairs touching the
//     field) likewise become their mean over the tables' rows, a constant folded into a width-1
//     bias summed into the same output (DeepFM: the deep part's last layer), so that the output's
//     level (calibration, logloss) stays. Without it, the removal is exact: the result equals the
//     original model whose removed tables are all zero.
//
// The model keeps its inputs: the `fields` input keeps its width, and the removed field's column
// is simply not read any more. Where the zero reaches an op we cannot rewrite, we refuse, naming
// the op and the node. Both ONNX (graph editor) and TF.js layers models (topology edit) are written.

import { ModelFileError, ModelIR, ModelTensor } from '../model/ir.js';
import { readTensorFloat32 } from '../model/tensor-data.js';
import { writeEditedOnnxModel, OnnxGraphEdit, OnnxNodeSpec } from '../model/onnx/edit.js';
import { writeEditedTfjsModel, TfjsModelEdit } from '../model/tfjs-write.js';
import { isOnnxNative } from '../model/onnx.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';
import { DepGraph, DepNode, buildDepGraph, constantTensor, dropAlongAxis, fieldStackDim, isObject, kerasLayers, nodeAxes, widthOf } from './graph-deps.js';
import { encodeFloatsAs, tensorBytes } from './prune-magnitude.js';
import { writeAndMeasure } from './measured-size.js';
import { fieldImportance, FieldImportanceReport, FieldMetric } from './field-importance.js';

export interface PruneFieldsSettings {
  /**
   * The fields to remove: names (as in the data header, or the select layer/node name without
   * `_select`, e.g. `noise_a`), column numbers ("4"), or a fraction of the fields to drop chosen
   * by permutation importance on `data` (the weakest first).
   */
  fields: string[] | { drop: number; data: string; metric?: FieldMetric; repeats?: number; seed?: number };
  /** fold the removed parts' mean embedding into the next dense bias; default true */
  compensate?: boolean;
}

/** A field column of the model: the select node and the value it yields. */
export interface ModelField {
  column: number;
  name: string;
  /** the select node (ONNX Gather on axis 1) / layer (Cropping2D) */
  node: string;
  ids: string;
}

const ZERO_IF_ANY = new Set(['Mul', 'Multiply', 'Dot', 'ReduceSum', 'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Dropout', 'Relu']);

function refuse(ir: ModelIR, why: string): never {
  throw new ModelFileError(ir.path, why);
}

async function intValue(t: ModelTensor): Promise<number | undefined> {
  if (t.shape.length > 1 || (t.shape.length === 1 && t.shape[0] !== 1)) return undefined;
  const v = await readTensorFloat32(t);
  return v.length === 1 ? v[0] : undefined;
}

function fieldCount(g: DepGraph, input: string): number | undefined {
  const s = g.inputShapes.get(input);
  const d = s && s.length === 2 ? s[1] : undefined;
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/**
 * A field's name: its select node's ("user_select", "/user/Gather"), or where that is an
 * exporter's counter ("/Gather_3", as PyTorch names them), the first table its ids look up
 * ("age_embedding.weight" -> "age").
 */
function fieldName(g: DepGraph, select: DepNode): string {
  const own = select.name.replace(/\/Gather$/, '').replace(/_select$/, '');
  if (own && !/^\/?Gather(_\d+)?$/.test(own)) return own;
  const lookup = (g.consumers.get(select.outputs[0]) ?? []).find((c) => c.op === 'Gather' && c.inputs[1] === select.outputs[0] && g.initializers.has(c.inputs[0]));
  const table = lookup?.inputs[0].replace(/(\.weight|\/embeddings)$/, '').replace(/_(embedding|embeddings|emb|linear)$/, '');
  return table || own || `field ${select.name}`;
}

/** Every field column the model selects out of a [batch, F] input. */
export async function modelFields(ir: ModelIR, g: DepGraph = buildDepGraph(ir)): Promise<ModelField[]> {
  const out: ModelField[] = [];
  for (const n of g.nodes) {
    if (ir.format === 'onnx') {
      if (n.op !== 'Gather' || Number(n.attrs.axis ?? 0) !== 1) continue;
      const F = fieldCount(g, n.inputs[0]);
      const idx = constantTensor(g, n.inputs[1]);
      if (F === undefined || !idx) continue;
      const v = await intValue(idx);
      if (v === undefined) continue;
      const column = v < 0 ? F + v : v;
      out.push({ column, name: fieldName(g, n), node: n.name, ids: n.outputs[0] });
    } else if (n.op === 'Cropping2D') {
      const c = n.attrs.cropping as number[][] | undefined;
      const grid = g.producer.get(n.inputs[0]);
      if (!Array.isArray(c) || !grid || grid.op !== 'Reshape') continue;
      const F = fieldCount(g, grid.inputs[0]);
      if (F === undefined || c[1]?.[0] !== 0 || c[1]?.[1] !== 0 || c[0][0] + c[0][1] !== F - 1) continue;
      out.push({ column: c[0][0], name: n.name.replace(/_select$/, ''), node: n.name, ids: n.outputs[0] });
    }
  }
  return out.sort((a, b) => a.column - b.column);
}

interface KernelCut {
  kernel: ModelTensor;
  /** rows (input axis) of the kernel; 1 = removed */
  drop: Uint8Array;
  axis: number;
  bias?: ModelTensor;
  /** removed row ranges with the table whose mean they stand for */
  parts: Array<{ offset: number; width: number; table?: ModelTensor }>;
}

interface FieldPlan {
  removed: Set<string>;
  zero: Set<string>;
  alias: Map<string, string>;
  /** n-ary nodes (Concat, TF.js Add) that keep only some inputs */
  narrowed: Map<string, { node: DepNode; keep: string[] }>;
  kernels: Map<string, KernelCut>;
}

/** The table a zero value stands for (a lookup, possibly flattened), for the mean compensation. */
function tableBehind(g: DepGraph, value: string): ModelTensor | undefined {
  for (let d = 0; d < 20; d++) {
    const n = g.producer.get(value);
    if (!n) return undefined;
    if (g.ir.format === 'onnx' && n.op === 'Gather') return g.initializers.get(n.inputs[0]);
    if (n.op === 'Embedding') return n.table;
    if (n.op !== 'Flatten' && n.op !== 'Identity' && n.op !== 'Reshape' && n.op !== 'Unsqueeze') return undefined;
    value = n.inputs[0];
  }
  return undefined;
}

/** The dense kernel (and bias) a node reads `value` with: MatMul, Gemm or Dense; undefined for anything else. */
function kernelReading(g: DepGraph, c: DepNode, value: string): { kernel: ModelTensor; axis: number; bias?: ModelTensor } | undefined {
  const onnx = g.ir.format === 'onnx';
  let kernel: ModelTensor | undefined;
  let axis = 0;
  let bias: ModelTensor | undefined;
  if (onnx && c.op === 'MatMul' && c.inputs[0] === value) {
    kernel = g.initializers.get(c.inputs[1]);
    const adds = g.consumers.get(c.outputs[0]) ?? [];
    if (adds.length === 1 && adds[0].op === 'Add') {
      const b = adds[0].inputs.find((i) => g.initializers.has(i));
      if (b) bias = g.initializers.get(b);
    }
  } else if (onnx && c.op === 'Gemm' && c.inputs[0] === value && !Number(c.attrs.transA ?? 0)) {
    kernel = g.initializers.get(c.inputs[1]);
    axis = Number(c.attrs.transB ?? 0) ? 1 : 0;
    if (c.inputs[2]) bias = g.initializers.get(c.inputs[2]);
  } else if (!onnx && c.op === 'Dense') {
    kernel = c.kernel;
    bias = c.bias;
  }
  if (!kernel) return undefined;
  if (bias && bias.shape.length !== 1) bias = undefined; // a broadcast bias: no compensation
  return { kernel, axis, bias };
}

/**
 * The readers of a field stack that see its fields one by one: the Flatten(axis 1) consumers'
 * readers. Sums over the field axis (ReduceSum on axis 1) and the stack's square (Mul of it by
 * itself, read the same way) take fewer fields unchanged; anything else refuses.
 */
function stackKernelReaders(g: DepGraph, concat: DepNode, where: string): DepNode[] {
  const out: DepNode[] = [];
  const values = [concat.outputs[0]];
  for (let v = values.pop(); v !== undefined; v = values.pop()) {
    for (const c of g.consumers.get(v) ?? []) {
      if (c.op === 'ReduceSum' && c.inputs[0] === v) {
        const axes = nodeAxes(g, c);
        if (axes && axes.length === 1 && axes[0] === 1) continue;
      }
      if (c.op === 'Mul' && c.inputs.length === 2 && c.inputs.every((i) => i === v)) {
        values.push(c.outputs[0]);
        continue;
      }
      if (c.op === 'Flatten' && Number(c.attrs.axis ?? 1) === 1 && v === concat.outputs[0]) {
        out.push(...(g.consumers.get(c.outputs[0]) ?? []));
        continue;
      }
      refuse(g.ir, `cannot remove a field's part of ${where}: the stacked fields are read by ${c.op} node "${c.name}", which prune-fields does not know how to rewrite`);
    }
  }
  return out;
}

function planRemoval(g: DepGraph, dead: ModelField[]): FieldPlan {
  const ir = g.ir;
  const onnx = ir.format === 'onnx';
  const removed = new Set<string>(dead.map((f) => f.node));
  // the removed columns' ids: only table lookups of them become zero; anything else reading them refuses
  const ids = new Set<string>(dead.map((f) => f.ids));
  const zero = new Set<string>();
  const isZero = (v: string): boolean => zero.has(v) || ids.has(v);
  // zero values, to a fixpoint (nodes are in topological order, but be safe)
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of g.nodes) {
      if (removed.has(n.name)) continue;
      const ins = n.inputs.filter((i) => i !== '');
      if (!ins.some(isZero)) continue;
      let z = false;
      if (ins.some((i) => ids.has(i))) {
        if (onnx && n.op === 'Gather' && Number(n.attrs.axis ?? 0) === 0 && ids.has(n.inputs[1]) && g.initializers.has(n.inputs[0])) z = true;
        else if (!onnx && n.op === 'Embedding') z = true;
      } else if (onnx && (n.op === 'MatMul' || n.op === 'Mul' || n.op === 'ReduceSum' || n.op === 'Reshape' || n.op === 'Squeeze' || n.op === 'Unsqueeze')) {
        // zero if a data input (not a shape/axes constant) is zero
        z = n.op === 'MatMul' || n.op === 'Mul' ? ins.some(isZero) : isZero(n.inputs[0]);
      } else if (ZERO_IF_ANY.has(n.op)) z = true;
      else if (n.op === 'Activation' && ['linear', 'relu', 'tanh'].includes(String(n.attrs.activation ?? 'linear'))) z = true;
      else if ((n.op === 'Add' || n.op === 'Concat' || n.op === 'Concatenate') && ins.every(isZero)) z = true;
      if (z) {
        removed.add(n.name);
        for (const o of n.outputs) zero.add(o);
        changed = true;
      }
    }
  }
  const alias = new Map<string, string>();
  const narrowed = new Map<string, { node: DepNode; keep: string[] }>();
  const kernels = new Map<string, KernelCut>();
  for (const v of [...zero, ...ids]) {
    if (g.outputs.has(v)) refuse(ir, `removing the fields leaves the model output "${v}" identically zero: keep at least one field that reaches it`);
  }
  for (const n of g.nodes) {
    if (removed.has(n.name) || !n.inputs.some(isZero)) continue;
    const where = `${n.op} node "${n.name}"`;
    const keep = n.inputs.filter((i) => !isZero(i));
    if (n.op === 'Add') {
      if (keep.length === 1) {
        alias.set(n.outputs[0], keep[0]);
        removed.add(n.name);
      } else narrowed.set(n.name, { node: n, keep });
      continue;
    }
    if (n.op === 'Concat' || n.op === 'Concatenate') {
      const axis = Number(n.attrs.axis ?? (onnx ? 0 : -1));
      if (axis !== 1 && axis !== -1) refuse(ir, `cannot remove a field's part of ${where}: it concatenates on axis ${axis}`);
      const stackWidth = onnx && axis === 1 ? fieldStackDim(g, n) : undefined;
      const parts: KernelCut['parts'] = [];
      let off = 0;
      for (const i of n.inputs) {
        const w = stackWidth ?? widthOf(g, i);
        if (w === undefined) refuse(ir, `cannot remove a field's part of ${where}: the width of its input "${i}" is unknown`);
        if (isZero(i)) parts.push({ offset: off, width: w, table: tableBehind(g, i) });
        off += w;
      }
      const total = off;
      // [batch, fields, dim] (PyTorch's torch.stack of the fields' embeddings): sums and squares
      // over the field axis take fewer fields as they are; a Flatten feeds the dense kernel
      const readers = stackWidth === undefined ? (g.consumers.get(n.outputs[0]) ?? []) : stackKernelReaders(g, n, where);
      for (const c of readers) {
        const cut = kernelReading(g, c, stackWidth === undefined ? n.outputs[0] : c.inputs[0]);
        if (!cut || cut.kernel.shape.length !== 2 || cut.kernel.shape[cut.axis] !== total) {
          refuse(ir, `cannot remove a field's part of ${where}: its output is read by ${c.op} node "${c.name}", not by a dense kernel of ${total} rows`);
        }
        const drop = new Uint8Array(total);
        for (const p of parts) drop.fill(1, p.offset, p.offset + p.width);
        kernels.set(cut.kernel.name, { ...cut, drop, parts });
      }
      if (g.outputs.has(n.outputs[0])) refuse(ir, `cannot remove a field's part of ${where}: its output is a model output`);
      if (keep.length === 1) {
        // a concatenation of one part is that part (Keras refuses a Concatenate of one input)
        alias.set(n.outputs[0], keep[0]);
        removed.add(n.name);
      } else narrowed.set(n.name, { node: n, keep });
      continue;
    }
    refuse(ir, `cannot remove the fields: their contribution reaches ${where}, which prune-fields does not know how to rewrite`);
  }
  // Constant nodes (PyTorch's indices and axes) read only by removed nodes go with them
  for (const n of g.nodes) {
    const readers = n.op === 'Constant' ? (g.consumers.get(n.outputs[0]) ?? []) : [];
    if (readers.length > 0 && readers.every((c) => removed.has(c.name))) removed.add(n.name);
  }
  return { removed, zero, alias, narrowed, kernels };
}

function resolveAlias(plan: FieldPlan, v: string): string {
  for (let d = 0; d < 10000 && plan.alias.has(v); d++) v = plan.alias.get(v)!;
  return v;
}

/** New kernel and bias values for every cut kernel. */
async function cutKernels(plan: FieldPlan, compensate: boolean): Promise<Map<string, { values: Float32Array; shape: number[] }>> {
  const out = new Map<string, { values: Float32Array; shape: number[] }>();
  for (const cut of plan.kernels.values()) {
    const k = await readTensorFloat32(cut.kernel);
    if (compensate && cut.bias) {
      const b = out.get(cut.bias.name)?.values ?? Float32Array.from(await readTensorFloat32(cut.bias));
      const [rows, cols] = cut.kernel.shape;
      const units = cut.axis === 0 ? cols : rows;
      if (b.length === units) {
        for (const p of cut.parts) {
          if (!p.table || p.table.shape.length !== 2 || p.table.shape[1] !== p.width) continue;
          const t = await readTensorFloat32(p.table);
          const n = p.table.shape[0];
          const mean = new Float64Array(p.width);
          for (let r = 0; r < n; r++) for (let j = 0; j < p.width; j++) mean[j] += t[r * p.width + j];
          for (let j = 0; j < p.width; j++) mean[j] /= n;
          for (let u = 0; u < units; u++) {
            let s = 0;
            for (let j = 0; j < p.width; j++) {
              const row = p.offset + j;
              s += mean[j] * (cut.axis === 0 ? k[row * cols + u] : k[u * cols + row]);
            }
            b[u] += s;
          }
        }
        out.set(cut.bias.name, { values: b, shape: cut.bias.shape.slice() });
      }
    }
    out.set(cut.kernel.name, dropAlongAxis(k, cut.kernel.shape, cut.axis, cut.drop));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Compensation of removed additive terms (first-order weights, FM pairs): each becomes its mean
// over the tables' rows (a constant on the logit), folded into the bias of a dense layer that is
// summed into the same output (DeepFM: the deep part's last layer).

type MeanCache = Map<string, Promise<Float64Array | undefined>>;

/** Column means of a lookup-derived value (linear ops only); undefined where it cannot be told. */
function meanOf(g: DepGraph, v: string, cache: MeanCache, depth = 0): Promise<Float64Array | undefined> {
  let p = cache.get(v);
  if (!p) {
    p = computeMean(g, v, cache, depth);
    cache.set(v, p);
  }
  return p;
}

async function computeMean(g: DepGraph, v: string, cache: MeanCache, depth: number): Promise<Float64Array | undefined> {
  if (depth > 200) return undefined;
  const n = g.producer.get(v);
  if (!n) return undefined;
  const onnx = g.ir.format === 'onnx';
  const sub = (i: string) => meanOf(g, i, cache, depth + 1);
  let table: ModelTensor | undefined;
  if (onnx && n.op === 'Gather' && Number(n.attrs.axis ?? 0) === 0) table = g.initializers.get(n.inputs[0]);
  if (!onnx && n.op === 'Embedding') table = n.table;
  if (table) {
    if (table.shape.length !== 2) return undefined;
    const [rows, d] = table.shape;
    const t = await readTensorFloat32(table);
    const m = new Float64Array(d);
    for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) m[j] += t[r * d + j];
    for (let j = 0; j < d; j++) m[j] /= rows;
    return m;
  }
  if (['Flatten', 'Identity', 'Dropout', 'Squeeze', 'Unsqueeze', 'Reshape'].includes(n.op)) return sub(n.inputs[0]);
  if (n.op === 'Mul' || n.op === 'Multiply' || n.op === 'Dot') {
    if (n.inputs.length !== 2) return undefined;
    const [a, b] = await Promise.all(n.inputs.map(sub));
    if (!a || !b || a.length !== b.length) return undefined;
    // the mean of a product of independent fields is the product of their means
    const m = a.map((x, j) => x * b[j]);
    return n.op === 'Dot' ? Float64Array.of(m.reduce((x, y) => x + y, 0)) : m;
  }
  if (onnx && n.op === 'ReduceSum' && Number(n.attrs.keepdims ?? 1) === 1) {
    const a = await sub(n.inputs[0]);
    return a ? Float64Array.of(a.reduce((x, y) => x + y, 0)) : undefined;
  }
  if (n.op === 'Add') {
    const ms = await Promise.all(n.inputs.map(sub));
    if (ms.some((m) => !m || m.length !== ms[0]!.length)) return undefined;
    return ms.reduce((acc, m) => acc!.map((x, j) => x + m![j]), new Float64Array(ms[0]!.length));
  }
  return undefined;
}

/** A width-1 bias that is added, through sums only, to `v`'s value (searching back from v). */
function biasBehind(g: DepGraph, plan: FieldPlan, v: string, seen: Set<string>): ModelTensor | undefined {
  if (seen.has(v) || plan.zero.has(v)) return undefined;
  seen.add(v);
  if ((g.consumers.get(v) ?? []).length > 1) return undefined; // another reader would see the shift too
  const n = g.producer.get(v);
  if (!n) return undefined;
  if (g.ir.format === 'onnx') {
    if (n.op !== 'Add') return undefined;
    for (const i of n.inputs) {
      const t = g.initializers.get(i);
      if (t && t.shape.reduce((a, b) => a * b, 1) === 1 && (t.dtype === 'float32' || t.dtype === 'float16')) return t;
    }
  } else {
    if (n.op === 'Dense' && n.bias && n.bias.shape.length === 1 && n.bias.shape[0] === 1 && String(n.attrs.activation ?? 'linear') === 'linear') return n.bias;
    if (n.op !== 'Add') return undefined;
  }
  for (const i of n.inputs) {
    const b = biasBehind(g, plan, i, seen);
    if (b) return b;
  }
  return undefined;
}

/** A bias whose shift reaches the output of the sum node `n` unchanged (other terms of the same sums). */
function biasForSum(g: DepGraph, plan: FieldPlan, n: DepNode): ModelTensor | undefined {
  const seen = new Set<string>();
  let node: DepNode | undefined = n;
  let from: string | undefined;
  for (let d = 0; node && d < 1000; d++) {
    for (const i of node.inputs) {
      if (i === from) continue;
      const b = biasBehind(g, plan, i, seen);
      if (b) return b;
    }
    const out: string = node.outputs[0];
    const users: DepNode[] = g.consumers.get(out) ?? [];
    if (users.length !== 1 || users[0].op !== 'Add' || g.outputs.has(out)) return undefined;
    from = out;
    node = users[0];
  }
  return undefined;
}

/** Folds the means of the removed additive terms into biases; returns notes on what was (not) folded. */
async function compensateSums(
  g: DepGraph, plan: FieldPlan, values: Map<string, { values: Float32Array; shape: number[] }>,
): Promise<{ folded: number; missed: number; target?: string }> {
  const cache: MeanCache = new Map();
  let folded = 0;
  let missed = 0;
  let target: string | undefined;
  for (const n of g.nodes) {
    if (n.op !== 'Add' || !n.inputs.some((i) => plan.zero.has(i))) continue;
    if (plan.removed.has(n.name) && !plan.alias.has(n.outputs[0])) continue; // an all-zero sum: counted where it ends
    for (const i of n.inputs) {
      if (!plan.zero.has(i)) continue;
      const m = await meanOf(g, i, cache);
      const bias = m && m.length === 1 ? biasForSum(g, plan, n) : undefined;
      if (!m || m.length !== 1 || !bias) {
        missed++;
        continue;
      }
      const cur = values.get(bias.name) ?? { values: Float32Array.from(await readTensorFloat32(bias)), shape: bias.shape.slice() };
      cur.values[0] += m[0];
      values.set(bias.name, cur);
      target = bias.name;
      folded++;
    }
  }
  return { folded, missed, target };
}

function tensorsOfRemoved(g: DepGraph, plan: FieldPlan): ModelTensor[] {
  const ir = g.ir;
  if (ir.format === 'onnx') {
    // initializers read only by removed nodes
    const out: ModelTensor[] = [];
    for (const [name, t] of g.initializers) {
      const users = g.consumers.get(name) ?? [];
      if (users.length > 0 && users.every((u) => plan.removed.has(u.name))) out.push(t);
    }
    return out;
  }
  const byName = new Map(ir.tensors.map((t) => [t.name, t]));
  return ir.layers.filter((l) => plan.removed.has(l.name)).flatMap((l) => l.tensors.map((n) => byName.get(n)).filter((t): t is ModelTensor => t !== undefined));
}

function onnxEdit(g: DepGraph, plan: FieldPlan, values: Map<string, { values: Float32Array; shape: number[] }>, gone: ModelTensor[]): OnnxGraphEdit {
  const ir = g.ir;
  const insertNodes: NonNullable<OnnxGraphEdit['insertNodes']> = [];
  const removeNodes = [...plan.removed];
  for (const { node, keep } of plan.narrowed.values()) {
    removeNodes.push(node.name);
    // placed before the first kept reader of its output (or at the end)
    const reader = (g.consumers.get(node.outputs[0]) ?? []).find((c) => !plan.removed.has(c.name) && !plan.narrowed.has(c.name));
    const spec: OnnxNodeSpec = { name: `${node.name}/fields_pruned`, op: node.op, inputs: keep.map((v) => resolveAlias(plan, v)), outputs: node.outputs.slice() };
    if (node.op === 'Concat') spec.attrs = { axis: { i: Number(node.attrs.axis ?? 1) } };
    else if (keep.length !== 2) refuse(ir, `internal: Add node "${node.name}" with ${keep.length} kept inputs`);
    insertNodes.push(reader ? { before: reader.name, node: spec } : { node: spec });
  }
  const rewireInputs: NonNullable<OnnxGraphEdit['rewireInputs']> = [];
  for (const from of plan.alias.keys()) {
    const to = resolveAlias(plan, from);
    if (g.outputs.has(from)) {
      // a graph output keeps its name: an Identity carries the remaining term into it
      insertNodes.push({ node: { name: `${from}/fields_pruned_identity`, op: 'Identity', inputs: [to], outputs: [from] } });
    } else {
      // original readers that stay (removed and re-inserted nodes are given their final inputs)
      const readers = (g.consumers.get(from) ?? []).filter((c) => !plan.removed.has(c.name) && !plan.narrowed.has(c.name)).map((c) => c.name);
      if (readers.length) rewireInputs.push({ from, to, nodes: readers });
    }
  }
  const valueInfo = isOnnxNative(ir.native) ? (ir.native.model.graph?.valueInfo ?? []).map((v) => v.name ?? '').filter((n) => n) : [];
  return {
    setInitializers: [...values].map(([name, r]) => {
      const t = g.initializers.get(name)!;
      return { name, dtype: t.storage.dtype, shape: r.shape, data: encodeFloatsAs(t.storage.dtype, r.values, t.storage.location) };
    }),
    removeInitializers: gone.map((t) => t.name),
    removeNodes,
    insertNodes,
    rewireInputs,
    dropValueInfo: valueInfo,
  };
}

type Json = Record<string, unknown>;

function tfjsEdit(g: DepGraph, plan: FieldPlan, values: Map<string, { values: Float32Array; shape: number[] }>, gone: ModelTensor[]): TfjsModelEdit {
  const ir = g.ir;
  const doc = JSON.parse(JSON.stringify(ir.native)) as Json;
  const topo = doc.modelTopology as Json;
  const layers = kerasLayers(doc, ir.path);
  const cfgOf = (isObject(topo.model_config) ? topo.model_config : topo) as Json;
  const modelCfg = cfgOf.config as Json;
  const kept = layers.filter((l) => !plan.removed.has(String(l.name ?? (l.config as Json | undefined)?.name)));
  const rename = (ref: unknown): void => {
    if (Array.isArray(ref) && typeof ref[0] === 'string') ref[0] = resolveAlias(plan, ref[0]);
  };
  for (const l of kept) {
    const name = String(l.name);
    const nodes = l.inbound_nodes as unknown[][] | undefined;
    if (!Array.isArray(nodes)) continue;
    if (nodes.length > 1) refuse(ir, `layer ${name} is applied ${nodes.length} times; prune-fields does not rewrite shared layers`);
    const narrowed = plan.narrowed.get(name);
    if (narrowed && nodes.length === 1) {
      const keep = new Set(narrowed.keep);
      nodes[0] = nodes[0].filter((ref) => Array.isArray(ref) && keep.has(String(ref[0])));
    }
    for (const node of nodes) for (const ref of node) rename(ref);
  }
  for (const key of ['output_layers', 'outputLayers']) {
    const outs = modelCfg[key];
    if (Array.isArray(outs)) for (const ref of outs) rename(ref);
  }
  if (Array.isArray(modelCfg.layers)) modelCfg.layers = kept;
  else refuse(ir, 'prune-fields needs a functional Keras model (a layer list with inbound nodes)');
  // a Dense that declares its input width must declare the new one
  for (const [name, r] of values) {
    const t = ir.tensors.find((x) => x.name === name)!;
    if (t.role !== 'dense-kernel') continue;
    const l = kept.find((x) => x.name === t.layer);
    const cfg = l && isObject(l.config) ? l.config : undefined;
    if (cfg && typeof cfg.input_dim === 'number') cfg.input_dim = r.shape[0];
  }
  return {
    topology: topo,
    setWeights: [...values].map(([name, r]) => ({ name, dtype: 'float32' as const, data: r.values, shape: r.shape })),
    removeWeights: gone.map((t) => t.name),
  };
}

/** Field names/columns -> the model's fields. */
function pickFields(ir: ModelIR, fields: ModelField[], wanted: string[]): ModelField[] {
  const out: ModelField[] = [];
  for (const w of wanted) {
    const key = w.trim();
    const f = fields.find((x) => x.name === key || x.node === key || String(x.column) === key || `field_${x.column}` === key);
    if (!f) refuse(ir, `no field "${key}" (fields: ${fields.map((x) => `${x.column}:${x.name}`).join(', ')})`);
    if (!out.includes(f)) out.push(f);
  }
  return out;
}

/** Removes the given (or the weakest) feature fields of a DeepFM-style model. */
export async function pruneFields(ir: ModelIR, settings: PruneFieldsSettings, ctx?: CompressionContext): Promise<CompressionOutcome> {
  if (ir.format !== 'onnx' && ir.format !== 'tfjs-layers') refuse(ir, `field pruning needs an ONNX model or a TF.js layers model, not ${ir.format}`);
  const g = buildDepGraph(ir);
  const fields = await modelFields(ir, g);
  if (fields.length < 2) refuse(ir, 'the model has no [batch, F] fields input whose columns are selected one by one (DeepFM-style); nothing to prune');
  let chosen: ModelField[];
  let importance: FieldImportanceReport | undefined;
  const s = settings.fields;
  if (Array.isArray(s)) {
    if (s.length === 0) refuse(ir, 'give at least one field to remove');
    chosen = pickFields(ir, fields, s);
  } else {
    if (!(s.drop > 0 && s.drop < 1)) refuse(ir, `drop must be a fraction in (0, 1), got ${s.drop}`);
    const count = Math.floor(s.drop * fields.length + 1e-9);
    if (count < 1) refuse(ir, `drop ${s.drop} of ${fields.length} fields removes none`);
    importance = await fieldImportance(ir.path, { data: s.data, metric: s.metric, repeats: s.repeats, seed: s.seed }, {
      signal: ctx?.signal,
      onProgress: (f, d) => ctx?.onProgress?.(0.9 * f, d ? `importance: ${d}` : 'importance'),
    });
    const weakest = importance.fields.slice().reverse();
    chosen = [];
    for (const w of weakest) {
      if (chosen.length === count) break;
      const f = w.column >= 0 ? fields.find((x) => x.column === w.column) : undefined;
      if (f) chosen.push(f);
    }
  }
  if (chosen.length >= fields.length) refuse(ir, 'cannot remove every field');
  ctx?.signal?.throwIfAborted();
  const plan = planRemoval(g, chosen);
  const compensate = settings.compensate ?? true;
  const values = await cutKernels(plan, compensate);
  const sums = compensate ? await compensateSums(g, plan, values) : undefined;
  const gone = tensorsOfRemoved(g, plan);
  const changes: TensorChange[] = [];
  const bytesOf = (t: ModelTensor) => t.storage.byteLength;
  for (const t of gone) {
    if (t.role === 'constant') continue;
    changes.push({ tensor: t.name, action: 'removed with its field', before: { shape: t.shape, dtype: t.dtype, bytes: bytesOf(t) }, after: [] });
  }
  for (const [name, r] of values) {
    const t = ir.tensors.find((x) => x.name === name)!;
    const isKernel = plan.kernels.has(name);
    changes.push({
      tensor: name,
      action: isKernel ? `dropped ${t.shape[plan.kernels.get(name)!.axis] - r.shape[plan.kernels.get(name)!.axis]} rows read from the removed fields` : 'the removed fields\' means folded in',
      before: { shape: t.shape, dtype: t.dtype, bytes: bytesOf(t) },
      after: [{ name, shape: r.shape, dtype: t.dtype, bytes: tensorBytes(t.storage.dtype === 'float16' ? 'float16' : 'float32', r.shape) }],
    });
  }
  const names = chosen.map((f) => f.name);
  const notes = [
    `Removed field${chosen.length > 1 ? 's' : ''} ${names.join(', ')} (column${chosen.length > 1 ? 's' : ''} ${chosen.map((f) => f.column).join(', ')}): ` +
      `${plan.removed.size} nodes/layers and ${gone.filter((t) => t.role !== 'constant').length} tables/weights are gone; the model's input keeps its width and the removed columns are no longer read.`,
  ];
  if (plan.kernels.size) {
    notes.push(
      `The dense layer${plan.kernels.size > 1 ? 's' : ''} reading the concatenated embeddings lost the rows of the removed fields` +
        (compensate ? ", and their bias absorbed the removed fields' mean embedding times those rows." : '.'),
    );
  }
  if (sums && sums.folded) {
    notes.push(`${sums.folded} removed additive term${sums.folded > 1 ? 's' : ''} (first-order weights, FM pairs) became ${sums.folded > 1 ? 'their' : 'its'} mean over the tables' rows, folded into ${sums.target} so that the output's level (calibration) stays.`);
  }
  if (sums && sums.missed) notes.push(`${sums.missed} removed additive term${sums.missed > 1 ? 's' : ''} could not be compensated (no linear path to a bias): the output's level may shift.`);
  if (importance) {
    notes.push(
      `Chosen by permutation importance on ${importance.data} (${importance.metric}, baseline ${importance.baseline.toFixed(4)}, ${importance.repeats} repeats): ` +
        importance.fields.map((f) => `${f.field} ${f.drop.toFixed(4)}±${f.spread.toFixed(4)}`).join(', ') + '.',
    );
  }
  ctx?.onProgress?.(1, 'planned');
  const write = async (outPath: string): Promise<void> => {
    if (ir.format === 'onnx') await writeEditedOnnxModel(ir, onnxEdit(g, plan, values, gone), outPath);
    else await writeEditedTfjsModel(ir, tfjsEdit(g, plan, values, gone), outPath);
  };
  return {
    method: 'prune-fields',
    settings: Array.isArray(s) ? { fields: names, compensate } : { drop: s.drop, data: s.data, metric: s.metric ?? 'auc', repeats: s.repeats ?? 3, seed: s.seed ?? 1, fields: names, compensate },
    changes,
    notes,
    write: (outPath) => writeAndMeasure(ir, notes, outPath, () => write(outPath)),
  };
}
