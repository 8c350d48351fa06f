/**
 * The native engine of `svtrace inspect` (native/inspect_scan*.c): the same
 * InspectResult as the TypeScript inspector (inspect.ts, the reference), from
 * a bulk scan in C on Node's thread pool. The engine hands back compact
 * numbers and typed arrays; this file turns them into the report, with the
 * same rounding and ordering as inspect.ts.
 *
 * Whenever the C engine is unsure (a capture the TypeScript reader would
 * reject, an unusual timestamp resolution, stdin) it answers `fallback` and
 * the caller runs the TypeScript path, which gives the exact result or error.
 *
 * Engine choice: `engine` option, else SVTRACE_INSPECT_ENGINE=auto|native|ts
 * (default auto: native when the addon is built).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SvtraceError } from '../errors.ts';
import { createFrameScan, formatMac, latin1, SCAN_ERRORS, scanFrame } from '../sv/index.ts';
import { nsString, round, sortStreams, type InspectResult, type StreamReport } from './inspect.ts';

export type InspectEngine = 'auto' | 'native' | 'ts';

interface NativeStream {
  appId: number;
  svId: Uint8Array;
  src: Uint8Array;
  dst: Uint8Array;
  vlanPresent: boolean;
  vlanTci: number;
  reserved1: number;
  /** frames, firstSec, firstNsec, lastSec, lastNsec */
  frames: Float64Array;
  asdusPerFrame: Uint8Array;
  smpSynch: Uint8Array;
  /** wrap, samples, missing, duplicates, outOfOrder, wraps, confRevChanges, confRev, min, max, gapsNotListed */
  seq: Float64Array;
  /** fromSmpCnt, toSmpCnt, iter, size, missing per gap */
  gaps: Float64Array;
  /** min mean p50 p99 max stddev jitterP50 jitterP99 jitterMax */
  pacingUs: Float64Array | null;
}

interface NativeScan {
  fallback?: string;
  format: InspectResult['format'];
  packets: number;
  svFrames: number;
  otherFrames: number;
  /** (code, count) in order of first occurrence */
  malformedByCode: Float64Array;
  /** (packet, code, offset in the input, captured length) of the first 20 */
  malformed: Float64Array;
  /** offset, expectedBytes, availableBytes */
  truncated: Float64Array | null;
  streams: NativeStream[];
}

interface ScanAddon {
  inspectScan(source: string | Uint8Array, wrapAt: number): Promise<NativeScan>;
}

const ADDON_FILE = 'native/build/Release/svtrace_net.node';
let addon: ScanAddon | null | undefined;

function loadScanAddon(): ScanAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  const path = ['../../', '../'].map((up) => fileURLToPath(new URL(up + ADDON_FILE, import.meta.url))).find((p) => existsSync(p));
  if (!path) return null;
  try {
    const a = createRequire(import.meta.url)(path) as Partial<ScanAddon>;
    if (typeof a.inspectScan === 'function') addon = a as ScanAddon;
  } catch {
    // an addon built for another Node: the TypeScript engine answers
  }
  return addon;
}

/** The engine asked for: the option, else SVTRACE_INSPECT_ENGINE, else auto. */
export function inspectEngine(engine?: InspectEngine): InspectEngine {
  const e = engine ?? process.env.SVTRACE_INSPECT_ENGINE ?? 'auto';
  if (e !== 'auto' && e !== 'native' && e !== 'ts') {
    throw new SvtraceError('USAGE', `SVTRACE_INSPECT_ENGINE=${e} is not an engine`, { hint: 'use auto, native or ts' });
  }
  return e;
}

/**
 * Inspects a capture file or a capture held in memory with the native engine.
 * Returns `{ fallback }` (why) when the TypeScript path must answer instead.
 */
export async function inspectNative(source: string | Uint8Array, options: { wrapAt?: number; engine?: InspectEngine } = {}): Promise<InspectResult | { fallback: string }> {
  const engine = inspectEngine(options.engine);
  if (engine === 'ts') return { fallback: 'engine ts asked for' };
  if (source === '-') return { fallback: 'stdin is read by the TypeScript path' };
  const a = loadScanAddon();
  if (!a) {
    if (engine === 'native') {
      throw new SvtraceError('NET_ADDON_MISSING', 'the native inspect engine is not built', { hint: 'build it: `npm run install`, or use SVTRACE_INSPECT_ENGINE=ts' });
    }
    return { fallback: 'the native addon is not built' };
  }
  let scan: NativeScan;
  try {
    scan = await a.inspectScan(source, options.wrapAt ?? 0);
  } catch (e) {
    return { fallback: `native scan failed: ${(e as Error).message}` };
  }
  if (scan.fallback !== undefined) return { fallback: scan.fallback };
  const malformed = await malformedList(scan, source);
  if ('fallback' in malformed) return malformed;
  const streams = scan.streams.map(streamReport);
  sortStreams(streams);
  const t = scan.truncated;
  return {
    format: scan.format, packets: scan.packets, svFrames: scan.svFrames, otherFrames: scan.otherFrames, malformed,
    truncated: t ? { offset: t[0]!, expectedBytes: t[1]!, availableBytes: t[2]! } : null, streams,
  };
}

/** The malformed summary; the details of the first frames come from the TypeScript scanner, run again on their bytes. */
async function malformedList(scan: NativeScan, source: string | Uint8Array): Promise<InspectResult['malformed'] | { fallback: string }> {
  const out: InspectResult['malformed'] = { count: 0, byCode: {}, first: [] };
  const by = scan.malformedByCode;
  for (let i = 0; i < by.length; i += 2) {
    out.byCode[SCAN_ERRORS[by[i]!]!] = by[i + 1]!;
    out.count += by[i + 1]!;
  }
  const m = scan.malformed;
  if (m.length === 0) return out;
  const fh = typeof source === 'string' ? await open(source, 'r') : null;
  try {
    const fs = createFrameScan();
    for (let i = 0; i < m.length; i += 4) {
      const offset = m[i + 2]!, capLen = m[i + 3]!;
      let bytes: Uint8Array;
      if (fh) {
        bytes = new Uint8Array(capLen);
        const { bytesRead } = await fh.read(bytes, 0, capLen, offset);
        if (bytesRead !== capLen) return { fallback: 'the capture changed while it was read' };
      } else {
        bytes = (source as Uint8Array).subarray(offset, offset + capLen);
      }
      const st = scanFrame(bytes, 0, capLen, fs);
      if (st !== m[i + 1]) return { fallback: `native and TypeScript scans disagree on packet ${m[i]}` };
      out.first.push({ packet: m[i]!, code: SCAN_ERRORS[st]!, offset: fs.errorOffset, detail: fs.errorDetail });
    }
  } finally {
    await fh?.close();
  }
  return out;
}

function streamReport(n: NativeStream): StreamReport {
  const [frames, firstSec, firstNsec, lastSec, lastNsec] = n.frames as unknown as [number, number, number, number, number];
  const [wrap, samples, missing, duplicates, outOfOrder, wraps, confRevChanges, confRev, min, max, gapsNotListed] =
    n.seq as unknown as [number, number, number, number, number, number, number, number, number, number, number];
  const gaps: StreamReport['gaps'] = [];
  for (let i = 0; i < n.gaps.length; i += 5) {
    gaps.push({ fromSmpCnt: n.gaps[i]!, toSmpCnt: n.gaps[i + 1]!, iter: n.gaps[i + 2]!, size: n.gaps[i + 3]!, missing: n.gaps[i + 4]! });
  }
  const spanNs = (lastSec - firstSec) * 1e9 + (lastNsec - firstNsec);
  const periods = samples + missing - 1;
  const p = n.pacingUs;
  return {
    svId: latin1(n.svId, 0, n.svId.length), appId: n.appId, srcMac: formatMac(n.src, 0), dstMac: formatMac(n.dst, 0),
    vlan: n.vlanPresent ? { id: n.vlanTci & 0xfff, priority: n.vlanTci >> 13 } : null,
    simulated: (n.reserved1 & 0x8000) !== 0,
    frames, samples, asdusPerFrame: [...n.asdusPerFrame],
    rateHz: spanNs > 0 && periods > 0 ? round((periods * 1e9) / spanNs, 3) : null,
    wrapAt: wrap, smpCnt: samples ? { min, max } : null, wraps, missing, duplicates, outOfOrder, gaps, gapsNotListed,
    confRev, confRevChanges, smpSynch: [...n.smpSynch],
    pacingUs: p ? { min: p[0]!, mean: p[1]!, p50: p[2]!, p99: p[3]!, max: p[4]!, stddev: p[5]!, jitterP50: p[6]!, jitterP99: p[7]!, jitterMax: p[8]! } : null,
    firstNs: nsString(firstSec, firstNsec), lastNs: nsString(lastSec, lastNsec),
  };
}
