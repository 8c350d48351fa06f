/**
 * `svtrace demo --vm qemu`: the path into a real virtual machine, end to end.
 *
 *   host:  publisher (T0) → T1 → switch → T2 tap → T2qemu (QEMU takes it)
 *   guest: eth0 (T3) ──hop guest (netem)──▶ app0 (T3app) → subscriber (T4)
 *
 * T0 and the hypervisor's points are taken on the host, T3, T3app and T4 by
 * `svtrace trace --machine vm` inside the guest, with the subscriber as the
 * protection application. The run is cut into phases, one stream each, and
 * the hop's impairment changes between them (baseline, `--delay`, `--loss`):
 * every phase is its own stream in one set of records, so the VM's tracer
 * (bpftrace, where chosen, takes minutes to start under TCG) starts once. The point after the hop
 * (T3app) makes T3→T3app the segment that holds it, with both ends in the
 * guest's kernel: a delay injected there is read back on one clock.
 */
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { labDown, labUp, type LabTopology } from '../lab/index.ts';
import { applyImpairment } from '../lab/impair.ts';
import { describeImpairment, type Impairment } from '../lab/impair-spec.ts';
import { GUEST_APP_IF, GUEST_HOP_IF, guestNetemCounters } from '../lab/guest-hop.ts';
import { labExec, type LabExecHandle } from '../lab/lab-exec.ts';
import { svtraceRoot } from '../lab/qemu.ts';
import { writeCaptureFile } from '../pcap/index.ts';
import { frameTemplate } from '../publish/frames.ts';
import type { PublishResult } from '../publish/run.ts';
import { DEFAULT_WAVEFORM, expandStreams, sampleRate, type StreamSpec } from '../publish/streams.ts';
import { DEFAULT_LIMITS_US } from '../path/index.ts';
import { layoutFromFrame } from '../trace/layout.ts';
import { runTrace, type TraceRunResult } from '../trace/run.ts';
import { qemuTapPoint } from '../trace/tap.ts';
import { SvtraceError } from '../errors.ts';
import { inChild, type Child } from './run.ts';

/** The point after the guest's hop: the application port's receive, in the guest's kernel. */
export const HOP_POINT = 'T3app';
/** The segment that holds the guest's hop. */
export const HOP_SEGMENT = { name: 'Thop', from: 'T3', to: HOP_POINT } as const;
/**
 * netem's own queue, inside the hop: the frame enters the qdisc of app0h (net_dev_queue) and leaves it to
 * the veth driver (net_dev_start_xmit). Thold is what netem actually held the frame: the injected delay plus
 * however late its timer released it (under TCG the emulated guest released frames up to a frame period late).
 */
export const QDISC_IN = 'Tqin';
export const QDISC_OUT = 'Tqout';
export const HOLD_SEGMENT = { name: 'Thold', from: QDISC_IN, to: QDISC_OUT } as const;

export interface VmPhase {
  label: string;
  stream: StreamSpec;
  impairment: Impairment;
}

export interface VmDemoOptions {
  outDir: string;
  /** Seconds of traffic per phase. */
  durationS: number;
  /** ASDUs per frame (default 8: 500 frames/s carry 4000 samples/s, which an emulated guest's tracer keeps up with). */
  asdus?: number;
  /** Phases after the baseline: a delay (µs) and/or a loss (%) on the guest's hop. */
  delayUs?: number;
  lossPct?: number;
  /** Prefix of the lab's names (default sqPID). */
  prefix?: string;
  /** Longest wait for the guest's tracer to attach (default 15 min: bpftrace compiles slowly under TCG). */
  attachTimeoutMs?: number;
  /** The guest tracer's engine (default: svtrace trace's own choice, bpf where the guest's kernel runs it). */
  guestEngine?: 'bpf' | 'bpftrace';
  signal?: AbortSignal;
  log: (line: string) => void;
}

export interface VmPhaseResult {
  label: string;
  svId: string;
  impairment: Impairment;
  publish: PublishResult;
  /** netem on the guest's hop during the phase: frames it sent and dropped. */
  netem: { sent: number; dropped: number } | null;
}

export interface VmDemoResult {
  outDir: string;
  records: string[];
  /** The record of the guest's tracer (T3, T3app, T4), on the guest's clock. */
  vmRecord: string;
  phases: VmPhaseResult[];
  lab: LabTopology;
  hypervisorTrace: TraceRunResult | null;
  vmTraceOutput: string;
}

/**
 * With a delay to read back, every phase's netem holds frames for at least this long (µs): netem then
 * releases each one from its timer in every phase, and what the timer itself costs is in the baseline too
 * (under TCG, with a 0 µs baseline, an earlier version of this demo read 479 µs back for 400 µs injected).
 * What the release costs also depends on what the guest is doing when the timer expires: for a few hundred
 * µs after a frame arrives the emulated vCPU is still busy with it (T3, the tracer, netem's enqueue). With
 * a 50 µs reference the baseline's timers expired inside that busy period and the delayed phases' after it
 * or at its end; read back here: 326 µs for 294 injected, 339 and 324 for 300, 426 for 411, but 512 for
 * 516 and 605 for 598. At 700 µs every phase's timer expires after it (frames are 2 ms apart at 500/s).
 * The injected delay is the difference.
 */
export const REFERENCE_DELAY_US = 700;

/**
 * The phases: a baseline, then one per impairment asked for, each its own stream. With a delay, baseline
 * and delayed phases alternate twice (A B A B): a drift of the machine's load over the run (the guest's
 * timings under TCG follow it) then weighs on both sides alike.
 */
export function vmPhases(o: Pick<VmDemoOptions, 'asdus' | 'delayUs' | 'lossPct'>): VmPhase[] {
  const ref = o.delayUs !== undefined ? REFERENCE_DELAY_US : 0;
  const base = ref ? `baseline (netem ${ref} µs)` : 'baseline';
  const wanted: Array<[string, Impairment]> = [];
  if (o.delayUs !== undefined) {
    for (const round of [1, 2]) wanted.push([`${base} ${round}/2`, { delayUs: ref }], [`delay +${o.delayUs} µs ${round}/2`, { delayUs: ref + o.delayUs }]);
  } else {
    wanted.push([base, { delayUs: ref }]);
  }
  if (o.lossPct !== undefined) wanted.push([`loss ${o.lossPct} %`, { delayUs: ref, lossPct: o.lossPct }]);
  return wanted.map(([label, impairment], i) => ({
    label, impairment,
    stream: expandStreams({
      count: 1, svIdPattern: `VM${i + 1}`, appIdBase: 0x4000 + i, dstMacBase: `01:0c:cd:04:00:0${i}`, srcMacBase: `02:53:56:00:01:0${i + 1}`,
      vlan: { id: 0, priority: 4 }, freqHz: 50, samplesPerCycle: 80, asdusPerFrame: o.asdus ?? 8, confRev: 1, smpSynch: 2, simulated: false,
      waveform: DEFAULT_WAVEFORM,
    })[0]!,
  }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A timeout for a race: it does not keep the process alive once the race is decided elsewhere. */
const deadline = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/** A command in the guest whose output is kept; resolves `ready` once its stderr matches. */
export async function inGuest(runDir: string, argv: string[], readyRe: RegExp | null): Promise<{ h: LabExecHandle; ready: Promise<void>; output: () => string }> {
  let out = '';
  let ready!: () => void;
  const readyP = new Promise<void>((r) => { ready = r; });
  if (!readyRe) ready();
  const h = await labExec(runDir, 'vm', argv, {
    stdout: (b) => { out += b.toString(); },
    stderr: (b) => { out += b.toString(); if (readyRe?.test(out)) ready(); },
  });
  return { h, ready: readyP, output: () => out };
}

export async function runVmDemo(o: VmDemoOptions): Promise<VmDemoResult> {
  const out = resolve(o.outDir);
  if (existsSync(join(out, 'trace-vm'))) throw new SvtraceError('USAGE', `${out} already holds a demo run`, { hint: 'give another --out directory, or remove this one' });
  mkdirSync(out, { recursive: true });
  const runDir = join(out, 'lab');
  const phases = vmPhases(o);
  const children: Array<Child<unknown>> = [];
  const guestJobs: LabExecHandle[] = [];
  const traceStop = new AbortController();
  const onAbort = () => { traceStop.abort(); for (const c of children) c.stop(); for (const g of guestJobs) g.signal('SIGINT'); };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let traceOutcome: Promise<{ result: TraceRunResult } | { error: unknown }> | null = null;
  o.log('lab: building publisher → bridge → tap → QEMU guest');
  // a deep tap queue: under TCG the guest stalls for hundreds of ms at times; frames wait instead of dropping
  const lab = (await labUp({ runDir, switch: 'bridge', vm: 'qemu', prefix: o.prefix ?? `sq${process.pid % 1000}`, tapQueueFrames: 20_000 }, { onProgress: (m) => o.log(`lab: ${m}`) })).topology;
  try {
    const vm = lab.vm!;
    if (vm.accel === 'tcg') o.log(`lab: ${vm.accelReason}`);
    const cli = join(svtraceRoot(), 'bin', 'svtrace.js');
    // what the tracers match: the phases' frames, as a capture both read (the guest through the share)
    const layoutsFile = join(vm.share, 'layouts.pcap');
    await writeCaptureFile(layoutsFile, phases.map((p, i) => ({ tsNs: BigInt(i), data: frameTemplate(p.stream).bytes })), { format: 'pcap-ns' });
    const guestConfig = join(vm.share, 'trace-vm.toml');
    writeFileSync(guestConfig, [
      '# the point after the guest\'s hop: the application port receives the frame',
      '# netem\'s queue on the hop: in and out of the qdisc of its port',
      '[[trace.points]]', `name = "${QDISC_IN}"`, 'probe = "tracepoint:net:net_dev_queue"', `interface = "${GUEST_HOP_IF}"`, 'after = "T3"', '',
      '[[trace.points]]', `name = "${QDISC_OUT}"`, 'probe = "tracepoint:net:net_dev_start_xmit"', `interface = "${GUEST_HOP_IF}"`, `after = "${QDISC_IN}"`, '',
      '[[trace.points]]', `name = "${HOP_POINT}"`, 'probe = "tracepoint:net:netif_receive_skb"', `interface = "${GUEST_APP_IF}"`, `after = "${QDISC_OUT}"`, '',
    ].join('\n'));
    o.log(`hop guest: ${vm.guestIf} → netem → ${GUEST_APP_IF}, where the application listens`);
    await applyImpairment(lab, 'guest', phases[0]!.impairment);

    o.log(`subscribe: the application in the guest, on ${GUEST_APP_IF}`);
    const totalS = phases.length * (o.durationS + 5) + 1200;
    const sub = await inGuest(runDir, [cli, 'subscribe', '-i', GUEST_APP_IF, '-d', String(totalS)], /receiving on/);
    guestJobs.push(sub.h);
    const vmRecordInShare = join(vm.share, 'trace-vm');
    o.log(`trace: the VM's points T3 (${vm.guestIf}), ${QDISC_IN} and ${QDISC_OUT} (netem's queue on ${GUEST_HOP_IF}), ${HOP_POINT} (${GUEST_APP_IF}) and T4 (the subscriber's recvmsg), traced inside the guest${o.guestEngine === 'bpftrace' && vm.accel === 'tcg' ? ' (bpftrace takes minutes to start under TCG)' : ''}`);
    const vmTrace = await inGuest(runDir, [cli, 'trace', ...(o.guestEngine ? ['--engine', o.guestEngine] : []), '--config', guestConfig, '--machine', 'vm', '--vm-if', vm.guestIf, '--subscriber-comm', 'svtrace-rx',
      '--layouts-from', layoutsFile, '--record', vmRecordInShare], /svtrace: tracing/);
    guestJobs.push(vmTrace.h);
    const attached = await Promise.race([vmTrace.ready.then(() => 'ready' as const), vmTrace.h.done.then(() => 'exited' as const), deadline(o.attachTimeoutMs ?? 900_000).then(() => 'timeout' as const)]);
    if (attached !== 'ready') {
      throw new SvtraceError('DEMO_VM_TRACE_FAILED', `the guest's tracer ${attached === 'exited' ? 'exited' : 'did not attach in time'}: ${vmTrace.output().trim().split('\n').slice(-3).join(' / ')}`, {
        hint: `run it by hand: svtrace lab exec --run-dir ${runDir} vm -- svtrace trace --machine vm --vm-if ${vm.guestIf}`,
      });
    }
    await sub.ready;

    o.log('trace: the hypervisor\'s points T1, T2 and T2qemu (where QEMU takes the frame off the tap)');
    const tap = qemuTapPoint({ name: lab.hostVmIf });
    let started!: () => void;
    const startedP = new Promise<'started'>((r) => { started = () => r('started'); });
    traceOutcome = runTrace({
      trace: {
        role: 'hypervisor', ingress: { name: lab.hostPubIf }, vmPort: { name: lab.hostVmIf },
        layouts: phases.map((p) => layoutFromFrame(frameTemplate(p.stream).bytes)),
        streams: phases.map((p) => ({ svId: p.stream.svId, appId: p.stream.appId, smpCntWrap: sampleRate(p.stream) })),
        ...(tap.point ? { points: [tap.point] } : {}),
      },
      limitsUs: { ...DEFAULT_LIMITS_US }, recordDir: join(out, 'trace-hypervisor'), command: ['demo', '--vm', 'qemu'], signal: traceStop.signal, stopOnSignals: false,
      onWarning: (m) => o.log(`trace: warning: ${m}`), log: (l) => o.log(l), onStarted: () => started(),
    }).then((result) => ({ result }), (error: unknown) => ({ error }));
    const first = o.signal?.aborted ? 'started' : await Promise.race([startedP, traceOutcome]);
    if (first !== 'started' && 'error' in first) throw first.error;

    const results: VmPhaseResult[] = [];
    for (const [i, p] of phases.entries()) {
      if (o.signal?.aborted) break;
      if (i > 0) await applyImpairment(lab, 'guest', p.impairment);
      const before = await guestNetemCounters(lab);
      o.log(`phase ${i + 1}/${phases.length}, ${p.label} (hop guest: ${describeImpairment(p.impairment)}): stream ${p.stream.svId}, 4000 samples/s in ${p.stream.asdusPerFrame} ASDUs a frame for ${o.durationS} s (T0)`);
      const pub = inChild<PublishResult>('publisher', { kind: 'publish', options: { streams: [p.stream], ifname: lab.pubIf, netns: lab.pubNetns, durationS: o.durationS, recordDir: join(out, `publish-${i + 1}`), fifoPriority: 50 } });
      children.push(pub);
      const publish = await pub.result;
      await sleep(1500); // the hop's queue and the guest empty before the counters are read
      const after = await guestNetemCounters(lab);
      const netem = before && after ? { sent: after.sent - before.sent, dropped: after.dropped - before.dropped } : null;
      results.push({ label: p.label, svId: p.stream.svId, impairment: p.impairment, publish, netem });
      if (netem) o.log(`phase ${i + 1}: published ${publish.framesSent} frames; netem on the hop passed ${netem.sent} and dropped ${netem.dropped}`);
    }
    o.log('stopping the tracers (the guest\'s drains its backlog first)');
    traceStop.abort();
    const hyp = await traceOutcome;
    traceOutcome = null;
    vmTrace.h.signal('SIGINT');
    const vmCode = await vmTrace.h.done;
    sub.h.signal('SIGINT');
    await sub.h.done;
    if (vmCode !== 0 || !existsSync(join(vmRecordInShare, 'manifest.json'))) {
      throw new SvtraceError('DEMO_VM_TRACE_FAILED', `the guest's tracer ended with exit code ${vmCode}: ${vmTrace.output().trim().split('\n').slice(-3).join(' / ')}`, { hint: 'see its output above' });
    }
    // the share goes with the lab: keep the guest's record beside the others
    const vmRecord = join(out, 'trace-vm');
    cpSync(vmRecordInShare, vmRecord, { recursive: true });
    if ('error' in hyp) o.log(`trace: the hypervisor's tracer failed: ${(hyp.error as Error).message}`);
    const records = [...results.map((_, i) => join(out, `publish-${i + 1}`)), join(out, 'trace-hypervisor'), vmRecord].filter((d) => existsSync(join(d, 'manifest.json')));
    return { outDir: out, records, vmRecord, phases: results, lab, hypervisorTrace: 'result' in hyp ? hyp.result : null, vmTraceOutput: vmTrace.output() };
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    traceStop.abort();
    for (const c of children) c.stop();
    for (const g of guestJobs) g.signal('SIGINT');
    await Promise.allSettled(children.map((c) => c.result));
    if (traceOutcome) await traceOutcome;
    o.log('lab: down');
    await labDown(runDir).catch((e: unknown) => o.log(`lab: down failed: ${(e as Error).message}; run svtrace lab down --run-dir ${runDir}`));
  }
}
