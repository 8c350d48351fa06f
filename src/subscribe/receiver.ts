/**
 * The subscriber's core, pure: frames received (with their kernel and
 * application timestamps) → per ASDU a sample (svID, APPID, smpCnt, wrap
 * iteration) with points T3 (kernel RX) and T4 (application), and each
 * stream's sequence (missing, duplicates, out-of-order, confRev changes).
 * Frames come in batches as the native addon hands them over.
 */
import {
  createFrameScan, F_CONFREV, F_SVID, FIELD_COUNT, latin1, readUint, SCAN_ERRORS, scanFrame,
} from '../sv/index.ts';
import { createSequence, observe, summarizeSequence, type SequenceSummary, type SequenceState } from './sequence.ts';
import { keeps, type StreamFilter } from './filter.ts';

export interface ReceivedFrames {
  count: number;
  frames: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  kernelTsNs: BigInt64Array;
  appTsNs: BigInt64Array;
}

/** Column batch of samples, as the record writer's appendColumns takes them. */
export interface SampleColumns {
  length: number;
  stream: Uint32Array;
  appId: Uint16Array;
  smpCnt: Uint16Array;
  iter: Float64Array;
  t3Ns: BigInt64Array;
  t4Ns: BigInt64Array;
}

export interface SubscribedStream {
  /** Position in `streams`, or -1 for a stream the filter refuses (remembered so it costs one lookup). */
  index: number;
  svId: string;
  svIdBytes: Uint8Array;
  appId: number;
  seq: SequenceState;
  frames: number;
}

export interface StreamSummary extends SequenceSummary {
  svId: string;
  appId: number;
  frames: number;
}

export interface Receiver {
  streams: SubscribedStream[];
  /** Decodes a batch; returns the samples it held (a view valid until the next call). */
  take(batch: ReceivedFrames): SampleColumns;
  counters(): { frames: number; samples: number; malformed: number; filtered: number; otherFrames: number; firstErrors: string[] };
  summary(): StreamSummary[];
}

export function createReceiver(filter: StreamFilter, options: { wrapAt?: number } = {}): Receiver {
  const scan = createFrameScan();
  const streams: SubscribedStream[] = [];
  const byAppId: Array<SubscribedStream[] | undefined> = new Array(65536);
  let cols = allocate(4096);
  let frames = 0, samples = 0, malformed = 0, filtered = 0, otherFrames = 0;
  const firstErrors: string[] = [];

  function find(b: Uint8Array, i: number): SubscribedStream {
    const o = scan.fieldOffset[i * FIELD_COUNT + F_SVID]!;
    const n = scan.fieldLength[i * FIELD_COUNT + F_SVID]!;
    const list = byAppId[scan.appId] ?? (byAppId[scan.appId] = []);
    outer: for (const s of list) {
      if (s.svIdBytes.length !== n) continue;
      for (let k = 0; k < n; k++) if (s.svIdBytes[k] !== b[o + k]) continue outer;
      return s;
    }
    const svId = latin1(b, o, n);
    const kept = keeps(filter, scan.appId, svId);
    const s: SubscribedStream = { index: kept ? streams.length : -1, svId, svIdBytes: b.slice(o, o + n), appId: scan.appId, seq: createSequence(options.wrapAt), frames: 0 };
    list.push(s);
    if (kept) streams.push(s);
    return s;
  }

  function take(batch: ReceivedFrames): SampleColumns {
    let n = 0;
    const b = batch.frames;
    for (let f = 0; f < batch.count; f++) {
      frames++;
      const start = batch.offsets[f]!;
      const st = scanFrame(b, start, start + batch.lengths[f]!, scan);
      if (st) {
        if (st === 2) otherFrames++;
        else {
          malformed++;
          if (firstErrors.length < 10) firstErrors.push(`${SCAN_ERRORS[st]} at byte ${scan.errorOffset}: ${scan.errorDetail}`);
        }
        continue;
      }
      if (n + scan.asduCount > cols.stream.length) cols = grow(cols, n + scan.asduCount);
      let counted: SubscribedStream | null = null;
      for (let i = 0; i < scan.asduCount; i++) {
        const s = find(b, i);
        if (s.index < 0) { filtered++; continue; }
        if (s !== counted) { s.frames++; counted = s; }
        const base = i * FIELD_COUNT;
        const iter = observe(s.seq, scan.smpCnt[i]!, readUint(b, scan.fieldOffset[base + F_CONFREV]!, scan.fieldLength[base + F_CONFREV]!));
        if (s.seq.lastClass === 'duplicate') continue; // counted by the sequence, not recorded twice
        cols.stream[n] = s.index;
        cols.appId[n] = s.appId;
        cols.smpCnt[n] = scan.smpCnt[i]!;
        cols.iter[n] = iter;
        cols.t3Ns[n] = batch.kernelTsNs[f]!;
        cols.t4Ns[n] = batch.appTsNs[f]!;
        n++;
      }
    }
    samples += n;
    cols.length = n;
    return cols;
  }

  return {
    streams,
    take,
    counters: () => ({ frames, samples, malformed, filtered, otherFrames, firstErrors }),
    summary: () => streams.map((s) => ({ svId: s.svId, appId: s.appId, frames: s.frames, ...summarizeSequence(s.seq) })),
  };
}

function allocate(n: number): SampleColumns {
  return {
    length: 0, stream: new Uint32Array(n), appId: new Uint16Array(n), smpCnt: new Uint16Array(n), iter: new Float64Array(n),
    t3Ns: new BigInt64Array(n), t4Ns: new BigInt64Array(n),
  };
}

function grow(c: SampleColumns, need: number): SampleColumns {
  const n = allocate(Math.max(need, c.stream.length * 2));
  n.stream.set(c.stream); n.appId.set(c.appId); n.smpCnt.set(c.smpCnt); n.iter.set(c.iter); n.t3Ns.set(c.t3Ns); n.t4Ns.set(c.t4Ns);
  return n;
}
