// Training against a teacher: the distillation loss (alpha x the teacher's soft targets +
// (1 - alpha) x the labels) on the TF.js tape, and the teacher's scores per batch as plain data
// (the compiled engine when the teacher's graph allows, else its TF.js translation). Distillation
// into a new student uses it, and so does fine-tuning a compressed model against its original
// (the original's scores carry what the labels of the training rows alone do not).

import * as tf from '@tensorflow/tfjs';
import type { ModelIR } from '../../model/ir.js';
import type { Batch } from './interaction-table.js';
import { bceWithLogits, logitOf, lossFor, meanSquaredError, toProbability } from './loss.js';
import type { OutputKind } from './output-kind.js';
import { chooseTrainingEngine } from './engine-choice.js';
import { loadTrainee, type Trainee } from './trainee.js';

/**
 * The distillation loss for a student whose output is of `kind` (the teacher's): on probabilities
 * and logits, (1 - alpha) x the labels' cross-entropy + alpha x T^2 x the cross-entropy of the
 * student's tempered logit against the teacher's tempered probability (Hinton et al.); on ratings,
 * squared errors against the ratings and against the teacher's ratings.
 */
export function distillationLoss(kind: OutputKind, alpha: number, T: number): (pred: tf.Tensor, y: tf.Tensor, teacherScores: tf.Tensor) => tf.Scalar {
  const hardLoss = lossFor(kind);
  return (pred, y, teacherScores) =>
    tf.tidy(() => {
      const hard = hardLoss(pred, y);
      if (alpha === 0) return hard;
      let soft: tf.Scalar;
      if (kind === 'rating') soft = meanSquaredError(pred, teacherScores);
      else {
        const target = toProbability(kind, teacherScores, T);
        const z = kind === 'logit' ? pred : logitOf(pred);
        soft = tf.mul(bceWithLogits(T === 1 ? z : tf.div(z, T), target), T * T) as tf.Scalar;
      }
      return tf.add(tf.mul(soft, alpha), tf.mul(hard, 1 - alpha)) as tf.Scalar;
    });
}

/** A teacher's scores of a batch's rows (no gradient reaches it). */
export interface TeacherScorer {
  score(b: Batch): Float32Array;
  /** which engine scores: 'compiled' or 'tape' */
  engine: 'compiled' | 'tape';
  dispose(): void;
}

/**
 * The teacher's scores on the compiled engine when its graph allows (no tape), else through its
 * TF.js translation: `trainee` when the caller has one (and owns it), else one loaded frozen
 * (constants only: no variable names that could collide with the model being trained) and
 * disposed with the scorer.
 */
export async function teacherScorer(ir: ModelIR, trainee?: Trainee): Promise<TeacherScorer> {
  const choice = await chooseTrainingEngine(ir, 'auto');
  if (choice.kind === 'compiled') {
    const engine = choice.engine;
    return { score: (b) => engine.score(b), engine: 'compiled', dispose: () => engine.dispose() };
  }
  if (trainee) return tapeTeacher(trainee);
  const own = await loadTrainee(ir, { frozen: true });
  return { ...tapeTeacher(own), dispose: () => own.dispose() };
}

/** The teacher's scores through its TF.js trainee (the caller owns and disposes the trainee). */
export function tapeTeacher(trainee: Trainee): TeacherScorer {
  return { score: (b) => tf.tidy(() => trainee.forward(b).dataSync() as Float32Array), engine: 'tape', dispose: () => undefined };
}

/** The tape loss of training against `teacher` (distillationLoss with its scores as data). */
export function teacherLoss(kind: OutputKind, alpha: number, T: number, teacher: TeacherScorer): (pred: tf.Tensor, b: Batch) => tf.Scalar {
  const mix = distillationLoss(kind, alpha, T);
  return (pred, b) => {
    const ts = teacher.score(b);
    return tf.tidy(() => mix(pred, tf.tensor1d(b.label), tf.tensor1d(ts)));
  };
}
