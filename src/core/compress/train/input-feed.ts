// What each model input is fed with, from its name and shape: a user id, an item id, or a
// [batch, fields] matrix of categorical columns (DeepFM). Both training engines use it.

export type InputFeed = { name: string; kind: 'user' | 'item' | 'fields'; rank: number; fields?: number };

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
