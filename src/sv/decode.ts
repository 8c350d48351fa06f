/** Object decoding of SV frames, built on the one parser in scan.ts. */
import { SvtraceError } from '../errors.ts';
import { FIELD_COUNT, LE_CHANNELS, LE_DIVISOR, LE_SEQDATA_BYTES, SIMULATED_BIT } from './layout.ts';
import {
  createFrameScan, F_CONFREV, F_DATSET, F_GMIDENTITY, F_REFRTM, F_SEQDATA, F_SMPMOD, F_SMPRATE,
  F_SMPSYNCH, F_SVID, readUint, scanError, scanFrame, type FrameScan,
} from './scan.ts';
import type { SvAsdu, SvFrame } from './types.ts';

const shared = createFrameScan();

/**
 * Decodes one whole Ethernet frame (with or without one 802.1Q tag).
 * Throws SvtraceError (codes SV_*, with the byte offset) on malformed input.
 * Trailing bytes after the PDU (padding, FCS) are ignored.
 */
export function decodeFrame(bytes: Uint8Array, start = 0, end = bytes.length): SvFrame {
  const st = scanFrame(bytes, start, end, shared);
  if (st) throw scanError(st, shared);
  return frameFromScan(bytes, shared);
}

/** Builds the object form from a successful scan. Octet fields are copies. */
export function frameFromScan(b: Uint8Array, s: FrameScan): SvFrame {
  const frame: SvFrame = {
    dst: formatMac(b, s.start),
    src: formatMac(b, s.start + 6),
    appId: s.appId,
    length: s.length,
    reserved1: s.reserved1 & ~SIMULATED_BIT,
    simulated: (s.reserved1 & SIMULATED_BIT) !== 0,
    reserved2: s.reserved2,
    asdus: [],
    lengthForms: { savPdu: s.pduLenBytes, seqAsdu: s.seqLenBytes, asdus: [] },
  };
  if (s.vlanPresent) {
    frame.vlan = { priority: s.vlanTci >> 13, dei: (s.vlanTci & 0x1000) !== 0, id: s.vlanTci & 0xfff };
  }
  if (s.securityOffset >= 0) frame.security = copyBytes(b, s.securityOffset, s.securityOffset + s.securityLength);
  for (let i = 0; i < s.asduCount; i++) {
    frame.asdus.push(asduFromScan(b, s, i));
    frame.lengthForms!.asdus.push(s.asduLenBytes[i]!);
  }
  return frame;
}

function asduFromScan(b: Uint8Array, s: FrameScan, i: number): SvAsdu {
  const base = i * FIELD_COUNT;
  const off = (f: number) => s.fieldOffset[base + f]!;
  const len = (f: number) => s.fieldLength[base + f]!;
  const asdu: SvAsdu = {
    svId: latin1(b, off(F_SVID), len(F_SVID)),
    smpCnt: s.smpCnt[i]!,
    confRev: readUint(b, off(F_CONFREV), len(F_CONFREV)),
    smpSynch: readUint(b, off(F_SMPSYNCH), len(F_SMPSYNCH)),
    seqData: copyBytes(b, off(F_SEQDATA), off(F_SEQDATA) + len(F_SEQDATA)),
  };
  if (off(F_DATSET) >= 0) asdu.datSet = latin1(b, off(F_DATSET), len(F_DATSET));
  if (off(F_REFRTM) >= 0) asdu.refrTm = copyBytes(b, off(F_REFRTM), off(F_REFRTM) + 8);
  if (off(F_SMPRATE) >= 0) asdu.smpRate = readUint(b, off(F_SMPRATE), len(F_SMPRATE));
  if (off(F_SMPMOD) >= 0) asdu.smpMod = readUint(b, off(F_SMPMOD), len(F_SMPMOD));
  if (off(F_GMIDENTITY) >= 0) asdu.gmIdentity = copyBytes(b, off(F_GMIDENTITY), off(F_GMIDENTITY) + 8);
  return asdu;
}

/** A copy (never a view) of b[from, to), as a plain Uint8Array. */
function copyBytes(b: Uint8Array, from: number, to: number): Uint8Array {
  return new Uint8Array(b.subarray(from, to));
}

/** One octet per character: exact for VisibleString and lossless for any bytes. */
export function latin1(b: Uint8Array, p: number, n: number): string {
  let s = '';
  for (let k = 0; k < n; k++) s += String.fromCharCode(b[p + k]!);
  return s;
}

export function formatMac(b: Uint8Array, p: number): string {
  let s = '';
  for (let k = 0; k < 6; k++) {
    const v = b[p + k]!;
    s += (k ? ':' : '') + (v < 16 ? '0' : '') + v.toString(16);
  }
  return s;
}

export function parseMac(mac: string): Uint8Array {
  const m = /^([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})[:-]([0-9a-fA-F]{2})$/.exec(mac);
  if (!m) {
    throw new SvtraceError('SV_BAD_MAC', `"${mac}" is not a MAC address`, {
      hint: 'write it as six hex octets, e.g. 01:0c:cd:04:00:01',
    });
  }
  return Uint8Array.from(m.slice(1, 7), (h) => parseInt(h, 16));
}

/** IEC 61850-7-3 quality, as carried in 9-2LE (low 14 bits of 32). */
export interface Quality {
  raw: number;
  validity: 'good' | 'invalid' | 'reserved' | 'questionable';
  overflow: boolean;
  outOfRange: boolean;
  badReference: boolean;
  oscillatory: boolean;
  failure: boolean;
  oldData: boolean;
  inconsistent: boolean;
  inaccurate: boolean;
  /** source: substituted (true) or process (false). */
  substituted: boolean;
  test: boolean;
  operatorBlocked: boolean;
  derived: boolean;
}

const VALIDITY = ['good', 'invalid', 'reserved', 'questionable'] as const;

export function decodeQuality(raw: number): Quality {
  const bit = (n: number) => (raw & (1 << n)) !== 0;
  return {
    raw,
    validity: VALIDITY[raw & 3]!,
    overflow: bit(2), outOfRange: bit(3), badReference: bit(4), oscillatory: bit(5),
    failure: bit(6), oldData: bit(7), inconsistent: bit(8), inaccurate: bit(9),
    substituted: bit(10), test: bit(11), operatorBlocked: bit(12), derived: bit(13),
  };
}

export interface LeChannels {
  /** Raw INT32 values: IA, IB, IC, IN (mA), VA, VB, VC, VN (10 mV). */
  values: number[];
  /** Values in A and V (9-2LE scaling). */
  scaled: number[];
  quality: number[];
}

/** Decodes 9-2LE seqData (8 × INT32 value + quality); null for other layouts. */
export function decodeLe(seqData: Uint8Array): LeChannels | null {
  if (seqData.length !== LE_SEQDATA_BYTES) return null;
  const dv = new DataView(seqData.buffer, seqData.byteOffset, seqData.byteLength);
  const out: LeChannels = { values: [], scaled: [], quality: [] };
  for (let c = 0; c < LE_CHANNELS; c++) {
    const v = dv.getInt32(c * 8);
    out.values.push(v);
    out.scaled.push(v / LE_DIVISOR[c]!);
    out.quality.push(dv.getUint32(c * 8 + 4));
  }
  return out;
}

/** UtcTime (IEC 61850-8-1): 4 octets seconds, 3 octets fraction of second, 1 octet quality. */
export function utcTimeToNs(t: Uint8Array): bigint {
  const sec = readUint(t, 0, 4);
  const frac = readUint(t, 4, 3);
  return BigInt(sec) * 1_000_000_000n + (BigInt(frac) * 1_000_000_000n) / 16_777_216n;
}
