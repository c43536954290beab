// Distillation's loss (distill.ts distillationLoss: alpha * soft + (1 - alpha) * hard, the soft
// part T^2 * BCE-with-logits of the student's tempered logit against the teacher's tempered
// probability, or squared error to the teacher's rating) as a per-row gradient at the output, for
// the compiled engine (compiled-step.ts OutputSeed). The teacher's scores are per-row data.
//
// d/dz of the soft part: T^2 * (sigmoid(z / T) - target) / T = T * (sigmoid(z / T) - target);
// of the hard part: sigmoid(z) - y (logit; p - y at a final sigmoid's input); ratings:
// 2 alpha (z - t) + 2 (1 - alpha) (z - y). All divided by the batch size, like the tape's mean.

import type { Batch } from './interaction-table.js';
import type { OutputSeed } from './compiled-step.js';
import { rowLoss } from './loss.js';
import type { OutputKind } from './output-kind.js';

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
/** loss.ts logitOf: clipped to [1e-6, 1 - 1e-6] */
const logitOf = (p: number) => {
  const q = Math.min(1 - 1e-6, Math.max(1e-6, p));
  return Math.log(q) - Math.log(1 - q);
};
const bceWithLogits = (z: number, y: number) => Math.max(z, 0) - z * y + Math.log1p(Math.exp(-Math.abs(z)));

/**
 * The seed of distillation for a student whose output is of `kind`; `teacherScores(b)` gives the
 * teacher's scores of the batch rows (in the teacher's own kind, the same as the student's here).
 */
export function distillationSeed(kind: OutputKind, alpha: number, T: number, teacherScores: (b: Batch) => Float32Array): OutputSeed {
  return (scores, b, atSigmoidInput, grad) => {
    const n = scores.length;
    const ts = teacherScores(b);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const s = scores[i];
      const y = b.label[i];
      const t = ts[i];
      if (kind === 'rating') {
        loss += alpha * (s - t) * (s - t) + (1 - alpha) * (s - y) * (s - y);
        grad[i] = (2 * alpha * (s - t) + 2 * (1 - alpha) * (s - y)) / n;
        continue;
      }
      const z = kind === 'logit' ? s : logitOf(s);
      const zt = kind === 'logit' ? t : logitOf(t);
      const target = sigmoid(zt / T);
      loss += alpha * T * T * bceWithLogits(z / T, target) + (1 - alpha) * rowLoss(kind, s, y);
      const hard = kind === 'logit' || atSigmoidInput ? (kind === 'logit' ? sigmoid(z) : s) - y : 0;
      const soft = T * (sigmoid(z / T) - target);
      let g = alpha * soft + (1 - alpha) * hard;
      if (kind === 'probability' && !atSigmoidInput) {
        // the output is p itself: chain through dz/dp = 1 / (p (1 - p)); the hard part by loss.ts' bce
        const q = Math.min(1 - 1e-7, Math.max(1e-7, s));
        const dz = q === s ? 1 / (s * (1 - s)) : 0;
        const hardP = q === s ? (s - y) / (s * (1 - s)) : 0;
        g = alpha * soft * dz + (1 - alpha) * hardP;
      }
      grad[i] = g / n;
    }
    return loss;
  };
}
