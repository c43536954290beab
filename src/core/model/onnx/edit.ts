// Structural edits of an ONNX model read by onnx.ts: initializers added, replaced or removed,
// nodes inserted or removed, node inputs rewired, opset imports raised.
//
// Like onnx/write.ts, the ORIGINAL FILE BYTES are the template (onnx-proto only knows the ONNX
// 1.10 schema and would drop newer fields on re-encoding): every field of the model is copied
// verbatim at the protobuf wire level except what the edit touches. Only the inserted nodes and
// new initializers are encoded from scratch; a rewired node keeps all its fields but its
// `input` strings. The whole edit is validated (topological order, every input defined, opset
// compatibility) before any file is created.

import { onnx } from 'onnx-proto';
import { DType, ModelFileError, ModelIR } from '../ir.js';
import { OnnxNative } from '../onnx.js';
import { tensorElementCount } from '../tensor-data.js';
import { TensorBytes } from '../tensor-stream.js';
import { OnnxAttrValue, makeAttribute } from './build.js';
import { onnxDtypeCode } from './dtypes.js';
import {
  SpliceCtx,
  TensorLayout,
  TensorPlan,
  checkSpec,
  keyPrefixes,
  nativeOf,
  newTensorData,
  outputPaths,
  planNewTensor,
  planTensor,
  spliceAttribute,
  type EditedBody,
  spliceTensor,
  writeSplicedModel,
} from './splice.js';
import { Out, int64VarintBytes, lengthDelimited, parseFields, stringField, tagBytes, varintBytes } from './wire.js';

export type { OnnxAttrValue } from './build.js';

/** A node to insert. Attribute values are typed as in onnx/build.ts (`{ i }`, `{ f }`, ...). */
export interface OnnxNodeSpec {
  /** unique among the graph's node names, not empty */
  name: string;
  op: string;
  /** '' for an omitted optional input */
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, OnnxAttrValue>;
  /** '' (default) = ai.onnx */
  domain?: string;
}

export interface OnnxInitializerSpec {
  name: string;
  dtype: DType;
  shape: number[];
  /** little-endian stored bytes (int64 as 8 bytes, float16 as 2, ...), in memory or streamed */
  data: TensorBytes;
}

export interface OnnxGraphOutputSpec {
  name: string;
  /** with shape: the output's type is (re)written; without both: an existing output is kept as it is */
  dtype?: DType;
  /** dims; a string for a symbolic dim, -1 for unknown */
  shape?: Array<number | string>;
}

export interface OnnxGraphEdit {
  /**
   * Replace (in place: same position, all non-data fields of the TensorProto kept) or add (after
   * the last initializer). A name that is a Constant node's output (or a subgraph tensor) replaces
   * that tensor's value, unless the Constant node is removed, in which case it becomes an initializer.
   */
  setInitializers?: OnnxInitializerSpec[];
  /** main-graph initializers; a graph input of the same name (old exports) goes too */
  removeInitializers?: string[];
  /**
   * Before/after the node of that name (an original node, or one inserted earlier in this same
   * edit); neither = append at the end. Several inserts `after` the same node keep their order.
   */
  insertNodes?: Array<{ before?: string; after?: string; node: OnnxNodeSpec }>;
  /** names of original nodes */
  removeNodes?: string[];
  /**
   * Inputs named `from` of ORIGINAL nodes (all of them, or those named in `nodes`) become `to`.
   * Inserted nodes are never rewired: they are given with their final inputs (so that a node
   * inserted to transform `from` can still read it).
   */
  rewireInputs?: Array<{ from: string; to: string; nodes?: string[] }>;
  /**
   * Edits inside the subgraph of a main-graph node (a Loop or Scan body, an If branch: one level
   * deep), such as the Loop an nn.EmbeddingBag export gathers its rows in. `scope` names the
   * subgraph as the IR's GraphNode.scope does ("<node>/<attribute>"); nodes are named as in the
   * IR. Inserted nodes go before a node of that subgraph and may read the subgraph's values and the
   * main graph's (its outer scope), initializers this edit adds included.
   */
  subgraphEdits?: Array<{ scope: string; insertNodes?: Array<{ before: string; node: OnnxNodeSpec }>; removeNodes?: string[] }>;
  /** the new list of graph outputs (when given) */
  setGraphOutputs?: OnnxGraphOutputSpec[];
  /** domain '' or 'ai.onnx' = the default domain. Raised only, never lowered. */
  ensureOpsets?: Array<{ domain: string; version: number }>;
  /**
   * value_info entries to drop (tensors whose shape or dtype changed). Entries of replaced
   * initializers whose shape/dtype changed, of removed initializers and of removed nodes' outputs
   * are dropped without being listed.
   */
  dropValueInfo?: string[];
  /** drop every value_info entry (they are optional hints; ORT infers shapes again) */
  dropAllValueInfo?: boolean;
}

export interface WriteEditedOnnxOptions {
  /**
   * Without it: new and replaced tensors are inline; tensors that were in external data stay
   * external, copied into `<output name>.data`. With it: also new/replaced/inline initializers
   * of at least minBytes go to `fileName` next to the output.
   */
  externalData?: TensorLayout;
}

// ---------------------------------------------------------------------------------------------
// Opset knowledge

/** Lowest default-domain opset at which an op (as usually inserted by compression) exists. */
const MIN_OPSET: Readonly<Record<string, number>> = {
  DequantizeLinear: 10,
  QuantizeLinear: 10,
  MatMulInteger: 10,
  ConvInteger: 10,
  QLinearMatMul: 10,
  QLinearConv: 10,
  DynamicQuantizeLinear: 11,
  Einsum: 12,
  CastLike: 15,
  Reshape: 5,
  Concat: 4,
  Cast: 6,
  Add: 7,
  Sub: 7,
  Mul: 7,
  Div: 7,
  Gemm: 7,
  Gather: 1,
  MatMul: 1,
  Identity: 1,
};

/**
 * Default-domain ops whose interface changed (attribute became an input, attribute removed,
 * semantics changed) at these versions: raising the opset across one of them would change how
 * an existing node of that op is read, so such a raise is refused.
 */
const BREAKING_VERSIONS: Readonly<Record<string, number[]>> = {
  Add: [7], Sub: [7], Mul: [7], Div: [7], Pow: [7], PRelu: [7], Equal: [7], Greater: [7], Less: [7],
  And: [7], Or: [7], Xor: [7], Gemm: [7], Max: [6, 8], Min: [6, 8], Sum: [6, 8], Mean: [6, 8],
  Concat: [4], Reshape: [5], Tile: [6], Cast: [6],
  BatchNormalization: [6, 7, 9], Dropout: [7, 12], Scan: [9],
  Slice: [10], TopK: [10], Upsample: [9, 10], Resize: [11], Pad: [11], Clip: [11], Scatter: [11],
  Squeeze: [13], Unsqueeze: [13], ReduceSum: [13], Split: [13, 18],
  Softmax: [13], LogSoftmax: [13], Hardmax: [13],
  ReduceMean: [18], ReduceMax: [18], ReduceMin: [18], ReduceProd: [18], ReduceL1: [18], ReduceL2: [18],
  ReduceLogSum: [18], ReduceLogSumExp: [18], ReduceSumSquare: [18],
  GroupNormalization: [21],
};

/** Attributes that became inputs at a version: an inserted node using the attribute there is invalid. */
const ATTR_BECAME_INPUT: ReadonlyArray<{ op: string; attr: string; since: number }> = [
  { op: 'Squeeze', attr: 'axes', since: 13 },
  { op: 'Unsqueeze', attr: 'axes', since: 13 },
  { op: 'ReduceSum', attr: 'axes', since: 13 },
  { op: 'Split', attr: 'split', since: 13 },
  { op: 'Clip', attr: 'min', since: 11 },
  { op: 'Clip', attr: 'max', since: 11 },
  { op: 'Pad', attr: 'pads', since: 11 },
  { op: 'Slice', attr: 'starts', since: 10 },
  { op: 'Slice', attr: 'ends', since: 10 },
  { op: 'TopK', attr: 'k', since: 10 },
  ...['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'].map(
    (op) => ({ op, attr: 'axes', since: 18 }),
  ),
];

/** Lowest IR version that may carry a default-domain opset (onnx/helper.py's VERSION_TABLE). */
function minIrVersion(opset: number): number {
  if (opset <= 8) return 3;
  if (opset === 9) return 4;
  if (opset === 10) return 5;
  if (opset === 11) return 6;
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset === 21) return 10;
  return 11;
}

function isDefaultDomain(d: string | null | undefined): boolean {
  return !d || d === 'ai.onnx';
}

/** The model's default-domain (ai.onnx) opset version; 1 when it imports none. */
export function onnxDefaultOpset(ir: ModelIR): number {
  const native = nativeOf(ir, ir.path);
  let v = 0;
  for (const o of native.model.opsetImport ?? []) if (isDefaultDomain(o.domain)) v = Math.max(v, longNum(o.version));
  return v || 1;
}

function longNum(x: unknown): number {
  if (x === null || x === undefined) return 0;
  if (typeof x === 'number') return x;
  if (typeof x === 'object' && x !== null && 'toNumber' in x) return (x as { toNumber(): number }).toNumber();
  return Number(x);
}

// ---------------------------------------------------------------------------------------------

interface OrigNode {
  kind: 'orig';
  idx: number;
  name: string;
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  rewired: boolean;
  /** names the node's subgraphs read from the enclosing scope */
  outerRefs: string[];
}

interface NewNode {
  kind: 'new';
  name: string;
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  bytes: Uint8Array;
  attrs: Record<string, OnnxAttrValue>;
}

type NodeEntry = OrigNode | NewNode;

/** A node of an edited subgraph, by its index there. */
interface BodyNode {
  kind: 'body';
  idx: number;
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  outerRefs: string[];
}

/** Names a subgraph reads from enclosing scopes (used but not defined inside it). */
function outerRefsOfGraph(g: onnx.IGraphProto, out: Set<string>): void {
  const defined = new Set<string>();
  for (const v of g.input ?? []) defined.add(v.name ?? '');
  for (const t of g.initializer ?? []) defined.add(t.name ?? '');
  for (const s of g.sparseInitializer ?? []) defined.add(s.values?.name ?? '');
  for (const n of g.node ?? []) {
    for (const i of n.input ?? []) if (i && !defined.has(i)) out.add(i);
    const inner = new Set<string>();
    for (const a of n.attribute ?? []) {
      if (a.g) outerRefsOfGraph(a.g, inner);
      for (const sg of a.graphs ?? []) outerRefsOfGraph(sg, inner);
    }
    for (const i of inner) if (!defined.has(i)) out.add(i);
    for (const o of n.output ?? []) if (o) defined.add(o);
  }
}

function nodeOuterRefs(n: onnx.INodeProto): string[] {
  const s = new Set<string>();
  for (const a of n.attribute ?? []) {
    if (a.g) outerRefsOfGraph(a.g, s);
    for (const sg of a.graphs ?? []) outerRefsOfGraph(sg, s);
  }
  return [...s];
}

function encodeTypeProto(dtype: DType, shape: Array<number | string>): Uint8Array {
  const dim = shape.map((d) => {
    if (typeof d === 'string') return onnx.TensorShapeProto.Dimension.create({ dimParam: d });
    if (d === -1) return onnx.TensorShapeProto.Dimension.create({});
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`invalid dimension ${d}`);
    return onnx.TensorShapeProto.Dimension.create({ dimValue: d });
  });
  return onnx.TypeProto.encode(
    onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({ elemType: onnxDtypeCode(dtype), shape: onnx.TensorShapeProto.create({ dim }) }),
    }),
  ).finish();
}

/** A ValueInfoProto with a new type: name and type written, every other field of `orig` kept. */
function valueInfoBytes(src: Uint8Array | undefined, range: { start: number; end: number } | undefined, name: string, type: Uint8Array): Out {
  const out = new Out();
  stringField(out, 1, name);
  out.push(tagBytes(2, 2));
  out.push(varintBytes(type.length));
  out.push(type);
  if (src && range) for (const f of parseFields(src, range.start, range.end)) if (f.field !== 1 && f.field !== 2) out.push(src.subarray(f.start, f.end));
  return out;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Writes `ir` (read by readOnnxModel) with `edit` applied to `outPath`, atomically (temp files
 * + fsync + rename). Never writes to the original model or its data files. Throws
 * ModelFileError before creating any file when the edit is invalid (unknown names, a node input
 * nothing produces, a value produced twice, an opset raise that would change existing ops, ...).
 */
export async function writeEditedOnnxModel(
  ir: ModelIR,
  edit: OnnxGraphEdit,
  outPath: string,
  opts?: WriteEditedOnnxOptions,
): Promise<void> {
  const native: OnnxNative = nativeOf(ir, outPath);
  const fail = (reason: string): never => {
    throw new ModelFileError(outPath, reason);
  };
  const ext = opts?.externalData;
  const paths = await outputPaths(ir, native, outPath, ext);
  const model = native.model;
  const g = model.graph;
  if (!g) fail(`${ir.path} has no graph to edit`);
  const graph = g as onnx.IGraphProto;
  const src = native.bytes;

  // ---- initializers
  const initNames = (graph.initializer ?? []).map((t) => t.name ?? '');
  const initIndex = new Map<string, number>();
  const dupInit = new Set<string>();
  initNames.forEach((n, i) => (initIndex.has(n) ? dupInit.add(n) : initIndex.set(n, i)));
  const sparseNames = new Set((graph.sparseInitializer ?? []).map((s) => s.values?.name ?? ''));

  const removeNodeNames = new Set(edit.removeNodes ?? []);
  // Nodes are named as in the IR (ir.graph.nodes), which names unnamed nodes "<op>_<k>": the
  // names method code sees are the names an edit can use.
  const mainIrNodes = ir.graph.nodes.filter((n) => !n.scope);
  const irNames = mainIrNodes.length === (graph.node ?? []).length ? mainIrNodes.map((n) => n.name) : undefined;
  const origNodes: OrigNode[] = (graph.node ?? []).map((n, idx) => ({
    kind: 'orig',
    idx,
    name: irNames?.[idx] ?? n.name ?? '',
    op: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: (n.input ?? []).slice(),
    outputs: (n.output ?? []).slice(),
    rewired: false,
    outerRefs: nodeOuterRefs(n),
  }));
  const origByName = new Map<string, OrigNode[]>();
  for (const n of origNodes) if (n.name) origByName.set(n.name, [...(origByName.get(n.name) ?? []), n]);
  const removedIdx = new Set<number>();
  for (const name of removeNodeNames) {
    const found = origByName.get(name);
    if (!found) fail(`cannot remove node "${name}": no such node in the main graph`);
    if (found!.length > 1) fail(`cannot remove node "${name}": ${found!.length} nodes have that name`);
    removedIdx.add(found![0].idx);
  }
  const nodeIdxOfKey = (key: string): number | undefined => {
    const m = /^g\/n(\d+)\//.exec(key);
    return m ? Number(m[1]) : undefined;
  };

  const removeInit = new Set<string>();
  for (const name of edit.removeInitializers ?? []) {
    if (!initIndex.has(name)) fail(`cannot remove initializer "${name}": no such initializer in the main graph`);
    if (dupInit.has(name)) fail(`cannot remove initializer "${name}": several initializers have that name`);
    removeInit.add(name);
  }
  const replaceAt = new Map<number, OnnxInitializerSpec>(); // main-graph initializer index -> new value
  const replaceKey = new Map<string, OnnxInitializerSpec>(); // other tensor keys (Constant / subgraph)
  const added: OnnxInitializerSpec[] = [];
  const setNames = new Set<string>();
  for (const s of edit.setInitializers ?? []) {
    if (!s.name) fail('setInitializers: a tensor needs a name');
    if (setNames.has(s.name)) fail(`setInitializers: "${s.name}" given twice`);
    setNames.add(s.name);
    if (removeInit.has(s.name)) fail(`initializer "${s.name}" is both set and removed`);
    try {
      checkSpec(s.name, s);
    } catch (e) {
      fail(`initializer ${(e as Error).message.replace(/^tensor /, '')}`);
    }
    if (dupInit.has(s.name)) fail(`initializer "${s.name}": several initializers have that name`);
    if (sparseNames.has(s.name)) fail(`initializer "${s.name}": replacing sparse initializers is not supported`);
    const idx = initIndex.get(s.name);
    if (idx !== undefined) {
      replaceAt.set(idx, s);
      continue;
    }
    const key = native.tensorKeys.get(s.name);
    const keyNode = key ? nodeIdxOfKey(key) : undefined;
    if (key && !(keyNode !== undefined && removedIdx.has(keyNode))) {
      if (/\/s\d+$/.test(key)) fail(`initializer "${s.name}": replacing sparse initializers is not supported`);
      replaceKey.set(key, s);
    } else added.push(s);
  }

  const checkOrder = (nodes: NodeEntry[], inputs: string[], inits: Iterable<string>, outputs: string[], strict: boolean): string | undefined => {
    const defined = new Set<string>([...inputs, ...inits, ...sparseNames]);
    if (!strict) for (const n of nodes) for (const o of n.outputs) if (o) defined.add(o);
    for (const n of nodes) {
      const reads = n.kind === 'orig' ? [...n.inputs, ...n.outerRefs] : n.inputs;
      for (const i of reads) {
        if (i && !defined.has(i)) {
          const later = nodes.find((m) => m.outputs.includes(i));
          return later
            ? `node "${n.name}" (${n.op}) reads "${i}" before node "${later.name}" produces it (nodes must stay topologically ordered)`
            : `node "${n.name}" (${n.op}) reads "${i}", which no graph input, initializer or earlier node provides`;
        }
      }
      for (const o of n.outputs) if (o) defined.add(o);
    }
    for (const o of outputs) if (!defined.has(o)) return `graph output "${o}" is not produced by anything`;
    return undefined;
  };
  // An original graph that is not topologically sorted (ORT sorts on load) only gets the
  // "defined somewhere" check; a sorted one must stay sorted.
  const origOk =
    checkOrder(origNodes, (graph.input ?? []).map((v) => v.name ?? ''), initNames, (graph.output ?? []).map((v) => v.name ?? ''), true) === undefined;

  // ---- nodes: inserts (anchors may be original or earlier-inserted nodes), then removals, then rewiring
  const list: NodeEntry[] = origNodes.slice();
  const allNames = new Set<string>(origNodes.map((n) => n.name).filter((n) => n));
  const lastAfter = new Map<string, NodeEntry>();
  const findUnique = (name: string, what: string): NodeEntry => {
    const hits = list.filter((n) => n.name === name);
    if (hits.length === 0) fail(`${what}: no node named "${name}"`);
    if (hits.length > 1) fail(`${what}: ${hits.length} nodes are named "${name}"`);
    return hits[0];
  };
  // names of every node, subgraphs' included: an inserted node's name is unique in the model
  for (const n of ir.graph.nodes) allNames.add(n.name);
  const newNode = (spec: OnnxNodeSpec, what: string): NewNode => {
    if (!spec || !spec.name) fail('insertNodes: every inserted node needs a non-empty name');
    if (allNames.has(spec.name)) fail(`${what}: a node of that name already exists`);
    if (!spec.op) fail(`${what}: no op`);
    if (!Array.isArray(spec.inputs) || !Array.isArray(spec.outputs) || spec.outputs.length === 0 || spec.outputs.some((o) => !o)) {
      fail(`${what}: needs inputs and at least one non-empty output name`);
    }
    const domain = spec.domain ?? '';
    let bytes: Uint8Array = new Uint8Array(0);
    try {
      const attribute = Object.entries(spec.attrs ?? {}).map(([k, v]) => makeAttribute(k, v, `node ${spec.name}`));
      bytes = onnx.NodeProto.encode(
        onnx.NodeProto.create({ name: spec.name, opType: spec.op, input: spec.inputs.slice(), output: spec.outputs.slice(), attribute, domain }),
      ).finish();
    } catch (e) {
      fail(`${what}: ${(e as Error).message}`);
    }
    allNames.add(spec.name);
    return { kind: 'new', name: spec.name, op: spec.op, domain, inputs: spec.inputs.slice(), outputs: spec.outputs.slice(), bytes, attrs: spec.attrs ?? {} };
  };
  for (const ins of edit.insertNodes ?? []) {
    const spec = ins.node;
    const what = `inserting node "${spec?.name ?? ''}"`;
    if (ins.before !== undefined && ins.after !== undefined) fail(`${what}: give before or after, not both`);
    const entry = newNode(spec, what);
    if (ins.before !== undefined) {
      const anchor = findUnique(ins.before, what);
      list.splice(list.indexOf(anchor), 0, entry);
    } else if (ins.after !== undefined) {
      const anchor = findUnique(ins.after, what);
      const prev = lastAfter.get(ins.after) ?? anchor;
      list.splice(list.indexOf(prev) + 1, 0, entry);
      lastAfter.set(ins.after, entry);
    } else list.push(entry);
  }
  for (let i = list.length - 1; i >= 0; i--) {
    const n = list[i];
    if (n.kind === 'orig' && removedIdx.has(n.idx)) list.splice(i, 1);
  }
  for (const r of edit.rewireInputs ?? []) {
    if (!r.from || typeof r.to !== 'string') fail('rewireInputs: from and to are required');
    let targets: OrigNode[];
    if (r.nodes) {
      targets = r.nodes.map((name) => {
        const found = origByName.get(name);
        if (!found) fail(`rewiring "${r.from}": no original node named "${name}"`);
        if (found!.length > 1) fail(`rewiring "${r.from}": ${found!.length} nodes are named "${name}"`);
        if (removedIdx.has(found![0].idx)) fail(`rewiring "${r.from}": node "${name}" is being removed`);
        return found![0];
      });
    } else targets = origNodes.filter((n) => !removedIdx.has(n.idx));
    let hits = 0;
    for (const n of targets) {
      for (let i = 0; i < n.inputs.length; i++) {
        if (n.inputs[i] === r.from) {
          n.inputs[i] = r.to;
          n.rewired = true;
          hits++;
        }
      }
    }
    if (hits === 0) fail(`rewiring "${r.from}" -> "${r.to}": no ${r.nodes ? `node among ${r.nodes.join(', ')}` : 'original node'} reads "${r.from}"`);
  }

  // ---- subgraph edits (one level deep): each subgraph's new node list
  const bodies: Array<{ host: OrigNode; attr: number; scope: string; graph: onnx.IGraphProto; entries: Array<BodyNode | NewNode>; removed: string[]; outer?: Set<string> }> = [];
  for (const se of edit.subgraphEdits ?? []) {
    const what = `editing subgraph "${se.scope}"`;
    const found: Array<{ host: OrigNode; attr: number; graph: onnx.IGraphProto }> = [];
    for (const host of origNodes) {
      const attrs = (graph.node ?? [])[host.idx].attribute ?? [];
      attrs.forEach((a, ai) => {
        if (a.g && `${host.name}/${a.name ?? 'graph'}` === se.scope) found.push({ host, attr: ai, graph: a.g });
      });
    }
    if (found.length === 0) fail(`${what}: no main-graph node has that subgraph (subgraphs nested deeper are not edited)`);
    if (found.length > 1) fail(`${what}: ${found.length} main-graph nodes have a subgraph of that name`);
    const { host, attr, graph: body } = found[0];
    if (removedIdx.has(host.idx)) fail(`${what}: its node "${host.name}" is being removed`);
    if (bodies.some((b) => b.host === host && b.attr === attr)) fail(`${what}: given twice`);
    const irBody = ir.graph.nodes.filter((n) => n.scope === se.scope);
    const bodyNodes = body.node ?? [];
    const entries: Array<BodyNode | NewNode> = bodyNodes.map((n, idx) => ({
      kind: 'body',
      idx,
      name: irBody.length === bodyNodes.length ? irBody[idx].name : n.name ?? '',
      op: n.opType ?? '',
      inputs: (n.input ?? []).slice(),
      outputs: (n.output ?? []).slice(),
      outerRefs: nodeOuterRefs(n),
    }));
    const unique = (name: string, verb: string): BodyNode => {
      const hits = entries.filter((e): e is BodyNode => e.kind === 'body' && e.name === name);
      if (hits.length !== 1) fail(`${what}: cannot ${verb} "${name}": ${hits.length === 0 ? 'no node of that name in it' : `${hits.length} nodes have that name`}`);
      return hits[0];
    };
    for (const ins of se.insertNodes ?? []) {
      const anchor = unique(ins.before, 'insert before');
      entries.splice(entries.indexOf(anchor), 0, newNode(ins.node, `${what}: inserting node "${ins.node?.name ?? ''}"`));
    }
    const removed: string[] = [];
    for (const name of se.removeNodes ?? []) {
      const gone = unique(name, 'remove');
      entries.splice(entries.indexOf(gone), 1);
      removed.push(...gone.outputs);
    }
    bodies.push({ host, attr, scope: se.scope, graph: body, entries, removed });
  }

  // ---- graph inputs and outputs
  const graphInputs = (graph.input ?? []).map((v) => v.name ?? '');
  const keptInputs = graphInputs.filter((n) => !removeInit.has(n));
  const origOutputs = (graph.output ?? []).map((v) => v.name ?? '');
  const outputsAfter = edit.setGraphOutputs ? edit.setGraphOutputs.map((o) => o.name) : origOutputs;
  for (const o of edit.setGraphOutputs ?? []) {
    if (!o.name) fail('setGraphOutputs: every output needs a name');
    if ((o.dtype === undefined) !== (o.shape === undefined)) fail(`graph output "${o.name}": give both dtype and shape, or neither`);
    if (o.dtype === undefined && !origOutputs.includes(o.name)) fail(`graph output "${o.name}" is new: it needs dtype and shape`);
  }

  // ---- validation: SSA, topological order, everything read is defined
  const finalInits = new Set<string>(initNames.filter((n) => !removeInit.has(n)));
  for (const a of added) {
    if (finalInits.has(a.name) || keptInputs.includes(a.name) || sparseNames.has(a.name)) fail(`new initializer "${a.name}": that name is already defined`);
    finalInits.add(a.name);
  }
  // a value defined twice is an error when one of the definitions is new (the original may have
  // initializers listed as inputs too)
  const defCount = new Map<string, number>();
  const bump = (n: string): void => void defCount.set(n, (defCount.get(n) ?? 0) + 1);
  for (const n of new Set([...keptInputs, ...finalInits, ...sparseNames])) bump(n);
  for (const n of list) for (const o of n.outputs) if (o) bump(o);
  for (const n of list) {
    if (n.kind !== 'new') continue;
    for (const o of n.outputs) if ((defCount.get(o) ?? 0) > 1) fail(`invalid edit: inserted node "${n.name}" (${n.op}) produces "${o}", which is already defined`);
  }
  for (const a of added) if ((defCount.get(a.name) ?? 0) > 1) fail(`invalid edit: new initializer "${a.name}" is also produced by a node`);
  // an edited subgraph reads its own values in order, and the main graph's (the host node's outer
  // references, checked with the main graph below); nothing it defines may shadow another value
  const mainDefined = new Set<string>([...keptInputs, ...finalInits, ...sparseNames]);
  for (const n of list) for (const o of n.outputs) if (o) mainDefined.add(o);
  for (const b of bodies) {
    const what = `invalid edit of subgraph "${b.scope}"`;
    const defined = new Set<string>([...(b.graph.input ?? []).map((v) => v.name ?? ''), ...(b.graph.initializer ?? []).map((t) => t.name ?? '')]);
    const outer = new Set<string>();
    for (const e of b.entries) {
      for (const i of e.kind === 'body' ? [...e.inputs, ...e.outerRefs] : e.inputs) {
        if (!i || defined.has(i)) continue;
        if (!mainDefined.has(i)) fail(`${what}: node "${e.name}" (${e.op}) reads "${i}", which nothing in it or in the main graph provides`);
        outer.add(i);
      }
      for (const o of e.outputs) {
        if (!o) continue;
        if (e.kind === 'new' && (defined.has(o) || mainDefined.has(o))) fail(`${what}: inserted node "${e.name}" (${e.op}) produces "${o}", which is already defined`);
        defined.add(o);
      }
    }
    for (const v of b.graph.output ?? []) if (v.name && !defined.has(v.name) && !mainDefined.has(v.name)) fail(`${what}: its output "${v.name}" is no longer produced`);
    b.outer = outer;
  }
  // a host's outer references: its edited subgraphs' new ones, its other subgraphs' as they were
  for (const host of new Set(bodies.map((b) => b.host))) {
    const refs = new Set<string>();
    ((graph.node ?? [])[host.idx].attribute ?? []).forEach((a, ai) => {
      const edited = bodies.find((b) => b.host === host && b.attr === ai);
      if (edited) for (const r of edited.outer!) refs.add(r);
      else {
        if (a.g) outerRefsOfGraph(a.g, refs);
        for (const sg of a.graphs ?? []) outerRefsOfGraph(sg, refs);
      }
    });
    host.outerRefs = [...refs];
  }
  const problem = checkOrder(list, keptInputs, finalInits, outputsAfter, origOk);
  if (problem) fail(`invalid edit: ${problem}`);
  // removed initializers / node outputs still read by a subgraph of an original node are caught
  // above through outerRefs; a removed initializer still read by a removed node is fine.

  // ---- opsets
  const opsets = (model.opsetImport ?? []).map((o) => ({ domain: isDefaultDomain(o.domain) ? '' : o.domain ?? '', version: longNum(o.version) }));
  const have = new Map<string, number>();
  for (const o of opsets) have.set(o.domain, Math.max(have.get(o.domain) ?? 0, o.version));
  const want = new Map<string, number>();
  const need = (domain: string, v: number): void => {
    const d = isDefaultDomain(domain) ? '' : domain;
    if (!Number.isSafeInteger(v) || v < 1) fail(`opset ${domain || 'ai.onnx'} version ${v} is not valid`);
    want.set(d, Math.max(want.get(d) ?? 0, v));
  };
  for (const o of edit.ensureOpsets ?? []) need(o.domain, o.version);
  const setByName = new Map((edit.setInitializers ?? []).map((s) => [s.name, s]));
  const tensorInfo = (name: string): { dtype: DType; count: number } | undefined => {
    const s = setByName.get(name);
    if (s) return { dtype: s.dtype, count: tensorElementCount(s.shape) };
    const t = ir.tensors.find((x) => x.name === name);
    return t ? { dtype: t.dtype, count: t.shape.reduce((a, b) => a * b, 1) } : undefined;
  };
  const inserted: NewNode[] = [...list, ...bodies.flatMap((b) => b.entries)].filter((n): n is NewNode => n.kind === 'new');
  for (const n of inserted) {
    if (!isDefaultDomain(n.domain)) {
      if (!have.has(n.domain)) need(n.domain, 1);
      continue;
    }
    let v = MIN_OPSET[n.op] ?? 1;
    if (n.op === 'DequantizeLinear' || n.op === 'QuantizeLinear') {
      const scale = tensorInfo(n.inputs[1] ?? '');
      if ('axis' in n.attrs || (scale && scale.count > 1)) v = Math.max(v, 13);
      if (scale && (scale.dtype === 'float16' || scale.dtype === 'bfloat16')) v = Math.max(v, 19);
    }
    need('', v);
  }
  const defaultHave = have.get('') ?? (opsets.length === 0 ? 1 : 0);
  const defaultFinal = Math.max(defaultHave, want.get('') ?? 0);
  if (defaultFinal > defaultHave && have.has('')) {
    if (defaultHave < 7) fail(`cannot raise the ai.onnx opset from ${defaultHave} to ${defaultFinal}: opsets below 7 are legacy`);
    // kept main-graph nodes, and every node of subgraphs (the opset import covers them too)
    const existing = [
      ...list.filter((m): m is OrigNode => m.kind === 'orig' && isDefaultDomain(m.domain)).map((m) => ({ name: m.name, op: m.op })),
      ...ir.graph.nodes.filter((m) => m.scope !== undefined && !m.op.includes(':')),
    ];
    for (const n of existing) {
      const breaks = (BREAKING_VERSIONS[n.op] ?? []).find((v) => v > defaultHave && v <= defaultFinal);
      if (breaks !== undefined) {
        fail(
          `cannot raise the ai.onnx opset from ${defaultHave} to ${defaultFinal}: node "${n.name}" (${n.op}) changed meaning at opset ${breaks}; ` +
            `use ops available at opset ${defaultHave}`,
        );
      }
    }
  }
  for (const n of inserted) {
    if (!isDefaultDomain(n.domain)) continue;
    for (const r of ATTR_BECAME_INPUT) {
      if (r.op === n.op && r.attr in n.attrs && defaultFinal >= r.since) {
        fail(`inserted node "${n.name}" (${n.op}): at opset ${defaultFinal} "${r.attr}" is an input, not an attribute`);
      }
    }
  }
  const opsetChanges = new Map<string, number>();
  for (const [d, v] of want) if ((have.get(d) ?? 0) < v) opsetChanges.set(d, v);
  const irVersion = longNum(model.irVersion);
  const newIrVersion = opsetChanges.has('') ? Math.max(irVersion, minIrVersion(opsetChanges.get('') as number)) : irVersion;

  // ---- value_info to drop, graph inputs to retype
  const dropVI = new Set<string>(edit.dropValueInfo ?? []);
  for (const n of removeInit) dropVI.add(n);
  for (const n of origNodes) if (removedIdx.has(n.idx)) for (const o of n.outputs) dropVI.add(o);
  const retype = new Map<string, OnnxInitializerSpec>();
  const tensorByName = new Map(ir.tensors.map((t) => [t.name, t]));
  for (const [idx, s] of replaceAt) {
    const t = tensorByName.get(initNames[idx]);
    if (!t || t.dtype !== s.dtype || !sameShape(t.shape, s.shape) || t.storage.dtype !== s.dtype) {
      dropVI.add(s.name);
      retype.set(s.name, s);
    }
  }

  // ---- tensor plans (keys as in onnx.ts: g/i<k>, g/n<k>/a<j>/t, ...)
  const plans = new Map<string, TensorPlan>();
  for (const t of ir.tensors) {
    const key = native.tensorKeys.get(t.name);
    if (!key) continue;
    const keyNode = nodeIdxOfKey(key);
    if (keyNode !== undefined && removedIdx.has(keyNode)) continue;
    const m = /^g\/i(\d+)$/.exec(key);
    if (m && removeInit.has(initNames[Number(m[1])])) continue;
    const s = m ? replaceAt.get(Number(m[1])) : replaceKey.get(key);
    try {
      const plan = planTensor(t, key, s, ext);
      if (plan) plans.set(key, plan);
    } catch (e) {
      fail((e as Error).message);
    }
  }
  const addedPlans = added.map((s) => ({ spec: s, plan: planNewTensor(s.name, s, ext) }));

  // ---- splice
  {
    const bodyLists = new Map<string, EditedBody>();
    for (const b of bodies) {
      const key = `g/n${b.host.idx}/a${b.attr}/g`;
      // value_info of a removed node's outputs goes, as in the main graph: a node put in its place
      // may give the name another type
      bodyLists.set(key, { nodes: b.entries.map((e) => (e.kind === 'body' ? { idx: e.idx } : { bytes: e.bytes })), dropValueInfo: new Set(b.removed) });
    }
    const ctx: SpliceCtx = { src, plans, prefixes: keyPrefixes([...plans.keys(), ...bodyLists.keys()]), bodies: bodyLists };

    const spliceOrigNode = async (n: OrigNode, start: number, end: number): Promise<Out> => {
      const o = new Out();
      let ai = 0;
      let inputsDone = false;
      const key = `g/n${n.idx}`;
      const emitInputs = (): void => {
        for (const i of n.inputs) stringField(o, 1, i);
        inputsDone = true;
      };
      for (const f of parseFields(src, start, end)) {
        if (f.field === 1 && f.wire === 2 && n.rewired) {
          if (!inputsDone) emitInputs();
        } else if (f.field === 5 && f.wire === 2) {
          const k = `${key}/a${ai++}`;
          if (ctx.prefixes.has(k)) lengthDelimited(o, 5, await spliceAttribute(ctx, f.payloadStart, f.end, k));
          else o.push(src.subarray(f.start, f.end));
        } else o.push(src.subarray(f.start, f.end));
      }
      if (n.rewired && !inputsDone) emitInputs();
      return o;
    };

    const newInitializer = async (s: OnnxInitializerSpec, plan: TensorPlan): Promise<Out> => {
      const t = await newTensorData(ctx, plan);
      stringField(t, 8, s.name);
      return t;
    };

    const spliceEditedGraph = async (start: number, end: number): Promise<Out> => {
      const o = new Out();
      const fields = parseFields(src, start, end);
      const nodeRanges: Array<{ start: number; end: number }> = [];
      const inputRanges: Array<{ start: number; end: number }> = [];
      const outputRanges: Array<{ start: number; end: number; fieldStart: number }> = [];
      for (const f of fields) {
        if (f.field === 1 && f.wire === 2) nodeRanges.push({ start: f.payloadStart, end: f.end });
        if (f.field === 11 && f.wire === 2) inputRanges.push({ start: f.payloadStart, end: f.end });
        if (f.field === 12 && f.wire === 2) outputRanges.push({ start: f.payloadStart, end: f.end, fieldStart: f.start });
      }
      if (nodeRanges.length !== origNodes.length) throw new Error(`graph has ${nodeRanges.length} node fields, decoded ${origNodes.length}`);
      const lastInit = fields.reduce((a, f, i) => (f.field === 5 && f.wire === 2 ? i : a), -1);
      const lastInput = fields.reduce((a, f, i) => (f.field === 11 && f.wire === 2 ? i : a), -1);
      let nodesDone = false;
      let outputsDone = false;
      let ii = 0;
      let ki = 0;
      let vi = 0;
      const emitNodes = async (): Promise<void> => {
        nodesDone = true;
        for (const n of list) {
          if (n.kind === 'new') {
            o.push(tagBytes(1, 2));
            o.push(varintBytes(n.bytes.length));
            o.push(n.bytes);
            continue;
          }
          const r = nodeRanges[n.idx];
          if (n.rewired || ctx.prefixes.has(`g/n${n.idx}`)) lengthDelimited(o, 1, await spliceOrigNode(n, r.start, r.end));
          else {
            const body = src.subarray(r.start, r.end);
            o.push(tagBytes(1, 2));
            o.push(varintBytes(body.length));
            o.push(body);
          }
        }
      };
      const emitAdded = async (): Promise<void> => {
        for (const a of addedPlans) lengthDelimited(o, 5, await newInitializer(a.spec, a.plan));
      };
      const emitAddedInputs = (): void => {
        // IR < 4: every initializer must also be a graph input
        if (irVersion >= 4) return;
        for (const a of added) lengthDelimited(o, 11, valueInfoBytes(undefined, undefined, a.name, encodeTypeProto(a.dtype, a.shape)));
      };
      const emitOutputs = (): void => {
        outputsDone = true;
        for (const spec of edit.setGraphOutputs ?? []) {
          const k = origOutputs.indexOf(spec.name);
          const range = k >= 0 ? outputRanges[k] : undefined;
          if (spec.dtype === undefined && range) o.push(src.subarray(range.fieldStart, range.end));
          else lengthDelimited(o, 12, valueInfoBytes(src, range, spec.name, encodeTypeProto(spec.dtype as DType, spec.shape ?? [])));
        }
      };
      for (let fi = 0; fi < fields.length; fi++) {
        const f = fields[fi];
        if (f.field === 1 && f.wire === 2) {
          if (!nodesDone) await emitNodes();
        } else if (f.field === 5 && f.wire === 2) {
          const idx = ii++;
          const name = initNames[idx];
          if (!removeInit.has(name)) {
            const plan = plans.get(`g/i${idx}`);
            if (plan) lengthDelimited(o, 5, await spliceTensor(ctx, f.payloadStart, f.end, plan));
            else o.push(src.subarray(f.start, f.end));
          }
          if (fi === lastInit) await emitAdded();
        } else if (f.field === 11 && f.wire === 2) {
          const name = graphInputs[ki++];
          const s = retype.get(name);
          if (removeInit.has(name)) {
            /* the initializer is gone: so is its input entry */
          } else if (s) lengthDelimited(o, 11, valueInfoBytes(src, { start: f.payloadStart, end: f.end }, name, encodeTypeProto(s.dtype, s.shape)));
          else o.push(src.subarray(f.start, f.end));
          if (fi === lastInput) emitAddedInputs();
        } else if (f.field === 12 && f.wire === 2 && edit.setGraphOutputs) {
          if (!outputsDone) emitOutputs();
        } else if (f.field === 13 && f.wire === 2) {
          const name = (graph.valueInfo ?? [])[vi++]?.name ?? '';
          if (!dropVI.has(name) && !edit.dropAllValueInfo) o.push(src.subarray(f.start, f.end));
        } else o.push(src.subarray(f.start, f.end));
      }
      if (!nodesDone) await emitNodes();
      if (lastInit < 0) await emitAdded();
      if (lastInput < 0) emitAddedInputs();
      if (edit.setGraphOutputs && !outputsDone) emitOutputs();
      return o;
    };

    const opsetBytes = (domain: string, version: number, orig?: { start: number; end: number }): Out => {
      const o = new Out();
      if (orig) {
        for (const f of parseFields(src, orig.start, orig.end)) {
          if (f.field === 2) {
            o.push(tagBytes(2, 0));
            o.push(int64VarintBytes(version));
          } else o.push(src.subarray(f.start, f.end));
        }
        if (!parseFields(src, orig.start, orig.end).some((f) => f.field === 2)) {
          o.push(tagBytes(2, 0));
          o.push(int64VarintBytes(version));
        }
        return o;
      }
      if (domain) stringField(o, 1, domain);
      o.push(tagBytes(2, 0));
      o.push(int64VarintBytes(version));
      return o;
    };

    const spliceEditedModel = async (): Promise<Out> => {
      const o = new Out();
      const fields = parseFields(src, 0, src.length);
      const lastOpset = fields.reduce((a, f, i) => (f.field === 8 && f.wire === 2 ? i : a), -1);
      const pending = new Map(opsetChanges);
      let oi = 0;
      let sawGraph = false;
      let sawIr = false;
      if (!fields.some((f) => f.field === 1 && f.wire === 0) && newIrVersion !== irVersion) {
        o.push(tagBytes(1, 0));
        o.push(varintBytes(newIrVersion));
        sawIr = true;
      }
      const emitMissingOpsets = (): void => {
        for (const [d, v] of pending) lengthDelimited(o, 8, opsetBytes(d, v));
        pending.clear();
      };
      for (let fi = 0; fi < fields.length; fi++) {
        const f = fields[fi];
        if (f.field === 1 && f.wire === 0 && !sawIr) {
          sawIr = true;
          if (newIrVersion !== irVersion) {
            o.push(tagBytes(1, 0));
            o.push(varintBytes(newIrVersion));
          } else o.push(src.subarray(f.start, f.end));
        } else if (f.field === 7 && f.wire === 2 && !sawGraph) {
          sawGraph = true;
          lengthDelimited(o, 7, await spliceEditedGraph(f.payloadStart, f.end));
        } else if (f.field === 8 && f.wire === 2) {
          const d = opsets[oi++]?.domain ?? '';
          const v = pending.get(d);
          if (v !== undefined) {
            lengthDelimited(o, 8, opsetBytes(d, v, { start: f.payloadStart, end: f.end }));
            pending.delete(d);
          } else o.push(src.subarray(f.start, f.end));
          if (fi === lastOpset) emitMissingOpsets();
        } else o.push(src.subarray(f.start, f.end));
      }
      emitMissingOpsets();
      if (!sawGraph) throw new Error('no graph field');
      return o;
    };

    await writeSplicedModel(native, paths, ext, ctx, spliceEditedModel, addedPlans.map((a) => a.plan));
  }
}
