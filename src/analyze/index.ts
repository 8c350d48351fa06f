// Records → samples → segments, statistics and verdicts. See analyze.ts for the story of a run.
export { analyzeRecords, segmentDefs } from './analyze.ts';
export { resolveRecordDirs, rateFromMaxSmpCnt, USUAL_RATES } from './discover.ts';
export { DEFAULT_VERDICTS, verdictRules, evaluateVerdicts, parsePercentile, type VerdictRule } from './verdicts.ts';
export { parseClockOffset } from './clock.ts';
export { bucketOf, bucketLowNs, bucketHighNs } from './histogram.ts';
export {
  DEFAULT_SEGMENTS, DEFAULT_THRESHOLDS_US, PERCENTILES, percentileKey,
  type AnalysisResult, type AnalysisWarning, type AnalyzeOptions, type ClockOffsetOption, type MachineClockResult, type SegmentClock, type AnalyzeProgress, type ExceedancePoint, type HistogramBin, type JoinMode,
  type LateRun, type LatencyStats, type PacingStats, type PercentileKey, type PointOfStream, type RecordSummary, type SecondMax, type SegmentDef,
  type SegmentResult, type StreamResult, type StreamSegmentStats, type ThresholdCount, type VerdictConfig, type VerdictResult, type WorstSample,
} from './types.ts';
