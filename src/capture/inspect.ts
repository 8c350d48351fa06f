/**
 * `svtrace inspect`: the truth about the SV streams in a capture. A stream is
 * (svID, APPID, source MAC). For each: frames, ASDUs per frame, the sample
 * rate seen, smpCnt range and wraps, the sequence (missing with the gaps,
 * duplicates, out-of-order, confRev changes) and the pacing of its frames.
 * Plain data out; rendering is in render-inspect.ts.
 */
import type { CaptureSummary, PacketView } from '../pcap/index.ts';
import {
  createFrameScan, F_CONFREV, F_SMPSYNCH, F_SVID, FIELD_COUNT, formatMac, latin1, readUint, SCAN_ERRORS, scanFrame,
} from '../sv/index.ts';
import { rank, selectKth } from '../util/percentile.ts';
import { createSequence, observe, summarizeSequence, type SequenceGap, type SequenceState } from '../subscribe/sequence.ts';

export interface PacingUs {
  min: number; mean: number; p50: number; p99: number; max: number; stddev: number;
  /** Jitter: |gap − mean gap| (the mean gap is the period the stream really kept), nearest-rank percentiles. */
  jitterP50: number; jitterP99: number; jitterMax: number;
}

export interface StreamReport {
  svId: string;
  appId: number;
  srcMac: string;
  dstMac: string;
  vlan: { id: number; priority: number } | null;
  simulated: boolean;
  frames: number;
  /** Distinct samples received (duplicates not counted). */
  samples: number;
  asdusPerFrame: number[];
  rateHz: number | null;
  wrapAt: number;
  smpCnt: { min: number; max: number } | null;
  wraps: number;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  gaps: SequenceGap[];
  gapsNotListed: number;
  confRev: number;
  confRevChanges: number;
  smpSynch: number[];
  pacingUs: PacingUs | null;
  firstNs: string;
  lastNs: string;
}

export interface InspectResult {
  format: string;
  packets: number;
  svFrames: number;
  otherFrames: number;
  malformed: { count: number; byCode: Record<string, number>; first: Array<{ packet: number; code: string; offset: number; detail: string }> };
  truncated: CaptureSummary['truncated'];
  streams: StreamReport[];
}

interface Stream {
  svIdBytes: Uint8Array;
  src: Uint8Array;
  report: StreamReport;
  seq: SequenceState;
  asdusPerFrame: Set<number>;
  smpSynch: Set<number>;
  gapsNs: Float64Array;
  gapCount: number;
  lastRel: number;
  firstSec: number; firstNsec: number; lastSec: number; lastNsec: number;
  lastFrameId: number;
  lastSynch: number;
  lastAsduCount: number;
}

export interface Inspector {
  onPacket(p: PacketView): void;
  finish(summary: CaptureSummary): InspectResult;
}

export function createInspector(options: { wrapAt?: number } = {}): Inspector {
  const scan = createFrameScan();
  const byAppId: Array<Stream[] | undefined> = new Array(65536);
  const streams: Stream[] = [];
  const malformed: InspectResult['malformed'] = { count: 0, byCode: {}, first: [] };
  let packets = 0, svFrames = 0, otherFrames = 0;
  let baseSec = -1;

  function find(b: Uint8Array, i: number, p: PacketView): Stream {
    const o = scan.fieldOffset[i * FIELD_COUNT + F_SVID]!;
    const n = scan.fieldLength[i * FIELD_COUNT + F_SVID]!;
    const src = scan.start + 6;
    let list = byAppId[scan.appId];
    if (!list) byAppId[scan.appId] = list = [];
    outer: for (const s of list) {
      if (s.svIdBytes.length !== n) continue;
      for (let k = 0; k < n; k++) if (s.svIdBytes[k] !== b[o + k]) continue outer;
      for (let k = 0; k < 6; k++) if (s.src[k] !== b[src + k]) continue outer;
      return s;
    }
    const s: Stream = {
      svIdBytes: b.slice(o, o + n), src: b.slice(src, src + 6),
      report: {
        svId: latin1(b, o, n), appId: scan.appId, srcMac: formatMac(b, src), dstMac: formatMac(b, scan.start),
        vlan: scan.vlanPresent ? { id: scan.vlanTci & 0xfff, priority: scan.vlanTci >> 13 } : null,
        simulated: (scan.reserved1 & 0x8000) !== 0,
        frames: 0, samples: 0, asdusPerFrame: [], rateHz: null, wrapAt: 0, smpCnt: null, wraps: 0, missing: 0,
        duplicates: 0, outOfOrder: 0, gaps: [], gapsNotListed: 0, confRev: 0, confRevChanges: 0, smpSynch: [],
        pacingUs: null, firstNs: '', lastNs: '',
      },
      seq: createSequence(options.wrapAt), asdusPerFrame: new Set(), smpSynch: new Set(),
      gapsNs: new Float64Array(1024), gapCount: 0, lastRel: NaN,
      firstSec: p.tsSec, firstNsec: p.tsNsec, lastSec: p.tsSec, lastNsec: p.tsNsec, lastFrameId: -1, lastSynch: -1, lastAsduCount: -1,
    };
    list.push(s);
    streams.push(s);
    return s;
  }

  function onPacket(p: PacketView): void {
    packets++;
    const b = p.bytes;
    const st = scanFrame(b, p.offset, p.offset + p.capLen, scan);
    if (st) {
      if (st === 2) { otherFrames++; return; }
      malformed.count++;
      const code = SCAN_ERRORS[st]!;
      malformed.byCode[code] = (malformed.byCode[code] ?? 0) + 1;
      if (malformed.first.length < 20) malformed.first.push({ packet: packets, code, offset: scan.errorOffset, detail: scan.errorDetail });
      return;
    }
    svFrames++;
    if (baseSec < 0) baseSec = p.tsSec;
    // ns since the first packet's second: exact in a double for ~100 days
    const rel = (p.tsSec - baseSec) * 1e9 + p.tsNsec;
    for (let i = 0; i < scan.asduCount; i++) {
      const s = find(b, i, p);
      const base = i * FIELD_COUNT;
      const confRev = readUint(b, scan.fieldOffset[base + F_CONFREV]!, scan.fieldLength[base + F_CONFREV]!);
      observe(s.seq, scan.smpCnt[i]!, confRev);
      const synch = readUint(b, scan.fieldOffset[base + F_SMPSYNCH]!, scan.fieldLength[base + F_SMPSYNCH]!);
      if (synch !== s.lastSynch) { s.smpSynch.add(synch); s.lastSynch = synch; }
      if (s.lastFrameId !== packets) {
        s.lastFrameId = packets;
        s.report.frames++;
        if (scan.asduCount !== s.lastAsduCount) { s.asdusPerFrame.add(scan.asduCount); s.lastAsduCount = scan.asduCount; }
        if (s.lastRel === s.lastRel) {
          if (s.gapCount === s.gapsNs.length) {
            const grown = new Float64Array(s.gapsNs.length * 2);
            grown.set(s.gapsNs);
            s.gapsNs = grown;
          }
          s.gapsNs[s.gapCount++] = rel - s.lastRel;
        }
        s.lastRel = rel;
        s.lastSec = p.tsSec; s.lastNsec = p.tsNsec;
      }
    }
  }

  function finish(summary: CaptureSummary): InspectResult {
    const out: StreamReport[] = streams.map((s) => {
      const seq = summarizeSequence(s.seq);
      const r = s.report;
      r.samples = seq.samples;
      r.asdusPerFrame = [...s.asdusPerFrame].sort((a, b) => a - b);
      r.wrapAt = seq.wrap;
      r.smpCnt = seq.smpCntMin === null ? null : { min: seq.smpCntMin, max: seq.smpCntMax! };
      r.wraps = seq.wraps;
      r.missing = seq.missing;
      r.duplicates = seq.duplicates;
      r.outOfOrder = seq.outOfOrder;
      r.gaps = seq.gaps;
      r.gapsNotListed = seq.gapsNotListed;
      r.confRev = s.seq.confRev;
      r.confRevChanges = seq.confRevChanges;
      r.smpSynch = [...s.smpSynch].sort((a, b) => a - b);
      r.firstNs = nsString(s.firstSec, s.firstNsec);
      r.lastNs = nsString(s.lastSec, s.lastNsec);
      const spanNs = (s.lastSec - s.firstSec) * 1e9 + (s.lastNsec - s.firstNsec);
      // samples per second: the span covers samples + missing - 1 sample periods
      const periods = seq.samples + seq.missing - 1;
      r.rateHz = spanNs > 0 && periods > 0 ? round((periods * 1e9) / spanNs, 3) : null;
      r.pacingUs = pacing(s.gapsNs.subarray(0, s.gapCount));
      return r;
    });
    sortStreams(out);
    return { format: summary.format, packets, svFrames, otherFrames, malformed, truncated: summary.truncated, streams: out };
  }

  return { onPacket, finish };
}

/** The order streams are reported in: APPID, svID, source MAC. */
export function sortStreams(out: StreamReport[]): void {
  out.sort((a, b) => a.appId - b.appId || (a.svId < b.svId ? -1 : a.svId > b.svId ? 1 : 0) || (a.srcMac < b.srcMac ? -1 : 1));
}

export function nsString(sec: number, nsec: number): string {
  return (BigInt(sec) * 1_000_000_000n + BigInt(nsec)).toString();
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function pacing(gapsNs: Float64Array): PacingUs | null {
  const n = gapsNs.length;
  if (n === 0) return null;
  let sum = 0, min = Infinity, max = -Infinity;
  for (let i = 0; i < n; i++) {
    const g = gapsNs[i]!;
    sum += g;
    if (g < min) min = g;
    if (g > max) max = g;
  }
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (gapsNs[i]! - mean) ** 2;
  const p50 = selectKth(gapsNs, rank(n, 50));
  const p99 = selectKth(gapsNs, rank(n, 99));
  const dev = new Float64Array(n);
  let devMax = 0;
  for (let i = 0; i < n; i++) {
    const d = Math.abs(gapsNs[i]! - mean);
    dev[i] = d;
    if (d > devMax) devMax = d;
  }
  return {
    min: round(min / 1e3, 3), mean: round(mean / 1e3, 3), p50: round(p50 / 1e3, 3),
    p99: round(p99 / 1e3, 3), max: round(max / 1e3, 3), stddev: round(Math.sqrt(sq / n) / 1e3, 3),
    jitterP50: round(selectKth(dev, rank(n, 50)) / 1e3, 3), jitterP99: round(selectKth(dev, rank(n, 99)) / 1e3, 3), jitterMax: round(devMax / 1e3, 3),
  };
}

/** Inspects a capture file ('-' = stdin): the native engine when it can answer exactly, else the TypeScript inspector. */
export async function inspectCapture(path: string, options: { wrapAt?: number; engine?: 'auto' | 'native' | 'ts' } = {}): Promise<InspectResult> {
  const { inspectNative } = await import('./inspect-native.ts');
  const native = await inspectNative(path, options);
  if (!('fallback' in native)) return native;
  const { readCaptureFile } = await import('../pcap/index.ts');
  const inspector = createInspector(options);
  const summary = await readCaptureFile(path, inspector.onPacket);
  return inspector.finish(summary);
}
