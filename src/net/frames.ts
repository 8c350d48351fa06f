/** Small helpers around the batch layouts of src/net (plain functions). */
import { loadAddon } from './addon.ts';
import { TS_SOURCE_HARDWARE, TS_SOURCE_SOFTWARE, type RxBatch, type TimestampSource } from './types.ts';

/** Frame i of a receive batch (a view, not a copy). */
export function rxFrame(batch: RxBatch, i: number): Buffer {
  const offset = batch.offsets[i];
  const length = batch.lengths[i];
  if (offset === undefined || length === undefined) throw new RangeError(`frame ${i} is not in this batch of ${batch.count}`);
  return batch.frames.subarray(offset, offset + length);
}

/** Frames packed the way Transmitter.enqueue() takes them. */
export interface PackedFrames {
  data: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
}

/** Concatenates frames into one buffer with offsets and lengths. */
export function packFrames(frames: readonly Uint8Array[]): PackedFrames {
  const offsets = new Uint32Array(frames.length);
  const lengths = new Uint32Array(frames.length);
  let total = 0;
  frames.forEach((f, i) => {
    offsets[i] = total;
    lengths[i] = f.byteLength;
    total += f.byteLength;
  });
  const data = new Uint8Array(total);
  frames.forEach((f, i) => data.set(f, offsets[i]));
  return { data, offsets, lengths };
}

/**
 * Now, in ns since the epoch, read with clock_gettime in C: 'realtime'
 * (the clock of software timestamps), 'tai' (CLOCK_TAI: realtime + the
 * kernel's TAI offset, 0 unless set, e.g. by ptp4l/phc2sys) or 'monotonic'.
 * Use it to place a transmit schedule.
 */
export function clockNowNs(clock: 'realtime' | 'tai' | 'monotonic' = 'realtime'): bigint {
  return loadAddon().clockNowNs(clock);
}

/** The name of a TS_SOURCE_* code (kernelTsSource[i], kernelTxSource[i]). */
export function timestampSourceName(code: number | undefined): TimestampSource {
  return code === TS_SOURCE_SOFTWARE ? 'software' : code === TS_SOURCE_HARDWARE ? 'hardware' : 'none';
}
