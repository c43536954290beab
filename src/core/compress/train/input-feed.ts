// What each model input is fed with, from its name and shape: a user id, an item id, a
// [batch, fields] matrix of categorical columns (DeepFM), or one data column of its own name (a
// DeepFM exported with an input per field). Both training engines use it.

import { ModelFileError } from '../../model/ir.js';
import type { Batch } from './interaction-table.js';

/** `column`: the index of the input's column among the batch's extra columns (inputFeedsOf) */
export type InputFeed = { name: string; kind: 'user' | 'item' | 'fields' | 'column'; rank: number; fields?: number; column?: number };

/** The feed of input `name`, or undefined when neither its name nor its shape tells. */
export function inputFeedOf(name: string, shape: ReadonlyArray<number | string | null | undefined> | undefined): InputFeed | undefined {
  const rank = shape?.length ?? 1;
  const lower = name.toLowerCase();
  const second = shape && shape.length === 2 ? shape[1] : undefined;
  if (rank === 2 && typeof second === 'number' && second > 1) return { name, kind: 'fields', rank, fields: second };
  if (/user/.test(lower)) return { name, kind: 'user', rank };
  if (/item/.test(lower)) return { name, kind: 'item', rank };
  if (lower === 'fields') return { name, kind: 'fields', rank, fields: typeof second === 'number' ? second : undefined };
  return undefined;
}

/**
 * The feeds of a model's inputs, in order. Past a user and an item input (and no fields input),
 * an input of one id per row that neither name nor shape tells reads the data column named like
 * it: the k-th such input is extra column k of the batches (readInteractionTable reads them in
 * this order). Inputs nothing tells stay undefined.
 */
export function inputFeedsOf(inputs: ReadonlyArray<{ name: string; shape?: ReadonlyArray<number | string | null | undefined> }>): Array<InputFeed | undefined> {
  const feeds = inputs.map((i) => inputFeedOf(i.name, i.shape));
  const kinds = new Set(feeds.map((f) => f?.kind));
  if (!kinds.has('user') || !kinds.has('item') || kinds.has('fields')) return feeds;
  let k = 0;
  return feeds.map((f, i) => {
    if (f) return f;
    const shape = inputs[i].shape;
    const rank = shape?.length ?? 1;
    const perRow = rank === 1 || (rank === 2 && (shape![1] === 1 || typeof shape![1] !== 'number'));
    return perRow ? { name: inputs[i].name, kind: 'column', rank, column: k++ } : undefined;
  });
}

/** The data columns the column inputs read, in batch order (empty when none). */
export function columnFeedNames(feeds: ReadonlyArray<InputFeed | undefined>): string[] {
  return feeds.filter((f): f is InputFeed => f?.kind === 'column').map((f) => f.name);
}

/** Extra column k of a batch (the data column a column input reads). */
export function extraColumn(b: Pick<Batch, 'user' | 'extra' | 'extraCount'>, k: number, input: string, file: string): Int32Array {
  if (k >= b.extraCount) throw new ModelFileError(file, `model input '${input}' reads a data column of its name, and the data gives ${b.extraCount} extra column(s)`);
  const n = b.user.length;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = b.extra[i * b.extraCount + k];
  return out;
}
