/**
 * The flight recorder: recorder.bt generated for chosen CPUs, run beside
 * the point tracer, its lines parsed into a bounded per-CPU ring. Rates and
 * losses are measured and reported, never silent.
 */
import { readFileSync } from 'node:fs';
import { SvtraceError } from '../errors.ts';
import { parseLost, parseMapLine } from '../trace/parse.ts';
import { startBpftrace } from '../trace/session.ts';
import { createRing, parseRecorderLine, recordEvent, type EventRing, type RecorderEvent } from './events.ts';

export interface RecorderSpec {
  /** CPUs to record; empty or absent = all. */
  cpus?: number[];
  /** Softirqs shorter than this are counted in the kernel, not printed (default 2 000 ns; 0 prints every one). */
  softirqMinNs?: number;
}

const DEFAULT_SOFTIRQ_MIN_NS = 2000;

/** The softirq minimum of a spec, validated (both engines' rule). */
export function softirqMinOf(spec: RecorderSpec): number {
  const minNs = spec.softirqMinNs ?? DEFAULT_SOFTIRQ_MIN_NS;
  if (!Number.isInteger(minNs) || minNs < 0 || minNs > 1_000_000) throw new SvtraceError('EXPLAIN_INVALID_SOFTIRQ_MIN', `a softirq minimum of ${minNs} ns is not an integer 0..1 000 000`, { hint: 'e.g. 2000 (2 µs); 0 records every softirq' });
  return minNs;
}

/** The ring's window in seconds, validated (both engines' rule). */
export function windowOf(o: { windowS?: number }): number {
  const windowS = o.windowS ?? 2;
  if (!(windowS > 0 && windowS <= 60)) throw new SvtraceError('EXPLAIN_INVALID_WINDOW', `recorder window ${windowS} s is not in (0, 60]`, { hint: 'e.g. 2 s' });
  return windowS;
}

const MAX_CPU = 4095;

function loadTemplate(): string {
  for (const url of [new URL('./recorder.bt', import.meta.url), new URL('../src/explain/recorder.bt', import.meta.url)]) {
    try {
      return readFileSync(url, 'utf8');
    } catch {
      // next place
    }
  }
  throw new SvtraceError('EXPLAIN_TEMPLATE_MISSING', 'the bpftrace template recorder.bt is not installed', { hint: 'reinstall svtrace: src/explain/recorder.bt must ship with it' });
}

/** Validated, sorted, unique CPU numbers. */
export function validateCpus(cpus: readonly unknown[]): number[] {
  for (const c of cpus) {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > MAX_CPU) {
      throw new SvtraceError('EXPLAIN_INVALID_CPU', `CPU ${JSON.stringify(c)} is not an integer 0..${MAX_CPU}`, { hint: 'give CPU numbers as listed by lscpu, e.g. --cpus 1,3' });
    }
  }
  return [...new Set(cpus as number[])].sort((a, b) => a - b);
}

function anyOf(field: string, cpus: number[]): string {
  return cpus.map((c) => `${field} == ${c}`).join(' || ');
}

/** recorder.bt with its filters filled in from validated CPU numbers only. */
export function generateRecorderProgram(spec: RecorderSpec = {}): string {
  const cpus = validateCpus(spec.cpus ?? []);
  const all = cpus.length === 0;
  const minNs = softirqMinOf(spec);
  const params: Record<string, string> = {
    SUMMARY: all ? ' *   every CPU' : ` *   CPUs ${cpus.join(', ')} (wakeups and migrations that target them too)`,
    CPU_FILTER: all ? '1' : anyOf('cpu', cpus),
    WAKEUP_FILTER: all ? '1' : `${anyOf('cpu', cpus)} || ${anyOf('args->target_cpu', cpus)}`,
    MIGRATE_FILTER: all ? '1' : `${anyOf('args->orig_cpu', cpus)} || ${anyOf('args->dest_cpu', cpus)}`,
    SOFTIRQ_MIN_NS: String(minNs),
  };
  return loadTemplate().replace(/\{\{([A-Z_]+)\}\}/g, (_m, k: string) => {
    const v = params[k];
    if (v === undefined) throw new SvtraceError('EXPLAIN_TEMPLATE_PARAM', `recorder.bt needs parameter ${k}`);
    return v;
  });
}

export interface RecorderStats {
  durationMs: number;
  /** Event lines received and parsed. */
  events: number;
  eventsPerS: number;
  /** Sum of bpftrace's "Lost N events". */
  lostEvents: number;
  /** Events the kernel emitted (from @events at exit), null when END did not run. */
  kernelEvents: number | null;
  /** Kernel count minus lines received (0 when unknown): lostInRun plus what was still in flight at stop. */
  lostLines: number;
  /** Lines lost while running, exact up to each CPU's last checkpoint (every 4096 events). */
  lostInRun: number;
  /** Lines the kernel emitted that were still unread when bpftrace stopped (lostLines − lostInRun). */
  notReceivedAtStop: number;
  /** Lines that were neither events nor known bpftrace output. */
  otherLines: string[];
  /** Events pushed out of a full ring before they aged out. */
  ringOverflowed: number;
  /** Softirqs shorter than softirqMinNs, counted in the kernel and not printed (null when END did not run). */
  shortSoftirqs?: number | null;
  softirqMinNs?: number;
  /** Runs of the recorder's programs the kernel skipped (bpf engine, Linux 6.2+; absent or null: not counted). */
  skippedRuns?: number | null;
  /** Which engine recorded: the generated recorder.bt (bpftrace) or recorder.bpf.c (bpf). */
  engine?: RecorderEngine;
}

export type RecorderEngine = 'bpftrace' | 'bpf';

export interface RecorderOptions extends RecorderSpec {
  /** How much history to keep per CPU (default 2 s). */
  windowS?: number;
  bpftrace?: string;
  /** Per-CPU bpftrace output buffer in 4 KiB pages (default 2048). */
  perfBufferPages?: number;
  onEvent?: (e: RecorderEvent) => void;
  onWarning?: (message: string) => void;
}

/** A span of one CPU's events in which the recorder lost some: explanations there cannot be trusted. */
export interface RecorderGap { cpu: number; fromMonoNs: bigint; toMonoNs: bigint; lost: number }

export interface Recorder {
  ring: EventRing;
  /** Where events were lost while running (between two checkpoints of a CPU). */
  gaps: RecorderGap[];
  program: string;
  pid: number | undefined;
  /** Live counters (the kernel count arrives only at stop). */
  stats(): RecorderStats;
  stop(): Promise<RecorderStats>;
}

export async function startRecorder(o: RecorderOptions = {}): Promise<Recorder> {
  const windowS = windowOf(o);
  const pages = o.perfBufferPages ?? 2048;
  if (!Number.isInteger(pages) || pages < 1 || (pages & (pages - 1)) !== 0) throw new SvtraceError('EXPLAIN_INVALID_BUFFER', `perf buffer of ${pages} pages is not a power of two`, { hint: 'e.g. 2048' });
  const program = generateRecorderProgram(o);
  const ring = createRing(BigInt(Math.round(windowS * 1e9)));
  let events = 0, lostEvents = 0, kernelEvents: number | null = null, ended = false;
  const otherLines: string[] = [];
  const kernelPerCpu = new Map<number, number>();
  const shortPerCpu = new Map<number, number>();
  const receivedPerCpu = new Map<number, number>();
  const lostAtCheckpoint = new Map<number, number>();
  const lastEventT = new Map<number, bigint>();
  const checkpointT = new Map<number, bigint>();
  const gaps: RecorderGap[] = [];
  const onLine = (line: string) => {
    const e = parseRecorderLine(line);
    if (e) {
      events++;
      receivedPerCpu.set(e.cpu, (receivedPerCpu.get(e.cpu) ?? 0) + 1);
      lastEventT.set(e.cpu, e.tMonoNs);
      recordEvent(ring, e, o.onEvent);
      return;
    }
    if (line === 'SVTRACE_RECORDER_END') { ended = true; return; }
    const q = /^Q (\d+) (\d+)$/.exec(line);
    if (q) {
      const cpu = Number(q[1]), lost = Number(q[2]) - (receivedPerCpu.get(cpu) ?? 0);
      const before = lostAtCheckpoint.get(cpu) ?? 0;
      const now = lastEventT.get(cpu) ?? 0n;
      if (lost > before) {
        o.onWarning?.(`recorder: ${lost - before} events of CPU ${cpu} never reached svtrace`);
        if (gaps.length < 100_000) gaps.push({ cpu, fromMonoNs: checkpointT.get(cpu) ?? 0n, toMonoNs: now, lost: lost - before });
      }
      lostAtCheckpoint.set(cpu, Math.max(lost, before));
      checkpointT.set(cpu, now);
      return;
    }
    const lost = parseLost(line);
    if (lost !== null) {
      lostEvents += lost;
      o.onWarning?.(`recorder: bpftrace lost ${lost} events`);
      return;
    }
    const m = parseMapLine(line);
    if (m && m.map === 'seq') { kernelPerCpu.set(m.key, m.value); return; }
    if (m && m.map === 'short') { shortPerCpu.set(m.key, m.value); return; }
    if (/^Attaching \d+ probes/.test(line) || line.trim() === '' || /^\s/.test(line) || /^~+$/.test(line.trim())) return;
    if (otherLines.length < 100) otherLines.push(line);
    o.onWarning?.(`recorder: bpftrace: ${line}`);
  };
  const run = startBpftrace({
    program, readyMarker: 'SVTRACE_RECORDER_READY', onLine, onStderr: onLine,
    env: { BPFTRACE_PERF_RB_PAGES: String(pages) },
    ...(o.bpftrace ? { bpftrace: o.bpftrace } : {}),
  });
  try {
    await run.ready;
  } catch (e) {
    throw new SvtraceError('EXPLAIN_RECORDER_FAILED', 'the flight recorder (bpftrace) did not start', { hint: e instanceof SvtraceError && e.hint ? e.hint : 'run svtrace doctor', cause: e });
  }
  const startedAt = Date.now();
  let final: RecorderStats | null = null;
  const stats = (): RecorderStats => {
    if (final) return final;
    const durationMs = Date.now() - startedAt;
    if (ended) kernelEvents = [...kernelPerCpu.values()].reduce((a, b) => a + b, 0);
    const lostLines = kernelEvents === null ? 0 : Math.max(0, kernelEvents - events);
    const lostInRun = [...lostAtCheckpoint.values()].reduce((a, b) => a + b, 0);
    return {
      durationMs, events, eventsPerS: durationMs > 0 ? events / (durationMs / 1000) : 0, lostEvents, kernelEvents,
      lostLines, lostInRun, notReceivedAtStop: Math.max(0, lostLines - lostInRun), otherLines, ringOverflowed: ring.overflowed,
      shortSoftirqs: ended ? [...shortPerCpu.values()].reduce((a, b) => a + b, 0) : null, softirqMinNs: softirqMinOf(o), engine: 'bpftrace',
    };
  };
  let stopping: Promise<RecorderStats> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      await run.stop(5000);
      final = stats();
      if (final.kernelEvents === null) o.onWarning?.('recorder: bpftrace ended without its END output: the kernel count of events is missing');
      else if (final.lostLines > 0) o.onWarning?.(`recorder: ${final.lostLines} events emitted in the kernel never reached svtrace (${final.lostInRun} while running, ${final.notReceivedAtStop} still in flight at stop)`);
      return final;
    })();
    return stopping;
  };
  return { ring, gaps, program, pid: run.pid, stats, stop };
}
