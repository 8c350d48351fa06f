/**
 * What `subscribe --metrics` serves, built on the live joiner and exposition
 * of src/live: per stream the Tsub (T3 → T4) latency histogram and its late
 * samples above the verdict limit, the samples seen at T3 and T4 (exactly
 * the rows the record gets), the missing samples of each stream's sequence
 * check, and the subscriber's own counters (frames the kernel dropped,
 * undecodable frames, frames without a kernel timestamp, ...).
 */
import { ROLE_POINTS } from '../path/index.ts';
import { createJoiner, type LiveJoiner } from '../live/joiner.ts';
import type { MetricsSource } from '../live/metrics.ts';
import type { RxStats } from '../net/index.ts';
import type { Receiver, SampleColumns } from './receiver.ts';

export interface SubscribeMetrics {
  joiner: LiveJoiner;
  /** Feeds the samples of one batch (the columns `receiver.take` returned). */
  take(cols: SampleColumns): void;
  source: MetricsSource;
}

/** `limitsNs` per segment, e.g. { Tsub: 100_000 }; `rx` reads the socket's statistics (kept after it stopped). */
export function createSubscribeMetrics(receiver: Receiver, limitsNs: Record<string, number>, rx: () => RxStats | null): SubscribeMetrics {
  const joiner = createJoiner([...ROLE_POINTS.subscribe], limitsNs);
  const times: Record<string, bigint> = { T3: 0n, T4: 0n };
  const take = (cols: SampleColumns) => {
    for (let i = 0; i < cols.length; i++) {
      const s = receiver.streams[cols.stream[i]!]!;
      times.T3 = cols.t3Ns[i]!;
      times.T4 = cols.t4Ns[i]!;
      joiner.sample(s.svId, s.appId, times);
    }
  };
  const source: MetricsSource = {
    stats: () => joiner.stats(),
    samples: () => joiner.points(),
    missing: () => new Map(receiver.streams.map((s) => [s.svId, s.seq.missing])),
    counters: () => {
      const c = receiver.counters();
      const r = rx();
      return {
        frames: c.frames, samples: c.samples, malformed_frames: c.malformed, filtered_samples: c.filtered, other_frames: c.otherFrames,
        duplicates: receiver.streams.reduce((n, s) => n + s.seq.duplicates, 0),
        out_of_order: receiver.streams.reduce((n, s) => n + s.seq.outOfOrder, 0),
        ...(r ? { kernel_drops: r.kernelDrops, kernel_ts_missing: r.kernelTsMissing, truncated_frames: r.truncated, receive_errors: r.recvErrors } : {}),
      };
    },
  };
  return { joiner, take, source };
}
