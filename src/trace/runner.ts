/**
 * `startTrace`: the story of one trace. Validate the config, look at the
 * kernel, choose probes, resolve interfaces, learn missing layouts, generate
 * the program, attach, then turn every output line into per-ASDU point
 * events with realtime timestamps and wrap iterations. Lost output, unknown
 * frames and full maps are counted and reported, never dropped silently.
 */
import { kernelCountsSkips, recursionMisses } from './skips.ts';
import { release } from 'node:os';
import { SvtraceError } from '../errors.ts';
import { probeCapabilities, type Capabilities } from './capabilities.ts';
import { measureClockOffset, type ClockOffset } from './clock.ts';
import { validateTraceConfig, type StreamSpec, type TraceConfig } from './config.ts';
import { generateTraceProgram, stopCommFor, type ProgramPoint } from './generate.ts';
import { drain } from './drain.ts';
import { resolveInterface, type ResolvedInterface } from './interfaces.ts';
import { layoutKey, type FrameLayout } from './layout.ts';
import { learnLayouts } from './learn.ts';
import { choosePlan, planPoints } from './plan.ts';
import { probeDef } from './probes.ts';
import { startBpftrace } from './session.ts';
import { createTraceState, handleLine, summarize, type PointEvent, type TraceState, type TraceSummary, type TraceStream, type TraceWarning } from './events.ts';
import { defaultTraceEngine, startBpfEngine } from './bpf-engine.ts';
import type { TraceEngine } from './config.ts';

export type { PointEvent, TraceSummary, TraceStream, TraceWarning } from './events.ts';

export interface TraceHandlers {
  /** One event per ASDU per point. Called synchronously from the output parser: keep it quick. */
  onPoint?: (e: PointEvent) => void;
  onWarning?: (w: TraceWarning) => void;
  onClock?: (c: ClockOffset) => void;
}

export interface TraceOptions {
  /** Receives the generated program text (for --print-program). */
  printProgram?: (program: string) => void;
  /** Skip probing the kernel (tests, or a caller who already did). */
  capabilities?: Capabilities;
  /** Stop cleanly on SIGINT/SIGTERM of this process (default true). */
  stopOnSignals?: boolean;
  /** Re-measure the clock offset this often (default 10 s; 0 = never). */
  clockIntervalMs?: number;
  /** How long to wait for bpftrace to exit after SIGINT before killing it (default 20 s: a loaded machine can take seconds). */
  stopTimeoutMs?: number;
  bpftrace?: string;
  /** Called once the learn program is attached (to start traffic in tests). */
  onLearnReady?: () => void;
  /**
   * Per-CPU output buffer of bpftrace, in 4 KiB pages (default 1024 = 4 MiB per CPU,
   * about 60 000 frame lines, a few seconds of bursts while bpftrace is not scheduled).
   */
  perfBufferPages?: number;
  /** Extra environment for bpftrace, e.g. BPFTRACE_MAP_KEYS_MAX. */
  bpftraceEnv?: Record<string, string>;
  /**
   * Called once the points are planned and their interfaces resolved, before
   * any bpftrace starts (learning included): open what the run needs here
   * (record, metrics), so a failure there leaves nothing running.
   */
  beforeAttach?: (points: readonly ProgramPoint[]) => Promise<void>;
  /** Pin the point tracer's bpftrace to these CPUs (a tuned run keeps it off the subscriber's CPU); the bpf engine's reader thread to the first. */
  cpus?: readonly number[];
  /** The bpf engine's ring buffer, in bytes (a power of two; default 16 MiB). */
  ringBytes?: number;
}

export interface TraceSession {
  program: string;
  points: ProgramPoint[];
  layouts: FrameLayout[];
  streams: TraceStream[];
  /** The bpftrace process (none with the bpf engine). */
  bpftracePid: number | undefined;
  engine: TraceEngine;
  /** Resolves with the summary when bpftrace has exited (after stop(), a signal, or on its own). */
  done: Promise<TraceSummary>;
  stop(): Promise<TraceSummary>;
}

/** The streams of the trace: the configured ones, then any other stream a layout names. */
function streamsOf(config: TraceConfig, layouts: FrameLayout[]): TraceStream[] {
  const out: TraceStream[] = [];
  const find = (svId: string, appId: number) => out.findIndex((s) => s.svId === svId && s.appId === appId);
  const spec = (svId: string, appId: number): StreamSpec | undefined =>
    config.streams?.find((s) => s.svId === svId && (s.appId === undefined || s.appId === appId));
  for (const l of layouts) {
    for (const a of l.asdus) {
      if (find(a.svId, l.appId) >= 0) continue;
      const wrap = spec(a.svId, l.appId)?.smpCntWrap;
      out.push({ index: out.length, svId: a.svId, appId: l.appId, ...(wrap ? { smpCntWrap: wrap } : {}) });
    }
  }
  return out;
}

/** Keeps the layouts whose every ASDU belongs to a stream of interest (all when none are listed). */
function ofInterest(config: TraceConfig, layouts: FrameLayout[]): FrameLayout[] {
  const want = config.streams ?? [];
  if (want.length === 0) return layouts;
  return layouts.filter((l) => l.asdus.every((a) => want.some((s) => s.svId === a.svId && (s.appId === undefined || s.appId === l.appId))));
}

export async function startTrace(input: TraceConfig | unknown, handlers: TraceHandlers = {}, options: TraceOptions = {}): Promise<TraceSession> {
  const config = validateTraceConfig(input);
  const caps = options.capabilities ?? await probeCapabilities();
  if (!caps.root) throw new SvtraceError('TRACE_NOT_ROOT', 'tracing needs root', { hint: 'run svtrace as root (sudo)' });
  if (caps.initialNetns === false) {
    throw new SvtraceError('TRACE_NOT_ROOT_NETNS', 'svtrace runs inside a network namespace; bpftrace must run in the root one', {
      hint: 'run svtrace outside `ip netns exec` and name interfaces in namespaces as { name, netns }',
    });
  }
  const planned = planPoints(config, caps, choosePlan(caps));
  const points: ProgramPoint[] = [];
  const interfaces: ResolvedInterface[] = [];
  for (const p of planned) {
    const filter: ProgramPoint['filter'] = {};
    if (p.interface) {
      const r = await resolveInterface(p.interface);
      filter.interface = r;
      if (!interfaces.some((i) => i.ifindex === r.ifindex && i.netnsInode === r.netnsInode)) interfaces.push(r);
    }
    if (p.pids) filter.pids = p.pids;
    if (p.comm) filter.comm = p.comm;
    if (p.commPrefix) filter.commPrefix = p.commPrefix;
    points.push({ id: p.id, name: p.name, probes: p.probes, filter });
  }

  await options.beforeAttach?.(points);

  // Layouts: from the config, then learnt for the streams still missing.
  let layouts = [...(config.layouts ?? [])];
  const missing = (config.streams ?? []).filter((s) => !layouts.some((l) => (s.appId === undefined || l.appId === s.appId) && l.asdus.some((a) => a.svId === s.svId)));
  if (layouts.length === 0 || missing.length > 0) {
    // Learn where the points look: their tracepoints on their interfaces (all interfaces when none).
    const learnProbes = [...new Set(points.filter((p) => p.filter.interface).flatMap((p) => p.probes)
      .filter((id) => probeDef(id)?.kind === 'tracepoint' && probeDef(id)?.dev))];
    const learnt = await learnLayouts({
      interfaces: learnProbes.length > 0 ? interfaces : [],
      probes: learnProbes.length > 0 ? learnProbes : ['tracepoint:net:netif_receive_skb'],
      wanted: missing,
      ...(config.learn?.timeoutMs ? { timeoutMs: config.learn.timeoutMs } : {}),
      ...(config.learn?.framesPerKey ? { framesPerKey: config.learn.framesPerKey } : {}),
      ...(options.bpftrace ? { bpftrace: options.bpftrace } : {}),
      ...(options.onLearnReady ? { onReady: options.onLearnReady } : {}),
    });
    const keys = new Set(layouts.map(layoutKey));
    for (const l of learnt.layouts) if (!keys.has(layoutKey(l))) layouts.push(l);
    if (learnt.mapFullWarnings > 0) {
      handlers.onWarning?.({ kind: 'map-full', message: `learning saw more APPID/Length pairs than its map holds (${learnt.mapFullWarnings} failed updates); some streams may not have been learnt`, count: learnt.mapFullWarnings });
    }
    if (learnt.missing.length > 0) {
      handlers.onWarning?.({ kind: 'stream-not-seen', message: `no frame of ${learnt.missing.map((s) => JSON.stringify(s.svId)).join(', ')} seen while learning; their frames will count as unknown`, count: learnt.missing.length });
    }
  }
  layouts = ofInterest(config, layouts);
  if (layouts.length === 0) {
    throw new SvtraceError('TRACE_NO_LAYOUT', 'no SV stream to trace: none was given and none was seen while learning', {
      hint: 'start the publisher first, check the interfaces, or give layouts in the config',
    });
  }
  const streams = streamsOf(config, layouts);
  const stopComm = stopCommFor(process.pid);
  const engine = config.engine ?? defaultTraceEngine((why) => handlers.onWarning?.({ kind: 'bpftrace-output', message: `tracing with bpftrace: the bpf engine cannot run here (${why})`, count: 1 }));
  // the bpf engine runs its own fixed program; the bpftrace one stays printable as what it does
  const program = engine === 'bpftrace' || options.printProgram ? generateTraceProgram({ points, layouts, unknownSamples: config.unknownSamples ?? 4, stopComm }) : '';
  if (program) options.printProgram?.(engine === 'bpf' ? `// --engine bpf runs native/bpf/points.bpf.c with this config; the same points as bpftrace would trace them:\n${program}` : program);

  const clock = await measureClockOffset();
  handlers.onClock?.(clock);
  const state = createTraceState(points, layouts, streams, clock);
  if (engine === 'bpf') {
    const run = startBpfEngine(state, handlers, {
      points, layouts, unknownSamples: config.unknownSamples ?? 4,
      ...(options.ringBytes ? { ringBytes: options.ringBytes } : {}),
      ...(options.cpus?.length ? { cpu: options.cpus[0]! } : {}),
    });
    const startedAt = Date.now();
    const end = background(state, handlers, options, () => void run.stop());
    const done = (async () => {
      const { error } = await run.ended;
      end();
      if (error) handlers.onWarning?.({ kind: 'bpftrace-output', message: `bpf engine: ${(error as Error).message}`, count: 1 });
      return finish(run.summary(Date.now() - startedAt), handlers, 'the bpf engine ended without draining its ring buffer');
    })();
    return { program, points, layouts, streams, bpftracePid: undefined, engine, done, stop: async () => { await run.stop(); return done; } };
  }
  let lastLineAt = Date.now();
  let stoppingSeen!: () => void;
  const stopping = new Promise<void>((r) => { stoppingSeen = r; });
  const run = startBpftrace({
    program,
    readyMarker: 'SVTRACE_READY',
    ...(options.bpftrace ? { bpftrace: options.bpftrace } : {}),
    env: { BPFTRACE_PERF_RB_PAGES: String(options.perfBufferPages ?? 1024), ...options.bpftraceEnv },
    ...(options.cpus ? { cpus: options.cpus } : {}),
    ownGroup: true,
    onLine: (line) => {
      lastLineAt = Date.now();
      if (line === 'SVTRACE_STOPPING') { stoppingSeen(); return; }
      handleLine(state, line, handlers);
    },
    onStderr: (line) => handleLine(state, line, handlers),
  });
  await run.ready;
  const startedAt = Date.now();

  let skippedRuns: number | null = null;
  const countsSkips = kernelCountsSkips();
  if (!countsSkips) {
    handlers.onWarning?.({ kind: 'skipped-runs', message: `Linux ${release()} does not count the probe runs it skips (6.7 does): a frame whose point fires while another BPF program runs on that CPU (e.g. a receive softirq interrupting the T4 probe on a one-vCPU guest) gets no time there, and nothing says so; the bpf engine (--engine bpf, raw tracepoints) does not skip that way`, count: 1 });
  }
  const end = background(state, handlers, options, () => { void stop(); });
  const done = (async () => {
    const r = await run.exited;
    end();
    return finish(summarize(state, { ...r, killed: run.wasKilled() }, Date.now() - startedAt, skippedRuns), handlers, 'bpftrace ended without its END output: kernel counts of matched and unknown frames are missing');
  })();
  let stopped: Promise<TraceSummary> | null = null;
  const stop = () => {
    stopped ??= (async () => {
      // Drain first: tell the program to stop matching, read what its buffers hold, then SIGINT (see svtrace.bt).
      if (run.pid !== undefined) await drain(stopComm, stopping, () => lastLineAt, run.exited).catch(() => undefined);
      // counted by the kernel per program: read while bpftrace still holds them
      if (run.pid !== undefined && countsSkips) skippedRuns = recursionMisses(run.pid);
      await run.stop(options.stopTimeoutMs ?? 20_000);
      return done;
    })();
    return stopped;
  };
  return { program, points, layouts, streams, bpftracePid: run.pid, engine, done, stop };
}

/** What runs beside either engine: the clock offset re-measured, SIGINT/SIGTERM → stop. Returns the function that ends both. */
function background(state: TraceState, handlers: TraceHandlers, options: TraceOptions, stop: () => void): () => void {
  let timer: NodeJS.Timeout | null = null;
  const interval = options.clockIntervalMs ?? 10_000;
  if (interval > 0) {
    timer = setInterval(() => {
      measureClockOffset().then((c) => { state.clock = c; state.clocks.push(c); handlers.onClock?.(c); })
        .catch((e: unknown) => handlers.onWarning?.({ kind: 'clock', message: `clock re-measure failed: ${(e as Error).message}`, count: 1 }));
    }, interval);
    timer.unref();
  }
  const onSignal = () => stop();
  if (options.stopOnSignals !== false) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return () => {
    if (timer) clearInterval(timer);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  };
}

/** The end of a trace, whichever engine: matched frames that never arrived and a missing end are warned about. */
function finish(summary: TraceSummary, handlers: TraceHandlers, noEnd: string): TraceSummary {
  const skipped = summary.skippedRuns;
  if (skipped) {
    handlers.onWarning?.({ kind: 'skipped-runs', message: `the kernel skipped ${skipped} probe run(s): a probe fired while another BPF program ran on the same CPU (recursion protection), so those frames have no time at that point; fewer points or CPUs busy with other tracing avoid it`, count: skipped });
  }
  // bpftrace only prints "Lost N events" when the kernel next writes to that CPU's buffer: the kernel's own count is the check.
  if (summary.lostLines > 0) {
    handlers.onWarning?.({ kind: 'lost-lines', message: `${summary.lostLines} frame(s) matched in the kernel never reached svtrace (the engine reported ${summary.lostEvents} lost)`, count: summary.lostLines });
  }
  if (!summary.endSeen) handlers.onWarning?.({ kind: 'bpftrace-output', message: noEnd, count: 1 });
  return summary;
}
