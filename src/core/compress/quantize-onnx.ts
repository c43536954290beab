// ONNX side of quantization: turns the chosen float32 initializers into a structural graph edit
// (model/onnx/edit.ts) that ONNX Runtime runs.
//  - float16: the table/kernel is stored as float16; an embedding table is gathered in float16
//    and its rows cast to float (the table stays half size in memory); any other weight gets a
//    Cast node that produces the original name (ORT folds it at load: half size on disk only).
//  - int8 embedding table (every consumer a Gather on axis 0): int8 rows + one scale per row;
//    Gather(q) -> Cast -> Mul(Gather(scale)): only the looked-up rows are dequantized.
//  - int4/int3/int2 embedding table (same condition): codes packed 2 or 4 per uint8 byte, 3-bit
//    codes as a 2-bit and a 1-bit plane (planar, see packRowCodes) + a scale and a uint8 zero
//    point per row; Gather(packed) -> BitShift/BitwiseAnd per part -> Concat (-> Slice off row
//    padding) -> Cast (-> per plane, weighted and added) -> Sub(zero point) -> Mul(scale).
//    com.microsoft GatherBlockQuantized runs these too, but 3-7x slower on ORT 1.30's CPU.
//    With `scales: 'byte'` the row's zero point and the index of its scale among the table's
//    2^(8 - bits) float32 levels share one byte (scale-levels.ts): Gather(row byte) -> BitwiseAnd
//    (or two BitShifts) -> zero point; BitShift -> Cast -> Gather(levels) -> scale.
//    A table narrower than NARROW_TABLE_COLS (a low-rank factor), or any table when asked
//    (`scales: 'column'`), gets a scale and zero point per column instead (float32 vectors; Sub
//    and Mul broadcast them, no Gather).
//    The nodes and tensors between a Gather's ids and its output are named from a short tag
//    ("pq3/..."), not from the output's name (replaceGathers).
//  - A table gathered inside a subgraph one level down (the Loop that torch.onnx exports for
//    nn.EmbeddingBag) is rewritten there the same way: the lookup nodes go into that subgraph,
//    which reads the quantized table, scales and constants from the main graph (outer scope).
//  - int8 dense kernel (MatMul input B, or Gemm input B with alpha = beta = 1, transA = 0):
//    DynamicQuantizeLinear(x) -> MatMulInteger(x_q, W_q, x_zp) -> Cast -> Mul(x_scale * w_scale),
//    (+ Add bias for Gemm), the pattern ORT fuses into DynamicQuantizeMatMul. Per-output-channel
//    symmetric weights, 7 bits by default (see ENGINE_FACTS: 8-bit weights overflow in AVX2
//    kernels without VNNI).

import { DType, GraphNode, ModelIR, ModelTensor } from '../model/ir.js';
import { OnnxGraphEdit, OnnxNodeSpec, onnxDefaultOpset } from '../model/onnx/edit.js';
import { isOnnxNative } from '../model/onnx.js';
import { forEachTensorChunk, readTensorFloat32 } from '../model/tensor-data.js';
import { TensorByteStream } from '../model/tensor-stream.js';
import { attrNum, isRowGather, subgraphLookups } from './subgraph-lookups.js';
import { fitScaleLevels, levelChunkLowBit } from './scale-levels.js';
import { codePlanes, packedRowBytes, packRowBytes, packRowCodes, planeRowBytes, type LowBits, type PlaneBits } from '../model/packed-codes.js';
import {
  RowQuantizedLowBit,
  accumulateRowAbsMax,
  accumulateRowRangesLowBit,
  chooseScalesLowBit,
  codeRowsLowBit,
  columnScaled,
  COLUMN_SCALES_MAX_BYTES,
  lowBitsOf,
  packsSmallerThanInt8,
  finishRowsLowBit,
  quantizeChunkInt8,
  fitChunkScalesLowBit,
  quantizeChunkLowBit,
  quantizeColumnsInt8,
  quantizeColumnsLowBit,
  rowScalesFromAbsMax,
  startRowsLowBit,
  toFloat16Chunk,
  NARROW_TABLE_COLS,
  type LowBitScales,
} from './quantize-math.js';
import type { TensorChange } from './types.js';

export interface OnnxQuantizePlan {
  edit: OnnxGraphEdit;
  changes: TensorChange[];
  /** tensors asked for but left as they are, with the reason */
  skipped: Array<{ tensor: string; reason: string }>;
  /** did any int8/int4/int2 table get float16 scales / float32 scales */
  float16Scales: number;
  float32Scales: number;
  /** low-bit tables stored with byte scales (scale levels) */
  byteScales: number;
  /** set when the dense mode asked for cannot be used on this model's opset */
  denseModeNote?: string;
  /** tables for which a 'fast' lookup was asked but the compact one was kept, with why */
  notes: string[];
  /** the dense mode used */
  denseMode?: 'weights-only' | 'dynamic';
  /** int4/int2 tables: how codes were unpacked (BitwiseAnd needs opset 18; BitShift alone, 11) */
  unpackOps?: 'BitShift + BitwiseAnd' | 'BitShift';
}

export interface OnnxQuantizeOptions {
  dtype: 'int8' | 'float16' | 'int4' | 'int3' | 'int2';
  /** 7-bit dense weights (qmax 63), for the 'dynamic' dense mode */
  reduceRange: boolean;
  /**
   * 'dynamic': DynamicQuantizeLinear + MatMulInteger (integer matmul, activations quantized per
   * batch); 'weights-only': DequantizeLinear on the int8 weight, float matmul (weight error only)
   */
  dense: 'dynamic' | 'weights-only';
  /**
   * int8 tables: 'compact' = float16 row scales, Gather + Cast + Mul (smallest file);
   * 'fast' = float32 row scales, Gather + DequantizeLinear (fewer ops: lookups about as fast as float)
   */
  lookup: 'compact' | 'fast';
  /**
   * int4/int3/int2 tables: 'row' (default) = a scale and zero point per row; 'byte' = a zero
   * point and one of the table's scale levels per row, in one byte (scale-levels.ts); 'column' =
   * one per column for the whole table (no per-row bytes: smaller, less exact where rows differ
   * in scale). Tables narrower than NARROW_TABLE_COLS get per-column scales either way.
   */
  scales?: LowBitScales;
  signal?: AbortSignal;
  onTensor?: (done: number, total: number, name: string) => void;
  /** elements per chunk when tables are streamed (default 1 Mi); tests make it small */
  chunkElements?: number;
  /** int4/int3/int2: output-aware rounding of these tables (by name), with their feedback factors (output-aware-rounding.ts) */
  feedback?: Map<string, Float64Array>;
  /** where int8 tables' codes and scales come from: computed here (default), or from shards */
  rowsInt8?: RowsInt8Source;
}

/** One table's int8: the codes, streamed when the model is written, and the scales. */
export interface RowsInt8 {
  codes: TensorByteStream;
  scales: Float32Array;
  /** the scales rounded to float16, when asked for and every scale fits */
  scaleBits?: Uint16Array;
  maxAbsError: number;
}

/**
 * The int8 of table `t` with one scale per `rowLen` elements (float16 scales when asked and they
 * fit). The plan decides rowLen and float16Scales; the source only computes, so a shard worker
 * computes exactly what one process would.
 */
export type RowsInt8Source = (t: ModelTensor, rowLen: number, float16Scales: boolean) => Promise<RowsInt8>;

const CHUNK_ELEMENTS = 1 << 20;

/**
 * Per-row (rowLen = cols) or per-table (rowLen = rows * cols) symmetric int8 of a table, streamed:
 * pass 1 reads the table for row scales, pass 2 for the weight error; the codes are produced a
 * chunk at a time when the model is written (a third read), so no copy of the table is held.
 */
export async function streamedRowsInt8(t: ModelTensor, rowLen: number, float16Scales: boolean, chunk = CHUNK_ELEMENTS): Promise<RowsInt8> {
  const count = t.shape.reduce((a, b) => a * b, 1);
  const step = Math.max(1, chunk);
  const absmax = new Float64Array(rowLen > 0 ? count / rowLen : 0);
  await forEachTensorChunk(t, step, (c, first) => accumulateRowAbsMax(c, first, rowLen, absmax));
  const { scales, scaleBits } = rowScalesFromAbsMax(absmax, 127, float16Scales);
  const q = new Int8Array(Math.min(step, count));
  let maxAbsError = 0;
  await forEachTensorChunk(t, step, (c, first) => {
    maxAbsError = Math.max(maxAbsError, quantizeChunkInt8(c, first, rowLen, scales, 127, q));
  });
  const codes: TensorByteStream = {
    byteLength: count,
    stream: (sink) =>
      forEachTensorChunk(t, step, async (c, first) => {
        const out = new Int8Array(q.buffer, 0, c.length);
        quantizeChunkInt8(c, first, rowLen, scales, 127, out);
        await sink(new Uint8Array(out.buffer, 0, c.length));
      }),
  };
  return { codes, scales, scaleBits, maxAbsError };
}

/** float16 of a tensor, streamed: one pass for the error and overflow, the bits made again chunk by chunk when written. */
export async function streamedFloat16(t: ModelTensor, chunk = CHUNK_ELEMENTS): Promise<{ bits: TensorByteStream; maxAbsError: number; overflow: number }> {
  const count = t.shape.reduce((a, b) => a * b, 1);
  const step = Math.max(1, chunk);
  const scratch = new Uint16Array(Math.min(step, count));
  const err = { maxAbsError: 0, overflow: 0 };
  await forEachTensorChunk(t, step, (c) => toFloat16Chunk(c, scratch, err));
  const bits: TensorByteStream = {
    byteLength: count * 2,
    async stream(sink) {
      // a buffer per call: each write of the model streams on its own
      const out = new Uint16Array(Math.min(step, count));
      await forEachTensorChunk(t, step, async (c) => {
        toFloat16Chunk(c, out, { maxAbsError: 0, overflow: 0 });
        await sink(new Uint8Array(out.buffer, 0, c.length * 2));
      });
    },
  };
  return { bits, ...err };
}

/** One int4/int3/int2 table: the packed codes, streamed when the model is written, and the per-row values (byte scales: the levels and each row's byte too). */
export type RowsLowBit = Pick<RowQuantizedLowBit, 'scales' | 'scaleBits' | 'zeroPoints' | 'maxAbsError' | 'rmse'> & { packed: TensorByteStream; levels?: Float32Array; rowBytes?: Uint8Array };

/**
 * Per-row int4/int3/int2 of a [rows, cols] table, streamed in chunks of whole rows (a row's clip
 * is fitted on the whole row): pass 1 reads the row ranges, pass 2 fits scales and zero points and
 * measures the error; with `scales` 'byte', the table's scale levels are fitted to those scales
 * and pass 3 gives each row a level and its zero point (scale-levels.ts). The codes are made and
 * packed again a chunk at a time when the model is written, so only per-row arrays are held.
 * Equal bit for bit to quantizeRowsLowBit ('row': float16 scales when `float16Scales`) or
 * quantizeRowsLowBitLevels ('byte').
 */
export async function streamedRowsLowBit(
  t: ModelTensor, bits: LowBits, float16Scales: boolean, chunk = CHUNK_ELEMENTS, feedback?: Float64Array, scales: 'row' | 'byte' = 'row',
): Promise<RowsLowBit> {
  const [rows, cols] = t.shape;
  const step = Math.max(1, Math.floor(chunk / Math.max(1, cols))) * cols;
  const p = startRowsLowBit(rows, cols, bits, feedback);
  await forEachTensorChunk(t, step, (c, first) => accumulateRowRangesLowBit(p, c, first));
  chooseScalesLowBit(p, float16Scales && scales === 'row');
  const chunkRows = Math.min(step, rows * cols) / Math.max(1, cols);
  const codes = new Uint8Array(chunkRows * cols);
  let byteScales: { levels: Float32Array; rowBytes: Uint8Array } | undefined;
  if (scales === 'byte') {
    // the rows' own scales, then the levels fitted to them, then each row's level and codes
    await forEachTensorChunk(t, step, (c, first) => void fitChunkScalesLowBit(p, c, first));
    const levels = fitScaleLevels(p.scales, bits);
    const index = new Uint8Array(rows);
    await forEachTensorChunk(t, step, (c, first) => levelChunkLowBit(p, c, first, levels, index, codes));
    byteScales = { levels, rowBytes: packRowBytes(index, p.zeroPoints, bits) };
  } else {
    await forEachTensorChunk(t, step, (c, first) => quantizeChunkLowBit(p, c, first, codes));
  }
  const q = finishRowsLowBit(p);
  const { zeroPoints } = q;
  const top = p.top;
  const w = packedRowBytes(cols, bits);
  const packed: TensorByteStream = {
    byteLength: rows * w,
    async stream(sink) {
      // buffers per call: each write of the model streams on its own
      const code = new Uint8Array(chunkRows * cols);
      const out = new Uint8Array(chunkRows * w);
      await forEachTensorChunk(t, step, async (c, first) => {
        const n = c.length / cols;
        codeRowsLowBit(c, first / cols, cols, q.scales, zeroPoints, top, code, { maxAbsError: 0, sse: 0 }, feedback);
        await sink(packRowCodes(code.subarray(0, c.length), n, cols, bits, out.subarray(0, n * w)));
      });
    },
  };
  return { ...q, packed, ...byteScales };
}

function bytesOf(a: Int8Array | Uint8Array | Uint16Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const FLOAT = 1; // TensorProto.FLOAT, Cast's `to`
const INT64 = 7; // TensorProto.INT64

interface Use {
  node: GraphNode;
  index: number;
  /** position in the IR's node list (file order; a subgraph's nodes come right after their host) */
  order: number;
}

/** Fresh tensor/node names that clash with nothing in the model or in this edit. */
class Names {
  private readonly used = new Set<string>();
  constructor(ir: ModelIR) {
    for (const t of ir.tensors) this.used.add(t.name);
    for (const i of [...ir.graph.inputs, ...ir.graph.outputs]) this.used.add(i.name);
    for (const n of ir.graph.nodes) {
      this.used.add(n.name);
      for (const o of n.outputs) this.used.add(o);
      for (const i of n.inputs) this.used.add(i);
    }
  }
  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }
  private tags = 0;
  /**
   * A short prefix for the names inside one lookup, "pq0", "pq1", ...: one no name in the model
   * starts with, so that a second quantization's lookups never share an earlier one's tag.
   */
  tag(): string {
    for (;;) {
      const t = `pq${this.tags++}`;
      if (![...this.used].some((n) => n === t || n.startsWith(`${t}_`) || n.startsWith(`${t}/`))) {
        this.used.add(t);
        return t;
      }
    }
  }
}

function transposeInt8(a: Int8Array, rows: number, cols: number): Int8Array {
  const out = new Int8Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

type PlanEdit = Required<Pick<OnnxGraphEdit, 'setInitializers' | 'removeInitializers' | 'insertNodes' | 'removeNodes'>> & OnnxGraphEdit;

/**
 * Replaces each Gather in `us` by the nodes `lookup` gives (they must produce its output). The
 * nodes and tensors between get names from a short tag per lookup ("pq3/bitshift", "pq3_int4_shr"),
 * not from the Gather's output: exporters name tensors like "/embed_item_GMF/Gather_output_0",
 * and 10-25 names derived from that cost a small model's file 2-4 KB per table.
 */
function replaceGathers(edit: PlanEdit, names: Names, us: Use[], lookup: (ids: string, out: string, tag: string) => OnnxNodeSpec[]): void {
  for (const u of us) {
    const nodes = lookup(u.node.inputs[1], u.node.outputs[0], names.tag());
    if (u.node.scope) {
      // a Gather inside a Loop / Scan body or an If branch: edited there
      const subs = (edit.subgraphEdits ??= []);
      let sub = subs.find((x) => x.scope === u.node.scope);
      if (!sub) subs.push((sub = { scope: u.node.scope, insertNodes: [], removeNodes: [] }));
      for (const node of nodes) sub.insertNodes!.push({ before: u.node.name, node });
      sub.removeNodes!.push(u.node.name);
      continue;
    }
    for (const node of nodes) edit.insertNodes.push({ before: u.node.name, node });
    edit.removeNodes.push(u.node.name);
  }
}

/** Gather of a [rows, 1] scale table (+ Cast to float when float16): the nodes and the float scales' name. */
function gatherRowScale(names: Names, sName: string, f16: boolean, ids: string, tag: string): { nodes: OnnxNodeSpec[]; scale: string } {
  const gs = names.fresh(`${tag}_scale`);
  const nodes: OnnxNodeSpec[] = [{ name: names.fresh(`${tag}/scale`), op: 'Gather', inputs: [sName, ids], outputs: [gs], attrs: { axis: { i: 0 } } }];
  if (!f16) return { nodes, scale: gs };
  const scale = names.fresh(`${tag}_scale_f`);
  nodes.push({ name: names.fresh(`${tag}/scale_cast`), op: 'Cast', inputs: [gs], outputs: [scale], attrs: { to: { i: FLOAT } } });
  return { nodes, scale };
}

/** Small constant initializers (shift amounts, masks, slice bounds), one per value. */
class Constants {
  private readonly made = new Map<string, string>();
  constructor(private readonly names: Names, private readonly edit: PlanEdit) {}
  uint8(v: number): string {
    return this.get(`u8_${v}`, 'uint8', [], Uint8Array.of(v));
  }
  /** a uint8 vector (per-element shifts), one initializer per distinct vector */
  uint8s(v: number[]): string {
    return this.get(`u8v_${v.join('_')}`, 'uint8', [v.length], Uint8Array.from(v), `u8v_${v.length}`);
  }
  int64(v: number): string {
    return this.get(`i64_${v}`, 'int64', [1], new Uint8Array(BigInt64Array.of(BigInt(v)).buffer));
  }
  float(v: number): string {
    return this.get(`f32_${v}`, 'float32', [], new Uint8Array(Float32Array.of(v).buffer));
  }
  private get(key: string, dtype: 'uint8' | 'int64' | 'float32', shape: number[], data: Uint8Array, label = key): string {
    let name = this.made.get(key);
    if (!name) {
      name = this.names.fresh(`quantize_${label.replace('-', 'm')}`);
      this.made.set(key, name);
      this.edit.setInitializers.push({ name, dtype, shape, data });
    }
    return name;
  }
}

/**
 * Nodes that turn gathered packed bytes `g` [..., w] into float codes [..., cols] (part k of a
 * byte holds bits k*b .. k*b+b-1, see packRowCodes). Planes of 2 and 4 parts (4- and 2-bit codes)
 * shift each part out on its own and concatenate the parts: measured on ORT 1.30 (1 thread,
 * 100000 x 64 table, batch 256) about 10% faster than the repeated form below. The 8 parts of a
 * 1-bit plane would take 15 shifts that way: those bytes are repeated once per part instead, so
 * that one shift by a per-element vector (and a mask, or a second shift) unpacks them all, in 3-4
 * nodes. Row padding is sliced off.
 */
function unpackPlane(k: Constants, names: Names, g: string, cols: number, bits: PlaneBits, withAnd: boolean, tag: string): { nodes: OnnxNodeSpec[]; codes: string } {
  const per = 8 / bits;
  const w = planeRowBytes(cols, bits);
  const nodes: OnnxNodeSpec[] = [];
  const shift = (x: string, by: string, direction: 'LEFT' | 'RIGHT'): string => {
    const y = names.fresh(`${g}_${direction === 'LEFT' ? 'shl' : 'shr'}`);
    nodes.push({ name: names.fresh(`${tag}/bitshift`), op: 'BitShift', inputs: [x, by], outputs: [y], attrs: { direction: { s: direction } } });
    return y;
  };
  const mask = (x: string): string => {
    const y = names.fresh(`${g}_masked`);
    nodes.push({ name: names.fresh(`${tag}/mask`), op: 'BitwiseAnd', inputs: [x, k.uint8((1 << bits) - 1)], outputs: [y] });
    return y;
  };
  let codes: string;
  if (per < 8) {
    const parts: string[] = [];
    for (let p = 0; p < per; p++) {
      if (p === per - 1) parts.push(shift(g, k.uint8(bits * p), 'RIGHT'));
      else if (!withAnd) parts.push(shift(shift(g, k.uint8(8 - bits * (p + 1)), 'LEFT'), k.uint8(8 - bits), 'RIGHT'));
      else parts.push(mask(p === 0 ? g : shift(g, k.uint8(bits * p), 'RIGHT')));
    }
    codes = names.fresh(`${g}_codes`);
    nodes.push({ name: names.fresh(`${tag}/concat`), op: 'Concat', inputs: parts, outputs: [codes], attrs: { axis: { i: -1 } } });
  } else {
    const repeated = names.fresh(`${g}_parts`);
    nodes.push({ name: names.fresh(`${tag}/parts`), op: 'Concat', inputs: new Array<string>(per).fill(g), outputs: [repeated], attrs: { axis: { i: -1 } } });
    const perElement = (f: (part: number) => number): string => k.uint8s(Array.from({ length: per * w }, (_, i) => f(Math.floor(i / w))));
    codes = withAnd
      ? mask(shift(repeated, perElement((p) => bits * p), 'RIGHT'))
      : shift(shift(repeated, perElement((p) => 8 - bits * (p + 1)), 'LEFT'), k.uint8(8 - bits), 'RIGHT');
  }
  if (w * per !== cols) {
    const cut = names.fresh(`${g}_codes_cut`);
    nodes.push({ name: names.fresh(`${tag}/slice`), op: 'Slice', inputs: [codes, k.int64(0), k.int64(cols), k.int64(-1)], outputs: [cut] });
    codes = cut;
  }
  const f = names.fresh(`${g}_codes_f`);
  nodes.push({ name: names.fresh(`${tag}/codes_cast`), op: 'Cast', inputs: [codes], outputs: [f], attrs: { to: { i: FLOAT } } });
  return { nodes, codes: f };
}

/**
 * Nodes that turn gathered packed rows `g` [..., packedRowBytes] into float codes [..., cols]:
 * each plane (codePlanes: one for 4 and 2 bits; for 3 bits a 2-bit and a 1-bit plane) sliced off
 * the row when there are several, unpacked, and added in at its bit position.
 */
function unpackCodes(k: Constants, names: Names, g: string, cols: number, bits: LowBits, withAnd: boolean, tag: string): { nodes: OnnxNodeSpec[]; codes: string } {
  const planes = codePlanes(bits);
  if (planes.length === 1) return unpackPlane(k, names, g, cols, planes[0].bits, withAnd, tag);
  const nodes: OnnxNodeSpec[] = [];
  let at = 0;
  let sum: string | undefined;
  for (const plane of planes) {
    const w = planeRowBytes(cols, plane.bits);
    const part = names.fresh(`${g}_plane${plane.shift}`);
    nodes.push({ name: names.fresh(`${tag}/plane`), op: 'Slice', inputs: [g, k.int64(at), k.int64(at + w), k.int64(-1)], outputs: [part] });
    at += w;
    const un = unpackPlane(k, names, part, cols, plane.bits, withAnd, tag);
    nodes.push(...un.nodes);
    let value = un.codes;
    if (plane.shift > 0) {
      value = names.fresh(`${part}_weighted`);
      nodes.push({ name: names.fresh(`${tag}/plane_weight`), op: 'Mul', inputs: [un.codes, k.float(2 ** plane.shift)], outputs: [value] });
    }
    if (sum === undefined) sum = value;
    else {
      const next = names.fresh(`${g}_codes_sum`);
      nodes.push({ name: names.fresh(`${tag}/plane_add`), op: 'Add', inputs: [sum, value], outputs: [next] });
      sum = next;
    }
  }
  return { nodes, codes: sum! };
}

interface TableContext {
  names: Names;
  edit: PlanEdit;
  consts: Constants;
  plan: OnnxQuantizePlan;
}

/**
 * int4/int3/int2 table (every reader a Gather of rows, checked by the caller): packed codes, row
 * scales (float16 when they fit) and uint8 row zero points; each Gather becomes
 * Gather(packed) -> unpack -> Sub(Gather(zero points)) -> Mul(Gather(scales)). With byte scales
 * (scale-levels.ts): the table's levels (float32) and one byte per row; the row's byte is gathered
 * once, its low bits (BitwiseAnd, or two BitShifts before opset 18) are the zero point, its high
 * bits (BitShift) index the levels: Gather(levels, Cast(int64)).
 */
async function lowBitTable(cx: TableContext, t: ModelTensor, us: Use[], bits: LowBits, withAnd: boolean, chunk: number, feedback: Float64Array | undefined, scales: 'row' | 'byte'): Promise<TensorChange> {
  const { names, edit, consts: k } = cx;
  const [rows, cols] = t.shape;
  const rq = await streamedRowsLowBit(t, bits, true, chunk, feedback, scales);
  const w = packedRowBytes(cols, bits);
  const dtype = `int${bits}` as const;
  const byte = rq.levels && rq.rowBytes ? { levels: rq.levels, rowBytes: rq.rowBytes } : undefined;
  const scaleDtype: DType = rq.scaleBits ? 'float16' : 'float32';
  const packed = { name: names.fresh(`${t.name}_${dtype}`), shape: [rows, w], dtype: 'uint8' as const, data: rq.packed };
  const stored = byte
    ? [
        packed,
        { name: names.fresh(`${t.name}_scale_levels`), shape: [byte.levels.length], dtype: 'float32' as const, data: bytesOf(byte.levels) },
        { name: names.fresh(`${t.name}_row_byte`), shape: [rows, 1], dtype: 'uint8' as const, data: byte.rowBytes },
      ]
    : [
        packed,
        { name: names.fresh(`${t.name}_scale`), shape: [rows, 1], dtype: scaleDtype, data: bytesOf(rq.scaleBits ?? rq.scales) },
        { name: names.fresh(`${t.name}_zero_point`), shape: [rows, 1], dtype: 'uint8' as const, data: rq.zeroPoints },
      ];
  for (const x of stored) edit.setInitializers.push({ ...x, shape: x.shape.slice() });
  edit.removeInitializers.push(t.name);
  if (byte) cx.plan.byteScales++;
  else cx.plan[rq.scaleBits ? 'float16Scales' : 'float32Scales']++;
  cx.plan.unpackOps = withAnd ? 'BitShift + BitwiseAnd' : 'BitShift';
  // byte scales: sName is the levels, zName the row bytes
  const [qName, sName, zName] = stored.map((x) => x.name);
  replaceGathers(edit, names, us, (ids, out, tag): OnnxNodeSpec[] => {
    const g = names.fresh(`${tag}_${dtype}`);
    const gzf = names.fresh(`${tag}_zero_point_f`);
    const centered = names.fresh(`${tag}_centered`);
    const un = unpackCodes(k, names, g, cols, bits, withAnd, tag);
    const side: OnnxNodeSpec[] = [];
    let scale: string;
    if (byte) {
      const gb = names.fresh(`${tag}_row_byte`);
      const gz = names.fresh(`${tag}_zero_point`);
      const li = names.fresh(`${tag}_level`);
      const li64 = names.fresh(`${tag}_level_i64`);
      scale = names.fresh(`${tag}_scale`);
      const right = { direction: { s: 'RIGHT' } };
      side.push({ name: names.fresh(`${tag}/row_byte`), op: 'Gather', inputs: [zName, ids], outputs: [gb], attrs: { axis: { i: 0 } } });
      if (withAnd) side.push({ name: names.fresh(`${tag}/zero_point`), op: 'BitwiseAnd', inputs: [gb, k.uint8((1 << bits) - 1)], outputs: [gz] });
      else {
        const up = names.fresh(`${tag}_zero_point_up`);
        side.push(
          { name: names.fresh(`${tag}/zero_point_up`), op: 'BitShift', inputs: [gb, k.uint8(8 - bits)], outputs: [up], attrs: { direction: { s: 'LEFT' } } },
          { name: names.fresh(`${tag}/zero_point`), op: 'BitShift', inputs: [up, k.uint8(8 - bits)], outputs: [gz], attrs: right },
        );
      }
      side.push(
        { name: names.fresh(`${tag}/zero_point_cast`), op: 'Cast', inputs: [gz], outputs: [gzf], attrs: { to: { i: FLOAT } } },
        { name: names.fresh(`${tag}/level`), op: 'BitShift', inputs: [gb, k.uint8(bits)], outputs: [li], attrs: right },
        { name: names.fresh(`${tag}/level_cast`), op: 'Cast', inputs: [li], outputs: [li64], attrs: { to: { i: INT64 } } },
        { name: names.fresh(`${tag}/scale`), op: 'Gather', inputs: [sName, li64], outputs: [scale], attrs: { axis: { i: 0 } } },
      );
    } else {
      const gz = names.fresh(`${tag}_zero_point`);
      const sc = gatherRowScale(names, sName, !!rq.scaleBits, ids, tag);
      side.push(
        { name: names.fresh(`${tag}/zero_point`), op: 'Gather', inputs: [zName, ids], outputs: [gz], attrs: { axis: { i: 0 } } },
        { name: names.fresh(`${tag}/zero_point_cast`), op: 'Cast', inputs: [gz], outputs: [gzf], attrs: { to: { i: FLOAT } } },
        ...sc.nodes,
      );
      scale = sc.scale;
    }
    return [
      { name: names.fresh(`${tag}/${dtype}`), op: 'Gather', inputs: [qName, ids], outputs: [g], attrs: { axis: { i: 0 } } },
      ...un.nodes,
      ...side,
      { name: names.fresh(`${tag}/center`), op: 'Sub', inputs: [un.codes, gzf], outputs: [centered] },
      { name: names.fresh(`${tag}/dequantize`), op: 'Mul', inputs: [centered, scale], outputs: [out] },
    ];
  });
  const layout = byte
    ? `one byte per row: its zero point and one of the table's ${byte.levels.length} scale levels`
    : `${scaleDtype} scale + uint8 zero point per row`;
  return {
    tensor: t.name,
    action:
      `${dtype} per-row asymmetric (${bits}-bit codes ${bits === 3 ? 'in a 2-bit and a 1-bit plane' : `packed ${8 / bits} per byte`}, ${layout}; ${feedback ? 'output-aware rounding; ' : ''}` +
      `Gather + ${cx.plan.unpackOps} unpack + Sub + Mul dequantize only the looked-up rows; max |Δw| ${rq.maxAbsError.toExponential(2)}, RMSE ${rq.rmse.toExponential(2)})`,
    before: { shape: t.shape.slice(), dtype: t.dtype, bytes: t.storage.byteLength },
    after: stored.map((x) => ({ name: x.name, shape: x.shape.slice(), dtype: x.dtype, bytes: x.data.byteLength })),
  };
}

/**
 * int4/int3/int2 table with one scale and zero point per column (float32 vectors of `cols`), its
 * codes packed per row as per-row tables' are; each Gather becomes Gather(packed) -> unpack ->
 * Sub(zero points) -> Mul(scales). Tables narrower than NARROW_TABLE_COLS (a low-rank factor) get
 * it always: a scale and zero point per row would cost about as much as their codes. Wider tables
 * get it when asked (`scales: 'column'`): 3 bytes less per row, at the price of one range for
 * rows of every norm.
 */
async function columnLowBitTable(cx: TableContext, t: ModelTensor, us: Use[], bits: LowBits, withAnd: boolean, feedback?: Float64Array): Promise<TensorChange> {
  const { names, edit } = cx;
  const [rows, cols] = t.shape;
  const q = quantizeColumnsLowBit(await readTensorFloat32(t), rows, cols, bits, feedback);
  const dtype = `int${bits}` as const;
  const stored = [
    { name: names.fresh(`${t.name}_${dtype}`), shape: [rows, packedRowBytes(cols, bits)], dtype: 'uint8' as const, data: q.packed },
    { name: names.fresh(`${t.name}_scale`), shape: [cols], dtype: 'float32' as const, data: bytesOf(q.scales) },
    { name: names.fresh(`${t.name}_zero_point`), shape: [cols], dtype: 'float32' as const, data: bytesOf(Float32Array.from(q.zeroPoints)) },
  ];
  for (const x of stored) edit.setInitializers.push(x);
  edit.removeInitializers.push(t.name);
  cx.plan.unpackOps = withAnd ? 'BitShift + BitwiseAnd' : 'BitShift';
  const [qName, sName, zName] = stored.map((x) => x.name);
  replaceGathers(edit, names, us, (ids, out, tag): OnnxNodeSpec[] => {
    const g = names.fresh(`${tag}_${dtype}`);
    const centered = names.fresh(`${tag}_centered`);
    const un = unpackCodes(cx.consts, names, g, cols, bits, withAnd, tag);
    return [
      { name: names.fresh(`${tag}/${dtype}`), op: 'Gather', inputs: [qName, ids], outputs: [g], attrs: { axis: { i: 0 } } },
      ...un.nodes,
      { name: names.fresh(`${tag}/center`), op: 'Sub', inputs: [un.codes, zName], outputs: [centered] },
      { name: names.fresh(`${tag}/dequantize`), op: 'Mul', inputs: [centered, sName], outputs: [out] },
    ];
  });
  return {
    tensor: t.name,
    action:
      `${dtype} per-column asymmetric (${cols < NARROW_TABLE_COLS ? `only ${cols} wide: ` : ''}one float32 scale and zero point per column instead of per row; ${bits}-bit codes ${bits === 3 ? 'in a 2-bit and a 1-bit plane' : `packed ${8 / bits} per byte`}; ${feedback ? 'output-aware rounding; ' : ''}` +
      `Gather + ${cx.plan.unpackOps} unpack + Sub + Mul; max |Δw| ${q.maxAbsError.toExponential(2)}, RMSE ${q.rmse.toExponential(2)})`,
    before: { shape: t.shape.slice(), dtype: t.dtype, bytes: t.storage.byteLength },
    after: stored.map((x) => ({ name: x.name, shape: x.shape.slice(), dtype: x.dtype, bytes: x.data.byteLength })),
  };
}

export async function planOnnxQuantization(ir: ModelIR, selected: ModelTensor[], opts: OnnxQuantizeOptions): Promise<OnnxQuantizePlan> {
  if (!isOnnxNative(ir.native)) throw new Error('planOnnxQuantization: the IR was not read from an ONNX file');
  const keys = ir.native.tensorKeys;
  const names = new Names(ir);
  const edit: PlanEdit = {
    setInitializers: [],
    removeInitializers: [],
    insertNodes: [],
    removeNodes: [],
  };
  const plan: OnnxQuantizePlan = { edit, changes: [], skipped: [], float16Scales: 0, float32Scales: 0, byteScales: 0, notes: [] };
  const skip = (tensor: string, reason: string): void => void plan.skipped.push({ tensor, reason });
  const consts = new Constants(names, edit);

  // main-graph reads here; reads inside subgraphs in inSubgraphs
  const uses = new Map<string, Use[]>();
  const inSubgraphs = subgraphLookups(ir);
  ir.graph.nodes.forEach((node, order) => {
    if (node.scope) return;
    node.inputs.forEach((inp, index) => {
      if (!inp) return;
      const list = uses.get(inp) ?? [];
      list.push({ node, index, order });
      uses.set(inp, list);
    });
  });
  const graphOutputs = new Set(ir.graph.outputs.map((o) => o.name));
  const graphInputs = new Set(ir.graph.inputs.map((o) => o.name));

  // dense replacements are emitted after all tensors are planned, in graph order, so that one
  // DynamicQuantizeLinear per activation is inserted before its first user
  const denseJobs: Array<{ use: Use; wq: string; ws: string }> = [];
  let needsOpset = 0;
  // The model's opset is never raised (ops such as Squeeze or ReduceSum changed meaning at 13):
  // per-channel DequantizeLinear needs 13, DynamicQuantizeLinear 11.
  const opset = onnxDefaultOpset(ir);
  const denseMode: 'weights-only' | 'dynamic' | undefined =
    opts.dense === 'weights-only' && opset >= 13 ? 'weights-only' : opset >= 11 ? 'dynamic' : undefined;
  if (opts.dtype === 'int8' && denseMode !== opts.dense) plan.denseModeNote = denseMode
    ? `dense kernels use the dynamic (MatMulInteger) form: the model's opset ${opset} has no per-channel DequantizeLinear (opset 13), and the opset is not raised`
    : `dense kernels are left float32: the model's opset ${opset} is below 11 (DynamicQuantizeLinear), and the opset is not raised`;
  plan.denseMode = denseMode;
  const rank1Inputs = new Set(ir.graph.inputs.filter((i) => i.shape?.length === 1).map((i) => i.name));
  let done = 0;
  for (const t of selected) {
    opts.signal?.throwIfAborted();
    opts.onTensor?.(done++, selected.length, t.name);
    const key = keys.get(t.name);
    if (!key || !/^g\/i\d+$/.test(key)) {
      skip(t.name, 'not a main-graph initializer (a Constant node or subgraph tensor)');
      continue;
    }
    if (t.dtype !== 'float32' || t.storage.dtype !== 'float32') {
      skip(t.name, `stored as ${t.storage.dtype}, only float32 weights are quantized`);
      continue;
    }
    // a table gathered by rows in a Loop body (nn.EmbeddingBag) or an If branch is rewritten
    // there (subgraph-lookups.ts); any other read inside a subgraph leaves it as it is
    const inner: Use[] = inSubgraphs.reads.get(t.name) ?? [];
    if (inner.length > 0) {
      const why = inSubgraphs.refusal(t.name) ?? (t.shape.length !== 2 ? `rank ${t.shape.length}, not a table` : undefined);
      if (why) {
        skip(t.name, `used inside a subgraph (If/Loop/Scan body): ${why}`);
        continue;
      }
    }
    if (graphOutputs.has(t.name) || graphInputs.has(t.name)) {
      skip(t.name, 'also a graph input or output');
      continue;
    }
    const us = [...(uses.get(t.name) ?? []), ...inner];
    if (us.length === 0) {
      skip(t.name, 'no node reads it');
      continue;
    }
    const before = { shape: t.shape.slice(), dtype: t.dtype, bytes: t.storage.byteLength };
    const allGather = t.shape.length === 2 && us.every((u) => isRowGather(u, t.name));
    const unnamed = us.find((u) => !u.node.name);

    if (opts.dtype === 'float16') {
      const h = await streamedFloat16(t, opts.chunkElements ?? CHUNK_ELEMENTS);
      if (h.overflow > 0) {
        skip(t.name, `${h.overflow} values exceed float16's range (±65504)`);
        continue;
      }
      const hName = names.fresh(`${t.name}_fp16`);
      edit.setInitializers.push({ name: hName, dtype: 'float16', shape: t.shape.slice(), data: h.bits });
      edit.removeInitializers.push(t.name);
      if (allGather && !unnamed) {
        replaceGathers(edit, names, us, (ids, out, tag): OnnxNodeSpec[] => {
          const g = names.fresh(`${tag}_fp16`);
          return [
            { name: names.fresh(`${tag}/fp16`), op: 'Gather', inputs: [hName, ids], outputs: [g], attrs: { axis: { i: 0 } } },
            { name: names.fresh(`${tag}/cast`), op: 'Cast', inputs: [g], outputs: [out], attrs: { to: { i: FLOAT } } },
          ];
        });
      } else {
        // a Cast that gives the old name back: no consumer changes; ORT folds it into a float32
        // constant at session creation
        const first = us.reduce((a, b) => (b.order < a.order ? b : a));
        if (!first.node.name) {
          skip(t.name, 'its first consumer node has no name, so nothing can be inserted before it');
          edit.setInitializers.pop();
          edit.removeInitializers.pop();
          continue;
        }
        edit.insertNodes.push({
          before: first.node.name,
          node: { name: names.fresh(`${t.name}_cast`), op: 'Cast', inputs: [hName], outputs: [t.name], attrs: { to: { i: FLOAT } } },
        });
      }
      plan.changes.push({
        tensor: t.name,
        action: `float16 (${allGather && !unnamed ? 'gathered in float16, rows cast to float' : 'Cast to float after it'}; max |Δw| ${h.maxAbsError.toExponential(2)})`,
        before,
        after: [{ name: hName, shape: t.shape.slice(), dtype: 'float16', bytes: h.bits.byteLength }],
      });
      continue;
    }

    // int8, int4, int2
    if (unnamed) {
      skip(t.name, `consumer ${unnamed.node.op} has no node name, so it cannot be replaced`);
      continue;
    }
    if (opts.dtype === 'int4' || opts.dtype === 'int3' || opts.dtype === 'int2') {
      const bits = lowBitsOf(opts.dtype)!;
      const other = us.find((u) => !(u.node.op === 'Gather' && u.index === 0 && attrNum(u.node, 'axis', 0) === 0));
      const narrow = t.shape.length === 2 && allGather && !packsSmallerThanInt8(t.shape[1], bits);
      const why = t.shape.length !== 2 ? `rank ${t.shape.length}, not a table`
        : !allGather ? `read by ${other?.node.op ?? 'Gather'} (input ${other?.index ?? 1}): ${opts.dtype} rewrites a table only when every reader is a Gather of rows`
        : narrow ? undefined
        : opset < 11 ? `the model's opset ${opset} is below 11 (BitShift), and the opset is not raised`
        : undefined;
      if (why) {
        skip(t.name, why);
        continue;
      }
      if (!narrow) {
        const cx = { names, edit, consts, plan };
        const perColumn = columnScaled(t.shape[1], opts.scales);
        if (perColumn && t.shape[1] >= NARROW_TABLE_COLS && t.storage.byteLength > COLUMN_SCALES_MAX_BYTES) {
          skip(t.name, `${(t.storage.byteLength / 2 ** 20).toFixed(0)} MiB: per-column scales are fitted on the whole table in memory (at most ${COLUMN_SCALES_MAX_BYTES / 2 ** 20} MiB); per-row scales stream it`);
          continue;
        }
        const feedback = opts.feedback?.get(t.name);
        if (perColumn) plan.changes.push(await columnLowBitTable(cx, t, us, bits, opset >= 18, feedback));
        else plan.changes.push(await lowBitTable(cx, t, us, bits, opset >= 18, opts.chunkElements ?? CHUNK_ELEMENTS, feedback, opts.scales === 'byte' ? 'byte' : 'row'));
        continue;
      }
      // FM linear terms are 1 wide: a packed row takes a byte, as an int8 row does, so int8 it is (below)
      plan.notes.push(`${t.name} is only ${t.shape[1]} wide: packed ${opts.dtype} rows would take as many bytes as int8 rows, so it is stored as int8`);
    }
    if (allGather) {
      const [rows, cols] = t.shape;
      // A scale per row costs 2-4 bytes: on narrow tables (FM linear terms are 1 wide) that
      // eats the saving, so those get one scale for the whole table.
      const perRow = cols >= NARROW_TABLE_COLS;
      // 'fast' lookups dequantize with one DequantizeLinear over the gathered rows (axis 0 =
      // one scale per looked-up id): needs 1-D ids (known from the graph inputs), opset 13 and
      // float32 scales
      const fast = perRow && opts.lookup === 'fast' && opset >= 13 && us.every((u) => rank1Inputs.has(u.node.inputs[1]));
      if (perRow && opts.lookup === 'fast' && !fast) {
        plan.notes.push(`${t.name}: compact lookup kept (${opset < 13 ? `opset ${opset} < 13` : 'its ids are not a 1-D graph input'})`);
      }
      const rowLen = perRow ? cols : rows * cols;
      const rq = opts.rowsInt8
        ? await opts.rowsInt8(t, rowLen, perRow && !fast)
        : await streamedRowsInt8(t, rowLen, perRow && !fast, opts.chunkElements ?? CHUNK_ELEMENTS);
      const qName = names.fresh(`${t.name}_int8`);
      const sName = names.fresh(`${t.name}_scale`);
      const scaleDtype = rq.scaleBits ? 'float16' : 'float32';
      if (perRow && rq.scaleBits) plan.float16Scales++;
      else if (perRow) plan.float32Scales++;
      const scaleData = rq.scaleBits ? bytesOf(rq.scaleBits) : bytesOf(rq.scales);
      edit.setInitializers.push({ name: qName, dtype: 'int8', shape: [rows, cols], data: rq.codes });
      edit.setInitializers.push({ name: sName, dtype: scaleDtype, shape: fast ? [rows] : perRow ? [rows, 1] : [], data: scaleData });
      edit.removeInitializers.push(t.name);
      if (fast) needsOpset = Math.max(needsOpset, 13);
      replaceGathers(edit, names, us, (ids, out, tag): OnnxNodeSpec[] => {
        const gq = names.fresh(`${tag}_int8`);
        const gather: OnnxNodeSpec = { name: names.fresh(`${tag}/int8`), op: 'Gather', inputs: [qName, ids], outputs: [gq], attrs: { axis: { i: 0 } } };
        if (fast) {
          const gs = names.fresh(`${tag}_scale`);
          return [
            gather,
            { name: names.fresh(`${tag}/scale`), op: 'Gather', inputs: [sName, ids], outputs: [gs], attrs: { axis: { i: 0 } } },
            { name: names.fresh(`${tag}/dequantize`), op: 'DequantizeLinear', inputs: [gq, gs], outputs: [out], attrs: { axis: { i: 0 } } },
          ];
        }
        const gqf = names.fresh(`${tag}_int8_f`);
        const nodes: OnnxNodeSpec[] = [gather, { name: names.fresh(`${tag}/int8_cast`), op: 'Cast', inputs: [gq], outputs: [gqf], attrs: { to: { i: FLOAT } } }];
        let scale = sName;
        if (perRow) {
          const sc = gatherRowScale(names, sName, !!rq.scaleBits, ids, tag);
          nodes.push(...sc.nodes);
          scale = sc.scale;
        }
        nodes.push({ name: names.fresh(`${tag}/dequantize`), op: 'Mul', inputs: [gqf, scale], outputs: [out] });
        return nodes;
      });
      plan.changes.push({
        tensor: t.name,
        action: perRow
          ? `int8 per-row symmetric (scale per row, ${scaleDtype} scales; ${fast ? 'Gather + DequantizeLinear' : 'Gather + Mul'} dequantizes only the looked-up rows; max |Δw| ${rq.maxAbsError.toExponential(2)})`
          : `int8 symmetric with one scale for the table (only ${cols} wide: a scale per row would cost more than it saves); max |Δw| ${rq.maxAbsError.toExponential(2)}`,
        before,
        after: [
          { name: qName, shape: [rows, cols], dtype: 'int8', bytes: rq.codes.byteLength },
          { name: sName, shape: fast ? [rows] : perRow ? [rows, 1] : [], dtype: scaleDtype, bytes: scaleData.byteLength },
        ],
      });
      continue;
    }

    // dense kernel
    const denseUse = (u: Use): boolean => {
      if (u.index !== 1 || u.node.inputs[0] === t.name) return false;
      if (u.node.op === 'MatMul') return true;
      if (u.node.op !== 'Gemm') return false;
      return attrNum(u.node, 'transA', 0) === 0 && attrNum(u.node, 'alpha', 1) === 1 && attrNum(u.node, 'beta', 1) === 1 && u.node.inputs[2] !== t.name;
    };
    if (t.shape.length !== 2 || !us.every(denseUse)) {
      const other = us.find((u) => !denseUse(u));
      skip(t.name, other ? `read by ${other.node.op} (input ${other.index}${other.node.op === 'Gemm' ? ', with alpha/beta/transA not all default' : ''}), which int8 does not rewrite` : `rank ${t.shape.length}, not a matrix`);
      continue;
    }
    const layouts = new Set(us.map((u) => u.node.op === 'Gemm' && attrNum(u.node, 'transB', 0) === 1));
    if (layouts.size !== 1) {
      skip(t.name, 'read both as [in, out] and as [out, in] by different nodes');
      continue;
    }
    if (!denseMode) {
      skip(t.name, `model opset ${opset} is below 11`);
      continue;
    }
    const transposed = [...layouts][0];
    const values = await readTensorFloat32(t);
    if (denseMode === 'weights-only') {
      // 8-bit weights: no integer matmul runs, so nothing can overflow
      const cq = quantizeColumnsInt8(values, t.shape[0], t.shape[1], transposed, 127);
      const q = transposed ? transposeInt8(cq.q, cq.inDim, cq.outDim) : cq.q;
      const qName = names.fresh(`${t.name}_int8`);
      const sName = names.fresh(`${t.name}_scale`);
      edit.setInitializers.push({ name: qName, dtype: 'int8', shape: t.shape.slice(), data: bytesOf(q) });
      edit.setInitializers.push({ name: sName, dtype: 'float32', shape: [cq.outDim], data: bytesOf(cq.scales) });
      edit.removeInitializers.push(t.name);
      const first = us.reduce((a, b) => (b.order < a.order ? b : a));
      edit.insertNodes.push({
        before: first.node.name,
        node: { name: names.fresh(`${t.name}_DequantizeLinear`), op: 'DequantizeLinear', inputs: [qName, sName], outputs: [t.name], attrs: { axis: { i: transposed ? 0 : 1 } } },
      });
      needsOpset = Math.max(needsOpset, 13);
      plan.changes.push({
        tensor: t.name,
        action: `int8 per-output-channel symmetric, 8-bit, weights only (DequantizeLinear on the weight, float MatMul); max |Δw| ${cq.maxAbsError.toExponential(2)}`,
        before,
        after: [
          { name: qName, shape: t.shape.slice(), dtype: 'int8', bytes: q.byteLength },
          { name: sName, shape: [cq.outDim], dtype: 'float32', bytes: cq.scales.byteLength },
        ],
      });
      continue;
    }
    const qmax = opts.reduceRange ? 63 : 127;
    const cq = quantizeColumnsInt8(values, t.shape[0], t.shape[1], transposed, qmax);
    const qName = names.fresh(`${t.name}_int8`);
    const sName = names.fresh(`${t.name}_scale`);
    edit.setInitializers.push({ name: qName, dtype: 'int8', shape: [cq.inDim, cq.outDim], data: bytesOf(cq.q) });
    edit.setInitializers.push({ name: sName, dtype: 'float32', shape: [cq.outDim], data: bytesOf(cq.scales) });
    edit.removeInitializers.push(t.name);
    for (const u of us) denseJobs.push({ use: u, wq: qName, ws: sName });
    plan.changes.push({
      tensor: t.name,
      action: `int8 per-output-channel symmetric, ${opts.reduceRange ? '7-bit (reduce_range)' : '8-bit'} weights${transposed ? ', stored [in, out] (was [out, in])' : ''}; DynamicQuantizeLinear + MatMulInteger; max |Δw| ${cq.maxAbsError.toExponential(2)}`,
      before,
      after: [
        { name: qName, shape: [cq.inDim, cq.outDim], dtype: 'int8', bytes: cq.q.byteLength },
        { name: sName, shape: [cq.outDim], dtype: 'float32', bytes: cq.scales.byteLength },
      ],
    });
  }

  denseJobs.sort((a, b) => a.use.order - b.use.order);
  const dql = new Map<string, { q: string; s: string; zp: string }>();
  for (const { use, wq, ws } of denseJobs) {
    const n = use.node;
    const x = n.inputs[0];
    const out = n.outputs[0];
    const nodes: OnnxNodeSpec[] = [];
    let xq = dql.get(x);
    if (!xq) {
      xq = { q: names.fresh(`${x}_quant`), s: names.fresh(`${x}_quant_scale`), zp: names.fresh(`${x}_quant_zero_point`) };
      dql.set(x, xq);
      nodes.push({ name: names.fresh(`${x}_DynamicQuantizeLinear`), op: 'DynamicQuantizeLinear', inputs: [x], outputs: [xq.q, xq.s, xq.zp] });
    }
    const mm = names.fresh(`${out}_int32`);
    const mmf = names.fresh(`${out}_int32_f`);
    const sc = names.fresh(`${out}_scales`);
    const bias = n.op === 'Gemm' ? n.inputs[2] : undefined;
    const scaled = bias ? names.fresh(`${out}_no_bias`) : out;
    nodes.push(
      { name: names.fresh(`${n.name}_MatMulInteger`), op: 'MatMulInteger', inputs: [xq.q, wq, xq.zp], outputs: [mm] },
      { name: names.fresh(`${n.name}_cast`), op: 'Cast', inputs: [mm], outputs: [mmf], attrs: { to: { i: FLOAT } } },
      { name: names.fresh(`${n.name}_scales`), op: 'Mul', inputs: [xq.s, ws], outputs: [sc] },
      { name: names.fresh(`${n.name}_dequantize`), op: 'Mul', inputs: [mmf, sc], outputs: [scaled] },
    );
    if (bias) nodes.push({ name: names.fresh(`${n.name}_bias`), op: 'Add', inputs: [scaled, bias], outputs: [out] });
    for (const node of nodes) edit.insertNodes.push({ before: n.name, node });
    edit.removeNodes.push(n.name);
  }
  if (denseJobs.length > 0) needsOpset = Math.max(needsOpset, 11);
  if (needsOpset > 0) edit.ensureOpsets = [{ domain: '', version: needsOpset }];
  opts.onTensor?.(done, selected.length, '');
  const inLoops = plan.changes.map((c) => c.tensor).filter((name) => inSubgraphs.reads.has(name));
  if (inLoops.length > 0) {
    const scopes = [...new Set(inLoops.flatMap((name) => inSubgraphs.reads.get(name)!.map((u) => u.node.scope!)))];
    plan.notes.push(
      `${inLoops.join(', ')} ${inLoops.length === 1 ? 'is' : 'are'} gathered inside ${scopes.length === 1 ? 'a subgraph' : 'subgraphs'} (${scopes.join(', ')}; ` +
        `nn.EmbeddingBag exports gather one bag per Loop iteration): the lookups were rewritten there, and the stored table is read from the main graph. ` +
        `The dequantizing nodes run once per iteration, so a low-bit table costs more time there than in a plain Gather: see the latency`,
    );
  }
  return plan;
}
