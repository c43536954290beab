// Tensors an ONNX graph stores as integer codes and dequantizes before use: which scale and zero
// point turn each one back into the floats the model computes with. Found from the graph, not
// from names, so it holds for files other tools wrote as for ours:
//  - DequantizeLinear(codes, scale[, zero point]) of an initializer (ONNX QDQ weights, as ORT's
//    quantizer, Olive and `prunescope quantize` write dense kernels), per tensor or per axis;
//  - a looked-up table: Gather(codes, ids) -> [unpack] -> Cast -> [Sub zero point] -> Mul scale,
//    or -> DequantizeLinear, where the scale and zero point are initializers (per column or per
//    table) or Gather(scales, the same ids) (per row). Packed low-bit rows (PruneScope's int4,
//    int3 and int2 tables: BitShift / BitwiseAnd / Concat / Slice of uint8 bytes) are recognised
//    with their code width and the table's real width, and so are their byte scales: the zero
//    point the low bits of Gather(row bytes, ids) (BitwiseAnd, or a left and a right BitShift),
//    the scale Gather(levels, Cast(BitShift right of the same byte by the code width)).
// The reader gives the result to the IR (ModelTensor.codes) so that analysis reports a table's
// values, shape and parameter count instead of its packed bytes, and its scales as quantization
// parameters rather than as more embedding tables.

import type { DType, StoredCodes } from './ir.js';
import { packedRowBytes, type LowBits } from './packed-codes.js';

export interface CodesGraphNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, unknown>;
}

export interface CodesGraph {
  nodes: readonly CodesGraphNode[];
  /** dtype and shape of an initializer (or Constant output); undefined for computed values */
  constant(name: string): { dtype: DType; shape: number[] } | undefined;
  /** the values of a small integer constant (Slice bounds; int64, int32 or uint8) */
  intValues(name: string): number[] | undefined;
}

const CODE_DTYPES = new Set<DType>(['int8', 'uint8']);
/** ops between a gathered row of codes and its Cast to float */
const UNPACK_OPS = new Set(['BitShift', 'BitwiseAnd', 'Concat', 'Slice']);
/** ops that only reshape a gathered scale or zero point */
const SIDE_PASS = new Set(['Cast', 'Unsqueeze', 'Reshape', 'Identity']);

interface Index {
  producer: Map<string, CodesGraphNode>;
  consumers: Map<string, Array<{ node: CodesGraphNode; index: number }>>;
}

function indexGraph(nodes: readonly CodesGraphNode[]): Index {
  const producer = new Map<string, CodesGraphNode>();
  const consumers = new Map<string, Array<{ node: CodesGraphNode; index: number }>>();
  for (const n of nodes) {
    for (const o of n.outputs) if (o) producer.set(o, n);
    n.inputs.forEach((i, index) => {
      if (!i) return;
      let l = consumers.get(i);
      if (!l) consumers.set(i, (l = []));
      l.push({ node: n, index });
    });
  }
  return { producer, consumers };
}

function count(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The scale or zero point behind `name`: an initializer, or Gather(initializer, ids) (per row). */
function sideSource(g: CodesGraph, ix: Index, name: string, ids: string | undefined, depth = 0): { tensor: string; perRow: boolean } | undefined {
  if (g.constant(name)) return { tensor: name, perRow: false };
  const p = ix.producer.get(name);
  if (!p || depth > 4) return undefined;
  if (SIDE_PASS.has(p.op)) return sideSource(g, ix, p.inputs[0], ids, depth + 1);
  if (p.op === 'Gather' && ids !== undefined && p.inputs[1] === ids && g.constant(p.inputs[0])) return { tensor: p.inputs[0], perRow: true };
  return undefined;
}

/**
 * Walks back from `value` (the float codes of a lookup) through the unpacking to the Gather of a
 * codes initializer. Every branch must end at the same Gather; the nodes passed are returned.
 */
function codesBehind(g: CodesGraph, ix: Index, value: string): { gather: CodesGraphNode; passed: CodesGraphNode[]; sawCast: boolean } | undefined {
  const passed: CodesGraphNode[] = [];
  let gather: CodesGraphNode | undefined;
  let sawCast = false;
  const seen = new Set<string>();
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (passed.length > 64) return undefined;
    const p = ix.producer.get(v);
    if (!p) return undefined;
    if (p.op === 'Gather') {
      const c = g.constant(p.inputs[0]);
      if (!c || !CODE_DTYPES.has(c.dtype) || c.shape.length !== 2) return undefined;
      if (gather && gather !== p) return undefined;
      gather = p;
      continue;
    }
    passed.push(p);
    if (p.op === 'Cast') {
      sawCast = true;
      stack.push(p.inputs[0]);
    } else if (p.op === 'BitShift' || p.op === 'BitwiseAnd' || p.op === 'Slice') {
      stack.push(p.inputs[0]);
    } else if (p.op === 'Concat') {
      stack.push(...p.inputs);
    } else if (p.op === 'Add') {
      // the planes of a 3-bit code, added at their bit positions
      stack.push(...p.inputs);
    } else if (p.op === 'Mul') {
      // a plane's weight (2^shift), a scalar constant
      const k = p.inputs.findIndex((i) => {
        const c = g.constant(i);
        return c !== undefined && count(c.shape) === 1;
      });
      if (k < 0) return undefined;
      stack.push(p.inputs[1 - k]);
    } else return undefined;
  }
  return gather ? { gather, passed, sawCast } : undefined;
}

/** Code width and the table's real width from the unpacking nodes between Gather and Cast. */
function packing(g: CodesGraph, gather: CodesGraphNode, passed: CodesGraphNode[], storedCols: number): { bits: 8 | LowBits; cols: number } | undefined {
  const unpack = passed.filter((n) => UNPACK_OPS.has(n.op));
  if (unpack.length === 0) return { bits: 8, cols: storedCols };
  if (!unpack.some((n) => n.op === 'BitShift' || n.op === 'BitwiseAnd')) return undefined;
  const row = gather.outputs[0];
  const planes = unpack.filter((n) => n.op === 'Slice' && n.inputs[0] === row);
  let bits: LowBits;
  if (planes.length === 2) bits = 3;
  else if (planes.length === 0) {
    const concat = unpack.find((n) => n.op === 'Concat' && n.inputs.length > 1 && new Set(n.inputs).size === n.inputs.length);
    if (!concat) return undefined;
    if (concat.inputs.length === 2) bits = 4;
    else if (concat.inputs.length === 4) bits = 2;
    else return undefined;
  } else return undefined;
  // the padding of the last byte is sliced off: Slice(codes, 0, cols, -1)
  const cut = unpack.find((n) => n.op === 'Slice' && n.inputs[0] !== row && !planes.some((pl) => pl.outputs[0] === n.inputs[0]));
  let cols: number | undefined;
  if (cut) {
    const end = g.intValues(cut.inputs[2] ?? '');
    if (end?.length === 1 && end[0] > 0) cols = end[0];
  }
  if (cols === undefined) {
    for (let c = storedCols * 8; c > 0; c--) {
      if (packedRowBytes(c, bits) === storedCols) {
        cols = c;
        break;
      }
    }
  }
  if (cols === undefined || packedRowBytes(cols, bits) !== storedCols) return undefined;
  return { bits, cols };
}

/** The value behind `name` past ops that only reshape or cast it. */
function throughSidePass(ix: Index, name: string): { value: string; producer?: CodesGraphNode } {
  let value = name;
  for (let depth = 0; depth < 5; depth++) {
    const p = ix.producer.get(value);
    if (!p || !SIDE_PASS.has(p.op)) return { value, producer: p };
    value = p.inputs[0];
  }
  return { value, producer: ix.producer.get(value) };
}

function shiftOf(g: CodesGraph, node: CodesGraphNode, direction: 'LEFT' | 'RIGHT'): number | undefined {
  if (node.op !== 'BitShift' || node.attrs.direction !== direction) return undefined;
  const c = g.constant(node.inputs[1]);
  const v = c && count(c.shape) === 1 ? g.intValues(node.inputs[1]) : undefined;
  return v?.length === 1 ? v[0] : undefined;
}

/** The row-bytes initializer behind `name` when it is Gather(rowBytes [rows, 1] uint8, ids). */
function rowBytesGather(g: CodesGraph, ix: Index, name: string, ids: string, rows: number): string | undefined {
  const { producer: p } = throughSidePass(ix, name);
  if (!p || p.op !== 'Gather' || p.inputs[1] !== ids) return undefined;
  const c = g.constant(p.inputs[0]);
  return c && c.dtype === 'uint8' && count(c.shape) === rows ? p.inputs[0] : undefined;
}

/**
 * Byte scales: the scale is Gather(levels, index) with index = the row byte shifted right by
 * `bits`, and the zero point the byte's low `bits` bits; both from the same row-bytes tensor.
 */
function byteScalesOf(g: CodesGraph, ix: Index, scaleName: string, zeroName: string, ids: string, rows: number, bits: number): { levels: string; rowByte: string } | undefined {
  const s = throughSidePass(ix, scaleName).producer;
  if (!s || s.op !== 'Gather') return undefined;
  const levels = g.constant(s.inputs[0]);
  if (!levels || levels.shape.length !== 1 || levels.shape[0] !== 1 << (8 - bits)) return undefined;
  const shifted = throughSidePass(ix, s.inputs[1]).producer;
  if (!shifted || shiftOf(g, shifted, 'RIGHT') !== bits) return undefined;
  const rowByte = rowBytesGather(g, ix, shifted.inputs[0], ids, rows);
  if (!rowByte) return undefined;
  const z = throughSidePass(ix, zeroName).producer;
  if (!z) return undefined;
  let zeroFrom: string | undefined;
  if (z.op === 'BitwiseAnd') {
    const k = z.inputs.findIndex((i) => {
      const v = g.intValues(i);
      return v?.length === 1 && v[0] === (1 << bits) - 1;
    });
    if (k < 0) return undefined;
    zeroFrom = z.inputs[1 - k];
  } else if (shiftOf(g, z, 'RIGHT') === 8 - bits) {
    const up = throughSidePass(ix, z.inputs[0]).producer;
    if (!up || shiftOf(g, up, 'LEFT') !== 8 - bits) return undefined;
    zeroFrom = up.inputs[0];
  }
  if (zeroFrom === undefined || rowBytesGather(g, ix, zeroFrom, ids, rows) !== rowByte) return undefined;
  return { levels: s.inputs[0], rowByte };
}

function granularityOf(g: CodesGraph, side: { tensor: string; perRow: boolean }, rows: number, cols: number): StoredCodes['granularity'] | undefined {
  const n = count(g.constant(side.tensor)!.shape);
  if (side.perRow) return n === rows ? 'row' : undefined;
  if (n === 1) return 'tensor';
  if (n === cols) return 'column';
  return undefined;
}

/** A looked-up table dequantized by `mul` (Mul, or DequantizeLinear) of the codes. */
function lookupAt(g: CodesGraph, ix: Index, node: CodesGraphNode): { codes: string; view: StoredCodes } | undefined {
  let codesValue: string;
  let scaleName: string;
  let zeroName: string | undefined;
  if (node.op === 'DequantizeLinear') {
    codesValue = node.inputs[0];
    scaleName = node.inputs[1];
    zeroName = node.inputs[2] || undefined;
  } else {
    // Mul(x, scale): x is the codes (minus a zero point)
    const tryOrder = [0, 1];
    let found: { x: string; s: string } | undefined;
    for (const k of tryOrder) {
      const x = node.inputs[k];
      const p = ix.producer.get(x);
      if (p && (p.op === 'Sub' || p.op === 'Cast')) {
        found = { x, s: node.inputs[1 - k] };
        break;
      }
    }
    if (!found) return undefined;
    codesValue = found.x;
    scaleName = found.s;
    const p = ix.producer.get(codesValue)!;
    if (p.op === 'Sub') {
      codesValue = p.inputs[0];
      zeroName = p.inputs[1];
    }
  }
  const behind = codesBehind(g, ix, codesValue);
  if (!behind) return undefined;
  if (node.op !== 'DequantizeLinear' && !behind.sawCast) return undefined;
  const { gather, passed } = behind;
  const ids = gather.inputs[1];
  const codes = gather.inputs[0];
  const stored = g.constant(codes)!;
  const [rows, storedCols] = stored.shape;
  const pk = packing(g, gather, passed, storedCols);
  if (!pk) return undefined;
  if (pk.bits === 8 && node.op === 'DequantizeLinear' && passed.length > 0) return undefined;
  if (pk.bits !== 8 && zeroName) {
    const byte = byteScalesOf(g, ix, scaleName, zeroName, ids, rows, pk.bits);
    if (byte) return { codes, view: { bits: pk.bits, shape: [rows, pk.cols], scale: byte.levels, rowByte: byte.rowByte, granularity: 'row', lookup: true } };
  }
  const scale = sideSource(g, ix, scaleName, ids);
  if (!scale) return undefined;
  const granularity = granularityOf(g, scale, rows, pk.cols);
  if (!granularity) return undefined;
  let zeroPoint: string | undefined;
  if (zeroName) {
    const z = sideSource(g, ix, zeroName, ids);
    if (!z || granularityOf(g, z, rows, pk.cols) !== granularity) return undefined;
    zeroPoint = z.tensor;
  }
  return { codes, view: { bits: pk.bits, shape: [rows, pk.cols], scale: scale.tensor, ...(zeroPoint ? { zeroPoint } : {}), granularity, lookup: true } };
}

/** DequantizeLinear of a codes initializer with initializer scale (and zero point). */
function weightAt(g: CodesGraph, node: CodesGraphNode): { codes: string; view: StoredCodes } | undefined {
  const codes = node.inputs[0];
  const c = g.constant(codes);
  const s = g.constant(node.inputs[1] ?? '');
  if (!c || !s || !CODE_DTYPES.has(c.dtype)) return undefined;
  const z = node.inputs[2] ? g.constant(node.inputs[2]) : undefined;
  if (node.inputs[2] && !z) return undefined;
  const n = count(s.shape);
  let granularity: StoredCodes['granularity'];
  if (n === 1) granularity = 'tensor';
  else {
    if (c.shape.length !== 2) return undefined;
    const raw = node.attrs.axis;
    const axis = typeof raw === 'number' ? (raw < 0 ? raw + 2 : raw) : 1;
    if (axis === 0 && n === c.shape[0]) granularity = 'row';
    else if (axis === 1 && n === c.shape[1]) granularity = 'column';
    else return undefined;
  }
  return { codes, view: { bits: 8, shape: c.shape.slice(), scale: node.inputs[1], ...(z ? { zeroPoint: node.inputs[2] } : {}), granularity, lookup: false } };
}

/**
 * Every codes tensor of the graph with its dequantization. A tensor dequantized in two different
 * ways (or also read raw elsewhere) is left out: its values are not one float tensor.
 */
export function findStoredCodes(g: CodesGraph): Map<string, StoredCodes> {
  const ix = indexGraph(g.nodes);
  const found = new Map<string, StoredCodes>();
  const conflicting = new Set<string>();
  const add = (r: { codes: string; view: StoredCodes } | undefined) => {
    if (!r) return;
    const prev = found.get(r.codes);
    if (prev && JSON.stringify(prev) !== JSON.stringify(r.view)) conflicting.add(r.codes);
    else found.set(r.codes, r.view);
  };
  for (const node of g.nodes) {
    if (node.op === 'DequantizeLinear') {
      if (g.constant(node.inputs[0])) add(weightAt(g, node));
      else add(lookupAt(g, ix, node));
    } else if (node.op === 'Mul') add(lookupAt(g, ix, node));
  }
  for (const c of conflicting) found.delete(c);
  // a codes tensor read anywhere else (a second, raw Gather) is not a plain stored form
  for (const [codes, view] of [...found]) {
    const uses = ix.consumers.get(codes) ?? [];
    const ok = view.lookup ? uses.every((u) => u.node.op === 'Gather' && u.index === 0) : uses.every((u) => u.node.op === 'DequantizeLinear' && u.index === 0);
    if (!ok) found.delete(codes);
  }
  return found;
}
