// The model IR: one description of a recommender model, whatever file format it came from.
// Readers (onnx.ts, tfjs.ts) build it; analysis and compression read it; writers turn it back
// into the same format. Tensor values are NOT held here eagerly: each tensor says where its bytes
// are (a view into a file buffer, or a byte range of a file on disk) so that a model larger than
// memory can be scanned one tensor, or one chunk, at a time (see tensor-data.ts).

export type ModelFormat = 'onnx' | 'tfjs-layers' | 'tfjs-graph' | 'tfjs-weights';

export type DType =
  | 'float32'
  | 'float16'
  | 'bfloat16'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string'
  | 'complex64';

/**
 * What a tensor is for, derived from the layer class (TF.js) or from the ops that consume it
 * (ONNX). Sparsity means something different per role: a zero row of an embedding table is an
 * id that carries nothing; a zero of a dense kernel is one missing connection.
 */
export type TensorRole =
  | 'embedding' // lookup table, rows are ids (Gather input 0, Embedding layer)
  | 'dense-kernel' // MatMul / Gemm / Dense weight
  | 'conv-kernel'
  | 'bias'
  | 'norm' // batch/layer norm gamma, beta, moving mean/variance
  | 'weight' // another trainable parameter (e.g. an FM linear term, an RNN kernel)
  | 'constant' // a non-parameter constant: shapes, indices, baked-in lookup buffers, scalars
  | 'quant-param'; // scales and zero points of quantized tensors

/** Affine quantization of stored values: value = q * scale + min (TF.js manifests), or float16. */
export interface QuantizationInfo {
  /** the stored type */
  dtype: 'uint8' | 'uint16' | 'float16';
  scale?: number;
  min?: number;
  /** the dtype before quantization, when the manifest records it (`original_dtype`) */
  originalDtype?: DType;
}

/**
 * A tensor the graph stores as integer codes and dequantizes before use (ONNX: DequantizeLinear
 * of a weight; a looked-up table gathered as codes and scaled, PruneScope's packed int4/int3/int2
 * rows included): value = (code - zero point) * scale. Found by model/onnx-codes.ts.
 */
export interface StoredCodes {
  /** code width: 8 (int8 / uint8 elements), or 4 / 3 / 2 (packed rows, model/packed-codes.ts) */
  bits: 8 | 4 | 3 | 2;
  /** the float tensor's shape (a packed table's rows hold fewer bytes than values) */
  shape: number[];
  /** the tensor of scales, and the one of zero points (none: symmetric); with `rowByte`, `scale` is the table's scale levels */
  scale: string;
  zeroPoint?: string;
  /**
   * byte scales (PruneScope's int4/int3/int2 tables, compress/scale-levels.ts): the tensor of one
   * byte per row, (index of the row's scale in `scale` << bits) | the row's zero point
   */
  rowByte?: string;
  /** what one scale and zero point cover */
  granularity: 'row' | 'column' | 'tensor';
  /** true for a table read by Gather (rows looked up), false for a weight dequantized whole */
  lookup: boolean;
}

/** Where the bytes of a tensor are. Bytes are little-endian and NOT necessarily aligned. */
export type TensorSource =
  /** a view into a buffer already in memory (a decoded ONNX file, a TF.js shard) */
  | { kind: 'bytes'; bytes: Uint8Array }
  /** a byte range of a file on disk (ONNX external data, shards of large models) */
  | { kind: 'file'; path: string; offset: number; length: number }
  /** consecutive byte ranges of several files (a TF.js weight that straddles shards of a large model) */
  | { kind: 'file-parts'; parts: Array<{ path: string; offset: number; length: number }> }
  /** values given one by one (ONNX typed fields such as float_data / int64_data, strings) */
  | { kind: 'values'; values: ArrayLike<number> | readonly bigint[] | readonly string[] };

export interface TensorStorage {
  /** dtype of the stored elements (e.g. uint8 for a quantized float32 weight) */
  dtype: DType;
  /** bytes the tensor takes in its file(s) */
  byteLength: number;
  quantization?: QuantizationInfo;
  source: TensorSource;
  /** human-readable place, for messages: "model.onnx initializer #3", "group1-shard2of3 @ 4096" */
  location: string;
}

export interface ModelTensor {
  name: string;
  shape: number[];
  /** the dtype the model computes with (after dequantization) */
  dtype: DType;
  storage: TensorStorage;
  role: TensorRole;
  /** the layer (TF.js layer / ONNX node group) this tensor belongs to */
  layer: string;
  /** true for learned parameters; false for constants (shapes, indices, lookup buffers) */
  trainable: boolean;
  /** ops that consume this tensor, e.g. ['Gather'] or ['Gemm'] */
  consumers: string[];
  /**
   * For dense kernels: true when the matrix is stored [out, in] (Gemm with transB=1, PyTorch
   * Linear), false when stored [in, out] (Keras Dense, MatMul). For embedding tables: true when
   * stored [dim, ids] (an ONNX Gather on axis 1), the ids then index shape[1]. Undefined otherwise.
   */
  transposed?: boolean;
  /** where in the file it was found: a graph initializer, a Constant node, a subgraph body, a manifest entry */
  origin: string;
  /** set when these are integer codes the graph dequantizes (their scale and zero point are `quant-param` tensors) */
  codes?: StoredCodes;
}

export interface ModelLayer {
  name: string;
  /** layer class (Embedding, Dense, ...) or ONNX op type (Gemm, Gather, ...) */
  kind: string;
  /** names of the tensors of this layer (ModelTensor.name) */
  tensors: string[];
  /** names of the layers that feed this one */
  inbound: string[];
}

export interface GraphValueInfo {
  name: string;
  dtype?: DType;
  /** dims; a string for a symbolic dim ("batch"), -1 for unknown */
  shape?: Array<number | string>;
}

export interface GraphNode {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
  /** attribute values in plain JS form (numbers, strings, arrays); tensors/graphs summarised */
  attrs: Record<string, unknown>;
  /** set for nodes inside subgraphs: the path, e.g. "If_3/then_branch" */
  scope?: string;
}

export interface ModelGraph {
  inputs: GraphValueInfo[];
  outputs: GraphValueInfo[];
  nodes: GraphNode[];
}

export interface ModelFile {
  path: string;
  bytes: number;
  /** 'model' | 'weights' | 'external-data' */
  kind: 'model' | 'weights' | 'external-data';
}

export interface ModelIR {
  format: ModelFormat;
  /** absolute path of the file the user pointed at (model.onnx / model.json) */
  path: string;
  /** every file the model is made of, for size on disk */
  files: ModelFile[];
  tensors: ModelTensor[];
  layers: ModelLayer[];
  graph: ModelGraph;
  /** producer, versions, opsets, converter names */
  metadata: Record<string, string>;
  /**
   * The format-native document kept for lossless writing (a decoded ONNX ModelProto, a parsed
   * model.json). Only the matching format's writer looks inside; analysis never does.
   */
  native: unknown;
}

/** An error that names the file and the reason; the CLI prints `message` as its one line. */
const IO_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'not permitted',
  EISDIR: 'is a folder',
  ENOTDIR: 'a part of the path is not a folder',
  EMFILE: 'too many open files',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
  EIO: 'input/output error',
};

/** A file system error in words, with its code: "no such file (ENOENT)". */
export function ioReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code) return IO_REASONS[code] ? `${IO_REASONS[code]} (${code})` : code;
  return (e as Error).message;
}

export class ModelFileError extends Error {
  readonly file: string;
  readonly reason: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super(`${file}: ${reason}`, options);
    this.name = 'ModelFileError';
    this.file = file;
    this.reason = reason;
  }
}
