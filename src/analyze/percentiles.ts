/**
 * Exact nearest-rank percentiles without sorting the run: the fine histogram
 * says which bucket holds the ceil(p/100·n)-th smallest latency and its rank
 * inside the bucket; one query then reads only the samples of those buckets
 * and picks that rank. Memory is bounded by the size of a bucket (0.23 % of
 * the value range), not by the number of samples. The rank rule is the one
 * of src/util/percentile.ts.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { rank } from '../util/percentile.ts';
import { bucketSql, locateRank, type FineHistogram } from './histogram.ts';
import { int, rows } from './db.ts';
import { latSql, type SegmentColumns } from './stats.ts';

export interface PercentileTarget {
  seg: number;
  /** -1 for all streams. */
  stream: number;
  p: number;
}

/**
 * Exact percentiles for every target. `hist(seg, stream)` gives the fine
 * histogram (stream -1: all streams). Returns `${seg}:${stream}:${p}` → ns.
 */
export async function exactPercentiles(
  c: DuckDBConnection,
  segs: readonly SegmentColumns[],
  targets: readonly PercentileTarget[],
  hist: (seg: number, stream: number) => FineHistogram,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const located: { tid: number; t: PercentileTarget; bucket: number; r: number }[] = [];
  for (const t of targets) {
    const h = hist(t.seg, t.stream);
    const n = h.reduce((s, x) => s + x.count, 0);
    if (n === 0) continue;
    const where = locateRank(h, rank(n, t.p));
    if (where) located.push({ tid: located.length, t, bucket: where.bucket, r: where.rankInBucket });
  }
  if (located.length === 0) return out;
  const values = located.map((l) => `(${l.tid}, ${l.t.seg}, ${l.t.stream}, ${l.bucket}, ${l.r})`).join(', ');
  // Candidates: only the samples whose (segment, bucket) holds a target (a hash semi-join).
  const r = await rows(c, `WITH targets(tid, seg, stream, b, r) AS (VALUES ${values}),
    cand AS (SELECT seg, stream, v, b FROM (SELECT seg, stream, v, ${bucketSql('v')} AS b FROM (${latSql(segs)}))
             WHERE (seg, b) IN (SELECT DISTINCT seg, b FROM targets)),
    hits AS (
      SELECT t.tid, t.r, c.v FROM targets t JOIN cand c ON c.seg = t.seg AND c.b = t.b AND c.stream = t.stream WHERE t.stream >= 0
      UNION ALL
      SELECT t.tid, t.r, c.v FROM targets t JOIN cand c ON c.seg = t.seg AND c.b = t.b WHERE t.stream < 0
    )
    SELECT tid, v FROM (SELECT tid, r, v, row_number() OVER (PARTITION BY tid ORDER BY v) AS rn FROM hits) WHERE rn = r`);
  for (const x of r) {
    const l = located[int(x.tid)]!;
    out.set(`${l.t.seg}:${l.t.stream}:${l.t.p}`, int(x.v));
  }
  return out;
}
