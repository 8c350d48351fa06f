/**
 * The second pass of a replay, one packet at a time: the frames to send
 * (the captured frame, or its copies), when, and the identity of every ASDU
 * sent (for T0). Pure: packets in, a batch out; the run (replay.ts) feeds
 * the batch to the transmit thread.
 *
 * Identity across loops: sample j of a stream (j counted from its first
 * smpCnt, wraps unrolled) is sample j + L × spanSamples in loop L; its smpCnt
 * is that absolute index modulo the stream's wrap and its wrap iteration the
 * quotient, so a subscriber sees one continuous sequence and the records of
 * publisher and subscriber name every sample alike.
 *
 * Time: capture timing sends packet p of loop L at start + (rel(p) + L ×
 * loopNs) / speed; --repace sends sample j of a stream at start + (its first
 * frame's rel + j / rate) / speed, the same in every loop. Send times never
 * go backwards (a frame due before the previous one goes right after it).
 */
import { SvtraceError } from '../errors.ts';
import { createFrameScan, scanFrame, type FrameScan } from '../sv/index.ts';
import { createSequence, observe, type SequenceState } from '../subscribe/sequence.ts';
import { formatSvId } from './streams.ts';
import { frameLimit, keepsFrame, malformedError, streamKey, tooLargeError, type ReplayPlan } from './replay-plan.ts';
import type { ReplayPacket } from './replay-read.ts';
import { rewriteFrame, rewrittenSizeBound } from './replay-rewrite.ts';
import type { StreamFilter } from '../subscribe/filter.ts';

export interface ReplayTiming {
  speed: number;
  repace: boolean;
}

export interface CopySpec {
  /** Copies of each captured stream (1 = the capture as it is). */
  count: number;
  /** svID of copy n: {svid} is the captured svID, {n} / {n:02} the copy number from 1. */
  svIdPattern: string;
}

/** One stream as the record names it: a captured stream, or copy n of one. */
export interface ReplayedStream {
  svIdBytes: Uint8Array;
  svId: string;
  appId: number;
  srcMac: Uint8Array;
  rate: number;
  asdusPerFrame: number;
}

export interface ReplayBatch {
  bytes: Uint8Array;
  used: number;
  offsets: Uint32Array;
  lengths: Uint32Array;
  timesNs: BigInt64Array;
  /** Per frame: ASDUs recorded (0 for a non-SV frame sent as is). */
  asdus: Uint8Array;
  count: number;
  /** Per ASDU, frames in order: record stream index, smpCnt, wrap iteration. */
  asduStream: Uint32Array;
  asduSmpCnt: Uint16Array;
  asduIter: Float64Array;
  asduCount: number;
}

export function createReplayBatch(frames: number, maxFrameBytes: number): ReplayBatch {
  return {
    bytes: new Uint8Array(frames * maxFrameBytes), used: 0, offsets: new Uint32Array(frames), lengths: new Uint32Array(frames),
    timesNs: new BigInt64Array(frames), asdus: new Uint8Array(frames), count: 0,
    asduStream: new Uint32Array(frames * 64), asduSmpCnt: new Uint16Array(frames * 64), asduIter: new Float64Array(frames * 64), asduCount: 0,
  };
}

export function clearBatch(b: ReplayBatch): void {
  b.used = 0; b.count = 0; b.asduCount = 0;
}

/** What happened to one packet. */
export type PacketOutcome = 'sent' | 'other-sent' | 'other' | 'filtered' | 'bad';

export interface ReplayFeeder {
  streams: ReplayedStream[];
  /** Bytes a batch needs per captured packet at most (all its copies). */
  bytesPerPacket: number;
  framesPerPacket: number;
  /** Starts loop L (0-based): the smpCnt sequences restart. */
  startLoop(loop: number): void;
  /**
   * Adds the frames of one packet to the batch (room for `framesPerPacket`
   * frames and `bytesPerPacket` bytes must be left). A bad frame (malformed,
   * over the MTU) throws unless skipBad, then it is skipped ('bad').
   */
  add(p: ReplayPacket, batch: ReplayBatch): PacketOutcome;
}

export interface FeederOptions {
  plan: ReplayPlan;
  startNs: bigint;
  timing: ReplayTiming;
  copies: CopySpec;
  filter: StreamFilter;
  sendOther: boolean;
  skipBad: boolean;
  mtu: number;
  /** Largest captured frame (bytes), for the batch bound. */
  maxFrameBytes: number;
}

/** svID of copy n (1-based) of a stream: the pattern's {svid}, {n} and {n:0W} filled in. */
export function copySvId(pattern: string, svId: string, n: number): string {
  return pattern.split('{svid}').map((part) => formatSvId(part, n)).join(svId);
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** The streams a replay sends: each captured stream, or its copies (svID from the pattern, APPID and source MAC shifted per copy). */
export function replayedStreams(plan: ReplayPlan, copies: CopySpec): ReplayedStream[] {
  const out: ReplayedStream[] = [];
  const n = copies.count;
  const appIds = plan.streams.map((s) => s.appId);
  const appStep = n > 1 ? Math.max(...appIds) - Math.min(...appIds) + 1 : 0;
  const seen = new Map<string, string>();
  for (const s of plan.streams) {
    for (let c = 0; c < n; c++) {
      const svId = n > 1 ? copySvId(copies.svIdPattern, s.svId, c + 1) : s.svId;
      if (n > 1) {
        if (svId.length < 1 || svId.length > 129 || !/^[\x20-\x7e]+$/.test(svId)) {
          throw new SvtraceError('USAGE', `the svID pattern "${copies.svIdPattern}" gives "${svId.slice(0, 140)}" for copy ${c + 1} of ${s.svId}: an svID is 1 to 129 printable ASCII characters`, { hint: 'use a shorter --svid pattern' });
        }
        const other = seen.get(svId);
        if (other !== undefined) {
          throw new SvtraceError('USAGE', `the svID pattern "${copies.svIdPattern}" gives "${svId}" twice (${other} and copy ${c + 1} of ${s.svId})`, { hint: 'put {n} (the copy number) and {svid} (the captured svID) in --svid, e.g. "{svid}_{n:02}"' });
        }
        seen.set(svId, `copy ${c + 1} of ${s.svId}`);
      }
      const mac = s.srcMac.slice();
      let add = c * plan.streams.length;
      for (let k = 5; k >= 3 && add > 0; k--) { const v = mac[k]! + add; mac[k] = v & 0xff; add = Math.floor(v / 256); }
      out.push({
        svIdBytes: n > 1 ? latin1Bytes(svId) : s.svIdBytes, svId, appId: (s.appId + c * appStep) & 0xffff, srcMac: mac,
        rate: s.wrap, asdusPerFrame: s.asdusPerFrame,
      });
    }
  }
  return out;
}

export function createReplayFeeder(o: FeederOptions): ReplayFeeder {
  const { plan } = o;
  const n = o.copies.count;
  const streams = replayedStreams(plan, o.copies);
  const longest = Math.max(...streams.map((s) => s.svIdBytes.length));
  const frameBound = rewrittenSizeBound(o.maxFrameBytes, 64, longest);
  const scan: FrameScan = createFrameScan();
  let seqs: SequenceState[] = [];
  let loop = 0;
  let lastRel = -Infinity;
  const asduStreams = new Int32Array(64);
  const smp = new Int32Array(64);
  const iters = new Float64Array(64);
  const svIds: Uint8Array[] = [];
  const speed = o.timing.speed;

  function startLoop(l: number): void {
    loop = l;
    seqs = plan.streams.map((s) => createSequence(s.wrap));
  }

  const rel = (p: ReplayPacket) => (p.tsSec - plan.baseSec) * 1e9 + (p.tsNsec - plan.baseNsec);
  function timeOf(relNs: number): bigint {
    let t = relNs / speed;
    if (t < lastRel) t = lastRel;
    lastRel = t;
    return o.startNs + BigInt(Math.round(t));
  }

  function put(batch: ReplayBatch, src: Uint8Array | null, len: number, t: bigint, asdus: number): number {
    const at = batch.used;
    if (src) batch.bytes.set(src, at);
    batch.offsets[batch.count] = at;
    batch.lengths[batch.count] = len;
    batch.timesNs[batch.count] = t;
    batch.asdus[batch.count] = asdus;
    batch.count++;
    batch.used += len;
    return at;
  }

  function add(p: ReplayPacket, batch: ReplayBatch): PacketOutcome {
    const b = p.data;
    const st = p.linkType === 1 ? scanFrame(b, 0, b.length, scan) : 2;
    if (st === 2) {
      if (!o.sendOther || p.linkType !== 1) return 'other';
      const limit = frameLimit(o.mtu, b);
      if (b.length > limit) return badFrame(tooLargeError(p.number, b.length, o.mtu, limit));
      // with --repace a non-SV frame keeps its place after the SV frame before it
      put(batch, b, b.length, timeOf(o.timing.repace && lastRel > -Infinity ? lastRel * speed : rel(p) + loop * plan.loopNs), 0);
      return 'other-sent';
    }
    if (st) return badFrame(malformedError(p.number, st, scan));
    if (!keepsFrame(o.filter, b, scan)) return 'filtered';
    let changed = false;
    for (let i = 0; i < scan.asduCount; i++) {
      const k = plan.index.get(streamKey(b, scan, i));
      if (k === undefined) throw new SvtraceError('REPLAY_CAPTURE_CHANGED', `packet ${p.number} holds a stream the first reading of the capture did not see`, { hint: 'do not change the capture file while it is replayed' });
      const s = plan.streams[k]!;
      const seq = seqs[k]!;
      const it = observe(seq, scan.smpCnt[i]!);
      // absolute sample index since the stream's first smpCnt, shifted by the loops before
      const abs = it * s.wrap + scan.smpCnt[i]! + loop * s.spanSamples;
      asduStreams[i] = k;
      smp[i] = abs % s.wrap;
      iters[i] = Math.floor(abs / s.wrap);
      if (smp[i] !== scan.smpCnt[i]) changed = true;
    }
    let t: bigint;
    if (o.timing.repace) {
      const s = plan.streams[asduStreams[0]!]!;
      const j = iters[0]! * s.wrap + smp[0]! - s.firstSmpCnt;
      t = timeOf(s.firstRelNs + (j * 1e9) / s.nominalRateHz!);
    } else {
      t = timeOf(rel(p) + loop * plan.loopNs);
    }
    const limit = frameLimit(o.mtu, b);
    for (let c = 0; c < n; c++) {
      let len: number;
      const at = batch.used;
      if (n === 1 && !changed) {
        len = b.length;
        if (len > limit) return badFrame(tooLargeError(p.number, len, o.mtu, limit));
        put(batch, b, len, t, scan.asduCount);
      } else {
        for (let i = 0; i < scan.asduCount; i++) svIds[i] = streams[asduStreams[i]! * n + c]!.svIdBytes;
        const r0 = streams[asduStreams[0]! * n + c]!;
        len = rewriteFrame(b, scan, { smpCnt: changed ? smp : null, svIds: n > 1 ? svIds : null, appId: n > 1 ? r0.appId : -1, srcMac: n > 1 ? r0.srcMac : null }, batch.bytes, at);
        if (len > limit) {
          if (c > 0) throw new SvtraceError('REPLAY_FRAME_TOO_LARGE', `packet ${p.number}: copy ${c + 1} is a ${len}-byte frame, over the ${limit} bytes the MTU of ${o.mtu} allows`, { hint: 'use a shorter --svid pattern or raise the MTU' });
          return badFrame(tooLargeError(p.number, len, o.mtu, limit));
        }
        put(batch, null, len, t, scan.asduCount);
      }
      for (let i = 0; i < scan.asduCount; i++) {
        const a = batch.asduCount++;
        batch.asduStream[a] = asduStreams[i]! * n + c;
        batch.asduSmpCnt[a] = smp[i]!;
        batch.asduIter[a] = iters[i]!;
      }
    }
    return 'sent';
  }

  function badFrame(e: SvtraceError): PacketOutcome {
    if (o.skipBad) return 'bad';
    throw e;
  }

  startLoop(0);
  return { streams, bytesPerPacket: n * frameBound, framesPerPacket: n, startLoop, add };
}
