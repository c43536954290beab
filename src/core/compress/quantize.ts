// Quantization (issue 3, method 3): float16 for both formats; int8 per-row (embedding tables)
// and per-output-channel (dense kernels) as graphs ONNX Runtime runs; int4/int3/int2 packed
// embedding tables with scales per row or per column (ONNX only); TF.js manifest affine uint8/uint16. Every result is checked against the float model on the same generated inputs
// (onnxruntime-node / TF.js), and the notes say what the change buys and what it does not.

import { unknownTensorNames } from './method-settings.js';
import { formatBytes } from '../../shared/format.js';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ModelFileError, ModelIR, ModelTensor, TensorRole } from '../model/ir.js';
import { writeEditedOnnxModel } from '../model/onnx/edit.js';
import { writeTfjsModel } from '../model/tfjs-write.js';
import { compareOnnxOutputs, compareTfjsOutputs, idRange, OutputDiff } from './quantize-check.js';
import { lowBitsOf, NARROW_TABLE_COLS, type LowBitScales } from './quantize-math.js';
import { scaleLevelCount } from '../model/packed-codes.js';
import { planOnnxQuantization, type RowsInt8Source } from './quantize-onnx.js';
import { roundingFactors } from './output-aware-rounding.js';
import { shardedRowsInt8, writeQuantizeShard, type QuantizeShardHeader } from './quantize-shards.js';
import type { ShardSpec } from '../analysis/shards.js';
import { planTfjsQuantization } from './quantize-tfjs.js';
import type { CompressionContext, CompressionOutcome, TensorChange } from './types.js';

export type QuantizeDtype = 'int8' | 'int4' | 'int3' | 'int2' | 'float16' | 'uint8' | 'uint16';

const DTYPES: readonly QuantizeDtype[] = ['int8', 'int4', 'int3', 'int2', 'float16', 'uint8', 'uint16'];

export interface QuantizeSettings {
  dtype: QuantizeDtype;
  /**
   * Which tensors: 'all' (default: ONNX embedding tables and dense kernels, plus other float32
   * weights for float16; TF.js every float32 weight, as the tensorflowjs converter does),
   * 'embeddings', 'dense', or tensor names. int4/int3/int2 take embedding tables only ('all' means
   * 'embeddings'; a dense kernel asked for is an error).
   */
  tensors?: 'all' | 'embeddings' | 'dense' | string[];
  /**
   * ONNX int8 dense kernels: 7-bit weights ([-63, 63]) so that u8*s8 pair sums cannot overflow
   * int16 in AVX2 kernels without VNNI (ENGINE_FACTS). Default true: the file may run on any
   * x64 machine, whatever machine quantized it. Embedding tables always use 8 bits (Gather does
   * no integer arithmetic).
   */
  reduceRange?: boolean;
  /**
   * ONNX int8 dense kernels: 'weights-only' (default) stores int8 weights that a DequantizeLinear
   * turns back into float for the usual MatMul/Gemm (only the weight error, any CPU);
   * 'dynamic' runs an integer matmul (DynamicQuantizeLinear + MatMulInteger) with activations
   * quantized per batch.
   */
  dense?: 'weights-only' | 'dynamic';
  /**
   * ONNX int8 embedding tables: 'compact' (default) stores float16 row scales and dequantizes
   * with Gather + Cast + Mul (5 ops per lookup); 'fast' stores float32 row scales (2 more bytes
   * per row) and dequantizes with one DequantizeLinear (3 ops per lookup; opset >= 13, 1-D ids).
   */
  lookup?: 'compact' | 'fast';
  /**
   * ONNX int4/int3/int2 tables: 'row' (default) = a float16 scale and a uint8 zero point per row;
   * 'byte' = one byte per row, its zero point and one of the table's 2^(8 - bits) scale levels
   * (scale-levels.ts): 2 bytes less per row (the levels take 64-256 bytes), about the same total
   * squared error (the levels sit where the large rows are: rows of small norm get coarser steps);
   * 'column' = one per column for the whole table: 3 bytes less per row (a 32-wide int4 table
   * about 16% smaller), at the price of one range for rows of every norm. Tables under
   * NARROW_TABLE_COLS wide get per-column scales either way.
   */
  scales?: LowBitScales;
  /**
   * ONNX int4/int3/int2 tables: 'nearest' (default) rounds each value to its nearest code;
   * 'output-aware' chooses the codes of each row with error feedback so that the score moves
   * least (output-aware-rounding.ts), measured on the pairs of `calibration`. The same scales,
   * layout and size.
   */
  rounding?: 'nearest' | 'output-aware';
  /**
   * output-aware rounding: a CSV of user,item[,fields] pairs (candidates or interactions) to
   * measure the score's sensitivity on; default random user x item pairs (models with fields
   * inputs need the file)
   */
  calibration?: string;
  /** ONNX: write every tensor of 1 KiB or more to `<output>.data` (external data), for big outputs; models read with external data keep it anyway */
  externalData?: boolean;
  /** run original and quantized model on the same generated inputs (default true) */
  verify?: boolean;
  /** rows for the check; default 256 */
  verifyRows?: number;
  /**
   * ONNX int8: the tables' codes and scales from these quantize shard files (`quantize --shard
   * I/N` writes them, on any machine) instead of computed here; the model written is the same,
   * byte for byte.
   */
  fromShards?: string[];
}

export interface QuantizeOutcome extends CompressionOutcome {
  /** output difference against the float model, when checked */
  outputDiff?: OutputDiff;
  /** bytes of all files of the original and of the quantized model (as written for the check) */
  sizes?: { before: number; after: number };
}

const ONNX_INT8_ROLES: ReadonlySet<TensorRole> = new Set(['embedding', 'dense-kernel']);
const ONNX_FP16_ROLES: ReadonlySet<TensorRole> = new Set(['embedding', 'dense-kernel', 'conv-kernel', 'weight']);

type LowBitDtype = 'int4' | 'int3' | 'int2';

function isLowBit(dtype: QuantizeDtype): dtype is LowBitDtype {
  return dtype === 'int4' || dtype === 'int3' || dtype === 'int2';
}

/** int4/int3/int2 have a form for embedding tables (rows looked up by Gather) only. */
function checkLowBitSelection(ir: ModelIR, dtype: LowBitDtype, tensors: QuantizeSettings['tensors'], picked: ModelTensor[]): void {
  const kernels = "dense kernels have no 4-, 3- or 2-bit form here (use int8 for them)";
  if (tensors === 'dense') throw new ModelFileError(ir.path, `quantize: ${dtype} quantizes embedding tables only: ${kernels}`);
  const other = picked.find((t) => t.role !== 'embedding');
  if (other) {
    const what = other.role === 'dense-kernel' ? `a dense kernel: ${kernels}` : `a ${other.role} tensor, not an embedding table`;
    throw new ModelFileError(ir.path, `quantize: ${dtype} quantizes embedding tables only; "${other.name}" is ${what}`);
  }
}

function selectTensors(ir: ModelIR, s: Required<Pick<QuantizeSettings, 'dtype' | 'tensors'>>): ModelTensor[] {
  const onnxFmt = ir.format === 'onnx';
  if (Array.isArray(s.tensors)) {
    const byName = new Map(ir.tensors.map((t) => [t.name, t]));
    return s.tensors.map((n) => {
      const t = byName.get(n);
      if (!t) throw new ModelFileError(ir.path, `quantize: ${unknownTensorNames([n], ['all', 'embeddings', 'dense'], [...byName.keys()])}`);
      return t;
    });
  }
  return ir.tensors.filter((t) => {
    if (t.dtype !== 'float32') return false;
    if (s.tensors === 'embeddings' || isLowBit(s.dtype)) return t.role === 'embedding';
    if (s.tensors === 'dense') return t.role === 'dense-kernel';
    if (!onnxFmt) return true;
    return (s.dtype === 'int8' ? ONNX_INT8_ROLES : ONNX_FP16_ROLES).has(t.role);
  });
}

async function filesSize(paths: string[]): Promise<number> {
  let total = 0;
  for (const p of paths) total += (await stat(p)).size;
  return total;
}

function sumChange(changes: TensorChange[]): { before: number; after: number } {
  let before = 0;
  let after = 0;
  for (const c of changes) {
    before += c.before.bytes;
    for (const a of c.after) after += a.bytes;
  }
  return { before, after };
}

/** What an int4/int3/int2 run stored and ran (bytes are the stored packed codes + scales + zero points). */
function lowBitNote(dtype: LowBitDtype, changes: TensorChange[], plan: { float16Scales: number; float32Scales: number; byteScales: number; unpackOps?: string }): string {
  const bits = lowBitsOf(dtype)!;
  const s = sumChange(changes);
  const scales = [plan.float16Scales ? `${plan.float16Scales} with float16 row scales` : '', plan.float32Scales ? `${plan.float32Scales} with float32 row scales (some fall outside float16's normal range)` : '']
    .filter(Boolean)
    .join(', ');
  const perColumn = changes.filter((c) => c.action.includes('per-column'));
  const narrow = perColumn.filter((c) => (c.before.shape[1] ?? 0) < NARROW_TABLE_COLS).length;
  const asked = perColumn.length - narrow;
  const rowWise = changes.length - perColumn.length - plan.byteScales;
  const parts = [
    rowWise ? `${rowWise} with a scale and a uint8 zero point per row (${scales})` : '',
    plan.byteScales
      ? `${plan.byteScales} with one byte per row, its zero point (low ${bits} bits) and the index of its scale among the table's ${scaleLevelCount(bits)} levels (high ${8 - bits} bits; ` +
        'the levels a k-means of the log of the rows\' own scales weighted by their squares, each row taking the level next to its own that leaves the least squared error)'
      : '',
    asked ? `${asked} with a float32 scale and zero point per column, as asked (no per-row bytes)` : '',
    narrow ? `${narrow} narrower than ${NARROW_TABLE_COLS} with a float32 scale and zero point per column` : '',
  ].filter(Boolean);
  return (
    `${changes.length} embedding table(s) stored as ${bits}-bit codes, ${bits === 3 ? "each code's low 2 bits 4 per byte and its high bit 8 per byte" : `${8 / bits} per byte`} (rows padded to whole bytes), asymmetric: ` +
    `${parts.join('; ')}; each range clipped where that lowers the squared error: ${formatBytes(s.before)} -> ${formatBytes(s.after)} (${(s.before / s.after).toFixed(2)}x). ` +
    `The graph gathers packed rows and unpacks them with standard ONNX ops (Gather, ${plan.unpackOps}, Concat, Cast, Sub zero point, Mul scale), so only looked-up rows are ` +
    `dequantized and the table stays packed in memory. Measured on the dev machine (ORT 1.30 CPU, 1 thread, 100000x64 table): 0.04-0.07 ms per batch of 256 ids against ` +
    `0.02-0.03 ms for the float Gather and 0.03-0.035 ms for int8 (4096 ids: 0.42-0.65 ms against 0.16-0.22 and 0.24-0.37 ms)` +
    (bits === 3 ? '; int3 unpacks two planes and took 0.086 ms against int4\'s 0.052 in the same run' : '') +
    `: ${dtype} buys size, not speed. ` +
    "ONNX Runtime's com.microsoft GatherBlockQuantized runs the same tables but was 3-7x slower on that CPU, so it is not used. This job did not time this model: see the bench command."
  );
}

/** `rowsInt8`: where int8 tables come from (quantize-shards.ts computes one shard's with it). */
export async function quantizeModel(
  ir: ModelIR,
  settings: QuantizeSettings,
  ctx: CompressionContext = {},
  hooks: { rowsInt8?: RowsInt8Source } = {},
): Promise<QuantizeOutcome> {
  const dtype = settings.dtype;
  if (!DTYPES.includes(dtype)) {
    throw new ModelFileError(ir.path, `quantize: unknown dtype "${String(dtype)}" (${DTYPES.join(', ')})`);
  }
  const isOnnx = ir.format === 'onnx';
  if (!isOnnx && isLowBit(dtype)) {
    throw new ModelFileError(
      ir.path,
      `quantize: ${dtype} is ONNX only: TF.js weight manifests have no 4-, 3- or 2-bit dtype (uint8 is the smallest); use uint8, uint16 or float16 for TF.js models`,
    );
  }
  if (isOnnx && (dtype === 'uint8' || dtype === 'uint16')) {
    throw new ModelFileError(ir.path, `quantize: ${dtype} is TF.js manifest quantization; for ONNX models use int8 or float16 (or int4/int3/int2 for embedding tables)`);
  }
  const tensors = settings.tensors ?? 'all';
  if (!Array.isArray(tensors) && !['all', 'embeddings', 'dense'].includes(tensors)) {
    throw new ModelFileError(ir.path, `quantize: tensors must be all, embeddings, dense or a list of names, got "${String(tensors)}"`);
  }
  const reduceRange = settings.reduceRange ?? true;
  const dense = settings.dense ?? 'weights-only';
  const lookup = settings.lookup ?? 'compact';
  if (lookup !== 'compact' && lookup !== 'fast') throw new ModelFileError(ir.path, `quantize: lookup must be compact or fast, got "${String(lookup)}"`);
  if (dense !== 'weights-only' && dense !== 'dynamic') throw new ModelFileError(ir.path, `quantize: dense must be weights-only or dynamic, got "${String(dense)}"`);
  const scalesBy = settings.scales ?? 'row';
  if (scalesBy !== 'row' && scalesBy !== 'byte' && scalesBy !== 'column') throw new ModelFileError(ir.path, `quantize: scales must be row, byte or column, got "${String(scalesBy)}"`);
  if (scalesBy !== 'row' && !isLowBit(dtype)) {
    throw new ModelFileError(ir.path, `quantize: scales '${scalesBy}' is for int4, int3 and int2 tables; ${dtype} ${dtype === 'int8' ? 'tables have one scale per row (per table under 8 wide)' : 'has no scales to choose'}`);
  }
  const rounding = settings.rounding ?? 'nearest';
  if (rounding !== 'nearest' && rounding !== 'output-aware') throw new ModelFileError(ir.path, `quantize: rounding must be nearest or output-aware, got "${String(rounding)}"`);
  if (rounding === 'output-aware' && !isLowBit(dtype)) {
    throw new ModelFileError(ir.path, `quantize: rounding 'output-aware' is for int4, int3 and int2 tables; ${dtype} rounds to nearest`);
  }
  if (rounding === 'nearest' && settings.calibration !== undefined) throw new ModelFileError(ir.path, "quantize: calibration goes with rounding 'output-aware'");
  const verify = settings.verify ?? true;
  const verifyRows = settings.verifyRows ?? 256;
  let rowsInt8 = hooks.rowsInt8;
  let shardNote: string | undefined;
  if (settings.fromShards !== undefined) {
    if (!isOnnx || dtype !== 'int8') throw new ModelFileError(ir.path, 'quantize: fromShards assembles ONNX int8 only');
    const sharded = await shardedRowsInt8(ir, settings.fromShards);
    rowsInt8 = sharded.source;
    shardNote = `The int8 tables' codes and scales came from ${sharded.shards} shard file(s) (quantize --shard), computed by the same code as a one-process run: the model is the same, byte for byte.`;
  }
  // fromShards is how the work was done, not what was done: a recipe replays it in one process
  const resolved = {
    dtype, tensors, reduceRange, dense, lookup, ...(scalesBy !== 'row' ? { scales: scalesBy } : {}),
    ...(rounding === 'output-aware' ? { rounding, ...(settings.calibration ? { calibration: settings.calibration } : {}) } : {}),
    verify, verifyRows, ...(settings.externalData ? { externalData: true } : {}),
  };
  const progress = ctx.onProgress ?? (() => undefined);
  const selected = selectTensors(ir, { dtype, tensors });
  if (isLowBit(dtype)) checkLowBitSelection(ir, dtype, tensors, selected);
  const onTensor = (done: number, total: number, name: string): void => progress(total ? (0.7 * done) / total : 0.7, name ? `quantizing ${name}` : undefined);

  let changes: TensorChange[];
  let skipped: Array<{ tensor: string; reason: string }>;
  let write: (outPath: string) => Promise<void>;
  const notes: string[] = [];
  if (isOnnx) {
    const feedback = rounding === 'output-aware' ? await roundingFactors(ir, selected, settings.calibration, ctx, notes) : undefined;
    const plan = await planOnnxQuantization(ir, selected, {
      dtype: dtype as 'int8' | LowBitDtype | 'float16', reduceRange, dense, lookup, scales: scalesBy, signal: ctx.signal, onTensor, rowsInt8, ...(feedback ? { feedback } : {}),
    });
    if (shardNote) notes.push(shardNote);
    changes = plan.changes;
    skipped = plan.skipped;
    const external = settings.externalData === true || ir.files.some((f) => f.kind === 'external-data');
    write = (outPath) =>
      writeEditedOnnxModel(ir, plan.edit, outPath, external ? { externalData: { fileName: `${basename(outPath)}.data`, minBytes: 1024 } } : undefined);
    if (isLowBit(dtype)) {
      // tables too narrow to pack smaller than int8 are stored as int8 (plan.notes says which)
      const packed = changes.filter((c) => !c.after.some((a) => a.dtype === 'int8'));
      if (packed.length) notes.push(lowBitNote(dtype, packed, plan));
      for (const n of plan.notes) notes.push(`Note: ${n}.`);
    } else if (dtype === 'int8') {
      const tables = changes.filter((c) => c.after.length === 2 && c.after[1].shape.length !== 1);
      const kernels = changes.filter((c) => c.after.length === 2 && c.after[1].shape.length === 1);
      if (tables.length) {
        const s = sumChange(tables);
        const scales = [
          plan.float16Scales ? `${plan.float16Scales} with float16 row scales` : '',
          plan.float32Scales ? `${plan.float32Scales} with float32 row scales${lookup === 'fast' ? '' : ", because some fall outside float16's normal range"}` : '',
        ].filter(Boolean).join(', ');
        notes.push(
          `${tables.length} embedding table(s) stored as int8 with one symmetric scale per row (one per table for tables under ${NARROW_TABLE_COLS} wide; ${scales || 'no per-row scales'}): ` +
            `${formatBytes(s.before)} -> ${formatBytes(s.after)} (${(s.before / s.after).toFixed(2)}x). The graph gathers int8 rows and their scales and dequantizes them ` +
            (lookup === 'fast'
              ? '(Gather + DequantizeLinear), so only looked-up rows are dequantized and the table stays int8 in memory; measured on the dev machine (ORT 1.30, 4000x64 table, batch 1024): about as fast as the float Gather. '
              : '(Gather + Cast + Mul), so only looked-up rows are dequantized and the table stays int8 in memory; measured on the dev machine (ORT 1.30, 4000x64 table, batch 1024): about 0.03-0.05 ms slower per lookup than the float Gather (lookup: fast trades 2 bytes per row for float speed). ') +
            'This job did not time this model: see the bench command.',
        );
      }
      if (plan.denseModeNote) notes.push(`Note: ${plan.denseModeNote}.`);
      for (const n of plan.notes) notes.push(`Note: ${n}.`);
      if (kernels.length && plan.denseMode === 'weights-only') {
        notes.push(
          `${kernels.length} dense kernel(s) stored as 8-bit int8 per output channel; a DequantizeLinear gives the float kernel back to the original MatMul/Gemm ` +
            `(weight-only quantization: activations stay float, so only the weights' rounding error reaches the outputs, and no integer kernel can overflow). ` +
            `The file shrinks, but ONNX Runtime runs the DequantizeLinear on every call (it does not fold it into a constant): on the dev machine this cost about 0.1-0.15 ms per batch of 1024 ` +
            `for a NeuMF MLP (128-64-32-16); dense: 'dynamic' (integer matmul) avoids that at the price of activation rounding error. Biases stay float32.`,
        );
      } else if (kernels.length) {
        notes.push(
          `${kernels.length} dense kernel(s) stored as int8 per output channel with ${reduceRange ? '7-bit weights (reduce_range: [-63, 63]), because 8-bit weights overflow int16 pair sums in ORT kernels on AVX2 CPUs without VNNI' : 'full 8-bit weights (reduceRange off: outputs may be off on AVX2 CPUs without VNNI; check on the target machine)'}. ` +
            `Activations are quantized to uint8 per batch at run time (DynamicQuantizeLinear + MatMulInteger, which ORT fuses into DynamicQuantizeMatMul); this adds the activations' rounding error to the weights'. Biases stay float32. ` +
            `For the small MLPs of recommenders this saves little space and buys no measurable speed: the embedding tables are where the bytes are.`,
        );
      }
    } else {
      notes.push(
        'float16 weights: Gather tables are looked up in float16 and the rows cast to float32 (the table stays half size in memory); other weights get a Cast node that ' +
          'ONNX Runtime folds into a float32 constant when it loads the model: smaller file, same memory and speed for those.',
      );
    }
  } else {
    if (ir.format === 'tfjs-weights' && verify) notes.push('A weights-only manifest has no model to run: the quantized weights were not checked by running a model.');
    const stored = dtype === 'int8' ? 'uint8' : dtype;
    if (dtype === 'int8') {
      notes.push(
        'TF.js weights manifests cannot hold int8 with per-row or per-channel scales: int8 was done as the manifest\'s uint8 affine quantization, one scale and min per tensor.',
      );
    }
    const plan = await planTfjsQuantization(selected, stored as 'float16' | 'uint8' | 'uint16', { signal: ctx.signal, onTensor });
    changes = plan.changes;
    skipped = plan.skipped;
    write = (outPath) => writeTfjsModel(ir, outPath, { replace: plan.replace });
    notes.push(
      `TF.js dequantizes ${stored} weights to float32 when it loads the model: the win is on disk and over the network, not in memory or inference speed.`,
    );
  }
  if (changes.length === 0) {
    // say why when it is because the model is quantized already
    const coded = ir.tensors.filter((t) => t.codes && t.role !== 'quant-param');
    const already = coded.length
      ? ` ${coded.length} of its tensors ${coded.length === 1 ? 'is' : 'are'} stored as codes already (${[...new Set(coded.map((t) => (t.codes!.bits === 8 ? t.dtype : `int${t.codes!.bits}`)))].join(', ')}): quantize the float model to store them otherwise.`
      : '';
    const fns = ir.metadata.local_functions;
    const inFunctions = fns ? ` Its graph calls ONNX local functions (${fns}), and the weights read inside them are not rewritten: inline them first (Python: onnx.inliner.inline_local_functions, onnx 1.15+).` : '';
    notes.push(`No tensor was quantized: the output is the same model.${already}${inFunctions}`);
  }
  for (const s of skipped) notes.push(`Left as it was: ${s.tensor} (${s.reason}).`);

  const outcome: QuantizeOutcome = { method: 'quantize', settings: resolved, changes, notes, write };
  if (changes.length > 0) {
    const s = sumChange(changes);
    notes.unshift(`Quantized ${changes.length} tensor(s): ${formatBytes(s.before)} -> ${formatBytes(s.after)} (${(s.before / Math.max(1, s.after)).toFixed(2)}x smaller).`);
  }

  if (verify && changes.length > 0 && ir.format !== 'tfjs-weights') {
    ctx.signal?.throwIfAborted();
    progress(0.75, 'checking the quantized model against the original');
    const dir = await mkdtemp(join(tmpdir(), 'prunescope-quantize-'));
    try {
      const out = join(dir, basename(ir.path));
      await write(out);
      const written = (await readdir(dir)).map((f) => join(dir, f));
      outcome.sizes = { before: await filesSize(ir.files.map((f) => f.path)), after: await filesSize(written) };
      notes.push(
        `Model files: ${formatBytes(outcome.sizes.before)} -> ${formatBytes(outcome.sizes.after)} (${(outcome.sizes.before / outcome.sizes.after).toFixed(2)}x smaller).`,
      );
      progress(0.85, 'running both models');
      let diff: OutputDiff;
      const runtime = isOnnx ? 'onnxruntime-node' : 'TF.js';
      try {
        diff = isOnnx ? await compareOnnxOutputs(ir, out, verifyRows) : await compareTfjsOutputs(ir, out, verifyRows);
      } catch (e) {
        throw new ModelFileError(ir.path, `quantize: the quantized model could not be checked in ${runtime}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
      }
      outcome.outputDiff = diff;
      notes.push(
        `Checked in ${runtime} against the original on ${diff.rows} generated rows (ids in [0, ${idRange(ir)})): max |Δoutput| ${diff.maxAbsDiff.toExponential(2)}, ` +
          `mean ${diff.meanAbsDiff.toExponential(2)} (original outputs in [${diff.min.toFixed(4)}, ${diff.max.toFixed(4)}]). Measure ranking quality on your own data with the eval command.`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  progress(1);
  return outcome;
}

/**
 * Shard `shard` of an ONNX int8 quantization, written to `outPath`: the codes and scales of its
 * share of the tables, computed by the same plan as quantizeModel (quantize-shards.ts).
 */
export async function quantizeShard(ir: ModelIR, settings: QuantizeSettings, shard: ShardSpec, outPath: string, ctx: CompressionContext = {}): Promise<QuantizeShardHeader> {
  if (ir.format !== 'onnx' || settings.dtype !== 'int8') throw new ModelFileError(ir.path, 'quantize: shards are made for ONNX int8 only');
  const { fromShards: _assembled, ...one } = settings;
  const selected = selectTensors(ir, { dtype: 'int8', tensors: one.tensors ?? 'all' });
  return writeQuantizeShard(ir, selected, shard, outPath, (source) => quantizeModel(ir, { ...one, verify: false }, ctx, { rowsInt8: source }));
}
