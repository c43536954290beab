// A small seeded PRNG so that sample data, initial weights and scale fixtures are the same on
// every machine and every run (Math.random cannot be seeded).

/** mulberry32: 32-bit state, uniform floats in [0, 1). Fast, and plenty for synthetic data. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
  /** integer in [0, n) */
  int(n: number): number;
  /** standard normal */
  normal(): number;
  /** a seed for a derived generator, so that sub-streams do not shift when one of them changes */
  fork(salt: number): Rng;
}

export function createRng(seed: number): Rng {
  const u = mulberry32(seed);
  let spare: number | undefined;
  const rng: Rng = {
    next: u,
    int: (n) => Math.floor(u() * n),
    normal: () => {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      // Box-Muller; 1 - u() keeps the log argument in (0, 1]
      const r = Math.sqrt(-2 * Math.log(1 - u()));
      const th = 2 * Math.PI * u();
      spare = r * Math.sin(th);
      return r * Math.cos(th);
    },
    fork: (salt) => createRng(hashSeed(seed, salt)),
  };
  return rng;
}

/** Mixes two integers into a new 32-bit seed. */
export function hashSeed(a: number, b: number): number {
  let h = Math.imul((a >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul((b >>> 0) + 0x7f4a7c15, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Fisher-Yates in place. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(arr: T, rng: Rng): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = arr[i];
    arr[i] = arr[j];
    arr[j] = t;
  }
  return arr;
}
