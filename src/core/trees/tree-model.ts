// The in-memory form of a tree ensemble (what ai.onnx.ml TreeEnsembleRegressor /
// TreeEnsembleClassifier / TreeEnsemble describe): one node array per tree, index = node id
// after renumbering, children by index, votes on leaves.

export type BranchMode = 'BRANCH_LEQ' | 'BRANCH_LT' | 'BRANCH_GTE' | 'BRANCH_GT' | 'BRANCH_EQ' | 'BRANCH_NEQ';
export const BRANCH_MODES: readonly BranchMode[] = ['BRANCH_LEQ', 'BRANCH_LT', 'BRANCH_GTE', 'BRANCH_GT', 'BRANCH_EQ', 'BRANCH_NEQ'];

export type PostTransform = 'NONE' | 'SOFTMAX' | 'LOGISTIC' | 'SOFTMAX_ZERO' | 'PROBIT';
export type AggregateFunction = 'SUM' | 'AVERAGE' | 'MIN' | 'MAX';

export interface TreeSplit {
  feature: number;
  threshold: number;
  mode: BranchMode;
  /** node indexes in the same tree */
  trueChild: number;
  falseChild: number;
  /** a NaN input goes to the true child (otherwise to the false child) */
  missingTracksTrue: boolean;
}

export interface TreeVote {
  /** target (regressor) or class index (classifier) */
  target: number;
  value: number;
}

export interface TreeNode {
  /** absent on leaves */
  split?: TreeSplit;
  /** votes, on leaves */
  votes: TreeVote[];
  /** nodes_hitrates: the exporter's cover (training samples or hessian sum reaching the node), when recorded */
  cover?: number;
}

export interface Tree {
  /** the tree id in the file */
  id: number;
  /** nodes[0] is the root */
  nodes: TreeNode[];
}

export type TreeOp = 'TreeEnsembleRegressor' | 'TreeEnsembleClassifier' | 'TreeEnsemble';

export interface TreeEnsemble {
  op: TreeOp;
  /** regressor targets or classifier classes */
  nTargets: number;
  /** classifier only: one of the two */
  classLabelsInts?: number[];
  classLabelsStrings?: string[];
  trees: Tree[];
  /** per target; empty = all 0 */
  baseValues: number[];
  postTransform: PostTransform;
  aggregate: AggregateFunction;
  /**
   * true when thresholds and weights are doubles (the `*_as_tensor` attributes, or TreeEnsemble
   * with double tensors): ORT then compares and sums in double, otherwise in float.
   */
  double: boolean;
  /** every node has a cover (nodes_hitrates) */
  hasCover: boolean;
  /** nodes_hitrates held this one value on every node, so it was not read as cover */
  constantHitrate?: number;
}

export function isLeaf(n: TreeNode): boolean {
  return n.split === undefined;
}

export function cloneEnsemble(e: TreeEnsemble): TreeEnsemble {
  return {
    ...e,
    classLabelsInts: e.classLabelsInts?.slice(),
    classLabelsStrings: e.classLabelsStrings?.slice(),
    baseValues: e.baseValues.slice(),
    trees: e.trees.map((t) => ({
      id: t.id,
      nodes: t.nodes.map((n) => ({ split: n.split ? { ...n.split } : undefined, votes: n.votes.map((v) => ({ ...v })), cover: n.cover })),
    })),
  };
}

/** Indexes of the nodes reachable from the root, in pre-order (root, true subtree, false subtree). */
export function reachableNodes(t: Tree): number[] {
  const out: number[] = [];
  const seen = new Uint8Array(t.nodes.length);
  const stack = [0];
  while (stack.length) {
    const i = stack.pop() as number;
    if (seen[i]) continue;
    seen[i] = 1;
    out.push(i);
    const s = t.nodes[i].split;
    if (s) stack.push(s.falseChild, s.trueChild);
  }
  return out;
}

/** A copy of the tree keeping only reachable nodes, renumbered in pre-order (root = 0). */
export function compactTree(t: Tree): Tree {
  const order = reachableNodes(t);
  const map = new Map<number, number>();
  order.forEach((old, i) => map.set(old, i));
  const nodes = order.map((old) => {
    const n = t.nodes[old];
    return {
      split: n.split ? { ...n.split, trueChild: map.get(n.split.trueChild) as number, falseChild: map.get(n.split.falseChild) as number } : undefined,
      votes: n.votes.map((v) => ({ ...v })),
      cover: n.cover,
    };
  });
  return { id: t.id, nodes };
}

/** Depth of every reachable node (root 0); -1 for unreachable ones. */
export function nodeDepths(t: Tree): Int32Array {
  const d = new Int32Array(t.nodes.length).fill(-1);
  d[0] = 0;
  for (const i of reachableNodes(t)) {
    const s = t.nodes[i].split;
    if (s) {
      d[s.trueChild] = d[i] + 1;
      d[s.falseChild] = d[i] + 1;
    }
  }
  return d;
}

export function countNodes(e: TreeEnsemble): { nodes: number; leaves: number } {
  let nodes = 0;
  let leaves = 0;
  for (const t of e.trees) {
    for (const i of reachableNodes(t)) {
      nodes++;
      if (!t.nodes[i].split) leaves++;
    }
  }
  return { nodes, leaves };
}

/** Highest feature index used by a split, -1 when none. */
export function maxFeature(e: TreeEnsemble): number {
  let m = -1;
  for (const t of e.trees) for (const n of t.nodes) if (n.split && n.split.feature > m) m = n.split.feature;
  return m;
}
