/**
 * When each frame goes out. Every stream of a run shares the same sample
 * instants: sample k of second S is due at S·1e9 + floor(k·1e9 / rate) ns
 * (exact for 4800/s, whose period is not a whole number of ns), and its
 * smpCnt is k, so smpCnt 0 falls on each second as with PTP-synchronised
 * merging units. A frame carrying N ASDUs goes at the instant of its first
 * sample. The wrap iteration of a sample is the number of whole seconds
 * since the run's first second.
 */
import { SvtraceError } from '../errors.ts';
import { frameTemplate, writeFrame, type FrameTemplate } from './frames.ts';
import { sampleRate, type StreamSpec } from './streams.ts';
import { waveformTable } from './waveform.ts';

const NS_PER_S = 1_000_000_000n;

export interface FrameBatch {
  /** Frames back to back; frame i is bytes[offsets[i], offsets[i] + lengths[i]). */
  bytes: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  /** Due time of each frame, ns since the epoch (CLOCK_REALTIME or TAI, as the transmitter uses). */
  timesNs: BigInt64Array;
  /** Per frame: stream index, smpCnt of its first ASDU, and wrap iteration. */
  stream: Uint16Array;
  smpCnt: Uint16Array;
  iter: Uint32Array;
  count: number;
}

export interface Schedule {
  streams: StreamSpec[];
  rate: number;
  asdusPerFrame: number;
  /** First sample instant of the run, ns since the epoch. */
  startNs: bigint;
  /** Frames per second of all streams together. */
  framesPerSecond: number;
  /** Fills `batch` with up to `max` frames due before `untilNs`; returns how many (0 when the run is over). */
  next(batch: FrameBatch, max: number, untilNs: bigint): number;
  /** Frames scheduled so far. */
  produced(): number;
  /** True once every frame of the run's duration was produced. */
  finished(): boolean;
}

export function createBatch(capacity: number, maxFrameBytes: number): FrameBatch {
  return {
    bytes: new Uint8Array(capacity * maxFrameBytes), offsets: new Uint32Array(capacity), lengths: new Uint32Array(capacity),
    timesNs: new BigInt64Array(capacity), stream: new Uint16Array(capacity), smpCnt: new Uint16Array(capacity),
    iter: new Uint32Array(capacity), count: 0,
  };
}

export interface ScheduleOptions {
  /** Run start: the first sample instant at or after this time is used. */
  notBeforeNs: bigint;
  /** Run length in seconds; Infinity runs until stopped. */
  durationS: number;
}

export function createSchedule(streams: StreamSpec[], options: ScheduleOptions): Schedule {
  if (streams.length === 0) throw new SvtraceError('CONFIG_INVALID', 'no streams to publish', { hint: 'set streams.count ≥ 1' });
  const rate = sampleRate(streams[0]!);
  const n = streams[0]!.asdusPerFrame;
  for (const s of streams) {
    if (sampleRate(s) !== rate || s.asdusPerFrame !== n) {
      throw new SvtraceError('CONFIG_INVALID', 'all streams of one run need the same sample rate and ASDUs per frame', { hint: 'publish different rates from separate svtrace publish runs' });
    }
  }
  if (rate % n !== 0) {
    throw new SvtraceError('CONFIG_INVALID', `${n} ASDUs per frame do not divide ${rate} samples/s`, { hint: 'use 1, 2, 4, 8 or another divisor of the sample rate' });
  }
  const templates: FrameTemplate[] = streams.map(frameTemplate);
  const normal = streams.map((s) => waveformTable(s, s.waveform));
  const faulted = streams.map((s) => (s.waveform.fault ? waveformTable(s, s.waveform, true) : null));
  // first frame instant at or after notBefore
  let sec = options.notBeforeNs / NS_PER_S;
  const within = options.notBeforeNs - sec * NS_PER_S;
  let k = Number((within * BigInt(rate) + NS_PER_S - 1n) / NS_PER_S);
  k = Math.ceil(k / n) * n;
  if (k >= rate) { k = 0; sec += 1n; }
  const startSec = sec;
  const startNs = sec * NS_PER_S + (BigInt(k) * NS_PER_S) / BigInt(rate);
  const totalSlots = Number.isFinite(options.durationS) ? Math.round((options.durationS * rate) / n) : Infinity;
  let slot = 0;
  let streamInSlot = 0;
  let produced = 0;
  let slotTimeNs = startNs;

  function next(batch: FrameBatch, max: number, untilNs: bigint): number {
    let count = 0;
    let at = 0;
    while (count < max && slot < totalSlots && slotTimeNs < untilNs) {
      const i = streamInSlot;
      const iter = Number(sec - startSec);
      const faultNow = faulted[i] && streams[i]!.waveform.fault && (slot * n) / rate >= streams[i]!.waveform.fault!.atS;
      const len = writeFrame(templates[i]!, faultNow ? faulted[i]! : normal[i]!, rate, k, batch.bytes, at);
      batch.offsets[count] = at;
      batch.lengths[count] = len;
      batch.timesNs[count] = slotTimeNs;
      batch.stream[count] = i;
      batch.smpCnt[count] = k;
      batch.iter[count] = iter;
      at += len;
      count++;
      if (++streamInSlot === streams.length) {
        streamInSlot = 0;
        slot++;
        k += n;
        if (k >= rate) { k -= rate; sec += 1n; }
        slotTimeNs = sec * NS_PER_S + (BigInt(k) * NS_PER_S) / BigInt(rate);
      }
    }
    batch.count = count;
    produced += count;
    return count;
  }

  return {
    streams, rate, asdusPerFrame: n, startNs, framesPerSecond: (streams.length * rate) / n,
    next, produced: () => produced, finished: () => slot >= totalSlots,
  };
}
