/**
 * The one SV parser: walks a frame's TLVs and records where every field is,
 * without allocating. `decodeFrame` builds objects from a scan; tracing and
 * `inspect` read the scan directly (stream identity and smpCnt per ASDU).
 *
 * Every read is bounded: by the buffer, by the APPID header's Length, and by
 * the length of each enclosing TLV. Errors are returned as a status code with
 * the byte offset (no throw on the hot path); `scanError` turns them into a
 * SvtraceError.
 */
import { SvtraceError } from '../errors.ts';
import {
  ETHERTYPE_SV, ETHERTYPE_VLAN, ETH_HEADER_BYTES, FIELD_COUNT, MAX_ASDUS, SV_HEADER_BYTES,
  TAG_ASDU, TAG_NO_ASDU, TAG_SAVPDU, TAG_SECURITY, TAG_SEQ_ASDU,
} from './layout.ts';

/** Field slots in `FrameScan.fieldOffset/fieldLength`, in `ASDU_FIELDS` order. */
export const F_SVID = 0, F_DATSET = 1, F_SMPCNT = 2, F_CONFREV = 3, F_REFRTM = 4,
  F_SMPSYNCH = 5, F_SMPRATE = 6, F_SEQDATA = 7, F_SMPMOD = 8, F_GMIDENTITY = 9;

export const SCAN_OK = 0;
/** Stable error codes, indexed by the status `scanFrame` returns. */
export const SCAN_ERRORS = [
  'OK',
  'SV_TRUNCATED', // 1: the buffer ends before a header or value it announces
  'SV_NOT_SV', // 2: ethertype is not 0x88BA
  'SV_BAD_LENGTH', // 3: APPID Length or a BER length is impossible (lies, indefinite, too long)
  'SV_BAD_TAG', // 4: a mandatory TLV has the wrong tag
  'SV_NO_ASDU', // 5: noASDU is 0 or seqASDU holds none
  'SV_ASDU_COUNT_MISMATCH', // 6: noASDU differs from the ASDUs present
  'SV_MISSING_FIELD', // 7: an ASDU lacks svID, smpCnt, confRev, smpSynch or seqData
  'SV_BAD_FIELD', // 8: a field has an impossible size (e.g. 5-byte smpCnt)
  'SV_TOO_MANY_ASDUS', // 9
] as const;
export type ScanErrorCode = (typeof SCAN_ERRORS)[number];

export interface FrameScan {
  /** Frame start and end (end = start + captured length) in `bytes`. */
  start: number;
  end: number;
  vlanPresent: boolean;
  /** 802.1Q TCI (PCP 3 bits, DEI 1 bit, VID 12 bits), 0 when untagged. */
  vlanTci: number;
  /** Offset of the APPID field (the SV header). */
  svHeader: number;
  appId: number;
  /** Value of the Length field (APPID header + PDU bytes). */
  length: number;
  reserved1: number;
  reserved2: number;
  /** Length-of-length octets used by savPdu / seqASDU (0 = short form). */
  pduLenBytes: number;
  seqLenBytes: number;
  noAsdu: number;
  securityOffset: number;
  securityLength: number;
  asduCount: number;
  asduLenBytes: Uint8Array;
  /** Per ASDU and field (index asdu * FIELD_COUNT + F_*): value offset and length, -1 when absent. */
  fieldOffset: Int32Array;
  fieldLength: Int32Array;
  /** smpCnt of each ASDU, decoded (the per-frame fast path for tracing). */
  smpCnt: Int32Array;
  /** Where the last error was found. */
  errorOffset: number;
  errorDetail: string;
}

export function createFrameScan(): FrameScan {
  return {
    start: 0, end: 0, vlanPresent: false, vlanTci: 0, svHeader: 0, appId: 0, length: 0,
    reserved1: 0, reserved2: 0, pduLenBytes: 0, seqLenBytes: 0, noAsdu: 0,
    securityOffset: -1, securityLength: 0, asduCount: 0,
    asduLenBytes: new Uint8Array(MAX_ASDUS),
    fieldOffset: new Int32Array(MAX_ASDUS * FIELD_COUNT),
    fieldLength: new Int32Array(MAX_ASDUS * FIELD_COUNT),
    smpCnt: new Int32Array(MAX_ASDUS),
    errorOffset: 0, errorDetail: '',
  };
}

// A TLV header read: the tag, where the value starts, its length, and the length-of-length.
const tlv = { tag: 0, value: 0, len: 0, lenBytes: 0 };

/** Reads the TLV header at `p`, bounded by `limit`. Returns a status (0 ok). */
function readTlv(b: Uint8Array, p: number, limit: number, s: FrameScan): number {
  if (p >= limit) return fail(s, 1, p, 'TLV header');
  let tag = b[p]!;
  let q = p + 1;
  if ((tag & 0x1f) === 0x1f) {
    // multi-byte tag number: continuation bytes have the high bit set (at most 4)
    let n = 0;
    while (true) {
      if (q >= limit) return fail(s, 1, q, 'multi-byte tag');
      const t = b[q++]!;
      if (++n > 4) return fail(s, 4, p, 'tag number too long');
      if ((t & 0x80) === 0) break;
    }
    tag = 0x1f00 | (tag & 0xe0);
  }
  if (q >= limit) return fail(s, 1, q, 'BER length');
  let len = b[q++]!;
  let lenBytes = 0;
  if (len & 0x80) {
    lenBytes = len & 0x7f;
    if (lenBytes === 0) return fail(s, 3, q - 1, 'indefinite BER length is not allowed');
    if (lenBytes > 3) return fail(s, 3, q - 1, `BER length of ${lenBytes} octets`);
    if (q + lenBytes > limit) return fail(s, 1, q, 'long-form BER length');
    len = 0;
    for (let i = 0; i < lenBytes; i++) len = len * 256 + b[q++]!;
  }
  if (q + len > limit) return fail(s, 3, p, `length ${len} runs ${q + len - limit} bytes past its container`);
  tlv.tag = tag; tlv.value = q; tlv.len = len; tlv.lenBytes = lenBytes;
  return 0;
}

function fail(s: FrameScan, status: number, offset: number, detail: string): number {
  s.errorOffset = offset;
  s.errorDetail = detail;
  return status;
}

/** Reads an unsigned big-endian integer of 1..4 octets. */
export function readUint(b: Uint8Array, p: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 256 + b[p + i]!;
  return v;
}

/**
 * Scans the frame in `bytes[start, end)` into `s`. Returns SCAN_OK or an
 * index into SCAN_ERRORS; on error `s.errorOffset` is the frame-relative
 * offset and `s.errorDetail` says what was wrong.
 */
export function scanFrame(b: Uint8Array, start: number, end: number, s: FrameScan): number {
  s.start = start;
  if (end > b.length) end = b.length;
  s.end = end;
  s.asduCount = 0;
  s.securityOffset = -1;
  s.securityLength = 0;
  if (end - start < ETH_HEADER_BYTES) return fail(s, 1, 0, 'Ethernet header');
  let p = start + 12;
  let ethertype = (b[p]! << 8) | b[p + 1]!;
  s.vlanPresent = false;
  s.vlanTci = 0;
  if (ethertype === ETHERTYPE_VLAN) {
    if (end - start < ETH_HEADER_BYTES + 4) return fail(s, 1, 12, '802.1Q tag');
    s.vlanPresent = true;
    s.vlanTci = (b[p + 2]! << 8) | b[p + 3]!;
    p += 4;
    ethertype = (b[p]! << 8) | b[p + 1]!;
  }
  if (ethertype !== ETHERTYPE_SV) {
    return fail(s, 2, p - start, `ethertype 0x${ethertype.toString(16).padStart(4, '0')}`);
  }
  p += 2;
  s.svHeader = p;
  if (p + SV_HEADER_BYTES > end) return fail(s, 1, p - start, 'SV header (APPID, Length, Reserved)');
  s.appId = (b[p]! << 8) | b[p + 1]!;
  s.length = (b[p + 2]! << 8) | b[p + 3]!;
  s.reserved1 = (b[p + 4]! << 8) | b[p + 5]!;
  s.reserved2 = (b[p + 6]! << 8) | b[p + 7]!;
  if (s.length < SV_HEADER_BYTES) return fail(s, 3, p + 2 - start, `Length ${s.length} is below the 8-byte header`);
  const limit = p + s.length;
  if (limit > end) return fail(s, 3, p + 2 - start, `Length ${s.length} runs ${limit - end} bytes past the frame`);
  p += SV_HEADER_BYTES;

  let st = readTlv(b, p, limit, s);
  if (st) return rel(s, st);
  const pduTag: number = tlv.tag;
  if (pduTag !== TAG_SAVPDU) return fail(s, 4, p - start, `savPdu tag 0x${pduTag.toString(16)}, expected 0x60`);
  s.pduLenBytes = tlv.lenBytes;
  const pduEnd = tlv.value + tlv.len;
  p = tlv.value;
  let noAsdu = -1;
  let seqStart = -1, seqEnd = -1;
  while (p < pduEnd) {
    st = readTlv(b, p, pduEnd, s);
    if (st) return rel(s, st);
    if (tlv.tag === TAG_NO_ASDU) {
      if (tlv.len < 1 || tlv.len > 2) return fail(s, 8, p - start, `noASDU of ${tlv.len} octets`);
      noAsdu = readUint(b, tlv.value, tlv.len);
    } else if (tlv.tag === TAG_SECURITY) {
      s.securityOffset = tlv.value;
      s.securityLength = tlv.len;
    } else if (tlv.tag === TAG_SEQ_ASDU) {
      s.seqLenBytes = tlv.lenBytes;
      seqStart = tlv.value;
      seqEnd = tlv.value + tlv.len;
    }
    p = tlv.value + tlv.len;
  }
  if (noAsdu < 0) return fail(s, 7, pduEnd - start, 'noASDU is missing');
  if (noAsdu === 0) return fail(s, 5, pduEnd - start, 'noASDU is 0');
  if (seqStart < 0) return fail(s, 7, pduEnd - start, 'seqASDU is missing');
  s.noAsdu = noAsdu;

  p = seqStart;
  let n = 0;
  while (p < seqEnd) {
    st = readTlv(b, p, seqEnd, s);
    if (st) return rel(s, st);
    if (tlv.tag !== TAG_ASDU) return fail(s, 4, p - start, `ASDU tag 0x${tlv.tag.toString(16)}, expected 0x30`);
    if (n >= MAX_ASDUS) return fail(s, 9, p - start, `more than ${MAX_ASDUS} ASDUs`);
    s.asduLenBytes[n] = tlv.lenBytes;
    const asduEnd = tlv.value + tlv.len;
    st = scanAsdu(b, tlv.value, asduEnd, n, s);
    if (st) return st;
    n++;
    p = asduEnd;
  }
  s.asduCount = n;
  if (n === 0) return fail(s, 5, seqStart - start, 'seqASDU holds no ASDU');
  if (n !== noAsdu) return fail(s, 6, seqStart - start, `noASDU says ${noAsdu}, seqASDU holds ${n}`);
  return 0;
}

/** Converts an absolute error offset left by readTlv into a frame-relative one. */
function rel(s: FrameScan, status: number): number {
  s.errorOffset -= s.start;
  return status;
}

const REQUIRED_MASK = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 7);
const ALL_FIELDS = (1 << FIELD_COUNT) - 1;
const FIXED_SIZE = new Int8Array([0, 0, -2, -4, 8, -1, -2, 0, -2, 8]);

function scanAsdu(b: Uint8Array, p: number, end: number, i: number, s: FrameScan): number {
  const base = i * FIELD_COUNT;
  const offs = s.fieldOffset, lens = s.fieldLength;
  let seen = 0;
  while (p < end) {
    let tag: number, value: number, len: number;
    // fast path: one-octet tag and short-form length, as every real ASDU field has
    if (p + 2 <= end && (b[p]! & 0x1f) !== 0x1f && b[p + 1]! < 0x80) {
      tag = b[p]!;
      len = b[p + 1]!;
      value = p + 2;
      if (value + len > end) return fail(s, 3, p - s.start, `length ${len} runs ${value + len - end} bytes past its container`);
    } else {
      const st = readTlv(b, p, end, s);
      if (st) return rel(s, st);
      tag = tlv.tag; value = tlv.value; len = tlv.len;
    }
    const f = tag - 0x80;
    if (f >= 0 && f < FIELD_COUNT) {
      // fixed sizes: positive = exact, negative = at most (integers may be shorter)
      const size = FIXED_SIZE[f]!;
      if ((size > 0 && len !== size) || (size < 0 && (len < 1 || len > -size))) {
        return fail(s, 8, p - s.start, `field 0x${tag.toString(16)} of ${len} octets`);
      }
      offs[base + f] = value;
      lens[base + f] = len;
      seen |= 1 << f;
    }
    p = value + len;
  }
  if ((seen & REQUIRED_MASK) !== REQUIRED_MASK) {
    const names = ['svID', '', 'smpCnt', 'confRev', '', 'smpSynch', '', 'seqData'];
    const missing = names.filter((nm, k) => nm && !(seen & (1 << k)));
    return fail(s, 7, end - s.start, `ASDU ${i} lacks ${missing.join(', ')}`);
  }
  // fields not seen in this ASDU are marked absent
  if (seen !== ALL_FIELDS) {
    for (let f = 0; f < FIELD_COUNT; f++) if (!(seen & (1 << f))) { offs[base + f] = -1; lens[base + f] = -1; }
  }
  const o = offs[base + F_SMPCNT]!;
  s.smpCnt[i] = lens[base + F_SMPCNT] === 2 ? (b[o]! << 8) | b[o + 1]! : readUint(b, o, lens[base + F_SMPCNT]!);
  return 0;
}

/** The SvtraceError for a failed scan. */
export function scanError(status: number, s: FrameScan): SvtraceError {
  const code = SCAN_ERRORS[status] ?? 'SV_MALFORMED';
  return new SvtraceError(code, `malformed SV frame at byte ${s.errorOffset}: ${s.errorDetail}`, {
    offset: s.errorOffset,
    kind: 'usage',
    hint: status === 2
      ? 'this frame is not IEC 61850-9-2 Sampled Values; filter the capture on ethertype 0x88BA'
      : 'the frame does not follow IEC 61850-9-2; check the publisher, or open it in Wireshark to compare',
  });
}

/** Compares the svID of ASDU `i` with the bytes `id` without allocating. */
export function svIdEquals(b: Uint8Array, s: FrameScan, i: number, id: Uint8Array): boolean {
  const o = s.fieldOffset[i * FIELD_COUNT + F_SVID]!;
  const n = s.fieldLength[i * FIELD_COUNT + F_SVID]!;
  if (n !== id.length) return false;
  for (let k = 0; k < n; k++) if (b[o + k] !== id[k]) return false;
  return true;
}
