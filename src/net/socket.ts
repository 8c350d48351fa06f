/**
 * openPacketSocket: an AF_PACKET socket on one interface (optionally inside a
 * named network namespace) that receives only Sampled Values (0x88BA,
 * untagged or 802.1Q) with kernel and application timestamps, and sends
 * frames either one at a time or on a paced schedule (transmit.ts).
 *
 *   const sock = openPacketSocket({ ifname: 'eth1', netns: 'vm1' });
 *   sock.startReceive((b) => { for (let i = 0; i < b.count; i++) use(rxFrame(b, i), b.kernelTsNs[i]); });
 *   ...
 *   await sock.stopReceive();
 *   sock.close();
 */
import { guardCallback, settle, type GuardedCallback } from './guard.ts';
import { loadAddon, type NativeAddon, type NativeHandle } from './addon.ts';
import { callNative, type ErrorContext } from './errors.ts';
import { checkInt, checkThreadOptions, invalid } from './options.ts';
import { startTransmitter } from './transmit.ts';
import type {
  OpenPacketSocketOptions,
  PacketSocket,
  PacketSocketInfo,
  PacketSocketStats,
  ReceiveOptions,
  RxBatch,
  RxStats,
  TransmitOptions,
  Transmitter,
} from './types.ts';

const IFNAME_RE = /^[^\s/:]{1,15}$/;
const NETNS_RE = /^[^\s/]{1,255}$/;

function checkOpenOptions(opts: OpenPacketSocketOptions): void {
  if (!IFNAME_RE.test(opts.ifname) || Buffer.byteLength(opts.ifname) > 15) {
    throw invalid(`ifname must be an interface name of 1 to 15 bytes without spaces, '/' or ':', got '${opts.ifname}'`);
  }
  if (opts.netns !== undefined && (!NETNS_RE.test(opts.netns) || opts.netns === '.' || opts.netns === '..')) {
    throw invalid(`netns must be a namespace name without spaces or '/', got '${opts.netns}'`);
  }
  if (opts.timestamping !== undefined && opts.timestamping !== 'software' && opts.timestamping !== 'hardware') {
    throw invalid(`timestamping must be 'software' or 'hardware', got '${String(opts.timestamping)}'`);
  }
  if (opts.txKeyMode !== undefined && opts.txKeyMode !== 'auto' && opts.txKeyMode !== 'counter') {
    throw invalid(`txKeyMode must be 'auto' or 'counter', got '${String(opts.txKeyMode)}'`);
  }
  checkInt('rcvBufBytes', opts.rcvBufBytes, 4096, 0x7fffffff);
  checkInt('sndBufBytes', opts.sndBufBytes, 4096, 0x7fffffff);
}

/**
 * Opens the socket. Errors (SvtraceError): NET_NOT_ROOT, NET_NO_SUCH_INTERFACE,
 * NET_INTERFACE_DOWN, NET_NO_SUCH_NETNS, NET_NO_HW_TIMESTAMPING,
 * NET_NOT_ETHERNET, NET_ADDON_MISSING, NET_INVALID_OPTION.
 */
export function openPacketSocket(opts: OpenPacketSocketOptions): PacketSocket {
  checkOpenOptions(opts);
  const addon = loadAddon();
  const ctx: ErrorContext = { ifname: opts.ifname, ...(opts.netns === undefined ? {} : { netns: opts.netns }) };
  const timestamping = opts.timestamping ?? 'software';
  const opened = callNative(
    () =>
      addon.open({
        ifname: opts.ifname,
        ...(opts.netns === undefined ? {} : { netns: opts.netns }),
        hardware: timestamping === 'hardware' ? 1 : 0,
        ...(opts.rcvBufBytes === undefined ? {} : { rcvBufBytes: opts.rcvBufBytes }),
        ...(opts.sndBufBytes === undefined ? {} : { sndBufBytes: opts.sndBufBytes }),
        ...(opts.txKeyMode === 'counter' ? { forceKeyCounter: 1 } : {}),
        ...(opts.promiscuous === true ? { promisc: 1 } : {}),
      }),
    ctx,
  );
  const { hwTxType: _t, hwRxFilter: _f, ...native } = opened.info;
  const info: PacketSocketInfo = { ifname: opts.ifname, netns: opts.netns, timestamping, ...native };
  return makeSocket(addon, opened.handle, info, ctx);
}

function makeSocket(addon: NativeAddon, h: NativeHandle, info: PacketSocketInfo, ctx: ErrorContext): PacketSocket {
  let closed = false;
  let rxGuard: GuardedCallback<RxBatch> | null = null;
  return {
    info,
    get closed() {
      return closed;
    },
    startReceive(onBatch: (batch: RxBatch) => void, opts: ReceiveOptions = {}): void {
      if (typeof onBatch !== 'function') throw invalid('startReceive needs a function onBatch(batch)');
      checkInt('maxBatchFrames', opts.maxBatchFrames, 1, 1 << 20);
      checkThreadOptions(opts);
      const delayMs = opts.maxBatchDelayMs ?? 10;
      if (!(delayMs >= 0 && delayMs <= 60_000)) throw invalid(`maxBatchDelayMs must be 0..60000, got ${delayMs}`);
      rxGuard = guardCallback(onBatch, opts.onFault);
      const call = rxGuard.call;
      callNative(
        () =>
          addon.rxStart(h, call, {
            maxBatchDelayNs: Math.round(delayMs * 1e6),
            ...(opts.maxBatchFrames === undefined ? {} : { maxBatchFrames: opts.maxBatchFrames }),
            ...(opts.fifoPriority === undefined ? {} : { fifoPriority: opts.fifoPriority }),
            ...(opts.cpu === undefined ? {} : { cpu: opts.cpu }),
          }),
        ctx,
      );
    },
    stopReceive(): Promise<RxStats> {
      const stopped = callNative(() => addon.rxStop(h), ctx);
      return rxGuard ? settle(stopped, rxGuard) : stopped;
    },
    send(frame: Uint8Array): void {
      callNative(() => addon.send(h, frame), ctx);
    },
    startTransmit(opts: TransmitOptions): Transmitter {
      return startTransmitter(addon, h, opts, ctx);
    },
    stats(): PacketSocketStats {
      return callNative(() => addon.stats(h), ctx);
    },
    ref(): void {
      addon.ref(h);
    },
    unref(): void {
      addon.unref(h);
    },
    close(): void {
      closed = true;
      addon.close(h);
    },
  };
}
