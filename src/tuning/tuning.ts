/**
 * `checkTuning({ root })`: read the host's real-time settings under `root`
 * and judge each one for SV latency. Reads only; changes nothing.
 */
import { SvtraceError } from '../errors.ts';
import { printable } from '../util/text.ts';
import { probeHost, type HostFacts } from './probe.ts';
import { checkCpufreq, checkCpuidle, checkIsolation, checkPreempt, checkRtThrottling, checkSmt, checkSwap } from './checks-kernel.ts';
import { checkIrqs, checkQemu, checkSubscriber, checkTimerSlack, isVcpu, pinned } from './checks-threads.ts';
import { isolcpusList } from './host.ts';
import type { TuningContext, TuningFinding, TuningLevel, TuningReport } from './types.ts';

/** The thread svtrace's own subscriber receives in. */
export const DEFAULT_SUBSCRIBER_COMM = 'svtrace-rx';

export interface TuningOptions {
  /** Directory holding proc/ and sys/ (default '/'). */
  root?: string;
  /** NICs whose interrupts to check; default every physical NIC. */
  interfaces?: readonly string[];
  /** Thread name of the subscriber (default svtrace-rx unless a pid is given). */
  subscriberComm?: string;
  subscriberPid?: number;
}

const IFNAME = /^[A-Za-z0-9_.:-]{1,15}$/;
const COMM = /^[\x20-\x7e]{1,15}$/;

export function validateTuningOptions(o: TuningOptions): void {
  for (const i of o.interfaces ?? []) {
    if (!IFNAME.test(i) || i === '.' || i === '..') throw new SvtraceError('TUNING_INTERFACE_INVALID', `--interface ${printable(i)} is not an interface name`, { hint: 'give a name such as eth0 (1 to 15 letters, digits, _ . : -)' });
  }
  if (o.subscriberComm !== undefined && (!COMM.test(o.subscriberComm) || o.subscriberComm.includes('/'))) {
    throw new SvtraceError('TUNING_COMM_INVALID', `--subscriber-comm ${printable(o.subscriberComm)} is not a thread name`, { hint: 'a thread name is 1 to 15 printable characters, as in /proc/PID/task/TID/comm (e.g. svtrace-rx)' });
  }
  if (o.subscriberPid !== undefined && (!Number.isInteger(o.subscriberPid) || o.subscriberPid < 1 || o.subscriberPid > 4_194_304)) {
    throw new SvtraceError('TUNING_PID_INVALID', `--pid ${o.subscriberPid} is not a process id`, { hint: 'give the pid of the subscriber process' });
  }
}

export function tuningContext(f: HostFacts, o: TuningOptions): TuningContext {
  const online = f.online ?? f.cpus.map((c) => c.cpu);
  const fromArg = f.args.isolcpus === null ? [] : isolcpusList(f.args.isolcpus) ?? [];
  const isolated = (f.isolated !== null && f.isolated.length ? f.isolated : fromArg).filter((c) => online.includes(c));
  return {
    online,
    isolated,
    housekeeping: online.filter((c) => !isolated.includes(c)),
    suggestIsolate: online.length > 1 ? online.slice(1) : [],
    subscriberLabel: o.subscriberPid !== undefined ? `the subscriber (pid ${o.subscriberPid})` : `the subscriber "${printable(o.subscriberComm ?? DEFAULT_SUBSCRIBER_COMM)}"`,
  };
}

/** Judges facts already read (pure). */
export function judgeTuning(f: HostFacts, o: TuningOptions = {}): TuningFinding[] {
  const cx = tuningContext(f, o);
  const subscriberCpus = [...new Set(f.subscriber.filter((t) => pinned(t, cx.online)).flatMap((t) => t.affinity ?? []))];
  const vcpuCpus = f.qemu.flatMap((q) => q.threads.filter((t) => isVcpu(t.comm) && pinned(t, cx.online)).flatMap((t) => t.affinity ?? []));
  const target = [...new Set([...subscriberCpus, ...vcpuCpus])].sort((a, b) => a - b);
  return [
    checkPreempt(f),
    checkRtThrottling(f),
    ...checkIsolation(f, cx, subscriberCpus),
    ...checkIrqs(f, cx),
    checkCpufreq(f),
    checkCpuidle(f),
    checkSmt(f, cx, target, [subscriberCpus.length ? cx.subscriberLabel : '', vcpuCpus.length ? 'QEMU\'s vCPUs' : ''].filter(Boolean).join(' and ')),
    ...checkQemu(f, cx),
    checkSubscriber(f, cx),
    checkTimerSlack(f, cx),
    checkSwap(f),
  ];
}

export function checkTuning(o: TuningOptions = {}): TuningReport {
  validateTuningOptions(o);
  const root = o.root ?? '/';
  const comm = o.subscriberComm ?? (o.subscriberPid === undefined ? DEFAULT_SUBSCRIBER_COMM : undefined);
  const facts = probeHost({ root }, { interfaces: o.interfaces, subscriberComm: comm, subscriberPid: o.subscriberPid });
  const findings = judgeTuning(facts, o);
  const counts: Record<TuningLevel, number> = { pass: 0, warn: 0, fail: 0, unknown: 0 };
  for (const x of findings) counts[x.level]++;
  return { format: 'svtrace-tuning', formatVersion: 1, root, facts, findings, counts };
}
