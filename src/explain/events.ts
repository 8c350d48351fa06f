/**
 * The recorder's events: their types, the parser of recorder.bt's lines,
 * and the bounded per-CPU ring that keeps the last few seconds of them.
 * Pure: the runner feeds lines in; tests can too.
 */

/** A context switch on `cpu`: prev left, next came in. */
export interface SwitchEvent { kind: 'switch'; tMonoNs: bigint; cpu: number; prevPid: number; prevPrio: number; prevState: number; nextPid: number; nextPrio: number; nextComm: string }
/** A task woken, to be run on `targetCpu`. */
export interface WakeupEvent { kind: 'wakeup'; tMonoNs: bigint; cpu: number; pid: number; prio: number; targetCpu: number; comm: string }
/** A task moved from one CPU's run queue to another's. */
export interface MigrateEvent { kind: 'migrate'; tMonoNs: bigint; cpu: number; pid: number; prio: number; origCpu: number; destCpu: number; comm: string }
/** An exit line may carry its entry time (recorder.bt prints one line per softirq): the recorder inserts the entry from it. */
export interface SoftirqEvent { kind: 'softirq-entry' | 'softirq-exit'; tMonoNs: bigint; cpu: number; vec: number; entryNs?: bigint }
export interface IrqEvent { kind: 'irq-entry' | 'irq-exit'; tMonoNs: bigint; cpu: number; irq: number; name: string }

export type RecorderEvent = SwitchEvent | WakeupEvent | MigrateEvent | SoftirqEvent | IrqEvent;

/** The kernel's softirq vectors (include/linux/interrupt.h). */
export const SOFTIRQ_NAMES = ['HI', 'TIMER', 'NET_TX', 'NET_RX', 'BLOCK', 'IRQ_POLL', 'TASKLET', 'SCHED', 'HRTIMER', 'RCU'] as const;

export function softirqName(vec: number): string {
  return SOFTIRQ_NAMES[vec] ?? `vec ${vec}`;
}

/** A decimal integer (optional minus), else NaN: no regex, no exponent or hex forms. */
function intOf(f: string | undefined): number {
  if (f === undefined || f.length === 0 || f.length > 16) return NaN;
  let i = f.charCodeAt(0) === 45 ? 1 : 0;
  if (i === f.length) return NaN;
  for (; i < f.length; i++) {
    const c = f.charCodeAt(i);
    if (c < 48 || c > 57) return NaN;
  }
  return Number(f);
}

function ints(fields: string[], from: number, count: number): number[] | null {
  const out: number[] = [];
  for (let i = from; i < from + count; i++) {
    const n = intOf(fields[i]);
    if (Number.isNaN(n)) return null;
    out.push(n);
  }
  return out;
}

/** Nanoseconds as bigint; through a Number when exact (BigInt of a string is slow: this runs ~50 000 times a second). */
function nsOf(f: string): bigint | null {
  if (f.length === 0 || f.length > 20) return null;
  for (let i = 0; i < f.length; i++) {
    const c = f.charCodeAt(i);
    if (c < 48 || c > 57) return null;
  }
  const n = Number(f);
  return Number.isSafeInteger(n) ? BigInt(n) : BigInt(f);
}

/**
 * One line of recorder.bt into an event, or null when it is not an event
 * line (markers, map prints, warnings). Comm is the rest of the line.
 */
export function parseRecorderLine(line: string): RecorderEvent | null {
  const tag = line[0];
  if (line[1] !== ' ' || !tag || !'SWMEXIJ'.includes(tag)) return null;
  const f = line.split(' ');
  const tField = f[1];
  const tMonoNs = tField === undefined ? null : nsOf(tField);
  if (tMonoNs === null) return null;
  const rest = (n: number) => f.slice(n).join(' ');
  switch (tag) {
    case 'S': {
      const v = ints(f, 2, 6);
      if (!v || f.length < 9) return null;
      return { kind: 'switch', tMonoNs, cpu: v[0]!, prevPid: v[1]!, prevPrio: v[2]!, prevState: v[3]!, nextPid: v[4]!, nextPrio: v[5]!, nextComm: rest(8) };
    }
    case 'W': {
      const v = ints(f, 2, 4);
      if (!v || f.length < 7) return null;
      return { kind: 'wakeup', tMonoNs, cpu: v[0]!, pid: v[1]!, prio: v[2]!, targetCpu: v[3]!, comm: rest(6) };
    }
    case 'M': {
      const v = ints(f, 2, 5);
      if (!v || f.length < 8) return null;
      return { kind: 'migrate', tMonoNs, cpu: v[0]!, pid: v[1]!, prio: v[2]!, origCpu: v[3]!, destCpu: v[4]!, comm: rest(7) };
    }
    case 'E': case 'X': {
      const v = ints(f, 2, 2);
      if (!v || f.length !== 4 + (tag === 'X' && f.length === 5 ? 1 : 0)) return null;
      if (f.length === 5) {
        const entryNs = nsOf(f[4]!);
        if (entryNs === null) return null;
        return { kind: 'softirq-exit', tMonoNs, cpu: v[0]!, vec: v[1]!, ...(entryNs > 0n && entryNs <= tMonoNs ? { entryNs } : {}) };
      }
      return { kind: tag === 'E' ? 'softirq-entry' : 'softirq-exit', tMonoNs, cpu: v[0]!, vec: v[1]! };
    }
    default: {
      const v = ints(f, 2, 2);
      if (!v) return null;
      if (tag === 'I') return f.length < 5 ? null : { kind: 'irq-entry', tMonoNs, cpu: v[0]!, irq: v[1]!, name: rest(4) };
      return f.length !== 4 ? null : { kind: 'irq-exit', tMonoNs, cpu: v[0]!, irq: v[1]!, name: '' };
    }
  }
}

/** A task was preempted (still runnable) rather than going to sleep: the low state bits are clear. */
export function wasPreempted(prevState: number): boolean {
  return (prevState & 0xff) === 0;
}

/**
 * The last `windowNs` of events per CPU. Pushing evicts what fell out of the
 * window behind the newest event of that CPU; `maxPerCpu` bounds memory even
 * when a CPU storms (the oldest go first, and are counted).
 */
export interface EventRing {
  windowNs: bigint;
  maxPerCpu: number;
  cpus: Map<number, { events: RecorderEvent[]; head: number }>;
  /** Events dropped because a CPU's ring was full before they aged out. */
  overflowed: number;
  /** Events accepted since creation. */
  pushed: number;
  /**
   * Keep events from this time on even when they are older than the window
   * (the consumer's progress: the point tracer's output may lag the
   * recorder's by seconds), up to `maxHoldNs` behind the newest event.
   */
  holdFromNs: bigint | null;
  maxHoldNs: bigint;
}

export function createRing(windowNs: bigint, maxPerCpu = 500_000): EventRing {
  if (windowNs <= 0n) throw new RangeError('windowNs must be > 0');
  if (!Number.isInteger(maxPerCpu) || maxPerCpu < 1) throw new RangeError('maxPerCpu must be a positive integer');
  return { windowNs, maxPerCpu, cpus: new Map(), overflowed: 0, pushed: 0, holdFromNs: null, maxHoldNs: 5n * windowNs };
}

export function pushEvent(ring: EventRing, e: RecorderEvent): void {
  let q = ring.cpus.get(e.cpu);
  if (!q) { q = { events: [], head: 0 }; ring.cpus.set(e.cpu, q); }
  const last = q.events[q.events.length - 1];
  if (last && e.tMonoNs < last.tMonoNs) {
    // a softirq's entry, known at its exit: into its place (a few events back), keeping the CPU's events in time order
    let i = q.events.length - 1;
    while (i > q.head && q.events[i - 1]!.tMonoNs > e.tMonoNs) i--;
    q.events.splice(i, 0, e);
    ring.pushed++;
    return;
  }
  q.events.push(e);
  ring.pushed++;
  let oldest = e.tMonoNs - ring.windowNs;
  if (ring.holdFromNs !== null && ring.holdFromNs < oldest) {
    const limit = e.tMonoNs - ring.maxHoldNs;
    oldest = ring.holdFromNs > limit ? ring.holdFromNs : limit;
  }
  while (q.head < q.events.length && q.events[q.head]!.tMonoNs < oldest) q.head++;
  if (q.events.length - q.head > ring.maxPerCpu) {
    ring.overflowed += q.events.length - q.head - ring.maxPerCpu;
    q.head = q.events.length - ring.maxPerCpu;
  }
  if (q.head > 4096 && q.head * 2 > q.events.length) {
    q.events = q.events.slice(q.head);
    q.head = 0;
  }
}

/**
 * A recorded event into the ring, and to `onEvent`; a softirq recorded as
 * one event at its exit brings its entry back first, in its place.
 */
export function recordEvent(ring: EventRing, e: RecorderEvent, onEvent?: (e: RecorderEvent) => void): void {
  if (e.kind === 'softirq-exit' && e.entryNs !== undefined) {
    const entry: RecorderEvent = { kind: 'softirq-entry', tMonoNs: e.entryNs, cpu: e.cpu, vec: e.vec };
    pushEvent(ring, entry);
    onEvent?.(entry);
  }
  pushEvent(ring, e);
  onEvent?.(e);
}

/** The time span the ring holds for every CPU it has seen: [latest first event, earliest last event]. */
export function ringCoverage(ring: EventRing): { fromMonoNs: bigint; toMonoNs: bigint } | null {
  let from: bigint | null = null, to: bigint | null = null;
  for (const q of ring.cpus.values()) {
    const first = q.events[q.head], last = q.events[q.events.length - 1];
    if (!first || !last) continue;
    if (from === null || first.tMonoNs > from) from = first.tMonoNs;
    if (to === null || last.tMonoNs < to) to = last.tMonoNs;
  }
  return from === null || to === null ? null : { fromMonoNs: from, toMonoNs: to };
}

/**
 * What each CPU ran at `tMonoNs`: the task switched in by the last switch
 * before it that the ring holds (looking back at most `maxScan` events per CPU).
 */
export function tasksAt(ring: EventRing, tMonoNs: bigint, maxScan = 200_000): Map<number, { pid: number; prio: number; comm: string }> {
  const out = new Map<number, { pid: number; prio: number; comm: string }>();
  for (const [cpu, q] of ring.cpus) {
    let lo = q.head, hi = q.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (q.events[mid]!.tMonoNs < tMonoNs) lo = mid + 1; else hi = mid;
    }
    for (let i = lo - 1; i >= q.head && lo - i <= maxScan; i--) {
      const e = q.events[i]!;
      if (e.kind === 'switch') { out.set(cpu, { pid: e.nextPid, prio: e.nextPrio, comm: e.nextComm }); break; }
    }
  }
  return out;
}

/** All events of all CPUs in [fromMonoNs, toMonoNs], in time order (a copy). */
export function ringSlice(ring: EventRing, fromMonoNs: bigint, toMonoNs: bigint): RecorderEvent[] {
  const out: RecorderEvent[] = [];
  for (const q of ring.cpus.values()) {
    let lo = q.head, hi = q.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (q.events[mid]!.tMonoNs < fromMonoNs) lo = mid + 1; else hi = mid;
    }
    for (let i = lo; i < q.events.length; i++) {
      const e = q.events[i]!;
      if (e.tMonoNs > toMonoNs) break;
      out.push(e);
    }
  }
  return out.sort((a, b) => (a.tMonoNs < b.tMonoNs ? -1 : a.tMonoNs > b.tMonoNs ? 1 : 0));
}
