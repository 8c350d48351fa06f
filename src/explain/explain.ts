/**
 * Why was this sample late? From a late sample (two points and their
 * latency), the normal latency, and the recorder's events around it: which
 * thread carried the frame, where it waited, what ran instead, for how many
 * µs. Then the causes of a whole run, by count and by total delay. Pure.
 */
import { groupDigits, printable } from '../util/text.ts';
import { softirqName, type RecorderEvent } from './events.ts';
import { bucketize, commsOf, sortEvents, taskOnCpu, type Buckets, type TaskRef } from './replay.ts';

export interface SamplePoint { point: string; tMonoNs: bigint; cpu: number; tNs?: bigint }

/** A sample and one of its segments: identity, the segment's two points, its latency. */
export interface SampleSegment {
  svId: string;
  smpCnt: number;
  iter: number;
  /** Segment name, e.g. Thyp. */
  segment: string;
  /** The two points of the segment. */
  from: SamplePoint;
  to: SamplePoint;
  latencyNs: number;
}

export interface LateSample extends SampleSegment {
  appId?: number;
  /** The usual latency of this segment (e.g. its p50). */
  normalNs: number;
}

/** busy: the waiting thread itself ran (its own work, or frames queued ahead) for most of the time. */
export type CauseKind = 'preemption' | 'softirq' | 'irq' | 'wakeup-latency' | 'migration' | 'busy' | 'unknown';

export interface Cause {
  kind: CauseKind;
  /** Delay attributed to this cause, ns: its own time plus the catch-up it caused. */
  delayNs: number;
  /** Time the cause itself took (the task ran, the softirq ran), ns. */
  directNs: number;
  /** For the primary waiting cause: the waiter's catch-up after it, beyond the normal latency, ns. */
  catchUpNs?: number;
  /** Preemption by a task of lower priority than the waiter: the kernel could not preempt it (PREEMPT_NONE, or a non-preemptible section). */
  lowerPriority?: boolean;
  cpu: number | null;
  /** The task that ran instead (preemption). */
  task?: TaskRef & { policy: string };
  /** Softirq vector name or IRQ name. */
  source?: string;
  fromCpu?: number;
  toCpu?: number;
  /** A stable key for aggregation, e.g. "preemption perl[4242]". */
  key: string;
}

export interface Explanation extends SampleSegment {
  normalNs: number;
  excessNs: number;
  /** The thread on the CPU of the second point when it fired: the one the frame waited for. */
  waiter: (TaskRef & { cpu: number }) | null;
  /** Time the waiter was runnable but not running between the points, ns. */
  waitedNs: number;
  /** Every cause with a delay, largest first. */
  causes: Cause[];
  /** The largest cause, or unknown when nothing explains at least half the excess. */
  primary: Cause;
  /** Why the primary cause is unknown, when it is. */
  reason?: string;
  text: string;
}

export interface SchedPolicy { policy: string; rtPriority: number }

export interface ExplainOptions {
  /** Known scheduling policies by pid (read from /proc while the run lasts). */
  policies?: ReadonlyMap<number, SchedPolicy>;
  /** The span the recorder covered; a sample outside it is 'unknown'. */
  coverage?: { fromMonoNs: bigint; toMonoNs: bigint } | null;
  /** Force the waiting thread (e.g. the ovs-vswitchd main thread). */
  waiterPid?: number;
  /** Spans where the recorder lost events: a sample overlapping one is 'unknown'. */
  gaps?: ReadonlyArray<{ cpu: number; fromMonoNs: bigint; toMonoNs: bigint }>;
}

const us = (ns: number) => `${groupDigits(ns / 1000)} µs`;

/** "SCHED_FIFO 90" when known, else what the kernel prio tells: "RT 90" or "nice 0". */
export function policyOf(pid: number, prio: number, policies?: ReadonlyMap<number, SchedPolicy>): string {
  const p = policies?.get(pid);
  if (p) return p.rtPriority > 0 ? `${p.policy} ${p.rtPriority}` : p.policy;
  return prio >= 0 && prio < 100 ? `RT ${99 - prio}` : `nice ${prio - 120}`;
}

function taskLabel(t: { pid: number; comm: string }): string {
  return `${printable(t.comm)} (pid ${t.pid})`;
}

function unknown(s: LateSample, excessNs: number, reason: string, waiter: Explanation['waiter'] = null): Explanation {
  const primary: Cause = { kind: 'unknown', delayNs: Math.max(0, excessNs), directNs: 0, cpu: null, key: 'unknown' };
  return {
    svId: s.svId, smpCnt: s.smpCnt, iter: s.iter, segment: s.segment, from: s.from, to: s.to, latencyNs: s.latencyNs, normalNs: s.normalNs, excessNs,
    waiter, waitedNs: 0, causes: [], primary, reason,
    text: `${s.segment} ${us(s.latencyNs)} (normal ${us(s.normalNs)}): unknown: ${reason}`,
  };
}

function causesOf(b: Buckets, waiter: TaskRef, policies?: ReadonlyMap<number, SchedPolicy>): Cause[] {
  const out: Cause[] = [];
  if (b.runningNs - b.catchUpNs > 0 && waiter.pid !== 0) out.push({ kind: 'busy', delayNs: b.runningNs - b.catchUpNs, directNs: b.runningNs - b.catchUpNs, cpu: null, task: { ...waiter, policy: policyOf(waiter.pid, waiter.prio, policies) }, key: `busy ${printable(waiter.comm)}[${waiter.pid}]` });
  for (const [pid, p] of b.preemptedBy) {
    out.push({ kind: 'preemption', delayNs: p.ns, directNs: p.ns, cpu: p.cpu, task: { ...p.task, policy: policyOf(pid, p.task.prio, policies) }, key: `preemption ${printable(p.task.comm)}[${pid}]`,
      ...(p.task.prio > waiter.prio ? { lowerPriority: true } : {}) });
  }
  for (const [vec, v] of b.softirq) out.push({ kind: 'softirq', delayNs: v.ns, directNs: v.ns, cpu: v.cpu, source: softirqName(vec), key: `softirq ${softirqName(vec)}` });
  for (const [irq, v] of b.irq) out.push({ kind: 'irq', delayNs: v.ns, directNs: v.ns, cpu: v.cpu, source: `${irq}:${printable(v.name)}`, key: `irq ${irq}:${printable(v.name)}` });
  if (b.wakeupNs > 0) out.push({ kind: 'wakeup-latency', delayNs: b.wakeupNs, directNs: b.wakeupNs, cpu: null, key: 'wakeup-latency' });
  if (b.migrationNs > 0 || b.migrations.length > 0) {
    const m = b.migrations[b.migrations.length - 1];
    out.push({ kind: 'migration', delayNs: b.migrationNs, directNs: b.migrationNs, cpu: m?.toCpu ?? null, ...(m ? { fromCpu: m.fromCpu, toCpu: m.toCpu } : {}), key: m ? `migration CPU ${m.fromCpu} → ${m.toCpu}` : 'migration' });
  }
  return out.filter((c) => c.delayNs > 0 || c.kind === 'migration').sort((a, b) => b.delayNs - a.delayNs);
}

const catchUp = (c: Cause) => (c.catchUpNs ? `, then caught up for ${us(c.catchUpNs)} more` : '');

function describe(c: Cause): string {
  switch (c.kind) {
    case 'preemption': return `CPU ${c.cpu} ran ${c.task ? `${taskLabel(c.task)}, ${c.task.policy},` : 'another task'} for ${us(c.directNs)}${c.lowerPriority ? ' (of lower priority: the kernel could not preempt it)' : ''}${catchUp(c)}`;
    case 'softirq': return `softirq ${c.source} on CPU ${c.cpu} took ${us(c.delayNs)}`;
    case 'irq': return `IRQ ${c.source} on CPU ${c.cpu} took ${us(c.delayNs)}`;
    case 'wakeup-latency': return `it was woken but not run for ${us(c.directNs)} on an idle CPU${catchUp(c)}`;
    case 'migration': return `it moved from CPU ${c.fromCpu} to CPU ${c.toCpu} and waited ${us(c.directNs)} there${catchUp(c)}`;
    case 'busy': return `it ran its own work for ${us(c.delayNs)} (frames queued ahead, or housekeeping)`;
    case 'unknown': return `${us(c.delayNs)} unexplained`;
  }
}

/**
 * Explains one late sample from events sorted or not, which should start
 * well before its first point (a few ms) so the state at that point is known.
 */
export function explainSample(s: LateSample, eventsIn: readonly RecorderEvent[], o: ExplainOptions = {}): Explanation {
  const excessNs = s.latencyNs - s.normalNs;
  const t1 = s.from.tMonoNs, t2 = s.to.tMonoNs;
  if (t2 < t1) return unknown(s, excessNs, `${s.to.point} is before ${s.from.point}`);
  if (o.coverage === null) return unknown(s, excessNs, 'the recorder holds no events');
  if (o.coverage && (o.coverage.fromMonoNs > t1 || o.coverage.toMonoNs < t2)) return unknown(s, excessNs, 'the sample is outside the recorder window');
  const gap = o.gaps?.find((g) => g.fromMonoNs <= t2 && g.toMonoNs >= t1 && (g.cpu === s.to.cpu || g.cpu === s.from.cpu));
  if (gap) return unknown(s, excessNs, `the recorder lost events of CPU ${gap.cpu} around this sample`);
  const events = sortEvents(eventsIn);
  const first = events[0], last = events[events.length - 1];
  if (!first || !last || first.tMonoNs > t1 || last.tMonoNs < t2) return unknown(s, excessNs, 'the events given do not cover the sample');
  const comms = commsOf(events);
  const at = taskOnCpu(events, s.to.cpu, t2, comms);
  let waiter: Explanation['waiter'] = at.taskAt ? { ...at.taskAt, cpu: s.to.cpu } : null;
  if (o.waiterPid !== undefined) waiter = { pid: o.waiterPid, comm: comms.get(o.waiterPid) ?? waiter?.comm ?? '?', prio: waiter?.prio ?? 120, cpu: s.to.cpu };
  if (!waiter) return unknown(s, excessNs, `no context switch on CPU ${s.to.cpu} in the window tells which task sent ${s.to.point}`);
  if (o.waiterPid === undefined && at.inSoftirq && !waiter.comm.startsWith('ksoftirqd/')) {
    // no thread carried the frame (a Linux bridge forwards in softirq): what the softirq run did between the points
    const reason = `${s.to.point} fired in a softirq on CPU ${s.to.cpu} on top of ${waiter.pid === 0 ? `the idle task` : taskLabel(waiter)}: no thread carried the frame to wait on`;
    return inSoftirqRun(s, events, excessNs, waiter, reason);
  }
  if (waiter.pid === 0) return unknown(s, excessNs, `${s.to.point} fired while CPU ${s.to.cpu} was idle (interrupt context): no thread carried the frame to wait on`, waiter);
  const b = bucketize(events, waiter.pid, t1, t2);
  const causes = causesOf(b, waiter, o.policies);
  // the catch-up after waiting, beyond the usual latency, belongs to what made it wait
  const waiting = causes.find((c) => c.kind === 'preemption' || c.kind === 'wakeup-latency' || c.kind === 'migration');
  const catchUpNs = Math.max(0, b.catchUpNs - s.normalNs);
  if (waiting && catchUpNs > 0) {
    waiting.catchUpNs = catchUpNs;
    waiting.delayNs += catchUpNs;
    causes.sort((x, y) => y.delayNs - x.delayNs);
  }
  const waitedNs = [...b.preemptedBy.values()].reduce((n, p) => n + p.ns, 0) + b.wakeupNs + b.migrationNs;
  const top = causes[0];
  const head = `${s.segment} ${us(s.latencyNs)} (normal ${us(s.normalNs)})`;
  const who = `${taskLabel(waiter)} ${waitedNs > 0 ? `waited ${us(waitedNs)}` : 'did not wait'} on CPU ${waiter.cpu}`;
  if (!top || top.delayNs * 2 < excessNs) {
    const rest = causes.length ? `; ${causes.slice(0, 3).map(describe).join('; ')}` : '';
    const reason = `the events explain ${us(top?.delayNs ?? 0)} of the ${us(Math.max(0, excessNs))} excess (running ${us(b.runningNs)}, asleep ${us(b.sleepingNs)}, unknown ${us(b.unknownNs)})`;
    const ex = unknown(s, excessNs, reason, waiter);
    return { ...ex, causes, waitedNs, text: `${head}: ${who}${rest}; ${reason}` };
  }
  const also = causes.slice(1).filter((c) => c.delayNs >= 10_000 && (c.kind !== 'busy' || top.kind === 'busy')).slice(0, 2);
  return {
    svId: s.svId, smpCnt: s.smpCnt, iter: s.iter, segment: s.segment, from: s.from, to: s.to, latencyNs: s.latencyNs, normalNs: s.normalNs, excessNs,
    waiter, waitedNs, causes, primary: top,
    text: `${head}: ${who}, ${describe(top)}${also.length ? `; also ${also.map(describe).join('; ')}` : ''}`,
  };
}

/** The softirq run on `cpu` that holds `t2`, and the hard-IRQ time inside it from `from` on. */
function softirqRunAt(events: readonly RecorderEvent[], cpu: number, from: bigint, t2: bigint): { vec: number; entry: bigint; irqNs: number } | null {
  let run: { vec: number; entry: bigint } | null = null;
  for (const e of events) {
    if (e.cpu !== cpu) continue;
    if (e.tMonoNs > t2) break;
    if (e.kind === 'softirq-entry') run = { vec: e.vec, entry: e.tMonoNs };
    else if (e.kind === 'softirq-exit') run = null;
  }
  if (!run) return null;
  const lo = run.entry > from ? run.entry : from;
  let irqNs = 0, irqAt: bigint | null = null;
  for (const e of events) {
    if (e.cpu !== cpu) continue;
    if (e.tMonoNs > t2) break;
    if (e.kind === 'irq-entry') irqAt = e.tMonoNs;
    else if (e.kind === 'irq-exit' && irqAt !== null) {
      const a = irqAt > lo ? irqAt : lo;
      if (e.tMonoNs > a) irqNs += Number(e.tMonoNs - a);
      irqAt = null;
    }
  }
  if (irqAt !== null && t2 > (irqAt > lo ? irqAt : lo)) irqNs += Number(t2 - (irqAt > lo ? irqAt : lo));
  return { ...run, irqNs };
}

/**
 * The second point fired inside a softirq run (no thread to wait on): when
 * that run began before or near the first point, the time between the
 * points was spent in it (its own work, hard IRQs on top); otherwise unknown.
 */
function inSoftirqRun(s: LateSample, events: readonly RecorderEvent[], excessNs: number, waiter: NonNullable<Explanation['waiter']>, reason: string): Explanation {
  const t1 = s.from.tMonoNs, t2 = s.to.tMonoNs;
  const run = softirqRunAt(events, s.to.cpu, t1, t2);
  if (!run) return unknown(s, excessNs, reason, waiter);
  const inside = Number(t2 - (run.entry > t1 ? run.entry : t1));
  const name = softirqName(run.vec);
  const causes: Cause[] = [];
  const softNs = inside - run.irqNs;
  if (softNs > 0) causes.push({ kind: 'softirq', delayNs: softNs, directNs: Number(t2 - run.entry), cpu: s.to.cpu, source: name, key: `softirq ${name}` });
  if (run.irqNs > 0) causes.push({ kind: 'irq', delayNs: run.irqNs, directNs: run.irqNs, cpu: s.to.cpu, source: 'hard IRQs', key: 'irq (in softirq)' });
  causes.sort((a, b) => b.delayNs - a.delayNs);
  const top = causes[0];
  if (!top || top.delayNs * 2 < excessNs) {
    const ex = unknown(s, excessNs, `${reason}; the softirq run holding it began ${us(Number(t2 - run.entry))} before it`, waiter);
    return { ...ex, causes };
  }
  const head = `${s.segment} ${us(s.latencyNs)} (normal ${us(s.normalNs)})`;
  const on = waiter.pid === 0 ? 'an idle CPU' : taskLabel(waiter);
  const where = run.entry <= t1 && s.from.cpu === s.to.cpu
    ? `${s.from.point} and ${s.to.point} in one softirq ${name} run on CPU ${s.to.cpu} (on top of ${on}), which had run ${us(Number(t2 - run.entry))} by then`
    : `${s.to.point} in a softirq ${name} run on CPU ${s.to.cpu} (on top of ${on}) that began ${run.entry > t1 ? `${us(Number(run.entry - t1))} after` : `${us(Number(t1 - run.entry))} before`} ${s.from.point}`;
  const text = `${head}: ${where}: softirq ${name} took ${us(softNs)} between the points${run.irqNs > 0 ? `, hard IRQs ${us(run.irqNs)}` : ''} (what it did inside is not recorded: frames queued ahead, or the CPU itself was held up)`;
  return {
    svId: s.svId, smpCnt: s.smpCnt, iter: s.iter, segment: s.segment, from: s.from, to: s.to, latencyNs: s.latencyNs, normalNs: s.normalNs, excessNs,
    waiter, waitedNs: 0, causes, primary: top, text,
  };
}

export interface CauseRow {
  key: string;
  kind: CauseKind;
  /** Samples with this as their primary cause. */
  count: number;
  totalDelayNs: number;
  maxDelayNs: number;
  example: string;
}

/** The causes of a run, largest total delay first (sort by count for the other view). */
export function aggregateCauses(explanations: readonly Explanation[]): CauseRow[] {
  const rows = new Map<string, CauseRow>();
  for (const e of explanations) {
    const c = e.primary;
    const r = rows.get(c.key) ?? { key: c.key, kind: c.kind, count: 0, totalDelayNs: 0, maxDelayNs: 0, example: e.text };
    r.count++;
    r.totalDelayNs += c.delayNs;
    if (c.delayNs > r.maxDelayNs) { r.maxDelayNs = c.delayNs; r.example = e.text; }
    rows.set(c.key, r);
  }
  return [...rows.values()].sort((a, b) => b.totalDelayNs - a.totalDelayNs || b.count - a.count);
}

export function topByCount(rows: readonly CauseRow[]): CauseRow[] {
  return [...rows].sort((a, b) => b.count - a.count || b.totalDelayNs - a.totalDelayNs);
}
