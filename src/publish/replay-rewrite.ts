/**
 * Rewriting a captured SV frame for replay, without decoding it into objects:
 * new smpCnt per ASDU (loops), and for a copy of a stream a new svID, APPID
 * and source MAC. Everything else is kept byte for byte: the 802.1Q tag,
 * Reserved1/2, security, fields svtrace does not know, the trailer or FCS
 * after the SV PDU.
 *
 * smpCnt is a fixed 2-octet field: it is patched in place. A new svID of the
 * same length is patched in place too; one of another length changes the
 * lengths of the ASDU, seqASDU and savPdu TLVs and the APPID header's Length,
 * so the PDU is rebuilt. Each rebuilt BER length keeps the form it had on the
 * wire (short form, or long form with as many length octets) unless the new
 * length needs more octets: a length that outgrows 127 takes the long form
 * 0x81 LL, one that outgrows 255 0x82 LLLL.
 *
 * The frame must have passed `scanFrame` (the scan is given), so the TLV
 * structure is known to be sound.
 */
import { SvtraceError } from '../errors.ts';
import { F_SMPCNT, F_SVID, FIELD_COUNT, SV_HEADER_BYTES, TAG_ASDU, TAG_SEQ_ASDU, type FrameScan } from '../sv/index.ts';

export interface FrameRewrite {
  /** smpCnt of each ASDU, or null to keep them. */
  smpCnt: ArrayLike<number> | null;
  /** svID bytes of each ASDU, or null to keep them. */
  svIds: ReadonlyArray<Uint8Array> | null;
  /** New APPID, or -1 to keep it. */
  appId: number;
  /** New source MAC (6 octets), or null to keep it. */
  srcMac: Uint8Array | null;
}

// where each ASDU's smpCnt value landed in `out` (filled by both paths; reused, no allocation per frame)
const smpCntOut = new Int32Array(64);

interface Tlv { hdr: number; value: number; len: number; lenBytes: number }

/** Reads a TLV header known to be sound (the frame was scanned). */
function tlvAt(b: Uint8Array, p: number): Tlv {
  let q = p + 1;
  if ((b[p]! & 0x1f) === 0x1f) while (b[q++]! & 0x80) { /* multi-octet tag */ }
  let len = b[q++]!;
  let lenBytes = 0;
  if (len & 0x80) {
    lenBytes = len & 0x7f;
    len = 0;
    for (let i = 0; i < lenBytes; i++) len = len * 256 + b[q++]!;
  }
  return { hdr: p, value: q, len, lenBytes };
}

/** Octets of a BER length field for `len`, keeping at least `keepLenBytes` long-form octets. */
export function berLengthSize(len: number, keepLenBytes = 0): number {
  const minimal = len < 0x80 ? 0 : len < 0x100 ? 1 : len < 0x10000 ? 2 : 3;
  return 1 + Math.max(minimal, keepLenBytes);
}

function putLength(out: Uint8Array, q: number, len: number, keepLenBytes: number): number {
  const n = berLengthSize(len, keepLenBytes) - 1;
  if (n === 0) { out[q++] = len; return q; }
  out[q++] = 0x80 | n;
  for (let k = n - 1; k >= 0; k--) out[q++] = Math.floor(len / 256 ** k) & 0xff;
  return q;
}

/** Tag octets of the TLV `t` (its header minus the length field). */
const tagBytes = (t: Tlv): number => t.value - t.hdr - 1 - t.lenBytes;

function needsRebuild(scan: FrameScan, svIds: ReadonlyArray<Uint8Array> | null): boolean {
  if (!svIds) return false;
  for (let i = 0; i < scan.asduCount; i++) if (svIds[i]!.length !== scan.fieldLength[i * FIELD_COUNT + F_SVID]!) return true;
  return false;
}

/**
 * Writes the rewritten frame `b[scan.start, scan.end)` to `out` at `at` and
 * returns its length. `out` needs room for the frame plus, when svIDs grow,
 * their growth and a few length octets (see `rewrittenSizeBound`).
 */
export function rewriteFrame(b: Uint8Array, scan: FrameScan, r: FrameRewrite, out: Uint8Array, at: number): number {
  const start = scan.start;
  const len = needsRebuild(scan, r.svIds) ? rebuild(b, scan, r.svIds!, out, at) : copyPatched(b, scan, r.svIds, out, at);
  // source MAC and APPID sit at the same place in both cases
  if (r.srcMac) out.set(r.srcMac, at + 6);
  const appAt = at + (scan.svHeader - start);
  if (r.appId >= 0) { out[appAt] = r.appId >> 8; out[appAt + 1] = r.appId & 0xff; }
  if (r.smpCnt) {
    for (let i = 0; i < scan.asduCount; i++) {
      const v = r.smpCnt[i]!;
      out[smpCntOut[i]!] = (v >> 8) & 0xff;
      out[smpCntOut[i]! + 1] = v & 0xff;
    }
  }
  return len;
}

function copyPatched(b: Uint8Array, scan: FrameScan, svIds: ReadonlyArray<Uint8Array> | null, out: Uint8Array, at: number): number {
  const len = scan.end - scan.start;
  out.set(b.subarray(scan.start, scan.end), at);
  for (let i = 0; i < scan.asduCount; i++) smpCntOut[i] = at + scan.fieldOffset[i * FIELD_COUNT + F_SMPCNT]! - scan.start;
  if (svIds) {
    for (let i = 0; i < scan.asduCount; i++) out.set(svIds[i]!, at + scan.fieldOffset[i * FIELD_COUNT + F_SVID]! - scan.start);
  }
  return len;
}

/** Rebuilds the SV PDU with svIDs of other lengths. */
function rebuild(b: Uint8Array, scan: FrameScan, svIds: ReadonlyArray<Uint8Array>, out: Uint8Array, at: number): number {
  const start = scan.start;
  const svHeader = scan.svHeader;
  const pdu = tlvAt(b, svHeader + SV_HEADER_BYTES);
  const pduEnd = pdu.value + pdu.len;
  const trailerFrom = svHeader + scan.length;
  // sizes, inside out
  let seq: Tlv | null = null;
  const asdus: Tlv[] = [];
  const bodies: number[] = [];
  let otherPdu = 0;
  for (let p = pdu.value; p < pduEnd;) {
    const t = tlvAt(b, p);
    if (b[p] === TAG_SEQ_ASDU && !seq) seq = t; else otherPdu += t.value + t.len - t.hdr;
    p = t.value + t.len;
  }
  if (!seq) throw new SvtraceError('SV_MISSING_FIELD', 'internal: a scanned frame has no seqASDU', { kind: 'internal' });
  let seqLen = 0;
  let i = 0;
  for (let p = seq.value; p < seq.value + seq.len; i++) {
    const a = tlvAt(b, p);
    const svId = svIds[i]!;
    const f = tlvAt(b, a.value); // svID is the first field of an ASDU (scan checked its presence; 9-2 fixes its place)
    if (f.value !== scan.fieldOffset[i * FIELD_COUNT + F_SVID]) {
      throw new SvtraceError('SV_BAD_TAG', `ASDU ${i}: svID is not its first field, so it cannot be renamed`, { hint: 'replay this capture without --streams copies' });
    }
    const body = a.len - (f.value + f.len - f.hdr) + tagBytes(f) + berLengthSize(svId.length, f.lenBytes) + svId.length;
    asdus.push(a);
    bodies.push(body);
    seqLen += tagBytes(a) + berLengthSize(body, a.lenBytes) + body;
    p = a.value + a.len;
  }
  const pduLen = otherPdu + tagBytes(seq) + berLengthSize(seqLen, seq.lenBytes) + seqLen;
  const svLen = SV_HEADER_BYTES + tagBytes(pdu) + berLengthSize(pduLen, pdu.lenBytes) + pduLen;
  if (svLen > 0xffff) throw new SvtraceError('SV_ENCODE_RANGE', `the renamed SV PDU would be ${svLen} bytes, over 65535`, { hint: 'use shorter svIDs' });
  // write: Ethernet header (+ tag), SV header with the new Length, savPdu, trailer
  let q = at;
  out.set(b.subarray(start, svHeader + SV_HEADER_BYTES), q);
  const lenAt = q + (svHeader - start) + 2;
  out[lenAt] = svLen >> 8; out[lenAt + 1] = svLen & 0xff;
  q += svHeader + SV_HEADER_BYTES - start;
  out.set(b.subarray(pdu.hdr, pdu.hdr + tagBytes(pdu)), q); q += tagBytes(pdu);
  q = putLength(out, q, pduLen, pdu.lenBytes);
  for (let p = pdu.value; p < pduEnd;) {
    const t = tlvAt(b, p);
    if (t.hdr !== seq.hdr) {
      out.set(b.subarray(t.hdr, t.value + t.len), q); q += t.value + t.len - t.hdr;
    } else {
      out.set(b.subarray(seq.hdr, seq.hdr + tagBytes(seq)), q); q += tagBytes(seq);
      q = putLength(out, q, seqLen, seq.lenBytes);
      for (let k = 0; k < asdus.length; k++) {
        const a = asdus[k]!;
        out[q++] = TAG_ASDU;
        q = putLength(out, q, bodies[k]!, a.lenBytes);
        const f = tlvAt(b, a.value);
        out.set(b.subarray(f.hdr, f.hdr + tagBytes(f)), q); q += tagBytes(f);
        q = putLength(out, q, svIds[k]!.length, f.lenBytes);
        out.set(svIds[k]!, q); q += svIds[k]!.length;
        // the rest of the ASDU as it was; smpCnt moves by the same shift
        const shift = q - (f.value + f.len);
        smpCntOut[k] = scan.fieldOffset[k * FIELD_COUNT + F_SMPCNT]! + shift;
        out.set(b.subarray(f.value + f.len, a.value + a.len), q); q += a.value + a.len - (f.value + f.len);
      }
    }
    p = t.value + t.len;
  }
  out.set(b.subarray(trailerFrom, scan.end), q); q += scan.end - trailerFrom;
  return q - at;
}

/** An upper bound of a rewritten frame's length. */
export function rewrittenSizeBound(frameBytes: number, asdus: number, longestSvId: number): number {
  return frameBytes + asdus * (longestSvId + 4) + 12;
}
