// What a model's output means: a probability (the graph ends in Sigmoid / Softmax, a Keras
// sigmoid activation), a logit (an unbounded score: PyTorch models trained with
// BCEWithLogitsLoss end in their last Gemm/MatMul + Add), or a rating (a regression). Decided from
// the graph first, from the scores on the data when the graph cannot tell, or forced by the user.
// Every method that trains or scores a model takes its loss and soft targets from this.

import type { GraphNode, ModelIR } from '../../model/ir.js';

export type OutputKind = 'probability' | 'logit' | 'rating';
export const OUTPUT_KINDS: readonly OutputKind[] = ['probability', 'logit', 'rating'];

export interface OutputSemantics {
  kind: OutputKind;
  /** what decided it */
  from: 'graph' | 'scores' | 'flag';
  /** one sentence for the report */
  reason: string;
}

/** What the graph says about its first output: a squashed probability, an unbounded score, or nothing certain. */
export interface GraphOutputFinding {
  bounded: boolean;
  /** the op (or Keras activation) that decided, and its node */
  op: string;
  node: string;
}

/** Ops that pass a score through unchanged in value (shape only). */
const PASSTHROUGH = new Set(['Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Cast', 'Transpose', 'Expand', 'Slice', 'StopGradient', 'ExpandDims']);
/** Ops whose output lies in [0, 1]. */
const SQUASHING = new Set(['Sigmoid', 'Softmax', 'HardSigmoid']);
/** Ops whose output is an unbounded linear combination. */
const LINEAR = new Set(['Gemm', 'MatMul', 'Add', 'AddV2', 'BiasAdd', 'Sum', 'Sub', 'Mul', 'ReduceSum', 'Einsum', 'Dot', 'BatchMatMul', 'BatchMatMulV2', 'MatMulInteger', 'QLinearMatMul', '_FusedMatMul', 'Neg']);
/** Keras layers whose output is the linear combination of their inputs when they have no activation. */
const KERAS_LINEAR = new Set(['Dense', 'Add', 'Dot', 'Subtract', 'Multiply']);
const KERAS_PASSTHROUGH = new Set(['Flatten', 'Reshape', 'Dropout', 'InputLayer']);

function squashingActivation(a: unknown): boolean {
  return a === 'sigmoid' || a === 'softmax' || a === 'hard_sigmoid';
}

/** Walks back from the graph's first output through shape-only ops to the op that made its values. */
export function graphOutputFinding(ir: ModelIR): GraphOutputFinding | undefined {
  const out = ir.graph.outputs[0]?.name;
  if (out === undefined) return undefined;
  if (ir.format === 'tfjs-layers') return kerasFinding(ir, out);
  const producer = new Map<string, GraphNode>();
  for (const n of ir.graph.nodes) if (n.scope === undefined) for (const o of n.outputs) producer.set(o, n);
  let v: string | undefined = out;
  for (let steps = 0; v !== undefined && steps < 32; steps++) {
    // TF graph models name values `node:0`
    const n: GraphNode | undefined = producer.get(v) ?? producer.get(v.replace(/:0$/, ''));
    if (!n) return undefined;
    if (SQUASHING.has(n.op)) return { bounded: true, op: n.op, node: n.name };
    if (n.op === 'Clip' || n.op === 'ClipByValue') {
      const lo = Number(n.attrs.min ?? NaN);
      const hi = Number(n.attrs.max ?? NaN);
      if (lo >= 0 && hi <= 1) return { bounded: true, op: n.op, node: n.name };
      return undefined;
    }
    if (LINEAR.has(n.op)) return { bounded: false, op: n.op, node: n.name };
    if (!PASSTHROUGH.has(n.op)) return undefined;
    v = n.inputs[0];
  }
  return undefined;
}

function kerasFinding(ir: ModelIR, out: string): GraphOutputFinding | undefined {
  const byName = new Map(ir.graph.nodes.map((n) => [n.name, n]));
  let n = byName.get(out) ?? byName.get(out.replace(/(:\d+)+$/, ''));
  for (let steps = 0; n && steps < 32; steps++) {
    const act = n.attrs.activation;
    if (squashingActivation(act)) return { bounded: true, op: `${n.op}(activation=${String(act)})`, node: n.name };
    if (n.op === 'Activation') {
      if (act === 'linear') n = byName.get(n.inputs[0]);
      else return undefined;
      continue;
    }
    if (KERAS_LINEAR.has(n.op) && (act === undefined || act === 'linear')) return { bounded: false, op: n.op, node: n.name };
    if (!KERAS_PASSTHROUGH.has(n.op) || n.inputs.length !== 1) return undefined;
    n = byName.get(n.inputs[0]);
  }
  return undefined;
}

/** What the data says: binary labels (implicit positives count as 1), or ratings with their values. */
export interface TargetsSummary {
  ratings?: Float32Array;
}

/**
 * The output kind of `ir`. `scores`: the model's scores on some data rows (the same rows as
 * `targets.ratings` when given), asked for only when the graph cannot tell or the data holds ratings.
 */
export function decideOutputKind(ir: ModelIR, opts: { flag?: OutputKind | 'auto'; scores?: () => Float32Array; targets?: TargetsSummary }): OutputSemantics {
  const g = graphOutputFinding(ir);
  if (opts.flag && opts.flag !== 'auto') {
    // the flag wins, but a graph that says otherwise is named: a wrong flag trains with the wrong loss
    const against =
      opts.flag === 'probability' && g && !g.bounded
        ? `; but the graph ends in ${g.op} (${g.node}) with no sigmoid, so its scores are not probabilities: check the flag`
        : opts.flag !== 'probability' && g?.bounded
          ? `; but the graph ends in ${g.op} (${g.node}), whose output is a probability: check the flag`
          : '';
    return { kind: opts.flag, from: 'flag', reason: `output taken as a ${opts.flag}, as asked (--output-kind ${opts.flag})${against}` };
  }
  if (g?.bounded) return { kind: 'probability', from: 'graph', reason: `the graph ends in ${g.op} (${g.node}): its output is a probability` };
  const ratings = opts.targets?.ratings;
  if (g && !ratings) return { kind: 'logit', from: 'graph', reason: `the graph ends in ${g.op} (${g.node}) with no sigmoid: its output is an unbounded score, trained as a logit` };
  const scores = opts.scores?.();
  if (!scores || scores.length === 0) {
    return { kind: 'probability', from: 'scores', reason: 'the graph does not tell and no scores were available: output taken as a probability (override with --output-kind)' };
  }
  if (ratings && ratings.length === scores.length) {
    const fit = ratingFit(scores, ratings);
    if (fit.rmse < fit.std) {
      return { kind: 'rating', from: 'scores', reason: `its scores predict the data's ratings (RMSE ${fit.rmse.toFixed(3)} < their spread ${fit.std.toFixed(3)} on ${scores.length} rows): a rating regression` };
    }
    if (g) return { kind: 'logit', from: 'graph', reason: `the graph ends in ${g.op} (${g.node}) with no sigmoid and its scores do not predict the ratings (RMSE ${fit.rmse.toFixed(3)} vs spread ${fit.std.toFixed(3)}): a logit; ratings count as positives` };
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of scores) {
    lo = Math.min(lo, s);
    hi = Math.max(hi, s);
  }
  if (lo >= 0 && hi <= 1) return { kind: 'probability', from: 'scores', reason: `the graph does not tell; its scores on ${scores.length} rows all lie in [0, 1] (${lo.toFixed(3)} to ${hi.toFixed(3)}): a probability` };
  return { kind: 'logit', from: 'scores', reason: `the graph does not tell; its scores on ${scores.length} rows range over [${lo.toFixed(2)}, ${hi.toFixed(2)}], outside [0, 1]: a logit` };
}

function ratingFit(scores: Float32Array, ratings: Float32Array): { rmse: number; std: number } {
  const n = scores.length;
  let mean = 0;
  for (const r of ratings) mean += r / n;
  let se = 0;
  let sv = 0;
  for (let i = 0; i < n; i++) {
    se += (scores[i] - ratings[i]) ** 2;
    sv += (ratings[i] - mean) ** 2;
  }
  return { rmse: Math.sqrt(se / n), std: Math.sqrt(sv / n) };
}

export function parseOutputKind(v: string, what = '--output-kind'): OutputKind | 'auto' {
  if (v === 'auto' || (OUTPUT_KINDS as readonly string[]).includes(v)) return v as OutputKind | 'auto';
  throw new Error(`${what} must be auto, probability, logit or rating, got '${v}'`);
}
