// Building ONNX models from scratch (fixtures, exported compressed models): attributes, tensors,
// graphs, and writing a ModelProto atomically, optionally with weights in an external data file.

import type { FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';
import { onnx } from 'onnx-proto';
import { writeAll, writeFilesAtomically } from '../atomic-write.js';
import { DType } from '../ir.js';
import { tensorElementCount } from '../tensor-data.js';
import { ONNX_ELEMENT_BYTES, onnxDtypeCode } from './dtypes.js';
import { ExternalDataOptions, PROTOBUF_LIMIT, checkExternalFileName } from './splice.js';

export type OnnxTensorData =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | BigUint64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Uint32Array;

/** A tensor given by value: for initializers and `{ tensor }` attributes. */
export interface OnnxTensorValue {
  dtype: DType;
  shape: number[];
  data: OnnxTensorData;
}

/**
 * An attribute value. Numbers are ambiguous in ONNX (INT vs FLOAT attributes are different
 * types and ORT rejects a mismatch), so:
 *  - `{ i: n }` / `{ ints: [...] }` are INT / INTS; `{ f: x }` / `{ floats: [...] }` FLOAT / FLOATS;
 *  - a plain number (or number[]) is FLOAT(S) when the attribute name is one of the well-known
 *    float attributes (alpha, beta, epsilon, momentum, ...: see FLOAT_ATTR_NAMES), otherwise
 *    INT(S), and a plain non-integer number for a non-float name is an error;
 *  - a plain string (string[]) is STRING(S); `{ tensor }` is TENSOR; `{ graph }` is GRAPH.
 */
export type OnnxAttrValue =
  | number
  | string
  | number[]
  | string[]
  | { i: number | bigint }
  | { f: number }
  | { s: string }
  | { ints: Array<number | bigint> }
  | { floats: number[] }
  | { strings: string[] }
  | { tensor: OnnxTensorValue }
  | { graph: onnx.IGraphProto };

/** Standard ONNX attributes of FLOAT type, so that `{ epsilon: 1e-5 }` means what it says. */
export const FLOAT_ATTR_NAMES: ReadonlySet<string> = new Set([
  'alpha',
  'beta',
  'gamma',
  'epsilon',
  'momentum',
  'bias',
  'lambd',
  'ratio',
  'spatial_scale',
  'value_float',
  'value_floats',
  'scales',
  'size',
  'threshold',
  'cubic_coeff_a',
  'extrapolation_value',
]);

const AT = onnx.AttributeProto.AttributeType;

function utf8(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** The stored little-endian bytes of a typed array (a view on little-endian hosts, a copy otherwise). */
export function typedArrayBytes(data: OnnxTensorData): Uint8Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN || data.BYTES_PER_ELEMENT === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  const w = data.BYTES_PER_ELEMENT;
  for (let i = 0; i < bytes.length; i += w) for (let j = 0; j < w; j++) out[i + j] = bytes[i + w - 1 - j];
  return out;
}

/** Which typed array carries each dtype (float16/bfloat16 as raw 16-bit patterns; Buffer counts as Uint8Array). */
type TypedArrayCtor = { new (n: number): OnnxTensorData; name: string };
const ACCEPTED_ARRAYS: Partial<Record<DType, TypedArrayCtor>> = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
};

/** A TensorProto holding `data` as raw_data (a view, not a copy, on little-endian hosts). */
export function makeTensorProto(name: string, value: OnnxTensorValue): onnx.TensorProto {
  const { dtype, shape, data } = value;
  const accepted = ACCEPTED_ARRAYS[dtype];
  if (!accepted) throw new Error(`tensor ${name}: dtype ${dtype} cannot be given as a typed array`);
  if (!(data instanceof accepted)) {
    throw new Error(`tensor ${name}: dtype ${dtype} needs ${accepted.name}, got ${data.constructor.name}`);
  }
  const n = tensorElementCount(shape);
  if (data.length !== n) {
    throw new Error(`tensor ${name}: shape [${shape.join(', ')}] has ${n} elements but data has ${data.length}`);
  }
  if (ONNX_ELEMENT_BYTES[dtype] !== data.BYTES_PER_ELEMENT) {
    throw new Error(`tensor ${name}: element size mismatch for ${dtype}`);
  }
  return onnx.TensorProto.create({
    name,
    dims: shape.slice(),
    dataType: onnxDtypeCode(dtype),
    rawData: typedArrayBytes(data),
  });
}

function isIntLike(x: unknown): x is number | bigint {
  return typeof x === 'bigint' || (typeof x === 'number' && Number.isInteger(x));
}

function intAttr(x: number | bigint, where: string): number {
  const n = typeof x === 'bigint' ? Number(x) : x;
  if (!Number.isSafeInteger(n)) throw new Error(`${where}: ${String(x)} is not a safe integer`);
  return n;
}

export function makeAttribute(name: string, value: OnnxAttrValue, where: string): onnx.AttributeProto {
  const at = `${where} attribute ${name}`;
  const floatName = FLOAT_ATTR_NAMES.has(name);
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: AT.STRING, s: utf8(value) });
  if (typeof value === 'number') {
    if (floatName) return onnx.AttributeProto.create({ name, type: AT.FLOAT, f: value });
    if (!Number.isInteger(value)) throw new Error(`${at}: ${value} is not an integer; write { f: ${value} } for a FLOAT attribute`);
    return onnx.AttributeProto.create({ name, type: AT.INT, i: intAttr(value, at) });
  }
  if (Array.isArray(value)) {
    if (value.length > 0 && value.every((v) => typeof v === 'string')) {
      return onnx.AttributeProto.create({ name, type: AT.STRINGS, strings: (value as string[]).map(utf8) });
    }
    if (!value.every((v) => typeof v === 'number')) throw new Error(`${at}: mixed array`);
    const nums = value as number[];
    if (floatName) return onnx.AttributeProto.create({ name, type: AT.FLOATS, floats: nums.slice() });
    if (!nums.every(isIntLike)) throw new Error(`${at}: non-integer values; write { floats: [...] } for a FLOATS attribute`);
    if (nums.length === 0) throw new Error(`${at}: an empty plain array has no type; write { ints: [] } or { floats: [] }`);
    return onnx.AttributeProto.create({ name, type: AT.INTS, ints: nums.map((v) => intAttr(v, at)) });
  }
  if ('i' in value) return onnx.AttributeProto.create({ name, type: AT.INT, i: intAttr(value.i, at) });
  if ('f' in value) return onnx.AttributeProto.create({ name, type: AT.FLOAT, f: value.f });
  if ('s' in value) return onnx.AttributeProto.create({ name, type: AT.STRING, s: utf8(value.s) });
  if ('ints' in value) return onnx.AttributeProto.create({ name, type: AT.INTS, ints: value.ints.map((v) => intAttr(v, at)) });
  if ('floats' in value) return onnx.AttributeProto.create({ name, type: AT.FLOATS, floats: value.floats.slice() });
  if ('strings' in value) return onnx.AttributeProto.create({ name, type: AT.STRINGS, strings: value.strings.map(utf8) });
  if ('tensor' in value) return onnx.AttributeProto.create({ name, type: AT.TENSOR, t: makeTensorProto('', value.tensor) });
  if ('graph' in value) return onnx.AttributeProto.create({ name, type: AT.GRAPH, g: value.graph });
  throw new Error(`${at}: unsupported value`);
}

function valueInfo(name: string, dtype: DType, shape: Array<number | string>): onnx.ValueInfoProto {
  const dim = shape.map((d) => {
    if (typeof d === 'string') return onnx.TensorShapeProto.Dimension.create({ dimParam: d });
    if (d === -1) return onnx.TensorShapeProto.Dimension.create({});
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`value ${name}: invalid dimension ${d}`);
    return onnx.TensorShapeProto.Dimension.create({ dimValue: d });
  });
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: onnxDtypeCode(dtype),
        shape: onnx.TensorShapeProto.create({ dim }),
      }),
    }),
  });
}

export interface OnnxGraphBuilderOptions {
  graphName: string;
  /** default-domain opset version; default 17 */
  opset?: number;
  producer?: string;
  producerVersion?: string;
  docString?: string;
  /** extra opset imports, e.g. { 'com.microsoft': 1 } */
  extraOpsets?: Record<string, number>;
  /** default 8 (ONNX 1.10+, what opset 17 needs at most) */
  irVersion?: number;
  metadata?: Record<string, string>;
}

/**
 * Accumulates inputs, outputs, initializers and nodes, then makes a ModelProto. Initializer data
 * is referenced, not copied: do not modify the arrays until the model has been written.
 */
export class OnnxGraphBuilder {
  private readonly opts: OnnxGraphBuilderOptions;
  private readonly inputs: onnx.ValueInfoProto[] = [];
  private readonly outputs: onnx.ValueInfoProto[] = [];
  private readonly initializers: onnx.TensorProto[] = [];
  private readonly nodes: onnx.NodeProto[] = [];
  private readonly names = new Set<string>();
  private nodeCounter = 0;

  constructor(opts: OnnxGraphBuilderOptions) {
    this.opts = opts;
  }

  input(name: string, dtype: DType, shape: Array<number | string>): this {
    this.inputs.push(valueInfo(name, dtype, shape));
    return this;
  }

  output(name: string, dtype: DType, shape: Array<number | string>): this {
    this.outputs.push(valueInfo(name, dtype, shape));
    return this;
  }

  initializer(name: string, dtype: DType, shape: number[], data: OnnxTensorData): this {
    if (this.names.has(name)) throw new Error(`initializer ${name} defined twice`);
    this.initializers.push(makeTensorProto(name, { dtype, shape, data }));
    this.names.add(name);
    return this;
  }

  node(
    op: string,
    inputs: string[],
    outputs: string[],
    attrs?: Record<string, OnnxAttrValue>,
    opts?: { name?: string; domain?: string },
  ): this {
    const name = opts?.name ?? `${op}_${this.nodeCounter}`;
    this.nodeCounter++;
    const attribute = Object.entries(attrs ?? {}).map(([k, v]) => makeAttribute(k, v, `node ${name}`));
    this.nodes.push(
      onnx.NodeProto.create({ name, opType: op, input: inputs.slice(), output: outputs.slice(), attribute, domain: opts?.domain ?? '' }),
    );
    return this;
  }

  /** The graph alone, e.g. for an If/Loop body attribute (`{ graph: b.toGraphProto() }`). */
  toGraphProto(): onnx.GraphProto {
    return onnx.GraphProto.create({
      name: this.opts.graphName,
      input: this.inputs.slice(),
      output: this.outputs.slice(),
      initializer: this.initializers.slice(),
      node: this.nodes.slice(),
      docString: this.opts.docString ?? '',
    });
  }

  toModelProto(): onnx.ModelProto {
    const opsetImport = [onnx.OperatorSetIdProto.create({ domain: '', version: this.opts.opset ?? 17 })];
    for (const [domain, version] of Object.entries(this.opts.extraOpsets ?? {})) {
      opsetImport.push(onnx.OperatorSetIdProto.create({ domain, version }));
    }
    return onnx.ModelProto.create({
      irVersion: this.opts.irVersion ?? 8,
      producerName: this.opts.producer ?? 'prunescope',
      producerVersion: this.opts.producerVersion ?? '',
      opsetImport,
      graph: this.toGraphProto(),
      metadataProps: Object.entries(this.opts.metadata ?? {}).map(([key, value]) =>
        onnx.StringStringEntryProto.create({ key, value }),
      ),
    });
  }
}

function externalEntries(fileName: string, offset: number, length: number): onnx.StringStringEntryProto[] {
  return [
    onnx.StringStringEntryProto.create({ key: 'location', value: fileName }),
    onnx.StringStringEntryProto.create({ key: 'offset', value: String(offset) }),
    onnx.StringStringEntryProto.create({ key: 'length', value: String(length) }),
  ];
}

/**
 * Moves every initializer (of the main graph and of subgraphs) whose raw_data has at least
 * minBytes into the data file. Returns a new ModelProto sharing unchanged parts with `model`
 * (the caller's model is not modified).
 */
async function externalize(
  model: onnx.IModelProto,
  fh: FileHandle,
  ext: ExternalDataOptions,
): Promise<onnx.IModelProto> {
  const minBytes = ext.minBytes ?? 1024;
  const align = ext.align ?? 64;
  let offset = 0;
  const mapGraph = async (g: onnx.IGraphProto): Promise<onnx.IGraphProto> => {
    let changed = false;
    const initializer: onnx.ITensorProto[] = [];
    for (const t of g.initializer ?? []) {
      if (t.rawData && t.rawData.length >= minBytes && t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) {
        offset = Math.ceil(offset / align) * align;
        await writeAll(fh, t.rawData, offset);
        initializer.push(
          onnx.TensorProto.create({
            ...t,
            rawData: undefined,
            dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
            externalData: externalEntries(ext.fileName, offset, t.rawData.length),
          }),
        );
        offset += t.rawData.length;
        changed = true;
      } else initializer.push(t);
    }
    const node: onnx.INodeProto[] = [];
    for (const n of g.node ?? []) {
      let nodeChanged = false;
      const attribute: onnx.IAttributeProto[] = [];
      for (const a of n.attribute ?? []) {
        if (a.g || (a.graphs && a.graphs.length)) {
          const g2 = a.g ? await mapGraph(a.g) : a.g;
          const gs: onnx.IGraphProto[] = [];
          for (const sg of a.graphs ?? []) gs.push(await mapGraph(sg));
          attribute.push(onnx.AttributeProto.create({ ...a, g: g2, graphs: gs }));
          nodeChanged = true;
        } else attribute.push(a);
      }
      if (nodeChanged) {
        node.push(onnx.NodeProto.create({ ...n, attribute }));
        changed = true;
      } else node.push(n);
    }
    return changed ? onnx.GraphProto.create({ ...g, initializer, node }) : g;
  };
  if (!model.graph) return model;
  const graph = await mapGraph(model.graph);
  return onnx.ModelProto.create({ ...model, graph });
}

function inlineRawBytes(model: onnx.IModelProto): number {
  let total = 0;
  const visit = (g: onnx.IGraphProto | null | undefined): void => {
    if (!g) return;
    for (const t of g.initializer ?? []) total += t.rawData?.length ?? 0;
    for (const n of g.node ?? []) {
      for (const a of n.attribute ?? []) {
        total += a.t?.rawData?.length ?? 0;
        visit(a.g);
        for (const sg of a.graphs ?? []) visit(sg);
      }
    }
  };
  visit(model.graph);
  return total;
}

/**
 * Encodes `model` to `outPath` atomically (temp file, fsync, rename). With `externalData`,
 * initializers of at least `minBytes` go to `<folder of outPath>/<fileName>`, written one tensor
 * at a time straight from their buffers (no second copy of the weights in memory).
 */
export async function writeOnnxFile(
  outPath: string,
  model: onnx.IModelProto,
  opts?: { externalData?: ExternalDataOptions },
): Promise<void> {
  await writeFilesAtomically(async (add) => {
    let toEncode = model;
    const ext = opts?.externalData;
    if (ext) {
      checkExternalFileName(ext.fileName);
      await add(join(dirname(outPath), ext.fileName), async (fh) => {
        toEncode = await externalize(model, fh, ext);
      });
    }
    const inline = inlineRawBytes(toEncode);
    if (inline >= PROTOBUF_LIMIT) {
      throw new Error(`${outPath}: ${inline} bytes of inline tensor data exceed protobuf's 2 GB limit; write with external data`);
    }
    const bytes = onnx.ModelProto.encode(toEncode).finish();
    // the model goes last: a reader never sees a model whose data file is not there yet
    await add(outPath, (fh) => writeAll(fh, bytes, 0));
  });
}
