/**
 * Chrome / Perfetto trace export of one recorder window around late
 * samples: every task slice of every CPU as a complete event ('X'), softirq
 * and hard-IRQ time on their own rows, the sample points as instant events
 * ('i') and each late segment as a slice, with metadata naming the rows.
 * Open the JSON in https://ui.perfetto.dev or chrome://tracing. Pure.
 *
 * Rows: pid = CPU number (process "CPU n"), tid = task pid (thread "comm
 * (pid)"); softirq rows tid = 1 000 000 + CPU, IRQ rows 2 000 000 + CPU;
 * samples in the process SAMPLES_PID. ts and dur are µs since the window's
 * start (fractions keep the ns).
 */
import { softirqName, type RecorderEvent } from './events.ts';
import type { SamplePoint } from './explain.ts';

export interface ChromeEvent {
  name: string;
  ph: 'X' | 'i' | 'M';
  ts: number;
  pid: number;
  tid: number;
  dur?: number;
  s?: 'g' | 'p' | 't';
  cat?: string;
  args?: Record<string, string | number>;
}

export interface ChromeTrace {
  traceEvents: ChromeEvent[];
  displayTimeUnit: 'ns';
  otherData: { clock: string; windowStartMonoNs: string; windowEndMonoNs: string };
}

export interface TraceWindow { events: readonly RecorderEvent[]; fromMonoNs: bigint; toMonoNs: bigint }

export interface MarkedSample {
  /** e.g. "MU01 smpCnt 7 Thyp 1 830 µs". */
  name: string;
  points: SamplePoint[];
  /** The explanation, shown in the slice's args. */
  text?: string;
}

export const SAMPLES_PID = 100_000;
const SOFTIRQ_TID = 1_000_000, IRQ_TID = 2_000_000;

/**
 * `knownComms`: names of tasks seen before the window; `initialTasks`: what
 * each CPU ran when the window opens (a task that runs all through it has
 * no switch in it to name it or show it).
 */
export function exportChromeTrace(window: TraceWindow, samples: readonly MarkedSample[], knownComms?: ReadonlyMap<number, string>, initialTasks?: ReadonlyMap<number, { pid: number; prio: number; comm: string }>): ChromeTrace {
  const from = window.fromMonoNs, to = window.toMonoNs;
  const ts = (t: bigint) => Number((t < from ? from : t > to ? to : t) - from) / 1000;
  const out: ChromeEvent[] = [];
  const meta: ChromeEvent[] = [];
  const threadNames = new Map<string, string>();
  const name = (pid: number, tid: number, n: string) => { threadNames.set(`${pid}/${tid}`, n); };
  const cpus = new Set<number>();
  const events = [...window.events].filter((e) => e.tMonoNs >= from && e.tMonoNs <= to)
    .sort((a, b) => (a.tMonoNs < b.tMonoNs ? -1 : a.tMonoNs > b.tMonoNs ? 1 : 0));
  const comms = new Map<number, string>(knownComms ?? []);
  for (const e of events) if (e.kind === 'switch') comms.set(e.nextPid, e.nextComm); else if (e.kind === 'wakeup' || e.kind === 'migrate') comms.set(e.pid, e.comm);
  const running = new Map<number, { pid: number; prio: number; since: bigint }>();
  for (const [cpu, t] of initialTasks ?? []) {
    running.set(cpu, { pid: t.pid, prio: t.prio, since: from });
    if (!comms.has(t.pid)) comms.set(t.pid, t.comm);
    cpus.add(cpu);
  }
  const soft = new Map<number, { vec: number; since: bigint }>();
  const irq = new Map<number, { irq: number; name: string; since: bigint }>();
  const slice = (cpu: number, pid: number, prio: number, since: bigint, until: bigint) => {
    const comm = comms.get(pid) ?? (pid === 0 ? `swapper/${cpu}` : '?');
    out.push({ name: comm, ph: 'X', ts: ts(since), dur: Math.max(0, ts(until) - ts(since)), pid: cpu, tid: pid, cat: 'sched', args: { pid, prio } });
    name(cpu, pid, `${comm} (${pid})`);
  };
  for (const e of events) {
    cpus.add(e.cpu);
    switch (e.kind) {
      case 'switch': {
        const r = running.get(e.cpu);
        slice(e.cpu, e.prevPid, e.prevPrio, r?.since ?? from, e.tMonoNs);
        running.set(e.cpu, { pid: e.nextPid, prio: e.nextPrio, since: e.tMonoNs });
        break;
      }
      case 'wakeup':
        out.push({ name: `wakeup ${e.comm} (${e.pid})`, ph: 'i', s: 't', ts: ts(e.tMonoNs), pid: e.cpu, tid: running.get(e.cpu)?.pid ?? 0, cat: 'sched', args: { pid: e.pid, targetCpu: e.targetCpu } });
        break;
      case 'migrate':
        out.push({ name: `migrate ${e.comm} (${e.pid}) CPU ${e.origCpu} → ${e.destCpu}`, ph: 'i', s: 'p', ts: ts(e.tMonoNs), pid: e.cpu, tid: running.get(e.cpu)?.pid ?? 0, cat: 'sched' });
        break;
      case 'softirq-entry': soft.set(e.cpu, { vec: e.vec, since: e.tMonoNs }); break;
      case 'softirq-exit': {
        const s = soft.get(e.cpu);
        soft.delete(e.cpu);
        out.push({ name: softirqName(e.vec), ph: 'X', ts: ts(s?.since ?? from), dur: Math.max(0, ts(e.tMonoNs) - ts(s?.since ?? from)), pid: e.cpu, tid: SOFTIRQ_TID + e.cpu, cat: 'softirq' });
        name(e.cpu, SOFTIRQ_TID + e.cpu, 'softirq');
        break;
      }
      case 'irq-entry': irq.set(e.cpu, { irq: e.irq, name: e.name, since: e.tMonoNs }); break;
      case 'irq-exit': {
        const s = irq.get(e.cpu);
        irq.delete(e.cpu);
        out.push({ name: `IRQ ${e.irq}${s?.name ? ` ${s.name}` : ''}`, ph: 'X', ts: ts(s?.since ?? from), dur: Math.max(0, ts(e.tMonoNs) - ts(s?.since ?? from)), pid: e.cpu, tid: IRQ_TID + e.cpu, cat: 'irq' });
        name(e.cpu, IRQ_TID + e.cpu, 'hard IRQ');
        break;
      }
    }
  }
  // what still runs at the window's end
  for (const [cpu, r] of running) slice(cpu, r.pid, r.prio, r.since, to);
  for (const [cpu, s] of soft) {
    out.push({ name: softirqName(s.vec), ph: 'X', ts: ts(s.since), dur: Math.max(0, ts(to) - ts(s.since)), pid: cpu, tid: SOFTIRQ_TID + cpu, cat: 'softirq' });
    name(cpu, SOFTIRQ_TID + cpu, 'softirq');
  }
  samples.forEach((s, k) => {
    const tid = k + 1;
    name(SAMPLES_PID, tid, s.name);
    const sorted = [...s.points].sort((a, b) => (a.tMonoNs < b.tMonoNs ? -1 : 1));
    for (const p of sorted) out.push({ name: p.point, ph: 'i', s: 't', ts: ts(p.tMonoNs), pid: SAMPLES_PID, tid, cat: 'sample', args: { cpu: p.cpu } });
    const a = sorted[0], b = sorted[sorted.length - 1];
    if (a && b) out.push({ name: s.name, ph: 'X', ts: ts(a.tMonoNs), dur: Math.max(0, ts(b.tMonoNs) - ts(a.tMonoNs)), pid: SAMPLES_PID, tid, cat: 'sample', ...(s.text ? { args: { explanation: s.text } } : {}) });
  });
  for (const cpu of [...cpus].sort((a, b) => a - b)) meta.push({ name: 'process_name', ph: 'M', ts: 0, pid: cpu, tid: 0, args: { name: `CPU ${cpu}` } });
  if (samples.length > 0) meta.push({ name: 'process_name', ph: 'M', ts: 0, pid: SAMPLES_PID, tid: 0, args: { name: 'late samples' } });
  for (const [key, n] of threadNames) {
    const [pid, tid] = key.split('/').map(Number) as [number, number];
    meta.push({ name: 'thread_name', ph: 'M', ts: 0, pid, tid, args: { name: n } });
  }
  return {
    traceEvents: [...meta, ...out], displayTimeUnit: 'ns',
    otherData: { clock: 'CLOCK_MONOTONIC, ts in µs since windowStartMonoNs', windowStartMonoNs: String(from), windowEndMonoNs: String(to) },
  };
}
