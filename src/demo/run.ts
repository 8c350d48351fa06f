/**
 * `svtrace demo`: the whole job on one machine. Lab up → trace the
 * hypervisor (T1, T2) → subscribe in the VM (T3, T4) → publish (T0) for a
 * while → stop → report → lab down, also on Ctrl-C or failure.
 */
import { availableParallelism } from 'node:os';
import { fork } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labDown, labUp, type LabTopology } from '../lab/index.ts';
import type { PublishProgress, PublishResult } from '../publish/run.ts';
import type { SubscribeResult } from '../subscribe/run.ts';
import { STOP, type ChildJob, type ChildMessage } from './child.ts';
import { DEFAULT_WAVEFORM, expandStreams, sampleRate, type StreamSpec } from '../publish/streams.ts';
import { frameTemplate } from '../publish/frames.ts';
import { layoutFromFrame } from '../trace/layout.ts';
import type { TraceSummary } from '../trace/index.ts';
import { runTrace, type TraceRunResult } from '../trace/run.ts';
import { DEFAULT_LIMITS_US } from '../path/index.ts';
import { SvtraceError } from '../errors.ts';
import { cpuOf, startHog, type Hog } from './hog.ts';
import type { ExplainRunResult } from '../explain/run.ts';

export interface DemoOptions {
  outDir: string;
  durationS: number;
  streams: number;
  switch: 'ovs' | 'bridge' | 'auto';
  impair: boolean;
  /** Run the flight recorder beside the hypervisor trace and write its explanations into the trace record's explain/ directory (window default 5 s: the points' output can lag the recorder's by seconds on a busy machine). */
  explain?: { thresholdNs: number; windowS?: number };
  /** SCHED_FIFO priority of the subscriber's receive thread (default: normal scheduling). */
  subscriberFifo?: number;
  /** Verdict limits (µs) for the trace's live figures (default: the path's, src/path). */
  limitsUs?: Record<string, number>;
  /** The tuned variant: the subscriber's receive thread real-time on a CPU of its own, everything else on the others (see tuningPlan). */
  tuned?: boolean;
  signal?: AbortSignal;
  log: (line: string) => void;
}

export interface DemoResult {
  outDir: string;
  records: string[];
  publish: PublishResult;
  subscribe: SubscribeResult;
  trace: TraceSummary | null;
  traceError: string | null;
  impairment: string | null;
  lab: LabTopology;
  /** The explanations of late Thyp samples (with `explain`), written into the trace record's explain/ directory. */
  explain: ExplainRunResult | null;
  /** The tuning steps applied (empty for the nominal run). */
  tuning: string[];
}

export interface TuningPlan {
  steps: string[];
  subscriber: { fifoPriority?: number; cpu?: number };
  publisherCpu?: number;
  tracerCpus?: number[];
}

/**
 * What "tuned" means on this machine's lab, as SEAPATH tunes a hypervisor:
 * the protection application's receive thread at SCHED_FIFO on a CPU of its
 * own (the last), the publisher and the tracer kept on the other CPUs.
 * Each step is named, so the output and the report say what changed.
 */
export function tuningPlan(cpuCount: number, subscriberFifo = 50): TuningPlan {
  if (cpuCount < 2) {
    return { steps: [`subscriber receive thread at SCHED_FIFO ${subscriberFifo} (one CPU: nothing to keep apart)`], subscriber: { fifoPriority: subscriberFifo } };
  }
  const sub = cpuCount - 1;
  const others = Array.from({ length: cpuCount - 1 }, (_, i) => i);
  const list = others.length === 1 ? `CPU ${others[0]}` : `CPUs ${others[0]}-${others.at(-1)}`;
  return {
    steps: [
      `subscriber receive thread (svtrace-rx) at SCHED_FIFO ${subscriberFifo}, pinned to CPU ${sub}`,
      `publisher transmit thread (svtrace-tx) pinned to CPU ${others[0]}`,
      `hypervisor tracer (its bpftrace, or the bpf engine's reader thread) pinned to ${list}`,
      'NIC/tap interrupts: none to steer in this lab (veth pairs raise no IRQ; their softirq runs on the sending CPU)',
    ],
    subscriber: { fifoPriority: subscriberFifo, cpu: sub },
    publisherCpu: others[0]!,
    tracerCpus: others,
  };
}

export function demoStreams(count: number): StreamSpec[] {
  return expandStreams({
    count, svIdPattern: 'MU{n:02}', appIdBase: 0x4000, dstMacBase: '01:0c:cd:04:00:00', srcMacBase: '02:53:56:00:00:01',
    vlan: { id: 0, priority: 4 }, freqHz: 50, samplesPerCycle: 80, asdusPerFrame: 1, confRev: 1, smpSynch: 2, simulated: false,
    waveform: { ...DEFAULT_WAVEFORM, harmonics: [{ order: 5, percent: 3 }] },
  });
}

export interface Child<R> {
  /** Resolves when the subscriber is receiving (at once for the publisher). */
  ready: Promise<void>;
  result: Promise<R>;
  stop(): void;
}

/** The child entry: child.ts from the sources (tsx), demo-child.js beside the bundle (dist). */
function childEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts') ? join(dirname(here), 'child.ts') : join(dirname(here), 'demo-child.js');
}

/** Runs a publish or subscribe job in a process of its own (see child.ts for why). */
export function inChild<R>(what: string, job: ChildJob, onProgress?: (p: PublishProgress) => void): Child<R> {
  const child = fork(childEntry(), [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let ready!: () => void;
  const readyP = new Promise<void>((r) => { ready = r; });
  if (job.kind === 'publish') ready();
  const result = new Promise<R>((resolveR, reject) => {
    let settled = false;
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') ready();
      else if (m.type === 'progress') onProgress?.(m.progress);
      else if (m.type === 'result') { settled = true; resolveR(m.result as R); } else if (m.type === 'error') {
        settled = true;
        reject(m.error.code ? new SvtraceError(m.error.code, m.error.message, { hint: m.error.hint, kind: m.error.kind ?? 'internal' }) : new Error(m.error.message));
      }
    });
    child.on('error', (e) => { if (!settled) { settled = true; reject(e); } });
    child.on('exit', (code, sig) => {
      ready(); // never leave the demo waiting on a dead subscriber
      if (!settled) reject(new SvtraceError('DEMO_CHILD_FAILED', `the ${what} process ended (${sig ?? `exit code ${code}`}) before its result`, { hint: 'its error is printed above' }));
    });
  });
  child.send(job);
  return {
    ready: readyP,
    result,
    stop: () => { if (child.connected) child.send(STOP); },
  };
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const out = resolve(o.outDir);
  if (existsSync(join(out, 'publish'))) {
    throw new SvtraceError('USAGE', `${out} already holds a demo run`, { hint: 'give another --out directory, or remove this one' });
  }
  mkdirSync(out, { recursive: true });
  const runDir = join(out, 'lab');
  const dirs = { publish: join(out, 'publish'), subscribe: join(out, 'subscribe'), trace: join(out, 'trace-hypervisor') };
  o.log(`lab: building the path publisher → switch → VM (${o.switch})`);
  const lab = (await labUp({ runDir, switch: o.switch, prefix: `sd${process.pid % 1000}` })).topology;
  const tuning = o.tuned ? tuningPlan(availableParallelism(), o.subscriberFifo ?? 50) : null;
  for (const step of tuning?.steps ?? []) o.log(`tuned: ${step}`);
  let hog: Hog | null = null;
  const children: Child<unknown>[] = [];
  const stopChildren = () => { for (const c of children) c.stop(); };
  o.signal?.addEventListener('abort', stopChildren, { once: true });
  // the trace run (src/trace/run.ts, as `svtrace trace`) goes on until the traffic is done
  const traceStop = new AbortController();
  const onAbortTrace = () => traceStop.abort();
  o.signal?.addEventListener('abort', onAbortTrace, { once: true });
  let traceOutcome: Promise<{ result: TraceRunResult } | { error: unknown }> | null = null;
  try {
    const streams = demoStreams(o.streams);
    // the frames' layouts are known from the publisher: no need to learn them from traffic
    const layouts = streams.map((s) => layoutFromFrame(frameTemplate(s).bytes));
    let traceError: string | null = null;
    o.log('trace: attaching to the hypervisor points T1 and T2');
    let started!: () => void;
    const startedP = new Promise<'started'>((r) => { started = () => r('started'); });
    traceOutcome = runTrace({
      trace: { role: 'hypervisor', ingress: { name: lab.hostPubIf }, vmPort: { name: lab.hostVmIf }, layouts, streams: streams.map((s) => ({ svId: s.svId, appId: s.appId, smpCntWrap: sampleRate(s) })) },
      limitsUs: o.limitsUs ?? { ...DEFAULT_LIMITS_US }, recordDir: dirs.trace, command: ['demo'], signal: traceStop.signal, stopOnSignals: false,
      ...(o.explain ? { explain: { thresholdNs: o.explain.thresholdNs, windowS: o.explain.windowS ?? 5 }, explainOptional: true } : {}),
      ...(tuning?.tracerCpus ? { cpus: tuning.tracerCpus } : {}),
      onWarning: (m) => o.log(`trace: warning: ${m}`),
      log: (l) => o.log(l),
      onStarted: (st) => {
        if (st.recorderPid !== null) o.log(`explain: flight recorder attached (pid ${st.recorderPid}); late Thyp samples (> ${o.explain!.thresholdNs / 1000} µs) will be explained`);
        started();
      },
    }).then((result) => ({ result }), (error: unknown) => ({ error }));
    const first = await Promise.race([startedP, traceOutcome]);
    if (first !== 'started' && 'error' in first) {
      traceError = (first.error as Error).message;
      traceOutcome = null;
      o.log(`trace: not available (${traceError}); the demo goes on with T0, T3 and T4`);
    }
    if (o.impair) {
      const pid = lab.ovs?.pids['ovs-vswitchd'];
      const cpu = (pid ? cpuOf(pid) : null) ?? 0;
      hog = startHog(cpu, 2, 500);
      o.log(`impair: a SCHED_FIFO busy loop (pid ${hog.pid}) takes CPU ${cpu} for 2 ms every 500 ms${pid ? `, the CPU of ovs-vswitchd (pid ${pid})` : ''}`);
    }
    o.log(`subscribe: receiving in ${lab.vmNetns}/${lab.vmIf} (T3 kernel RX, T4 application), in a process of its own`);
    // normal scheduling: on a 2-CPU machine a real-time receive thread starves bpftrace's reader
    // (seen: half of the T1/T2 lines lost); `svtrace subscribe --fifo` is there for real VMs
    const sub = inChild<SubscribeResult>('subscriber', { kind: 'subscribe', options: { ifname: lab.vmIf, netns: lab.vmNetns, streams: [], durationS: o.durationS + 60, idleStopS: 1.5, recordDir: dirs.subscribe, fifoPriority: tuning?.subscriber.fifoPriority ?? o.subscriberFifo, ...(tuning?.subscriber.cpu !== undefined ? { cpu: tuning.subscriber.cpu } : {}) } });
    children.push(sub);
    await sub.ready;
    o.log(`publish: ${o.streams} streams × 4000 samples/s for ${o.durationS} s from ${lab.pubNetns}/${lab.pubIf} (T0), in a process of its own`);
    // a merging unit sends on time: the transmit thread runs at SCHED_FIFO 50 so tracing cannot starve it
    const pub = inChild<PublishResult>('publisher', { kind: 'publish', options: { streams, ifname: lab.pubIf, netns: lab.pubNetns, durationS: o.durationS, recordDir: dirs.publish, fifoPriority: 50, ...(tuning?.publisherCpu !== undefined ? { cpu: tuning.publisherCpu } : {}) } },
      (p) => { if (Math.round(p.elapsedS) % 5 === 0) o.log(`publish: ${Math.round(p.elapsedS)} s, ${p.framesSent} frames sent`); });
    children.push(pub);
    const [publish, subscribe] = await Promise.all([pub.result, sub.result]);
    if (publish.framesLagging > 0) {
      o.log(`publish: warning: the transmit thread fell up to ${(publish.maxLagNs / 1e6).toFixed(1)} ms behind schedule (${publish.framesLagging} frames more than 10 ms late): T0 drifts from the sample instants by as much`);
    }
    hog?.stop();
    hog = null;
    let traceSummary: TraceSummary | null = null;
    let explained: ExplainRunResult | null = null;
    if (traceOutcome) {
      traceStop.abort();
      const t = await traceOutcome;
      traceOutcome = null;
      if ('error' in t) {
        traceError = (t.error as Error).message;
        o.log(`trace: failed (${traceError}); the demo goes on with T0, T3 and T4`);
      } else {
        traceSummary = t.result.summary;
        explained = t.result.explained;
        if (explained && t.result.explainFiles) o.log(`explain: ${explained.late} late of ${explained.samples} Thyp samples, ${explained.explanations.length} explained; wrote ${t.result.explainFiles.json} and ${t.result.explainFiles.traces.length} Chrome trace(s)`);
      }
    }
    const records = [dirs.publish, dirs.trace, dirs.subscribe].filter((d) => existsSync(join(d, 'manifest.json')));
    return { outDir: out, records, publish, subscribe, trace: traceSummary, traceError, impairment: o.impair ? 'cpu-hog' : null, lab, explain: explained, tuning: tuning?.steps ?? [] };
  } finally {
    o.signal?.removeEventListener('abort', stopChildren);
    o.signal?.removeEventListener('abort', onAbortTrace);
    stopChildren();
    await Promise.allSettled(children.map((c) => c.result));
    hog?.stop();
    traceStop.abort();
    if (traceOutcome) await traceOutcome;
    o.log('lab: removing everything it made');
    await labDown(runDir).catch((e: unknown) => o.log(`lab: down failed: ${(e as Error).message}; run svtrace lab down --run-dir ${runDir}`));
  }
}
