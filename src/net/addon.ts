/**
 * Loads the native addon (native/build/Release/svtrace_net.node, built by
 * `node-gyp rebuild --directory=native` on `npm ci`) and declares its raw
 * functions. Only src/net/ talks to it; everything else uses socket.ts.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { SvtraceError } from '../errors.ts';
import type { RxBatch, RxStats, TxReportBatch, TxStats } from './types.ts';

declare const nativeHandle: unique symbol;
/** An open socket inside the addon (a JS external). */
export type NativeHandle = { readonly [nativeHandle]: true };

export interface NativeInfo {
  ifindex: number;
  mtu: number;
  macAddress: string;
  carrier: boolean;
  phcIndex: number;
  rcvBufBytes: number;
  sndBufBytes: number;
  txKeyMode: 'scm-ts-opt-id' | 'counter';
  hwTxType: number;
  hwRxFilter: number;
  promiscuous: boolean;
}

export interface NativeAddon {
  open(opts: {
    ifname: string;
    netns?: string;
    hardware: number;
    rcvBufBytes?: number;
    sndBufBytes?: number;
    forceKeyCounter?: number;
    promisc?: number;
  }): { handle: NativeHandle; info: NativeInfo };
  close(h: NativeHandle): void;
  send(h: NativeHandle, frame: Uint8Array): void;
  stats(h: NativeHandle): { rx: RxStats; tx: TxStats | null; syncSent: number; syncErrors: number };
  ref(h: NativeHandle): void;
  unref(h: NativeHandle): void;
  clockNowNs(clock: 'realtime' | 'tai' | 'monotonic'): bigint;
  rxStart(
    h: NativeHandle,
    onBatch: (b: RxBatch) => void,
    opts: { maxBatchFrames?: number; maxBatchDelayNs?: number; fifoPriority?: number; cpu?: number },
  ): void;
  rxStop(h: NativeHandle): Promise<RxStats>;
  rxStats(h: NativeHandle): RxStats;
  txStart(
    h: NativeHandle,
    onReport: (r: TxReportBatch) => void,
    opts: {
      clock?: string;
      fifoPriority?: number;
      cpu?: number;
      lateThresholdNs?: number;
      spinNs?: number;
      queueFrames?: number;
      queueBytes?: number;
    },
  ): void;
  txEnqueue(
    h: NativeHandle,
    frames: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    timesNs: BigInt64Array,
  ): number;
  txPending(h: NativeHandle): number;
  txStats(h: NativeHandle): TxStats | null;
  txStop(h: NativeHandle, drain: boolean): Promise<TxStats>;
}

const ADDON_FILE = 'native/build/Release/svtrace_net.node';

/** Where the addon may be: beside src/net/ (tsx, tests) or beside dist/ (bundled). */
function addonCandidates(): string[] {
  return ['../../', '../'].map((up) => fileURLToPath(new URL(up + ADDON_FILE, import.meta.url)));
}

let cached: NativeAddon | undefined;

/** The addon, loaded once. Throws NET_ADDON_MISSING if it was never built. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const candidates = addonCandidates();
  const path = candidates.find((p) => existsSync(p));
  if (path === undefined) {
    throw new SvtraceError('NET_ADDON_MISSING', `the native packet I/O addon is not built (looked for ${candidates.join(', ')})`, {
      hint: 'Build it: `npm ci` (or `npm run install`, which runs `node-gyp rebuild --directory=native`); it needs g++, make and python3.',
    });
  }
  try {
    cached = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (cause) {
    throw new SvtraceError('NET_ADDON_MISSING', `the native packet I/O addon at ${path} cannot be loaded`, {
      hint: 'Rebuild it for this Node version: `npm run install` (node-gyp rebuild --directory=native).',
      cause,
    });
  }
  return cached;
}
