// Runs the recommender subset of an ONNX graph with TF.js ops, so that ONNX models can be
// fine-tuned and used as distillation teachers with the same training code as TF.js models.
// Trainable float initializers become tf.Variables (their gradients flow through the ops; the
// gradient of Gather is our UnsortedSegmentSum kernel on WASM/CPU), everything else becomes a
// constant. The graph is checked and each node compiled to a closure once, at build time, so
// an unsupported op is reported before any data is read, and `predict` does no parsing.
//
// TF.js has no int64: int64 inputs and constants become int32. Constants whose values do not fit
// are refused, except as the starts/ends of a Slice, where exporters write INT64_MAX / INT64_MIN
// to mean "to the end": those are clamped, which ONNX's clamping makes equivalent.

import { isFloatDtype } from './dtype.js';
import * as tf from '@tensorflow/tfjs';
import { DType, GraphNode, GraphValueInfo, ModelFileError, ModelIR, ModelTensor, TensorRole } from './ir.js';
import { readTensorBytes, readTensorFloat32, tensorElementCount } from './tensor-data.js';

export const SUPPORTED_ONNX_OPS = [
  'Gather', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul', 'Div', 'Concat', 'Relu', 'Sigmoid', 'Tanh', 'Flatten',
  'Reshape', 'Squeeze', 'Unsqueeze', 'ReduceSum', 'ReduceMean', 'Cast', 'Constant', 'Identity', 'Transpose',
  'Slice', 'Shape',
] as const;

const TRAINABLE_ROLES: ReadonlySet<TensorRole> = new Set(['embedding', 'dense-kernel', 'bias', 'weight', 'norm']);
/** float dtypes whose trained values can be written back in the same dtype */
const TRAINABLE_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'float64']);
const INT_DTYPES: ReadonlySet<DType> = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

export interface OnnxTfjsFunction {
  /** trainable initializers by IR tensor name (float32 copies of the stored values) */
  variables: Map<string, tf.Variable>;
  /** every other initializer / Constant output, by name (int64 -> int32) */
  constants: Map<string, tf.Tensor>;
  /** graph inputs the caller feeds (initializers excluded), with ONNX dtypes and shapes */
  inputs: GraphValueInfo[];
  /** graph output names, in order */
  outputs: string[];
  /** runs the graph; returns every graph output by name. Inputs: int ids as int32, floats as float32. */
  run(inputs: Record<string, tf.Tensor>): Record<string, tf.Tensor>;
  /** runs the graph and returns its first output */
  predict(inputs: Record<string, tf.Tensor>): tf.Tensor;
  /** frees the variables and constants */
  dispose(): void;
}

export interface BuildOnnxFunctionOptions {
  /** which tensors become variables; default: float tensors with a trainable role */
  trainable?: (t: ModelTensor) => boolean;
}

type Env = Map<string, tf.Tensor>;
type Kernel = (env: Env) => void;

function defaultTrainable(t: ModelTensor): boolean {
  return t.trainable && TRAINABLE_ROLES.has(t.role) && TRAINABLE_DTYPES.has(t.dtype);
}

function attrInt(node: GraphNode, name: string, fallback: number): number {
  const v = node.attrs[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number') throw new Error(`attribute '${name}' of node '${node.name}' is not an integer`);
  return v;
}

function attrFloat(node: GraphNode, name: string, fallback: number): number {
  const v = node.attrs[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number') throw new Error(`attribute '${name}' of node '${node.name}' is not a number`);
  return v;
}

function attrInts(node: GraphNode, name: string): number[] | undefined {
  const v = node.attrs[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) {
    throw new Error(`attribute '${name}' of node '${node.name}' is not a list of integers (values beyond 2^53 are not supported)`);
  }
  return v as number[];
}

function normAxis(axis: number, rank: number, node: GraphNode): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`node '${node.name}': axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** ONNX TensorProto.DataType code -> the TF.js dtype we compute with. */
function tfDtypeOfOnnxCode(code: number, node: GraphNode): tf.DataType {
  switch (code) {
    case 1: // float
    case 10: // float16
    case 11: // double
    case 16: // bfloat16
      return 'float32';
    case 2: case 3: case 4: case 5: case 6: case 7: case 12: case 13:
      return 'int32';
    case 9:
      return 'bool';
    default:
      throw new Error(`node '${node.name}': Cast to ONNX type ${code} is not supported`);
  }
}

/** Values of a small int tensor (shapes, axes, starts): read synchronously from the backend. */
function intValues(t: tf.Tensor, what: string, node: GraphNode): number[] {
  if (t.dtype !== 'int32') throw new Error(`node '${node.name}': ${what} must be an integer tensor, got ${t.dtype}`);
  if (t.rank > 1) throw new Error(`node '${node.name}': ${what} must be 1-D`);
  return Array.from(t.dataSync() as Int32Array);
}

function reshapeTarget(x: tf.Tensor, spec: number[], allowZero: boolean, node: GraphNode): number[] {
  const out = spec.map((d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= x.rank) throw new Error(`node '${node.name}': Reshape copies dim ${i} of a rank-${x.rank} input`);
      return x.shape[i];
    }
    return d;
  });
  const minus = out.filter((d) => d === -1).length;
  if (minus > 1) throw new Error(`node '${node.name}': Reshape has more than one -1`);
  if (minus === 1) {
    const known = out.reduce((a, d) => (d === -1 ? a : a * d), 1);
    const inferred = known === 0 ? 0 : x.size / known;
    if (!Number.isInteger(inferred)) throw new Error(`node '${node.name}': cannot reshape [${x.shape}] to [${spec}]`);
    out[out.indexOf(-1)] = inferred;
  }
  return out;
}

function sliceAxis(x: tf.Tensor, axis: number, start: number, end: number, step: number, node: GraphNode): tf.Tensor {
  if (step === 0) throw new Error(`node '${node.name}': Slice step 0`);
  const dim = x.shape[axis];
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  if (step === 1) {
    const begin = new Array<number>(x.rank).fill(0);
    const size = x.shape.slice();
    begin[axis] = s;
    size[axis] = Math.max(0, e - s);
    return tf.slice(x, begin, size);
  }
  const idx: number[] = [];
  if (step > 0) for (let i = s; i < e; i += step) idx.push(i);
  else for (let i = s; i > e; i += step) idx.push(i);
  return tf.gather(x, tf.tensor1d(idx, 'int32'), axis);
}

/** Promotes one side of a binary op when ONNX would have matched dtypes (int32 vs float mixes come from our int64 -> int32 mapping only). */
function binary(op: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor, a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.dtype !== b.dtype) {
    if (a.dtype === 'float32') b = tf.cast(b, 'float32');
    else if (b.dtype === 'float32') a = tf.cast(a, 'float32');
  }
  return op(a, b);
}

function matMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  // numpy semantics for 1-D operands
  const a2 = a.rank === 1 ? tf.expandDims(a, 0) : a;
  const b2 = b.rank === 1 ? tf.expandDims(b, 1) : b;
  let y = tf.matMul(a2 as tf.Tensor2D, b2 as tf.Tensor2D);
  if (a.rank === 1) y = tf.squeeze(y, [y.rank - 2]);
  if (b.rank === 1) y = tf.squeeze(y, [y.rank - 1]);
  return y;
}

function unsupported(node: GraphNode, file: string): ModelFileError {
  return new ModelFileError(
    file,
    `unsupported ONNX op '${node.op}' in node '${node.name}': PruneScope can train graphs made of ${SUPPORTED_ONNX_OPS.join(', ')}`,
  );
}

/** Opset of the default domain, from the IR metadata ('ai.onnx=17,...'); 0 when unknown. */
function defaultOpset(ir: ModelIR): number {
  for (const part of (ir.metadata.opset_import ?? '').split(',')) {
    const [domain, version] = part.split('=');
    if (domain === 'ai.onnx' || domain === '') return Number(version) || 0;
  }
  return 0;
}

function compileNode(node: GraphNode, opset: number, clamped: ReadonlySet<string>): Kernel {
  const ins = node.inputs;
  const outName = node.outputs[0];
  const get = (env: Env, i: number): tf.Tensor => {
    const name = ins[i];
    const v = env.get(name);
    if (!v) throw new Error(`node '${node.name}' reads '${name}', which no input, initializer or earlier node gives`);
    return v;
  };
  const opt = (env: Env, i: number): tf.Tensor | undefined => (ins[i] ? get(env, i) : undefined);
  const one = (f: (env: Env) => tf.Tensor): Kernel => (env) => {
    env.set(outName, f(env));
  };
  // a clamped int64 constant is only exact as a Slice start/end
  ins.forEach((name, i) => {
    if (clamped.has(name) && !(node.op === 'Slice' && (i === 1 || i === 2))) {
      throw new Error(`node '${node.name}' reads int64 constant '${name}', whose values do not fit in int32 (TF.js has no int64)`);
    }
  });
  switch (node.op) {
    case 'Identity':
      return one((env) => get(env, 0));
    case 'Relu':
      return one((env) => tf.relu(get(env, 0)));
    case 'Sigmoid':
      return one((env) => tf.sigmoid(get(env, 0)));
    case 'Tanh':
      return one((env) => tf.tanh(get(env, 0)));
    case 'Add':
      return one((env) => binary(tf.add, get(env, 0), get(env, 1)));
    case 'Sub':
      return one((env) => binary(tf.sub, get(env, 0), get(env, 1)));
    case 'Mul':
      return one((env) => binary(tf.mul, get(env, 0), get(env, 1)));
    case 'Div':
      return one((env) => {
        const a = get(env, 0);
        const b = get(env, 1);
        // ONNX integer division truncates toward zero; tf.div on int32 floors
        if (a.dtype === 'int32' && b.dtype === 'int32') {
          return tf.tidy(() => tf.cast(tf.sign(tf.mul(a, b)), 'int32').mul(tf.floorDiv(tf.abs(a), tf.abs(b))));
        }
        return binary(tf.div, a, b);
      });
    case 'MatMul':
      return one((env) => matMul(get(env, 0), get(env, 1)));
    case 'Gemm': {
      const alpha = attrFloat(node, 'alpha', 1);
      const beta = attrFloat(node, 'beta', 1);
      const transA = attrInt(node, 'transA', 0) !== 0;
      const transB = attrInt(node, 'transB', 0) !== 0;
      return one((env) => {
        let y = tf.matMul(get(env, 0) as tf.Tensor2D, get(env, 1) as tf.Tensor2D, transA, transB) as tf.Tensor;
        if (alpha !== 1) y = tf.mul(y, alpha);
        const c = opt(env, 2);
        if (c) y = tf.add(y, beta === 1 ? c : tf.mul(c, beta));
        return y;
      });
    }
    case 'Gather': {
      const axisAttr = attrInt(node, 'axis', 0);
      return one((env) => {
        const x = get(env, 0);
        let idx = get(env, 1);
        const axis = normAxis(axisAttr, x.rank, node);
        if (idx.dtype !== 'int32') idx = tf.cast(idx, 'int32');
        // negative indices count from the end in ONNX; tf.gather has no such rule
        const dim = x.shape[axis];
        idx = tf.where(tf.less(idx, tf.scalar(0, 'int32')), tf.add(idx, tf.scalar(dim, 'int32')), idx);
        return tf.gather(x, idx, axis);
      });
    }
    case 'Concat': {
      const axis = attrInt(node, 'axis', Number.NaN);
      if (Number.isNaN(axis)) throw new Error(`node '${node.name}': Concat without an axis`);
      return one((env) => {
        const xs = ins.map((_, i) => get(env, i));
        return tf.concat(xs, normAxis(axis, xs[0].rank, node));
      });
    }
    case 'Flatten': {
      const axisAttr = attrInt(node, 'axis', 1);
      return one((env) => {
        const x = get(env, 0);
        const axis = axisAttr < 0 ? axisAttr + x.rank : axisAttr;
        const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
        return tf.reshape(x, [outer, outer === 0 ? 0 : x.size / outer]);
      });
    }
    case 'Reshape': {
      const allowZero = attrInt(node, 'allowzero', 0) !== 0;
      const shapeAttr = attrInts(node, 'shape'); // opset < 5
      return one((env) => {
        const x = get(env, 0);
        const spec = shapeAttr ?? intValues(get(env, 1), 'the shape input', node);
        return tf.reshape(x, reshapeTarget(x, spec, allowZero, node));
      });
    }
    case 'Squeeze': {
      const axesAttr = attrInts(node, 'axes');
      return one((env) => {
        const x = get(env, 0);
        const axesIn = opt(env, 1);
        const axes = axesAttr ?? (axesIn ? intValues(axesIn, 'axes', node) : undefined);
        if (!axes) return tf.squeeze(x);
        return tf.squeeze(x, axes.map((a) => normAxis(a, x.rank, node)));
      });
    }
    case 'Unsqueeze': {
      const axesAttr = attrInts(node, 'axes');
      return one((env) => {
        const x = get(env, 0);
        const axesIn = opt(env, 1);
        const axes = axesAttr ?? (axesIn ? intValues(axesIn, 'axes', node) : undefined);
        if (!axes) throw new Error(`node '${node.name}': Unsqueeze without axes`);
        const outRank = x.rank + axes.length;
        const norm = axes.map((a) => normAxis(a, outRank, node)).sort((a, b) => a - b);
        const shape: number[] = [];
        let src = 0;
        for (let i = 0; i < outRank; i++) shape.push(norm.includes(i) ? 1 : x.shape[src++]);
        return tf.reshape(x, shape);
      });
    }
    case 'ReduceSum':
    case 'ReduceMean': {
      const keep = attrInt(node, 'keepdims', 1) !== 0;
      const noopEmpty = attrInt(node, 'noop_with_empty_axes', 0) !== 0;
      const axesAttr = attrInts(node, 'axes');
      const mean = node.op === 'ReduceMean';
      return one((env) => {
        const x = get(env, 0);
        const axesIn = opt(env, 1);
        const axes = axesAttr ?? (axesIn ? intValues(axesIn, 'axes', node) : []);
        if (axes.length === 0 && noopEmpty) return x;
        const ax = axes.length === 0 ? undefined : axes.map((a) => normAxis(a, x.rank, node));
        return mean ? tf.mean(x, ax, keep) : tf.sum(x, ax, keep);
      });
    }
    case 'Cast': {
      const to = tfDtypeOfOnnxCode(attrInt(node, 'to', -1), node);
      return one((env) => {
        const x = get(env, 0);
        return x.dtype === to ? x : tf.cast(x, to);
      });
    }
    case 'Transpose': {
      const perm = attrInts(node, 'perm');
      return one((env) => tf.transpose(get(env, 0), perm));
    }
    case 'Shape': {
      const startAttr = attrInt(node, 'start', 0);
      const endAttr = node.attrs.end === undefined ? undefined : attrInt(node, 'end', 0);
      return one((env) => {
        const x = get(env, 0);
        const r = x.rank;
        const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
        const dims = x.shape.slice(clampIdx(startAttr), endAttr === undefined ? r : clampIdx(endAttr));
        return tf.tensor1d(dims, 'int32');
      });
    }
    case 'Slice': {
      const legacy = opset > 0 && opset < 10;
      const sAttr = attrInts(node, 'starts');
      const eAttr = attrInts(node, 'ends');
      const aAttr = attrInts(node, 'axes');
      return one((env) => {
        let x = get(env, 0);
        let starts: number[];
        let ends: number[];
        let axes: number[] | undefined;
        let steps: number[] | undefined;
        if (legacy || (sAttr && eAttr)) {
          if (!sAttr || !eAttr) throw new Error(`node '${node.name}': Slice needs starts and ends`);
          starts = sAttr;
          ends = eAttr;
          axes = aAttr;
        } else {
          starts = intValues(get(env, 1), 'starts', node);
          ends = intValues(get(env, 2), 'ends', node);
          const a = opt(env, 3);
          const s = opt(env, 4);
          axes = a ? intValues(a, 'axes', node) : undefined;
          steps = s ? intValues(s, 'steps', node) : undefined;
        }
        if (ends.length !== starts.length) throw new Error(`node '${node.name}': Slice starts and ends differ in length`);
        const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, x.rank, node));
        for (let i = 0; i < ax.length; i++) x = sliceAxis(x, ax[i], starts[i], ends[i], steps?.[i] ?? 1, node);
        return x;
      });
    }
    case 'Constant':
      // its value was loaded with the initializers (the IR lists Constant outputs as tensors)
      return () => undefined;
    default:
      throw new Error(`unsupported op '${node.op}'`);
  }
}

async function constantTensor(t: ModelTensor, file: string, clamped: Set<string>): Promise<tf.Tensor | undefined> {
  const shape = t.shape;
  const n = tensorElementCount(shape);
  if (isFloatDtype(t.dtype)) return tf.tensor(await readTensorFloat32(t), shape, 'float32');
  if (t.dtype === 'bool') {
    const bytes = await readTensorBytes(t);
    return tf.tensor(Uint8Array.from(bytes.subarray(0, n), (b) => (b ? 1 : 0)), shape, 'bool');
  }
  if (!INT_DTYPES.has(t.dtype)) return undefined; // strings etc.: only an error if a node reads them
  const bytes = await readTensorBytes(t);
  const size = t.storage.dtype === t.dtype ? bytes.byteLength / Math.max(n, 1) : 0;
  const out = new Int32Array(n);
  if (t.dtype === 'int64' || t.dtype === 'uint64') {
    if (size !== 8) throw new ModelFileError(file, `int64 tensor '${t.name}' holds ${bytes.byteLength} bytes for ${n} values`);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < n; i++) {
      const v = t.dtype === 'int64' ? dv.getBigInt64(i * 8, true) : dv.getBigUint64(i * 8, true);
      if (v < BigInt(INT32_MIN) || v > BigInt(INT32_MAX)) {
        clamped.add(t.name);
        out[i] = v < 0n ? INT32_MIN : INT32_MAX;
      } else {
        out[i] = Number(v);
      }
    }
  } else {
    const vals = await readTensorFloat32(t); // exact for every integer type up to 2^24
    for (let i = 0; i < n; i++) {
      if (Math.abs(vals[i]) > 2 ** 24) throw new ModelFileError(file, `integer tensor '${t.name}' has values beyond 2^24, not supported`);
      out[i] = vals[i];
    }
  }
  return tf.tensor(out, shape, 'int32');
}

/**
 * Compiles the main graph of an ONNX model to TF.js. Throws a ModelFileError naming the first
 * unsupported op and its node, before any tensor is created.
 */
export async function buildTfjsFunctionFromOnnx(ir: ModelIR, opts: BuildOnnxFunctionOptions = {}): Promise<OnnxTfjsFunction> {
  const file = ir.path;
  if (ir.format !== 'onnx') throw new ModelFileError(file, `expected an ONNX model, got ${ir.format}`);
  const nodes = ir.graph.nodes.filter((n) => n.scope === undefined);
  const supported = new Set<string>(SUPPORTED_ONNX_OPS);
  for (const n of nodes) if (!supported.has(n.op)) throw unsupported(n, file);
  const opset = defaultOpset(ir);
  const isTrainable = opts.trainable ?? defaultTrainable;

  const variables = new Map<string, tf.Variable>();
  const constants = new Map<string, tf.Tensor>();
  const clamped = new Set<string>();
  const produced = new Set(nodes.flatMap((n) => n.outputs));
  try {
    for (const t of ir.tensors) {
      // tensors of subgraphs never reach the main graph
      if (t.origin.includes('subgraph')) continue;
      if (isTrainable(t)) {
        if (!TRAINABLE_DTYPES.has(t.dtype)) throw new ModelFileError(file, `tensor '${t.name}' of dtype ${t.dtype} cannot be trained`);
        variables.set(t.name, tf.variable(tf.tensor(await readTensorFloat32(t), t.shape, 'float32'), true, `onnx/${t.name}`));
      } else {
        const c = await constantTensor(t, file, clamped);
        if (c) constants.set(t.name, c);
      }
    }
    const kernels = nodes.map((n) => {
      try {
        return compileNode(n, opset, clamped);
      } catch (e) {
        throw new ModelFileError(file, `node '${n.name}' (${n.op}): ${(e as Error).message}`, { cause: e });
      }
    });
    const inputs = ir.graph.inputs.filter((v) => !variables.has(v.name) && !constants.has(v.name) && !produced.has(v.name));
    const outputs = ir.graph.outputs.map((v) => v.name);

    const run = (feed: Record<string, tf.Tensor>): Record<string, tf.Tensor> => {
      const env: Env = new Map();
      for (const [k, v] of constants) env.set(k, v);
      for (const [k, v] of variables) env.set(k, v);
      for (const inp of inputs) {
        const v = feed[inp.name];
        if (!v) throw new Error(`ONNX graph input '${inp.name}' was not given (inputs: ${inputs.map((i) => i.name).join(', ')})`);
        env.set(inp.name, v.dtype === 'float32' || v.dtype === 'int32' || v.dtype === 'bool' ? v : tf.cast(v, 'float32'));
      }
      nodes.forEach((n, i) => {
        try {
          kernels[i](env);
        } catch (e) {
          throw new ModelFileError(file, `node '${n.name}' (${n.op}): ${(e as Error).message}`, { cause: e });
        }
      });
      const out: Record<string, tf.Tensor> = {};
      for (const o of outputs) {
        const v = env.get(o);
        if (!v) throw new ModelFileError(file, `graph output '${o}' is produced by no node`);
        out[o] = v;
      }
      return out;
    };
    return {
      variables,
      constants,
      inputs,
      outputs,
      run,
      predict: (feed) => run(feed)[outputs[0]],
      dispose: () => {
        for (const v of variables.values()) v.dispose();
        for (const c of constants.values()) c.dispose();
      },
    };
  } catch (e) {
    for (const v of variables.values()) v.dispose();
    for (const c of constants.values()) c.dispose();
    throw e;
  }
}
