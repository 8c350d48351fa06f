/**
 * src/explain: why a sample was late. A flight recorder of scheduling and
 * interrupt context (recorder.bpf.c, or recorder.bt through bpftrace) beside the point tracer, pure explanations
 * of late samples from its events, a per-run cause table, and a
 * Chrome/Perfetto trace of the worst samples.
 */
export {
  parseRecorderLine, createRing, pushEvent, recordEvent, ringCoverage, ringSlice, tasksAt, softirqName, wasPreempted, SOFTIRQ_NAMES,
  type RecorderEvent, type SwitchEvent, type WakeupEvent, type MigrateEvent, type SoftirqEvent, type IrqEvent, type EventRing,
} from './events.ts';
export { generateRecorderProgram, startRecorder, validateCpus, type Recorder, type RecorderOptions, type RecorderSpec, type RecorderStats, type RecorderGap, type RecorderEngine } from './recorder.ts';
export { startBpfRecorder, bpfRecorderUnavailable, packRecorderConfig, readRecorderRecords, RECORDER_SIZES, type BpfRecorderOptions } from './recorder-bpf.ts';
export { bucketize, taskOnCpu, type Buckets, type TaskRef } from './replay.ts';
export {
  explainSample, aggregateCauses, topByCount, policyOf,
  type LateSample, type SamplePoint, type Cause, type CauseKind, type CauseRow, type Explanation, type ExplainOptions, type SchedPolicy,
} from './explain.ts';
export { exportChromeTrace, SAMPLES_PID, type ChromeEvent, type ChromeTrace, type TraceWindow, type MarkedSample } from './chrome.ts';
export { runExplain, createExplainer, readPolicy, type Explainer, type ExplainerOptions, type ExplainRunOptions, type ExplainRunResult, type WorstSample, type NormalSample } from './run.ts';
export {
  writeExplainDir, readExplainDir, EXPLAIN_DIR, EXPLANATIONS_FILE,
  type StoredExplanations, type StoredExplanation, type StoredNormal, type StoredPoint, type LoadedExplanations, type LoadedWorst,
} from './files.ts';
export { renderExplainSummary, explainJson } from './render.ts';
