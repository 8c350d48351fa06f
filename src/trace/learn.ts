/**
 * Learning frame layouts from live traffic: run learn.bt on the interfaces
 * of the trace, put the printed words back into frames, and scan each one
 * with the codec into a FrameLayout. Stops when every wanted stream has a
 * layout, or at the timeout.
 */
import { generateLearnProgram } from './generate.ts';
import { layoutFromFrame, layoutKey, type FrameLayout } from './layout.ts';
import { isMapFullWarning, parseLearnLine, wordsToBytes } from './parse.ts';
import { startBpftrace } from './session.ts';
import type { ResolvedInterface } from './interfaces.ts';
import type { StreamSpec } from './config.ts';

export interface LearnOptions {
  interfaces: ResolvedInterface[];
  /** Tracepoints to learn at; default netif_receive_skb. */
  probes?: string[];
  /** Streams to wait for; empty = learn until the timeout. */
  wanted?: StreamSpec[];
  timeoutMs?: number;
  /** With no frame seen after timeoutMs, wait this long in all for the first one (default 15 s). */
  maxWaitMs?: number;
  framesPerKey?: number;
  maxFrames?: number;
  bpftrace?: string;
  /** Called once learn.bt is attached (tests start traffic here). */
  onReady?: () => void;
}

export interface LearnResult {
  layouts: FrameLayout[];
  /** Frames put together and scanned. */
  frames: number;
  /** Frames that were not well-formed SV, or not traceable, with the reason. */
  rejected: Array<{ reason: string; count: number }>;
  /** Wanted streams that never showed up. */
  missing: StreamSpec[];
  /** Failed map updates (more distinct APPID/Length pairs than bpftrace's map holds): some streams may be missing. */
  mapFullWarnings: number;
  program: string;
}

const CHUNK = 128;
const MAX_BYTES = 12 * CHUNK;

function covers(layouts: FrameLayout[], s: StreamSpec): boolean {
  return layouts.some((l) => (s.appId === undefined || l.appId === s.appId) && l.asdus.some((a) => a.svId === s.svId));
}

export async function learnLayouts(opts: LearnOptions): Promise<LearnResult> {
  const wanted = opts.wanted ?? [];
  const program = generateLearnProgram({
    probes: opts.probes ?? ['tracepoint:net:netif_receive_skb'],
    interfaces: opts.interfaces,
    framesPerKey: opts.framesPerKey ?? 16,
    maxFrames: opts.maxFrames ?? 2000,
  });
  const partial = new Map<string, { bytes: Uint8Array; need: number; got: Set<number> }>();
  const byKey = new Map<string, FrameLayout>();
  const rejected = new Map<string, number>();
  let frames = 0;
  let mapFull = 0;
  let done!: () => void;
  const complete = new Promise<void>((res) => { done = res; });

  const onFrame = (bytes: Uint8Array) => {
    frames++;
    try {
      const l = layoutFromFrame(bytes);
      byKey.set(layoutKey(l), l);
      if (wanted.length > 0 && wanted.every((s) => covers([...byKey.values()], s))) done();
    } catch (e) {
      const reason = (e as { code?: string }).code ?? String(e);
      rejected.set(reason, (rejected.get(reason) ?? 0) + 1);
    }
  };
  const run = startBpftrace({
    program,
    readyMarker: 'LEARN_READY',
    ...(opts.bpftrace ? { bpftrace: opts.bpftrace } : {}),
    onLine: (line) => {
      const c = parseLearnLine(line);
      if (!c) {
        if (isMapFullWarning(line)) mapFull++;
        return;
      }
      let p = partial.get(c.key);
      if (!p) {
        const avail = Math.max(0, Math.min(c.available, MAX_BYTES));
        p = { bytes: new Uint8Array(Math.ceil(avail / CHUNK) * CHUNK), need: Math.ceil(avail / CHUNK), got: new Set() };
        partial.set(c.key, p);
      }
      if (c.chunk >= p.need) return;
      wordsToBytes(c.words, p.bytes, c.chunk * CHUNK);
      p.got.add(c.chunk);
      if (p.got.size === p.need) {
        partial.delete(c.key);
        onFrame(p.bytes.subarray(0, Math.min(c.available, MAX_BYTES)));
      }
    },
  });
  try {
    await run.ready;
    opts.onReady?.();
    // Learn for timeoutMs; when no frame has arrived by then (bpftrace's output lags on a slow or
    // emulated machine, or the traffic starts late), wait on for the first one, up to maxWaitMs.
    const started = Date.now();
    const minMs = opts.timeoutMs ?? 3000, maxMs = Math.max(minMs, opts.maxWaitMs ?? 15_000);
    const timer = setInterval(() => {
      const elapsed = Date.now() - started;
      if (elapsed >= minMs && (frames > 0 || elapsed >= maxMs)) done();
    }, 100);
    await Promise.race([complete, run.exited]);
    clearInterval(timer);
  } finally {
    await run.stop();
  }
  const layouts = [...byKey.values()];
  return {
    layouts,
    frames,
    rejected: [...rejected].map(([reason, count]) => ({ reason, count })),
    missing: wanted.filter((s) => !covers(layouts, s)),
    mapFullWarnings: mapFull,
    program,
  };
}
