// Channel dependencies of a recommender graph, for structured pruning (DepGraph-style, for the
// graph shapes we support: Gather/Embedding -> Flatten -> Concat/Mul/Dot -> MatMul/Gemm/Dense
// -> Add bias -> Relu/Sigmoid/Tanh -> ...).
//
// A "channel group" is a set of channels (embedding columns, or output neurons of a dense layer)
// that must be removed together, and every parameter slice that removing them touches: the
// producers (table columns, kernel columns, bias entries), the coupled producers (the paired
// table of a GMF product or of a dot, the other tower of a two-tower dot), and the consumers
// (rows of the next kernels, shifted by their offset inside a Concat). The walk follows the last
// axis of values forward from the producer; wherever it cannot say what an op does to the
// channels it refuses, naming the op and the node.

import { ModelFileError, ModelIR, ModelTensor } from '../model/ir.js';
import { MagnitudeSelector } from '../analysis/magnitude-select.js';

export interface DepNode {
  name: string;
  op: string;
  /** value names (ONNX: tensor names, initializers included; TF.js: inbound layer names) */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, unknown>;
  /** TF.js: the layer's weights by role */
  kernel?: ModelTensor;
  bias?: ModelTensor;
  table?: ModelTensor;
}

export interface DepGraph {
  ir: ModelIR;
  nodes: DepNode[];
  producer: Map<string, DepNode>;
  consumers: Map<string, DepNode[]>;
  /** ONNX initializers by name (TF.js: none; weights hang on the nodes) */
  initializers: Map<string, ModelTensor>;
  outputs: Set<string>;
  inputShapes: Map<string, Array<number | string>>;
}

/** A slice of a parameter along one axis, [offset, offset + width). */
export interface ParamSlice {
  tensor: string;
  axis: number;
  offset: number;
  width: number;
  /** producer: its norm ranks the channels; bias: removed with them; consumer: rows of the next kernel */
  kind: 'producer' | 'bias' | 'consumer';
}

export interface ChannelSource {
  kind: 'table' | 'neurons';
  /** the table / kernel tensor */
  tensor: string;
  /** the node that makes the channels (Gather / Embedding / MatMul / Gemm / Dense) */
  node: string;
  width: number;
}

export interface ChannelGroup {
  sources: ChannelSource[];
  width: number;
  slices: ParamSlice[];
  /**
   * For exact removal of constant neurons: when the group is one neuron source whose output
   * reaches each consumer kernel through unary activations only, removing channel j adds
   * act(bias_j) * W_next[row j] to that consumer's bias. Undefined when that does not apply.
   */
  compensation?: { bias: string; acts: string[]; consumers: Array<{ kernel: string; axis: number; offset: number; bias?: string }> };
  /**
   * True when the group is its first source alone and every path from it to the consumer kernels
   * is linear and adds nothing: Identity-like ops, concatenation on the channel axis, a
   * one-position Flatten. The consumers' rows for these channels then see the channels only
   * through a matrix product, and can absorb a linear map of them (fold-projection.ts).
   */
  linear: boolean;
}

const UNARY = new Set(['Relu', 'Sigmoid', 'Tanh', 'Identity', 'Dropout', 'Activation', 'LeakyRelu', 'Elu', 'Softplus']);
const TFJS_ELEMENTWISE = new Set(['Add', 'Multiply', 'Subtract', 'Average', 'Maximum', 'Minimum']);
const ONNX_BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min']);

function refuse(ir: ModelIR, why: string): never {
  throw new ModelFileError(ir.path, why);
}

type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The Keras layer list inside a parsed TF.js model.json (functional or sequential). */
/** A Keras layer's name: its own `name`, else its config's. */
export function kerasLayerName(l: Json): string | undefined {
  if (typeof l.name === 'string') return l.name;
  if (isObject(l.config) && typeof l.config.name === 'string') return l.config.name;
  return undefined;
}

export function kerasLayers(doc: unknown, file: string): Json[] {
  if (!isObject(doc) || !isObject(doc.modelTopology)) throw new ModelFileError(file, 'model.json has no Keras modelTopology to edit');
  const topo = isObject(doc.modelTopology.model_config) ? doc.modelTopology.model_config : doc.modelTopology;
  const cfg = topo.config;
  const layers = Array.isArray(cfg) ? cfg : isObject(cfg) && Array.isArray(cfg.layers) ? cfg.layers : undefined;
  if (!layers) throw new ModelFileError(file, 'model.json topology has no layer list');
  return layers as Json[];
}

export function layerConfig(layer: Json): Json {
  if (!isObject(layer.config)) layer.config = {};
  return layer.config as Json;
}

/**
 * Tensors of frozen TF.js layers (config trainable: false), e.g. the row-remap Embedding that
 * row pruning inserts: its values are indices, never to be pruned, remapped or counted as a table.
 * (The reader marks every Embedding weight as an 'embedding' role whatever its layer's flag.)
 */
export function frozenTensors(ir: ModelIR): Set<string> {
  const out = new Set<string>();
  if (ir.format !== 'tfjs-layers') return out;
  let layers: Json[];
  try {
    layers = kerasLayers(ir.native, ir.path);
  } catch {
    return out;
  }
  const frozen = new Set(layers.filter((l) => isObject(l.config) && l.config.trainable === false).map((l) => String(l.name ?? (l.config as Json).name)));
  for (const l of ir.layers) if (frozen.has(l.name)) for (const t of l.tensors) out.add(t);
  return out;
}

/** The dataflow graph of an ONNX model or a TF.js layers model, for channel walks. */
export function buildDepGraph(ir: ModelIR): DepGraph {
  const nodes: DepNode[] = [];
  const initializers = new Map<string, ModelTensor>();
  const inputShapes = new Map<string, Array<number | string>>();
  for (const i of ir.graph.inputs) inputShapes.set(i.name, i.shape ?? []);
  if (ir.format === 'onnx') {
    for (const t of ir.tensors) if (t.origin === 'initializer') initializers.set(t.name, t);
    for (const n of ir.graph.nodes) {
      if (n.scope) continue; // subgraph bodies: never walked into (a walk reaching an If/Loop refuses)
      nodes.push({ name: n.name, op: n.op, inputs: n.inputs, outputs: n.outputs, attrs: n.attrs });
    }
  } else if (ir.format === 'tfjs-layers') {
    const byName = new Map(ir.tensors.map((t) => [t.name, t]));
    const attrsOf = new Map(ir.graph.nodes.map((n) => [n.name, n.attrs]));
    // the reader summarises nested attributes (Cropping2D's cropping): read the configs themselves
    const configs = new Map<string, Json>();
    try {
      for (const l of kerasLayers(ir.native, ir.path)) {
        const name = kerasLayerName(l);
        if (name) configs.set(name, isObject(l.config) ? l.config : {});
      }
    } catch {
      // no Keras topology: the reader's attributes are all there is
    }
    for (const l of ir.layers) {
      const ts = l.tensors.map((n) => byName.get(n)).filter((t): t is ModelTensor => t !== undefined);
      nodes.push({
        name: l.name,
        op: l.kind,
        inputs: l.inbound.slice(),
        outputs: [l.name],
        attrs: configs.get(l.name) ?? attrsOf.get(l.name) ?? {},
        kernel: ts.find((t) => t.role === 'dense-kernel'),
        bias: ts.find((t) => t.role === 'bias'),
        table: ts.find((t) => t.role === 'embedding'),
      });
    }
  } else {
    refuse(ir, `structured pruning needs an ONNX model or a TF.js layers model, not ${ir.format}`);
  }
  const producer = new Map<string, DepNode>();
  const consumers = new Map<string, DepNode[]>();
  for (const n of nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of new Set(n.inputs)) {
      if (!consumers.has(i)) consumers.set(i, []);
      consumers.get(i)!.push(n);
    }
  }
  return { ir, nodes, producer, consumers, initializers, outputs: new Set(ir.graph.outputs.map((o) => o.name)), inputShapes };
}

function attrNum(n: DepNode, k: string, dflt: number): number {
  const v = n.attrs[k];
  return typeof v === 'number' ? v : dflt;
}

/** TF.js layer output shape without the batch dim, for the layer kinds of our recommender graphs. */
export function tfjsShape(g: DepGraph, value: string, depth = 0): number[] | undefined {
  if (depth > 200) return undefined;
  const n = g.producer.get(value);
  if (!n) return undefined;
  const a = n.attrs;
  // a Sequential model's first layer has no inbound layer: it declares its input itself
  const declared = (): number[] | undefined => {
    const s = (a.batch_input_shape ?? a.batchInputShape) as Array<number | null> | undefined;
    if (Array.isArray(s) && s.length > 1 && s.slice(1).every((d) => typeof d === 'number')) return s.slice(1) as number[];
    const len = a.input_length ?? a.inputLength;
    return n.op === 'Embedding' && typeof len === 'number' && len > 0 ? [len] : undefined;
  };
  const inShape = (i = 0): number[] | undefined => (n.inputs[i] !== undefined ? tfjsShape(g, n.inputs[i], depth + 1) : n.inputs.length === 0 && i === 0 ? declared() : undefined);
  switch (n.op) {
    case 'InputLayer': {
      const s = (a.batch_input_shape ?? a.batchInputShape) as Array<number | null> | undefined;
      return Array.isArray(s) && s.slice(1).every((d) => typeof d === 'number') ? (s.slice(1) as number[]) : undefined;
    }
    case 'Reshape':
      return Array.isArray(a.target_shape) && (a.target_shape as unknown[]).every((d) => typeof d === 'number' && d > 0) ? (a.target_shape as number[]).slice() : undefined;
    case 'Cropping2D': {
      const s = inShape();
      const c = a.cropping as number[][] | undefined;
      if (!s || s.length !== 3 || !Array.isArray(c) || a.data_format === 'channels_first') return undefined;
      return [s[0] - c[0][0] - c[0][1], s[1] - c[1][0] - c[1][1], s[2]];
    }
    case 'Embedding': {
      const s = inShape();
      return s ? [...s, attrNum(n, 'output_dim', NaN)] : undefined;
    }
    case 'Flatten': {
      const s = inShape();
      return s ? [s.reduce((x, y) => x * y, 1)] : undefined;
    }
    case 'Dense': {
      const s = inShape();
      return s ? [...s.slice(0, -1), attrNum(n, 'units', NaN)] : undefined;
    }
    case 'Concatenate': {
      const ss = n.inputs.map((_, i) => inShape(i));
      if (ss.some((s) => !s)) return undefined;
      const axis = attrNum(n, 'axis', -1);
      const rank = ss[0]!.length;
      const ax = axis < 0 ? rank + axis : axis - 1;
      const out = ss[0]!.slice();
      out[ax] = ss.reduce((t, s) => t + s![ax], 0);
      return out;
    }
    case 'Dot':
      return [1];
    default:
      if (UNARY.has(n.op) || TFJS_ELEMENTWISE.has(n.op)) return inShape();
      return undefined;
  }
}

/** Width of the last axis of a value, or undefined when it cannot be told. */
export function widthOf(g: DepGraph, value: string, depth = 0): number | undefined {
  if (depth > 500) return undefined;
  if (g.ir.format !== 'onnx') {
    const s = tfjsShape(g, value);
    return s && s.length > 0 ? s[s.length - 1] : undefined;
  }
  const init = g.initializers.get(value);
  if (init) return init.shape.length ? init.shape[init.shape.length - 1] : 1;
  const inp = g.inputShapes.get(value);
  if (inp) {
    const d = inp[inp.length - 1];
    return typeof d === 'number' && d >= 0 ? d : undefined;
  }
  const n = g.producer.get(value);
  if (!n) return undefined;
  const w = (v: string) => widthOf(g, v, depth + 1);
  switch (n.op) {
    case 'Gather': {
      const t = g.initializers.get(n.inputs[0]);
      return t && attrNum(n, 'axis', 0) === 0 ? t.shape[t.shape.length - 1] : undefined;
    }
    case 'MatMul':
      return w(n.inputs[1]);
    case 'Gemm': {
      const b = g.initializers.get(n.inputs[1]);
      if (!b || b.shape.length !== 2) return undefined;
      return attrNum(n, 'transB', 0) ? b.shape[0] : b.shape[1];
    }
    case 'Concat': {
      if (!concatOnChannels(g, n, n.inputs[0])) return undefined;
      let s = 0;
      for (const i of n.inputs) {
        const x = w(i);
        if (x === undefined) return undefined;
        s += x;
      }
      return s;
    }
    case 'ReduceSum':
    case 'ReduceMean':
      return attrNum(n, 'keepdims', 1) ? 1 : undefined;
    default:
      if (UNARY.has(n.op)) return w(n.inputs[0]);
      if (ONNX_BINARY.has(n.op)) {
        const ws = n.inputs.map(w);
        if (ws.some((x) => x === undefined)) return undefined;
        return Math.max(...(ws as number[]));
      }
      return undefined;
  }
}

/**
 * The rank of an ONNX value where the graph tells it (graph inputs, initializers, lookups and the
 * ops that keep their first input's rank), else undefined.
 */
export function onnxRank(g: DepGraph, value: string, depth = 0): number | undefined {
  if (depth > 500 || g.ir.format !== 'onnx') return undefined;
  const init = g.initializers.get(value);
  if (init) return init.shape.length;
  const inp = g.inputShapes.get(value);
  if (inp) return inp.length > 0 ? inp.length : undefined; // no dims listed: unknown, not a scalar
  const n = g.producer.get(value);
  if (!n) return undefined;
  const r = (v: string) => onnxRank(g, v, depth + 1);
  if (n.op === 'Gather') {
    const data = r(n.inputs[0]);
    const ids = r(n.inputs[1]);
    return data !== undefined && ids !== undefined ? data + ids - 1 : undefined;
  }
  if (n.op === 'Gemm' || n.op === 'Flatten') return 2;
  if (n.op === 'Concat' || n.op === 'MatMul' || n.op === 'Cast' || UNARY.has(n.op) || ONNX_BINARY.has(n.op)) return r(n.inputs[0]);
  return undefined;
}

/**
 * Whether an ONNX Concat joins the channel (last) axis: axis -1 or rank - 1; axis 1 where the
 * rank is not known (the common [batch, d] case; ids of shape [batch, 1] give [batch, 1, d],
 * whose axis 1 is not the channels').
 */
function concatOnChannels(g: DepGraph, n: DepNode, input: string): boolean {
  const axis = attrNum(n, 'axis', 0);
  if (axis === -1) return true;
  const rank = onnxRank(g, input);
  return rank === undefined ? axis === 1 : axis === rank - 1;
}

/**
 * A constant value of the graph: an initializer, or a Constant node's value (PyTorch exports
 * axes and indices that way).
 */
export function constantTensor(g: DepGraph, name: string | undefined): ModelTensor | undefined {
  if (!name) return undefined;
  return g.initializers.get(name) ?? (g.producer.get(name)?.op === 'Constant' ? g.ir.tensors.find((x) => x.name === name) : undefined);
}

/**
 * The axes of a ReduceSum/ReduceMean/Unsqueeze node (an attribute before opset 13/18, a constant
 * input after).
 */
export function nodeAxes(g: DepGraph, n: DepNode): number[] | undefined {
  if (Array.isArray(n.attrs.axes)) return n.attrs.axes as number[];
  const t = constantTensor(g, n.inputs[1]);
  if (!t) return undefined;
  const src = t.storage.source;
  if (src.kind === 'values') return Array.from(src.values as ArrayLike<number>, Number);
  if (src.kind === 'bytes') {
    const dv = new DataView(src.bytes.buffer, src.bytes.byteOffset, src.bytes.byteLength);
    const out: number[] = [];
    const size = t.storage.dtype === 'int64' ? 8 : 4;
    for (let o = 0; o + size <= src.bytes.byteLength; o += size) out.push(size === 8 ? Number(dv.getBigInt64(o, true)) : dv.getInt32(o, true));
    return out;
  }
  return undefined;
}

/**
 * A Concat on axis 1 of [batch, 1, dim] values, each an Unsqueeze on axis 1 of a [batch, dim]
 * value: fields stacked as [batch, fields, dim]. Their common `dim`, else undefined.
 */
export function fieldStackDim(g: DepGraph, concat: DepNode): number | undefined {
  if (concat.op !== 'Concat' || attrNum(concat, 'axis', 0) !== 1) return undefined;
  let dim: number | undefined;
  for (const i of concat.inputs) {
    const u = g.producer.get(i);
    if (!u || u.op !== 'Unsqueeze') return undefined;
    const axes = nodeAxes(g, u);
    if (!axes || axes.length !== 1 || axes[0] !== 1) return undefined;
    const w = widthOf(g, u.inputs[0]);
    if (w === undefined || (dim !== undefined && w !== dim)) return undefined;
    dim = w;
  }
  return dim;
}

/** Every value computed from `value` (itself included). */
function forwardValues(g: DepGraph, value: string): Set<string> {
  const out = new Set<string>([value]);
  const todo = [value];
  for (let v = todo.pop(); v !== undefined; v = todo.pop()) {
    for (const n of g.consumers.get(v) ?? []) {
      for (const o of n.outputs) {
        if (!out.has(o)) {
          out.add(o);
          todo.push(o);
        }
      }
    }
  }
  return out;
}

/** The source node of the channels of `value`, going back through unary ops, Flatten and constant biases. */
function traceSource(g: DepGraph, value: string, acts: string[] = []): { source: ChannelSource; start: string; acts: string[] } | undefined {
  for (let depth = 0; depth < 500; depth++) {
    const n = g.producer.get(value);
    if (!n) return undefined;
    const s = sourceAt(g, n);
    if (s) return { source: s.source, start: s.start, acts };
    if (UNARY.has(n.op) || n.op === 'Flatten' || (n.op === 'Unsqueeze' && g.ir.format === 'onnx')) {
      value = n.inputs[0];
      continue;
    }
    if (g.ir.format === 'onnx' && (n.op === 'Add' || n.op === 'Sub') && n.inputs.length === 2) {
      const c = n.inputs.findIndex((i) => g.initializers.has(i));
      if (c < 0) return undefined;
      value = n.inputs[1 - c];
      continue;
    }
    return undefined;
  }
  return undefined;
}

/** When `n` produces channels (a table lookup or a dense layer), the source and the value to follow. */
function sourceAt(g: DepGraph, n: DepNode): { source: ChannelSource; start: string } | undefined {
  if (g.ir.format === 'onnx') {
    if (n.op === 'Gather' && attrNum(n, 'axis', 0) === 0) {
      const t = g.initializers.get(n.inputs[0]);
      if (t && t.shape.length === 2) return { source: { kind: 'table', tensor: t.name, node: n.name, width: t.shape[1] }, start: n.outputs[0] };
    }
    if (n.op === 'MatMul') {
      const t = g.initializers.get(n.inputs[1]);
      if (t && t.shape.length === 2 && !g.initializers.has(n.inputs[0])) return { source: { kind: 'neurons', tensor: t.name, node: n.name, width: t.shape[1] }, start: n.outputs[0] };
    }
    if (n.op === 'Gemm') {
      const t = g.initializers.get(n.inputs[1]);
      if (t && t.shape.length === 2 && !attrNum(n, 'transA', 0)) {
        return { source: { kind: 'neurons', tensor: t.name, node: n.name, width: attrNum(n, 'transB', 0) ? t.shape[0] : t.shape[1] }, start: n.outputs[0] };
      }
    }
    return undefined;
  }
  if (n.op === 'Embedding' && n.table) return { source: { kind: 'table', tensor: n.table.name, node: n.name, width: n.table.shape[1] }, start: n.outputs[0] };
  if (n.op === 'Dense' && n.kernel && n.kernel.shape.length === 2) return { source: { kind: 'neurons', tensor: n.kernel.name, node: n.name, width: n.kernel.shape[1] }, start: n.outputs[0] };
  return undefined;
}

/** Every channel source of the graph (tables read by Gather/Embedding, dense layers), in node order. */
export function channelSources(g: DepGraph): ChannelSource[] {
  const out: ChannelSource[] = [];
  const frozen = frozenTensors(g.ir);
  for (const n of g.nodes) {
    const s = sourceAt(g, n);
    if (s && !frozen.has(s.source.tensor)) out.push(s.source);
  }
  return out;
}

/**
 * The channel group of a source: everything that must shrink with its channels. Throws a
 * ModelFileError naming the op where the channels cannot be followed.
 */
export function channelGroup(g: DepGraph, first: ChannelSource): ChannelGroup {
  const ir = g.ir;
  const slices: ParamSlice[] = [];
  const sources: ChannelSource[] = [];
  const seenSource = new Set<string>();
  const pending: ChannelSource[] = [first];
  const visited = new Set<string>();
  /** values computed from a field stack this group's channels entered */
  const stackDerived = new Set<string>();
  let simple = true; // one source, unary-only paths to consumers: bias compensation applies
  let linear = true; // no activation, constant, coupling or reduction between the source and its consumers
  const comp: NonNullable<ChannelGroup['compensation']> = { bias: '', acts: [], consumers: [] };
  const W = first.width;
  const addSlice = (s: ParamSlice): void => {
    if (!slices.some((x) => x.tensor === s.tensor && x.axis === s.axis && x.offset === s.offset)) slices.push(s);
  };

  while (pending.length) {
    const src = pending.shift()!;
    if (seenSource.has(src.node)) continue;
    seenSource.add(src.node);
    if (src.width !== W) refuse(ir, `channels of ${first.node} (${W} wide) are combined element-wise with ${src.node} (${src.width} wide)`);
    sources.push(src);
    const node = g.nodes.find((n) => n.name === src.node)!;
    const start = sourceAt(g, node)!.start;
    let acts: string[] = [];
    if (src.kind === 'table') {
      addSlice({ tensor: src.tensor, axis: 1, offset: 0, width: W, kind: 'producer' });
    } else if (ir.format === 'onnx') {
      const transB = node.op === 'Gemm' && attrNum(node, 'transB', 0) === 1;
      addSlice({ tensor: src.tensor, axis: transB ? 0 : 1, offset: 0, width: W, kind: 'producer' });
      if (node.op === 'Gemm' && node.inputs[2] && g.initializers.has(node.inputs[2])) {
        const c = g.initializers.get(node.inputs[2])!;
        if (c.shape.length === 0 || c.shape[c.shape.length - 1] === 1) {
          // a broadcast bias fits any width; only the exact folding of constant neurons is lost
          simple = false;
        } else {
          addSlice({ tensor: c.name, axis: c.shape.length - 1, offset: 0, width: W, kind: 'bias' });
          comp.bias = c.name;
        }
      }
    } else {
      addSlice({ tensor: src.tensor, axis: 1, offset: 0, width: W, kind: 'producer' });
      if (node.bias) {
        addSlice({ tensor: node.bias.name, axis: 0, offset: 0, width: W, kind: 'bias' });
        comp.bias = node.bias.name;
      }
      const act = String(node.attrs.activation ?? 'linear');
      if (act !== 'linear') acts = [act];
    }

    // stack: the value is a [batch, fields, dim] stack of field embeddings and these channels are
    // those of field `stack` (PyTorch's DeepFM: Unsqueeze on axis 1 -> Concat on axis 1)
    const queue: Array<{ value: string; offset: number; acts: string[]; stack?: number }> = [{ value: start, offset: 0, acts }];
    while (queue.length) {
      const cur = queue.shift()!;
      const key = `${cur.value}@${cur.offset}${cur.stack === undefined ? '' : `#${cur.stack}`}`;
      if (visited.has(key)) continue;
      visited.add(key);
      if (g.outputs.has(cur.value)) {
        refuse(ir, `the channels of ${first.node} reach the model output "${cur.value}": pruning them would change the output's shape`);
      }
      const users = g.consumers.get(cur.value) ?? [];
      for (const n of users) {
        const where = `${n.op} node "${n.name}"`;
        const push = (value: string, offset: number, act?: string): void => {
          queue.push({ value, offset, acts: act ? [...cur.acts, act] : cur.acts });
        };
        const couple = (other: string): void => {
          simple = false;
          linear = false;
          // another function of the same stacked channels (the FM's sum squared minus the sum of
          // squares): the walk reaches it from the stack too
          if (stackDerived.has(other)) return;
          const t = traceSource(g, other);
          if (!t || cur.offset !== 0) {
            refuse(ir, `cannot follow the channels of ${first.node} through ${where}: its other input "${other}" does not come straight from an embedding table or a dense layer`);
          }
          if (!seenSource.has(t.source.node)) pending.push(t.source);
        };
        if (UNARY.has(n.op)) {
          const act = n.op === 'Activation' ? String(n.attrs.activation ?? 'linear') : n.op;
          const identity = act === 'linear' || act === 'Identity' || act === 'Dropout';
          if (!identity) linear = false;
          push(n.outputs[0], cur.offset, identity ? undefined : act);
          continue;
        }
        if (ir.format === 'onnx') {
          const linearOp = n.op === 'Concat' || n.op === 'MatMul' || n.op === 'Gemm';
          if (!linearOp) linear = false;
          if (n.op === 'Unsqueeze' && cur.stack === undefined && n.inputs[0] === cur.value) {
            const axes = nodeAxes(g, n);
            const readers = g.consumers.get(n.outputs[0]) ?? [];
            const stack = readers.length === 1 && readers[0].op === 'Concat' && attrNum(readers[0], 'axis', 0) === 1 ? readers[0] : undefined;
            if (!axes || axes.length !== 1 || axes[0] !== 1 || !stack || fieldStackDim(g, stack) !== W) {
              refuse(ir, `cannot follow the channels of ${first.node} through ${where}: not one of equally wide fields stacked on axis 1`);
            }
            // every field of the stack shares these channels (the FM sums them across fields)
            for (const other of stack.inputs) if (other !== n.outputs[0]) couple(other);
            for (const v of forwardValues(g, stack.outputs[0])) stackDerived.add(v);
            queue.push({ value: stack.outputs[0], offset: cur.offset, acts: cur.acts, stack: stack.inputs.indexOf(n.outputs[0]) });
            continue;
          }
          if (cur.stack !== undefined) {
            if (n.op === 'ReduceSum' && n.inputs[0] === cur.value) {
              const axes = nodeAxes(g, n);
              if (axes && axes.length === 1 && axes[0] === 1 && attrNum(n, 'keepdims', 1) === 0) {
                push(n.outputs[0], cur.offset); // summed over the fields: [batch, dim]
                continue;
              }
            }
            if (n.op === 'Mul' && n.inputs.length === 2 && n.inputs.every((i) => i === cur.value)) {
              queue.push({ value: n.outputs[0], offset: cur.offset, acts: cur.acts, stack: cur.stack });
              continue;
            }
            if (n.op === 'Flatten' && attrNum(n, 'axis', 1) === 1) {
              // field k's channels are columns k*dim .. k*dim+dim-1 of the flattened stack
              push(n.outputs[0], cur.stack * W + cur.offset);
              continue;
            }
            refuse(ir, `cannot follow the channels of ${first.node} through ${where}: it reads the stacked fields in a way the walk does not know`);
          }
          if (ONNX_BINARY.has(n.op) && n.inputs.length === 2) {
            const ci = n.inputs.findIndex((i) => g.initializers.has(i));
            if (ci >= 0 && n.inputs[1 - ci] === cur.value) {
              const c = g.initializers.get(n.inputs[ci])!;
              const last = c.shape.length ? c.shape[c.shape.length - 1] : 1;
              if (last !== 1) {
                const full = widthOf(g, cur.value);
                if (full === undefined || last !== full) refuse(ir, `cannot follow the channels of ${first.node} through ${where}: constant ${c.name} of shape [${c.shape.join(', ')}] does not match the channel axis`);
                addSlice({ tensor: c.name, axis: c.shape.length - 1, offset: cur.offset, width: W, kind: 'bias' });
                // the bias of a MatMul source (before any activation); any other constant op
                // on the way makes the constant a removed neuron passes on unknown here
                if (n.op === 'Add' && cur.acts.length === 0 && sources.length === 1 && !comp.bias) comp.bias = c.name;
                else simple = false;
              } else simple = false; // a broadcast constant: fits any width, but constant neurons are no longer act(bias)
              push(n.outputs[0], cur.offset);
              continue;
            }
            if (ci < 0) {
              const other = n.inputs[0] === cur.value ? n.inputs[1] : n.inputs[0];
              if (other !== cur.value) couple(other);
              push(n.outputs[0], cur.offset);
              continue;
            }
          }
          if (n.op === 'Concat') {
            const axis = attrNum(n, 'axis', 0);
            if (!concatOnChannels(g, n, cur.value)) refuse(ir, `cannot follow the channels of ${first.node} through ${where}: concatenation on axis ${axis}, not the channel axis of its rank-${onnxRank(g, cur.value) ?? '?'} inputs`);
            let off = 0;
            for (const i of n.inputs) {
              if (i === cur.value) push(n.outputs[0], off + cur.offset);
              const w = widthOf(g, i);
              if (w === undefined) refuse(ir, `cannot follow the channels of ${first.node} through ${where}: the width of its input "${i}" is unknown`);
              off += w;
            }
            continue;
          }
          if ((n.op === 'MatMul' || n.op === 'Gemm') && n.inputs[0] === cur.value && g.initializers.has(n.inputs[1])) {
            const k = g.initializers.get(n.inputs[1])!;
            if (k.shape.length !== 2 || (n.op === 'Gemm' && attrNum(n, 'transA', 0))) refuse(ir, `cannot follow the channels of ${first.node} into ${where}`);
            const axis = n.op === 'Gemm' && attrNum(n, 'transB', 0) ? 1 : 0;
            addSlice({ tensor: k.name, axis, offset: cur.offset, width: W, kind: 'consumer' });
            let bias: string | undefined;
            if (n.op === 'Gemm' && n.inputs[2] && g.initializers.has(n.inputs[2])) bias = n.inputs[2];
            if (n.op === 'MatMul') {
              const adds = g.consumers.get(n.outputs[0]) ?? [];
              if (adds.length === 1 && adds[0].op === 'Add') bias = adds[0].inputs.find((i) => g.initializers.has(i));
            }
            comp.consumers.push({ kernel: k.name, axis, offset: cur.offset, bias });
            continue;
          }
          if ((n.op === 'ReduceSum' || n.op === 'ReduceMean') && n.inputs[0] === cur.value) {
            const axes = nodeAxes(g, n);
            if (axes && axes.length === 1 && (axes[0] === 1 || axes[0] === -1)) {
              simple = false;
              if (n.op === 'ReduceMean') refuse(ir, `${where} averages over the channels of ${first.node}: removing channels would change the mean`);
              continue;
            }
          }
          refuse(ir, `cannot follow the channels of ${first.node} through ${where}`);
        } else {
          if (n.op !== 'Flatten' && n.op !== 'Concatenate' && n.op !== 'Dense') linear = false;
          if (n.op === 'Flatten') {
            const s = tfjsShape(g, cur.value);
            if (!s) refuse(ir, `cannot follow the channels of ${first.node} through ${where}: the shape it flattens is not known from the model.json`);
            if (s.slice(0, -1).reduce((a, b) => a * b, 1) !== 1) refuse(ir, `cannot follow the channels of ${first.node} through ${where}: it flattens more than one position`);
            push(n.outputs[0], cur.offset);
            continue;
          }
          if (TFJS_ELEMENTWISE.has(n.op)) {
            simple = false;
            if (n.op === 'Average') refuse(ir, `cannot follow the channels of ${first.node} through ${where}`);
            for (const other of n.inputs) if (other !== cur.value) couple(other);
            push(n.outputs[0], cur.offset);
            continue;
          }
          if (n.op === 'Dot' && n.inputs.length === 2 && !n.attrs.normalize) {
            const axes = n.attrs.axes;
            const ok = axes === 1 || axes === -1 || (Array.isArray(axes) && axes.every((a) => a === 1 || a === -1));
            if (ok) {
              simple = false;
              const other = n.inputs[0] === cur.value ? n.inputs[1] : n.inputs[0];
              if (other !== cur.value) couple(other);
              continue;
            }
          }
          if (n.op === 'Concatenate') {
            const s = tfjsShape(g, cur.value);
            const axis = attrNum(n, 'axis', -1);
            if (!s || !(axis === -1 || axis === s.length)) refuse(ir, `cannot follow the channels of ${first.node} through ${where}: concatenation on axis ${axis}`);
            let off = 0;
            for (const i of n.inputs) {
              if (i === cur.value) push(n.outputs[0], off + cur.offset);
              const w = widthOf(g, i);
              if (w === undefined) refuse(ir, `cannot follow the channels of ${first.node} through ${where}: the width of its input "${i}" is unknown`);
              off += w;
            }
            continue;
          }
          if (n.op === 'Dense' && n.kernel) {
            addSlice({ tensor: n.kernel.name, axis: 0, offset: cur.offset, width: W, kind: 'consumer' });
            comp.consumers.push({ kernel: n.kernel.name, axis: 0, offset: cur.offset, bias: n.bias?.name });
            continue;
          }
          refuse(ir, `cannot follow the channels of ${first.node} through ${where}`);
        }
      }
    }
  }
  // the first source's own bias or activation comes before the consumers too
  if (sources.length !== 1 || slices.some((x) => x.kind === 'bias') || (first.kind === 'neurons' && unaryChain(g, first)?.length !== 0)) linear = false;
  const group: ChannelGroup = { sources, width: W, slices, linear };
  if (simple && sources.length === 1 && first.kind === 'neurons') {
    // activation chain from the source to its consumers: the same on every path when the
    // only ops between are unary (recompute along the single path)
    const acts = unaryChain(g, first);
    if (acts) group.compensation = { bias: comp.bias, acts, consumers: comp.consumers };
  }
  return group;
}

/** The activations between a neuron source and its consumers when every path is the same unary chain. */
function unaryChain(g: DepGraph, s: ChannelSource): string[] | undefined {
  const node = g.nodes.find((n) => n.name === s.node)!;
  const acts: string[] = [];
  if (g.ir.format !== 'onnx') {
    const a = String(node.attrs.activation ?? 'linear');
    if (a !== 'linear') acts.push(a.toLowerCase());
  }
  let value = node.outputs[0];
  for (let d = 0; d < 100; d++) {
    const users = g.consumers.get(value) ?? [];
    if (users.length !== 1) return acts;
    const n = users[0];
    if (UNARY.has(n.op)) {
      const a = n.op === 'Activation' ? String(n.attrs.activation ?? 'linear') : n.op;
      if (a !== 'linear' && a !== 'Identity' && a !== 'Dropout') acts.push(a.toLowerCase());
      value = n.outputs[0];
      continue;
    }
    if (g.ir.format === 'onnx' && n.op === 'Add' && n.inputs.some((i) => g.initializers.has(i))) {
      value = n.outputs[0];
      continue;
    }
    return acts;
  }
  return acts;
}

/** Applies an activation by name (lower case), for the value a constant neuron passes on. */
export function applyActivation(acts: string[], x: number): number | undefined {
  for (const a of acts) {
    if (a === 'relu') x = Math.max(0, x);
    else if (a === 'sigmoid') x = 1 / (1 + Math.exp(-x));
    else if (a === 'tanh') x = Math.tanh(x);
    else return undefined;
  }
  return x;
}

/**
 * Marks the `drop` entries of smallest value (non-negative importances) for removal: exact
 * selection (no sort of the whole array), ties dropped in index order. 1 = drop.
 */
export function selectLowest(importance: Float32Array, drop: number): Uint8Array {
  const n = importance.length;
  const out = new Uint8Array(n);
  if (drop <= 0) return out;
  if (drop >= n) return out.fill(1);
  const sel = new MagnitudeSelector();
  sel.addPass1(importance);
  if (sel.size !== n) throw new RangeError('importance holds NaNs');
  sel.beginPass2([drop]);
  sel.addPass2(importance);
  const thr = sel.results()[0];
  let below = 0;
  for (let i = 0; i < n; i++) if (importance[i] < thr) below++;
  let ties = drop - below;
  for (let i = 0; i < n; i++) {
    const v = importance[i];
    if (v < thr) out[i] = 1;
    else if (v === thr && ties > 0) {
      out[i] = 1;
      ties--;
    }
  }
  return out;
}

/** Number of items kept out of n for a keep fraction or a sparsity (exactly one given). */
export function keptCount(n: number, s: { keep?: number; sparsity?: number }, file: string, min = 1): number {
  if ((s.keep === undefined) === (s.sparsity === undefined)) throw new ModelFileError(file, 'give exactly one of keep (fraction kept) and sparsity (fraction removed)');
  const f = s.keep !== undefined ? 1 - s.keep : (s.sparsity as number);
  if (!(f >= 0 && f <= 1)) throw new ModelFileError(file, `${s.keep !== undefined ? 'keep' : 'sparsity'} must be in [0, 1], got ${s.keep ?? s.sparsity}`);
  const drop = Math.floor(f * n + 1e-9);
  return Math.max(Math.min(min, n), n - drop);
}

/** Removes indices along `axis` of a row-major tensor: `dropAt[i] = 1` removes index i of that axis. */
export function dropAlongAxis(values: Float32Array, shape: number[], axis: number, dropAt: Uint8Array): { values: Float32Array; shape: number[] } {
  if (dropAt.length !== shape[axis]) throw new Error(`internal: drop mask of ${dropAt.length} for axis ${axis} of [${shape.join(', ')}]`);
  const kept: number[] = [];
  for (let i = 0; i < dropAt.length; i++) if (!dropAt[i]) kept.push(i);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const dim = shape[axis];
  const out = new Float32Array(outer * kept.length * inner);
  let o = 0;
  for (let a = 0; a < outer; a++) {
    for (const k of kept) {
      const base = (a * dim + k) * inner;
      out.set(values.subarray(base, base + inner), o);
      o += inner;
    }
  }
  const newShape = shape.slice();
  newShape[axis] = kept.length;
  return { values: out, shape: newShape };
}

/** Calls cb(j, flatIndex) for every element of the slice [offset, offset + width) along `axis`. */
export function forEachIndexInSlice(shape: number[], axis: number, offset: number, width: number, cb: (j: number, i: number) => void): void {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const dim = shape[axis];
  for (let a = 0; a < outer; a++) {
    for (let j = 0; j < width; j++) {
      const base = (a * dim + offset + j) * inner;
      for (let i = 0; i < inner; i++) cb(j, base + i);
    }
  }
}
