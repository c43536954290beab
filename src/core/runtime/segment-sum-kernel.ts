// UnsortedSegmentSum is the gradient of tf.gather, i.e. of every Embedding layer. The WASM
// backend ships without it (training any model with embeddings fails there) and the stock CPU
// kernel builds one mask over the whole batch per table row (O(rows x batch), ~25 samples/s on
// a NeuMF-sized model). This is a single scatter-add pass over the batch instead.
//
// Exactness: the stock CPU kernel sums each segment in batch order with a float64 accumulator
// (its Sum kernel keeps a JS number) and rounds once to float32; we do the same (Float64Array
// accumulator, batch order, one rounding), so results are bit-identical for float32 inputs.

import * as tf from '@tensorflow/tfjs';

type TypedValues = Float32Array | Int32Array | Uint8Array;

interface SegmentSumPlan {
  outShape: number[];
  numSegments: number;
  /** elements per segment id: product of x.shape beyond segmentIds' rank */
  inner: number;
}

function planSegmentSum(xShape: number[], idsShape: number[], numSegments: number): SegmentSumPlan {
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new Error(`UnsortedSegmentSum: numSegments must be a non-negative integer, got ${numSegments}`);
  }
  if (idsShape.length > xShape.length) {
    throw new Error(`UnsortedSegmentSum: segmentIds rank ${idsShape.length} exceeds x rank ${xShape.length}`);
  }
  for (let i = 0; i < idsShape.length; i++) {
    if (idsShape[i] !== xShape[i]) {
      throw new Error(`UnsortedSegmentSum: segmentIds shape [${idsShape}] is not a prefix of x shape [${xShape}]`);
    }
  }
  const innerShape = xShape.slice(idsShape.length);
  const inner = innerShape.reduce((a, b) => a * b, 1);
  return { outShape: [numSegments, ...innerShape], numSegments, inner };
}

/** Scatter-adds rows of `x` into `out` (same semantics as tf.unsortedSegmentSum; ids outside [0, numSegments) are dropped). */
export function segmentSumInto(
  x: ArrayLike<number>,
  ids: ArrayLike<number>,
  numSegments: number,
  inner: number,
  out: TypedValues,
): void {
  const n = ids.length;
  const acc = new Float64Array(numSegments * inner);
  for (let i = 0; i < n; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) acc[dst + j] += x[src + j];
  }
  for (let k = 0; k < acc.length; k++) out[k] = acc[k];
}

interface CpuLikeBackend {
  readSync(dataId: unknown): unknown;
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: unknown): tf.TensorInfo;
}

interface WasmLikeBackend {
  typedArrayFromHeap(t: tf.TensorInfo): TypedValues;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

function outputDtype(x: tf.TensorInfo): tf.DataType {
  if (x.dtype === 'complex64' || x.dtype === 'string') {
    throw new Error(`UnsortedSegmentSum: dtype ${x.dtype} is not supported`);
  }
  // bool sums to int32 (TF semantics)
  return x.dtype === 'bool' ? 'int32' : x.dtype;
}

function allocFor(dtype: tf.DataType, n: number): TypedValues {
  return dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
}

const cpuSegmentSum: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const plan = planSegmentSum(x.shape, segmentIds.shape, numSegments);
  const b = backend as unknown as CpuLikeBackend;
  const xv = b.readSync(x.dataId) as TypedValues;
  const ids = b.readSync(segmentIds.dataId) as TypedValues;
  const dtype = outputDtype(x);
  const out = allocFor(dtype, plan.numSegments * plan.inner);
  segmentSumInto(xv, ids, plan.numSegments, plan.inner, out);
  return b.makeTensorInfo(plan.outShape, dtype, out);
};

const wasmSegmentSum: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, segmentIds } = inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (attrs as { numSegments: number }).numSegments;
  const plan = planSegmentSum(x.shape, segmentIds.shape, numSegments);
  const b = backend as unknown as WasmLikeBackend;
  const dtype = outputDtype(x);
  const out = b.makeOutput(plan.outShape, dtype);
  if (plan.numSegments * plan.inner === 0) return out;
  // Views into the WASM heap: read both inputs before nothing else can grow the heap.
  const xv = b.typedArrayFromHeap(x);
  const ids = b.typedArrayFromHeap(segmentIds);
  const outView = b.typedArrayFromHeap(out);
  segmentSumInto(xv, ids, plan.numSegments, plan.inner, outView);
  return out;
};

export type SegmentSumBackend = 'cpu' | 'wasm';

const installed = new Set<SegmentSumBackend>();
let stockCpuKernel: tf.KernelFunc | undefined;

/**
 * Registers the scatter-add UnsortedSegmentSum for the given backends. Idempotent. For 'cpu'
 * the stock kernel is unregistered first (tf.registerKernel refuses duplicates).
 */
export function installSegmentSumKernels(backends: SegmentSumBackend[] = ['cpu', 'wasm']): void {
  for (const backendName of backends) {
    if (installed.has(backendName)) continue;
    const existing = tf.getKernel(tf.UnsortedSegmentSum, backendName);
    if (existing !== undefined) {
      if (backendName === 'cpu') stockCpuKernel = existing.kernelFunc;
      tf.unregisterKernel(tf.UnsortedSegmentSum, backendName);
    }
    tf.registerKernel({
      kernelName: tf.UnsortedSegmentSum,
      backendName,
      kernelFunc: backendName === 'cpu' ? cpuSegmentSum : wasmSegmentSum,
    });
    installed.add(backendName);
  }
}

/** True when our kernel (not the stock one) is the one registered for `backendName`. */
export function segmentSumKernelInstalled(backendName: SegmentSumBackend): boolean {
  return installed.has(backendName);
}

/**
 * The stock CPU kernel as it was before installSegmentSumKernels replaced it (undefined before
 * that). Kept so that tests can check ours against it bit for bit; call it with the 'cpu' backend.
 */
export function stockCpuSegmentSumKernel(): tf.KernelFunc | undefined {
  return stockCpuKernel ?? tf.getKernel(tf.UnsortedSegmentSum, 'cpu')?.kernelFunc;
}
