/**
 * From svtrace.bt's output to point events and a summary. Pure state and
 * functions: the runner feeds lines in; tests can too.
 */
import { createFrameScan, scanFrame, F_SVID, FIELD_COUNT, latin1 } from '../sv/index.ts';
import type { ClockOffset } from './clock.ts';
import type { ProgramPoint } from './generate.ts';
import type { FrameLayout } from './layout.ts';
import { orderPoints } from '../path/index.ts';
import { createIterationTracker, sampleIteration, type IterationTracker } from './iteration.ts';
import { createFrameLine, isMapFullWarning, parseAttaching, parseFrameLine, parseLost, parseMapLine, parseUnknownLine } from './parse.ts';

export interface TraceStream {
  index: number;
  svId: string;
  appId: number;
  smpCntWrap?: number;
}

/** One ASDU seen at one point. */
export interface PointEvent {
  /** Point name: T1..T4 or a custom name. */
  point: string;
  pointId: number;
  streamIndex: number;
  svId: string;
  appId: number;
  smpCnt: number;
  /** Wrap iteration of smpCnt for this stream, shared by all points of the trace. */
  iter: number;
  /** Realtime ns since the epoch (CLOCK_REALTIME), from the monotonic time and the measured offset. */
  tNs: bigint;
  tMonoNs: bigint;
  cpu: number;
}

export type TraceWarningKind = 'lost-events' | 'unknown-frame' | 'map-full' | 'bpftrace-output' | 'stream-not-seen' | 'clock' | 'lost-lines' | 'skipped-runs';

export interface TraceWarning {
  kind: TraceWarningKind;
  message: string;
  count: number;
}

export interface UnknownFrame {
  point: string;
  appId: number | null;
  svIds: string[];
  /** The first bytes of the frame (up to 128). */
  bytes: Uint8Array;
}

export interface PointSummary {
  id: number;
  name: string;
  probes: string[];
  /** Matched frames whose line arrived. */
  frames: number;
  /** ASDU events delivered. */
  events: number;
  /** Matched frames as the kernel counted them (null when bpftrace did not reach END). */
  kernelFrames: number | null;
  unknown: number;
  short: number;
}

export interface TraceSummary {
  durationMs: number;
  exitCode: number | null;
  signal: string | null;
  killed: boolean;
  endSeen: boolean;
  points: PointSummary[];
  streams: Array<TraceStream & { wraps: number }>;
  /** Sum of bpftrace's "Lost N events". */
  lostEvents: number;
  /** Frames the kernel matched whose line never arrived (kernel count minus lines), over all points. */
  lostLines: number;
  mapFullWarnings: number;
  /** Probe runs the kernel skipped (a probe fired while another BPF program ran on that CPU): frames with no line at some point. Null: not read. */
  skippedRuns: number | null;
  unknownFrames: UnknownFrame[];
  clocks: ClockOffset[];
  messages: string[];
}

export interface TraceState {
  points: Map<number, { point: ProgramPoint; summary: PointSummary }>;
  layouts: FrameLayout[];
  /** Stream index of each ASDU of each layout. */
  layoutStreams: number[][];
  streams: TraceStream[];
  trackers: IterationTracker[];
  clock: ClockOffset;
  clocks: ClockOffset[];
  line: ReturnType<typeof createFrameLine>;
  lostEvents: number;
  mapFull: number;
  endSeen: boolean;
  unknownFrames: UnknownFrame[];
  messages: string[];
  attaching: number | null;
  /** The point first on the path: it moves the iteration trackers' edge, the others follow (iteration.ts). */
  leaderId: number | null;
}

function leadingPoint(points: readonly ProgramPoint[]): number | null {
  // custom points (placed after a T point) never come first when a T point is traced
  const first = orderPoints(points.map((p) => p.name))[0];
  return points.find((p) => p.name === first)?.id ?? null;
}

export function createTraceState(points: ProgramPoint[], layouts: FrameLayout[], streams: TraceStream[], clock: ClockOffset): TraceState {
  const map = new Map<number, { point: ProgramPoint; summary: PointSummary }>();
  for (const p of points) {
    map.set(p.id, { point: p, summary: { id: p.id, name: p.name, probes: p.probes, frames: 0, events: 0, kernelFrames: null, unknown: 0, short: 0 } });
  }
  const layoutStreams = layouts.map((l) => l.asdus.map((a) => streams.findIndex((s) => s.svId === a.svId && s.appId === l.appId)));
  return {
    points: map, layouts, layoutStreams, streams,
    trackers: streams.map((s) => createIterationTracker(s.smpCntWrap)),
    leaderId: leadingPoint(points),
    clock, clocks: [clock], line: createFrameLine(),
    lostEvents: 0, mapFull: 0, endSeen: false, unknownFrames: [], messages: [], attaching: null,
  };
}

const scan = createFrameScan();

function describeUnknown(point: string, bytes: Uint8Array): UnknownFrame {
  const st = scanFrame(bytes, 0, bytes.length, scan);
  const svIds: string[] = [];
  if (st === 0) {
    for (let i = 0; i < scan.asduCount; i++) svIds.push(latin1(bytes, scan.fieldOffset[i * FIELD_COUNT + F_SVID]!, scan.fieldLength[i * FIELD_COUNT + F_SVID]!));
  }
  const appId = bytes.length >= 20 ? (bytes[12] === 0x81 && bytes[13] === 0 ? (bytes[18]! << 8) | bytes[19]! : (bytes[14]! << 8) | bytes[15]!) : null;
  return { point, appId, svIds, bytes };
}

export type Handlers = { onPoint?: (e: PointEvent) => void; onWarning?: (w: TraceWarning) => void };

/**
 * One matched frame at one point, whichever engine saw it: an event per ASDU.
 * False when the point or layout is not this trace's (the caller reports it).
 */
export function handleFrame(s: TraceState, pointId: number, layout: number, tMonoNs: bigint, cpu: number, smpCnts: ArrayLike<number>, n: number, h: Handlers): boolean {
  const p = s.points.get(pointId);
  const streams = s.layoutStreams[layout];
  if (!p || !streams || streams.length !== n) return false;
  p.summary.frames++;
  const tNs = tMonoNs + s.clock.realtimeOffsetNs;
  for (let i = 0; i < n; i++) {
    const k = streams[i]!;
    const st = s.streams[k]!;
    const smpCnt = smpCnts[i]!;
    const iter = sampleIteration(s.trackers[k]!, smpCnt, pointId !== s.leaderId);
    p.summary.events++;
    h.onPoint?.({ point: p.point.name, pointId, streamIndex: k, svId: st.svId, appId: st.appId, smpCnt, iter, tNs, tMonoNs, cpu });
  }
  return true;
}

/** The first bytes of an SV frame of no known layout at one point, whichever engine saw it. */
export function handleUnknown(s: TraceState, pointId: number, bytes: Uint8Array, h: Handlers): void {
  const frame = describeUnknown(s.points.get(pointId)?.point.name ?? String(pointId), bytes);
  if (s.unknownFrames.length < 100) s.unknownFrames.push(frame);
  const what = frame.appId === null ? 'a frame' : `APPID 0x${frame.appId.toString(16).padStart(4, '0')}${frame.svIds.length ? ` svID ${frame.svIds.map((x) => JSON.stringify(x)).join(', ')}` : ''}`;
  h.onWarning?.({ kind: 'unknown-frame', message: `${frame.point}: SV frame of no known layout (${what}); it is counted, not traced`, count: 1 });
}

/** Handles one line of bpftrace output (stdout or stderr). */
export function handleLine(s: TraceState, line: string, h: Handlers): void {
  const c0 = line.charCodeAt(0);
  if (c0 >= 48 && c0 <= 57) {
    const f = s.line;
    if (!parseFrameLine(line, f) || !handleFrame(s, f.point, f.layout, f.tMonoNs, f.cpu, f.smpCnts, f.smpCnts.length, h)) other(s, line, h);
    return;
  }
  if (line === 'SVTRACE_END') { s.endSeen = true; return; }
  if (c0 === 64 /* @ */) {
    const m = parseMapLine(line);
    const p = m ? s.points.get(m.key) : undefined;
    if (m && p) {
      if (m.map === 'frames') p.summary.kernelFrames = m.value;
      else if (m.map === 'unknown') p.summary.unknown = m.value;
      else if (m.map === 'short') p.summary.short = m.value;
    }
    return;
  }
  if (c0 === 85 /* U */) {
    const u = parseUnknownLine(line);
    if (!u) return other(s, line, h);
    handleUnknown(s, u.point, u.bytes, h);
    return;
  }
  const lost = parseLost(line);
  if (lost !== null) {
    s.lostEvents += lost;
    h.onWarning?.({ kind: 'lost-events', message: `bpftrace lost ${lost} events (its output could not keep up)`, count: lost });
    return;
  }
  if (isMapFullWarning(line)) {
    s.mapFull++;
    if (s.mapFull === 1 || s.mapFull % 1000 === 0) h.onWarning?.({ kind: 'map-full', message: `a bpftrace map is full (${s.mapFull} failed updates): ${line.trim()}`, count: s.mapFull });
    return;
  }
  const att = parseAttaching(line);
  if (att !== null) { s.attaching = att; return; }
  // -k warnings are followed by the program line and a ~~~ marker; those are not news.
  if (line.trim() === '' || /^\s/.test(line) || /^~+$/.test(line.trim())) return;
  other(s, line, h);
}

function other(s: TraceState, line: string, h: Handlers): void {
  if (s.messages.length < 100) s.messages.push(line);
  h.onWarning?.({ kind: 'bpftrace-output', message: `bpftrace: ${line}`, count: 1 });
}

export function summarize(s: TraceState, exit: { code: number | null; signal: string | null; killed: boolean }, durationMs: number, skippedRuns: number | null = null): TraceSummary {
  const points = [...s.points.values()].map((p) => p.summary);
  const lostLines = points.reduce((n, p) => n + (p.kernelFrames === null ? 0 : Math.max(0, p.kernelFrames - p.frames)), 0);
  return {
    durationMs, exitCode: exit.code, signal: exit.signal, killed: exit.killed, endSeen: s.endSeen,
    points,
    streams: s.streams.map((st, i) => ({ ...st, wraps: s.trackers[i]!.wraps })),
    lostEvents: s.lostEvents, lostLines, mapFullWarnings: s.mapFull, skippedRuns,
    unknownFrames: s.unknownFrames, clocks: s.clocks, messages: s.messages,
  };
}
