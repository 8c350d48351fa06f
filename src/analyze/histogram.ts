/**
 * Fine buckets of latency, defined once, in integer arithmetic (no log in
 * SQL: several times cheaper over hundreds of millions of values). DuckDB
 * counts samples per fine bucket; everything else comes from those counts:
 * the display histogram (10 bins per decade, 1 µs .. 100 ms), the exceedance
 * curve, and the bucket holding each percentile's rank (then read exactly,
 * see percentiles.ts).
 *
 * Bucket of an integer latency v ≥ 0 (ns): v itself below 100 ns; else with
 * d = floor(log10 v) (2..18), d·1000 + floor(v / 10^(d−2)) — 900 buckets per
 * decade, each 10^(d−2) ns wide (1 % of the decade's start, 0.1 % of its
 * end). A negative v has bucket −bucket(−v). Monotone in v.
 */
import type { ExceedancePoint, HistogramBin } from './types.ts';

const MAX_DECADE = 18;
const LOW_DECADE = 3; // display from 1 µs
const HIGH_DECADE = 8; // to 100 ms
const BINS_PER_DECADE = 10;
const EXCEEDANCE_PER_DECADE = 100;
export const EXCEEDANCE_FLOOR = 1e-7;

function positiveBucketSql(x: string): string {
  const steps: string[] = [];
  for (let d = 2; d <= MAX_DECADE; d++) steps.push(`WHEN ${x} < ${10n ** BigInt(d + 1)} THEN ${d * 1000} + ${x} // ${10n ** BigInt(d - 2)}`);
  return `CASE WHEN ${x} < 100 THEN ${x} ${steps.join(' ')} ELSE ${(MAX_DECADE + 1) * 1000} END`;
}

/** The fine bucket of the SQL BIGINT expression `v` (an INTEGER in the result). */
export function bucketSql(v: string): string {
  return `(CASE WHEN ${v} >= 0 THEN ${positiveBucketSql(v)} ELSE -(${positiveBucketSql(`(-${v})`)}) END)::INTEGER`;
}

/** The same rule in JS (for |v| < 2^53). */
export function bucketOf(v: number): number {
  if (v === 0) return 0; // also −0
  if (v < 0) return -bucketOf(-v);
  if (v < 100) return v;
  const d = Math.min(MAX_DECADE, String(Math.floor(v)).length - 1);
  return d * 1000 + Math.floor(v / 10 ** (d - 2));
}

/** Smallest value (ns) of a bucket ≥ 0. */
export function bucketLowNs(b: number): number {
  if (b < 100) return b;
  const d = Math.floor(b / 1000);
  return (b - d * 1000) * 10 ** (d - 2);
}

/** One past the largest value (ns) of a bucket ≥ 0. */
export function bucketHighNs(b: number): number {
  if (b < 100) return b + 1;
  const d = Math.floor(b / 1000);
  return (b - d * 1000 + 1) * 10 ** (d - 2);
}

/** The smallest bucket edge ≥ x (x > 0): where a log-spaced edge lands on the bucket grid. */
export function edgeAtOrAbove(x: number): number {
  if (x <= 100) return Math.ceil(x);
  const w = 10 ** (Math.floor(Math.log10(x)) - 2);
  return Math.ceil(x / w - 1e-9) * w;
}

/** Fine-bucket counts, sorted by bucket. */
export type FineHistogram = { bucket: number; count: number }[];

export function mergeFine(parts: readonly FineHistogram[]): FineHistogram {
  const m = new Map<number, number>();
  for (const h of parts) for (const { bucket, count } of h) m.set(bucket, (m.get(bucket) ?? 0) + count);
  return [...m.entries()].sort((a, b) => a[0] - b[0]).map(([bucket, count]) => ({ bucket, count }));
}

/**
 * 10 bins per decade from 1 µs to 100 ms, plus an underflow bin (below 1 µs,
 * with negatives) and an overflow bin. Edges are 10^(k/10) ns moved up onto
 * the bucket grid (at most 1 % off), so every count is exact.
 */
export function displayHistogram(fine: FineHistogram, minNs: number | null, maxNs: number | null): HistogramBin[] {
  const edges: number[] = [];
  for (let k = LOW_DECADE * BINS_PER_DECADE; k <= HIGH_DECADE * BINS_PER_DECADE; k++) edges.push(edgeAtOrAbove(10 ** (k / BINS_PER_DECADE)));
  const inner = edges.length - 1;
  const counts = new Array<number>(inner + 2).fill(0);
  for (const { bucket, count } of fine) {
    const low = bucket < 0 ? -Infinity : bucketLowNs(bucket);
    let j = 0;
    while (j < edges.length && low >= edges[j]!) j++;
    counts[j]! += count; // j = 0: below the first edge; j = edges.length: at or above the last
  }
  const bins: HistogramBin[] = [{ loNs: Math.min(minNs ?? 0, 0), hiNs: edges[0]!, count: counts[0]! }];
  for (let j = 0; j < inner; j++) bins.push({ loNs: edges[j]!, hiNs: edges[j + 1]!, count: counts[j + 1]! });
  bins.push({ loNs: edges[inner]!, hiNs: Math.max(maxNs ?? 0, edges[inner]!), count: counts[inner + 1]! });
  return bins;
}

/**
 * Share of samples at or above x, for x at 100 log-spaced points per decade
 * (on the bucket grid, so exact), from the smallest positive sample up to
 * the largest, while the share is at least EXCEEDANCE_FLOOR.
 */
export function exceedance(fine: FineHistogram, total: number): ExceedancePoint[] {
  const positive = fine.filter((f) => f.bucket >= 1);
  if (total === 0 || positive.length === 0) return [];
  const lo = bucketLowNs(positive[0]!.bucket), hi = bucketHighNs(positive.at(-1)!.bucket);
  const xs: number[] = [];
  for (let k = Math.floor(Math.log10(Math.max(lo, 1)) * EXCEEDANCE_PER_DECADE); ; k++) {
    const x = edgeAtOrAbove(10 ** (k / EXCEEDANCE_PER_DECADE));
    if (x > hi) break;
    if (xs.at(-1) !== x) xs.push(x);
  }
  const out: ExceedancePoint[] = [];
  let i = fine.length - 1, above = 0;
  for (let e = xs.length - 1; e >= 0; e--) {
    while (i >= 0 && fine[i]!.bucket >= 0 && bucketLowNs(fine[i]!.bucket) >= xs[e]!) above += fine[i--]!.count;
    out.push({ thresholdNs: xs[e]!, count: above, share: above / total });
  }
  return out.reverse().filter((p) => p.share >= EXCEEDANCE_FLOOR);
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
