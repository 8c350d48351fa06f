/**
 * A log-spaced latency histogram with bounded memory: 20 buckets per decade
 * from 100 ns to 10 s (12 % wide), plus under- and overflow. Exact count,
 * sum, min and max; percentiles are the upper edge of the bucket holding the
 * nearest-rank sample (so "p99 ≤ x", never optimistic). Used by the live view
 * and the metrics exporter; the report computes exact percentiles from the
 * record instead.
 */
export const BUCKETS_PER_DECADE = 20;
export const MIN_NS = 100;
export const DECADES = 8; // 100 ns .. 10 s
const N = BUCKETS_PER_DECADE * DECADES;

export interface LatencyHistogram {
  counts: Float64Array; // [0] underflow, [1..N] buckets, [N+1] overflow
  count: number;
  sum: number;
  min: number;
  max: number;
  /** Samples with a negative latency (clock trouble), not in the buckets. */
  negative: number;
}

export function createHistogram(): LatencyHistogram {
  return { counts: new Float64Array(N + 2), count: 0, sum: 0, min: Infinity, max: -Infinity, negative: 0 };
}

/** Upper edge (ns) of bucket i (1..N). */
export function bucketUpperNs(i: number): number {
  return MIN_NS * 10 ** (i / BUCKETS_PER_DECADE);
}

export function record(h: LatencyHistogram, ns: number): void {
  if (ns < 0) { h.negative++; return; }
  h.count++;
  h.sum += ns;
  if (ns < h.min) h.min = ns;
  if (ns > h.max) h.max = ns;
  let i: number;
  if (ns <= MIN_NS) i = 0;
  else {
    i = Math.ceil(Math.log10(ns / MIN_NS) * BUCKETS_PER_DECADE);
    if (i > N) i = N + 1;
  }
  h.counts[i]!++;
}

/** Upper bound of the p-th percentile (nearest rank), in ns; exact max for p = 100. */
export function percentileNs(h: LatencyHistogram, p: number): number {
  if (h.count === 0) return NaN;
  if (p >= 100) return h.max;
  const rank = Math.max(1, Math.ceil((p / 100) * h.count));
  let seen = 0;
  for (let i = 0; i < h.counts.length; i++) {
    seen += h.counts[i]!;
    if (seen >= rank) return Math.min(h.max, i === 0 ? MIN_NS : i > N ? h.max : bucketUpperNs(i));
  }
  return h.max;
}

export function merge(into: LatencyHistogram, from: LatencyHistogram): void {
  for (let i = 0; i < into.counts.length; i++) into.counts[i]! += from.counts[i]!;
  into.count += from.count;
  into.sum += from.sum;
  into.min = Math.min(into.min, from.min);
  into.max = Math.max(into.max, from.max);
  into.negative += from.negative;
}
