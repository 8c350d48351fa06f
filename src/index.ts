// The public API of svtrace. Everything a library user may rely on is exported here.
export { SvtraceError, isSvtraceError } from './errors.ts';
export * from './sv/index.ts';
export * from './pcap/index.ts';
export * from './lab/index.ts';
export { createInspector, inspectCapture, type InspectResult, type StreamReport, type PacingUs } from './capture/inspect.ts';
export { createSequence, observe, summarizeSequence, type SequenceState, type SequenceSummary, type SequenceGap } from './subscribe/sequence.ts';
export { createReceiver, type Receiver, type ReceivedFrames, type SampleColumns } from './subscribe/receiver.ts';
export { parseStreamFilter, type StreamFilter } from './subscribe/filter.ts';
export { runSubscribe, type SubscribeOptions, type SubscribeResult } from './subscribe/run.ts';
export { runPublish, type PublishOptions, type PublishResult } from './publish/run.ts';
export { expandStreams, formatSvId, sampleRate, DEFAULT_WAVEFORM, type StreamSpec, type StreamsSpec, type WaveformSpec } from './publish/streams.ts';
export { createSchedule, createBatch, type Schedule, type FrameBatch } from './publish/schedule.ts';
export { loadConfig } from './config/load.ts';
export { resolveConfig, parseConfigText, streamsSpec } from './config/resolve.ts';
export type { SvtraceConfig } from './config/schema.ts';
export { nearestRank, selectKth, rank } from './util/percentile.ts';
export * from './record/index.ts';
export * from './net/index.ts';
