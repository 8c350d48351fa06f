/**
 * The join: the points of each sample, from every record, into one row of
 * the `store` table: (stream, sec, smp_cnt, t0..tN) where tI is the time of
 * points[I] (ns since the epoch) or NULL where that point never saw the
 * sample. Done in windows of whole seconds so that DuckDB's hash table holds
 * one window of samples, never the run; Parquet row groups outside the
 * window's time range are skipped.
 *
 * Sample identity (time mode): (sv_id, smp_cnt, S) where S is the integer
 * second for which t_ns − (S·1e9 + smp_cnt·1e9/rate) lies in [−0.5 s, 0.5 s).
 * Each point derives S from its own time, so records from different tools
 * and machines join as long as clocks agree and the whole path takes well
 * under half a second. In iter mode S is the recorder's `iter`.
 *
 * Duplicates (same key twice at one point) keep the earliest time; they are
 * counted as rows − seen. Reordering and loss cannot mismatch samples: the
 * key never depends on arrival order.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { SvtraceError } from '../errors.ts';
import { sqlString } from './db.ts';
import type { Discovery } from './discover.ts';
import type { WindowStats } from './pacing.ts';
import type { JoinMode } from './types.ts';

export interface JoinPlan {
  /** Absolute second of sec = 0 (time mode); 0 in iter mode. */
  baseSecond: bigint;
  /** Window starts, each `windowSeconds` long, covering [secLo, secHi). */
  secLo: number;
  secHi: number;
  windowSeconds: number;
}

const NS = 1_000_000_000n;

/** More than this many seconds between the first and last time is not a test run but a bogus timestamp. */
export const MAX_SPAN_SECONDS = 31 * 86_400;

export function planJoin(d: Discovery, mode: JoinMode, windowSamples: number): JoinPlan | null {
  if (d.range === null || d.streams.length === 0) return null;
  const perSecond = d.streams.reduce((s, x) => s + x.rate, 0);
  const windowSeconds = Math.max(1, Math.floor(windowSamples / perSecond));
  const plan: JoinPlan = mode === 'iter'
    ? { baseSecond: 0n, secLo: Number(d.range.lo), secHi: Number(d.range.hi) + 1, windowSeconds }
    : (() => {
      const baseSecond = d.range.lo / NS - 1n;
      const span = Number(d.range.hi - baseSecond * NS) / 1e9;
      return { baseSecond, secLo: 0, secHi: Math.floor(span + 0.5) + 1, windowSeconds };
    })();
  if (plan.secHi - plan.secLo > MAX_SPAN_SECONDS) {
    const what = mode === 'iter' ? `iter runs from ${d.range.lo} to ${d.range.hi}` : `times run from ${d.range.lo} to ${d.range.hi} ns since the epoch`;
    throw new SvtraceError('ANALYZE_TIME_RANGE', `the records span more than 31 days (${what})`, {
      hint: 'A record holds bogus timestamps (e.g. 0, or a clock that jumped): find it with DuckDB (min/max of t_ns per record) and fix or leave it out.',
    });
  }
  return plan;
}

export async function createStore(c: DuckDBConnection, points: readonly string[]): Promise<void> {
  const tCols = points.map((_, i) => `t${i} BIGINT`).join(', ');
  await c.run(`CREATE TABLE store (stream INTEGER, sec INTEGER, smp_cnt INTEGER${tCols ? ', ' + tCols : ''})`);
}

/** The stream's rate as a SQL expression of `sv_id`: a constant when all streams share it. */
export function rateSql(streams: readonly { svId: string; rate: number }[]): string {
  const byRate = new Map<number, string[]>();
  for (const s of streams) byRate.set(s.rate, [...(byRate.get(s.rate) ?? []), s.svId]);
  const rates = [...byRate.keys()];
  if (rates.length <= 1) return String(rates[0] ?? 4000);
  return `CASE ${rates.slice(0, -1).map((r) => `WHEN sv_id IN (${byRate.get(r)!.map(sqlString).join(', ')}) THEN ${r}`).join(' ')} ELSE ${rates.at(-1)} END`;
}

/** An ENUM of the svIDs in stream-index order: casting to it gives each row its stream index cheaply. */
export const STREAM_ENUM = 'sv_stream';

/**
 * SQL that inserts the samples of seconds [a, b) into `store`. Grouped by
 * one BIGINT: stream (the svID's code in STREAM_ENUM) · 2^40 + (sec − a) ·
 * 2^16 + smp_cnt; one integer hash key is much cheaper than (string, int).
 * S is computed exactly in integers, relative to the window start:
 * S − a = floor(((t − start)·rate − smp·1e9 + 0.5e9·rate) / (1e9·rate)).
 * `points` must be every point present and smpCnt within 0..65535 (both
 * checked by discovery), so no row needs filtering for them.
 */
export function windowInsertSql(points: readonly string[], mode: JoinMode, plan: JoinPlan, a: number, b: number, rate: string): string {
  const pick = points.map((p, i) => `min(CASE WHEN point = ${sqlString(p)} THEN t_ns END) AS t${i}`).join(', ');
  let rel: string, where: string;
  if (mode === 'iter') {
    rel = `iter - ${a}`;
    where = `iter >= ${a} AND iter < ${b}`;
  } else {
    const start = (plan.baseSecond + BigInt(a)) * NS;
    // A sample of second S has t in [S − 0.5 s, S + 1.5 s): prune with a little slack.
    const lo = start - 500_000_000n - 1_000_000n;
    const hi = start + BigInt(b - a) * NS + 1_500_000_000n + 1_000_000n;
    // +2 s inside keeps the numerator positive (integer division truncates); −2 outside.
    const r = `(${rate})::BIGINT`;
    rel = `((t_ns - ${start}) * ${r} - smp_cnt::BIGINT * 1000000000 + 2500000000 * ${r}) // (1000000000 * ${r}) - 2`;
    where = `t_ns >= ${lo} AND t_ns < ${hi}`;
  }
  return `INSERT INTO store
    SELECT (key >> 40)::INTEGER, ((key >> 16) & 16777215)::INTEGER + ${a}, (key & 65535)::INTEGER, ${points.map((_, i) => `t${i}`).join(', ')}
    FROM (SELECT key, ${pick}
          FROM (SELECT point, t_ns, (enum_code(sv_id::${STREAM_ENUM})::BIGINT << 40) | (rel << 16) | smp_cnt AS key, rel
                FROM (SELECT sv_id, point, t_ns, smp_cnt, ${rel} AS rel FROM pts WHERE ${where}))
          WHERE rel >= 0 AND rel < ${b - a}
          GROUP BY key)`;
}

/** Runs every window: join into `store`, then coverage and pacing of the window. */
export async function runJoin(
  c: DuckDBConnection,
  points: readonly string[],
  streams: readonly { svId: string; rate: number }[],
  mode: JoinMode,
  plan: JoinPlan,
  windows: WindowStats,
  onWindow: (done: number, total: number) => void,
): Promise<void> {
  const total = Math.ceil((plan.secHi - plan.secLo) / plan.windowSeconds);
  const rate = rateSql(streams);
  let done = 0;
  for (let a = plan.secLo; a < plan.secHi; a += plan.windowSeconds) {
    const b = Math.min(a + plan.windowSeconds, plan.secHi);
    await c.run(windowInsertSql(points, mode, plan, a, b, rate));
    await windows.window(c, a, b);
    onWindow(++done, total);
  }
}
