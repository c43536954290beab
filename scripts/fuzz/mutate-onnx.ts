// Structural ONNX mutations: decode a seed with onnx-proto, damage one tensor or graph the way a
// broken exporter or a hostile file would (dims, dtype codes, raw_data lengths, external_data
// entries, nesting), encode it again. The result is a well-formed protobuf, so it goes past the
// wire-level checks and exercises the reader's own limits.

import { onnx } from 'onnx-proto';
import { Rng } from './rng.js';
import { Mutated } from './mutate-bytes.js';

type AnyTensor = onnx.ITensorProto;

/**
 * An int64 for onnx-proto fields beyond 2^53, without importing 'long' (not a dependency of
 * ours): protobufjs encodes any { low, high } object as the 64-bit value (LongBits.from).
 */
function int64(v: bigint): number {
  const u = BigInt.asUintN(64, v);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false } as unknown as number;
}

function collectTensors(g: onnx.IGraphProto | null | undefined, out: AnyTensor[], graphs: onnx.IGraphProto[]): void {
  if (!g) return;
  graphs.push(g);
  for (const t of g.initializer ?? []) out.push(t);
  for (const s of g.sparseInitializer ?? []) {
    if (s.values) out.push(s.values);
    if (s.indices) out.push(s.indices);
  }
  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) {
      if (a.t) out.push(a.t);
      for (const t of a.tensors ?? []) out.push(t);
      collectTensors(a.g, out, graphs);
      for (const sg of a.graphs ?? []) collectTensors(sg, out, graphs);
    }
  }
}

const DIMS: number[] = [
  -1,
  -7,
  0,
  3,
  2 ** 31,
  2 ** 32 + 1,
  2 ** 40,
  Number.MAX_SAFE_INTEGER,
  int64(9007199254740993n),
  int64(9223372036854775807n),
  int64(-9223372036854775808n),
  1e6,
];

const LOCATIONS = [
  '../evil.bin',
  '/etc/passwd',
  'C:\\Windows\\win.ini',
  '\\\\server\\share\\x',
  'a/../../b.bin',
  'sub/../weights.data',
  'nonexistent.bin',
  '',
  '.',
  'file:///etc/passwd',
  'http://example.com/w.bin',
  'x\u0000y',
  'weights.data',
  'model.onnx',
  '%2e%2e/x',
  'a'.repeat(5000),
];

const NUMBER_TEXTS = ['0', '-1', '1e3', 'abc', '', '18446744073709551616', '9007199254740993', '4096', '64', '3000000000', ' 1', '0x10'];

function mutateTensor(rng: Rng, t: AnyTensor, existingData: string[]): string {
  const k = rng.int(10);
  switch (k) {
    case 0: {
      const dims = (t.dims ?? []).slice();
      const v = rng.pick(DIMS);
      if (dims.length === 0 || rng.bool(0.2)) dims.push(v);
      else dims[rng.int(dims.length)] = v;
      t.dims = dims;
      return `dims -> [${dims.map(String).join(',')}]`;
    }
    case 1: {
      const dims = [rng.pick(DIMS), rng.pick(DIMS), rng.pick(DIMS)];
      t.dims = dims;
      return `dims -> [${dims.map(String).join(',')}]`;
    }
    case 2: {
      const code = rng.bool(0.7) ? rng.int(25) : rng.pick([-1, 255, 2 ** 31 - 1, 1000]);
      t.dataType = code;
      return `data_type -> ${code}`;
    }
    case 3: {
      const raw = t.rawData ?? new Uint8Array(0);
      const choice = rng.int(4);
      const len = choice === 0 ? Math.max(0, raw.length - 1 - rng.int(8)) : choice === 1 ? raw.length + 1 + rng.int(8) : choice === 2 ? 0 : rng.int(raw.length + 1);
      const out = new Uint8Array(len);
      out.set(raw.subarray(0, Math.min(len, raw.length)));
      t.rawData = out;
      return `raw_data length ${raw.length} -> ${len}`;
    }
    case 4: {
      // values moved to a typed field of the wrong length or type
      const n = rng.pick([0, 1, 3, 1000]);
      t.rawData = new Uint8Array(0);
      const which = rng.int(5);
      if (which === 0) t.floatData = Array.from({ length: n }, () => rng.next());
      else if (which === 1) t.int32Data = Array.from({ length: n }, () => rng.int(2 ** 31) - 2 ** 30);
      else if (which === 2) t.int64Data = Array.from({ length: n }, () => rng.pick([int64(9223372036854775807n), int64(BigInt(-1)), int64(BigInt(7))]));
      else if (which === 3) t.doubleData = Array.from({ length: n }, () => rng.pick([NaN, Infinity, -0, 1e308]));
      else t.stringData = Array.from({ length: n }, () => new TextEncoder().encode(rng.pick(['', 'x', '<script>', 'é'])));
      return `typed field #${which} with ${n} values`;
    }
    case 5:
    case 6: {
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      const loc = rng.bool(0.3) && existingData.length > 0 ? rng.pick(existingData) : rng.pick(LOCATIONS);
      const entries: onnx.IStringStringEntryProto[] = [];
      if (rng.bool(0.9)) entries.push({ key: 'location', value: loc });
      const raw = t.rawData?.length ?? 0;
      if (rng.bool(0.6)) entries.push({ key: 'offset', value: rng.pick([...NUMBER_TEXTS, '0']) });
      if (rng.bool(0.6)) entries.push({ key: 'length', value: rng.pick([...NUMBER_TEXTS, String(raw)]) });
      if (rng.bool(0.1)) entries.push({ key: 'location', value: rng.pick(LOCATIONS) });
      if (rng.bool(0.1)) entries.push({ key: 'checksum', value: 'zz' });
      t.externalData = entries;
      if (rng.bool(0.5)) t.rawData = new Uint8Array(0);
      return `external_data ${JSON.stringify(entries.map((e) => [e.key, (e.value ?? '').slice(0, 40)]))}`;
    }
    case 7: {
      const v = rng.pick([2, 5, -1, 1000]);
      t.dataLocation = v;
      return `data_location -> ${v}`;
    }
    case 8: {
      t.segment = { begin: int64(BigInt(rng.int(10))), end: int64(BigInt(rng.int(10))) };
      return 'segment set';
    }
    default: {
      const name = rng.pick(['', '<script>alert(1)</script>', 'x'.repeat(100000), '../../etc', '\u0000', 'dup']);
      t.name = name;
      return `name -> ${JSON.stringify(name.slice(0, 30))}`;
    }
  }
}

/** ONNX element sizes of the codes the reader accepts (and 8 = string, 0 = undefined). */
const CODE_BYTES: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 16: 2 };

const COHERENT_SHAPES: number[][] = [[], [0], [1], [0, 8], [8, 0], [1, 1], [3, 5], [1, 1, 1, 7], [64], [2, 3, 4], [1, 4096], [4096, 1], [300, 1], [17, 33]];

/**
 * A self-consistent change: new dtype and shape with raw_data of exactly the right length, filled
 * with values that stress the analysis (NaN, Inf, denormals, all zeros, extremes).
 */
function coherentTensor(rng: Rng, t: AnyTensor): string {
  const codes = Object.keys(CODE_BYTES).map(Number);
  const code = rng.bool(0.5) ? (t.dataType ?? 1) : rng.pick(codes);
  const shape = rng.bool(0.3) ? (t.dims ?? []).map((d) => Number(d)) : rng.pick(COHERENT_SHAPES);
  const count = shape.reduce((a, b) => a * b, 1);
  const size = CODE_BYTES[code] ?? 4;
  const raw = new Uint8Array(count * size);
  const fill = rng.int(6);
  const dv = new DataView(raw.buffer);
  for (let i = 0; i < count; i++) {
    if (fill === 0) continue; // zeros
    if (fill === 1) for (let j = 0; j < size; j++) raw[i * size + j] = 0xff; // NaN / -1
    else if (fill === 2 && size === 4) dv.setFloat32(i * 4, rng.pick([Infinity, -Infinity, NaN, 3.4e38, -3.4e38, 1e-45, 0]), true);
    else if (fill === 3 && size === 8) dv.setFloat64(i * 8, rng.pick([Infinity, -Infinity, NaN, 1.7e308, 5e-324, 1e300]), true);
    else if (fill === 4) raw[i * size + rng.int(size)] = rng.int(256);
    else for (let j = 0; j < size; j++) raw[i * size + j] = rng.int(256);
  }
  t.dataType = code;
  t.dims = shape;
  t.rawData = raw;
  t.floatData = [];
  t.int32Data = [];
  t.int64Data = [];
  t.doubleData = [];
  t.uint64Data = [];
  t.dataLocation = 0;
  t.externalData = [];
  return `coherent dtype ${code} shape [${shape.join(',')}] fill ${fill}`;
}

function nestedIf(depth: number, leaf: onnx.IGraphProto): onnx.IGraphProto {
  let g = leaf;
  for (let i = 0; i < depth; i++) {
    g = {
      name: `g${i}`,
      node: [{ opType: 'If', input: ['c'], output: [`o${i}`], attribute: [{ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g }] }],
      output: [{ name: `o${i}` }],
    };
  }
  return g;
}

/** A structural mutation of an ONNX seed, or undefined if the seed does not decode. */
export function onnxStructuralMutation(rng: Rng, bytes: Uint8Array, dataFiles: string[]): Mutated | undefined {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch {
    return undefined;
  }
  const tensors: AnyTensor[] = [];
  const graphs: onnx.IGraphProto[] = [];
  collectTensors(model.graph, tensors, graphs);
  let desc: string;
  const k = rng.int(10);
  if (k < 6 && tensors.length > 0) {
    const i = rng.int(tensors.length);
    desc = `tensor #${i} "${(tensors[i].name ?? '').slice(0, 40)}": `;
    desc += rng.bool(0.4) ? coherentTensor(rng, tensors[i]) : mutateTensor(rng, tensors[i], dataFiles);
    if (rng.bool(0.25)) desc += '; ' + mutateTensor(rng, tensors[i], dataFiles);
  } else if (k === 6 && model.graph) {
    const depth = rng.pick([8, 63, 64, 65, 200, 3000]);
    const g = model.graph;
    const leaf: onnx.IGraphProto = { name: 'leaf', initializer: (g.initializer ?? []).slice(0, 1) };
    g.node = [...(g.node ?? []), { opType: 'If', input: ['c'], output: ['deep'], attribute: [{ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: nestedIf(depth, leaf) }] }];
    desc = `nested If subgraphs, depth ${depth}`;
  } else if (k === 7 && graphs.length > 0) {
    const g = rng.pick(graphs);
    const nodes = g.node ?? [];
    if (nodes.length > 0) {
      const n = rng.pick(nodes);
      const what = rng.int(5);
      if (what === 0) n.input = [...(n.input ?? []), ...(n.output ?? [])]; // a cycle
      else if (what === 1) n.opType = rng.pick(['', 'Gather', 'Gemm', 'MatMul', 'Constant', 'If', 'Loop', 'Scan']);
      else if (what === 2) n.attribute = [...(n.attribute ?? []), { name: rng.pick(['transB', 'value', 'then_branch', 'axis']), type: rng.int(15), i: int64(9223372036854775807n), f: NaN, ints: [int64(BigInt(-1))] }];
      else if (what === 3) n.input = [''];
      else n.output = [];
      desc = `node "${(n.name ?? '').slice(0, 30)}" edit ${what}`;
    } else desc = 'no nodes';
  } else if (k === 8 && model.graph) {
    // duplicate initializers and value_info with absurd dims
    const g = model.graph;
    g.initializer = [...(g.initializer ?? []), ...(g.initializer ?? []).slice(0, 2)];
    g.input = [...(g.input ?? []), { name: 'big', type: { tensorType: { elemType: rng.int(30), shape: { dim: [{ dimValue: int64(-5n) }, { dimParam: 'x'.repeat(1000) }, { dimValue: int64(9223372036854775807n) }] } } } }];
    desc = 'duplicate initializers + absurd value_info';
  } else {
    // Constant node whose value is a tensor attribute with huge declared size
    const g = model.graph ?? (model.graph = {});
    const dims = [rng.pick(DIMS), rng.pick(DIMS)];
    g.node = [
      ...(g.node ?? []),
      { opType: 'Constant', output: ['k_out'], attribute: [{ name: rng.pick(['value', 'value_float', 'value_ints', 'sparse_value']), type: onnx.AttributeProto.AttributeType.TENSOR, t: { dims, dataType: rng.pick([1, 10, 16, 7, 8]), rawData: new Uint8Array(rng.int(64)) } }] },
    ];
    desc = `Constant node dims [${dims.map(String).join(',')}]`;
  }
  try {
    return { bytes: onnx.ModelProto.encode(model).finish(), desc };
  } catch {
    return undefined;
  }
}
