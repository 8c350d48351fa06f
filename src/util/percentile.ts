/**
 * The one percentile rule of svtrace: nearest rank. The p-th percentile of n
 * values is the ceil(p/100 · n)-th smallest (1-based), so it is always a
 * value that was measured, never an interpolation. p0 is the minimum.
 */

/** 1-based rank of the p-th percentile among n values. */
export function rank(n: number, p: number): number {
  // p/100 · n is an integer more often than floating point shows (0.999 · 16000 = 15984.000000000002)
  return Math.min(n, Math.max(1, Math.ceil((p / 100) * n - 1e-9)));
}

/** The nearest-rank percentile of values sorted ascending. */
export function nearestRank(sorted: ArrayLike<number>, p: number): number {
  return sorted[rank(sorted.length, p) - 1]!;
}

/** The k-th smallest (1-based) of `a`, reordering `a` in place (Hoare's selection, O(n) on average). */
export function selectKth(a: Float64Array, k: number): number {
  let lo = 0, hi = a.length - 1;
  const target = k - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) { const t = a[i]!; a[i] = a[j]!; a[j] = t; i++; j--; }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target]!;
}
