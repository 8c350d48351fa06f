/**
 * Encoding of SV frames: the inverse of decodeFrame. Integer fields use the
 * fixed sizes of IEC 61850-9-2 (layout.ts); BER lengths are minimal unless
 * the frame's `lengthForms` asks for the long forms it was decoded with.
 */
import { SvtraceError } from '../errors.ts';
import {
  ASDU_TAGS, ETHERTYPE_SV, ETHERTYPE_VLAN, FIELD_BYTES, MAX_ASDUS, SIMULATED_BIT, SV_HEADER_BYTES,
  TAG_ASDU, TAG_NO_ASDU, TAG_SAVPDU, TAG_SECURITY, TAG_SEQ_ASDU,
} from './layout.ts';
import { parseMac } from './decode.ts';
import type { SvAsdu, SvFrame } from './types.ts';

/** Octets needed by a BER length: `lenBytes` 0 = short form when possible. */
function lengthSize(len: number, lenBytes = 0): number {
  const minimal = len < 0x80 ? 0 : len < 0x100 ? 1 : len < 0x10000 ? 2 : 3;
  return 1 + Math.max(minimal, lenBytes);
}

function tlvSize(len: number, lenBytes = 0): number {
  return 1 + lengthSize(len, lenBytes) + len;
}

class Writer {
  p = 0;
  constructor(readonly b: Uint8Array) {}
  u8(v: number) { this.b[this.p++] = v & 0xff; }
  u16(v: number) { this.u8(v >> 8); this.u8(v); }
  uint(v: number, n: number) {
    for (let k = n - 1; k >= 0; k--) this.u8(Math.floor(v / 256 ** k));
  }
  bytes(v: Uint8Array) { this.b.set(v, this.p); this.p += v.length; }
  latin1(s: string) { for (let k = 0; k < s.length; k++) this.u8(s.charCodeAt(k)); }
  header(tag: number, len: number, lenBytes = 0) {
    this.u8(tag);
    const n = lengthSize(len, lenBytes) - 1;
    if (n === 0) this.u8(len);
    else { this.u8(0x80 | n); this.uint(len, n); }
  }
}

function checkUint(name: string, v: number, bytes: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= 256 ** bytes) {
    throw new SvtraceError('SV_ENCODE_RANGE', `${name} = ${v} does not fit in ${bytes} octet(s)`, {
      hint: `use an integer from 0 to ${256 ** bytes - 1}`,
    });
  }
}

function checkLatin1(name: string, s: string): void {
  for (let k = 0; k < s.length; k++) {
    if (s.charCodeAt(k) > 0xff) {
      throw new SvtraceError('SV_ENCODE_RANGE', `${name} "${s}" has a character beyond one octet`, {
        hint: 'svID and datSet are VisibleString: use ASCII characters',
      });
    }
  }
}

function asduBodySize(a: SvAsdu): number {
  let n = tlvSize(a.svId.length) + tlvSize(FIELD_BYTES.smpCnt) + tlvSize(FIELD_BYTES.confRev)
    + tlvSize(FIELD_BYTES.smpSynch) + tlvSize(a.seqData.length);
  if (a.datSet !== undefined) n += tlvSize(a.datSet.length);
  if (a.refrTm !== undefined) n += tlvSize(FIELD_BYTES.refrTm);
  if (a.smpRate !== undefined) n += tlvSize(FIELD_BYTES.smpRate);
  if (a.smpMod !== undefined) n += tlvSize(FIELD_BYTES.smpMod);
  if (a.gmIdentity !== undefined) n += tlvSize(FIELD_BYTES.gmIdentity);
  return n;
}

function checkAsdu(a: SvAsdu, i: number): void {
  checkLatin1(`ASDU ${i} svID`, a.svId);
  if (a.datSet !== undefined) checkLatin1(`ASDU ${i} datSet`, a.datSet);
  checkUint(`ASDU ${i} smpCnt`, a.smpCnt, FIELD_BYTES.smpCnt);
  checkUint(`ASDU ${i} confRev`, a.confRev, FIELD_BYTES.confRev);
  checkUint(`ASDU ${i} smpSynch`, a.smpSynch, FIELD_BYTES.smpSynch);
  if (a.smpRate !== undefined) checkUint(`ASDU ${i} smpRate`, a.smpRate, FIELD_BYTES.smpRate);
  if (a.smpMod !== undefined) checkUint(`ASDU ${i} smpMod`, a.smpMod, FIELD_BYTES.smpMod);
  if (a.refrTm !== undefined && a.refrTm.length !== 8) {
    throw new SvtraceError('SV_ENCODE_RANGE', `ASDU ${i} refrTm has ${a.refrTm.length} octets, needs 8`);
  }
  if (a.gmIdentity !== undefined && a.gmIdentity.length !== 8) {
    throw new SvtraceError('SV_ENCODE_RANGE', `ASDU ${i} gmIdentity has ${a.gmIdentity.length} octets, needs 8`);
  }
}

/** Encodes a frame to a new buffer (no FCS: the NIC adds it). */
export function encodeFrame(frame: SvFrame): Uint8Array {
  if (frame.asdus.length === 0 || frame.asdus.length > MAX_ASDUS) {
    throw new SvtraceError('SV_ENCODE_RANGE', `a frame carries 1 to ${MAX_ASDUS} ASDUs, not ${frame.asdus.length}`);
  }
  checkUint('APPID', frame.appId, 2);
  checkUint('reserved1', frame.reserved1, 2);
  checkUint('reserved2', frame.reserved2, 2);
  frame.asdus.forEach(checkAsdu);
  const forms = frame.lengthForms;
  const bodies = frame.asdus.map(asduBodySize);
  const seqLen = bodies.reduce((sum, n, i) => sum + tlvSize(n, forms?.asdus[i] ?? 0), 0);
  let pduLen = tlvSize(frame.asdus.length < 0x80 ? 1 : 2) + tlvSize(seqLen, forms?.seqAsdu ?? 0);
  if (frame.security) pduLen += tlvSize(frame.security.length);
  const svLen = SV_HEADER_BYTES + tlvSize(pduLen, forms?.savPdu ?? 0);
  if (svLen > 0xffff) throw new SvtraceError('SV_ENCODE_RANGE', `the SV PDU would be ${svLen} bytes, over 65535`);
  const total = 12 + (frame.vlan ? 4 : 0) + 2 + svLen;
  const w = new Writer(new Uint8Array(total));
  w.bytes(parseMac(frame.dst));
  w.bytes(parseMac(frame.src));
  if (frame.vlan) {
    const { priority, dei, id } = frame.vlan;
    if (!(Number.isInteger(priority) && priority >= 0 && priority <= 7 && Number.isInteger(id) && id >= 0 && id <= 4095)) {
      throw new SvtraceError('SV_ENCODE_RANGE', `VLAN priority ${priority} / id ${id} out of range`, {
        hint: 'priority is 0..7 and VLAN id 0..4095',
      });
    }
    w.u16(ETHERTYPE_VLAN);
    w.u16((priority << 13) | (dei ? 0x1000 : 0) | id);
  }
  w.u16(ETHERTYPE_SV);
  w.u16(frame.appId);
  w.u16(svLen);
  w.u16(frame.reserved1 | (frame.simulated ? SIMULATED_BIT : 0));
  w.u16(frame.reserved2);
  w.header(TAG_SAVPDU, pduLen, forms?.savPdu);
  const noAsduBytes = frame.asdus.length < 0x80 ? 1 : 2;
  w.header(TAG_NO_ASDU, noAsduBytes);
  w.uint(frame.asdus.length, noAsduBytes);
  if (frame.security) { w.header(TAG_SECURITY, frame.security.length); w.bytes(frame.security); }
  w.header(TAG_SEQ_ASDU, seqLen, forms?.seqAsdu);
  frame.asdus.forEach((a, i) => {
    w.header(TAG_ASDU, bodies[i]!, forms?.asdus[i]);
    writeAsdu(w, a);
  });
  return w.b;
}

function writeAsdu(w: Writer, a: SvAsdu): void {
  const T = ASDU_TAGS;
  w.header(T.svId, a.svId.length); w.latin1(a.svId);
  if (a.datSet !== undefined) { w.header(T.datSet, a.datSet.length); w.latin1(a.datSet); }
  w.header(T.smpCnt, FIELD_BYTES.smpCnt); w.uint(a.smpCnt, FIELD_BYTES.smpCnt);
  w.header(T.confRev, FIELD_BYTES.confRev); w.uint(a.confRev, FIELD_BYTES.confRev);
  if (a.refrTm !== undefined) { w.header(T.refrTm, 8); w.bytes(a.refrTm); }
  w.header(T.smpSynch, FIELD_BYTES.smpSynch); w.uint(a.smpSynch, FIELD_BYTES.smpSynch);
  if (a.smpRate !== undefined) { w.header(T.smpRate, FIELD_BYTES.smpRate); w.uint(a.smpRate, FIELD_BYTES.smpRate); }
  w.header(T.seqData, a.seqData.length); w.bytes(a.seqData);
  if (a.smpMod !== undefined) { w.header(T.smpMod, FIELD_BYTES.smpMod); w.uint(a.smpMod, FIELD_BYTES.smpMod); }
  if (a.gmIdentity !== undefined) { w.header(T.gmIdentity, 8); w.bytes(a.gmIdentity); }
}

/** Encodes 9-2LE seqData from 8 raw INT32 values and qualities. */
export function encodeLe(values: ArrayLike<number>, quality: ArrayLike<number> = new Array(8).fill(0)): Uint8Array {
  const out = new Uint8Array(64);
  const dv = new DataView(out.buffer);
  for (let c = 0; c < 8; c++) {
    dv.setInt32(c * 8, values[c] ?? 0);
    dv.setUint32(c * 8 + 4, quality[c] ?? 0);
  }
  return out;
}
