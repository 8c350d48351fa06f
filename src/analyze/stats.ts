/**
 * Statistics over the joined samples (`store`), each one DuckDB query with a
 * small result: per segment and stream fine histograms with count, min, max,
 * mean, stddev, negatives and threshold counts; the worst latency per second;
 * the worst samples; the longest runs of late samples.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { bucketSql, mergeFine, type FineHistogram } from './histogram.ts';
import { int, num, rows } from './db.ts';

/** A measured segment with the store columns of its points. */
export interface SegmentColumns {
  index: number;
  name: string;
  fromCol: number;
  toCol: number;
}

const v = (s: SegmentColumns) => `(t${s.toCol} - t${s.fromCol})`;

/** One relation of (seg, stream, sec, smp_cnt, v) over all measured segments. */
export function latSql(segs: readonly SegmentColumns[]): string {
  return segs.map((s) => `SELECT ${s.index} AS seg, stream, sec, smp_cnt, ${v(s)} AS v FROM store WHERE t${s.toCol} IS NOT NULL AND t${s.fromCol} IS NOT NULL`).join('\nUNION ALL\n');
}

export interface Moments {
  count: number;
  minNs: number | null;
  maxNs: number | null;
  meanNs: number | null;
  stddevNs: number | null;
  negative: number;
  /** Count above each threshold (ns), in the order given. */
  above: number[];
}

export interface FineMoments {
  hist: FineHistogram;
  moments: Moments;
}

/**
 * One pass over every latency: per segment, stream and fine bucket the count,
 * min, max, sum, sum of squares and counts above each threshold (exact: a
 * bucket is either wholly above a threshold or counted value by value), kept
 * in a small table `fine`; then moments per stream and for all streams.
 * Returns `${seg}:${stream}` → histogram and moments; stream -1 is all streams.
 */
export async function fineMoments(c: DuckDBConnection, segs: readonly SegmentColumns[], thresholdsNs: readonly number[]): Promise<Map<string, FineMoments>> {
  const out = new Map<string, FineMoments>();
  if (segs.length === 0) return out;
  const th = thresholdsNs.map((t, i) => `, count(*) FILTER (v > ${t}) AS a${i}`).join('');
  await c.run(`CREATE OR REPLACE TEMP TABLE fine AS SELECT seg, stream, b, count(*) AS n, min(v) AS mn, max(v) AS mx, sum(v) AS s, sum(v::DOUBLE * v) AS ss${th}
    FROM (SELECT seg, stream, v, ${bucketSql('v')} AS b FROM (${latSql(segs)})) GROUP BY ALL`);
  const sumTh = thresholdsNs.map((_, i) => `, sum(a${i})::DOUBLE AS a${i}`).join('');
  const moments = await rows(c, `SELECT seg, stream, GROUPING(stream) AS g, sum(n)::DOUBLE AS n, min(mn) AS mn, max(mx) AS mx, (sum(s) / sum(n))::DOUBLE AS mean,
      sqrt(greatest(0, sum(ss) / sum(n) - ((sum(s) / sum(n))::DOUBLE) ** 2)) AS sd, coalesce(sum(n) FILTER (b < 0), 0)::DOUBLE AS neg${sumTh}
    FROM fine GROUP BY GROUPING SETS ((seg, stream), (seg))`);
  const hist = (await c.runAndReadAll('SELECT seg, stream, b, n::DOUBLE FROM fine ORDER BY seg, stream, b')).getRows();
  const byKey = new Map<string, FineHistogram>();
  for (const [seg, stream, b, n] of hist) {
    for (const key of [`${seg}:${stream}`, `${seg}:-1`]) {
      let h = byKey.get(key);
      if (!h) byKey.set(key, (h = []));
      h.push({ bucket: Number(b), count: Number(n) });
    }
  }
  for (const x of moments) {
    const key = `${int(x.seg)}:${int(x.g) === 1 ? -1 : int(x.stream)}`;
    const h = byKey.get(key) ?? [];
    out.set(key, {
      hist: key.endsWith(':-1') ? mergeFine([h]) : h,
      moments: {
        count: int(x.n), minNs: num(x.mn), maxNs: num(x.mx), meanNs: num(x.mean), stddevNs: num(x.sd), negative: int(x.neg),
        above: thresholdsNs.map((_, i) => int(x[`a${i}`])),
      },
    });
  }
  return out;
}

/** Worst latency (all streams) per sample second, per segment index. */
export async function perSecondMax(c: DuckDBConnection, segs: readonly SegmentColumns[]): Promise<Map<number, { sec: number; maxNs: number; count: number }[]>> {
  const out = new Map<number, { sec: number; maxNs: number; count: number }[]>();
  if (segs.length === 0) return out;
  const r = await rows(c, `SELECT seg, sec, max(v) AS mx, count(*) AS n FROM (${latSql(segs)}) GROUP BY seg, sec ORDER BY seg, sec`);
  for (const x of r) {
    const seg = int(x.seg);
    let list = out.get(seg);
    if (!list) out.set(seg, (list = []));
    list.push({ sec: int(x.sec), maxNs: int(x.mx), count: int(x.n) });
  }
  return out;
}

export interface WorstRow {
  stream: number;
  sec: number;
  smpCnt: number;
  latencyNs: number;
  /** Time of each store column, null where absent. */
  t: (bigint | null)[];
}

/**
 * The n worst samples of each segment. Every one of them lies in a second
 * whose max is at least the n-th largest per-second max, so only those
 * seconds are read (zone maps on sec skip the rest).
 */
export async function worstSamples(
  c: DuckDBConnection, segs: readonly SegmentColumns[], pointCount: number, n: number,
  seconds: Map<number, { sec: number; maxNs: number }[]>,
): Promise<Map<number, WorstRow[]>> {
  const out = new Map<number, WorstRow[]>();
  const tCols = Array.from({ length: pointCount }, (_, i) => `t${i}`).join(', ');
  for (const s of segs) {
    const maxima = (seconds.get(s.index) ?? []).map((x) => x.maxNs).sort((a, b) => b - a);
    if (maxima.length === 0) continue;
    // With n seconds or more, the n worst are all ≥ the n-th largest per-second max.
    let filter = '';
    if (maxima.length >= n) {
      const floor = maxima[n - 1]!;
      const secs = (seconds.get(s.index) ?? []).filter((x) => x.maxNs >= floor).map((x) => x.sec);
      filter = `${secs.length <= 2000 ? `AND sec IN (${secs.join(', ')})` : ''} AND ${v(s)} >= ${floor}`;
    }
    const r = await rows(c, `SELECT stream, sec, smp_cnt, ${v(s)} AS v, ${tCols} FROM store
      WHERE t${s.toCol} IS NOT NULL AND t${s.fromCol} IS NOT NULL ${filter} ORDER BY v DESC, stream, sec, smp_cnt LIMIT ${n}`);
    out.set(s.index, r.map((x) => ({
      stream: int(x.stream), sec: int(x.sec), smpCnt: int(x.smp_cnt), latencyNs: int(x.v),
      t: Array.from({ length: pointCount }, (_, i) => (x[`t${i}`] === null ? null : BigInt(x[`t${i}`] as bigint))),
    })));
  }
  return out;
}

/** Longest run of consecutive late samples (v > limitNs) per stream: length and first sample. */
export async function longestLateRuns(c: DuckDBConnection, s: SegmentColumns, limitNs: number): Promise<Map<number, { length: number; sec: number; smpCnt: number }>> {
  const r = await rows(c, `WITH late AS (
      SELECT st.stream, st.sec, st.smp_cnt, st.sec::BIGINT * s.rate + st.smp_cnt AS k FROM store st JOIN streams s ON st.stream = s.stream
      WHERE t${s.toCol} - t${s.fromCol} > ${limitNs}
    ), isl AS (SELECT stream, sec, smp_cnt, k, k - row_number() OVER (PARTITION BY stream ORDER BY k) AS g FROM late)
    SELECT stream, count(*) AS len, arg_min(sec, k) AS sec, arg_min(smp_cnt, k) AS smp FROM isl GROUP BY stream, g
    QUALIFY row_number() OVER (PARTITION BY stream ORDER BY count(*) DESC, min(k)) = 1`);
  const out = new Map<number, { length: number; sec: number; smpCnt: number }>();
  for (const x of r) out.set(int(x.stream), { length: int(x.len), sec: int(x.sec), smpCnt: int(x.smp) });
  return out;
}
