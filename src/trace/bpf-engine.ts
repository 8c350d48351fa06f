/**
 * The binary engine of `svtrace trace --engine bpf`: the fixed kernel
 * program native/bpf/points.bpf.c, loaded by the addon with libbpf, its maps
 * filled from the validated points and layouts (bpf-pack.ts); the addon's
 * thread reads its ring buffer every millisecond (no wake-up per frame) and
 * hands batches of records here, which become the same point events as
 * bpftrace's lines (events.ts). The bpftrace engine (svtrace.bt) stays the
 * readable reference of what the kernel side does.
 *
 * Nothing is lost silently: the kernel counts, per point, matched, unknown
 * and short frames and every record the ring had no room for; the lost ones
 * are warned about as they happen ('lost-events', as bpftrace's "Lost N
 * events") and end in the summary (lostEvents, and lostLines = matched minus
 * received).
 */
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { fileURLToPath } from 'node:url';
import { SvtraceError } from '../errors.ts';
import { loadAddon } from '../net/addon.ts';
import { BPF_SIZES, C_LOST, C_MATCHED, C_SHORT, C_UNKNOWN, packBpfConfig, readRecords } from './bpf-pack.ts';
import { handleFrame, handleUnknown, summarize, type Handlers, type TraceState, type TraceSummary } from './events.ts';
import type { FrameLayout } from './layout.ts';
import type { ProgramPoint } from './generate.ts';

export interface BpfStats {
  /** Per point id and kind (BigUint64Array of (maxPointId + 1) * counters). */
  counters: BigUint64Array;
  records: number;
  batches: number;
  polls: number;
  pollsDeferred: number;
  /** Runs of the engine's own programs the kernel skipped (recursion_misses; Linux 6.2+ counts them). */
  skippedRuns: number;
  running: boolean;
}

interface BpfBatch { records: Buffer; count: number; final: boolean }

type BpfHandle = { readonly __bpfTrace: unique symbol };

interface BpfAddon {
  bpfTraceAvailable(): boolean;
  bpfTraceSizes(): Record<string, number>;
  bpfTraceOpen(o: {
    object: string; config: Uint8Array; points: Uint8Array; layouts: Uint8Array; cands: Uint8Array;
    ringBytes: number; pollNs: number; maxBatchDelayNs: number; cpu?: number;
  }, onBatch: (b: BpfBatch) => void): BpfHandle;
  bpfTraceStats(h: BpfHandle): BpfStats;
  bpfTraceStop(h: BpfHandle): Promise<BpfStats>;
}

const OBJECT_DIR = 'native/build/Release/';
const OBJECT_FILE = OBJECT_DIR + 'points.bpf.o';

export function bpfAddon(): BpfAddon {
  return loadAddon() as unknown as BpfAddon;
}

/** Why the bpf engine (points and flight recorder) cannot run here, or null when it can (addon built with libbpf, its BPF objects, kernel BTF). */
export function bpfEngineUnavailable(): string | null {
  let addon: BpfAddon;
  try {
    addon = bpfAddon();
  } catch (e) {
    return (e as Error).message;
  }
  if (typeof addon.bpfTraceAvailable !== 'function' || !addon.bpfTraceAvailable()) return 'the addon was built without libbpf (install libbpf-dev and clang, then npm run install)';
  if (bpfObjectPath() === null) return `the BPF object ${OBJECT_FILE} was not built (install clang, then npm run install)`;
  // the flight recorder's object is built beside it (binding.gyp): one engine for both, or neither
  if (bpfObjectPath('recorder.bpf.o') === null) return `the BPF object ${OBJECT_DIR}recorder.bpf.o was not built (npm run install)`;
  if (!existsSync('/sys/kernel/btf/vmlinux')) return 'the kernel has no BTF (/sys/kernel/btf/vmlinux): the CO-RE program cannot be relocated';
  const [major = 0, minor = 0] = release().split(/[.-]/).map(Number);
  if (major < 5 || (major === 5 && minor < 17)) return `Linux ${release()} is older than 5.17 (the program compares words in a bpf_loop)`;
  return null;
}

/** Where a BPF object the addon's build compiled is (points.bpf.o, the trace engine's; recorder.bpf.o, the flight recorder's). */
/**
 * The engine when none is asked for, the same for the CLI, the library and
 * the demo: the binary engine where it can run (its observer effect is a
 * fraction of bpftrace's: npm run bench -- trace), else bpftrace, saying why.
 */
export function defaultTraceEngine(onFallback?: (why: string) => void): 'bpf' | 'bpftrace' {
  const why = bpfEngineUnavailable();
  if (why === null) return 'bpf';
  onFallback?.(why);
  return 'bpftrace';
}

export function bpfObjectPath(file = 'points.bpf.o'): string | null {
  const candidates = ['../../', '../'].map((up) => fileURLToPath(new URL(up + OBJECT_DIR + file, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? null;
}

export interface BpfEngineOptions {
  points: ProgramPoint[];
  layouts: FrameLayout[];
  unknownSamples: number;
  /** Ring buffer size in bytes, a power of two (default 16 MiB: about 1.4 s of 100 000 samples/s at two points). */
  ringBytes?: number;
  /** How often the addon's thread reads the ring (default 1000 µs). */
  pollUs?: number;
  /** Pin the reader thread to this CPU. */
  cpu?: number;
}

export interface BpfEngineRun {
  /** Stops matching, detaches, reads the ring to its end; resolves once every record was handled. */
  stop(): Promise<void>;
  /** Resolves when the engine has ended (after stop(), or a failure in a handler). */
  ended: Promise<{ error: unknown }>;
  stats(): BpfStats | null;
  summary(durationMs: number): TraceSummary;
}

/** Loads and attaches the engine; events flow into `state` and `h` until stop(). */
export function startBpfEngine(state: TraceState, h: Handlers, o: BpfEngineOptions): BpfEngineRun {
  const why = bpfEngineUnavailable();
  if (why !== null) throw new SvtraceError('TRACE_BPF_UNAVAILABLE', `the bpf trace engine cannot run here: ${why}`, { hint: 'use --engine bpftrace, or install libbpf-dev and clang-14 and rebuild (scripts/setup.sh)' });
  const addon = bpfAddon();
  const sizes = addon.bpfTraceSizes();
  for (const [k, v] of Object.entries(BPF_SIZES)) {
    if (sizes[k] !== v) throw new SvtraceError('TRACE_BPF_INVALID', `the addon's ${k} is ${sizes[k]}, svtrace expects ${v}`, { hint: 'rebuild the addon (npm run install)' });
  }
  const bytes = packBpfConfig(o.points, o.layouts, o.unknownSamples);
  const lostSeen = new Map<number, bigint>();
  const frame = (point: number, layout: number, cpu: number, tMonoNs: bigint, n: number, cnts: Uint16Array) => {
    if (!handleFrame(state, point, layout, tMonoNs, cpu, cnts, n, h)) {
      h.onWarning?.({ kind: 'bpftrace-output', message: `bpf engine: a record of point ${point} layout ${layout} that this trace does not know`, count: 1 });
    }
  };
  let resolveEnded!: (v: { error: unknown }) => void;
  const ended = new Promise<{ error: unknown }>((r) => { resolveEnded = r; });
  let finalSeen = false;
  let last: BpfStats | null = null;
  let handle: BpfHandle;
  try {
    handle = addon.bpfTraceOpen({
      object: bpfObjectPath()!, ...bytes, ringBytes: o.ringBytes ?? 16 << 20, pollNs: (o.pollUs ?? 1000) * 1000, maxBatchDelayNs: 10_000_000,
      ...(o.cpu !== undefined ? { cpu: o.cpu } : {}),
    }, (b) => {
      readRecords(b.records, frame, (u) => handleUnknown(state, u.point, u.bytes, h));
      if (b.final) finalSeen = true;
    });
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code && err.code.startsWith('TRACE_BPF_')) {
      throw new SvtraceError(err.code as 'TRACE_BPF_LOAD_FAILED', `bpf engine: ${err.message}`, { hint: 'run `svtrace doctor`; the bpftrace engine (--engine bpftrace) may still work', cause: e });
    }
    throw e;
  }
  /** Ring-full losses since the last look, per point, as warnings (bpftrace's "Lost N events"). */
  const checkLost = (s: BpfStats) => {
    for (const id of state.points.keys()) {
      const lost = s.counters[id * BPF_SIZES.counters + C_LOST]!;
      const before = lostSeen.get(id) ?? 0n;
      if (lost > before) {
        const n = Number(lost - before);
        state.lostEvents += n;
        lostSeen.set(id, lost);
        h.onWarning?.({ kind: 'lost-events', message: `bpf engine: the ring buffer was full, ${n} record(s) of ${state.points.get(id)!.point.name} lost (svtrace could not keep up)`, count: n });
      }
    }
  };
  const timer = setInterval(() => {
    try {
      last = addon.bpfTraceStats(handle);
      checkLost(last);
    } catch {
      // ended meanwhile
    }
  }, 1000);
  timer.unref();
  let stopping: Promise<void> | null = null;
  let skippedRuns: number | null = null;
  const stop = () => {
    stopping ??= (async () => {
      clearInterval(timer);
      let error: unknown = null;
      try {
        last = await addon.bpfTraceStop(handle);
      } catch (e) {
        error = e;
        try { last = addon.bpfTraceStats(handle); } catch { /* gone */ }
      }
      if (last) {
        // counted by the kernel per program (recursion protection), for this engine's programs only
        // (a flight recorder in the same process has its own)
        skippedRuns = last.skippedRuns;
        checkLost(last);
        for (const [id, p] of state.points) {
          const c = (k: number) => Number(last!.counters[id * BPF_SIZES.counters + k]!);
          p.summary.kernelFrames = c(C_MATCHED);
          p.summary.unknown = c(C_UNKNOWN);
          p.summary.short = c(C_SHORT);
        }
      }
      state.endSeen = finalSeen && error === null;
      resolveEnded({ error });
    })();
    return stopping;
  };
  return {
    stop, ended,
    stats: () => last,
    summary: (durationMs) => summarize(state, { code: 0, signal: null, killed: false }, durationMs, skippedRuns),
  };
}
