/**
 * Replaying recorder events over one late sample: who ran on each CPU,
 * where the waiting thread was (running, runnable on a CPU, asleep), and
 * what each CPU did while it waited. Time between events is piecewise
 * constant, so every nanosecond of [t1, t2] lands in exactly one bucket.
 * Pure.
 */
import { wasPreempted, type RecorderEvent } from './events.ts';

export interface TaskRef { pid: number; comm: string; prio: number }

type WaiterState = 'unknown' | 'running' | 'runnable' | 'sleeping';

/** Time of [t1, t2] by what kept the waiter from running, ns. */
export interface Buckets {
  /** Waiter runnable while another task ran on its CPU: by pid. */
  preemptedBy: Map<number, { task: TaskRef; cpu: number; ns: number }>;
  /** Softirq time on the waiter's CPU (running or runnable), by vector. */
  softirq: Map<number, { cpu: number; ns: number }>;
  /** Hard IRQ time on the waiter's CPU, by irq number. */
  irq: Map<number, { name: string; cpu: number; ns: number }>;
  /** Runnable on an idle CPU, before its first run after a wakeup. */
  wakeupNs: number;
  /** Runnable on an idle CPU after being moved there. */
  migrationNs: number;
  migrations: Array<{ tMonoNs: bigint; fromCpu: number; toCpu: number }>;
  /** Running, nothing else on the CPU: the work itself. */
  runningNs: number;
  /** Running after having waited for the CPU, softirqs in its context included (also in runningNs): catching up with what queued meanwhile. */
  catchUpNs: number;
  /** Asleep, or in a state the events do not tell. */
  sleepingNs: number;
  unknownNs: number;
}

export interface Replay {
  /** The task on `cpu` at `tMonoNs` (the last switch in at or before it), or null when no switch tells. */
  taskAt: TaskRef | null;
  /** The CPU was in a softirq at that time. */
  inSoftirq: boolean;
}

const cmp = (a: RecorderEvent, b: RecorderEvent) => (a.tMonoNs < b.tMonoNs ? -1 : a.tMonoNs > b.tMonoNs ? 1 : 0);

export function sortEvents(events: readonly RecorderEvent[]): RecorderEvent[] {
  for (let i = 1; i < events.length; i++) if (events[i]!.tMonoNs < events[i - 1]!.tMonoNs) return [...events].sort(cmp);
  return events as RecorderEvent[];
}

/** Comm of every pid the events name. */
export function commsOf(events: readonly RecorderEvent[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const e of events) {
    if (e.kind === 'switch') m.set(e.nextPid, e.nextComm);
    else if (e.kind === 'wakeup' || e.kind === 'migrate') m.set(e.pid, e.comm);
  }
  return m;
}

/** What ran on `cpu` at `t`: the last switch in at or before t, else the first switch out after it. */
export function taskOnCpu(events: readonly RecorderEvent[], cpu: number, t: bigint, comms: Map<number, string>): Replay {
  let last: RecorderEvent | null = null, after: RecorderEvent | null = null;
  let soft = 0;
  for (const e of events) {
    if (e.cpu !== cpu) continue;
    if (e.tMonoNs <= t) {
      if (e.kind === 'switch') last = e;
      else if (e.kind === 'softirq-entry') soft = 1;
      else if (e.kind === 'softirq-exit') soft = 0;
    } else if (e.kind === 'switch') { after = e; break; }
  }
  let taskAt: TaskRef | null = null;
  if (last?.kind === 'switch') taskAt = { pid: last.nextPid, comm: last.nextComm, prio: last.nextPrio };
  else if (after?.kind === 'switch') taskAt = { pid: after.prevPid, comm: comms.get(after.prevPid) ?? '?', prio: after.prevPrio };
  return { taskAt, inSoftirq: soft === 1 };
}

interface CpuState { task: TaskRef | null; softirq: number | null; irq: { irq: number; name: string } | null }

/** Where the waiter was when the slice starts, from the first event that names it. */
function initialWaiter(events: readonly RecorderEvent[], pid: number): { state: WaiterState; cpu: number | null } {
  for (const e of events) {
    if (e.kind === 'switch') {
      if (e.prevPid === pid) return { state: 'running', cpu: e.cpu };
      if (e.nextPid === pid) return { state: 'runnable', cpu: e.cpu };
    } else if (e.kind === 'wakeup' && e.pid === pid) return { state: 'sleeping', cpu: null };
    else if (e.kind === 'migrate' && e.pid === pid) return { state: 'runnable', cpu: e.origCpu };
  }
  return { state: 'unknown', cpu: null };
}

/** What each CPU ran when the slice starts, from its first switch out. */
function initialCpus(events: readonly RecorderEvent[], comms: Map<number, string>): Map<number, CpuState> {
  const m = new Map<number, CpuState>();
  for (const e of events) {
    if (m.has(e.cpu)) continue;
    if (e.kind === 'switch') m.set(e.cpu, { task: { pid: e.prevPid, comm: comms.get(e.prevPid) ?? '?', prio: e.prevPrio }, softirq: null, irq: null });
  }
  return m;
}

/** Splits [t1, t2] by what the waiter `pid` was doing and what its CPU ran. Events must start before t1 to know the state at t1. */
export function bucketize(events: readonly RecorderEvent[], pid: number, t1: bigint, t2: bigint): Buckets {
  const comms = commsOf(events);
  const b: Buckets = { preemptedBy: new Map(), softirq: new Map(), irq: new Map(), wakeupNs: 0, migrationNs: 0, migrations: [], runningNs: 0, catchUpNs: 0, sleepingNs: 0, unknownNs: 0 };
  const cpus = initialCpus(events, comms);
  let { state, cpu: wCpu } = initialWaiter(events, pid);
  let migrated = false;
  let waited = false;
  let last = t1;
  const cpuState = (c: number): CpuState => {
    let s = cpus.get(c);
    if (!s) { s = { task: null, softirq: null, irq: null }; cpus.set(c, s); }
    return s;
  };
  const account = (until: bigint) => {
    const lo = last > t1 ? last : t1, hi = until < t2 ? until : t2;
    if (hi > lo) {
      const dt = Number(hi - lo);
      if ((state === 'running' || state === 'runnable') && wCpu !== null) {
        const c = cpuState(wCpu);
        if (state === 'running' && waited) {
          // after a wait, whatever runs in its context (its own softirqs too) is catching up
          b.runningNs += dt;
          b.catchUpNs += dt;
        } else if (c.irq) {
          const k = b.irq.get(c.irq.irq) ?? { name: c.irq.name, cpu: wCpu, ns: 0 };
          k.ns += dt; b.irq.set(c.irq.irq, k);
        } else if (c.softirq !== null) {
          const k = b.softirq.get(c.softirq) ?? { cpu: wCpu, ns: 0 };
          k.ns += dt; b.softirq.set(c.softirq, k);
        } else if (state === 'running') b.runningNs += dt;
        else if (c.task && c.task.pid !== 0 && c.task.pid !== pid) {
          waited = true;
          const k = b.preemptedBy.get(c.task.pid) ?? { task: c.task, cpu: wCpu, ns: 0 };
          k.ns += dt; b.preemptedBy.set(c.task.pid, k);
        } else if (c.task === null) b.unknownNs += dt;
        else if (migrated) { b.migrationNs += dt; waited = true; } else { b.wakeupNs += dt; waited = true; }
      } else if (state === 'sleeping') b.sleepingNs += dt;
      else b.unknownNs += dt;
    }
    if (until > last) last = until;
  };
  for (const e of events) {
    if (e.tMonoNs > t2) break;
    account(e.tMonoNs);
    const c = cpuState(e.cpu);
    switch (e.kind) {
      case 'switch':
        if (e.prevPid === pid) { state = wasPreempted(e.prevState) ? 'runnable' : 'sleeping'; wCpu = e.cpu; }
        c.task = { pid: e.nextPid, comm: e.nextComm, prio: e.nextPrio };
        if (e.nextPid === pid) { state = 'running'; wCpu = e.cpu; migrated = false; }
        break;
      case 'wakeup':
        if (e.pid === pid && state !== 'running') { state = 'runnable'; wCpu = e.targetCpu; migrated = false; }
        break;
      case 'migrate':
        if (e.pid === pid) {
          if (e.tMonoNs >= t1) b.migrations.push({ tMonoNs: e.tMonoNs, fromCpu: e.origCpu, toCpu: e.destCpu });
          wCpu = e.destCpu;
          if (state !== 'running') migrated = true;
        }
        break;
      case 'softirq-entry': c.softirq = e.vec; break;
      case 'softirq-exit': c.softirq = null; break;
      case 'irq-entry': c.irq = { irq: e.irq, name: e.name }; break;
      case 'irq-exit': c.irq = null; break;
    }
  }
  account(t2);
  return b;
}
