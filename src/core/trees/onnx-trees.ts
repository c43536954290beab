// Reads and writes ai.onnx.ml tree ensembles: TreeEnsembleRegressor / TreeEnsembleClassifier
// (attribute-per-node form, float attributes or their `*_as_tensor` double variants) and the
// opset-5 TreeEnsemble op. Attributes are read from the decoded proto (ModelIR.native), not from
// GraphNode.attrs, because the IR only summarises tensor attributes.

import { onnx } from 'onnx-proto';
import { ModelFileError, type ModelIR } from '../model/ir.js';
import { isOnnxNative } from '../model/onnx.js';
import { OnnxGraphBuilder, writeOnnxFile, type OnnxAttrValue } from '../model/onnx/build.js';
import { writeEditedOnnxModel } from '../model/onnx/edit.js';
import {
  BRANCH_MODES,
  compactTree,
  maxFeature,
  type AggregateFunction,
  type BranchMode,
  type PostTransform,
  type Tree,
  type TreeEnsemble,
  type TreeNode,
  type TreeOp,
} from './tree-model.js';

export const TREE_OPS: readonly TreeOp[] = ['TreeEnsembleRegressor', 'TreeEnsembleClassifier', 'TreeEnsemble'];
const POST_TRANSFORMS: readonly PostTransform[] = ['NONE', 'SOFTMAX', 'LOGISTIC', 'SOFTMAX_ZERO', 'PROBIT'];
/** TreeEnsemble (opset 5) enum order */
const AGGREGATES_V5: readonly AggregateFunction[] = ['AVERAGE', 'SUM', 'MIN', 'MAX'];
const MAX_TREE_NODES = 50_000_000;

export interface TreeEnsembleNodeRef {
  /** the node's name in the main graph ('' when unnamed) */
  name: string;
  op: TreeOp;
  /** index among the main graph's nodes */
  index: number;
  inputs: string[];
  outputs: string[];
}

const AT = onnx.AttributeProto.AttributeType;

function num(x: unknown): number {
  if (typeof x === 'number') return x;
  if (x && typeof (x as { toNumber?: unknown }).toNumber === 'function') return (x as { toNumber(): number }).toNumber();
  return Number(x);
}

function mainNodes(ir: ModelIR): onnx.INodeProto[] {
  if (!isOnnxNative(ir.native)) throw new ModelFileError(ir.path, 'not an ONNX model read by readOnnxModel (tree ensembles are ONNX-ML ops)');
  return ir.native.model.graph?.node ?? [];
}

export function listTreeEnsembles(ir: ModelIR): TreeEnsembleNodeRef[] {
  const out: TreeEnsembleNodeRef[] = [];
  mainNodes(ir).forEach((n, index) => {
    const op = n.opType ?? '';
    if (n.domain === 'ai.onnx.ml' && (TREE_OPS as readonly string[]).includes(op)) {
      out.push({ name: n.name ?? '', op: op as TreeOp, index, inputs: (n.input ?? []).slice(), outputs: (n.output ?? []).slice() });
    }
  });
  return out;
}

/** Typed access to one node's attributes, every error naming the file and the node. */
class Attrs {
  private readonly byName = new Map<string, onnx.IAttributeProto>();
  constructor(private readonly file: string, private readonly where: string, node: onnx.INodeProto) {
    for (const a of node.attribute ?? []) this.byName.set(a.name ?? '', a);
  }
  fail(reason: string): never {
    throw new ModelFileError(this.file, `${this.where}: ${reason}`);
  }
  has(name: string): boolean {
    return this.byName.has(name);
  }
  ints(name: string): number[] | undefined {
    const a = this.byName.get(name);
    if (!a) return undefined;
    if (a.type !== AT.INTS && !(a.type === undefined || a.type === 0)) this.fail(`attribute ${name} is not INTS`);
    return (a.ints ?? []).map((v) => {
      const n = num(v);
      if (!Number.isSafeInteger(n)) this.fail(`attribute ${name} holds ${String(v)}, not a safe integer`);
      return n;
    });
  }
  int(name: string): number | undefined {
    const a = this.byName.get(name);
    if (!a) return undefined;
    return num(a.i ?? 0);
  }
  floats(name: string): number[] | undefined {
    const a = this.byName.get(name);
    if (!a) return undefined;
    if (a.type !== AT.FLOATS && !(a.type === undefined || a.type === 0)) this.fail(`attribute ${name} is not FLOATS`);
    return (a.floats ?? []).slice();
  }
  string(name: string): string | undefined {
    const a = this.byName.get(name);
    if (!a) return undefined;
    return new TextDecoder().decode(a.s ?? new Uint8Array(0));
  }
  strings(name: string): string[] | undefined {
    const a = this.byName.get(name);
    if (!a) return undefined;
    return (a.strings ?? []).map((s) => new TextDecoder().decode(s));
  }
  /** A TENSOR attribute as numbers; `double` tells whether it was stored as float64. */
  tensor(name: string): { values: number[]; double: boolean } | undefined {
    const a = this.byName.get(name);
    if (!a) return undefined;
    const t = a.t;
    if (a.type !== AT.TENSOR || !t) this.fail(`attribute ${name} is not a TENSOR`);
    const T = onnx.TensorProto.DataType;
    const dt = t.dataType ?? 0;
    if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) this.fail(`attribute ${name}: external tensor data is not supported in attributes`);
    let n = 1;
    for (const d of t.dims ?? []) n *= num(d);
    const raw = t.rawData && t.rawData.length ? t.rawData : undefined;
    const dv = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : undefined;
    const width = dt === T.DOUBLE || dt === T.INT64 ? 8 : dt === T.FLOAT || dt === T.INT32 ? 4 : dt === T.UINT8 || dt === T.INT8 ? 1 : 0;
    if (!width) this.fail(`attribute ${name}: tensor element type ${dt} is not supported (float, double, int32, int64, uint8, int8)`);
    if (dv && dv.byteLength !== n * width) this.fail(`attribute ${name}: raw data has ${dv.byteLength} bytes, the shape needs ${n * width}`);
    const values: number[] = new Array(n);
    if (dv) {
      for (let i = 0; i < n; i++) {
        values[i] =
          dt === T.DOUBLE ? dv.getFloat64(i * 8, true)
          : dt === T.FLOAT ? dv.getFloat32(i * 4, true)
          : dt === T.INT64 ? Number(dv.getBigInt64(i * 8, true))
          : dt === T.INT32 ? dv.getInt32(i * 4, true)
          : dt === T.UINT8 ? dv.getUint8(i)
          : dv.getInt8(i);
      }
    } else {
      const src: ArrayLike<unknown> =
        dt === T.DOUBLE ? t.doubleData ?? [] : dt === T.FLOAT ? t.floatData ?? [] : dt === T.INT64 ? t.int64Data ?? [] : t.int32Data ?? [];
      if (src.length !== n) this.fail(`attribute ${name}: ${src.length} values, the shape needs ${n}`);
      for (let i = 0; i < n; i++) values[i] = num(src[i]);
    }
    return { values, double: dt === T.DOUBLE };
  }
  /** FLOATS attribute, or its `_as_tensor` twin (double). */
  floatsOrTensor(name: string): { values: number[]; double: boolean } | undefined {
    const t = this.tensor(`${name}_as_tensor`);
    if (t) return t;
    const f = this.floats(name);
    return f ? { values: f, double: false } : undefined;
  }
}

function required<T>(a: Attrs, name: string, v: T | undefined): T {
  if (v === undefined) a.fail(`attribute ${name} is missing`);
  return v as T;
}

function checkLength(a: Attrs, name: string, arr: unknown[], n: number): void {
  if (arr.length !== n) a.fail(`attribute ${name} has ${arr.length} entries, nodes_nodeids has ${n}`);
}

function parsePost(a: Attrs, s: string | undefined): PostTransform {
  const v = s ?? 'NONE';
  if (!(POST_TRANSFORMS as readonly string[]).includes(v)) a.fail(`unknown post_transform '${v}'`);
  return v as PostTransform;
}

/** Checks that every tree is a tree: children exist, no node reached twice from the root. */
function checkTree(a: Attrs, t: Tree): void {
  const seen = new Uint8Array(t.nodes.length);
  const stack = [0];
  while (stack.length) {
    const i = stack.pop() as number;
    if (seen[i]) a.fail(`tree ${t.id}: node ${i} is reached twice (a cycle or a shared subtree)`);
    seen[i] = 1;
    const s = t.nodes[i].split;
    if (s) {
      for (const c of [s.trueChild, s.falseChild]) if (c < 0 || c >= t.nodes.length) a.fail(`tree ${t.id}: child ${c} of node ${i} does not exist`);
      stack.push(s.trueChild, s.falseChild);
    }
  }
}

function readPerNodeForm(a: Attrs, op: 'TreeEnsembleRegressor' | 'TreeEnsembleClassifier'): TreeEnsemble {
  const treeIds = required(a, 'nodes_treeids', a.ints('nodes_treeids'));
  const nodeIds = required(a, 'nodes_nodeids', a.ints('nodes_nodeids'));
  const n = nodeIds.length;
  if (n > MAX_TREE_NODES) a.fail(`${n} nodes is more than the ${MAX_TREE_NODES} supported`);
  checkLength(a, 'nodes_treeids', treeIds, n);
  const features = required(a, 'nodes_featureids', a.ints('nodes_featureids'));
  const modes = required(a, 'nodes_modes', a.strings('nodes_modes'));
  const values = a.floatsOrTensor('nodes_values') ?? { values: new Array<number>(n).fill(0), double: false };
  const trueIds = required(a, 'nodes_truenodeids', a.ints('nodes_truenodeids'));
  const falseIds = required(a, 'nodes_falsenodeids', a.ints('nodes_falsenodeids'));
  const missing = a.ints('nodes_missing_value_tracks_true') ?? [];
  const hit = a.floatsOrTensor('nodes_hitrates');
  for (const [name, arr] of [['nodes_featureids', features], ['nodes_modes', modes], ['nodes_values', values.values], ['nodes_truenodeids', trueIds], ['nodes_falsenodeids', falseIds]] as const) {
    checkLength(a, name, arr as unknown[], n);
  }
  if (missing.length && missing.length !== n) checkLength(a, 'nodes_missing_value_tracks_true', missing, n);
  // one value on every node is no cover: skl2onnx writes nodes_hitrates = 1 throughout, and read
  // as sample counts it made every "majority child" the true branch and every gain noise
  const constantHitrate = hit && hit.values.length === n && n > 1 && hit.values.every((v) => v === hit.values[0]) ? hit.values[0] : undefined;
  const hasCover = !!hit && hit.values.length === n && n > 0 && constantHitrate === undefined;
  if (hit && hit.values.length && hit.values.length !== n) checkLength(a, 'nodes_hitrates', hit.values, n);

  // tree id -> (node id -> index in that tree)
  const treeOrder: number[] = [];
  const index = new Map<number, Map<number, number>>();
  for (let i = 0; i < n; i++) {
    let m = index.get(treeIds[i]);
    if (!m) {
      m = new Map();
      index.set(treeIds[i], m);
      treeOrder.push(treeIds[i]);
    }
    if (m.has(nodeIds[i])) a.fail(`tree ${treeIds[i]}: node id ${nodeIds[i]} appears twice`);
    m.set(nodeIds[i], m.size);
  }
  const trees: Tree[] = treeOrder.map((id) => ({ id, nodes: [] as TreeNode[] }));
  const treeOf = new Map<number, Tree>(trees.map((t) => [t.id, t]));
  const local = (tree: number, id: number, what: string): number => {
    const v = index.get(tree)?.get(id);
    if (v === undefined) a.fail(`tree ${tree}: ${what} refers to node id ${id}, which does not exist`);
    return v as number;
  };
  for (let i = 0; i < n; i++) {
    const t = treeOf.get(treeIds[i]) as Tree;
    const mode = modes[i];
    const node: TreeNode = { votes: [] };
    if (hasCover) node.cover = (hit as { values: number[] }).values[i];
    if (mode !== 'LEAF') {
      if (!(BRANCH_MODES as readonly string[]).includes(mode)) a.fail(`node ${nodeIds[i]} of tree ${treeIds[i]}: mode '${mode}' is not supported`);
      if (features[i] < 0) a.fail(`node ${nodeIds[i]} of tree ${treeIds[i]}: negative feature id ${features[i]}`);
      node.split = {
        feature: features[i],
        threshold: values.values[i],
        mode: mode as BranchMode,
        trueChild: local(treeIds[i], trueIds[i], `node ${nodeIds[i]}'s true branch`),
        falseChild: local(treeIds[i], falseIds[i], `node ${nodeIds[i]}'s false branch`),
        missingTracksTrue: (missing[i] ?? 0) !== 0,
      };
    }
    t.nodes.push(node);
  }
  const prefix = op === 'TreeEnsembleRegressor' ? 'target' : 'class';
  const vTree = a.ints(`${prefix}_treeids`) ?? [];
  const vNode = a.ints(`${prefix}_nodeids`) ?? [];
  const vIds = a.ints(`${prefix}_ids`) ?? [];
  const vW = a.floatsOrTensor(`${prefix}_weights`) ?? { values: [], double: false };
  const nv = vTree.length;
  if (vNode.length !== nv || vIds.length !== nv || vW.values.length !== nv) {
    a.fail(`${prefix}_treeids/${prefix}_nodeids/${prefix}_ids/${prefix}_weights have different lengths (${nv}, ${vNode.length}, ${vIds.length}, ${vW.values.length})`);
  }
  let nTargets: number;
  let classLabelsInts: number[] | undefined;
  let classLabelsStrings: string[] | undefined;
  if (op === 'TreeEnsembleRegressor') {
    nTargets = a.int('n_targets') ?? 1;
  } else {
    classLabelsInts = a.ints('classlabels_int64s');
    classLabelsStrings = a.strings('classlabels_strings');
    if (classLabelsInts && !classLabelsInts.length) classLabelsInts = undefined;
    if (classLabelsStrings && !classLabelsStrings.length) classLabelsStrings = undefined;
    if (!classLabelsInts === !classLabelsStrings) a.fail('exactly one of classlabels_int64s and classlabels_strings must be given');
    nTargets = (classLabelsInts ?? classLabelsStrings ?? []).length;
  }
  if (!Number.isSafeInteger(nTargets) || nTargets < 1) a.fail(`invalid number of targets/classes ${nTargets}`);
  for (let i = 0; i < nv; i++) {
    const t = treeOf.get(vTree[i]);
    if (!t) a.fail(`${prefix}_treeids[${i}] = ${vTree[i]} is not a tree id`);
    if (vIds[i] < 0 || vIds[i] >= nTargets) a.fail(`${prefix}_ids[${i}] = ${vIds[i]} is outside [0, ${nTargets})`);
    t.nodes[local(vTree[i], vNode[i], `${prefix}_nodeids[${i}]`)].votes.push({ target: vIds[i], value: vW.values[i] });
  }
  for (const t of trees) {
    if (!index.get(t.id)?.has(0)) a.fail(`tree ${t.id} has no node id 0 (its root)`);
    // roots are node id 0: move it first when the file lists nodes in another order
    const rootAt = local(t.id, 0, 'the root');
    if (rootAt !== 0) {
      const perm = t.nodes.map((_, i) => i);
      perm[0] = rootAt;
      perm[rootAt] = 0;
      const nodes = perm.map((p) => t.nodes[p]);
      for (const nd of nodes) if (nd.split) {
        nd.split.trueChild = perm[nd.split.trueChild];
        nd.split.falseChild = perm[nd.split.falseChild];
      }
      t.nodes = nodes;
    }
    checkTree(a, t);
  }
  const base = a.floatsOrTensor('base_values');
  const baseValues = base?.values ?? [];
  // a binary classifier exported with one weight column (skl2onnx, onnxmltools: every leaf weight on
  // class_ids 0, the score of label 1) carries one base value; ORT adds it to that score
  const binarySingle = op === 'TreeEnsembleClassifier' && nTargets === 2 && baseValues.length === 1;
  if (baseValues.length && baseValues.length !== nTargets && !binarySingle) a.fail(`base_values has ${baseValues.length} entries for ${nTargets} targets`);
  // the classifier has no aggregate_function (it sums); a stray one is ignored, as ORT does
  const agg = (op === 'TreeEnsembleClassifier' ? 'SUM' : a.string('aggregate_function') ?? 'SUM') as AggregateFunction;
  if (!['SUM', 'AVERAGE', 'MIN', 'MAX'].includes(agg)) a.fail(`unknown aggregate_function '${agg}'`);
  return {
    op,
    nTargets,
    classLabelsInts,
    classLabelsStrings,
    trees,
    baseValues,
    postTransform: parsePost(a, a.string('post_transform')),
    aggregate: agg,
    double: values.double || vW.double,
    hasCover,
    ...(constantHitrate !== undefined ? { constantHitrate } : {}),
  };
}

function readV5(a: Attrs): TreeEnsemble {
  const roots = required(a, 'tree_roots', a.ints('tree_roots'));
  const features = required(a, 'nodes_featureids', a.ints('nodes_featureids'));
  const n = features.length;
  if (n > MAX_TREE_NODES) a.fail(`${n} nodes is more than the ${MAX_TREE_NODES} supported`);
  const splits = required(a, 'nodes_splits', a.tensor('nodes_splits'));
  const modes = required(a, 'nodes_modes', a.tensor('nodes_modes')).values;
  const trueIds = required(a, 'nodes_truenodeids', a.ints('nodes_truenodeids'));
  const falseIds = required(a, 'nodes_falsenodeids', a.ints('nodes_falsenodeids'));
  const trueLeaf = a.ints('nodes_trueleafs') ?? new Array<number>(n).fill(0);
  const falseLeaf = a.ints('nodes_falseleafs') ?? new Array<number>(n).fill(0);
  const missing = a.ints('nodes_missing_value_tracks_true') ?? [];
  const leafTargets = required(a, 'leaf_targetids', a.ints('leaf_targetids'));
  const leafW = required(a, 'leaf_weights', a.tensor('leaf_weights'));
  if (leafW.values.length !== leafTargets.length) a.fail(`leaf_weights has ${leafW.values.length} entries, leaf_targetids ${leafTargets.length}`);
  for (const [name, arr] of [['nodes_splits', splits.values], ['nodes_modes', modes], ['nodes_truenodeids', trueIds], ['nodes_falsenodeids', falseIds], ['nodes_trueleafs', trueLeaf], ['nodes_falseleafs', falseLeaf]] as const) {
    if (arr.length !== n) a.fail(`attribute ${name} has ${arr.length} entries, nodes_featureids has ${n}`);
  }
  const nTargets = a.int('n_targets') ?? 1;
  if (!Number.isSafeInteger(nTargets) || nTargets < 1) a.fail(`invalid n_targets ${nTargets}`);
  const aggIdx = a.int('aggregate_function') ?? 1;
  const postIdx = a.int('post_transform') ?? 0;
  if (!AGGREGATES_V5[aggIdx]) a.fail(`unknown aggregate_function ${aggIdx}`);
  if (!POST_TRANSFORMS[postIdx]) a.fail(`unknown post_transform ${postIdx}`);
  const trees: Tree[] = roots.map((root, ti) => {
    const nodes: TreeNode[] = [];
    // global split index -> local; leaves are new nodes each time they are referenced
    const build = (isLeaf: boolean, idx: number, depth: number): number => {
      if (depth > 10_000) a.fail(`tree ${ti}: deeper than 10000 levels (a cycle?)`);
      const me = nodes.length;
      if (isLeaf) {
        if (idx < 0 || idx >= leafTargets.length) a.fail(`tree ${ti}: leaf ${idx} does not exist`);
        const target = leafTargets[idx];
        if (target < 0 || target >= nTargets) a.fail(`leaf ${idx}: target ${target} outside [0, ${nTargets})`);
        nodes.push({ votes: [{ target, value: leafW.values[idx] }] });
        return me;
      }
      if (idx < 0 || idx >= n) a.fail(`tree ${ti}: node ${idx} does not exist`);
      const m = modes[idx];
      if (m === 6) a.fail(`node ${idx}: BRANCH_MEMBER splits are not supported`);
      if (!BRANCH_MODES[m]) a.fail(`node ${idx}: unknown mode ${m}`);
      nodes.push({ votes: [] });
      const t = build(trueLeaf[idx] !== 0, trueIds[idx], depth + 1);
      const f = build(falseLeaf[idx] !== 0, falseIds[idx], depth + 1);
      nodes[me].split = { feature: features[idx], threshold: splits.values[idx], mode: BRANCH_MODES[m], trueChild: t, falseChild: f, missingTracksTrue: (missing[idx] ?? 0) !== 0 };
      if (nodes.length > MAX_TREE_NODES) a.fail('too many nodes (a shared subtree repeated too often?)');
      return me;
    };
    build(false, root, 0);
    return { id: ti, nodes };
  });
  return {
    op: 'TreeEnsemble',
    nTargets,
    trees,
    baseValues: [],
    postTransform: POST_TRANSFORMS[postIdx],
    aggregate: AGGREGATES_V5[aggIdx],
    double: splits.double,
    hasCover: false,
  };
}

/** The tree ensemble of the node named `nodeName` (or the only / first one). */
export function readTreeEnsemble(ir: ModelIR, nodeName?: string): { ref: TreeEnsembleNodeRef; ensemble: TreeEnsemble } {
  const refs = listTreeEnsembles(ir);
  if (!refs.length) throw new ModelFileError(ir.path, 'no ai.onnx.ml tree ensemble (TreeEnsembleRegressor, TreeEnsembleClassifier, TreeEnsemble) in the main graph');
  const ref = nodeName === undefined ? refs[0] : refs.find((r) => r.name === nodeName);
  if (!ref) throw new ModelFileError(ir.path, `no tree ensemble node named "${nodeName}" (there are: ${refs.map((r) => r.name || '(unnamed)').join(', ')})`);
  const node = mainNodes(ir)[ref.index];
  const a = new Attrs(ir.path, `${ref.op} node "${ref.name}"`, node);
  const ensemble = ref.op === 'TreeEnsemble' ? readV5(a) : readPerNodeForm(a, ref.op);
  return { ref, ensemble };
}

// ---------------------------------------------------------------------------------------------
// Writing

function floatsAttr(values: number[], double: boolean): OnnxAttrValue {
  return double ? { tensor: { dtype: 'float64', shape: [values.length], data: Float64Array.from(values) } } : { floats: values };
}

/** The node attributes of `e` in its op's form (trees compacted, node ids renumbered from 0). */
export function treeEnsembleAttributes(e: TreeEnsemble): Record<string, OnnxAttrValue> {
  if (e.op === 'TreeEnsemble') return v5Attributes(e);
  const trees = e.trees.map(compactTree);
  const treeIds: number[] = [], nodeIds: number[] = [], feats: number[] = [], values: number[] = [], modes: string[] = [];
  const trues: number[] = [], falses: number[] = [], missing: number[] = [], hit: number[] = [];
  const vt: number[] = [], vn: number[] = [], vi: number[] = [], vw: number[] = [];
  for (const t of trees) {
    t.nodes.forEach((nd, i) => {
      treeIds.push(t.id);
      nodeIds.push(i);
      const s = nd.split;
      feats.push(s ? s.feature : 0);
      values.push(s ? s.threshold : 0);
      modes.push(s ? s.mode : 'LEAF');
      trues.push(s ? s.trueChild : 0);
      falses.push(s ? s.falseChild : 0);
      missing.push(s && s.missingTracksTrue ? 1 : 0);
      hit.push(nd.cover ?? 0);
      if (!s) for (const v of nd.votes) {
        vt.push(t.id);
        vn.push(i);
        vi.push(v.target);
        vw.push(v.value);
      }
    });
  }
  const sfx = e.double ? '_as_tensor' : '';
  const prefix = e.op === 'TreeEnsembleRegressor' ? 'target' : 'class';
  const attrs: Record<string, OnnxAttrValue> = {
    nodes_treeids: { ints: treeIds },
    nodes_nodeids: { ints: nodeIds },
    nodes_featureids: { ints: feats },
    [`nodes_values${sfx}`]: floatsAttr(values, e.double),
    nodes_modes: { strings: modes },
    nodes_truenodeids: { ints: trues },
    nodes_falsenodeids: { ints: falses },
    [`${prefix}_treeids`]: { ints: vt },
    [`${prefix}_nodeids`]: { ints: vn },
    [`${prefix}_ids`]: { ints: vi },
    [`${prefix}_weights${sfx}`]: floatsAttr(vw, e.double),
    post_transform: { s: e.postTransform },
  };
  if (missing.some((m) => m)) attrs.nodes_missing_value_tracks_true = { ints: missing };
  if (e.hasCover) attrs[`nodes_hitrates${sfx}`] = floatsAttr(hit, e.double);
  if (e.baseValues.length) attrs[`base_values${sfx}`] = floatsAttr(e.baseValues, e.double);
  if (e.op === 'TreeEnsembleRegressor') {
    attrs.n_targets = { i: e.nTargets };
    attrs.aggregate_function = { s: e.aggregate };
  } else if (e.classLabelsInts) attrs.classlabels_int64s = { ints: e.classLabelsInts };
  else attrs.classlabels_strings = { strings: e.classLabelsStrings ?? [] };
  return attrs;
}

function v5Attributes(e: TreeEnsemble): Record<string, OnnxAttrValue> {
  if (e.baseValues.some((b) => b !== 0)) throw new Error('TreeEnsemble (opset 5) has no base values: fold them into a tree first');
  const feats: number[] = [], splits: number[] = [], modes: number[] = [], tIds: number[] = [], fIds: number[] = [];
  const tLeaf: number[] = [], fLeaf: number[] = [], missing: number[] = [], roots: number[] = [];
  const leafT: number[] = [], leafW: number[] = [];
  const leafOf = (nd: TreeNode): number => {
    if (nd.votes.length !== 1) throw new Error(`TreeEnsemble (opset 5) leaves carry exactly one target weight, a leaf has ${nd.votes.length}`);
    leafT.push(nd.votes[0].target);
    leafW.push(nd.votes[0].value);
    return leafT.length - 1;
  };
  for (const t0 of e.trees) {
    const t = compactTree(t0);
    const emit = (i: number): number => {
      const me = feats.length;
      const s = t.nodes[i].split;
      feats.push(s ? s.feature : 0);
      splits.push(s ? s.threshold : 0);
      modes.push(s ? BRANCH_MODES.indexOf(s.mode) : 0);
      missing.push(s && s.missingTracksTrue ? 1 : 0);
      tIds.push(0), fIds.push(0), tLeaf.push(0), fLeaf.push(0);
      if (!s) {
        // a single-leaf tree: a split whose both branches reach the same leaf
        const l = leafOf(t.nodes[i]);
        tIds[me] = l, fIds[me] = l, tLeaf[me] = 1, fLeaf[me] = 1;
        return me;
      }
      for (const [child, ids, leafs] of [[s.trueChild, tIds, tLeaf], [s.falseChild, fIds, fLeaf]] as const) {
        const c = t.nodes[child];
        if (c.split) ids[me] = emit(child);
        else {
          ids[me] = leafOf(c);
          leafs[me] = 1;
        }
      }
      return me;
    };
    roots.push(emit(0));
  }
  const dtype = e.double ? 'float64' : 'float32';
  const arr = (v: number[]) => (e.double ? Float64Array.from(v) : Float32Array.from(v));
  return {
    n_targets: { i: e.nTargets },
    aggregate_function: { i: AGGREGATES_V5.indexOf(e.aggregate) },
    post_transform: { i: POST_TRANSFORMS.indexOf(e.postTransform) },
    tree_roots: { ints: roots },
    nodes_featureids: { ints: feats },
    nodes_splits: { tensor: { dtype, shape: [splits.length], data: arr(splits) } },
    nodes_modes: { tensor: { dtype: 'uint8', shape: [modes.length], data: Uint8Array.from(modes) } },
    nodes_truenodeids: { ints: tIds },
    nodes_falsenodeids: { ints: fIds },
    nodes_trueleafs: { ints: tLeaf },
    nodes_falseleafs: { ints: fLeaf },
    nodes_missing_value_tracks_true: { ints: missing },
    leaf_targetids: { ints: leafT },
    leaf_weights: { tensor: { dtype, shape: [leafW.length], data: arr(leafW) } },
  };
}

export interface StandaloneTreeModelOptions {
  /** columns of the input; default: highest feature used + 1 */
  nFeatures?: number;
  inputName?: string;
  /** default 'Y' (regressor, TreeEnsemble) or ['label', 'probabilities'] (classifier) */
  outputNames?: string[];
  nodeName?: string;
  metadata?: Record<string, string>;
}

/** Writes a model holding only `e`: input float[N, F] (double[N, F] for double ensembles). */
export async function writeTreeEnsembleModel(path: string, e: TreeEnsemble, opts: StandaloneTreeModelOptions = {}): Promise<void> {
  const nFeatures = opts.nFeatures ?? maxFeature(e) + 1;
  const input = opts.inputName ?? 'X';
  // ORT reads double (`*_as_tensor`) attributes only when the input is double too
  const inType = e.double ? 'float64' : 'float32';
  const b = new OnnxGraphBuilder({
    graphName: 'trees',
    opset: 17,
    extraOpsets: { 'ai.onnx.ml': e.op === 'TreeEnsemble' ? 5 : 3 },
    irVersion: e.op === 'TreeEnsemble' ? 10 : 8,
    metadata: opts.metadata,
  });
  b.input(input, inType, ['N', Math.max(1, nFeatures)]);
  let outs: string[];
  if (e.op === 'TreeEnsembleClassifier') {
    outs = opts.outputNames ?? ['label', 'probabilities'];
    b.output(outs[0], e.classLabelsInts ? 'int64' : 'string', ['N']);
    b.output(outs[1], 'float32', ['N', e.nTargets]);
  } else {
    outs = opts.outputNames ?? ['Y'];
    // TreeEnsemble's output has the input's type; the older ops always give float
    b.output(outs[0], e.op === 'TreeEnsemble' ? inType : 'float32', ['N', e.nTargets]);
  }
  b.node(e.op, [input], outs, treeEnsembleAttributes(e), { name: opts.nodeName ?? 'trees', domain: 'ai.onnx.ml' });
  await writeOnnxFile(path, b.toModelProto());
}

/** Writes `ir` with the tree node `ref` replaced by one holding `e` (every other field kept). */
export async function writeReplacedTreeEnsemble(ir: ModelIR, ref: TreeEnsembleNodeRef, e: TreeEnsemble, outPath: string): Promise<void> {
  if (!ref.name) throw new ModelFileError(ir.path, `the ${ref.op} node has no name, so it cannot be replaced in place`);
  const names = new Set(mainNodes(ir).map((n) => n.name ?? ''));
  let name = `${ref.name}_pruned`;
  for (let k = 2; names.has(name); k++) name = `${ref.name}_pruned${k}`;
  await writeEditedOnnxModel(
    ir,
    {
      removeNodes: [ref.name],
      insertNodes: [{ after: ref.name, node: { name, op: e.op, inputs: ref.inputs, outputs: ref.outputs, attrs: treeEnsembleAttributes(e), domain: 'ai.onnx.ml' } }],
    },
    outPath,
  );
}
