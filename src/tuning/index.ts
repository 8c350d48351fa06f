// The host's real-time settings for SV latency (`svtrace doctor --tuning`): probe under a root, judge, render.
export { checkTuning, judgeTuning, validateTuningOptions, DEFAULT_SUBSCRIBER_COMM, type TuningOptions } from './tuning.ts';
export { probeHost, type HostFacts, type ThreadFacts, type NicFacts, type CpuFacts } from './probe.ts';
export { renderTuning } from './render.ts';
export type { TuningFinding, TuningLevel, TuningReport } from './types.ts';
