/**
 * The paced transmitter of a PacketSocket: a C thread that sends queued
 * frames at absolute times (clock_nanosleep TIMER_ABSTIME) and reports, per
 * frame, the scheduled time, the time just before send() and the kernel TX
 * timestamp. JS keeps it fed ahead of time through enqueue() (bounded ring,
 * returns how many frames fit).
 */
import type { NativeAddon, NativeHandle } from './addon.ts';
import { callNative, type ErrorContext } from './errors.ts';
import { guardCallback, settle } from './guard.ts';
import { checkInt, checkThreadOptions, invalid } from './options.ts';
import type { TransmitOptions, Transmitter, TxStats } from './types.ts';

export function startTransmitter(
  addon: NativeAddon,
  h: NativeHandle,
  opts: TransmitOptions,
  ctx: ErrorContext,
): Transmitter {
  if (typeof opts.onTxReport !== 'function') throw invalid('startTransmit needs onTxReport(report)');
  if (opts.clock !== undefined && opts.clock !== 'realtime' && opts.clock !== 'tai') {
    throw invalid(`clock must be 'realtime' or 'tai', got '${String(opts.clock)}'`);
  }
  checkThreadOptions(opts);
  checkInt('queueFrames', opts.queueFrames, 1, 1 << 24);
  checkInt('queueBytes', opts.queueBytes, 1, 2 ** 32);
  const lateUs = opts.lateThresholdUs ?? 100;
  if (!(lateUs >= 0 && lateUs <= 1e9)) throw invalid(`lateThresholdUs must be >= 0, got ${lateUs}`);
  const spinUs = opts.spinUs ?? 0;
  if (!(spinUs >= 0 && spinUs <= 10_000)) throw invalid(`spinUs must be 0..10000, got ${spinUs}`);
  const guard = guardCallback(opts.onTxReport, opts.onFault);
  callNative(
    () =>
      addon.txStart(h, guard.call, {
        clock: opts.clock ?? 'realtime',
        lateThresholdNs: Math.round(lateUs * 1000),
        spinNs: Math.round(spinUs * 1000),
        ...(opts.fifoPriority === undefined ? {} : { fifoPriority: opts.fifoPriority }),
        ...(opts.cpu === undefined ? {} : { cpu: opts.cpu }),
        ...(opts.queueFrames === undefined ? {} : { queueFrames: opts.queueFrames }),
        ...(opts.queueBytes === undefined ? {} : { queueBytes: opts.queueBytes }),
      }),
    ctx,
  );
  let last: TxStats | undefined;
  return {
    enqueue(frames: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, timesNs: BigInt64Array): number {
      return callNative(() => addon.txEnqueue(h, frames, offsets, lengths, timesNs), ctx);
    },
    pending(): number {
      return addon.txPending(h);
    },
    stats(): TxStats {
      const s = last ?? addon.txStats(h);
      if (s === null) throw invalid('the transmitter has no statistics');
      return s;
    },
    async stop(stopOpts: { drain?: boolean } = {}): Promise<TxStats> {
      last = await settle(callNative(() => addon.txStop(h, stopOpts.drain === true), ctx), guard);
      return last;
    },
  };
}
