/**
 * `svtrace trace`: eBPF timestamps of every sample at the points of a
 * hypervisor (T1 NIC receive → T2 towards the VM) or a VM (T3 NIC receive →
 * T4 application), recorded, shown live, served as metrics.
 */
import { layoutsFromCapture } from '../trace/layout-capture.ts';
import type { Command } from 'commander';
import type { InterfaceRef, TraceConfig, TraceEngine } from '../trace/config.ts';
import { defaultTraceEngine } from '../trace/bpf-engine.ts';
import { runTrace } from '../trace/run.ts';
import { qemuTapPoint } from '../trace/tap.ts';
import { readLabState } from '../lab/index.ts';
import { renderLive, renderLiveLine, formatUs, type LiveFrame } from '../live/view.ts';
import { loadConfig } from '../config/load.ts';
import type { ExplainSection, SvtraceConfig } from '../config/schema.ts';
import { SvtraceError } from '../errors.ts';
import { action } from './run.ts';
import { roleSegment } from '../path/index.ts';
import { collect } from './parse.ts';
import { groupDigits, printable, renderTable } from '../util/text.ts';
import { join } from 'node:path';
import { validateCpus } from '../explain/recorder.ts';
import { explainJson, renderExplainSummary } from '../explain/render.ts';
import { EXPLAIN_DIR } from '../explain/files.ts';

interface Flags {
  config?: string; machine?: string; engine?: string; lab?: string | boolean; ingress?: string; vmPort?: string; vmIf?: string;
  subscriberComm?: string; subscriberPid?: string[]; stream: string[]; record?: string; live?: boolean; metrics?: string;
  printProgram?: boolean; duration?: string; json?: boolean; tapPoint?: boolean; layoutsFrom?: string;
  explain?: boolean; explainThresholdUs?: string; explainWindowS?: string; explainCpus?: string; explainWorst?: string;
}

/** The --explain flags over the [explain] section, checked before anything starts. */
export function explainFlags(f: Flags, role: string | undefined, limitsUs: Record<string, number>, section: ExplainSection): { segment: { name: string; from: string; to: string }; thresholdNs: number; windowS: number; worst: number; cpus?: number[] } {
  const segment = roleSegment(role === 'vm' ? 'vm' : 'hypervisor');
  const num = (v: string | undefined, flag: string, dflt: number, ok: (n: number) => boolean, example: string) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new SvtraceError('USAGE', `${flag} ${printable(v)} is not valid`, { hint: `e.g. ${flag} ${example}` });
    return n;
  };
  const thresholdUs = num(f.explainThresholdUs, '--explain-threshold-us', section.threshold_us ?? limitsUs[segment.name] ?? 100, (n) => n > 0, '100');
  const windowS = num(f.explainWindowS, '--explain-window-s', section.window_s, (n) => n > 0 && n <= 60, '2');
  const worst = num(f.explainWorst, '--explain-worst', section.worst, (n) => Number.isInteger(n) && n >= 0 && n <= 100, '5');
  const cpuList = f.explainCpus === undefined ? section.cpus : f.explainCpus.split(',').map((c) => (c.trim() === '' ? NaN : Number(c)));
  const cpus = cpuList === undefined ? undefined : validateCpus(cpuList);
  return { segment, thresholdNs: thresholdUs * 1000, windowS, worst, ...(cpus ? { cpus } : {}) };
}

function defaultEngine(): TraceEngine {
  return defaultTraceEngine((why) => process.stderr.write(`svtrace: tracing with bpftrace: the bpf engine cannot run here (${printable(why)})\n`));
}

/** "eth1" or "svtvm0@svt-vm" (interface in a named network namespace). */
export function parseInterface(spec: string, flag: string): InterfaceRef {
  const m = /^([^@\s]{1,15})(?:@([^@\s]{1,64}))?$/.exec(spec);
  if (!m) throw new SvtraceError('USAGE', `${flag} ${printable(spec)} is not IFACE or IFACE@NETNS`, { hint: `e.g. ${flag} ens1f0 or ${flag} svtvm0@svt-vm` });
  return m[2] ? { name: m[1]!, netns: m[2] } : { name: m[1]! };
}

/** Flags over the config file's [trace] section (one validated config), then a running lab → the trace config. */
export async function traceConfigFrom(f: Flags): Promise<{ trace: TraceConfig; limitsUs: Record<string, number>; config: SvtraceConfig }> {
  if (f.machine !== undefined && f.machine !== 'hypervisor' && f.machine !== 'vm') {
    throw new SvtraceError('USAGE', `--machine ${printable(f.machine)} is neither hypervisor nor vm`, { hint: 'use --machine hypervisor (T1, T2) or --machine vm (T3, T4)' });
  }
  const pids = (f.subscriberPid ?? []).map((p) => Number(p));
  if (pids.some((p) => !Number.isInteger(p) || p <= 0)) throw new SvtraceError('USAGE', '--subscriber-pid takes a process id', { hint: 'e.g. --subscriber-pid $(pidof my-protection-app)' });
  if (f.engine !== undefined && f.engine !== 'bpftrace' && f.engine !== 'bpf') {
    throw new SvtraceError('USAGE', `--engine ${printable(f.engine)} is neither bpftrace nor bpf`, { hint: 'use --engine bpf (the binary engine) or --engine bpftrace (the generated program, --print-program)' });
  }
  const config = loadConfig(f.config, {
    'trace.machine': f.machine, 'trace.engine': f.engine, 'trace.ingress': f.ingress, 'trace.vm_port': f.vmPort, 'trace.vm_interface': f.vmIf,
    'trace.subscriber_comm': f.subscriberComm, 'trace.subscriber_pids': pids.length ? pids : undefined,
    'trace.streams': f.stream.length ? f.stream : undefined, 'trace.record': f.record, 'trace.metrics': f.metrics,
    'trace.layouts_from': f.layoutsFrom,
  });
  const t = config.trace;
  const role = t.machine;
  const trace: TraceConfig = { role, engine: t.engine ?? defaultEngine() };
  if (f.lab) {
    const labDir = typeof f.lab === 'string' ? f.lab : config.lab.run_dir ?? '/run/svtrace/lab';
    const lab = await readLabState(labDir);
    if (role === 'vm' && lab.vm) {
      // the VM is a real guest: its kernel is not this one, so its points are traced from inside it
      throw new SvtraceError('USAGE', `the lab's VM is a QEMU guest (${lab.vm.accel}): its points T3 and T4 are in the guest's kernel, which a tracer on this host cannot see`, {
        hint: `run the VM's tracer in the guest: svtrace lab exec --run-dir ${labDir} vm -- svtrace trace --machine vm --vm-if ${lab.vmIf} --subscriber-comm svtrace-rx`,
      });
    }
    if (role === 'hypervisor') { trace.ingress = { name: lab.hostPubIf }; trace.vmPort = { name: lab.hostVmIf }; } else trace.vmInterface = { name: lab.vmIf, netns: lab.vmNetns };
  }
  const ingress = t.ingress ?? (role === 'hypervisor' ? t.interface : undefined);
  const vmIf = t.vm_interface ?? (role === 'vm' ? t.interface : undefined);
  if (ingress) trace.ingress = parseInterface(ingress, '--ingress');
  if (t.vm_port) trace.vmPort = parseInterface(t.vm_port, '--vm-port');
  if (vmIf) trace.vmInterface = parseInterface(vmIf, '--vm-if');
  const comm = t.subscriber_comm;
  if (role === 'vm' && (comm || t.subscriber_pids.length)) trace.subscriber = { ...(comm ? { comm } : {}), ...(t.subscriber_pids.length ? { pids: t.subscriber_pids } : {}) };
  if (t.streams.length) trace.streams = t.streams.map((svId) => ({ svId }));
  if (t.layouts_from) {
    const got = await layoutsFromCapture(t.layouts_from);
    trace.layouts = got.layouts;
    process.stderr.write(`svtrace: ${got.layouts.length} frame layout(s) from ${printable(t.layouts_from)} (${got.frames} frame(s) read): no learning from live traffic\n`);
    if (got.unsupported) process.stderr.write(`svtrace: warning: ${got.unsupported} SV frame(s) there cannot be matched in the kernel: ${printable(got.firstProblem ?? '')}\n`);
  }
  if (t.points.length) {
    trace.points = t.points.map((p) => ({
      name: p.name, probe: p.probe, ...(p.after ? { after: p.after } : {}), ...(p.interface ? { interface: parseInterface(p.interface, `trace.points ${p.name} interface`) } : {}),
      ...(p.comm ? { comm: p.comm } : {}), ...(p.pids ? { pids: p.pids } : {}),
    }));
  }
  // A VM port that is QEMU's tap: also the point where QEMU (or its vhost worker) takes the frame, right after T2
  if (role === 'hypervisor' && trace.vmPort && f.tapPoint !== false && !(trace.points ?? []).some((p) => p.name === 'T2qemu' || p.name === 'T2vhost')) {
    const tap = qemuTapPoint(trace.vmPort);
    if (tap.point) {
      trace.points = [...(trace.points ?? []), tap.point];
      process.stderr.write(`svtrace: ${tap.point.name}: ${tap.why}\n`);
    }
  }
  if (role === 'hypervisor' && !trace.ingress && !trace.vmPort) {
    throw new SvtraceError('USAGE', 'nothing to trace on the hypervisor', { hint: 'give --ingress IFACE (T1) and --vm-port IFACE (T2), or --lab for the one-machine lab' });
  }
  if (role === 'vm' && !trace.vmInterface && !trace.subscriber) {
    throw new SvtraceError('USAGE', 'nothing to trace in the VM', { hint: 'give --vm-if IFACE (T3) and --subscriber-comm NAME or --subscriber-pid PID (T4), or --lab' });
  }
  return { trace, limitsUs: config.verdicts.limits_us, config };
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
    .option('--layouts-from <capture>', 'take the streams\' frame layouts from this pcap/pcapng instead of learning them from live traffic')
    .option('--stream <svid>', 'trace only this svID (repeatable; default: every stream seen)', collect, [])
    .option('-r, --record <dir>', 'record every sample\'s points into this new directory')
    .option('--live', 'show a live view every second (plain lines when stdout is not a terminal)')
    .option('--metrics <host:port>', 'serve Prometheus metrics (default host 127.0.0.1)')
    .option('--engine <name>', 'bpf (the binary engine: a fixed BPF program, a ring buffer read every millisecond; the default where libbpf and BTF are there) or bpftrace (the generated program, --print-program)')
    .option('--print-program', 'print the generated bpftrace program to stderr (with --engine bpf: the equivalent of what it traces)')
    .option('--no-tap-point', 'hypervisor: do not add T2qemu/T2vhost when the VM port is a QEMU tap')
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
  const { trace, limitsUs, config } = await traceConfigFrom(f);
  const durationS = f.duration === undefined ? config.trace.duration_s ?? Infinity : Number(f.duration);
  if (!(durationS > 0)) throw new SvtraceError('USAGE', `--duration ${printable(f.duration ?? '')} is not a positive number of seconds`, { hint: 'e.g. -d 60' });
  const explainOpts = f.explain ? explainFlags(f, trace.role, limitsUs, config.explain) : null;
  const recordDir = config.trace.record;
  const metricsAt = config.trace.metrics;
  const worstLines: string[] = [];
  const rates = new Map<LiveFrame['stats'][number], number>();
  const tty = process.stdout.isTTY === true;
  const r = await runTrace({
    trace, limitsUs, durationS, command: process.argv.slice(2),
    ...(recordDir ? { recordDir } : {}),
    ...(metricsAt ? { metrics: metricsAt } : {}),
    ...(explainOpts ? { explain: explainOpts } : {}),
    ...(f.printProgram ? { printProgram: (p: string) => process.stderr.write(p + '\n') } : {}),
    onWarning: (m) => process.stderr.write(`svtrace: warning: ${printable(m)}\n`),
    log: (l) => process.stderr.write(`svtrace: ${printable(l)}\n`),
    onStarted: (s) => {
      process.stderr.write(`svtrace: tracing ${s.points.map((p) => `${p.name} (${p.probes.join(', ')})`).join(', ')}; streams ${s.streams.map((x) => printable(x.svId)).join(', ')}\n`);
      if (s.metricsUrl) process.stderr.write(`svtrace: metrics on ${s.metricsUrl}\n`);
      if (s.recorderPid !== null && explainOpts) {
        process.stderr.write(`svtrace: flight recorder attached (${trace.engine === 'bpf' ? 'bpf engine, in this process' : `bpftrace pid ${s.recorderPid}`}); explaining ${explainOpts.segment.name} over ${groupDigits(explainOpts.thresholdNs / 1000)} µs${recordDir ? ` into ${join(recordDir, EXPLAIN_DIR)}` : ' (no --record: the explanations are printed only)'}\n`);
      }
    },
    onSecond: (s) => {
      const bySeg = new Map<string, { worstNs: number; stream: string }>();
      for (const w of s.worst) if ((bySeg.get(w.segment)?.worstNs ?? -1) < w.worstNs) bySeg.set(w.segment, w);
      if (bySeg.size) worstLines.push(`${new Date().toISOString().slice(11, 19)}  ${[...bySeg].map(([seg, w]) => `${seg} ${formatUs(w.worstNs)} µs (${printable(w.stream)})`).join('  ')}`);
      while (worstLines.length > 10) worstLines.shift();
      if (!f.live) return;
      const frame: LiveFrame = { title: `svtrace trace --machine ${trace.role}`, elapsedS: s.elapsedS, stats: s.stats, rates, missing: s.missing, worstLines, footer: [`events ${groupDigits(s.events)}, unmatched ${s.unmatched}, warnings ${s.warnings}${recordDir ? `, recording to ${recordDir}` : ''}`] };
      process.stdout.write(tty ? `\x1b[H\x1b[2J${renderLive(frame)}` : renderLiveLine(frame) + '\n');
      for (const x of frame.stats) rates.set(x, x.hist.count);
    },
  });
  if (r.explainFiles) process.stderr.write(`svtrace: explain: wrote ${r.explainFiles.json} and ${r.explainFiles.traces.length} Chrome trace(s) (open them in https://ui.perfetto.dev)\n`);
  const { summary, explained } = r;
  if (f.json) {
    process.stdout.write(JSON.stringify({ summary, ...(explained ? { explain: explainJson(explained) } : {}), stats: r.stats.map((s) => ({ segment: s.segment, svId: s.stream, appId: s.appId, count: s.hist.count, minNs: s.hist.min, maxNs: s.hist.max, meanNs: s.hist.count ? s.hist.sum / s.hist.count : null, late: s.late, limitNs: s.limitNs })), missing: Object.fromEntries(r.missing), warnings: r.warnings }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  } else {
    process.stdout.write(renderTable(['point', 'probes', 'frames', 'kernel frames', 'ASDU events', 'unknown frames'], summary.points.map((p) => [p.name, p.probes.join(', '), groupDigits(p.frames), p.kernelFrames === null ? '-' : groupDigits(p.kernelFrames), groupDigits(p.events), groupDigits(p.unknown)]), new Set([2, 3, 4, 5])));
    process.stdout.write(renderTable(['segment', 'svID', 'samples', 'min µs', 'mean', 'max', 'late', 'missing'], r.stats.map((s) => [
      s.segment, printable(s.stream), groupDigits(s.hist.count), formatUs(s.hist.min), formatUs(s.hist.count ? s.hist.sum / s.hist.count : NaN), formatUs(s.hist.max),
      s.limitNs === null ? '-' : `${groupDigits(s.late)} > ${formatUs(s.limitNs)}`, groupDigits(r.missing.get(s.stream) ?? 0),
    ]), new Set([2, 3, 4, 5, 7])));
    process.stdout.write(`lost events ${summary.lostEvents}, lines lost ${summary.lostLines}, map full ${summary.mapFullWarnings}, probe runs skipped by the kernel ${summary.skippedRuns ?? "unknown"}, unmatched samples ${r.unmatched}\n`);
    if (explained) process.stdout.write(`\n${renderExplainSummary(explained, explainOpts?.worst ?? 5)}`);
    if (recordDir) process.stdout.write(`record: ${recordDir}${explained ? `, explanations in ${join(recordDir, EXPLAIN_DIR)}` : ''}\n`);
  }
  return 0;
}
