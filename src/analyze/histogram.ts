/**
 * Log-spaced buckets, defined once. A fine bucket is 1/1000 of a decade
 * (0.23 % wide); DuckDB counts samples per fine bucket, and everything else
 * comes from those counts: the display histogram (10 bins per decade, 1 µs ..
 * 100 ms, each exactly 100 fine buckets), the exceedance curve, and the
 * bucket holding each percentile's rank (then read exactly, see percentiles.ts).
 *
 * Bucket of an integer latency v (ns): v ≥ 1 → floor(1000·log10 v) + 1;
 * v = 0 → 0; v ≤ −1 → −(floor(1000·log10 −v) + 1). Monotone in v.
 */
import type { ExceedancePoint, HistogramBin } from './types.ts';

export const FINE_PER_DECADE = 1000;
const FINE_PER_BIN = 100; // display: 10 bins per decade
const LOW_DECADE = 3; // 1 µs
const HIGH_DECADE = 8; // 100 ms
const EXCEEDANCE_STEP = 10; // points at 100 per decade
export const EXCEEDANCE_FLOOR = 1e-7;

/** The fine bucket of the SQL integer expression `v`. */
export function bucketSql(v: string): string {
  return `CASE WHEN ${v} >= 1 THEN floor(log10(${v}) * ${FINE_PER_DECADE})::INTEGER + 1 WHEN ${v} = 0 THEN 0 ELSE -(floor(log10(-${v}) * ${FINE_PER_DECADE})::INTEGER + 1) END`;
}

/** The same rule in JS (tests; the SQL is authoritative for stored data). */
export function bucketOf(v: number): number {
  if (v >= 1) return Math.floor(Math.log10(v) * FINE_PER_DECADE) + 1;
  if (v === 0) return 0;
  return -(Math.floor(Math.log10(-v) * FINE_PER_DECADE) + 1);
}

/** Lower edge (ns) of a positive fine bucket. */
export function bucketLowNs(b: number): number {
  return 10 ** ((b - 1) / FINE_PER_DECADE);
}

/** Fine-bucket counts, sorted by bucket. */
export type FineHistogram = { bucket: number; count: number }[];

export function mergeFine(parts: readonly FineHistogram[]): FineHistogram {
  const m = new Map<number, number>();
  for (const h of parts) for (const { bucket, count } of h) m.set(bucket, (m.get(bucket) ?? 0) + count);
  return [...m.entries()].sort((a, b) => a[0] - b[0]).map(([bucket, count]) => ({ bucket, count }));
}

/** 10 bins per decade from 1 µs to 100 ms, plus an underflow bin (below 1 µs, with negatives) and an overflow bin. */
export function displayHistogram(fine: FineHistogram, minNs: number | null, maxNs: number | null): HistogramBin[] {
  const inner = (HIGH_DECADE - LOW_DECADE) * (FINE_PER_DECADE / FINE_PER_BIN);
  const counts = new Array<number>(inner + 2).fill(0);
  for (const { bucket, count } of fine) {
    const j = bucket >= 1 ? Math.floor((bucket - 1) / FINE_PER_BIN) - LOW_DECADE * (FINE_PER_DECADE / FINE_PER_BIN) : -1;
    const slot = j < 0 ? 0 : j >= inner ? inner + 1 : j + 1;
    counts[slot]! += count;
  }
  const edge = (j: number) => Math.round(10 ** (LOW_DECADE + j / (FINE_PER_DECADE / FINE_PER_BIN)));
  const bins: HistogramBin[] = [{ loNs: Math.min(minNs ?? 0, 0), hiNs: edge(0), count: counts[0]! }];
  for (let j = 0; j < inner; j++) bins.push({ loNs: edge(j), hiNs: edge(j + 1), count: counts[j + 1]! });
  bins.push({ loNs: edge(inner), hiNs: Math.max(maxNs ?? 0, edge(inner)), count: counts[inner + 1]! });
  return bins;
}

/** Share of samples at or above each edge (100 per decade), from the first edge below the smallest positive sample down to EXCEEDANCE_FLOOR. */
export function exceedance(fine: FineHistogram, total: number): ExceedancePoint[] {
  if (total === 0) return [];
  const positive = fine.filter((f) => f.bucket >= 1);
  if (positive.length === 0) return [];
  const first = positive[0]!.bucket;
  const last = positive.at(-1)!.bucket;
  const out: ExceedancePoint[] = [];
  let i = fine.length - 1;
  let above = 0;
  // Walk edges downward from the top, accumulating counts of buckets ≥ edge.
  const startEdge = Math.floor((last - 1) / EXCEEDANCE_STEP) * EXCEEDANCE_STEP + 1;
  for (let e = startEdge; e >= first - EXCEEDANCE_STEP; e -= EXCEEDANCE_STEP) {
    while (i >= 0 && fine[i]!.bucket >= e) above += fine[i--]!.count;
    out.push({ thresholdNs: Math.round(bucketLowNs(e) * 1000) / 1000, count: above, share: above / total });
  }
  out.reverse();
  return out.filter((p) => p.share >= EXCEEDANCE_FLOOR);
}

/** Where the r-th smallest (1-based) falls: its bucket and its rank within that bucket. */
export function locateRank(fine: FineHistogram, r: number): { bucket: number; rankInBucket: number } | null {
  let before = 0;
  for (const { bucket, count } of fine) {
    if (before + count >= r) return { bucket, rankInBucket: r - before };
    before += count;
  }
  return null;
}
