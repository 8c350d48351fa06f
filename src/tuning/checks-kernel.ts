/**
 * Checks of the kernel and the CPUs: PREEMPT_RT, RT throttling, isolation
 * (isolcpus, nohz_full, rcu_nocbs), frequency governor, idle states, SMT
 * siblings, swap. Pure functions of HostFacts.
 */
import { formatCpuList, parseCpuList } from './host.ts';
import type { HostFacts } from './probe.ts';
import type { TuningContext, TuningFinding } from './types.ts';

const GRUB = '(in GRUB_CMDLINE_LINUX of /etc/default/grub, then update-grub and reboot)';
const covers = (set: readonly number[], sub: readonly number[]) => sub.every((c) => set.includes(c));

export function checkPreempt(f: HostFacts): TuningFinding {
  const check = 'kernel-preempt';
  const v = f.kernelVersion;
  if (f.realtimeFlag === true || (v !== null && /\bPREEMPT_RT\b/.test(v))) {
    return { check, level: 'pass', found: `PREEMPT_RT kernel (${v ?? '/sys/kernel/realtime = 1'})`, meaning: 'interrupts run as threads and most kernel locks can be preempted: a high-priority subscriber or vCPU waits for little kernel work' };
  }
  if (v === null && f.realtimeFlag === null) return { check, level: 'unknown', found: 'cannot read /proc/sys/kernel/version or /sys/kernel/realtime', meaning: 'whether the kernel is PREEMPT_RT decides how long kernel work can hold the subscriber\'s CPU' };
  const dynamic = v !== null && /\bPREEMPT_DYNAMIC\b/.test(v);
  return {
    check, level: 'fail',
    found: `not a PREEMPT_RT kernel (uname -v: ${v ?? '?'})`,
    meaning: 'softirqs and non-preemptible kernel sections can hold the subscriber\'s CPU for milliseconds: the max and p99.99 of Tsub and Thyp cannot be bounded',
    fix: `boot a PREEMPT_RT kernel (Debian: apt-get install linux-image-rt-amd64, then reboot into it)${dynamic ? '; meanwhile the kernel argument preempt=full makes this PREEMPT_DYNAMIC kernel fully preemptible' : ''}`,
  };
}

export function checkRtThrottling(f: HostFacts): TuningFinding {
  const check = 'rt-throttling';
  const run = f.rtRuntimeUs, period = f.rtPeriodUs;
  const meaning = 'a SCHED_FIFO subscriber that polls, or a vCPU at SCHED_FIFO, is stopped when its CPU has used the RT budget of the period: the samples of that pause are late by up to period − runtime';
  if (run === null) return { check, level: 'unknown', found: 'cannot read /proc/sys/kernel/sched_rt_runtime_us', meaning };
  if (run === -1) return { check, level: 'pass', found: 'kernel.sched_rt_runtime_us = -1: real-time tasks are never throttled', meaning: 'a busy SCHED_FIFO subscriber or vCPU keeps its CPU; keep such tasks on isolated CPUs, since nothing stops a runaway one' };
  const gapMs = period === null ? null : (period - run) / 1000;
  return {
    check, level: 'warn',
    found: `kernel.sched_rt_runtime_us = ${run} of sched_rt_period_us = ${period ?? '?'}: real-time tasks stop for ${gapMs === null ? '?' : gapMs} ms of every ${period === null ? '?' : period / 1000} ms once they use the rest`,
    meaning: `${meaning}; it matters on an RT host whose subscriber or vCPUs run flat out at SCHED_FIFO`,
    fix: 'sysctl -w kernel.sched_rt_runtime_us=-1 (persist it in /etc/sysctl.d/), with the RT tasks on isolated CPUs',
  };
}

export function checkIsolation(f: HostFacts, cx: TuningContext, subscriberCpus: readonly number[]): TuningFinding[] {
  const unknown = f.cmdline === null && f.isolated === null;
  const s = formatCpuList(cx.suggestIsolate);
  const hk = formatCpuList(cx.isolated.length ? cx.housekeeping : cx.online.filter((c) => !cx.suggestIsolate.includes(c)));
  const iso = formatCpuList(cx.isolated);
  const target = cx.isolated.length ? iso : s;
  const out: TuningFinding[] = [];

  const isoMeaning = 'isolated CPUs run only the tasks pinned there (the subscriber, the VM\'s vCPUs), so nothing queues ahead of a sample (in the talk\'s experiment, isolating them took the samples over 200 µs from 352 533 to 512 in 48 M)';
  if (unknown) out.push({ check: 'isolcpus', level: 'unknown', found: 'cannot read /proc/cmdline or /sys/devices/system/cpu/isolated', meaning: isoMeaning });
  else if (cx.isolated.length === 0) {
    out.push({
      check: 'isolcpus', level: 'fail', found: `no isolated CPU (online ${formatCpuList(cx.online)})`,
      meaning: `the subscriber and the vCPUs share every CPU with all other tasks, kernel threads and interrupts; ${isoMeaning}`,
      fix: cx.suggestIsolate.length ? `kernel arguments isolcpus=managed_irq,domain,${s} nohz_full=${s} rcu_nocbs=${s} irqaffinity=${hk} ${GRUB}, then pin the subscriber or the vCPUs there` : 'this host has one CPU: nothing can be isolated; give it more CPUs',
    });
  } else {
    const outside = subscriberCpus.filter((c) => !cx.isolated.includes(c));
    out.push(outside.length && subscriberCpus.length
      ? { check: 'isolcpus', level: 'warn', found: `CPUs ${iso} isolated (isolcpus=${f.args.isolcpus ?? '-'}), but ${cx.subscriberLabel} may run on ${formatCpuList(subscriberCpus)}`, meaning: 'isolation helps only the threads pinned to isolated CPUs', fix: `taskset -pc ${formatCpuList(cx.isolated.slice(0, 1))} TID for each thread of the subscriber` }
      : { check: 'isolcpus', level: 'pass', found: `CPUs ${iso} isolated (isolcpus=${f.args.isolcpus ?? '-'})`, meaning: isoMeaning });
  }

  const tickMeaning = 'without nohz_full the scheduler tick interrupts every CPU, isolated ones too, 100 to 1000 times a second (CONFIG_HZ); each tick delays whatever runs there';
  const nohz = f.nohzFull ?? [];
  if (unknown) out.push({ check: 'nohz_full', level: 'unknown', found: 'cannot read /proc/cmdline or /sys/devices/system/cpu/nohz_full', meaning: tickMeaning });
  else if (nohz.length && (cx.isolated.length === 0 || covers(nohz, cx.isolated))) out.push({ check: 'nohz_full', level: 'pass', found: `nohz_full CPUs ${formatCpuList(nohz)}`, meaning: 'the tick stops on these CPUs while one task runs there' });
  else {
    out.push({
      check: 'nohz_full', level: 'warn',
      found: nohz.length ? `nohz_full CPUs ${formatCpuList(nohz)} do not cover the isolated CPUs ${iso}` : `no nohz_full CPU${f.nohzFull === null ? ' (/sys/devices/system/cpu/nohz_full is absent: the kernel may lack CONFIG_NO_HZ_FULL)' : ''}`,
      meaning: tickMeaning,
      ...(target ? { fix: `kernel argument nohz_full=${target} ${GRUB}` } : {}),
    });
  }

  const rcuMeaning = 'RCU callbacks run in softirq on the CPU that queued them, isolated CPUs included, unless offloaded to rcuo threads';
  const rcu = f.args.rcuNocbs === null ? [] : (f.args.rcuNocbs === 'all' ? cx.online : parseCpuList(f.args.rcuNocbs) ?? []);
  const offloaded = [...new Set([...rcu, ...nohz])]; // nohz_full CPUs are offloaded too
  if (f.cmdline === null) out.push({ check: 'rcu_nocbs', level: 'unknown', found: 'cannot read /proc/cmdline', meaning: rcuMeaning });
  else if (offloaded.length && (cx.isolated.length === 0 || covers(offloaded, cx.isolated))) {
    out.push({ check: 'rcu_nocbs', level: 'pass', found: `RCU callbacks offloaded from CPUs ${formatCpuList(offloaded)}${f.args.rcuNocbs === null ? ' (implied by nohz_full)' : ''}`, meaning: 'these CPUs run no RCU callbacks' });
  } else {
    out.push({ check: 'rcu_nocbs', level: 'warn', found: f.args.rcuNocbs === null ? 'no rcu_nocbs on the kernel command line' : `rcu_nocbs=${f.args.rcuNocbs} does not cover the isolated CPUs ${iso}`, meaning: rcuMeaning, ...(target ? { fix: `kernel argument rcu_nocbs=${target} ${GRUB}` } : {}) });
  }
  return out;
}

export function checkCpufreq(f: HostFacts): TuningFinding {
  const check = 'cpufreq';
  const meaning = 'a governor other than performance lowers the clock while a CPU idles and raises it only after load appears: the first samples after a quiet spell are handled slower';
  const withFreq = f.cpus.filter((c) => c.governor !== null);
  if (withFreq.length === 0) return { check, level: 'unknown', found: 'no cpufreq in /sys/devices/system/cpu/cpu*/cpufreq: the kernel does not set the frequency here (a VM, or a driver without cpufreq)', meaning };
  const slow = withFreq.filter((c) => c.governor !== 'performance');
  if (slow.length === 0) return { check, level: 'pass', found: `governor performance on CPUs ${formatCpuList(withFreq.map((c) => c.cpu))}`, meaning: 'the CPUs stay at their highest clock' };
  const byGov = [...new Set(slow.map((c) => c.governor!))].map((g) => `${g} on CPUs ${formatCpuList(slow.filter((c) => c.governor === g).map((c) => c.cpu))}`);
  return { check, level: 'warn', found: `governor ${byGov.join(', ')}`, meaning, fix: 'cpupower frequency-set -g performance (or: echo performance | tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)' };
}

/** Idle states with an exit latency above this are "deep": waking from them is a visible part of a 250 µs sample period. */
export const DEEP_IDLE_US = 10;

export function checkCpuidle(f: HostFacts): TuningFinding {
  const check = 'cpuidle';
  const meaning = 'a CPU in a deep idle state takes its exit latency to wake for the NIC\'s interrupt or the subscriber: each sample that finds the CPU idle pays it';
  const withIdle = f.cpus.filter((c) => c.idleStates !== null);
  if (withIdle.length === 0) return { check, level: 'unknown', found: 'no cpuidle in /sys/devices/system/cpu/cpu*/cpuidle: the kernel does not manage idle states here', meaning };
  const deep = withIdle.flatMap((c) => c.idleStates!.filter((s) => !s.disabled && s.latencyUs > DEEP_IDLE_US).map((s) => ({ cpu: c.cpu, s })));
  const states = (list: { cpu: number; s: { name: string; latencyUs: number } }[]) =>
    [...new Map(list.map((x) => [x.s.name, x.s.latencyUs])).entries()].map(([n, l]) => `${n} (${l} µs)`).join(', ');
  if (deep.length === 0) {
    const all = withIdle.flatMap((c) => c.idleStates!.filter((s) => !s.disabled).map((s) => ({ cpu: c.cpu, s })));
    return { check, level: 'pass', found: `enabled idle states exit within ${DEEP_IDLE_US} µs: ${states(all) || 'none'}`, meaning: 'waking a CPU costs at most a few µs' };
  }
  const worst = Math.max(...deep.map((d) => d.s.latencyUs));
  return {
    check, level: 'warn',
    found: `deep idle states enabled on CPUs ${formatCpuList([...new Set(deep.map((d) => d.cpu))])}: ${states(deep)}`,
    meaning: `${meaning} (up to ${worst} µs here)`,
    fix: `cpupower idle-set -D ${DEEP_IDLE_US} (disables every state slower than ${DEEP_IDLE_US} µs until reboot), or the kernel arguments intel_idle.max_cstate=1 processor.max_cstate=1 ${GRUB}`,
  };
}

/** `whose`: what runs on targetCpus (the subscriber, QEMU's vCPUs), for the message. */
export function checkSmt(f: HostFacts, cx: TuningContext, targetCpus: readonly number[], whose: string): TuningFinding {
  const check = 'smt';
  const meaning = 'SMT siblings share one core\'s execution units and caches: whatever runs on the sibling slows the subscriber or vCPU on the other';
  const fix = 'keep each sibling of an RT CPU idle (isolate both siblings, pin nothing on the second), or switch SMT off: echo off > /sys/devices/system/cpu/smt/control (kernel argument nosmt)';
  if (targetCpus.length) {
    const shared = targetCpus.flatMap((c) => {
      const sib = f.cpus.find((x) => x.cpu === c)?.siblings;
      const others = sib?.filter((s) => s !== c) ?? [];
      return others.length ? [`CPU ${c} shares its core with CPU ${formatCpuList(others)}`] : [];
    });
    const unknownSib = targetCpus.filter((c) => !f.cpus.find((x) => x.cpu === c)?.siblings);
    if (shared.length) return { check, level: 'warn', found: `CPUs ${formatCpuList(targetCpus)} of ${whose}: ${shared.join('; ')}`, meaning, fix };
    if (unknownSib.length === targetCpus.length) return { check, level: 'unknown', found: `no topology/thread_siblings_list for CPUs ${formatCpuList(unknownSib)}`, meaning };
    return { check, level: 'pass', found: `CPUs ${formatCpuList(targetCpus)} of ${whose} share their core with no sibling`, meaning: 'nothing else runs on those cores' };
  }
  const anyShared = f.cpus.some((c) => (c.siblings?.length ?? 1) > 1);
  if (f.smtActive === false || (f.smtActive === null && f.cpus.length && f.cpus.every((c) => c.siblings !== null) && !anyShared)) {
    return { check, level: 'pass', found: 'SMT inactive: no CPU shares its core', meaning: 'nothing runs beside the subscriber on its core' };
  }
  if (f.smtActive === true || anyShared) {
    return { check, level: 'warn', found: `SMT active; no pinned subscriber or vCPU found to check its sibling (${cx.subscriberLabel})`, meaning, fix: `name the subscriber (--subscriber-comm NAME or --pid PID) while it runs pinned; ${fix}` };
  }
  return { check, level: 'unknown', found: 'no /sys/devices/system/cpu/smt/active and no topology/thread_siblings_list', meaning };
}

export function checkSwap(f: HostFacts): TuningFinding {
  const check = 'swap';
  const meaning = 'a page of the subscriber or of the VM\'s memory written out to swap costs a disk read (milliseconds) when it is next touched';
  if (f.swaps === null) return { check, level: 'unknown', found: 'cannot read /proc/swaps', meaning };
  if (f.swaps.length === 0) return { check, level: 'pass', found: `no swap area${f.swappiness === null ? '' : ` (vm.swappiness ${f.swappiness})`}`, meaning: 'no page can be swapped out' };
  const list = f.swaps.map((s) => `${s.name} (${Math.round(s.sizeKb / 1024)} MiB, ${Math.round(s.usedKb / 1024)} MiB used)`).join(', ');
  return {
    check, level: 'warn', found: `swap on: ${list}; vm.swappiness ${f.swappiness ?? '?'}`,
    meaning,
    fix: 'swapoff -a (and remove swap from /etc/fstab), or lock the memory that matters: mlockall() in the subscriber, -overcommit mem-lock=on for QEMU; sysctl -w vm.swappiness=0 makes swapping rarer',
  };
}
