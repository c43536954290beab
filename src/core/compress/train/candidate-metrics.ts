// HR@K / NDCG@K of a trainee on a leave-one-out candidates file, measured inside training jobs
// (before and after) without leaving TF.js.

import { ModelFileError } from '../../model/ir.js';
import { Batch, readInteractionTable, tableAsBatch } from './interaction-table.js';
import { scoreRowsAsync, Trainee } from './trainee.js';

export interface CandidateMetrics {
  k: number;
  hr: number;
  ndcg: number;
  /** positives ranked (one per user in leave-one-out files) */
  positives: number;
}

/**
 * HR@K / NDCG@K over consecutive blocks of rows with the same user: each positive is ranked
 * against the block's negatives; ties count against the positive.
 */
export function candidateMetrics(users: Int32Array, labels: Float32Array, scores: Float32Array, k = 10): CandidateMetrics {
  let hits = 0;
  let ndcg = 0;
  let positives = 0;
  let start = 0;
  while (start < users.length) {
    let end = start + 1;
    while (end < users.length && users[end] === users[start]) end++;
    for (let i = start; i < end; i++) {
      if (labels[i] < 0.5) continue;
      positives++;
      let rank = 0;
      for (let j = start; j < end; j++) if (labels[j] < 0.5 && scores[j] >= scores[i]) rank++;
      if (rank < k) {
        hits++;
        ndcg += 1 / Math.log2(rank + 2);
      }
    }
    start = end;
  }
  return { k, hr: positives ? hits / positives : 0, ndcg: positives ? ndcg / positives : 0, positives };
}

export async function evaluateCandidates(t: Trainee, file: string, k = 10): Promise<CandidateMetrics> {
  const table = await readInteractionTable(file);
  if (table.implicit) throw new ModelFileError(file, 'a candidates file needs a label column with 0 for the negatives');
  return candidateMetrics(table.user, table.label, await scoreRowsAsync(t, tableAsBatch(table)), k);
}

/** evaluateCandidates with any scorer (the fast engine's, compiled-step.ts). */
export async function evaluateCandidatesWith(score: (b: Batch) => Float32Array, file: string, k = 10): Promise<CandidateMetrics> {
  const table = await readInteractionTable(file);
  if (table.implicit) throw new ModelFileError(file, 'a candidates file needs a label column with 0 for the negatives');
  const b = tableAsBatch(table);
  return candidateMetrics(table.user, table.label, score(b), k);
}
