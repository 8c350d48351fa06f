/**
 * The first pass of a replay: read the capture once, before anything is
 * sent, and learn what a faithful replay needs. Per stream (svID, APPID,
 * source MAC, as `inspect` tells streams apart): its wrap value, the smpCnt
 * it starts at and how many samples it spans (so a loop can continue its
 * smpCnt), its rate (measured exactly as `inspect` does, for --repace) and
 * where it starts in time. For the capture: the loop period that keeps the
 * timing continuous at the seam, the frames that are not SV or too large,
 * and where the input is damaged.
 */
import { SvtraceError } from '../errors.ts';
import { createInspector, type StreamReport } from '../capture/inspect.ts';
import type { PacketView } from '../pcap/index.ts';
import { createFrameScan, F_SVID, FIELD_COUNT, formatMac, latin1, SCAN_ERRORS, scanFrame, type FrameScan } from '../sv/index.ts';
import { createSequence, observe, type SequenceState } from '../subscribe/sequence.ts';
import { keeps, type StreamFilter } from '../subscribe/filter.ts';
import { readPacketBatches, type ReplayPacket } from './replay-read.ts';

const USUAL_RATES = [4000, 4800, 12800, 15360];

export interface PlannedStream {
  svIdBytes: Uint8Array;
  /** svID as latin1 text (one character per octet). */
  svId: string;
  appId: number;
  srcMac: Uint8Array;
  vlanTagged: boolean;
  frames: number;
  asdusPerFrame: number;
  /** smpCnt counts 0..wrap-1. */
  wrap: number;
  firstSmpCnt: number;
  /** Samples from the first to the highest smpCnt (missing ones included): a loop advances smpCnt by this much. */
  spanSamples: number;
  /** Samples per second as inspect measures it; null with fewer than two samples. */
  rateHz: number | null;
  /** The rate --repace paces at: the wrap value when the measured rate is within 1 % of it (9-2LE wraps at the rate), else the measured rate. */
  nominalRateHz: number | null;
  /** First and last frame, ns after the replay's time origin (the first packet replayed). */
  firstRelNs: number;
  lastRelNs: number;
}

export interface PlanOptions {
  filter: StreamFilter;
  /** Non-SV frames are sent too (they then count for the time origin). */
  sendOther: boolean;
}

export interface BadFrame { packet: number; error: SvtraceError }

export interface ReplayPlan {
  packets: number;
  svFrames: number;
  /** Frames that are not SV (another ethertype, or not Ethernet). */
  otherFrames: number;
  /** SV frames whose streams the filter leaves out. */
  filteredOut: number;
  /** Malformed SV frames: count and the first one. */
  badFrames: number;
  firstBad: BadFrame | null;
  /** The frame to be sent that needs the largest MTU (its length less the Ethernet header and 802.1Q tag). */
  largest: { packet: number; bytes: number; mtuNeeded: number };
  /** The input's damage (cut or corrupt record), after `damageAfterPacket` packets; null if it ended cleanly. */
  damage: SvtraceError | null;
  streams: PlannedStream[];
  /** streamKey → index in `streams`. */
  index: Map<string, number>;
  /** Time origin: the first packet replayed. */
  baseSec: number;
  baseNsec: number;
  /** Capture timing: loop L is shifted by L × loopNs, so each stream's first frame follows its last by one period. */
  loopNs: number;
  inspect: StreamReport[];
}

/** The identity of ASDU i of a scanned frame, as a map key: APPID, source MAC, svID octets. */
export function streamKey(b: Uint8Array, scan: FrameScan, i: number): string {
  const o = scan.fieldOffset[i * FIELD_COUNT + F_SVID]!;
  return `${scan.appId}|${formatMac(b, scan.start + 6)}|${latin1(b, o, scan.fieldLength[i * FIELD_COUNT + F_SVID]!)}`;
}

/** True when the frame carries at least one ASDU the filter keeps. */
export function keepsFrame(filter: StreamFilter, b: Uint8Array, scan: FrameScan): boolean {
  if (filter.any) return true;
  for (let i = 0; i < scan.asduCount; i++) {
    const o = scan.fieldOffset[i * FIELD_COUNT + F_SVID]!;
    if (keeps(filter, scan.appId, latin1(b, o, scan.fieldLength[i * FIELD_COUNT + F_SVID]!))) return true;
  }
  return false;
}

/** Largest frame the kernel lets an AF_PACKET socket send: MTU + Ethernet header, + 4 for an 802.1Q tag. */
export function frameLimit(mtu: number, b: Uint8Array): number {
  return mtu + 14 + (b.length >= 14 && b[12] === 0x81 && b[13] === 0x00 ? 4 : 0);
}

export function tooLargeError(packet: number, bytes: number, mtu: number, limit: number): SvtraceError {
  return new SvtraceError('REPLAY_FRAME_TOO_LARGE', `packet ${packet} is a ${bytes}-byte frame: the interface's MTU of ${mtu} takes frames of at most ${limit} bytes`, {
    hint: 'raise the MTU of the interface (ip link set IFACE mtu N), or leave such frames out with --skip-bad',
  });
}

export function malformedError(packet: number, status: number, scan: FrameScan): SvtraceError {
  return new SvtraceError('REPLAY_MALFORMED_FRAME', `packet ${packet} is a malformed SV frame (${SCAN_ERRORS[status]} at byte ${scan.errorOffset}: ${scan.errorDetail})`, {
    hint: 'the frames before it were replayed; --skip-bad leaves malformed frames out and replays the rest',
  });
}

function viewOf(p: ReplayPacket): PacketView {
  return { bytes: p.data, offset: 0, capLen: p.data.length, origLen: p.data.length, tsSec: p.tsSec, tsNsec: p.tsNsec, hasTimestamp: true, interfaceId: 0, sectionIndex: 0, linkType: p.linkType };
}

interface Learning { stream: PlannedStream; seq: SequenceState; maxSmpCnt: number }

export async function planReplay(path: string, o: PlanOptions): Promise<ReplayPlan> {
  const scan = createFrameScan();
  const inspector = createInspector();
  const plan: ReplayPlan = {
    packets: 0, svFrames: 0, otherFrames: 0, filteredOut: 0, badFrames: 0, firstBad: null, largest: { packet: 0, bytes: 0, mtuNeeded: 0 }, damage: null,
    streams: [], index: new Map(), baseSec: 0, baseNsec: 0, loopNs: 0, inspect: [],
  };
  const learning: Learning[] = [];
  let haveBase = false;
  let lastRelAll = 0;
  const bad = (packet: number, error: SvtraceError) => { plan.badFrames++; plan.firstBad ??= { packet, error }; };
  const measure = (p: ReplayPacket) => {
    const need = p.data.length - (frameLimit(0, p.data));
    if (need > plan.largest.mtuNeeded) plan.largest = { packet: p.number, bytes: p.data.length, mtuNeeded: need };
  };
  const rel = (p: ReplayPacket) => {
    if (!haveBase) { plan.baseSec = p.tsSec; plan.baseNsec = p.tsNsec; haveBase = true; }
    return (p.tsSec - plan.baseSec) * 1e9 + (p.tsNsec - plan.baseNsec);
  };
  const reader = readPacketBatches(path);
  let r = await reader.next();
  while (!r.done) {
    for (const p of r.value) {
      plan.packets++;
      const b = p.data;
      const st = p.linkType === 1 ? scanFrame(b, 0, b.length, scan) : 2;
      if (st === 2) {
        plan.otherFrames++;
        if (o.sendOther && p.linkType === 1) { measure(p); lastRelAll = Math.max(lastRelAll, rel(p)); }
        continue;
      }
      if (st) { bad(p.number, malformedError(p.number, st, scan)); continue; }
      if (!keepsFrame(o.filter, b, scan)) { plan.filteredOut++; continue; }
      measure(p);
      plan.svFrames++;
      inspector.onPacket(viewOf(p));
      const t = rel(p);
      lastRelAll = Math.max(lastRelAll, t);
      let lastStream = -1;
      for (let i = 0; i < scan.asduCount; i++) {
        const key = streamKey(b, scan, i);
        let k = plan.index.get(key);
        if (k === undefined) {
          k = plan.streams.length;
          plan.index.set(key, k);
          const o2 = scan.fieldOffset[i * FIELD_COUNT + F_SVID]!, n2 = scan.fieldLength[i * FIELD_COUNT + F_SVID]!;
          const s: PlannedStream = {
            svIdBytes: b.slice(o2, o2 + n2), svId: latin1(b, o2, n2), appId: scan.appId, srcMac: b.slice(6, 12), vlanTagged: scan.vlanPresent,
            frames: 0, asdusPerFrame: scan.asduCount, wrap: 0, firstSmpCnt: scan.smpCnt[i]!, spanSamples: 0, rateHz: null, nominalRateHz: null,
            firstRelNs: t, lastRelNs: t,
          };
          plan.streams.push(s);
          learning.push({ stream: s, seq: createSequence(), maxSmpCnt: 0 });
        }
        const l = learning[k]!;
        observe(l.seq, scan.smpCnt[i]!);
        if (scan.smpCnt[i]! > l.maxSmpCnt) l.maxSmpCnt = scan.smpCnt[i]!;
        if (k !== lastStream) { l.stream.frames++; l.stream.lastRelNs = t; lastStream = k; }
      }
    }
    r = await reader.next();
  }
  plan.damage = r.value.damage;
  const reports = inspector.finish(r.value.summary ?? { format: 'pcap', byteOrder: 'little', packets: 0, capturedBytes: 0, inputBytes: 0, sections: 0, interfaces: [], truncated: null }).streams;
  plan.inspect = reports;
  for (const l of learning) finishStream(l, reports);
  plan.loopNs = loopPeriodNs(plan.streams, lastRelAll);
  return plan;
}

function finishStream(l: Learning, reports: StreamReport[]): void {
  const s = l.stream;
  const mac = formatMac(s.srcMac, 0);
  const rep = reports.find((x) => x.appId === s.appId && x.svId === s.svId && x.srcMac === mac);
  s.rateHz = rep?.rateHz ?? null;
  s.asdusPerFrame = rep?.asdusPerFrame[0] ?? s.asdusPerFrame;
  let wrap = l.seq.wrap;
  // a capture too short to wrap shows smpCnt below 4000 only: take the wrap from the rate when it is a usual one
  if (l.seq.wraps === 0 && s.rateHz !== null) {
    const usual = USUAL_RATES.find((w) => Math.abs(s.rateHz! - w) <= w * 0.01);
    if (usual !== undefined && usual > l.maxSmpCnt) wrap = usual;
  }
  s.wrap = wrap;
  s.spanSamples = l.seq.highest - l.seq.first + 1;
  if (s.rateHz !== null) s.nominalRateHz = Math.abs(s.rateHz - wrap) <= wrap * 0.01 ? wrap : s.rateHz;
}

/**
 * The loop period for capture timing: the stream with the most frames decides
 * it, so that its first frame of loop L+1 follows its last frame of loop L by
 * its mean frame interval; never shorter than the capture.
 */
function loopPeriodNs(streams: PlannedStream[], lastRelAll: number): number {
  let main: PlannedStream | null = null;
  for (const s of streams) if (!main || s.frames > main.frames) main = s;
  let d = 0;
  if (main && main.frames >= 2) {
    const span = main.lastRelNs - main.firstRelNs;
    d = span + span / (main.frames - 1);
  }
  return Math.round(Math.max(d, lastRelAll + 1000));
}

/** The error for a capture with nothing to replay. */
export function nothingToReplay(path: string, plan: ReplayPlan): SvtraceError {
  const what = `${plan.packets} packets: ${plan.otherFrames} not SV, ${plan.badFrames} malformed`;
  if (plan.filteredOut > 0) {
    return new SvtraceError('REPLAY_NO_SV', `no SV frame of ${path} matches the stream filter (${plan.filteredOut} SV frames left out; ${what})`, {
      hint: 'check the svIDs and APPIDs with `svtrace inspect FILE`, then fix --only',
    });
  }
  return new SvtraceError('REPLAY_NO_SV', `${path} holds no Sampled Values frame to replay (${what})`, {
    hint: 'give a capture of IEC 61850-9-2 SV (ethertype 0x88BA); `svtrace inspect FILE` shows what it holds',
  });
}
