/**
 * What a host's /proc and /sys say about its real-time settings, as plain
 * data (HostFacts). Reads only, under a root directory, so that tests can
 * point it at a fake tree. `checkTuning` judges these facts.
 */
import { dirname } from 'node:path';
import { cmdlineArg, listDir, parseCpuList, readText, resolveLink, type HostRoot } from './host.ts';

export interface IdleState {
  name: string;
  /** Exit latency in µs, as the kernel states it. */
  latencyUs: number;
  disabled: boolean;
}

export interface CpuFacts {
  cpu: number;
  /** null when the kernel has no cpufreq for this CPU. */
  governor: string | null;
  /** null when the kernel has no cpuidle for this CPU. */
  idleStates: IdleState[] | null;
  /** CPUs sharing this CPU's core (itself included), null when unknown. */
  siblings: number[] | null;
}

export interface NicIrq {
  irq: number;
  /** The action name in /proc/interrupts (e.g. "eth0-TxRx-0", "virtio2-input.0"). */
  name: string;
  affinity: number[] | null;
  effective: number[] | null;
}

export interface NicFacts {
  name: string;
  /** /sys/class/net/NAME exists. */
  exists: boolean;
  /** Has a device behind it (PCI, virtio...), i.e. is not veth, bridge, tap, lo. */
  physical: boolean;
  irqs: NicIrq[];
}

export type SchedPolicy = 'other' | 'fifo' | 'rr' | 'batch' | 'idle' | 'deadline' | 'unknown';

export interface ThreadFacts {
  pid: number;
  tid: number;
  comm: string;
  policy: SchedPolicy;
  rtPriority: number;
  affinity: number[] | null;
  timerSlackNs: number | null;
}

export interface SwapArea {
  name: string;
  sizeKb: number;
  usedKb: number;
}

export interface HostFacts {
  /** /proc/sys/kernel/version, as `uname -v` prints it. */
  kernelVersion: string | null;
  /** /sys/kernel/realtime: true when it reads 1, null when absent. */
  realtimeFlag: boolean | null;
  cmdline: string | null;
  /** From the kernel command line; null when the argument is absent. */
  args: { isolcpus: string | null; nohzFull: string | null; rcuNocbs: string | null; irqaffinity: string | null };
  /** /sys/devices/system/cpu/isolated and nohz_full; null when the file is absent. */
  isolated: number[] | null;
  nohzFull: number[] | null;
  online: number[] | null;
  smtActive: boolean | null;
  rtRuntimeUs: number | null;
  rtPeriodUs: number | null;
  cpus: CpuFacts[];
  nics: NicFacts[];
  /** Threads of qemu-system-* processes, by process. */
  qemu: { pid: number; comm: string; threads: ThreadFacts[] }[];
  /** Threads of the subscriber (by comm or pid); [] when none matched. */
  subscriber: ThreadFacts[];
  irqbalance: boolean;
  swaps: SwapArea[] | null;
  swappiness: number | null;
}

export interface ProbeOptions {
  /** Interfaces whose IRQs to read; default: every physical one. */
  interfaces?: readonly string[];
  /** Thread name of the subscriber (exact, as in /proc/PID/task/TID/comm). */
  subscriberComm?: string;
  /** Process id of the subscriber (all its threads). */
  subscriberPid?: number;
}

const num = (s: string | null): number | null => (s !== null && /^-?\d+$/.test(s.trim()) ? Number(s.trim()) : null);

function cpuFacts(h: HostRoot, cpu: number): CpuFacts {
  const base = `/sys/devices/system/cpu/cpu${cpu}`;
  const stateDirs = listDir(h, `${base}/cpuidle`).filter((d) => /^state\d+$/.test(d)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  const idleStates = stateDirs.length === 0 ? null : stateDirs.map((d) => ({
    name: readText(h, `${base}/cpuidle/${d}/name`) ?? d,
    latencyUs: num(readText(h, `${base}/cpuidle/${d}/latency`)) ?? 0,
    disabled: readText(h, `${base}/cpuidle/${d}/disable`) === '1',
  }));
  return {
    cpu,
    governor: readText(h, `${base}/cpufreq/scaling_governor`),
    idleStates,
    siblings: parseCpuList(readText(h, `${base}/topology/thread_siblings_list`)),
  };
}

/** /proc/interrupts: IRQ number → action name (the last column). */
export function interruptNames(text: string | null): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of (text ?? '').split('\n').slice(1)) {
    const m = /^\s*(\d+):/.exec(line);
    if (!m) continue;
    const words = line.trim().split(/\s+/);
    out.set(Number(m[1]), words.at(-1) ?? '');
  }
  return out;
}

function nicFacts(h: HostRoot, name: string, names: Map<number, string>): NicFacts {
  const device = resolveLink(h, `/sys/class/net/${name}/device`);
  const irqs = new Set<number>();
  if (device) {
    // A PCI NIC lists its MSI vectors; a virtio NIC's vectors belong to its PCI parent.
    for (const dir of /\/virtio\d+$/.test(device) ? [device, dirname(device)] : [device]) {
      for (const e of listDir(h, `${dir}/msi_irqs`)) if (/^\d+$/.test(e)) irqs.add(Number(e));
    }
    const legacy = num(readText(h, `${device}/irq`));
    if (legacy !== null && legacy > 0) irqs.add(legacy);
  }
  // Drivers name their queues after the interface (eth0-TxRx-0, mlx5 after the PCI address, virtio after the device).
  const deviceBase = device?.split('/').at(-1) ?? null;
  for (const [irq, action] of names) {
    if (action === name || action.startsWith(`${name}-`) || (deviceBase && /^virtio\d+$/.test(deviceBase) && action.startsWith(`${deviceBase}-`))) irqs.add(irq);
  }
  return {
    name,
    exists: resolveLink(h, `/sys/class/net/${name}`) !== null,
    physical: device !== null,
    irqs: [...irqs].sort((a, b) => a - b).filter((irq) => names.has(irq)).map((irq) => ({
      irq,
      name: names.get(irq) ?? '',
      affinity: parseCpuList(readText(h, `/proc/irq/${irq}/smp_affinity_list`)),
      effective: parseCpuList(readText(h, `/proc/irq/${irq}/effective_affinity_list`)),
    })),
  };
}

const POLICIES: SchedPolicy[] = ['other', 'fifo', 'rr', 'batch', 'unknown', 'idle', 'deadline'];

/** A thread's scheduling from /proc/PID/task/TID/stat (fields 40, 41) and status; null when it is gone. */
export function threadFacts(h: HostRoot, pid: number, tid: number): ThreadFacts | null {
  const dir = `/proc/${pid}/task/${tid}`;
  const stat = readText(h, `${dir}/stat`);
  if (stat === null) return null;
  // The comm (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const close = stat.lastIndexOf(')');
  const rest = stat.slice(close + 2).split(' ');
  const rtPriority = Number(rest[40 - 3] ?? 0), policy = Number(rest[41 - 3] ?? -1);
  const status = readText(h, `${dir}/status`) ?? '';
  const aff = /^Cpus_allowed_list:\s*(.*)$/m.exec(status);
  return {
    pid, tid,
    comm: readText(h, `${dir}/comm`) ?? stat.slice(stat.indexOf('(') + 1, close),
    policy: POLICIES[policy] ?? 'unknown',
    rtPriority: Number.isFinite(rtPriority) ? rtPriority : 0,
    affinity: aff ? parseCpuList(aff[1]!) : null,
    // /proc/TID/timerslack_ns is the thread's own (not listed in /proc, but there for every thread).
    timerSlackNs: num(readText(h, `/proc/${tid}/timerslack_ns`)),
  };
}

const pids = (h: HostRoot) => listDir(h, '/proc').filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b);
const tids = (h: HostRoot, pid: number) => listDir(h, `/proc/${pid}/task`).filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b);

function swaps(h: HostRoot): SwapArea[] | null {
  const text = readText(h, '/proc/swaps');
  if (text === null) return null;
  return text.split('\n').slice(1).filter((l) => l.trim()).map((l) => {
    const w = l.trim().split(/\s+/);
    return { name: w[0] ?? '', sizeKb: Number(w[2] ?? 0), usedKb: Number(w[3] ?? 0) };
  });
}

export function probeHost(h: HostRoot, o: ProbeOptions = {}): HostFacts {
  const cmdline = readText(h, '/proc/cmdline');
  const online = parseCpuList(readText(h, '/sys/devices/system/cpu/online'));
  const cpuDirs = listDir(h, '/sys/devices/system/cpu').filter((d) => /^cpu\d+$/.test(d)).map((d) => Number(d.slice(3))).sort((a, b) => a - b);
  const names = interruptNames(readText(h, '/proc/interrupts'));
  const nicNames = o.interfaces?.length ? [...o.interfaces] : listDir(h, '/sys/class/net').filter((n) => resolveLink(h, `/sys/class/net/${n}/device`) !== null);
  const qemu: HostFacts['qemu'] = [];
  const subscriber: ThreadFacts[] = [];
  let irqbalance = false;
  for (const pid of pids(h)) {
    const comm = readText(h, `/proc/${pid}/comm`);
    if (comm === null) continue;
    if (comm === 'irqbalance') irqbalance = true;
    const isQemu = comm.startsWith('qemu-system');
    const wantAll = isQemu || pid === o.subscriberPid;
    if (!wantAll && o.subscriberComm === undefined) continue;
    const threads: ThreadFacts[] = [];
    for (const tid of tids(h, pid)) {
      if (!wantAll && readText(h, `/proc/${pid}/task/${tid}/comm`) !== o.subscriberComm) continue;
      const t = threadFacts(h, pid, tid);
      if (t) threads.push(t);
    }
    if (isQemu) qemu.push({ pid, comm, threads });
    if (pid === o.subscriberPid) subscriber.push(...threads);
    else if (o.subscriberComm !== undefined) subscriber.push(...threads.filter((t) => t.comm === o.subscriberComm));
  }
  return {
    kernelVersion: readText(h, '/proc/sys/kernel/version'),
    realtimeFlag: readText(h, '/sys/kernel/realtime') === null ? null : readText(h, '/sys/kernel/realtime') === '1',
    cmdline,
    args: {
      isolcpus: cmdline === null ? null : cmdlineArg(cmdline, 'isolcpus'),
      nohzFull: cmdline === null ? null : cmdlineArg(cmdline, 'nohz_full'),
      rcuNocbs: cmdline === null ? null : cmdlineArg(cmdline, 'rcu_nocbs'),
      irqaffinity: cmdline === null ? null : cmdlineArg(cmdline, 'irqaffinity'),
    },
    isolated: parseCpuList(readText(h, '/sys/devices/system/cpu/isolated')),
    nohzFull: parseCpuList(readText(h, '/sys/devices/system/cpu/nohz_full')),
    online,
    smtActive: readText(h, '/sys/devices/system/cpu/smt/active') === null ? null : readText(h, '/sys/devices/system/cpu/smt/active') === '1',
    rtRuntimeUs: num(readText(h, '/proc/sys/kernel/sched_rt_runtime_us')),
    rtPeriodUs: num(readText(h, '/proc/sys/kernel/sched_rt_period_us')),
    cpus: cpuDirs.filter((c) => online === null || online.includes(c)).map((c) => cpuFacts(h, c)),
    nics: nicNames.map((n) => nicFacts(h, n, names)),
    qemu,
    subscriber,
    irqbalance,
    swaps: swaps(h),
    swappiness: num(readText(h, '/proc/sys/vm/swappiness')),
  };
}
