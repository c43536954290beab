// The float values of a tensor stored as integer codes (ModelTensor.codes): its codes, unpacked
// when packed, minus the zero point, times the scale, a chunk of whole rows at a time, so that a
// quantized table is read as what the model computes with (analysis reports its values, shape and
// parameters, not its bytes).

import { ModelFileError, type ModelTensor, type StoredCodes } from './ir.js';
import { packedRowBytes, unpackRowBytes, unpackRowCodes } from './packed-codes.js';
import { forEachTensorChunk, readTensorFloat32, tensorElementCount } from './tensor-data.js';

/** How many values a tensor holds as the model computes with it: a packed table's rows hold more values than bytes. */
export function valueCount(t: Pick<ModelTensor, 'shape' | 'codes'>): number {
  return tensorElementCount(t.codes?.shape ?? t.shape);
}

interface CodesParams {
  scale: Float32Array;
  zero?: Float32Array;
}

function where(t: ModelTensor): string {
  return t.storage.location.split(' ')[0] || t.name;
}

async function readParams(t: ModelTensor, c: StoredCodes, tensorNamed: (name: string) => ModelTensor | undefined): Promise<CodesParams> {
  const [rows, cols] = c.shape.length === 2 ? c.shape : [1, tensorElementCount(c.shape)];
  const want = c.granularity === 'row' ? rows : c.granularity === 'column' ? cols : 1;
  const read = async (name: string, what: string): Promise<Float32Array> => {
    const p = tensorNamed(name);
    if (!p) throw new ModelFileError(where(t), `tensor ${t.name}: its ${what} ${name} is missing`);
    const v = await readTensorFloat32(p);
    if (v.length !== want) throw new ModelFileError(where(t), `tensor ${t.name}: its ${what} ${name} holds ${v.length} values, ${want} expected (${c.granularity})`);
    return v;
  };
  if (c.rowByte !== undefined) {
    // byte scales: each row's byte names its level in `scale` and holds its zero point
    if (c.granularity !== 'row' || c.bits === 8) throw new ModelFileError(where(t), `tensor ${t.name}: row bytes go with ${c.bits}-bit codes per ${c.granularity}`);
    const levels = tensorNamed(c.scale);
    if (!levels) throw new ModelFileError(where(t), `tensor ${t.name}: its scale levels ${c.scale} are missing`);
    const bytes = await read(c.rowByte, 'row bytes');
    try {
      const { scales, zeroPoints } = unpackRowBytes(bytes, await readTensorFloat32(levels), c.bits);
      return { scale: scales, zero: Float32Array.from(zeroPoints) };
    } catch (e) {
      throw new ModelFileError(where(t), `tensor ${t.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const scale = await read(c.scale, 'scale');
  return c.zeroPoint !== undefined ? { scale, zero: await read(c.zeroPoint, 'zero point') } : { scale };
}

/**
 * Streams the dequantized values of a codes tensor in chunks of whole rows (of its float shape),
 * at most `maxElements` long unless one row is longer. The chunk array is reused between calls.
 */
export async function forEachDequantizedChunk(
  t: ModelTensor,
  tensorNamed: (name: string) => ModelTensor | undefined,
  maxElements: number,
  cb: (chunk: Float32Array, firstElement: number) => void | Promise<void>,
): Promise<void> {
  const c = t.codes;
  if (!c) throw new Error(`tensor ${t.name} is not stored as codes`);
  const { scale, zero } = await readParams(t, c, tensorNamed);
  const matrix = c.shape.length === 2;
  const rows = matrix ? c.shape[0] : 1;
  const cols = matrix ? c.shape[1] : tensorElementCount(c.shape);
  const storedCols = matrix ? t.shape[1] : tensorElementCount(t.shape);
  if (c.bits === 8 ? storedCols !== cols : !matrix || storedCols !== packedRowBytes(cols, c.bits)) {
    throw new ModelFileError(where(t), `tensor ${t.name} [${t.shape.join(', ')}] cannot hold ${c.bits}-bit codes of a [${c.shape.join(', ')}] tensor`);
  }
  const rowsPerChunk = Math.max(1, Math.floor(maxElements / Math.max(1, cols)));
  const out = new Float32Array(Math.min(rows, rowsPerChunk) * cols);
  await forEachTensorChunk(t, rowsPerChunk * storedCols, async (chunk, first) => {
    const r0 = first / storedCols;
    const n = chunk.length / storedCols;
    let codes: ArrayLike<number> = chunk;
    if (c.bits !== 8) {
      const bytes = new Uint8Array(chunk.length);
      for (let i = 0; i < chunk.length; i++) bytes[i] = chunk[i];
      codes = unpackRowCodes(bytes, n, cols, c.bits);
    }
    const view = n * cols === out.length ? out : out.subarray(0, n * cols);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < cols; j++) {
        const k = c.granularity === 'row' ? r0 + r : c.granularity === 'column' ? j : 0;
        view[r * cols + j] = (codes[r * cols + j] - (zero ? zero[k] : 0)) * scale[k];
      }
    }
    await cb(view, r0 * cols);
  });
}
