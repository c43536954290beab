// The two rewrites every tree pruning job is made of: a subtree becomes one leaf (the
// (cover-)weighted mean of its leaves), and a split on a removed feature is replaced by its
// majority child.

import type { FeatureMatrix } from './tree-eval.js';
import { cloneEnsemble, compactTree, reachableNodes, type Tree, type TreeEnsemble, type TreeNode } from './tree-model.js';

/**
 * Per target: the (cover-)weighted mean of the leaves under node `i`. Without recorded cover
 * every leaf weighs 1 (a plain mean of the leaves).
 */
export function subtreeMean(t: Tree, i: number, useCover: boolean): { votes: Map<number, number>; weight: number } {
  const sums = new Map<number, number>();
  let weight = 0;
  const stack = [i];
  while (stack.length) {
    const k = stack.pop() as number;
    const n: TreeNode = t.nodes[k];
    if (n.split) {
      stack.push(n.split.trueChild, n.split.falseChild);
      continue;
    }
    const w = useCover ? n.cover ?? 0 : 1;
    weight += w;
    for (const v of n.votes) sums.set(v.target, (sums.get(v.target) ?? 0) + w * v.value);
  }
  const votes = new Map<number, number>();
  // all leaves with zero cover: fall back to the plain mean rather than dividing by 0
  if (weight <= 0 && useCover) return subtreeMean(t, i, false);
  for (const [k, s] of sums) votes.set(k, s / weight);
  return { votes, weight };
}

/** Turns node `i` of `t` into a leaf voting the (cover-)weighted mean of its leaves (in place). */
export function collapseNode(t: Tree, i: number, useCover: boolean): void {
  const { votes } = subtreeMean(t, i, useCover);
  const n = t.nodes[i];
  n.split = undefined;
  n.votes = [...votes.entries()].sort((a, b) => a[0] - b[0]).map(([target, value]) => ({ target, value }));
}

/** Rows of `X` reaching each node of `t` (by index; undefined for nodes no row reaches). */
export function rowsPerNode(t: Tree, X: FeatureMatrix, double: boolean): Map<number, number[]> {
  const m = new Map<number, number[]>();
  const th = (x: number) => (double ? x : Math.fround(x));
  for (let r = 0; r < X.rows; r++) {
    let i = 0;
    for (;;) {
      let a = m.get(i);
      if (!a) m.set(i, (a = []));
      a.push(r);
      const s = t.nodes[i].split;
      if (!s) break;
      // same routing as leafIndex, one node at a time
      const x = X.data[r * X.features + s.feature];
      const v = th(s.threshold);
      const go =
        s.mode === 'BRANCH_LEQ' ? x <= v
        : s.mode === 'BRANCH_LT' ? x < v
        : s.mode === 'BRANCH_GTE' ? x >= v
        : s.mode === 'BRANCH_GT' ? x > v
        : s.mode === 'BRANCH_EQ' ? x === v
        : x !== v;
      i = go || (s.missingTracksTrue && Number.isNaN(x)) ? s.trueChild : s.falseChild;
    }
  }
  return m;
}

function leafCount(t: Tree, i: number): number {
  let c = 0;
  const stack = [i];
  while (stack.length) {
    const k = stack.pop() as number;
    const s = t.nodes[k].split;
    if (s) stack.push(s.trueChild, s.falseChild);
    else c++;
  }
  return c;
}

export type MajorityBy = 'cover' | 'data' | 'leaves';

/**
 * Removes every split on `features`: the node takes the place of its majority child (by recorded
 * cover; else by the rows of `data` reaching each child; else by number of leaves; ties go to
 * the true child). Returns a compacted copy.
 */
export function collapseFeatures(e: TreeEnsemble, features: number[], data?: FeatureMatrix): { ensemble: TreeEnsemble; majorityBy: MajorityBy; replacedSplits: number } {
  const drop = new Set(features);
  const out = cloneEnsemble(e);
  const majorityBy: MajorityBy = e.hasCover ? 'cover' : data ? 'data' : 'leaves';
  let replacedSplits = 0;
  out.trees = out.trees.map((t) => {
    const counts = majorityBy === 'data' && data ? rowsPerNode(t, data, e.double) : undefined;
    const weight = (i: number): number =>
      majorityBy === 'cover' ? t.nodes[i].cover ?? 0 : majorityBy === 'data' ? counts?.get(i)?.length ?? 0 : leafCount(t, i);
    // top-down: a replaced node may receive a child that splits on a dropped feature too
    const stack = [0];
    while (stack.length) {
      const i = stack.pop() as number;
      let s = t.nodes[i].split;
      while (s && drop.has(s.feature)) {
        const keep = weight(s.falseChild) > weight(s.trueChild) ? s.falseChild : s.trueChild;
        const child = t.nodes[keep];
        const cover = t.nodes[i].cover;
        t.nodes[i] = { split: child.split ? { ...child.split } : undefined, votes: child.votes.map((v) => ({ ...v })), cover: child.cover ?? cover };
        if (counts) counts.set(i, counts.get(keep) ?? []);
        replacedSplits++;
        s = t.nodes[i].split;
      }
      if (s) stack.push(s.trueChild, s.falseChild);
    }
    return compactTree(t);
  });
  return { ensemble: out, majorityBy, replacedSplits };
}

/**
 * For an ensemble that records no cover: a copy whose nodes' cover is the number of rows of `X`
 * reaching them, so that a collapsed subtree votes the mean of its leaves weighted as the data
 * reaches them rather than the plain mean. The copy is for choosing only: withoutCover takes the
 * counts off before the ensemble is written (they are no training counts).
 */
export function withDataCover(e: TreeEnsemble, X: FeatureMatrix): TreeEnsemble {
  const out = cloneEnsemble(e);
  for (const t of out.trees) {
    const rows = rowsPerNode(t, X, e.double);
    t.nodes.forEach((n, i) => (n.cover = rows.get(i)?.length ?? 0));
  }
  return { ...out, hasCover: true };
}

/** The ensemble without node covers (what withDataCover added), to be written as it was read. */
export function withoutCover(e: TreeEnsemble): TreeEnsemble {
  const out = cloneEnsemble(e);
  for (const t of out.trees) for (const n of t.nodes) delete n.cover;
  return { ...out, hasCover: false };
}

/** Features with at least one reachable split. */
export function usedFeatures(e: TreeEnsemble): Set<number> {
  const used = new Set<number>();
  for (const t of e.trees) for (const i of reachableNodes(t)) {
    const s = t.nodes[i].split;
    if (s) used.add(s.feature);
  }
  return used;
}

