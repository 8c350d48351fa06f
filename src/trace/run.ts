/**
 * `runTrace`: one whole trace run, the engine under `svtrace trace` and
 * `svtrace demo`. It owns, in one try/finally, the point tracer (bpftrace),
 * the record writer, the metrics server, the live joiner and sequence check,
 * the warning throttle and the flight recorder (explain):
 *
 *   plan → open record + metrics (before any bpftrace starts) → learn and
 *   attach → [recorder] → points flow until the duration, the signal or a
 *   failure → stop (drained) → explain → close everything → one result.
 *
 * A failure anywhere (record full, metrics port busy, bpftrace dying) stops
 * what was started within a second and closes what was opened; the record
 * keeps what was written. Measuring and printing never mix: callers get
 * plain data (onStarted, onSecond, onWarning, the result) and print it.
 */
import { guestOfLab } from '../lab/guest-env.ts';
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { clockNowNs } from '../net/index.ts';
import { openRecordWriter, type RecordWriter } from '../record/index.ts';
import { createJoiner, type LiveJoiner, type SegmentStats } from '../live/joiner.ts';
import { serveMetrics } from '../live/metrics.ts';
import { createSequence, observe, type SequenceState } from '../subscribe/sequence.ts';
import { ROLE_POINTS, pointOrder } from '../path/index.ts';
import { createExplainer, type ExplainRunResult, type ExplainerOptions } from '../explain/run.ts';
import { EXPLAIN_DIR, writeExplainDir } from '../explain/files.ts';
import type { TraceConfig } from './config.ts';
import { defaultTraceEngine } from './bpf-engine.ts';
import { startTrace, type PointEvent, type TraceSession, type TraceSummary, type TraceWarning } from './runner.ts';
import type { TraceStream } from './events.ts';

export interface TraceRunOptions {
  trace: TraceConfig;
  /** Verdict limits (µs) per segment: the live view's and the metrics' "late". */
  limitsUs: Record<string, number>;
  /** Record every point into this new directory. */
  recordDir?: string;
  /** The command line, kept in the record's manifest. */
  command?: string[];
  /** Serve Prometheus metrics on HOST:PORT. */
  metrics?: string;
  /** Run the flight recorder and explain the late samples of the role's segment. */
  explain?: (ExplainerOptions & { worst?: number; windowS?: number }) | null;
  /** With explain: a recorder that cannot start ends the run (default) or is only logged. */
  explainOptional?: boolean;
  /** Stop after this long (default: until the signal). */
  durationS?: number;
  signal?: AbortSignal;
  /** Stop on SIGINT/SIGTERM of this process (default true). */
  stopOnSignals?: boolean;
  printProgram?: (program: string) => void;
  /** A warning to show, already throttled (at most one per kind per 5 s, with how many were held back). */
  onWarning?: (message: string) => void;
  /** Progress of the run (attaching, the recorder, explaining). */
  log?: (line: string) => void;
  /** Once tracing: what is traced. */
  onStarted?: (s: TraceStarted) => void;
  /** About once a second while tracing. */
  onSecond?: (s: TraceSecond) => void;
  /** Pin the point tracer's bpftrace to these CPUs. */
  cpus?: readonly number[];
}

export interface TraceStarted {
  points: Array<{ name: string; probes: string[] }>;
  streams: TraceStream[];
  metricsUrl: string | null;
  recorderPid: number | null;
  recordDir: string | null;
}

export interface TraceSecond {
  elapsedS: number;
  stats: SegmentStats[];
  missing: Map<string, number>;
  /** Worst latency per segment in the second that ended. */
  worst: Array<{ segment: string; stream: string; worstNs: number }>;
  events: number;
  unmatched: number;
  warnings: number;
}

export interface TraceRunResult {
  summary: TraceSummary;
  /** Per stream and segment, from the live joiner. */
  stats: SegmentStats[];
  /** Missing samples per svID at the first point of this machine. */
  missing: Map<string, number>;
  unmatched: number;
  events: number;
  /** The first 100 warnings, and how many there were. */
  warnings: string[];
  warningCount: number;
  lostEvents: number;
  explained: ExplainRunResult | null;
  /** Where the explanations were written (with a record and explain). */
  explainFiles: { json: string; traces: string[] } | null;
  recordDir: string | null;
}

/** Warnings counted, the first 100 kept, shown at most once per 5 s per kind. */
function warningThrottle(show: (message: string) => void) {
  const kept: string[] = [];
  let count = 0, lostEvents = 0;
  const quiet = new Map<string, { lastMs: number; suppressed: number }>();
  return {
    warn(w: TraceWarning): void {
      if (w.kind === 'lost-events') lostEvents += w.count;
      count++;
      if (kept.length < 100) kept.push(w.message);
      const q = quiet.get(w.kind) ?? { lastMs: -Infinity, suppressed: 0 };
      quiet.set(w.kind, q);
      const now = Date.now();
      if (now - q.lastMs < 5000) { q.suppressed++; return; }
      const more = q.suppressed > 0 ? ` (and ${q.suppressed} more like it in the last ${((now - q.lastMs) / 1000).toFixed(0)} s${w.kind === 'lost-events' ? `; ${lostEvents} events lost so far` : ''})` : '';
      show(`${w.message}${more}`);
      q.lastMs = now;
      q.suppressed = 0;
    },
    flush(): void {
      for (const [kind, q] of quiet) {
        if (q.suppressed > 0) show(`${q.suppressed} more ${kind} warning(s) not shown${kind === 'lost-events' ? `; ${lostEvents} events lost in all` : ''}`);
        q.suppressed = 0;
      }
    },
    kept, count: () => count, lostEvents: () => lostEvents,
  };
}

export async function runTrace(o: TraceRunOptions): Promise<TraceRunResult> {
  const role = o.trace.role ?? 'hypervisor';
  const durationS = o.durationS ?? Infinity;
  if (!(durationS > 0)) throw new SvtraceError('USAGE', `the duration ${durationS} is not a positive number of seconds`, { hint: 'e.g. -d 60' });
  const log = o.log ?? (() => undefined);
  // one engine for the points and the flight recorder, chosen once (the CLI's choice, where it made one)
  const engine = o.trace.engine ?? defaultTraceEngine((why) => log(`tracing with bpftrace: the bpf engine cannot run here (${why})`));
  const traceConfig: TraceConfig = { ...o.trace, engine };
  const warnings = warningThrottle(o.onWarning ?? (() => undefined));
  const limitsNs = Object.fromEntries(Object.entries(o.limitsUs).map(([k, v]) => [k, v * 1000]));
  const rolePoints = [...ROLE_POINTS[role]];
  const joiner: LiveJoiner = createJoiner(rolePoints, limitsNs);
  const sequences = new Map<string, SequenceState>();
  const missing = () => new Map([...sequences].map(([k, s]) => [k, s.missing]));
  // one engine: the flight recorder runs on the engine the points do
  const explainer = o.explain ? createExplainer({ engine, ...o.explain, log: (l) => log(`explain: ${l}`) }) : null;

  // what the run opened (a holder: the closures below assign it)
  const opened: { writer: RecordWriter | null; metrics: Awaited<ReturnType<typeof serveMetrics>> | null } = { writer: null, metrics: null };
  let session: TraceSession | null = null;
  let events = 0;
  /** The first failure that ends the run early (a full disk, ...). */
  let failure: unknown = null;
  let stopRequested = false;
  const stop = () => {
    stopRequested = true;
    if (session) void session.stop();
  };
  const fail = (e: unknown) => {
    failure ??= e;
    stop();
  };

  const onPoint = (e: PointEvent) => {
    events++;
    explainer?.onPoint(e);
    if (opened.writer && failure === null) {
      try {
        opened.writer.append(e.point, e.svId, e.appId, e.smpCnt, e.iter, e.tNs, 'bpf', e.cpu);
      } catch (err) {
        fail(err);
      }
    }
    joiner.point(e.svId, e.appId, e.smpCnt, e.iter, e.point, e.tNs);
    if (e.point === rolePoints[0]) {
      let s = sequences.get(e.svId);
      if (!s) sequences.set(e.svId, (s = createSequence()));
      observe(s, e.smpCnt);
    }
  };
  const onAbort = () => stop();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | null = null;
  let explained: ExplainRunResult | null = null;
  let summary: TraceSummary | null = null;
  try {
    session = await startTrace(traceConfig, { onPoint, onWarning: (w) => warnings.warn(w) }, {
      ...(o.printProgram ? { printProgram: o.printProgram } : {}),
      ...(o.stopOnSignals === false ? { stopOnSignals: false } : {}),
      ...(o.cpus ? { cpus: o.cpus } : {}),
      // everything that can fail to open is opened before bpftrace starts
      beforeAttach: async (points) => {
        if (o.recordDir) {
          const after = Object.fromEntries((o.trace.points ?? []).filter((p) => p.after && pointOrder(p.name) === null).map((p) => [p.name, p.after!]));
          const writer = opened.writer = await openRecordWriter(o.recordDir, {
            role: 'trace', points: points.map((p) => p.name), startedNs: clockNowNs(),
            clock: { name: 'realtime', note: `${engine === 'bpf' ? 'bpf_ktime_get_ns' : 'bpftrace nsecs'} (CLOCK_MONOTONIC) mapped to CLOCK_REALTIME with a measured offset, re-measured every 10 s` },
            ...(o.command ? { command: o.command } : {}),
            extra: { machine: role, engine, points: points.map((p) => ({ name: p.name, probes: p.probes })), ...guestOfLab() },
          }, { onError: (e) => fail(e) });
          if (Object.keys(after).length) writer.update({ pointsAfter: after });
        }
        if (o.metrics) {
          opened.metrics = await serveMetrics(o.metrics, {
            stats: () => joiner.stats(), missing, samples: () => joiner.points(),
            counters: () => ({ events, lost_events: warnings.lostEvents(), unmatched: joiner.unmatched(), warnings: warnings.count() }),
          });
        }
      },
    });
    if (stopRequested) void session.stop();
    opened.writer?.update({ streams: session.streams.map((s) => ({ svId: s.svId, appId: s.appId, ...(s.smpCntWrap ? { rate: s.smpCntWrap } : {}) })) });
    // after the point tracer (learning layouts does not compete with it) and its record, so no point waits for either
    let recorderPid: number | null = null;
    if (explainer) {
      try {
        await explainer.attach();
        recorderPid = explainer.recorderPid() ?? null;
      } catch (e) {
        if (!o.explainOptional) throw e;
        log(`explain: the flight recorder did not start (${(e as Error).message}); going on without explanations`);
      }
    }
    o.onStarted?.({ points: session.points.map((p) => ({ name: p.name, probes: p.probes })), streams: session.streams, metricsUrl: opened.metrics?.url ?? null, recorderPid, recordDir: o.recordDir ?? null });
    const t0 = Date.now();
    timer = setInterval(() => {
      const worst = joiner.tick(Date.now());
      o.onSecond?.({ elapsedS: (Date.now() - t0) / 1000, stats: joiner.stats(), missing: missing(), worst, events, unmatched: joiner.unmatched(), warnings: warnings.count() });
      if (Date.now() - t0 >= durationS * 1000) stop();
    }, 1000);
    summary = await session.done;
    if (failure !== null) throw failure;
    if (explainer && recorderPid !== null) {
      log('explain: letting the flight recorder catch up, then explaining the late samples');
      explained = await explainer.finish(summary);
    }
  } catch (e) {
    failure ??= e;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    if (timer) clearInterval(timer);
    warnings.flush();
    if (session && !summary) summary = await session.stop().catch(() => null);
    if (explainer && !explained) await explainer.abort().catch(() => undefined);
    await opened.metrics?.close().catch(() => undefined);
  }
  // The record is closed whatever happened: what was written stays readable.
  const w = opened.writer;
  if (w) {
    const rec = explained?.recorder;
    try {
      await w.close({
        stoppedNs: clockNowNs(), counters: {
          events, lostEvents: summary?.lostEvents ?? 0, lostLines: summary?.lostLines ?? 0, ...(typeof summary?.skippedRuns === 'number' ? { skippedRuns: summary.skippedRuns } : {}),
          unknownFrames: summary?.points.reduce((n, p) => n + p.unknown, 0) ?? 0, missing: [...missing().values()].reduce((a, b) => a + b, 0),
          ...(rec ? { recorderEvents: rec.events, recorderLostEvents: rec.lostEvents, recorderLostLines: rec.lostLines, recorderRingOverflowed: rec.ringOverflowed } : {}),
        },
      });
    } catch (e) {
      failure ??= e;
    }
  }
  if (failure !== null) throw failure;
  let explainFiles: TraceRunResult['explainFiles'] = null;
  if (explained && o.recordDir) explainFiles = writeExplainDir(join(o.recordDir, EXPLAIN_DIR), explained, { windowS: o.explain?.windowS ?? 2 });
  return {
    summary: summary!, stats: joiner.stats(), missing: missing(), unmatched: joiner.unmatched(), events,
    warnings: warnings.kept, warningCount: warnings.count(), lostEvents: warnings.lostEvents(),
    explained, explainFiles, recordDir: o.recordDir ?? null,
  };
}
