/**
 * `svtrace explain` as a library: the point tracer (T1, T2) and the flight
 * recorder side by side; every sample whose segment passes the threshold is
 * explained from the recorder's events around it, once the recorder has
 * caught up past it. One plain result object; printing lives elsewhere.
 *
 * Two entries: runExplain (its own tracer, for `svtrace explain`) and
 * createExplainer (fed by a tracer someone else runs: `svtrace trace
 * --explain`, the demo). Both are the same code.
 */
import { roleSegment } from '../path/index.ts';
import { readFileSync } from 'node:fs';
import { startTrace, type PointEvent, type TraceConfig, type TraceSummary } from '../trace/index.ts';
import { ringCoverage, ringSlice, tasksAt, type RecorderEvent, type SwitchEvent, type EventRing } from './events.ts';
import { aggregateCauses, explainSample, type CauseRow, type Explanation, type LateSample, type SampleSegment, type SamplePoint, type SchedPolicy } from './explain.ts';
import { exportChromeTrace, type ChromeTrace } from './chrome.ts';
import { startRecorder, type Recorder, type RecorderEngine, type RecorderStats } from './recorder.ts';
import { startBpfRecorder } from './recorder-bpf.ts';
import { defaultTraceEngine } from '../trace/bpf-engine.ts';

export interface ExplainerOptions {
  /** Samples whose segment takes longer are explained. */
  thresholdNs: number;
  /** Segment between two points (default Thyp = T1 → T2). */
  segment?: { name: string; from: string; to: string };
  /** Run the recorder (default true; false measures the tracer alone, for the observer effect). */
  record?: boolean;
  cpus?: number[];
  windowS?: number;
  /** Chrome traces for this many worst samples (default 5). */
  worst?: number;
  log?: (line: string) => void;
  /** At the end, wait up to this long for the recorder's output to catch up past the last late sample (default 20 s). */
  drainS?: number;
  /** The flight recorder's engine: recorder.bt through bpftrace (the default) or the binary recorder.bpf.c. */
  engine?: RecorderEngine;
  /** Every recorder event as it arrives (for a second look at the raw data). */
  onRecorderEvent?: (e: RecorderEvent) => void;
}

export interface ExplainRunOptions extends ExplainerOptions {
  trace: TraceConfig;
  durationS: number;
  /** Called once both tracers are attached (start traffic here). */
  onReady?: () => void | Promise<void>;
  signal?: AbortSignal;
}

/** A sample of normal latency near a late one, with its own window: what the path looks like when all is well. */
export interface NormalSample extends SampleSegment { chrome: ChromeTrace }

export interface WorstSample { explanation: Explanation; chrome: ChromeTrace; normal?: NormalSample }

/** The figures of an explained run, as computed and as stored in explanations.json. */
export interface ExplainFigures {
  segment: string;
  thresholdNs: number;
  /** Samples with both points. */
  samples: number;
  /** Of which above the threshold. */
  late: number;
  /** Points whose other point never came (lost or dropped frames). */
  unpaired: number;
  /** Pairs with the second point before the first (wrap counts shifted by lost points): left out. */
  mismatched: number;
  p50Ns: number | null;
  p99Ns: number | null;
  maxNs: number | null;
  causes: CauseRow[];
  recorder: RecorderStats | null;
  warnings: string[];
}

export interface ExplainRunResult extends ExplainFigures {
  explanations: Explanation[];
  worst: WorstSample[];
  trace: TraceSummary;
}

/** Explains the samples of a tracer it is fed: onPoint from the tracer's handler, attach() once the tracer runs, finish() after it stopped. */
export interface Explainer {
  onPoint(e: PointEvent): void;
  /** Starts the flight recorder (after the tracer, so learning layouts does not compete with it). */
  attach(): Promise<void>;
  /** The process that records (bpftrace's, or this one with the bpf engine), once attached. */
  recorderPid(): number | undefined;
  /** After the tracer has stopped: lets the recorder catch up, stops it, explains what is left. */
  finish(trace: TraceSummary): Promise<ExplainRunResult>;
  /** Stops the recorder without a result (on failure). */
  abort(): Promise<void>;
  /** A warning of the tracer, kept in the result's warnings. */
  warn(message: string): void;
}

const POLICY = ['SCHED_OTHER', 'SCHED_FIFO', 'SCHED_RR', 'SCHED_BATCH', 'SCHED_ISO', 'SCHED_IDLE', 'SCHED_DEADLINE'];

/** Policy and rt_priority of a task from /proc (fields 41 and 40 of stat), or null when it is gone. */
export function readPolicy(pid: number): SchedPolicy | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const rt = Number(f[37]), pol = Number(f[38]);
    return Number.isInteger(pol) ? { policy: POLICY[pol] ?? `policy ${pol}`, rtPriority: rt } : null;
  } catch {
    return null;
  }
}

export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Waits until the recorder's newest event is past the last pending sample, or until it stops making progress. */
async function drain(recorder: Recorder, pending: readonly LateSample[], maxS: number, step: (all: boolean) => void, log: (l: string) => void): Promise<void> {
  const deadline = Date.now() + maxS * 1000;
  let seen = recorder.stats().events, idleSince = Date.now();
  for (;;) {
    step(false);
    const last = pending[pending.length - 1];
    if (!last) return;
    const now = Date.now();
    const events = recorder.stats().events;
    if (events !== seen) { seen = events; idleSince = now; }
    if (now > deadline || now - idleSince > 2000) {
      log(`the recorder did not catch up with ${pending.length} late sample(s) in time: they stay unexplained`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The ring's events in [from, to], led by one switch per CPU at `from` (the
 * task it ran then, switched to itself), so a CPU that ran one task all
 * through the slice still tells which task that was.
 */
function sliceWithStart(ring: EventRing, from: bigint, to: bigint): RecorderEvent[] {
  const start: SwitchEvent[] = [...tasksAt(ring, from)].map(([cpu, t]) => ({ kind: 'switch', tMonoNs: from, cpu, prevPid: t.pid, prevPrio: t.prio, prevState: 0, nextPid: t.pid, nextPrio: t.prio, nextComm: t.comm }));
  return [...start, ...ringSlice(ring, from, to)];
}

const MAX_PAIR_NS = 2_000_000_000n;
const LOOKBACK_NS = 10_000_000n, LOOKAHEAD_NS = 2_000_000n, SETTLE_NS = 30_000_000n;
/** Recent samples of normal latency kept as candidates for the comparison beside a worst sample (a circular buffer: seconds of history, as the recorder's output may lag the points'). */
const NORMAL_KEEP = 4096;

type Pair = { svId: string; smpCnt: number; iter: number; latencyNs: number; from: SamplePoint; to: SamplePoint };

export function createExplainer(o: ExplainerOptions): Explainer {
  const seg = o.segment ?? roleSegment('hypervisor');
  const log = o.log ?? (() => undefined);
  const warnings: string[] = [];
  const warn = (m: string) => { if (warnings.length < 200) warnings.push(m); log(`warning: ${m}`); };
  const keepWorst = o.worst ?? 5;
  const policies = new Map<number, SchedPolicy>();
  const policyTried = new Set<number>();
  const latencies: number[] = [];
  const firsts = new Map<string, PointEvent>();
  const pending: LateSample[] = [];
  const explanations: Explanation[] = [];
  const worst: WorstSample[] = [];
  const recentNormal: Pair[] = [];
  let normalNext = 0;
  /** pid → comm of every task the recorder named, for windows in which a task runs throughout. */
  const comms = new Map<number, string>();
  let late = 0, unpaired = 0, mismatched = 0;
  /** The newest point seen: the ring holds the recorder's events from a window before it, however far the recorder's output runs ahead. */
  let newestPointNs = 0n;
  /** CLOCK_MONOTONIC (bpftrace's nsecs, Node's hrtime) when the recorder was attached; late samples before it cannot be explained. */
  let attachedMonoNs: bigint | null = null;
  let beforeRecorder = 0;
  let recorder: Recorder | null = null;
  let timer: NodeJS.Timeout | null = null;
  let cachedNormal = { at: -1, ns: 0 };

  const normalNs = () => {
    // the median of the last 20 000 samples, recomputed every 1 000 new ones
    if (cachedNormal.at < 0 || latencies.length - cachedNormal.at >= 1000) {
      const recent = latencies.slice(-20_000).sort((a, b) => a - b);
      cachedNormal = { at: latencies.length, ns: percentile(recent, 0.5) ?? 0 };
    }
    return cachedNormal.ns;
  };
  const point = (p: PointEvent): SamplePoint => ({ point: p.point, tMonoNs: p.tMonoNs, tNs: p.tNs, cpu: p.cpu });

  /** The normal sample closest in time to `t` whose window the ring holds. */
  const normalNear = (rec: Recorder, t: bigint, cov: { fromMonoNs: bigint; toMonoNs: bigint } | null): NormalSample | undefined => {
    if (!cov) return undefined;
    const normal = normalNs();
    const dist = (p: Pair) => (p.from.tMonoNs > t ? p.from.tMonoNs - t : t - p.from.tMonoNs);
    let best: Pair | undefined;
    for (const p of recentNormal) {
      if (p.latencyNs > Math.max(normal * 1.5, normal + 5_000)) continue;
      if (p.from.tMonoNs - 1_000_000n < cov.fromMonoNs || p.to.tMonoNs + 1_000_000n > cov.toMonoNs) continue;
      if (!best || dist(p) < dist(best)) best = p;
    }
    if (!best) return undefined;
    const pad = BigInt(Math.max(50_000, 2 * best.latencyNs));
    const from = best.from.tMonoNs - pad, to = best.to.tMonoNs + pad;
    const chrome = exportChromeTrace({ events: ringSlice(rec.ring, from, to), fromMonoNs: from, toMonoNs: to },
      [{ name: `${best.svId} smpCnt ${best.smpCnt} ${seg.name} (normal)`, points: [best.from, best.to] }], comms, tasksAt(rec.ring, from));
    return { svId: best.svId, smpCnt: best.smpCnt, iter: best.iter, segment: seg.name, latencyNs: best.latencyNs, from: best.from, to: best.to, chrome };
  };

  const explainReady = (all: boolean) => {
    if (!recorder || pending.length === 0) return;
    const cov = ringCoverage(recorder.ring);
    const normal = normalNs();
    let k = 0;
    for (; k < pending.length; k++) {
      const s = pending[k]!;
      if (!all && (cov === null || s.to.tMonoNs + SETTLE_NS > cov.toMonoNs)) break;
      s.normalNs = normal;
      const from = s.from.tMonoNs - LOOKBACK_NS, to = s.to.tMonoNs + LOOKAHEAD_NS;
      const events = sliceWithStart(recorder.ring, from, to);
      const x = explainSample(s, events, { policies, coverage: cov, gaps: recorder.gaps });
      explanations.push(x);
      if (keepWorst > 0 && (worst.length < keepWorst || x.latencyNs > worst[worst.length - 1]!.explanation.latencyNs)) {
        const pad = BigInt(Math.max(500_000, Math.min(5_000_000, s.latencyNs)));
        const wFrom = s.from.tMonoNs - pad, wTo = s.to.tMonoNs + pad / 2n;
        const chrome = exportChromeTrace({ events: ringSlice(recorder.ring, wFrom, wTo), fromMonoNs: wFrom, toMonoNs: wTo },
          [{ name: `${s.svId} smpCnt ${s.smpCnt} ${s.segment}`, points: [s.from, s.to], text: x.text }], comms, tasksAt(recorder.ring, wFrom));
        const near = normalNear(recorder, s.from.tMonoNs, cov);
        worst.push({ explanation: x, chrome, ...(near ? { normal: near } : {}) });
        worst.sort((a, b) => b.explanation.latencyNs - a.explanation.latencyNs);
        if (worst.length > keepWorst) worst.pop();
      }
    }
    pending.splice(0, k);
  };

  const onPoint = (e: PointEvent) => {
    if (e.tMonoNs > newestPointNs) newestPointNs = e.tMonoNs;
    const key = `${e.streamIndex}/${e.iter}/${e.smpCnt}`;
    if (e.point === seg.from) {
      firsts.set(key, e);
      // a first point whose second never came (lost, dropped) is forgotten after MAX_PAIR_NS
      for (const [k, old] of firsts) {
        if (old.tMonoNs >= e.tMonoNs - MAX_PAIR_NS) break;
        firsts.delete(k);
        unpaired++;
      }
      return;
    }
    if (e.point !== seg.to) return;
    const a = firsts.get(key);
    if (!a) { unpaired++; return; }
    firsts.delete(key);
    const latencyNs = Number(e.tMonoNs - a.tMonoNs);
    // lost points can shift a stream's wrap count: a pair out of order is not one sample
    if (latencyNs < 0) { mismatched++; return; }
    latencies.push(latencyNs);
    if (latencyNs > o.thresholdNs) {
      late++;
      // the points' output may lag: a sample from before the recorder started can arrive after it
      if (attachedMonoNs !== null && a.tMonoNs < attachedMonoNs) beforeRecorder++;
      else if (pending.length < 100_000) {
        pending.push({ svId: e.svId, appId: e.appId, smpCnt: e.smpCnt, iter: e.iter, segment: seg.name, latencyNs, normalNs: 0, from: point(a), to: point(e) });
      } else if (late % 10_000 === 0) warn(`more than 100 000 late samples wait for the recorder: ${late} late so far, the rest are counted only`);
    } else if (recorder && (latencies.length & 15) === 0) {
      // one in 16: enough candidates, little work per point
      recentNormal[normalNext] = { svId: e.svId, smpCnt: e.smpCnt, iter: e.iter, latencyNs, from: point(a), to: point(e) };
      normalNext = (normalNext + 1) % NORMAL_KEEP;
    }
  };

  const attach = async () => {
    const start = o.engine === 'bpf' ? startBpfRecorder : startRecorder;
    recorder = o.record === false ? null : await start({
      ...(o.cpus ? { cpus: o.cpus } : {}), windowS: o.windowS ?? 2, onWarning: warn,
      onEvent: (e) => {
        o.onRecorderEvent?.(e);
        if (e.kind === 'switch') { if (comms.get(e.nextPid) !== e.nextComm) comms.set(e.nextPid, e.nextComm); } else if (e.kind === 'wakeup' || e.kind === 'migrate') comms.set(e.pid, e.comm);
        if (comms.size > 100_000) comms.clear();
        // real-time tasks: their policy, read once while they still exist
        if (e.kind === 'switch' && e.nextPrio < 100 && !policyTried.has(e.nextPid)) {
          policyTried.add(e.nextPid);
          const p = readPolicy(e.nextPid);
          if (p) policies.set(e.nextPid, p);
        }
      },
    });
    if (recorder) {
      attachedMonoNs = process.hrtime.bigint();
      beforeRecorder += pending.length;
      pending.length = 0;
    }
    timer = setInterval(() => {
      if (recorder && newestPointNs > 0n) recorder.ring.holdFromNs = newestPointNs - recorder.ring.windowNs - LOOKBACK_NS;
      explainReady(false);
      if (firsts.size > 500_000) { unpaired += firsts.size; firsts.clear(); }
    }, 250);
  };

  const finish = async (summary: TraceSummary): Promise<ExplainRunResult> => {
    if (timer) clearInterval(timer);
    timer = null;
    let recStats: RecorderStats | null;
    try {
      // bpftrace's output lags when CPUs are busy: the recorder runs on until it has caught up past the last late sample
      if (recorder) await drain(recorder, pending, o.drainS ?? 20, explainReady, log);
    } finally {
      recStats = recorder ? await recorder.stop() : null;
    }
    explainReady(true);
    if (beforeRecorder > 0) warn(`${beforeRecorder} late sample(s) came before the recorder was attached: not explained`);
    if (mismatched > 0) warn(`${mismatched} ${seg.to} point(s) came before their ${seg.from}: points were lost, those pairs are left out`);
    const sorted = [...latencies].sort((a, b) => a - b);
    return {
      segment: seg.name, thresholdNs: o.thresholdNs, samples: latencies.length, late, unpaired, mismatched,
      p50Ns: percentile(sorted, 0.5), p99Ns: percentile(sorted, 0.99), maxNs: sorted[sorted.length - 1] ?? null,
      explanations, causes: aggregateCauses(explanations), worst, recorder: recStats, trace: summary, warnings,
    };
  };

  const abort = async () => {
    if (timer) clearInterval(timer);
    timer = null;
    await recorder?.stop();
  };

  return { onPoint, attach, finish, abort, warn, recorderPid: () => recorder?.pid };
}

export async function runExplain(o: ExplainRunOptions): Promise<ExplainRunResult> {
  const log = o.log ?? (() => undefined);
  const engine = o.engine ?? o.trace.engine ?? defaultTraceEngine((why) => log(`tracing with bpftrace: the bpf engine cannot run here (${why})`));
  const explainer = createExplainer({ ...o, engine });
  let trace: Awaited<ReturnType<typeof startTrace>> | null = null;
  let finished = false;
  try {
    trace = await startTrace({ ...o.trace, engine }, { onPoint: explainer.onPoint, onWarning: (w) => explainer.warn(w.message) }, { stopOnSignals: false });
    await explainer.attach();
    const pid = explainer.recorderPid();
    log(`tracing ${trace.points.map((p) => p.name).join(', ')}${o.record !== false ? ` with the flight recorder (${engine} engine, pid ${pid})` : ' without the recorder'}`);
    await o.onReady?.();
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, o.durationS * 1000);
      o.signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
    });
    const summary = await trace.stop();
    trace = null;
    finished = true;
    return await explainer.finish(summary);
  } finally {
    if (trace) await trace.stop().catch(() => undefined);
    if (!finished) await explainer.abort().catch(() => undefined);
  }
}
