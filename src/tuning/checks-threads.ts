/**
 * Checks of what runs where: the NIC's interrupts, QEMU's vCPU and emulator
 * threads, the subscriber's scheduling, timer slack. Pure functions of
 * HostFacts.
 */
import { printable } from '../util/text.ts';
import { formatCpuList } from './host.ts';
import type { HostFacts, ThreadFacts } from './probe.ts';
import type { TuningContext, TuningFinding } from './types.ts';

const isRt = (t: ThreadFacts) => t.policy === 'fifo' || t.policy === 'rr' || t.policy === 'deadline';
const sched = (t: ThreadFacts) => (isRt(t) ? `SCHED_${t.policy.toUpperCase()} ${t.rtPriority}` : `SCHED_${t.policy.toUpperCase()}`);
const cpus = (t: ThreadFacts) => (t.affinity === null ? '?' : formatCpuList(t.affinity));
const name = (t: ThreadFacts) => `"${printable(t.comm)}" (tid ${t.tid})`;
const union = (ts: readonly ThreadFacts[]) => [...new Set(ts.flatMap((t) => t.affinity ?? []))].sort((a, b) => a - b);

/** A thread pinned to fewer CPUs than are online counts as pinned. */
export const pinned = (t: ThreadFacts, online: readonly number[]) => t.affinity !== null && t.affinity.length > 0 && t.affinity.length < Math.max(online.length, 2);

export const isVcpu = (comm: string) => /^CPU \d+\/(KVM|TCG)$/.test(comm);

export function checkIrqs(f: HostFacts, cx: TuningContext): TuningFinding[] {
  const check = 'irq-affinity';
  const meaning = 'the CPU that takes the NIC\'s interrupt also runs its softirq, where the frame crosses the switch to the VM port (Thyp): on an isolated CPU it preempts the vCPU or subscriber there; left free, irqbalance may move it next to them';
  if (f.nics.length === 0) return [{ check, level: 'unknown', found: 'no physical NIC found (only virtual interfaces: veth, bridges and taps take no interrupts); name one with --interface', meaning }];
  const hk = formatCpuList(cx.housekeeping.length && cx.isolated.length ? cx.housekeeping : cx.online.slice(0, 1));
  return f.nics.map((n): TuningFinding => {
    const subject = printable(n.name);
    if (!n.exists) return { check, subject, level: 'unknown', found: `no interface ${subject} in /sys/class/net`, meaning };
    if (!n.physical) return { check, subject, level: 'unknown', found: `${subject} is virtual (veth, bridge, tap: no device behind it), so it has no interrupt to steer; its frames are handled in the sender's context`, meaning };
    if (n.irqs.length === 0) return { check, subject, level: 'unknown', found: `no interrupt of ${subject} found in /proc/interrupts or its device's msi_irqs`, meaning };
    const list = n.irqs.map((q) => `${q.irq} ${printable(q.name)} → ${q.affinity === null ? '?' : formatCpuList(q.affinity)}${q.effective && q.affinity && formatCpuList(q.effective) !== formatCpuList(q.affinity) ? ` (now ${formatCpuList(q.effective)})` : ''}`);
    const found = `${subject}: ${n.irqs.length} IRQ(s): ${list.join(', ')}`;
    const steer = `for i in ${n.irqs.map((q) => q.irq).join(' ')}; do echo ${hk} > /proc/irq/$i/smp_affinity_list; done`;
    const balance = f.irqbalance ? '; stop irqbalance from moving them back: systemctl disable --now irqbalance (or IRQBALANCE_BANNED_CPULIST)' : '';
    const onIsolated = n.irqs.filter((q) => q.affinity?.some((c) => cx.isolated.includes(c)));
    if (cx.isolated.length && onIsolated.length) {
      return { check, subject, level: 'fail', found: `${found}; IRQ(s) ${onIsolated.map((q) => q.irq).join(', ')} may land on isolated CPUs ${formatCpuList(cx.isolated)}`, meaning, fix: `${steer}${balance}` };
    }
    const free = n.irqs.filter((q) => q.affinity !== null && cx.online.length > 1 && cx.online.every((c) => q.affinity!.includes(c)));
    if (free.length) {
      return { check, subject, level: 'warn', found: `${found}; ${free.length} of them may run on any CPU${f.irqbalance ? ' and irqbalance is running' : ''}`, meaning, fix: `pin them to the housekeeping CPUs: ${steer}${balance}` };
    }
    return { check, subject, level: 'pass', found, meaning: 'the NIC\'s interrupts stay on the CPUs given to them' };
  });
}

export function checkQemu(f: HostFacts, cx: TuningContext): TuningFinding[] {
  const vcpuMeaning = 'a vCPU is the VM\'s CPU: if it shares a host CPU or waits behind normal tasks, the guest\'s subscriber waits too (Ttrans, Tsub)';
  const emuMeaning = 'QEMU\'s emulator and I/O threads (virtio queues, timers) wake for every frame: on a vCPU\'s CPU they preempt the guest; the talk\'s tuned run pinned the emulator thread apart';
  if (f.qemu.length === 0) {
    const found = 'no qemu-system-* process running: nothing to check (run this on the hypervisor while the VM runs)';
    return [{ check: 'qemu-vcpu', level: 'unknown', found, meaning: vcpuMeaning }, { check: 'qemu-emulator', level: 'unknown', found, meaning: emuMeaning }];
  }
  return f.qemu.flatMap((q): TuningFinding[] => {
    const subject = `${printable(q.comm)} pid ${q.pid}`;
    const vcpus = q.threads.filter((t) => isVcpu(t.comm));
    const others = q.threads.filter((t) => !isVcpu(t.comm));
    const tcg = vcpus.some((t) => t.comm.endsWith('/TCG')) ? ' (TCG: an emulator, timings are not a real VM\'s)' : '';
    const vcpuList = vcpus.map((t) => `${name(t)} ${sched(t)} on ${cpus(t)}`).join(', ');
    let vcpu: TuningFinding;
    if (vcpus.length === 0) vcpu = { check: 'qemu-vcpu', subject, level: 'unknown', found: `no thread named "CPU n/KVM" or "CPU n/TCG" in pid ${q.pid}`, meaning: vcpuMeaning };
    else {
      const issues: string[] = [];
      const unpinned = vcpus.filter((t) => !pinned(t, cx.online) || (t.affinity?.length ?? 0) > 1);
      if (unpinned.length) issues.push(`${unpinned.length} vCPU(s) not pinned to one CPU`);
      const shared = vcpus.filter((t, i) => vcpus.some((u, j) => j !== i && (t.affinity ?? []).some((c) => (u.affinity ?? []).includes(c))));
      if (shared.length) issues.push('vCPUs share CPUs');
      if (cx.isolated.length && vcpus.some((t) => !(t.affinity ?? []).every((c) => cx.isolated.includes(c)))) issues.push(`not all on isolated CPUs (${formatCpuList(cx.isolated)})`);
      const normal = vcpus.filter((t) => !isRt(t));
      if (normal.length) issues.push(`${normal.length} at normal priority`);
      const cpuHint = cx.isolated.length ? formatCpuList(cx.isolated) : formatCpuList(cx.suggestIsolate);
      vcpu = issues.length
        ? { check: 'qemu-vcpu', subject, level: 'warn', found: `${issues.join('; ')}: ${vcpuList}${tcg}`, meaning: vcpuMeaning,
          fix: `pin each vCPU to its own isolated CPU and give it SCHED_FIFO: taskset -pc CPU TID; chrt -f -p 1 TID (CPUs ${cpuHint || 'to isolate'}; libvirt: <vcpupin>, <vcpusched scheduler='fifo' priority='1'>)` }
        : { check: 'qemu-vcpu', subject, level: 'pass', found: `${vcpuList}${tcg}`, meaning: 'each vCPU has its own CPU at real-time priority' };
    }
    const vcpuCpus = union(vcpus);
    const overlap = others.filter((t) => (t.affinity ?? []).some((c) => vcpuCpus.includes(c)));
    const emuList = others.slice(0, 6).map((t) => `${name(t)} ${sched(t)} on ${cpus(t)}`).join(', ') + (others.length > 6 ? `, … (${others.length} threads)` : '');
    const hk = formatCpuList(cx.housekeeping.filter((c) => !vcpuCpus.includes(c))) || formatCpuList(cx.online.filter((c) => !vcpuCpus.includes(c)));
    const emulator: TuningFinding = others.length === 0
      ? { check: 'qemu-emulator', subject, level: 'unknown', found: `no emulator thread listed for pid ${q.pid}`, meaning: emuMeaning }
      : overlap.length && vcpus.length
        ? { check: 'qemu-emulator', subject, level: 'warn', found: `${overlap.length} emulator/I/O thread(s) may run on the vCPUs' CPUs ${formatCpuList(vcpuCpus)}: ${emuList}`, meaning: emuMeaning,
          fix: `pin them apart from the vCPUs: taskset -pc ${hk || 'CPU'} TID for each (libvirt: <emulatorpin cpuset='${hk || 'CPU'}'/>, <iothreadpin>)` }
        : { check: 'qemu-emulator', subject, level: 'pass', found: `emulator/I/O threads apart from the vCPUs: ${emuList}`, meaning: 'they cannot preempt a vCPU' };
    return [vcpu, emulator];
  });
}

export function checkSubscriber(f: HostFacts, cx: TuningContext): TuningFinding {
  const check = 'subscriber-sched';
  const meaning = 'the subscriber\'s receive thread must run the moment a frame arrives: at normal priority it waits behind every other task of its CPU (Tsub), and unpinned it migrates and finds cold caches';
  if (f.subscriber.length === 0) return { check, level: 'unknown', found: `no thread of ${cx.subscriberLabel} running; name it with --subscriber-comm NAME or --pid PID while it receives`, meaning };
  const list = f.subscriber.map((t) => `${name(t)} ${sched(t)} on ${cpus(t)}`).join(', ');
  const issues: string[] = [];
  if (f.subscriber.some((t) => !isRt(t))) issues.push('not real-time');
  if (f.subscriber.some((t) => !pinned(t, cx.online))) issues.push('not pinned');
  if (cx.isolated.length && f.subscriber.some((t) => !(t.affinity ?? []).every((c) => cx.isolated.includes(c)))) issues.push('not on isolated CPUs');
  if (issues.length === 0) return { check, level: 'pass', found: list, meaning: 'it runs at real-time priority on CPUs of its own' };
  // A CPU to suggest: isolated (or to isolate), and not one a vCPU is pinned to.
  const vcpuCpus = union(f.qemu.flatMap((q) => q.threads.filter((t) => isVcpu(t.comm) && pinned(t, cx.online))));
  const candidates = cx.isolated.length ? cx.isolated : cx.suggestIsolate;
  const cpu = String(candidates.find((c) => !vcpuCpus.includes(c)) ?? candidates[0] ?? 'CPU');
  return { check, level: 'warn', found: `${issues.join(', ')}: ${list}`, meaning, fix: `chrt -f -p 50 TID; taskset -pc ${cpu} TID (svtrace subscribe: --fifo 50 --cpu ${cpu})` };
}

export function checkTimerSlack(f: HostFacts, cx: TuningContext): TuningFinding {
  const check = 'timer-slack';
  const meaning = 'the kernel may delay the end of a timed wait (poll, epoll_wait, nanosleep, QEMU\'s timers) by the thread\'s timer slack, 50 µs by default, to batch wake-ups; real-time threads have none';
  const vcpuAndEmu = f.qemu.flatMap((q) => q.threads);
  const threads = [...f.subscriber, ...vcpuAndEmu];
  if (threads.length === 0) return { check, level: 'unknown', found: `no subscriber (${cx.subscriberLabel}) or qemu-system-* thread running to check`, meaning };
  const slack = threads.filter((t) => !isRt(t) && (t.timerSlackNs ?? 0) > 1000);
  const unreadable = threads.filter((t) => !isRt(t) && t.timerSlackNs === null);
  if (slack.length) {
    const shown = slack.slice(0, 6).map((t) => `${name(t)} ${t.timerSlackNs} ns`).join(', ') + (slack.length > 6 ? `, … (${slack.length} threads)` : '');
    return { check, level: 'warn', found: `timer slack above 1 µs on normal-priority threads: ${shown}`, meaning, fix: 'echo 1 > /proc/TID/timerslack_ns for each (or prctl(PR_SET_TIMERSLACK, 1) in the application), or run them at SCHED_FIFO, which ignores the slack' };
  }
  if (unreadable.length === threads.length) return { check, level: 'unknown', found: `cannot read /proc/TID/timerslack_ns of ${unreadable.map(name).join(', ')}`, meaning };
  return { check, level: 'pass', found: `${threads.length} thread(s): real-time (slack ignored) or slack ≤ 1 µs`, meaning: 'their timed waits end on time' };
}
