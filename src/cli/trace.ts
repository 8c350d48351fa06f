/**
 * `svtrace trace`: eBPF timestamps of every sample at the points of a
 * hypervisor (T1 NIC receive → T2 towards the VM) or a VM (T3 NIC receive →
 * T4 application), recorded, shown live, served as metrics.
 */
import type { Command } from 'commander';
import { startTrace, type PointEvent, type TraceSummary, type TraceWarning } from '../trace/index.ts';
import type { InterfaceRef, TraceConfig } from '../trace/config.ts';
import { readLabState } from '../lab/index.ts';
import { openRecordWriter, type RecordWriter } from '../record/index.ts';
import { createJoiner } from '../live/joiner.ts';
import { renderLive, renderLiveLine, formatUs, type LiveFrame } from '../live/view.ts';
import { serveMetrics } from '../live/metrics.ts';
import { createSequence, observe, type SequenceState } from '../subscribe/sequence.ts';
import { loadConfig } from '../config/load.ts';
import { clockNowNs } from '../net/index.ts';
import { SvtraceError } from '../errors.ts';
import { action } from './run.ts';
import { collect } from './parse.ts';
import { groupDigits, printable, renderTable } from '../util/text.ts';
import { join } from 'node:path';
import { createExplainer, type Explainer, type ExplainRunResult } from '../explain/run.ts';
import { validateCpus } from '../explain/recorder.ts';
import { explainJson, renderExplainSummary } from '../explain/render.ts';
import { EXPLAIN_DIR, writeExplainDir } from '../explain/files.ts';

interface Flags {
  config?: string; machine?: string; lab?: string | boolean; ingress?: string; vmPort?: string; vmIf?: string;
  subscriberComm?: string; subscriberPid?: string[]; stream: string[]; record?: string; live?: boolean; metrics?: string;
  printProgram?: boolean; duration?: string; json?: boolean;
  explain?: boolean; explainThresholdUs?: string; explainWindowS?: string; explainCpus?: string; explainWorst?: string;
}

/** The --explain flags, checked before anything starts. */
export function explainFlags(f: Flags, role: string | undefined, limitsUs: Record<string, number>): { segment: { name: string; from: string; to: string }; thresholdNs: number; windowS: number; worst: number; cpus?: number[] } {
  const segment = role === 'vm' ? { name: 'Tsub', from: 'T3', to: 'T4' } : { name: 'Thyp', from: 'T1', to: 'T2' };
  const num = (v: string | undefined, flag: string, dflt: number, ok: (n: number) => boolean, example: string) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new SvtraceError('USAGE', `${flag} ${printable(v)} is not valid`, { hint: `e.g. ${flag} ${example}` });
    return n;
  };
  const thresholdUs = num(f.explainThresholdUs, '--explain-threshold-us', limitsUs[segment.name] ?? 100, (n) => n > 0, '100');
  const windowS = num(f.explainWindowS, '--explain-window-s', 2, (n) => n > 0 && n <= 60, '2');
  const worst = num(f.explainWorst, '--explain-worst', 5, (n) => Number.isInteger(n) && n >= 0 && n <= 100, '5');
  const cpus = f.explainCpus === undefined ? undefined : validateCpus(f.explainCpus.split(',').map((c) => (c.trim() === '' ? NaN : Number(c))));
  return { segment, thresholdNs: thresholdUs * 1000, windowS, worst, ...(cpus ? { cpus } : {}) };
}

/** "eth1" or "svtvm0@svt-vm" (interface in a named network namespace). */
export function parseInterface(spec: string, flag: string): InterfaceRef {
  const m = /^([^@\s]{1,15})(?:@([^@\s]{1,64}))?$/.exec(spec);
  if (!m) throw new SvtraceError('USAGE', `${flag} ${printable(spec)} is not IFACE or IFACE@NETNS`, { hint: `e.g. ${flag} ens1f0 or ${flag} svtvm0@svt-vm` });
  return m[2] ? { name: m[1]!, netns: m[2] } : { name: m[1]! };
}

/** Builds the trace config from flags, the [trace] section of the config file, and a running lab. */
export async function traceConfigFrom(f: Flags): Promise<{ trace: TraceConfig; limitsUs: Record<string, number> }> {
  const config = loadConfig(f.config);
  const section = (config.trace ?? {}) as Record<string, unknown>;
  const str = (k: string) => (typeof section[k] === 'string' ? (section[k] as string) : undefined);
  const role = (f.machine ?? str('machine') ?? 'hypervisor');
  if (role !== 'hypervisor' && role !== 'vm') throw new SvtraceError('USAGE', `--machine ${printable(role)} is neither hypervisor nor vm`, { hint: 'use --machine hypervisor (T1, T2) or --machine vm (T3, T4)' });
  const trace: TraceConfig = { role };
  if (f.lab) {
    const lab = await readLabState(typeof f.lab === 'string' ? f.lab : '/run/svtrace/lab');
    if (role === 'hypervisor') { trace.ingress = { name: lab.hostPubIf }; trace.vmPort = { name: lab.hostVmIf }; } else trace.vmInterface = { name: lab.vmIf, netns: lab.vmNetns };
  }
  const legacy = str('interface'); // svtrace.cfg SV_INTERFACE
  const ingress = f.ingress ?? str('ingress') ?? (role === 'hypervisor' ? legacy : undefined);
  const vmPort = f.vmPort ?? str('vm_port');
  const vmIf = f.vmIf ?? str('vm_interface') ?? (role === 'vm' ? legacy : undefined);
  if (ingress) trace.ingress = parseInterface(ingress, '--ingress');
  if (vmPort) trace.vmPort = parseInterface(vmPort, '--vm-port');
  if (vmIf) trace.vmInterface = parseInterface(vmIf, '--vm-if');
  const comm = f.subscriberComm ?? str('subscriber_comm');
  const pids = (f.subscriberPid ?? []).map((p) => Number(p));
  if (pids.some((p) => !Number.isInteger(p) || p <= 0)) throw new SvtraceError('USAGE', '--subscriber-pid takes a process id', { hint: 'e.g. --subscriber-pid $(pidof my-protection-app)' });
  if (role === 'vm' && (comm || pids.length)) trace.subscriber = { ...(comm ? { comm } : {}), ...(pids.length ? { pids } : {}) };
  const streams = f.stream.length ? f.stream : Array.isArray(section.streams) ? (section.streams as unknown[]).map(String) : [];
  if (streams.length) trace.streams = streams.map((svId) => ({ svId }));
  if (role === 'hypervisor' && !trace.ingress && !trace.vmPort) {
    throw new SvtraceError('USAGE', 'nothing to trace on the hypervisor', { hint: 'give --ingress IFACE (T1) and --vm-port IFACE (T2), or --lab for the one-machine lab' });
  }
  if (role === 'vm' && !trace.vmInterface && !trace.subscriber) {
    throw new SvtraceError('USAGE', 'nothing to trace in the VM', { hint: 'give --vm-if IFACE (T3) and --subscriber-comm NAME or --subscriber-pid PID (T4), or --lab' });
  }
  return { trace, limitsUs: config.verdicts.limits_us };
}

export function register(program: Command): void {
  program
    .command('trace')
    .description('eBPF timestamps of every sample at the points of a hypervisor (T1, T2) or a VM (T3, T4)')
    .option('-c, --config <file>', 'TOML config (default /etc/svtrace.toml when it exists)')
    .option('-m, --machine <role>', 'hypervisor (T1 NIC receive, T2 towards the VM) or vm (T3 VM NIC receive, T4 application)')
    .option('--lab [rundir]', 'take the interfaces from the running `svtrace lab` (default /run/svtrace/lab)')
    .option('--ingress <if>', 'hypervisor: the NIC where SV arrives (T1); IFACE or IFACE@NETNS')
    .option('--vm-port <if>', 'hypervisor: the port towards the VM (T2): tap, vhost or veth')
    .option('--vm-if <if>', 'vm: the VM\'s interface (T3)')
    .option('--subscriber-comm <name>', 'vm: the subscriber\'s command name (T4)')
    .option('--subscriber-pid <pid>', 'vm: the subscriber\'s pid (T4; repeatable)', collect, [])
    .option('--stream <svid>', 'trace only this svID (repeatable; default: every stream seen)', collect, [])
    .option('-r, --record <dir>', 'record every sample\'s points into this new directory')
    .option('--live', 'show a live view every second (plain lines when stdout is not a terminal)')
    .option('--metrics <host:port>', 'serve Prometheus metrics (default host 127.0.0.1)')
    .option('--print-program', 'print the generated bpftrace program to stderr')
    .option('-d, --duration <s>', 'stop after this many seconds (default: Ctrl-C)')
    .option('--json', 'print the summary as JSON')
    .option('--explain', 'run the flight recorder (scheduling, interrupts) beside the points and explain every late sample; with --record, writes DIR/explain/')
    .option('--explain-threshold-us <us>', 'explain samples slower than this (default: the segment\'s limit, Thyp or Tsub, 100 µs)')
    .option('--explain-window-s <s>', 'seconds of recorder history kept per CPU (default 2)')
    .option('--explain-cpus <list>', 'record only these CPUs (e.g. 1,3; default all)')
    .option('--explain-worst <n>', 'Chrome/Perfetto traces for this many worst samples (default 5)')
    .addHelpText('after', '\nExamples:\n  svtrace trace --machine hypervisor --ingress ens1f0 --vm-port vnet3 --record runs/hyp --live\n  svtrace trace --lab --duration 20 --record runs/hyp --explain\n  svtrace trace --machine vm --vm-if ens3 --subscriber-comm protection --record runs/vm\n  svtrace trace --lab --live')
    .action(action(async (f: Flags) => runTraceCommand(f)));
}

async function runTraceCommand(f: Flags): Promise<number> {
  const { trace, limitsUs } = await traceConfigFrom(f);
  const durationS = f.duration === undefined ? Infinity : Number(f.duration);
  if (!(durationS > 0)) throw new SvtraceError('USAGE', `--duration ${f.duration} is not a positive number of seconds`, { hint: 'e.g. -d 60' });
  const points = trace.role === 'hypervisor' ? ['T1', 'T2'] : ['T3', 'T4'];
  const explainOpts = f.explain ? explainFlags(f, trace.role, limitsUs) : null;
  const explainDir = f.record ? join(f.record, EXPLAIN_DIR) : null;
  const limitsNs = Object.fromEntries(Object.entries(limitsUs).map(([k, v]) => [k, v * 1000]));
  const joiner = createJoiner(points, limitsNs);
  const sequences = new Map<string, SequenceState>();
  const firstPoint = points[0]!;
  let writer: RecordWriter | null = null;
  // Warnings: counted, the first 100 kept for --json, printed at most once per 5 s per kind (bpftrace can report losses many times a second).
  const warnings: string[] = [];
  let warningCount = 0;
  const quiet = new Map<string, { lastMs: number; suppressed: number }>();
  const warn = (w: TraceWarning) => {
    if (w.kind === 'lost-events') lostEvents += w.count;
    warningCount++;
    if (warnings.length < 100) warnings.push(w.message);
    const q = quiet.get(w.kind) ?? { lastMs: -Infinity, suppressed: 0 };
    quiet.set(w.kind, q);
    const now = Date.now();
    if (now - q.lastMs < 5000) { q.suppressed++; return; }
    const more = q.suppressed > 0 ? ` (and ${groupDigits(q.suppressed)} more like it in the last ${((now - q.lastMs) / 1000).toFixed(0)} s${w.kind === 'lost-events' ? `; ${groupDigits(lostEvents)} events lost so far` : ''})` : '';
    process.stderr.write(`svtrace: warning: ${printable(w.message)}${more}\n`);
    q.lastMs = now;
    q.suppressed = 0;
  };
  const flushWarnings = () => {
    for (const [kind, q] of quiet) {
      if (q.suppressed > 0) process.stderr.write(`svtrace: warning: ${groupDigits(q.suppressed)} more ${kind} warning(s) not shown${kind === 'lost-events' ? `; ${groupDigits(lostEvents)} events lost in all` : ''}\n`);
      q.suppressed = 0;
    }
  };
  let events = 0;
  let lostEvents = 0;
  // Points that fire between bpftrace attaching and the record opening: kept, then written first.
  const early: PointEvent[] = [];

  const explainer: Explainer | null = explainOpts ? createExplainer({ ...explainOpts, log: (l) => process.stderr.write(`svtrace: explain: ${printable(l)}\n`) }) : null;
  const onPoint = (e: PointEvent) => {
    events++;
    explainer?.onPoint(e);
    if (writer) writer.append(e.point, e.svId, e.appId, e.smpCnt, e.iter, e.tNs, 'bpf', e.cpu);
    else if (f.record) early.push(e);
    joiner.point(e.svId, e.appId, e.smpCnt, e.iter, e.point, e.tNs);
    if (e.point === firstPoint) {
      let s = sequences.get(e.svId);
      if (!s) sequences.set(e.svId, (s = createSequence()));
      observe(s, e.smpCnt);
    }
  };
  const missing = () => new Map([...sequences].map(([k, s]) => [k, s.missing]));
  const session = await startTrace(trace, {
    onPoint,
    onWarning: warn,
  }, { printProgram: f.printProgram ? (p) => process.stderr.write(p + '\n') : undefined });
  process.stderr.write(`svtrace: tracing ${session.points.map((p) => `${p.name} (${p.probes.join(', ')})`).join(', ')}; streams ${session.streams.map((s) => printable(s.svId)).join(', ')}\n`);
  if (f.record) {
    writer = await openRecordWriter(f.record, {
      role: 'trace', points: session.points.map((p) => p.name), clock: { name: 'realtime', note: 'bpftrace nsecs (CLOCK_MONOTONIC) mapped to CLOCK_REALTIME with a measured offset, re-measured every 10 s' },
      startedNs: clockNowNs(), command: process.argv.slice(2),
      streams: session.streams.map((s) => ({ svId: s.svId, appId: s.appId, ...(s.smpCntWrap ? { rate: s.smpCntWrap } : {}) })),
      extra: { machine: trace.role, points: session.points.map((p) => ({ name: p.name, probes: p.probes })) },
    });
    for (const e of early) writer.append(e.point, e.svId, e.appId, e.smpCnt, e.iter, e.tNs, 'bpf', e.cpu);
    early.length = 0;
  }
  const metrics = f.metrics ? await serveMetrics(f.metrics, { stats: () => joiner.stats(), missing, samples: () => joiner.points(), counters: () => ({ events, lost_events: lostEvents, unmatched: joiner.unmatched(), warnings: warningCount }) }) : null;
  if (metrics) process.stderr.write(`svtrace: metrics on ${metrics.url}\n`);
  // after the point tracer (learning layouts does not compete with it) and its record, so no point waits for either
  if (explainer && explainOpts) {
    try {
      await explainer.attach();
    } catch (e) {
      await session.stop().catch(() => undefined);
      await metrics?.close();
      await writer?.close().catch(() => undefined);
      throw e;
    }
    process.stderr.write(`svtrace: flight recorder attached (bpftrace pid ${explainer.recorderPid()}); explaining ${explainOpts.segment.name} over ${groupDigits(explainOpts.thresholdNs / 1000)} µs${explainDir ? ` into ${explainDir}` : ' (no --record: the explanations are printed only)'}\n`);
  }

  const t0 = Date.now();
  const worstLines: string[] = [];
  const rates = new Map<LiveFrame['stats'][number], number>();
  const tty = process.stdout.isTTY === true;
  const timer = setInterval(() => {
    const worst = joiner.tick(Date.now());
    const bySeg = new Map<string, { worstNs: number; stream: string }>();
    for (const w of worst) if ((bySeg.get(w.segment)?.worstNs ?? -1) < w.worstNs) bySeg.set(w.segment, w);
    if (bySeg.size) worstLines.push(`${new Date().toISOString().slice(11, 19)}  ${[...bySeg].map(([seg, w]) => `${seg} ${formatUs(w.worstNs)} µs (${printable(w.stream)})`).join('  ')}`);
    while (worstLines.length > 10) worstLines.shift();
    if (f.live) {
      const frame: LiveFrame = { title: `svtrace trace --machine ${trace.role}`, elapsedS: (Date.now() - t0) / 1000, stats: joiner.stats(), rates, missing: missing(), worstLines, footer: [`events ${groupDigits(events)}, unmatched ${joiner.unmatched()}, warnings ${warningCount}${f.record ? `, recording to ${f.record}` : ''}`] };
      process.stdout.write(tty ? `\x1b[H\x1b[2J${renderLive(frame)}` : renderLiveLine(frame) + '\n');
      for (const s of frame.stats) rates.set(s, s.hist.count);
    }
    if (Date.now() - t0 >= durationS * 1000) void session.stop();
  }, 1000);
  let summary: TraceSummary;
  let explained: ExplainRunResult | null = null;
  try {
    summary = await session.done;
    if (explainer) {
      process.stderr.write('svtrace: explain: letting the flight recorder catch up, then explaining the late samples\n');
      explained = await explainer.finish(summary);
    }
  } finally {
    clearInterval(timer);
    flushWarnings();
    await metrics?.close();
    if (explainer && !explained) await explainer.abort().catch(() => undefined);
  }
  if (writer) {
    const rec = explained?.recorder;
    await writer.close({ stoppedNs: clockNowNs(), counters: {
      events, lostEvents: summary.lostEvents, lostLines: summary.lostLines, unknownFrames: summary.points.reduce((n, p) => n + p.unknown, 0), missing: [...missing().values()].reduce((a, b) => a + b, 0),
      ...(rec ? { recorderEvents: rec.events, recorderLostEvents: rec.lostEvents, recorderLostLines: rec.lostLines, recorderRingOverflowed: rec.ringOverflowed } : {}),
    } });
  }
  if (explained && explainDir && explainOpts) {
    const w = writeExplainDir(explainDir, explained, { windowS: explainOpts.windowS });
    process.stderr.write(`svtrace: explain: wrote ${w.json} and ${w.traces.length} Chrome trace(s) (open them in https://ui.perfetto.dev)\n`);
  }
  if (f.json) {
    process.stdout.write(JSON.stringify({ summary, ...(explained ? { explain: explainJson(explained) } : {}), stats: joiner.stats().map((s) => ({ segment: s.segment, svId: s.stream, appId: s.appId, count: s.hist.count, minNs: s.hist.min, maxNs: s.hist.max, meanNs: s.hist.count ? s.hist.sum / s.hist.count : null, late: s.late, limitNs: s.limitNs })), missing: Object.fromEntries(missing()), warnings }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  } else {
    process.stdout.write(renderTable(['point', 'probes', 'frames', 'kernel frames', 'ASDU events', 'unknown frames'], summary.points.map((p) => [p.name, p.probes.join(', '), groupDigits(p.frames), p.kernelFrames === null ? '-' : groupDigits(p.kernelFrames), groupDigits(p.events), groupDigits(p.unknown)]), new Set([2, 3, 4, 5])));
    process.stdout.write(renderTable(['segment', 'svID', 'samples', 'min µs', 'mean', 'max', 'late', 'missing'], joiner.stats().map((s) => [
      s.segment, printable(s.stream), groupDigits(s.hist.count), formatUs(s.hist.min), formatUs(s.hist.count ? s.hist.sum / s.hist.count : NaN), formatUs(s.hist.max),
      s.limitNs === null ? '-' : `${groupDigits(s.late)} > ${formatUs(s.limitNs)}`, groupDigits(missing().get(s.stream) ?? 0),
    ]), new Set([2, 3, 4, 5, 7])));
    process.stdout.write(`lost events ${summary.lostEvents}, lines lost ${summary.lostLines}, map full ${summary.mapFullWarnings}, unmatched samples ${joiner.unmatched()}\n`);
    if (explained) process.stdout.write(`\n${renderExplainSummary(explained, explainOpts?.worst ?? 5)}`);
    if (f.record) process.stdout.write(`record: ${f.record}${explained ? `, explanations in ${explainDir}` : ''}\n`);
  }
  return 0;
}
