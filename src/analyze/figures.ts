/**
 * The figures of a run, from whichever engine computed them: per point
 * coverage and pacing, per segment the fine histograms with their moments,
 * the per-second maxima, the worst samples, the longest late runs and the
 * exact percentiles. `duckdbFigures` is the reference engine (DuckDB SQL,
 * join.ts, pacing.ts, stats.ts, percentiles.ts); native.ts computes the same
 * figures in C and a test requires them to be identical.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Discovery } from './discover.ts';
import type { FineHistogram } from './histogram.ts';
import { createStore, runJoin, type JoinPlan } from './join.ts';
import { createWindowStats, streamRateSql, type WindowStats } from './pacing.ts';
import { exactPercentiles, type PercentileTarget } from './percentiles.ts';
import { fineMoments, longestLateRuns, perSecondMax, worstSamples, type FineMoments, type SegmentColumns, type WorstRow } from './stats.ts';
import { PERCENTILES, type AnalyzeProgress, type JoinMode } from './types.ts';

export type LateRuns = Map<number, { limitUs: number; runs: Map<number, { length: number; sec: number; smpCnt: number }> }>;

export interface Figures {
  /** Coverage, pacing and distinct samples per stream and point. */
  windows: Pick<WindowStats, 'coverage' | 'pacing' | 'samples'>;
  /** `${seg}:${stream}` (stream -1: all streams) → fine histogram and moments. */
  fine: Map<string, FineMoments>;
  seconds: Map<number, { sec: number; maxNs: number; count: number }[]>;
  worst: Map<number, WorstRow[]>;
  lateBySeg: LateRuns;
  /** `${seg}:${stream}:${p}` → ns. */
  pct: Map<string, number>;
}

export interface FigureRequest {
  disc: Discovery;
  mode: JoinMode;
  plan: JoinPlan;
  points: string[];
  segs: SegmentColumns[];
  /** Thresholds counted per segment, ns, ascending. */
  thresholdsNs: number[];
  /** Segment index → late limit (µs), for the segments that have one. */
  lateLimitsUs: Map<number, number>;
  /** Percentiles asked beyond PERCENTILES for all streams (verdicts at other percentiles). */
  extraPercentiles: { seg: number; p: number }[];
  worstCount: number;
  progress: (p: AnalyzeProgress) => void;
}

/** Every (segment, stream, p) whose exact percentile the result carries. */
export function percentileTargets(req: FigureRequest): PercentileTarget[] {
  const targets: PercentileTarget[] = [];
  for (const s of req.segs) {
    for (const p of PERCENTILES) {
      targets.push({ seg: s.index, stream: -1, p });
      for (const x of req.disc.streams) targets.push({ seg: s.index, stream: x.index, p });
    }
  }
  for (const e of req.extraPercentiles) targets.push({ seg: e.seg, stream: -1, p: e.p });
  return targets;
}

/** The reference: DuckDB joins window by window into a scratch table, then SQL statistics over it. */
export async function duckdbFigures(c: DuckDBConnection, req: FigureRequest): Promise<Figures> {
  const { disc, points, segs, plan } = req;
  await createStore(c, points);
  const windows = createWindowStats(points.length, streamRateSql(disc.streams));
  await runJoin(c, points, disc.streams, req.mode, plan, windows, (done, total) => req.progress({ phase: 'join', done, total }));

  req.progress({ phase: 'statistics', done: 0, total: 1 });
  const fine = await fineMoments(c, segs, req.thresholdsNs);
  const seconds = await perSecondMax(c, segs);
  const worst = await worstSamples(c, segs, points.length, req.worstCount, seconds);
  const lateBySeg: LateRuns = new Map();
  for (const s of segs) {
    const limitUs = req.lateLimitsUs.get(s.index);
    if (limitUs !== undefined) lateBySeg.set(s.index, { limitUs, runs: await longestLateRuns(c, s, limitUs * 1000) });
  }

  req.progress({ phase: 'percentiles', done: 0, total: 1 });
  const hist = (seg: number, stream: number): FineHistogram => fine.get(`${seg}:${stream}`)?.hist ?? [];
  const pct = await exactPercentiles(c, segs, percentileTargets(req), hist);
  return { windows, fine, seconds, worst, lateBySeg, pct };
}
