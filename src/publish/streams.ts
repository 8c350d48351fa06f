/**
 * The publisher's stream model: what each simulated merging unit sends.
 * `expandStreams` turns one compact description (count, svID pattern, base
 * APPID and MAC) into the list of streams; each stream's frames come from a
 * template (frames.ts) and its values from a waveform table (waveform.ts).
 */
import { SvtraceError } from '../errors.ts';
import { parseMac } from '../sv/index.ts';

export interface WaveformSpec {
  /** Phase current, A rms. */
  currentA: number;
  /** Phase-to-neutral voltage, V rms. */
  voltageV: number;
  /** Current lags voltage by this angle, degrees. */
  currentAngleDeg: number;
  /** Phase offset of the whole stream, degrees. */
  phaseDeg: number;
  /** Harmonics added to currents and voltages: order and share of the fundamental in %. */
  harmonics: Array<{ order: number; percent: number }>;
  /** A fault from this second of the run on: currents × factor. */
  fault?: { atS: number; currentFactor: number; voltageFactor: number };
}

export interface StreamSpec {
  svId: string;
  appId: number;
  dstMac: string;
  srcMac: string;
  /** null for untagged frames. */
  vlan: { id: number; priority: number } | null;
  freqHz: 50 | 60;
  samplesPerCycle: 80 | 256;
  asdusPerFrame: number;
  confRev: number;
  smpSynch: number;
  simulated: boolean;
  datSet?: string;
  waveform: WaveformSpec;
}

/** Many streams at once: the shared settings, and patterns for what differs per stream. */
export type StreamsSpec = Omit<StreamSpec, 'svId' | 'appId' | 'dstMac' | 'srcMac'> & {
  count: number;
  /** svID pattern: {n} is the stream number from 1, {n:02} zero-padded to 2 digits. */
  svIdPattern: string;
  /** APPID, destination and source MAC of the first stream; each next stream adds 1. */
  appIdBase: number;
  dstMacBase: string;
  srcMacBase: string;
};

export const DEFAULT_WAVEFORM: WaveformSpec = {
  currentA: 200, voltageV: 11547, currentAngleDeg: 20, phaseDeg: 0, harmonics: [],
};

/** Samples per second: the smpCnt wrap value (4000 at 50 Hz × 80). */
export function sampleRate(s: Pick<StreamSpec, 'freqHz' | 'samplesPerCycle'>): number {
  return s.freqHz * s.samplesPerCycle;
}

/** Fills the svID pattern: MU{n:02} → MU01. Only {n} and {n:0W} are special. */
export function formatSvId(pattern: string, n: number): string {
  return pattern.replace(/\{n(?::0(\d))?\}/g, (_m, w: string | undefined) => (w ? String(n).padStart(Number(w), '0') : String(n)));
}

function addToMac(mac: string, n: number): string {
  const b = parseMac(mac);
  let carry = n;
  for (let i = 5; i >= 3 && carry; i--) {
    const v = b[i]! + carry;
    b[i] = v & 0xff;
    carry = v >> 8;
  }
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');
}

export function expandStreams(spec: StreamsSpec): StreamSpec[] {
  if (!Number.isInteger(spec.count) || spec.count < 1 || spec.count > 1024) {
    throw new SvtraceError('CONFIG_INVALID', `stream count ${spec.count} is out of range`, { hint: 'publish 1 to 1024 streams' });
  }
  if (spec.appIdBase + spec.count - 1 > 0xffff) {
    throw new SvtraceError('CONFIG_INVALID', `APPIDs from 0x${spec.appIdBase.toString(16)} for ${spec.count} streams pass 0xffff`, { hint: 'lower the base APPID or the count' });
  }
  const streams: StreamSpec[] = [];
  const ids = new Set<string>();
  for (let i = 0; i < spec.count; i++) {
    const n = i + 1;
    const svId = formatSvId(spec.svIdPattern, n);
    if (ids.has(svId)) {
      throw new SvtraceError('CONFIG_INVALID', `svID pattern "${spec.svIdPattern}" gives "${svId}" twice`, { hint: 'put {n} or {n:02} in the pattern so every stream has its own svID' });
    }
    ids.add(svId);
    const { count: _c, svIdPattern: _p, appIdBase, dstMacBase, srcMacBase, ...shared } = spec;
    streams.push({ ...shared, svId, appId: appIdBase + i, dstMac: addToMac(dstMacBase, i), srcMac: addToMac(srcMacBase, i) });
  }
  return streams;
}
