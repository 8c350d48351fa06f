/**
 * The analysis result: one plain object with stable keys, the programmatic
 * API of `svtrace report` (its `--json` and summary.json are this object).
 * Latencies are integer ns as numbers; absolute times are ns since the epoch
 * as decimal strings (they exceed 2^53) plus ISO-8601.
 */

import type { RecordExplanations } from '../explain/files.ts';
import { SEGMENTS, type SegmentDef } from '../path/index.ts';

/** A segment is the latency between two points of the same sample: to − from. */
export type { SegmentDef } from '../path/index.ts';

/** The segments of the path (src/path), measured whenever both of their points exist. */
export const DEFAULT_SEGMENTS: readonly SegmentDef[] = SEGMENTS.map((s) => ({ name: s.name, from: s.from, to: s.to }));

/** The percentiles every latency summary carries (nearest rank, exact). */
export const PERCENTILES = [50, 90, 99, 99.9, 99.99] as const;
export type PercentileKey = 'p50' | 'p90' | 'p99' | 'p99.9' | 'p99.99';
export const percentileKey = (p: number): PercentileKey => `p${p}` as PercentileKey;

/** Thresholds (µs) counted for every segment, besides the segment's own verdict limit. */
export const DEFAULT_THRESHOLDS_US: readonly number[] = [50, 100, 200, 500, 1000, 10_000];

/**
 * How points of one sample are matched across records.
 * - `time`: on (svID, smpCnt, second S), S derived from each point's own time
 *   (clocks synchronised, smpCnt restarting every second). Works across tools
 *   and machines.
 * - `iter`: on (svID, smpCnt, iter) as written by the recorder. Valid only
 *   within one recorder (one record directory), whose iter counts are shared.
 */
export type JoinMode = 'time' | 'iter';

export interface VerdictConfig {
  /** Limit in µs per segment name; a key `<segment>_p<digits>[_<digits>]` (e.g. `Ttot_p99_99`) limits that percentile instead of the max. */
  limitsUs: Record<string, number>;
  /** Most missing samples allowed over all streams. */
  maxMissing: number;
  /** Where plain segment keys apply: 'max' (default: every sample within the limit) or a percentile such as 'p99.99'. */
  at?: 'max' | PercentileKey;
}

export interface AnalyzeProgress {
  phase: 'discover' | 'join' | 'statistics' | 'percentiles';
  done: number;
  total: number;
}

export interface AnalyzeOptions {
  join?: JoinMode;
  /** Segments to measure besides DEFAULT_SEGMENTS (same name replaces a default). */
  segments?: readonly SegmentDef[];
  verdicts?: VerdictConfig;
  /** Extra thresholds (µs) counted for every segment. */
  thresholdsUs?: readonly number[];
  /** DuckDB threads (default 2) and memory limit (default '512MB'). */
  threads?: number;
  memoryLimit?: string;
  /** Directory for the scratch database (default: the OS temp dir); removed afterwards. */
  tmpDir?: string;
  /** Target samples per join window (default 250,000): bounds memory; small windows keep DuckDB's hash table in cache. */
  windowSamples?: number;
  /**
   * Which engine joins and counts: 'native' (C, one pass), 'duckdb' (the SQL reference) or 'auto'
   * (default: native when built, else DuckDB). Default from SVTRACE_ANALYZE_ENGINE.
   */
  engine?: 'auto' | 'native' | 'duckdb';
  /** How many worst samples to keep per segment (default 20). */
  worstCount?: number;
  /** Clock offsets given for machines (they replace what the machines' records carry); see clock.ts. */
  clockOffsets?: readonly ClockOffsetOption[];
  onProgress?: (p: AnalyzeProgress) => void;
}

/** A machine's clock offset given by the user: machine − reference, decimal ns (`parseClockOffset` reads the flag's form). */
export interface ClockOffsetOption {
  /** As the records name it (manifest `host`). */
  machine: string;
  offsetNs: string;
  uncertaintyNs: string;
}

/** A machine's clock: the reference (no offset) or corrected onto it, before the join. */
export interface MachineClockResult {
  /** The manifests' `host`. */
  machine: string;
  /** The points its records hold. */
  points: string[];
  status: 'reference' | 'corrected';
  /** Where the offset came from: the records (measured in the lab) or the option/config; null for the reference. */
  source: 'record' | 'option' | null;
  /** machine − reference, ns (at the first measurement when it drifts); subtracted from the machine's times. */
  offsetNs: number | null;
  /** ± ns of the offset (the largest of the measurements used); null when unknown. */
  uncertaintyNs: number | null;
  /** Drift (ns of offset per s) when two measurements at different times were interpolated, else null. */
  driftNsPerS: number | null;
  measurements: number;
}

/** Whether a segment's points are on different machines, and how sure its figures are of the clocks. */
export interface SegmentClock {
  fromMachines: string[];
  toMachines: string[];
  crossMachine: boolean;
  /** A clock offset was applied to one of its ends (a cross-machine segment only). */
  corrected: boolean;
  /** ± ns every figure of the segment may be off by: the sum of its two ends' offset uncertainties; null when not corrected or unknown. */
  uncertaintyNs: number | null;
}

export interface AnalysisWarning {
  code: string;
  message: string;
  hint: string;
}

export interface RecordSummary {
  dir: string;
  runId: string;
  host: string;
  role: string;
  points: string[];
  clock: string;
  state: string;
  rows: number;
}

export interface ThresholdCount {
  thresholdUs: number;
  count: number;
  share: number;
}

export interface LatencyStats {
  count: number;
  minNs: number | null;
  meanNs: number | null;
  stddevNs: number | null;
  percentilesNs: Record<PercentileKey, number | null>;
  maxNs: number | null;
  /** Samples whose `to` point is earlier than their `from` point. */
  negative: number;
  above: ThresholdCount[];
  /** Longest run of consecutive samples (smpCnt after smpCnt) above the segment's limit; null without a limit. */
  longestLateRun: LateRun | null;
}

export interface LateRun {
  limitUs: number;
  length: number;
  /** Sample second and smpCnt of the first late sample of the run (absent when length is 0). */
  startSecond?: number;
  startSmpCnt?: number;
  svId?: string;
}

export interface StreamSegmentStats extends LatencyStats {
  svId: string;
  histogram: HistogramBin[];
  exceedance: ExceedancePoint[];
}

export interface HistogramBin {
  /**
   * Bin edges in ns, [loNs, hiNs): 10^(k/10) moved up onto the fine-bucket grid (≤ 1 % off), counts exact.
   * The first bin holds everything below 1 µs (incl. negatives; loNs is min(0, smallest)), the last everything from 100 ms.
   */
  loNs: number;
  hiNs: number;
  count: number;
}

export interface ExceedancePoint {
  /** Share of samples with latency ≥ thresholdNs. */
  thresholdNs: number;
  share: number;
  count: number;
}

export interface SecondMax {
  /** Sample second S (seconds since the epoch; `iter` in iter mode). */
  second: number;
  maxNs: number;
  count: number;
}

export interface WorstSample {
  svId: string;
  smpCnt: number;
  second: number;
  latencyNs: number;
  /** Absolute time of each point of the sample (ns since the epoch, decimal), null where absent. */
  pointsNs: Record<string, string | null>;
  iso: string | null;
}

export interface SegmentResult {
  segment: string;
  from: string;
  to: string;
  /** Verdict limit that applies to this segment, if any. */
  limitUs: number | null;
  all: LatencyStats;
  byStream: StreamSegmentStats[];
  histogram: HistogramBin[];
  exceedance: ExceedancePoint[];
  perSecondMax: SecondMax[];
  worst: WorstSample[];
  /** The machines of its two points and the clock correction's uncertainty. */
  clock: SegmentClock;
}

export interface PacingStats {
  /** Pairs of consecutive samples (smpCnt k−1, k) both present at the point. */
  pairs: number;
  periodNs: number;
  meanGapNs: number | null;
  stddevGapNs: number | null;
  minGapNs: number | null;
  maxGapNs: number | null;
  /** max |gap − period| and its mean over pairs. */
  maxAbsJitterNs: number | null;
  meanAbsJitterNs: number | null;
  /** Pairs (k−1, k) where sample k reached the point before sample k−1. */
  reordered: number;
}

export interface PointOfStream {
  point: string;
  rows: number;
  /** Samples seen at this point (after removing duplicates). */
  seen: number;
  duplicates: number;
  /** Samples between the first and last seen at this point that it never saw. */
  lost: number;
  firstSecond: number | null;
  lastSecond: number | null;
  pacing: PacingStats;
}

export interface StreamResult {
  svId: string;
  appId: number | null;
  rate: number;
  rateFrom: 'manifest' | 'data';
  /** Distinct samples seen at any point. */
  samples: number;
  /** Max over points of `lost`: a sample lost on the way is absent at every later point, so it counts once. */
  missing: number;
  points: PointOfStream[];
}

export interface VerdictResult {
  name: string;
  /** 'limit' on a segment statistic, or 'missing'. */
  kind: 'limit' | 'missing';
  segment: string | null;
  /** 'max', a percentile key, or 'missing'. */
  statistic: string;
  limit: number;
  unit: 'us' | 'samples';
  /** The measured value in the limit's unit, null when not measured. */
  measured: number | null;
  status: 'pass' | 'fail' | 'not-measured';
}

export interface AnalysisResult {
  format: 'svtrace-analysis';
  formatVersion: 1;
  join: JoinMode;
  clock: string;
  records: RecordSummary[];
  /** Each machine's clock (the reference, or corrected onto it). */
  clocks: MachineClockResult[];
  points: string[];
  /** The first and last sample second covered (seconds since the epoch, or iter). */
  firstSecond: number | null;
  lastSecond: number | null;
  samples: number;
  streams: StreamResult[];
  segments: SegmentResult[];
  verdicts: VerdictResult[];
  passed: boolean;
  warnings: AnalysisWarning[];
  elapsedMs: number;
  /** The engine that joined the points and computed the figures (the same figures either way). */
  engine: 'native' | 'duckdb';
  /** Where the time went: ms spent in each phase (discover, join, statistics, percentiles). */
  phaseMs: Record<string, number>;
  /** The explanations of late samples the records hold (RECORD/explain/, from `trace --explain`); the report renders them. */
  explanations?: RecordExplanations[];
}
