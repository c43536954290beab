// Output-aware rounding of low-bit embedding tables (GPTQ's error feedback, Frantar et al. 2023,
// applied to table rows): instead of rounding each value to its nearest code, a row's values are
// coded one column after the other and each rounding error is pushed onto the columns still to
// code, in the proportions that leave the least error in the model's score. What "least" means
// comes from H, the second moment of the score's gradient with respect to a row of the table
// (d x d): a GMF user row's error is seen through the item rows it multiplies and the prediction
// weights, an MLP row's through the first layer's kernel. H is measured here on calibration pairs
// (user, item[, fields]) with the compiled training engine: the gradient of the sum of s_i x
// score_i, s_i = +-1 at random, gives per row g = sum_i s_i J_i, whose outer product is in
// expectation sum_i J_i J_i^T (the cross terms cancel), whatever the table and however often a
// row occurs. The signs are centred over each user's pairs, which leaves out what moves all of a
// user's scores together (it does not change the ranking). Scales, zero points and the stored
// layout are those of rounding to nearest; only the codes differ, so the graph and the file size
// are the same.
//
// On two MovieLens-100K NeuMFs (PyTorch's and ours, all 943 users), the share of each user's
// candidate pairs whose order differs from the float model's fell by 9-25% (int4 per row, int3
// per column, int2 per row; README). Random pairs measured H as well as the candidates did: 4096
// pairs gave the same error as 65536.

import { ModelFileError, type ModelIR } from '../model/ir.js';
import { mulberry32 } from '../samples/prng.js';
import { initTfjs } from '../runtime/tfjs-backend.js';
import type { CompressionContext } from './types.js';
import { chooseTrainingEngine } from './train/engine-choice.js';
import { readInteractionTable, sliceBatch, tableAsBatch, type Batch } from './train/interaction-table.js';
import { inputFeedOf } from './train/input-feed.js';
import { modelVocab } from '../eval/evaluate.js';
import { planFastEngine, type OutputSeed } from './train/compiled-step.js';

/** Calibration pairs read at most (evenly spaced through the file): H is a mean over them; 4096 gave the same scores' error as 65536. */
export const CALIBRATION_MAX_ROWS = 16_384;
/** Without a calibration file: users (evenly spaced over the ids) x random items each. */
const SYNTHETIC_USERS = 1024;
const SYNTHETIC_ITEMS_PER_USER = 16;
/** Random sign draws over the calibration pairs. */
const SIGN_DRAWS = 1;
const BATCH = 4096;
/** H + DAMP x mean(diag H) x I: keeps the factor finite where H is (nearly) singular, as GPTQ does. */
const DAMP = 0.01;
/** What `calibration` is called in notes and memos when the pairs are made up. */
export const SYNTHETIC_CALIBRATION = 'random user x item pairs';

export interface OutputHessians {
  /** per table (IR name): H, row-major cols x cols, summed over the calibration pairs */
  hessians: Map<string, Float64Array>;
  /** calibration pairs used (after thinning) and the sign draws over them */
  pairs: number;
  draws: number;
}

/**
 * H of every embedding table the compiled engine trains, measured on the pairs of `calibration`
 * (a CSV the evaluation reads: user,item[,label][,fields...]), or without one on random pairs:
 * SYNTHETIC_USERS users, each with SYNTHETIC_ITEMS_PER_USER items drawn uniformly (candidates are
 * mostly such items: one positive and sampled negatives), for models whose inputs are a user and
 * an item id. Or why it cannot be measured, for the caller to round to nearest.
 */
export async function outputHessians(ir: ModelIR, calibration: string | undefined, ctx: CompressionContext = {}): Promise<OutputHessians | { unsupported: string }> {
  let pairs: Batch;
  if (calibration) pairs = thinnedByUser(tableAsBatch(await readInteractionTable(calibration, { model: ir })), CALIBRATION_MAX_ROWS);
  else {
    const vocab = idVocab(ir);
    if ('unsupported' in vocab) return vocab;
    pairs = syntheticPairs(vocab);
  }
  const m = pairs.user.length;
  if (m === 0) throw new ModelFileError(calibration ?? ir.path, 'the calibration file has no rows');
  // the engine's kernels run on the TF.js backend chosen here (wasm on a CPU), as finetune's do
  await initTfjs();
  const choice = await chooseTrainingEngine(ir, 'auto');
  if (choice.kind !== 'compiled') return { unsupported: `the compiled engine does not run this graph (${choice.reason})` };
  const engine = choice.engine;
  try {
    const hessians = new Map<string, Float64Array>();
    for (const t of engine.tables) hessians.set(t.name, new Float64Array(t.dim * t.dim));
    const rand = mulberry32(0x5eed);
    const signs: OutputSeed = (scores, b, _atSigmoidInput, grad) => {
      for (let i = 0; i < scores.length; i++) grad[i] = rand() < 0.5 ? -1 : 1;
      // centred over each user's rows (grouped): what moves all of a user's scores together leaves
      // the user's ranking as it is. A user with one row in the batch keeps its sign.
      for (let i = 0; i < scores.length; ) {
        let j = i;
        let sum = 0;
        for (; j < scores.length && b.user[j] === b.user[i]; j++) sum += grad[j];
        if (j - i > 1) for (let k = i; k < j; k++) grad[k] -= sum / (j - i);
        i = j;
      }
      return 0;
    };
    for (let draw = 0; draw < SIGN_DRAWS; draw++) {
      for (let s0 = 0; s0 < m; s0 += BATCH) {
        if (ctx.signal?.aborted) throw new Error('quantize: cancelled');
        // 'probability': a final Sigmoid is seeded at its input, the logit the ranking is made of
        const g = engine.gradients(sliceBatch(pairs, s0, Math.min(m, s0 + BATCH)), 'probability', signs);
        for (const t of engine.tables) {
          const H = hessians.get(t.name)!;
          for (const row of g.tables.get(t.name)?.values() ?? []) addOuter(H, row, t.dim);
        }
      }
    }
    return { hessians, pairs: m, draws: SIGN_DRAWS };
  } finally {
    engine.dispose();
  }
}

/**
 * Why output-aware rounding cannot run on this model (undefined when it can): low-bit tables are
 * ONNX, the pairs come from `calibration` or are made up from user and item ids, and the compiled
 * engine must run the graph. Reads no tensor values.
 */
export function outputAwareBlocker(ir: ModelIR, calibration?: string): string | undefined {
  if (ir.format !== 'onnx') return 'low-bit tables are ONNX only';
  const vocab = calibration ? undefined : idVocab(ir);
  if (vocab && 'unsupported' in vocab) return vocab.unsupported;
  const plan = planFastEngine(ir);
  return 'unsupported' in plan ? `the compiled engine does not run this graph (${plan.unsupported})` : undefined;
}

/** The user and item id counts random pairs are drawn from (from the model's tables), or why a model's inputs need real pairs. */
function idVocab(ir: ModelIR): { user: number; item: number } | { unsupported: string } {
  const fields = ir.graph.inputs.find((i) => inputFeedOf(i.name, i.shape)?.kind === 'fields');
  if (fields) return { unsupported: `its input '${fields.name}' takes fields whose values random pairs cannot make up: give calibration pairs` };
  const vocab = modelVocab(ir);
  if (!vocab.user || !vocab.item) return { unsupported: 'no user and item id vocabularies were found in its tables to make random pairs from: give calibration pairs' };
  return { user: vocab.user, item: vocab.item };
}

/** Random pairs grouped by user: users evenly spaced over the ids, items drawn uniformly. */
function syntheticPairs(vocab: { user: number; item: number }): Batch {
  const users = Math.min(vocab.user, SYNTHETIC_USERS);
  const n = users * SYNTHETIC_ITEMS_PER_USER;
  const rand = mulberry32(0xca11b);
  const b: Batch = { user: new Int32Array(n), item: new Int32Array(n), extra: new Int32Array(0), extraCount: 0, label: new Float32Array(n) };
  for (let u = 0; u < users; u++) {
    const id = Math.floor((u * vocab.user) / users);
    for (let j = 0; j < SYNTHETIC_ITEMS_PER_USER; j++) {
      b.user[u * SYNTHETIC_ITEMS_PER_USER + j] = id;
      b.item[u * SYNTHETIC_ITEMS_PER_USER + j] = Math.floor(rand() * vocab.item);
    }
  }
  return b;
}

/**
 * Output-aware rounding's factor for each selected table; notes what was measured, or why tables
 * are rounded to nearest after all. A sensitivity an earlier quantize step of the recipe measured
 * on the same pairs (ctx.sensitivity) is used as it is: this step's graph may hold packed tables,
 * which the engine does not run.
 */
export async function roundingFactors(
  ir: ModelIR, selected: readonly { name: string; shape: number[] }[], calibration: string | undefined, ctx: CompressionContext, notes: string[],
): Promise<Map<string, Float64Array> | undefined> {
  const key = calibration ?? SYNTHETIC_CALIBRATION;
  const memo = ctx.sensitivity;
  const earlier = memo?.measured?.calibration === key ? memo.measured : undefined;
  let measured: OutputHessians;
  if (earlier) measured = earlier;
  else {
    const m = await outputHessians(ir, calibration, ctx);
    if ('unsupported' in m) {
      notes.push(`Output-aware rounding was asked for, but ${m.unsupported}: every table was rounded to nearest.`);
      return undefined;
    }
    measured = m;
    if (memo) memo.measured = { calibration: key, ...m };
  }
  const factors = new Map<string, Float64Array>();
  const unreached: string[] = [];
  const rest: string[] = [];
  for (const t of selected) {
    const H = measured.hessians.get(t.name);
    const d = t.shape[1];
    if (!H || t.shape.length !== 2 || H.length !== d * d) {
      rest.push(t.name);
      continue;
    }
    let trace = 0;
    for (let i = 0; i < d; i++) trace += H[i * d + i];
    if (trace === 0) unreached.push(t.name);
    else factors.set(t.name, feedbackFactor(H, d));
  }
  const on = `${measured.pairs} ${calibration ? `pairs of ${calibration}` : SYNTHETIC_CALIBRATION}${earlier ? ' by an earlier quantize step of this recipe' : ''}`;
  notes.push(
    `Output-aware rounding: the codes of each row were chosen one column after the other, each rounding error passed on to the columns still to code so that the score moves least ` +
      `(GPTQ's error feedback), weighed by the second moment of the score's gradient per table, measured on ${on}. ` +
      "The scales, the layout and the size are those of rounding to nearest; the weights' own error (max |Δw|, RMSE) is larger, spent where the score does not see it." +
      (unreached.length ? ` No pair reaches ${unreached.join(', ')}: rounded to nearest.` : '') +
      (rest.length ? ` Not measured (not a table the engine trains), rounded to nearest: ${rest.join(', ')}.` : ''),
  );
  return factors;
}

/**
 * At most `max` rows of `b`, evenly spaced (all of them when it has fewer), grouped by user
 * (stable), so that the signs are centred over each user's rows whatever the file's order.
 */
function thinnedByUser(b: Batch, max: number): Batch {
  const n = b.user.length;
  const m = Math.min(n, max);
  const picked = Array.from({ length: m }, (_, i) => Math.floor((i * n) / m));
  const order = picked.sort((x, y) => b.user[x] - b.user[y] || x - y);
  const E = b.extraCount;
  const out: Batch = { user: new Int32Array(m), item: new Int32Array(m), extra: new Int32Array(m * E), extraCount: E, label: new Float32Array(m) };
  order.forEach((r, i) => {
    out.user[i] = b.user[r];
    out.item[i] = b.item[r];
    out.label[i] = b.label[r];
    for (let e = 0; e < E; e++) out.extra[i * E + e] = b.extra[r * E + e];
  });
  return out;
}

function addOuter(H: Float64Array, g: ArrayLike<number>, d: number): void {
  for (let a = 0; a < d; a++) {
    const ga = g[a];
    if (ga === 0) continue;
    for (let b = 0; b < d; b++) H[a * d + b] += ga * g[b];
  }
}

/**
 * The factor the coding uses (quantize-math codeRowsLowBit): U, upper triangular with
 * (H + damping)^-1 = U^T U, row-major d x d. A column no calibration pair reaches (zero diagonal)
 * gets 1 there, so it is rounded to nearest and passes nothing on.
 */
export function feedbackFactor(H: Float64Array, d: number): Float64Array {
  if (H.length !== d * d) throw new Error(`feedbackFactor: ${H.length} values for a ${d} x ${d} matrix`);
  const A = Float64Array.from(H);
  let mean = 0;
  for (let i = 0; i < d; i++) mean += A[i * d + i];
  mean /= d || 1;
  const damp = mean > 0 ? DAMP * mean : 1;
  for (let i = 0; i < d; i++) {
    if (A[i * d + i] === 0) {
      for (let j = 0; j < d; j++) A[i * d + j] = A[j * d + i] = 0;
      A[i * d + i] = 1;
    } else A[i * d + i] += damp;
  }
  // A^-1 = L L^T with L lower (its Cholesky factor), so U = L^T
  const inv = choleskyInverse(A, d);
  const L = cholesky(inv, d);
  const U = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) U[i * d + j] = L[j * d + i];
  return U;
}

/** Lower Cholesky factor of a symmetric positive definite matrix (row-major). */
function cholesky(A: Float64Array, d: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * d + j];
      for (let k = 0; k < j; k++) s -= L[i * d + k] * L[j * d + k];
      if (i === j) {
        if (!(s > 0)) throw new Error('feedbackFactor: the matrix is not positive definite');
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j];
    }
  }
  return L;
}

/** A^-1 of a symmetric positive definite matrix, through its Cholesky factor. */
function choleskyInverse(A: Float64Array, d: number): Float64Array {
  const L = cholesky(A, d);
  // Linv = L^-1 (lower), A^-1 = Linv^T Linv
  const Li = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    Li[i * d + i] = 1 / L[i * d + i];
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= L[i * d + k] * Li[k * d + j];
      Li[i * d + j] = s / L[i * d + i];
    }
  }
  const inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < d; k++) s += Li[k * d + i] * Li[k * d + j];
      inv[i * d + j] = inv[j * d + i] = s;
    }
  }
  return inv;
}
