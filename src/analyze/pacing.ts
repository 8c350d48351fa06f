/**
 * Per point and stream, window by window over the joined samples: coverage
 * (samples seen, first and last sample) for loss counting, and pacing — the
 * inter-arrival gap between consecutive samples (smpCnt k−1 then k, both
 * seen at the point), its jitter |gap − period|, and reordering (sample k
 * reached the point before sample k−1). Each window reads one extra second
 * before it so no pair is lost at a boundary; partial results merge exactly
 * (counts, min/max, Chan's formula for the variance).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { int, num, rows } from './db.ts';
import type { PacingStats } from './types.ts';

interface Acc {
  seen: number;
  loK: number;
  hiK: number;
  n: number;
  mean: number;
  m2: number;
  min: number;
  max: number;
  maxAbsJitter: number;
  sumAbsJitter: number;
  reordered: number;
}

export interface PointCoverage {
  seen: number;
  /** Lowest and highest sample number k = sec·rate + smpCnt seen, null when none. */
  loK: number | null;
  hiK: number | null;
}

export interface WindowStats {
  /** Adds samples of seconds [a, b) (pairs whose later sample lies there). */
  window(c: DuckDBConnection, a: number, b: number): Promise<void>;
  coverage(stream: number, point: number): PointCoverage;
  pacing(stream: number, point: number, rate: number): PacingStats;
  /** Distinct samples per stream. */
  samples(stream: number): number;
}

const emptyAcc = (): Acc => ({
  seen: 0, loK: Infinity, hiK: -Infinity,
  n: 0, mean: 0, m2: 0, min: Infinity, max: -Infinity, maxAbsJitter: 0, sumAbsJitter: 0, reordered: 0,
});

/** The rate of `stream` as SQL: a constant when every stream has the same. */
export function streamRateSql(streams: readonly { index: number; rate: number }[]): string {
  const byRate = new Map<number, number[]>();
  for (const s of streams) byRate.set(s.rate, [...(byRate.get(s.rate) ?? []), s.index]);
  const rates = [...byRate.keys()];
  if (rates.length <= 1) return String(rates[0] ?? 4000);
  return `CASE ${rates.slice(0, -1).map((r) => `WHEN stream IN (${byRate.get(r)!.join(', ')}) THEN ${r}`).join(' ')} ELSE ${rates.at(-1)} END`;
}

export function createWindowStats(pointCount: number, rateSql: string): WindowStats {
  const accs = new Map<string, Acc>();
  const samples = new Map<number, number>();
  const cols = Array.from({ length: pointCount }, (_, i) => i);
  // g = gap to the previous sample when it is sample k−1 and both reached the point, else NULL.
  const lags = cols.map((i) => `t${i}, CASE WHEN k - lag(k) OVER w = 1 THEN t${i} - lag(t${i}) OVER w END AS g${i}`).join(', ');
  const aggs = cols.map((i) => {
    const present = (x: string) => `CASE WHEN t${i} IS NOT NULL THEN ${x} END`;
    return [
      `count(t${i}) AS seen${i}`, `min(${present('k')}) AS lok${i}`, `max(${present('k')}) AS hik${i}`,
      `count(g${i}) AS n${i}`, `avg(g${i}) AS mean${i}`, `var_pop(g${i}) AS var${i}`, `min(g${i}) AS min${i}`, `max(g${i}) AS max${i}`,
      `max(abs(g${i} - period)) AS maxj${i}`, `sum(abs(g${i} - period)) AS sumj${i}`, `count(*) FILTER (g${i} < 0) AS reord${i}`,
    ].join(', ');
  }).join(', ');
  const tList = cols.map((i) => `t${i}`).join(', ');

  return {
    async window(c, a, b) {
      const out = await rows(c, `WITH w AS (
          SELECT stream, sec, sec::BIGINT * (${rateSql}) + smp_cnt AS k, 1e9 / (${rateSql}) AS period${tList ? ', ' + tList : ''}
          FROM store WHERE sec >= ${a - 1} AND sec < ${b}
        ), l AS (
          SELECT stream, sec, k, period${lags ? ', ' + lags : ''} FROM w WINDOW w AS (PARTITION BY stream ORDER BY k)
        )
        SELECT stream, count(*) AS samples${aggs ? ', ' + aggs : ''} FROM l WHERE sec >= ${a} GROUP BY stream`);
      for (const r of out) {
        const stream = int(r.stream);
        samples.set(stream, (samples.get(stream) ?? 0) + int(r.samples));
        for (const i of cols) {
          const seen = int(r[`seen${i}`]);
          if (seen === 0) continue;
          const key = `${stream}:${i}`;
          const acc = accs.get(key) ?? emptyAcc();
          accs.set(key, acc);
          acc.seen += seen;
          acc.loK = Math.min(acc.loK, num(r[`lok${i}`])!);
          acc.hiK = Math.max(acc.hiK, num(r[`hik${i}`])!);
          acc.reordered += int(r[`reord${i}`]);
          const n = int(r[`n${i}`]);
          if (n === 0) continue;
          const mean = num(r[`mean${i}`])!, m2 = num(r[`var${i}`])! * n;
          const total = acc.n + n;
          const delta = mean - acc.mean;
          acc.m2 += m2 + (delta * delta * acc.n * n) / total;
          acc.mean += (delta * n) / total;
          acc.n = total;
          acc.min = Math.min(acc.min, num(r[`min${i}`])!);
          acc.max = Math.max(acc.max, num(r[`max${i}`])!);
          acc.maxAbsJitter = Math.max(acc.maxAbsJitter, num(r[`maxj${i}`])!);
          acc.sumAbsJitter += num(r[`sumj${i}`])!;
        }
      }
    },
    coverage(stream, point) {
      const a = accs.get(`${stream}:${point}`);
      if (!a) return { seen: 0, loK: null, hiK: null };
      return { seen: a.seen, loK: a.loK, hiK: a.hiK };
    },
    pacing(stream, point, rate) {
      const a = accs.get(`${stream}:${point}`) ?? emptyAcc();
      const some = a.n > 0;
      return {
        pairs: a.n,
        periodNs: 1e9 / rate,
        meanGapNs: some ? a.mean : null,
        stddevGapNs: some ? Math.sqrt(a.m2 / a.n) : null,
        minGapNs: some ? a.min : null,
        maxGapNs: some ? a.max : null,
        maxAbsJitterNs: some ? a.maxAbsJitter : null,
        meanAbsJitterNs: some ? a.sumAbsJitter / a.n : null,
        reordered: a.reordered,
      };
    },
    samples: (stream) => samples.get(stream) ?? 0,
  };
}
