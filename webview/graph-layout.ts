// The graph on screen: repeated-block groups folded into one node unless expanded, laid out
// top-down by dagre (layered, like Netron's). Layouts are cached per graph and expansion state.

import dagre from '@dagrejs/dagre';
import type { GraphOverlay, GraphView, GraphViewGroup, GraphViewNode } from '../src/shared/protocol.js';

export interface PlacedNode {
  id: string;
  label: string;
  /** op type, or "×k" of a group */
  sub: string;
  node?: GraphViewNode;
  group?: GraphViewGroup;
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface GraphLayout {
  nodes: PlacedNode[];
  edges: Array<Array<{ x: number; y: number }>>;
  width: number;
  height: number;
  /** dagre's time, ms */
  layoutMs: number;
}

const NODE_H = 36;
const MAX_LABEL = 26;
const cache = new Map<string, GraphLayout>();

function short(s: string): string {
  return s.length > MAX_LABEL ? `…${s.slice(-(MAX_LABEL - 1))}` : s;
}

/** What is drawn: member nodes of folded groups become their group. */
export function visibleGraph(g: GraphView, expanded: ReadonlySet<string>): { nodes: Array<Omit<PlacedNode, 'x' | 'y'>>; edges: Array<[string, string]> } {
  const owner = new Map<string, string>();
  const groups = new Map(g.groups.map((gr) => [gr.id, gr]));
  const nodes: Array<Omit<PlacedNode, 'x' | 'y'>> = [];
  const width = (a: string, b: string) => Math.max(72, Math.min(200, 7 * Math.max(a.length, b.length) + 16));
  for (const n of g.nodes) {
    const gr = n.group !== undefined && !expanded.has(n.group) ? groups.get(n.group) : undefined;
    if (gr) {
      owner.set(n.id, gr.id);
      if (gr.nodes[0] !== n.id) continue;
      const label = short(gr.label);
      const sub = `×${gr.repeat} blocks, ${gr.nodes.length} nodes`;
      nodes.push({ id: gr.id, label, sub, group: gr, w: width(label, sub), h: NODE_H + 6 });
    } else {
      owner.set(n.id, n.id);
      const label = short(n.label);
      const sub = n.subgraphNodes ? `${n.op} (+${n.subgraphNodes})` : n.op;
      nodes.push({ id: n.id, label, sub, node: n, w: width(label, sub), h: NODE_H });
    }
  }
  const seen = new Set<string>();
  const edges: Array<[string, string]> = [];
  for (const [a, b] of g.edges) {
    const [x, y] = [owner.get(a)!, owner.get(b)!];
    if (x === y || seen.has(`${x}>${y}`)) continue;
    seen.add(`${x}>${y}`);
    edges.push([x, y]);
  }
  return { nodes, edges };
}

export function layoutGraph(g: GraphView, expanded: ReadonlySet<string>): GraphLayout {
  const key = `${g.model}|${g.nodes.length}|${[...expanded].sort().join(',')}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const t0 = performance.now();
  const vis = visibleGraph(g, expanded);
  const dg = new dagre.graphlib.Graph();
  // longest-path ranking: a little less compact than network simplex, and the fastest of dagre's rankers
  dg.setGraph({ rankdir: 'TB', nodesep: 16, ranksep: 28, edgesep: 8, ranker: 'longest-path', marginx: 12, marginy: 12 });
  dg.setDefaultEdgeLabel(() => ({}));
  for (const n of vis.nodes) dg.setNode(n.id, { width: n.w, height: n.h });
  for (const [a, b] of vis.edges) dg.setEdge(a, b);
  dagre.layout(dg);
  const nodes = vis.nodes.map((n) => {
    const p = dg.node(n.id);
    return { ...n, x: p.x, y: p.y };
  });
  const edges = vis.edges.map(([a, b]) => dg.edge(a, b).points ?? []);
  const gl = dg.graph();
  const out: GraphLayout = { nodes, edges, width: gl.width ?? 0, height: gl.height ?? 0, layoutMs: performance.now() - t0 };
  cache.set(key, out);
  return out;
}

/** Overlays whose values are small shares are scaled to their largest value on screen. */
const RELATIVE: ReadonlySet<GraphOverlay> = new Set<GraphOverlay>(['params', 'int8Error', 'sensitivity']);

/** Each visible node's overlay value scaled to 0..1 (null: no value), and the scale's top. */
export function overlayScale(nodes: PlacedNode[], overlay: GraphOverlay): { value: (n: PlacedNode) => number | null; raw: (n: PlacedNode) => number | null; max: number } {
  const raw = (n: PlacedNode) => (n.group ?? n.node)?.overlay[overlay] ?? null;
  const max = RELATIVE.has(overlay) ? Math.max(1e-12, ...nodes.map((n) => raw(n) ?? 0)) : 1;
  return { value: (n) => { const v = raw(n); return v === null ? null : Math.min(1, v / max); }, raw, max };
}
