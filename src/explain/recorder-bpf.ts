/**
 * The flight recorder's binary engine: native/bpf/recorder.bpf.c, loaded by
 * the addon (bpf_recorder.c) and read on its reader thread every
 * millisecond, as the points' bpf engine (src/trace/bpf-engine.ts). Its
 * records become the same events as recorder.bt's lines (events.ts), into
 * the same ring; recorder.bt stays the readable reference of what it records.
 *
 * Nothing is lost silently: the kernel counts, per CPU, the records written,
 * those the ring had no room for and the short softirqs left out; a CPU that
 * lost records leads its next one with a gap record (from, to, how many),
 * which becomes a RecorderGap, so explanations in that span say they cannot
 * be trusted.
 */
import { SvtraceError } from '../errors.ts';
import { bpfAddon, bpfEngineUnavailable, bpfObjectPath } from '../trace/bpf-engine.ts';
import { createRing, recordEvent, type RecorderEvent } from './events.ts';
import type { Recorder, RecorderGap, RecorderOptions, RecorderStats } from './recorder.ts';
import { softirqMinOf, validateCpus, windowOf } from './recorder.ts';

/** recorder.h's sizes, checked against the addon's at open. */
export const RECORDER_SIZES = { config: 528, rec: 64, counters: 3, maxCpus: 4096, configCpusOffset: 16, recCommOffset: 48 } as const;
const C_EMITTED = 0, C_LOST = 1, C_SHORT = 2;
const REC_SWITCH = 1, REC_WAKEUP = 2, REC_MIGRATE = 3, REC_SOFTIRQ = 4, REC_IRQ_ENTRY = 5, REC_IRQ_EXIT = 6, REC_GAP = 7;
const OBJECT = 'recorder.bpf.o';

interface RecorderBpfStats { counters: BigUint64Array; ncpus: number; pending?: BigUint64Array; skippedRuns: number; records: number; batches: number; polls: number; pollsDeferred: number; running: boolean }
type Handle = { readonly __bpfRecorder: unique symbol };
interface RecorderAddon {
  bpfRecorderSizes?(): Record<string, number>;
  bpfRecorderOpen(o: { object: string; config: Uint8Array; ringBytes: number; pollNs: number; maxBatchDelayNs: number }, onBatch: (b: { records: Buffer; count: number; final: boolean }) => void): Handle;
  bpfTraceStats(h: Handle): RecorderBpfStats;
  bpfTraceStop(h: Handle): Promise<RecorderBpfStats>;
}

/** Why the binary recorder cannot run here, or null. */
export function bpfRecorderUnavailable(): string | null {
  const why = bpfEngineUnavailable();
  if (why !== null) return why;
  if (typeof (bpfAddon() as unknown as RecorderAddon).bpfRecorderSizes !== 'function') return 'the addon predates the binary recorder (npm run install)';
  return null;
}

/** The config map's value (recorder.h's svr_config) from validated options. */
export function packRecorderConfig(cpusIn: readonly number[], softirqMinNs: number): Uint8Array {
  const cpus = validateCpus(cpusIn);
  softirqMinOf({ softirqMinNs });
  const b = new Uint8Array(RECORDER_SIZES.config);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0, true);
  v.setUint8(4, cpus.length === 0 ? 1 : 0); // byte 5 (state_arg) is the loader's, from the kernel's BTF
  v.setBigUint64(8, BigInt(softirqMinNs), true);
  for (const c of cpus) {
    const at = RECORDER_SIZES.configCpusOffset + (c >> 6) * 8;
    v.setBigUint64(at, v.getBigUint64(at, true) | (1n << BigInt(c & 63)), true);
  }
  return b;
}

function commAt(buf: Buffer, at: number): string {
  let end = at;
  while (end < at + 16 && buf[end] !== 0) end++;
  return buf.toString('utf8', at, end);
}

/**
 * The records of one batch into events (a gap record into `gaps`). Exported
 * for tests: the byte layout is recorder.h's svr_rec.
 */
export function readRecorderRecords(buf: Buffer, onEvent: (e: RecorderEvent) => void, onGap: (g: RecorderGap) => void, onUnknown: (type: number) => void): void {
  const n = RECORDER_SIZES.rec;
  for (let at = 0; at + n <= buf.length; at += n) {
    const type = buf[at]!, cpu = buf.readUInt16LE(at + 2), pid = buf.readInt32LE(at + 4);
    const tMonoNs = buf.readBigUInt64LE(at + 8);
    switch (type) {
      case REC_SWITCH:
        onEvent({ kind: 'switch', tMonoNs, cpu, prevPid: pid, prevPrio: buf.readInt32LE(at + 24), prevState: Number(buf.readBigUInt64LE(at + 16) & 0xffffn), nextPid: buf.readInt32LE(at + 36), nextPrio: buf.readInt32LE(at + 40), nextComm: commAt(buf, at + 48) });
        break;
      case REC_WAKEUP:
        onEvent({ kind: 'wakeup', tMonoNs, cpu, pid, prio: buf.readInt32LE(at + 24), targetCpu: buf.readInt32LE(at + 28), comm: commAt(buf, at + 48) });
        break;
      case REC_MIGRATE:
        onEvent({ kind: 'migrate', tMonoNs, cpu, pid, prio: buf.readInt32LE(at + 24), origCpu: buf.readInt32LE(at + 28), destCpu: buf.readInt32LE(at + 32), comm: commAt(buf, at + 48) });
        break;
      case REC_SOFTIRQ: {
        const entryNs = buf.readBigUInt64LE(at + 16);
        onEvent({ kind: 'softirq-exit', tMonoNs, cpu, vec: pid, ...(entryNs > 0n && entryNs <= tMonoNs ? { entryNs } : {}) });
        break;
      }
      case REC_IRQ_ENTRY:
        onEvent({ kind: 'irq-entry', tMonoNs, cpu, irq: pid, name: commAt(buf, at + 48) });
        break;
      case REC_IRQ_EXIT:
        onEvent({ kind: 'irq-exit', tMonoNs, cpu, irq: pid, name: '' });
        break;
      case REC_GAP:
        onGap({ cpu, fromMonoNs: buf.readBigUInt64LE(at + 16), toMonoNs: tMonoNs, lost: buf.readInt32LE(at + 24) });
        break;
      default:
        onUnknown(type);
    }
  }
}

export interface BpfRecorderOptions extends RecorderOptions {
  /** Ring buffer bytes, a power of two (default 16 MiB: 262 144 events, seconds of a busy machine). */
  ringBytes?: number;
}

export async function startBpfRecorder(o: BpfRecorderOptions = {}): Promise<Recorder> {
  const why = bpfRecorderUnavailable();
  if (why !== null) throw new SvtraceError('EXPLAIN_RECORDER_FAILED', `the binary flight recorder cannot run here: ${why}`, { hint: 'use the bpftrace engine (--engine bpftrace), or install libbpf-dev and clang-14 and rebuild (scripts/setup.sh)' });
  const windowS = windowOf(o);
  const cpus = validateCpus(o.cpus ?? []);
  const softirqMinNs = softirqMinOf(o);
  const config = packRecorderConfig(cpus, softirqMinNs);
  const addon = bpfAddon() as unknown as RecorderAddon;
  const sizes = addon.bpfRecorderSizes!();
  for (const [k, v] of Object.entries(RECORDER_SIZES)) {
    if (sizes[k] !== v) throw new SvtraceError('TRACE_BPF_INVALID', `the addon's recorder ${k} is ${sizes[k]}, svtrace expects ${v}`, { hint: 'rebuild the addon (npm run install)' });
  }
  const ring = createRing(BigInt(Math.round(windowS * 1e9)));
  const gaps: RecorderGap[] = [];
  const otherLines: string[] = [];
  let events = 0, lostInRun = 0, finalSeen = false;
  const onEvent = (e: RecorderEvent) => {
    events++;
    recordEvent(ring, e, o.onEvent);
  };
  const onGap = (g: RecorderGap) => {
    lostInRun += g.lost;
    o.onWarning?.(`recorder: the ring buffer was full, ${g.lost} event(s) of CPU ${g.cpu} lost (svtrace could not keep up)`);
    if (gaps.length < 100_000) gaps.push(g);
  };
  const onUnknown = (type: number) => {
    if (otherLines.length < 100) otherLines.push(`a record of unknown type ${type}`);
  };
  let handle: Handle;
  try {
    handle = addon.bpfRecorderOpen({
      object: bpfObjectPath(OBJECT)!, config, ringBytes: o.ringBytes ?? 16 << 20, pollNs: 1_000_000, maxBatchDelayNs: 10_000_000,
    }, (b) => {
      readRecorderRecords(b.records, onEvent, onGap, onUnknown);
      if (b.final) finalSeen = true;
    });
  } catch (e) {
    const err = e as Error & { code?: string };
    throw new SvtraceError('EXPLAIN_RECORDER_FAILED', `the binary flight recorder did not start: ${err.message}`, { hint: 'run `svtrace doctor`; the bpftrace engine (--engine bpftrace) may still work', cause: e });
  }
  const startedAt = Date.now();
  let last: RecorderBpfStats | null = null;
  let final: RecorderStats | null = null;
  const sum = (s: RecorderBpfStats, kind: number) => {
    let n = 0n;
    for (let c = 0; c < s.ncpus; c++) n += s.counters[kind * s.ncpus + c]!;
    return Number(n);
  };
  const stats = (): RecorderStats => {
    if (final) return final;
    const durationMs = Date.now() - startedAt;
    const s = last;
    const emitted = s ? sum(s, C_EMITTED) : null, lost = s ? sum(s, C_LOST) : 0;
    // the kernel's count is final only after stop (before, records are still in the ring)
    const kernelEvents = s && !s.running && emitted !== null ? emitted + lost : null;
    const lostLines = kernelEvents === null ? 0 : Math.max(0, kernelEvents - events);
    return {
      durationMs, events, eventsPerS: durationMs > 0 ? events / (durationMs / 1000) : 0, lostEvents: lost, kernelEvents,
      lostLines, lostInRun, notReceivedAtStop: Math.max(0, lostLines - lostInRun), otherLines, ringOverflowed: ring.overflowed,
      shortSoftirqs: s ? sum(s, C_SHORT) : null, softirqMinNs, engine: 'bpf', skippedRuns: s ? s.skippedRuns : null,
    };
  };
  const timer = setInterval(() => {
    try { last = addon.bpfTraceStats(handle); } catch { /* ended */ }
  }, 1000);
  timer.unref();
  let stopping: Promise<RecorderStats> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(timer);
      try {
        last = await addon.bpfTraceStop(handle);
      } catch (e) {
        o.onWarning?.(`recorder: the binary recorder did not stop cleanly: ${(e as Error).message}`);
        try { last = addon.bpfTraceStats(handle); } catch { /* gone */ }
      }
      // losses that no record came after to report: gaps up to the stop
      const endNs = process.hrtime.bigint();
      for (let c = 0; last?.pending && c < last.ncpus; c++) {
        const lost = Number(last.pending[2 * c + 1]!);
        if (lost > 0) onGap({ cpu: c, fromMonoNs: last.pending[2 * c]!, toMonoNs: endNs, lost });
      }
      final = stats();
      if (!finalSeen) o.onWarning?.('recorder: the reader ended without its last batch: events still in the ring are missing');
      if (final.skippedRuns) o.onWarning?.(`recorder: the kernel skipped ${final.skippedRuns} run(s) of the recorder's programs (one fired while it already ran on that CPU): those events are missing`);
      if (final.lostLines > 0) o.onWarning?.(`recorder: ${final.lostLines} events recorded in the kernel never reached svtrace (${final.lostInRun} lost to a full ring while running, ${final.notReceivedAtStop} otherwise)`);
      return final;
    })();
    return stopping;
  };
  const summary = cpus.length === 0 ? 'every CPU' : `CPUs ${cpus.join(', ')} (wakeups and migrations that target them too)`;
  return {
    ring, gaps, pid: process.pid, stats, stop,
    program: `# native/bpf/recorder.bpf.c (the binary flight recorder; src/explain/recorder.bt is its readable equivalent)\n# ${summary}; softirqs shorter than ${softirqMinNs} ns counted, not recorded\n`,
  };
}
