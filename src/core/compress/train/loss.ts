// Losses by what a model's output means (output-kind.ts decides which): cross-entropy on
// probabilities, cross-entropy with logits, squared error on ratings. One place, so that
// fine-tuning, gradual pruning, distillation and sample pruning cannot disagree.

import * as tf from '@tensorflow/tfjs';
import type { OutputKind } from './output-kind.js';

const EPS = 1e-7;

/** Keras' binary cross-entropy on probabilities (clipped to [eps, 1 - eps]). */
export function bce(p: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const q = tf.clipByValue(p, EPS, 1 - EPS);
    const l = tf.add(tf.mul(y, tf.log(q)), tf.mul(tf.sub(1, y), tf.log(tf.sub(1, q))));
    return tf.neg(tf.mean(l)) as tf.Scalar;
  });
}

/**
 * Binary cross-entropy of raw scores z against targets y in [0, 1], in the stable form
 * max(z, 0) - z y + log(1 + exp(-|z|)) (PyTorch's BCEWithLogitsLoss): no clipping, so a
 * confident wrong logit still gets its full gradient sigmoid(z) - y.
 */
export function bceWithLogits(z: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const l = tf.add(tf.sub(tf.relu(z), tf.mul(z, y)), tf.log1p(tf.exp(tf.neg(tf.abs(z)))));
    return tf.mean(l) as tf.Scalar;
  });
}

export function meanSquaredError(pred: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.square(tf.sub(pred, y))) as tf.Scalar);
}

/** The training loss of a model whose scores are of `kind`, against labels (or ratings) `y`. */
export function lossFor(kind: OutputKind): (pred: tf.Tensor, y: tf.Tensor) => tf.Scalar {
  if (kind === 'logit') return bceWithLogits;
  if (kind === 'rating') return meanSquaredError;
  return bce;
}

/** A loss's name for reports. */
export function lossName(kind: OutputKind): string {
  if (kind === 'logit') return 'binary cross-entropy with logits';
  if (kind === 'rating') return 'squared error';
  return 'binary cross-entropy on probabilities';
}

/** Scores as probabilities (a logit through the sigmoid), with temperature T applied to the logit. Ratings have none. */
export function toProbability(kind: OutputKind, scores: tf.Tensor, T = 1): tf.Tensor {
  return tf.tidy(() => {
    if (kind === 'rating') throw new Error('a rating has no probability');
    const z = kind === 'logit' ? scores : logitOf(scores);
    return tf.sigmoid(T === 1 ? z : tf.div(z, T));
  });
}

/** The logit of probabilities (clipped so that 0 and 1 stay finite). */
export function logitOf(p: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const q = tf.clipByValue(p, 1e-6, 1 - 1e-6);
    return tf.sub(tf.log(q), tf.log(tf.sub(1, q)));
  });
}

/** One row's loss (for sample-importance scoring), the same as the batch loss for that row. */
export function rowLoss(kind: OutputKind, score: number, y: number): number {
  if (kind === 'rating') return (score - y) * (score - y);
  if (kind === 'logit') return Math.max(score, 0) - score * y + Math.log1p(Math.exp(-Math.abs(score)));
  const q = Math.min(1 - EPS, Math.max(EPS, score));
  return -(y * Math.log(q) + (1 - y) * Math.log(1 - q));
}

/**
 * d loss / d z for one row, z being the final layer's pre-activation: p - y for a sigmoid
 * probability and for a logit (sigmoid(z) - y), 2 (z - y) for a rating.
 */
export function rowOutputGradient(kind: OutputKind, score: number, y: number): number {
  if (kind === 'rating') return 2 * (score - y);
  if (kind === 'logit') return 1 / (1 + Math.exp(-score)) - y;
  return score - y;
}
