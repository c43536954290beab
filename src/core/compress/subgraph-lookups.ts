// Embedding lookups inside subgraphs: which tables a quantization can rewrite where they are read.
// torch.onnx exports nn.EmbeddingBag as a Loop whose body gathers the rows of a main-graph table
// (outer scope); the ONNX edit API (model/onnx/edit.ts `subgraphEdits`) edits nodes of a subgraph
// one level down, so a table whose every read inside subgraphs is a Gather of rows (axis 0, the
// table as data) in such a subgraph can be stored quantized and dequantized there. Used by
// quantize-onnx.ts (which rewrites them) and plan/space.ts (which offers them their storage types
// only: rows, dims and low rank do not rewrite lookups inside a subgraph).

import type { GraphNode, ModelIR } from '../model/ir.js';

export interface SubgraphRead {
  node: GraphNode;
  /** input position of the table in that node */
  index: number;
  /** position in the IR's node list */
  order: number;
}

export interface SubgraphLookups {
  /** tables read inside subgraphs, each with its reads there (any depth) */
  reads: Map<string, SubgraphRead[]>;
  /**
   * Why a table read inside subgraphs cannot be rewritten there (undefined: it can, or it is read
   * in the main graph only: every read is a row Gather, those in subgraphs one level down whose
   * host node's name is unique).
   */
  refusal(table: string): string | undefined;
}

/** A node's numeric attribute (int64 attributes may come as bigint), or `dflt` when absent. */
export function attrNum(n: GraphNode, key: string, dflt: number): number {
  const v = n.attrs[key];
  return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : dflt;
}

/** A row lookup of `table`: Gather on axis 0 with the table as data and not as ids. */
export function isRowGather(r: SubgraphRead, table: string): boolean {
  return r.node.op === 'Gather' && r.index === 0 && attrNum(r.node, 'axis', 0) === 0 && r.node.inputs[1] !== table;
}

export function subgraphLookups(ir: ModelIR): SubgraphLookups {
  const mainNames = new Map<string, number>();
  for (const n of ir.graph.nodes) if (!n.scope) mainNames.set(n.name, (mainNames.get(n.name) ?? 0) + 1);
  // a subgraph one level down is "<host node>/<attribute>" (attribute names have no '/')
  const host = (scope: string): number => mainNames.get(scope.slice(0, scope.lastIndexOf('/'))) ?? 0;
  const reads = new Map<string, SubgraphRead[]>();
  const mainReads = new Map<string, SubgraphRead[]>();
  ir.graph.nodes.forEach((node, order) => {
    const into = node.scope === undefined ? mainReads : reads;
    node.inputs.forEach((inp, index) => {
      if (inp) into.set(inp, [...(into.get(inp) ?? []), { node, index, order }]);
    });
  });
  return {
    reads,
    refusal(table: string): string | undefined {
      const rs = reads.get(table);
      if (!rs) return undefined;
      const deep = rs.find((r) => host(r.node.scope!) === 0);
      if (deep) return `read inside ${deep.node.scope}, a subgraph nested more than one level down`;
      const shared = rs.find((r) => host(r.node.scope!) > 1);
      if (shared) return `read inside ${shared.node.scope}, and ${host(shared.node.scope!)} main-graph nodes have that name`;
      const other = rs.find((r) => !isRowGather(r, table));
      if (other) return `read by ${other.node.op} (input ${other.index}) inside ${other.node.scope}: only Gathers of rows are rewritten in a subgraph`;
      // the other forms (a Cast back to the float name, a dequantized dense kernel) act in the main graph only
      const outside = (mainReads.get(table) ?? []).find((r) => !isRowGather(r, table));
      if (outside) return `gathered inside ${rs[0].node.scope} and read by ${outside.node.op} (input ${outside.index}) in the main graph: a table read in a subgraph is rewritten only where every read is a Gather of rows`;
      return undefined;
    },
  };
}
