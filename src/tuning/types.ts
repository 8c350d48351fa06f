/** The result of `svtrace doctor --tuning`: one finding per check (and per NIC or QEMU process). */
import type { HostFacts } from './probe.ts';

export type TuningLevel = 'pass' | 'warn' | 'fail' | 'unknown';

export interface TuningFinding {
  /** Stable id of the check: kernel-preempt, rt-throttling, isolcpus, nohz_full, rcu_nocbs, irq-affinity, cpufreq, cpuidle, smt, qemu-vcpu, qemu-emulator, subscriber-sched, timer-slack, swap. */
  check: string;
  /** What the check looked at when there are several (a NIC, a QEMU pid). */
  subject?: string;
  level: TuningLevel;
  /** What was found (for unknown: what could not be read, and why). */
  found: string;
  /** What it means for SV latency. */
  meaning: string;
  /** The command or kernel argument that fixes it (absent on pass and where nothing can be done). */
  fix?: string;
}

export interface TuningReport {
  format: 'svtrace-tuning';
  formatVersion: 1;
  root: string;
  facts: HostFacts;
  findings: TuningFinding[];
  counts: Record<TuningLevel, number>;
}

/** What the checks derive once from the facts and share. */
export interface TuningContext {
  online: number[];
  /** Isolated CPUs (sysfs, else isolcpus=); [] when none. */
  isolated: number[];
  /** Online CPUs that are not isolated. */
  housekeeping: number[];
  /** The CPU list to suggest for isolation when none is isolated (all but the first CPU). */
  suggestIsolate: number[];
  /** The subscriber's name as asked (for messages). */
  subscriberLabel: string;
}
