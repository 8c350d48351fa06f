/**
 * `analyzeRecords(paths)`: records → one AnalysisResult. The story of a run:
 * find the records → discover streams, rates and points → join the points of
 * each sample window by window (pacing on the way) → statistics and exact
 * percentiles from the joined samples → verdicts. Everything heavy is DuckDB
 * SQL over the record files and a scratch database on disk.
 */
import { loadRecordExplanations } from '../explain/files.ts';
import { lastPoint } from '../path/index.ts';
import { SvtraceError } from '../errors.ts';
import { POINT_NAME_RE } from '../record/schema.ts';
import { isoNs, printable } from '../util/text.ts';
import { clockResults, segmentClock } from './clock.ts';
import { clockWarnings } from './clock-warnings.ts';
import { openWorkDb } from './db.ts';
import { discover, resolveRecordDirs, type Discovery } from './discover.ts';
import { displayHistogram, exceedance } from './histogram.ts';
import { duckdbFigures, type FigureRequest, type Figures } from './figures.ts';
import { planJoin, type JoinPlan } from './join.ts';
import { engineChoice, FALLBACK_CODES, nativeEngineStatus, nativeFigures, type Engine } from './native.ts';
import type { Moments, SegmentColumns } from './stats.ts';
import {
  DEFAULT_SEGMENTS, DEFAULT_THRESHOLDS_US, PERCENTILES, percentileKey,
  type AnalysisResult, type AnalysisWarning, type AnalyzeOptions, type AnalyzeProgress, type LateRun, type LatencyStats, type SegmentDef, type SegmentResult, type StreamResult,
} from './types.ts';
import { DEFAULT_VERDICTS, evaluateVerdicts, lateLimitUs, verdictRules, type VerdictRule } from './verdicts.ts';

const NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,31}$/;

/** DEFAULT_SEGMENTS with the custom ones added (a custom segment of the same name replaces the default). */
export function segmentDefs(custom: readonly SegmentDef[] = []): SegmentDef[] {
  for (const s of custom) {
    if (!NAME_RE.test(s.name) || !POINT_NAME_RE.test(s.from) || !POINT_NAME_RE.test(s.to) || s.from === s.to) {
      throw new SvtraceError('ANALYZE_BAD_SEGMENT', `segment ${printable(s.name)}=${printable(s.from)}:${printable(s.to)} is not valid`, {
        hint: 'Name a segment with letters, digits and _, and two different points (a letter, then letters, digits, _ . -), e.g. --segment Tovs=T1:T2.',
      });
    }
  }
  const names = new Set(custom.map((s) => s.name));
  return [...DEFAULT_SEGMENTS.filter((s) => !names.has(s.name)), ...custom];
}

function latencyStats(m: Moments | undefined, pct: (p: number) => number | null, thresholdsUs: readonly number[], allThresholdsUs: readonly number[], late: LateRun | null): LatencyStats {
  const count = m?.count ?? 0;
  return {
    count,
    minNs: m?.minNs ?? null,
    meanNs: m?.meanNs ?? null,
    stddevNs: m?.stddevNs ?? null,
    percentilesNs: Object.fromEntries(PERCENTILES.map((p) => [percentileKey(p), pct(p)])) as LatencyStats['percentilesNs'],
    maxNs: m?.maxNs ?? null,
    negative: m?.negative ?? 0,
    above: thresholdsUs.map((t) => {
      const n = m?.above[allThresholdsUs.indexOf(t)] ?? 0;
      return { thresholdUs: t, count: n, share: count === 0 ? 0 : n / count };
    }),
    longestLateRun: late,
  };
}

export async function analyzeRecords(paths: readonly string[], options: AnalyzeOptions = {}): Promise<AnalysisResult> {
  const started = performance.now();
  const mode = options.join ?? 'time';
  const defs = segmentDefs(options.segments);
  const verdictCfg = options.verdicts ?? DEFAULT_VERDICTS;
  const rules = verdictRules(verdictCfg, defs.map((d) => d.name));
  const userProgress = options.onProgress ?? (() => {});
  const phaseMs: Record<string, number> = {};
  let phase = '', phaseStart = performance.now();
  const progress = (p: AnalyzeProgress) => {
    if (p.phase !== phase) {
      const now = performance.now();
      if (phase) phaseMs[phase] = Math.round(now - phaseStart);
      phase = p.phase;
      phaseStart = now;
    }
    userProgress(p);
  };
  const dirs = await resolveRecordDirs(paths);
  const db = await openWorkDb(options);
  try {
    const c = db.connection;
    progress({ phase: 'discover', done: 0, total: 1 });
    const disc = await discover(c, dirs, mode, options.clockOffsets);
    const points = disc.points;
    const segs: (SegmentColumns & { def: SegmentDef })[] = defs
      .filter((d) => points.includes(d.from) && points.includes(d.to))
      .map((def, index) => ({ index, name: def.name, def, fromCol: points.indexOf(def.from), toCol: points.indexOf(def.to) }));
    const plan = planJoin(disc, mode, options.windowSamples ?? 250_000);
    if (plan === null) {
      throw new SvtraceError('ANALYZE_NO_SAMPLES', `the records hold no samples: ${dirs.map(printable).join(', ')}`, {
        hint: 'Check that the capture saw SV traffic (svtrace inspect on a pcap, or the record counters in manifest.json).',
      });
    }
    const limitsUs = [...new Set(rules.map((r) => r.limitUs))];
    const baseThresholdsUs = [...new Set([...DEFAULT_THRESHOLDS_US, ...(options.thresholdsUs ?? [])])];
    const allThresholdsUs = [...new Set([...baseThresholdsUs, ...limitsUs])].sort((a, b) => a - b);
    const lateLimitsUs = new Map<number, number>();
    for (const s of segs) {
      const limitUs = lateLimitUs(rules, s.name);
      if (limitUs !== null) lateLimitsUs.set(s.index, limitUs);
    }
    const extraPercentiles = rules.flatMap((r) => {
      const seg = segs.find((s) => s.name === r.segment)?.index;
      return r.statistic === 'max' || seg === undefined ? [] : [{ seg, p: r.statistic }];
    });
    const req: FigureRequest = {
      disc, mode, plan, points, segs, thresholdsNs: allThresholdsUs.map((t) => t * 1000), lateLimitsUs, extraPercentiles,
      worstCount: options.worstCount ?? 20, progress,
    };
    const choice = engineChoice(options.engine);
    let figures: Figures | null = null;
    let engine: Engine = 'duckdb';
    if (choice !== 'duckdb' && (choice === 'native' || nativeEngineStatus().available)) {
      try {
        figures = await nativeFigures(c, req, db.dir, { threads: options.threads ?? 2, memoryLimit: options.memoryLimit ?? '512MB' });
        engine = 'native';
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (choice === 'native' || typeof code !== 'string' || !FALLBACK_CODES.includes(code)) throw e;
        disc.warnings.push({
          code: 'ANALYZE_ENGINE_FALLBACK',
          message: `the native analysis engine could not join these records (${(e as Error).message}); the DuckDB engine did`,
          hint: 'Nothing to do: the figures are the same, only slower. Records whose rows are far out of time order (a clock stepped by seconds) cause this.',
        });
      }
    }
    figures ??= await duckdbFigures(c, req);
    phaseMs[phase] = Math.round(performance.now() - phaseStart);
    const result = assemble({ disc, mode, plan, points, segs, rules, ...figures, engine, baseThresholdsUs, allThresholdsUs, verdictCfg, started, phaseMs });
    // what the records say about their late samples: the report renders it, reading no file itself
    return { ...result, explanations: loadRecordExplanations(disc.records) };
  } finally {
    await db.close();
  }
}

interface Parts {
  disc: Discovery;
  mode: 'time' | 'iter';
  plan: JoinPlan;
  points: string[];
  segs: (SegmentColumns & { def: SegmentDef })[];
  rules: VerdictRule[];
  fine: Figures['fine'];
  seconds: Figures['seconds'];
  worst: Figures['worst'];
  lateBySeg: Figures['lateBySeg'];
  pct: Figures['pct'];
  windows: Figures['windows'];
  engine: Engine;
  baseThresholdsUs: number[];
  allThresholdsUs: number[];
  verdictCfg: NonNullable<AnalyzeOptions['verdicts']>;
  started: number;
  phaseMs: Record<string, number>;
}

function assemble(x: Parts): AnalysisResult {
  const { disc, plan, points, segs } = x;
  const absSecond = (sec: number) => Number(plan.baseSecond) + sec;
  const svIdOf = (stream: number) => disc.streams[stream]?.svId ?? '';
  const warnings: AnalysisWarning[] = [...disc.warnings];
  const clocks = clockResults(disc.records.filter((r) => r.rows > 0), disc.clocks);

  const streams: StreamResult[] = disc.streams.map((s) => {
    const pts = points.map((point, i) => {
      const pc = x.windows.coverage(s.index, i);
      const rowsAtPoint = s.rowsByPoint.get(point) ?? 0;
      const lost = pc.loK !== null && pc.hiK !== null ? pc.hiK - pc.loK + 1 - pc.seen : 0;
      return {
        point, rows: rowsAtPoint, seen: pc.seen, duplicates: rowsAtPoint - pc.seen, lost,
        firstSecond: pc.loK === null ? null : absSecond(Math.floor(pc.loK / s.rate)),
        lastSecond: pc.hiK === null ? null : absSecond(Math.floor(pc.hiK / s.rate)),
        pacing: x.windows.pacing(s.index, i, s.rate),
      };
    });
    // Missing = not delivered: lost at the last point of the path that saw the stream. A sample lost on the
    // wire is absent there too; one only a tracer lost earlier on (bpftrace falling behind) still arrived,
    // and shows in that point's `lost`, not here.
    const lastName = lastPoint(pts.filter((p) => p.seen > 0).map((p) => p.point), x.disc.pointsAfter);
    const last = pts.find((p) => p.point === lastName);
    return { svId: s.svId, appId: s.appId, rate: s.rate, rateFrom: s.rateFrom, samples: x.windows.samples(s.index), missing: last?.lost ?? 0, points: pts };
  });

  const segments: SegmentResult[] = segs.map((s) => {
    const late = x.lateBySeg.get(s.index);
    const limitUs = late?.limitUs ?? null;
    // Thresholds of this segment: the default and requested ones, and its own limit (not other segments').
    const thresholdsUs = x.allThresholdsUs.filter((t) => x.baseThresholdsUs.includes(t) || t === limitUs);
    const lateRun = (stream: number): LateRun | null => {
      if (!late) return null;
      const r = late.runs.get(stream);
      return r ? { limitUs: late.limitUs, length: r.length, startSecond: absSecond(r.sec), startSmpCnt: r.smpCnt, svId: svIdOf(stream) } : { limitUs: late.limitUs, length: 0 };
    };
    let worstRun: LateRun | null = late ? { limitUs: late.limitUs, length: 0 } : null;
    for (const st of disc.streams) {
      const r = lateRun(st.index);
      if (r && worstRun && r.length > worstRun.length) worstRun = r;
    }
    const all = x.fine.get(`${s.index}:-1`)?.moments;
    const clock = segmentClock(s.def.from, s.def.to, clocks);
    warnings.push(...clockWarnings(s.name, s.def, all, x.pct.get(`${s.index}:-1:50`) ?? null, clock, clocks));
    const allHist = x.fine.get(`${s.index}:-1`)?.hist ?? [];
    return {
      segment: s.name, from: s.def.from, to: s.def.to, limitUs,
      all: latencyStats(all, (p) => x.pct.get(`${s.index}:-1:${p}`) ?? null, thresholdsUs, x.allThresholdsUs, worstRun),
      byStream: disc.streams.map((st) => {
        const f = x.fine.get(`${s.index}:${st.index}`);
        return {
          svId: st.svId,
          ...latencyStats(f?.moments, (p) => x.pct.get(`${s.index}:${st.index}:${p}`) ?? null, thresholdsUs, x.allThresholdsUs, lateRun(st.index)),
          histogram: displayHistogram(f?.hist ?? [], f?.moments.minNs ?? null, f?.moments.maxNs ?? null),
          exceedance: exceedance(f?.hist ?? [], f?.moments.count ?? 0),
        };
      }),
      histogram: displayHistogram(allHist, all?.minNs ?? null, all?.maxNs ?? null),
      exceedance: exceedance(allHist, all?.count ?? 0),
      perSecondMax: (x.seconds.get(s.index) ?? []).map((p) => ({ second: absSecond(p.sec), maxNs: p.maxNs, count: p.count })),
      clock,
      worst: (x.worst.get(s.index) ?? []).map((w) => {
        const present = w.t.filter((t): t is bigint => t !== null);
        const first = present.length ? present.reduce((a, b) => (b < a ? b : a)) : null;
        return {
          svId: svIdOf(w.stream), smpCnt: w.smpCnt, second: absSecond(w.sec), latencyNs: w.latencyNs,
          pointsNs: Object.fromEntries(points.map((p, i) => [p, w.t[i] === null || w.t[i] === undefined ? null : String(w.t[i])])),
          iso: first === null ? null : isoNs(Number(first / 1_000_000_000n), Number(first % 1_000_000_000n)),
        };
      }),
    };
  });
  if (segs.length === 0) {
    warnings.push({ code: 'ANALYZE_NO_SEGMENT', message: `no segment can be measured from the points ${points.join(', ')}`, hint: 'A segment needs both of its points, e.g. T3 and T4 for Tsub: add the record that holds the other point.' });
  }

  const missing = streams.reduce((s, st) => s + st.missing, 0);
  const measure = (segment: string, statistic: 'max' | number): number | null => {
    const seg = segs.find((s) => s.name === segment);
    if (!seg) return null;
    const m = x.fine.get(`${seg.index}:-1`)?.moments;
    if (!m || m.count === 0) return null;
    return statistic === 'max' ? m.maxNs : x.pct.get(`${seg.index}:-1:${statistic}`) ?? null;
  };
  const verdicts = evaluateVerdicts(x.rules, measure, missing, x.verdictCfg.maxMissing);
  for (const v of verdicts) {
    if (v.status === 'not-measured') warnings.push({ code: 'ANALYZE_VERDICT_NOT_MEASURED', message: `verdict "${v.name}" not measured: the records lack a point of ${v.segment}`, hint: 'Record both points of the segment (the README\'s "The points and segments" says which command takes which point), or drop the limit from [verdicts] limits_us.' });
  }
  const firstSecond = Math.min(...streams.flatMap((s) => s.points.map((p) => p.firstSecond ?? Infinity)));
  const lastSecond = Math.max(...streams.flatMap((s) => s.points.map((p) => p.lastSecond ?? -Infinity)));
  return {
    format: 'svtrace-analysis',
    formatVersion: 1,
    join: x.mode,
    clock: disc.clock,
    records: disc.records,
    clocks,
    points,
    firstSecond: Number.isFinite(firstSecond) ? firstSecond : null,
    lastSecond: Number.isFinite(lastSecond) ? lastSecond : null,
    samples: streams.reduce((s, st) => s + st.samples, 0),
    streams,
    segments,
    verdicts,
    passed: verdicts.every((v) => v.status !== 'fail'),
    warnings,
    elapsedMs: Math.round(performance.now() - x.started),
    engine: x.engine,
    phaseMs: x.phaseMs,
  };
}
