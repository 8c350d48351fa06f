/**
 * src/trace: the in-kernel tracing engine of `svtrace trace`. bpftrace
 * programs generated from a validated config (svtrace.bt, learn.bt), the
 * capability probe and plan, the runner, and the clock map.
 */
export { probeCapabilities, scanTasks, classifyTasks, type Capabilities, type Task } from './capabilities.ts';
export { choosePlan, diagnose, planPoints, type TracePlan, type PointChoice, type Finding, type FindingLevel, type PlannedPoint } from './plan.ts';
export {
  validateTraceConfig, validateInterface,
  type TraceConfig, type TraceRole, type InterfaceRef, type StreamSpec, type SubscriberSpec, type SubscriberMode, type CustomPoint, type ProcessFilter,
} from './config.ts';
export { PROBES, probeDef, type ProbeDef } from './probes.ts';
export { layoutFromFrame, validateLayout, layoutExtent, layoutKey, svIdTlv, MAX_LAYOUT_ASDUS, type FrameLayout, type AsduLayout } from './layout.ts';
export { generateTraceProgram, generateLearnProgram, byteCompares, commentText, estimateInstructions, MAX_INSTRUCTIONS, type ProgramSpec, type ProgramPoint, type PointFilter, type LearnSpec } from './generate.ts';
export { resolveInterface, netnsInode, netnsPath, inInitialNetns, type ResolvedInterface } from './interfaces.ts';
export { findBpftrace, bpftraceVersion, dryRun, versionAtLeast, parseBpftraceVersion, type BpftraceVersion, type DryRunResult } from './bpftrace.ts';
export { measureClockOffset, parseClockOutput, monoToRealtimeNs, type ClockOffset } from './clock.ts';
export { createIterationTracker, sampleIteration, type IterationTracker } from './iteration.ts';
export { learnLayouts, type LearnOptions, type LearnResult } from './learn.ts';
export { startTrace, type TraceHandlers, type TraceOptions, type TraceSession } from './runner.ts';
export { runTrace, type TraceRunOptions, type TraceRunResult, type TraceStarted, type TraceSecond } from './run.ts';
export { qemuTapPoint, tapHolders, type TapPoint } from './tap.ts';
export type { PointEvent, TraceSummary, TraceStream, TraceWarning, TraceWarningKind, UnknownFrame, PointSummary } from './events.ts';
