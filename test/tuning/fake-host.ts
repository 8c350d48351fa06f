/**
 * A fake /proc and /sys in a temp dir: a map of host paths to file contents
 * (null removes a path of the base; a `{ link }` makes a relative symlink, as
 * sysfs has). `tunedHost()` is a well-tuned RT hypervisor on which every
 * check passes; cases change a few paths of it.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export type FakeEntry = string | { link: string } | null;
export type FakeTree = Record<string, FakeEntry>;

export function writeTree(tree: FakeTree): string {
  const root = mkdtempSync(join(tmpdir(), `svtrace-tuning-${process.pid}-`));
  for (const [p, v] of Object.entries(tree)) {
    if (v === null) continue;
    const full = join(root, p);
    mkdirSync(dirname(full), { recursive: true });
    if (typeof v === 'string') writeFileSync(full, v.endsWith('\n') || v === '' ? v : v + '\n');
    else symlinkSync(v.link, full);
  }
  return root;
}

export const removeTree = (root: string) => rmSync(root, { recursive: true, force: true });

/** /proc/PID/task/TID/stat with rt_priority (field 40) and policy (field 41: 0 other, 1 fifo, 2 rr). */
export function statLine(tid: number, comm: string, policy: number, rtPriority: number): string {
  const fields4to39 = Array(36).fill('0').join(' ');
  return `${tid} (${comm}) S ${fields4to39} ${rtPriority} ${policy} 0 0 0`;
}

export interface FakeThread { pid: number; tid: number; comm: string; policy: number; prio: number; cpus: string; slackNs: number }

export function thread(t: FakeThread): FakeTree {
  const d = `/proc/${t.pid}/task/${t.tid}`;
  return {
    [`${d}/stat`]: statLine(t.tid, t.comm, t.policy, t.prio),
    [`${d}/comm`]: t.comm,
    [`${d}/status`]: `Name:\t${t.comm}\nCpus_allowed:\tf\nCpus_allowed_list:\t${t.cpus}\n`,
    [`/proc/${t.tid}/timerslack_ns`]: String(t.slackNs),
  };
}

const cpu = (n: number, siblings = String(n)): FakeTree => ({
  [`/sys/devices/system/cpu/cpu${n}/cpufreq/scaling_governor`]: 'performance',
  [`/sys/devices/system/cpu/cpu${n}/topology/thread_siblings_list`]: siblings,
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state0/name`]: 'POLL',
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state0/latency`]: '0',
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state0/disable`]: '0',
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state1/name`]: 'C1',
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state1/latency`]: '2',
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state1/disable`]: '0',
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state2/name`]: 'C6',
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state2/latency`]: '133',
  [`/sys/devices/system/cpu/cpu${n}/cpuidle/state2/disable`]: '1',
});

const PCI = '/sys/devices/pci0000:00/0000:01:00.0';

/**
 * 4 CPUs, 1-3 isolated (nohz_full, rcu_nocbs), PREEMPT_RT, RT not throttled,
 * ens1f0's two queues pinned to CPU 0, performance governor, C6 disabled,
 * no SMT, QEMU's vCPUs at SCHED_FIFO on CPUs 2 and 3 with the emulator on 0,
 * the subscriber "svtrace-rx" at SCHED_FIFO 50 on CPU 1, no swap.
 */
export function tunedHost(): FakeTree {
  return {
    '/proc/sys/kernel/version': '#1 SMP PREEMPT_RT Debian 6.1.158-1 (2025-11-20)',
    '/sys/kernel/realtime': '1',
    '/proc/cmdline': 'BOOT_IMAGE=/vmlinuz-6.1.0-rt-amd64 root=/dev/sda1 ro isolcpus=managed_irq,domain,1-3 nohz_full=1-3 rcu_nocbs=1-3 irqaffinity=0 quiet',
    '/sys/devices/system/cpu/online': '0-3',
    '/sys/devices/system/cpu/isolated': '1-3',
    '/sys/devices/system/cpu/nohz_full': '1-3',
    '/sys/devices/system/cpu/smt/active': '0',
    '/proc/sys/kernel/sched_rt_runtime_us': '-1',
    '/proc/sys/kernel/sched_rt_period_us': '1000000',
    '/proc/sys/vm/swappiness': '10',
    '/proc/swaps': 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority',
    ...cpu(0), ...cpu(1), ...cpu(2), ...cpu(3),
    // a PCI NIC with two MSI-X queues, and a veth
    [`${PCI}/net/ens1f0/device`]: { link: '../../../0000:01:00.0' },
    [`${PCI}/msi_irqs/120`]: 'msix',
    [`${PCI}/msi_irqs/121`]: 'msix',
    '/sys/class/net/ens1f0': { link: '../../devices/pci0000:00/0000:01:00.0/net/ens1f0' },
    '/sys/devices/virtual/net/veth0/mtu': '1500',
    '/sys/class/net/veth0': { link: '../../devices/virtual/net/veth0' },
    '/proc/interrupts': [
      '           CPU0       CPU1       CPU2       CPU3',
      '  0:         12          0          0          0   IO-APIC   2-edge      timer',
      '120:     400123          0          0          0   PCI-MSI 524288-edge      ens1f0-TxRx-0',
      '121:     398877          0          0          0   PCI-MSI 524289-edge      ens1f0-TxRx-1',
      'LOC:     111111      22222      33333      44444   Local timer interrupts',
    ].join('\n'),
    '/proc/irq/120/smp_affinity_list': '0',
    '/proc/irq/120/effective_affinity_list': '0',
    '/proc/irq/121/smp_affinity_list': '0',
    '/proc/irq/121/effective_affinity_list': '0',
    // QEMU (it sets its own timer slack to 1 ns) and the subscriber
    '/proc/500/comm': 'qemu-system-x86',
    ...thread({ pid: 500, tid: 500, comm: 'qemu-system-x86', policy: 0, prio: 0, cpus: '0', slackNs: 1 }),
    ...thread({ pid: 500, tid: 501, comm: 'CPU 0/KVM', policy: 1, prio: 1, cpus: '2', slackNs: 1 }),
    ...thread({ pid: 500, tid: 502, comm: 'CPU 1/KVM', policy: 1, prio: 1, cpus: '3', slackNs: 1 }),
    ...thread({ pid: 500, tid: 503, comm: 'IO mon_iothread', policy: 0, prio: 0, cpus: '0', slackNs: 1 }),
    '/proc/600/comm': 'svtrace',
    ...thread({ pid: 600, tid: 600, comm: 'svtrace', policy: 0, prio: 0, cpus: '0', slackNs: 50_000 }),
    ...thread({ pid: 600, tid: 601, comm: 'svtrace-rx', policy: 1, prio: 50, cpus: '1', slackNs: 50_000 }),
  };
}
