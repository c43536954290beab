// The known name nearest to a mistyped one (edit distance), for "did you mean" hints: a recipe's
// unknown setting, a command's unknown option.

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The known name within 2 edits of `key` (case and, for options, dashes aside), nearest first; undefined when none. */
export function closestName(key: string, known: readonly string[], norm: (s: string) => string = (s) => s.toLowerCase()): string | undefined {
  const k = norm(key);
  const near = known.map((n) => ({ n, d: editDistance(k, norm(n)) })).sort((a, b) => a.d - b.d)[0];
  return near && near.d <= 2 && near.d < k.length ? near.n : undefined;
}
