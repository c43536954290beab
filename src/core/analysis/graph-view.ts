// The graph the panel draws: the model IR's nodes (ONNX nodes with their If/Loop/Scan bodies
// folded into the parent; TF.js layers or graph ops; model inputs and outputs), edges from
// producer to consumer, per-node overlays taken from the analysis report (never recomputed), and
// runs of identical consecutive blocks marked as groups so that a 2,000-node graph stays small
// on screen.

import type { GraphNode, ModelIR } from '../model/ir.js';
import type { GraphView, GraphViewGroup, GraphViewNode, SensitivityView } from '../../shared/protocol.js';
import type { ModelReport, TensorReport } from '../../shared/report.js';
import { overlayOf, sensitivityByTensor } from '../../shared/graph-overlay.js';

/** Longest block (in nodes) the repeat search tries. */
const MAX_BLOCK = 64;
/** Constant producers are folded into their consumers (their output is a weight, not a step). */
const CONSTANT_OPS = new Set(['Constant', 'Const']);

interface Draft {
  label: string;
  op: string;
  tensors: Set<string>;
  /** value names this node reads / writes (subgraph bodies' included) */
  reads: string[];
  writes: string[];
  subgraphNodes: number;
}

export function buildGraphView(ir: ModelIR, report: ModelReport, sensitivity?: SensitivityView): GraphView {
  const tensorByName = new Map(report.tensors.map((t) => [t.name, t]));
  const notes: string[] = [];
  const drafts = ir.graph.nodes.length > 0 ? nodeDrafts(ir, tensorByName) : layerDrafts(ir);
  if (ir.graph.nodes.length === 0) notes.push('no graph in the file (weights only): one node per layer, no edges');

  // model inputs (read by a node, produced by none) and outputs
  const produced = new Set(drafts.flatMap((d) => d.writes));
  const read = new Set(drafts.flatMap((d) => d.reads));
  const inputs = ir.graph.inputs.map((v) => v.name).filter((n) => read.has(n) && !produced.has(n));
  const outputs = ir.graph.outputs.map((v) => v.name).filter((n) => produced.has(n));
  const all: Draft[] = [
    ...inputs.map((n) => ({ label: n, op: 'input', tensors: new Set<string>(), reads: [], writes: [n], subgraphNodes: 0 })),
    ...drafts,
    ...outputs.map((n) => ({ label: n, op: 'output', tensors: new Set<string>(), reads: [n], writes: [], subgraphNodes: 0 })),
  ];

  const order = topoOrder(all);
  const idOf = new Map(order.map((d, i) => [d, `n${i}`]));
  const producer = new Map<string, string>();
  for (const d of order) for (const w of d.writes) producer.set(w, idOf.get(d)!);
  const edgeKeys = new Set<string>();
  const edges: Array<[string, string]> = [];
  for (const d of order) {
    const to = idOf.get(d)!;
    for (const r of d.reads) {
      const from = producer.get(r);
      if (!from || from === to || edgeKeys.has(`${from}>${to}`)) continue;
      edgeKeys.add(`${from}>${to}`);
      edges.push([from, to]);
    }
  }

  const sens = sensitivity ? sensitivityByTensor(sensitivity) : undefined;
  // weights only: shape and index constants would bury them (large constant buffers stay)
  const tensorsOf = (names: Iterable<string>): TensorReport[] =>
    [...names].map((n) => tensorByName.get(n)).filter((t): t is TensorReport => !!t && (t.trainable || t.params >= 1024)).sort((a, b) => b.params - a.params);
  const nodes: GraphViewNode[] = order.map((d) => {
    const ts = tensorsOf(d.tensors);
    const n: GraphViewNode = {
      id: idOf.get(d)!,
      label: d.label,
      op: d.op,
      tensors: ts.map((t) => t.name),
      params: ts.reduce((s, t) => s + t.params, 0),
      overlay: overlayOf(ts, report.trainableParams, sens),
    };
    if (d.subgraphNodes) n.subgraphNodes = d.subgraphNodes;
    return n;
  });

  const groups: GraphViewGroup[] = repeatedRuns(nodes, edges).map((run, gi) => {
    const members = nodes.slice(run.start, run.start + run.block * run.repeat);
    const id = `g${gi}`;
    for (const m of members) m.group = id;
    const ts = tensorsOf(new Set(members.flatMap((m) => m.tensors)));
    return {
      id,
      label: blockLabel(members.slice(0, run.block).map((m) => m.op)),
      repeat: run.repeat,
      nodes: members.map((m) => m.id),
      params: ts.reduce((s, t) => s + t.params, 0),
      overlay: overlayOf(ts, report.trainableParams, sens),
    };
  });
  return { model: report.path, format: report.format, nodes, edges, groups, sourceNodes: ir.graph.nodes.length, notes };
}

/** Graph nodes, subgraph bodies folded into the top-level node that owns them, constants folded into their consumers. */
function nodeDrafts(ir: ModelIR, tensors: Map<string, TensorReport>): Draft[] {
  const layerTensors = new Map(ir.layers.map((l) => [l.name, l.tensors]));
  const tfjsLayers = ir.format === 'tfjs-layers';
  const drafts: Draft[] = [];
  const topByName = new Map<string, Draft>();
  let last: Draft | undefined;
  for (const n of ir.graph.nodes) {
    const reads = n.inputs.map(valueName).filter((x) => x.length > 0);
    if (n.scope && !tfjsLayers) {
      const owner = last && n.scope.startsWith(`${last.label}/`) ? last : ownerOf(n, topByName);
      if (owner) {
        owner.subgraphNodes++;
        owner.reads.push(...reads);
        owner.writes.push(...n.outputs);
        for (const r of reads) if (tensors.has(r)) owner.tensors.add(r);
        continue;
      }
    }
    if (CONSTANT_OPS.has(n.op)) continue;
    const d: Draft = { label: n.name, op: n.op, tensors: new Set(), reads, writes: n.outputs.slice(), subgraphNodes: 0 };
    if (tfjsLayers) for (const t of layerTensors.get(n.name) ?? []) d.tensors.add(t);
    for (const r of reads) if (tensors.has(r)) d.tensors.add(r);
    drafts.push(d);
    topByName.set(n.name, d);
    last = d;
  }
  return drafts;
}

function ownerOf(n: GraphNode, top: Map<string, Draft>): Draft | undefined {
  // the scope is "<parent name>/<attribute>[/<child>/<attribute>...]"; names may hold '/' themselves
  let best: Draft | undefined;
  for (const [name, d] of top) if (n.scope!.startsWith(`${name}/`) && (!best || name.length > best.label.length)) best = d;
  return best;
}

/** A weights-only model: one node per layer, no wiring known. */
function layerDrafts(ir: ModelIR): Draft[] {
  return ir.layers.map((l) => ({ label: l.name, op: l.kind, tensors: new Set(l.tensors), reads: l.inbound.slice(), writes: [l.name], subgraphNodes: 0 }));
}

/** "dense/MatMul:0" -> "dense/MatMul", "^ctrl" -> "ctrl" (TF graph inputs); ONNX names pass unchanged. */
function valueName(s: string): string {
  return s.replace(/^\^/, '').replace(/:\d+$/, '');
}

/** Kahn's order, ties broken by file order (ONNX files are already sorted; TF graphs need not be). */
function topoOrder(ds: Draft[]): Draft[] {
  const producer = new Map<string, number>();
  ds.forEach((d, i) => d.writes.forEach((w) => producer.set(w, i)));
  const indeg = new Array<number>(ds.length).fill(0);
  const next: number[][] = ds.map(() => []);
  ds.forEach((d, i) => {
    for (const p of new Set(d.reads.map((r) => producer.get(r)).filter((p): p is number => p !== undefined && p !== i))) {
      next[p].push(i);
      indeg[i]++;
    }
  });
  const out: Draft[] = [];
  const ready = ds.map((_, i) => i).filter((i) => indeg[i] === 0);
  const done = new Array<boolean>(ds.length).fill(false);
  // a sorted ready list (smallest file index first) keeps the order stable
  while (ready.length) {
    ready.sort((a, b) => b - a);
    const i = ready.pop()!;
    done[i] = true;
    out.push(ds[i]);
    for (const j of next[i]) if (--indeg[j] === 0) ready.push(j);
  }
  // a cycle (malformed file): the rest in file order
  ds.forEach((d, i) => (done[i] ? undefined : out.push(d)));
  return out;
}

interface Run {
  start: number;
  block: number;
  repeat: number;
}

/**
 * Runs of consecutive identical blocks: the same op sequence with the same wiring inside each
 * block (edges that enter a block from before it are ignored, so the first block, fed from
 * elsewhere, matches the rest) and each block reading from the one before. Greedy from the start, taking at each position the run that
 * covers the most nodes (at least 4, and 3 repeats of a single node).
 */
export function repeatedRuns(nodes: Array<{ id: string; op: string }>, edges: Array<[string, string]>): Run[] {
  const pos = new Map(nodes.map((n, i) => [n.id, i]));
  const back: number[][] = nodes.map(() => []);
  for (const [a, b] of edges) {
    const d = pos.get(b)! - pos.get(a)!;
    if (d > 0 && d < MAX_BLOCK) back[pos.get(b)!].push(d);
  }
  for (const list of back) list.sort((x, y) => x - y);
  const fixed = (op: string) => op === 'input' || op === 'output';
  /** node p's producers inside a block that starts at `start`, as offsets */
  const inner = (p: number, start: number) => back[p].filter((d) => p - d >= start).join(',');
  const same = (a: number, b: number, len: number): boolean => {
    // a block must read from the one before it: parallel towers are not one run
    let linked = false;
    for (let k = 0; k < len && !linked; k++) linked = back[b + k].some((d) => b + k - d >= b - len && b + k - d < b);
    if (!linked) return false;
    for (let k = 0; k < len; k++) {
      if (nodes[a + k].op !== nodes[b + k].op || fixed(nodes[a + k].op)) return false;
      if (inner(a + k, a) !== inner(b + k, b)) return false;
    }
    return true;
  };
  const runs: Run[] = [];
  let i = 0;
  while (i < nodes.length) {
    let best: Run | undefined;
    for (let L = 1; L <= MAX_BLOCK && i + 2 * L <= nodes.length; L++) {
      let k = 1;
      while (i + (k + 1) * L <= nodes.length && same(i, i + k * L, L)) k++;
      if (k < 2 || (L === 1 && k < 3) || L * k < 4) continue;
      if (!best || L * k > best.block * best.repeat) best = { start: i, block: L, repeat: k };
    }
    if (best) {
      runs.push(best);
      i += best.block * best.repeat;
    } else i++;
  }
  return runs;
}

function blockLabel(ops: string[]): string {
  const shown = ops.slice(0, 4).join(' → ');
  return ops.length > 4 ? `${shown} → … (${ops.length} ops)` : shown;
}
