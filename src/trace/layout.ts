/**
 * Frame layouts: where, in the frames of one stream, the kernel finds each
 * ASDU's svID and smpCnt. A layout is learnt from one real frame (scanned by
 * the codec in src/sv) or given in the config, and is baked into the
 * generated program as constants.
 *
 * All offsets are relative to the APPID field (the first byte of the SV
 * header), so one layout fits the frame whether it carries an 802.1Q tag in
 * the data, had it stripped by the NIC, or never had one.
 *
 *   APPID+0   APPID (2, big-endian)   APPID+2  Length (2)   -> matched as one 32-bit word
 *   svIdOffset - svIdTlvBytes          0x80, BER length (1..3 octets), svID octets -> matched exactly
 *   smpCntOffset - 2                   0x82, smpCntBytes                             -> matched exactly
 *   smpCntOffset                       smpCnt, big-endian, 1 or 2 octets             -> printed
 */
import { SvtraceError } from '../errors.ts';
import { createFrameScan, scanFrame, scanError, F_SMPCNT, F_SVID, FIELD_COUNT, latin1 } from '../sv/index.ts';

export interface AsduLayout {
  /** svID, one character per octet (latin1). */
  svId: string;
  /** Offset of the svID value octets from the APPID. */
  svIdOffset: number;
  /** Tag and length octets in front of the svID value: 2 (short form), 3 or 4 (long form). */
  svIdTlvBytes: number;
  /** Offset of the smpCnt value from the APPID. */
  smpCntOffset: number;
  /** 2 as 9-2 says; 1 when a publisher encodes small values short. */
  smpCntBytes: number;
}

export interface FrameLayout {
  appId: number;
  /** The SV header's Length field: frames of one layout all have it. */
  length: number;
  asdus: AsduLayout[];
}

/** At most this many ASDUs per frame layout (one output line holds them all). */
export const MAX_LAYOUT_ASDUS = 16;

/** The octets the kernel compares for an ASDU's svID: tag 0x80, the BER length, the value. */
export function svIdTlv(a: AsduLayout): Uint8Array {
  const id = Uint8Array.from(a.svId, (ch) => ch.charCodeAt(0));
  const n = id.length;
  const head = a.svIdTlvBytes === 2 ? [0x80, n] : a.svIdTlvBytes === 3 ? [0x80, 0x81, n] : [0x80, 0x82, n >> 8, n & 0xff];
  const out = new Uint8Array(head.length + n);
  out.set(head, 0);
  out.set(id, head.length);
  return out;
}

/** Bytes from the APPID the kernel must be able to read to use this layout. */
export function layoutExtent(l: FrameLayout): number {
  let end = 4;
  for (const a of l.asdus) end = Math.max(end, a.svIdOffset + a.svId.length, a.smpCntOffset + a.smpCntBytes);
  return end;
}

export function layoutKey(l: FrameLayout): string {
  return `${l.appId}/${l.length}/` + l.asdus.map((a) => `${a.svIdOffset}:${a.svIdTlvBytes}:${a.smpCntOffset}:${a.smpCntBytes}:${JSON.stringify(a.svId)}`).join('/');
}

/**
 * The layout of one frame (bytes from the Ethernet destination address).
 * Throws the codec's SV_* error when the frame is not well-formed SV, and
 * TRACE_LAYOUT_UNSUPPORTED when it cannot be matched in the kernel.
 */
export function layoutFromFrame(bytes: Uint8Array, start = 0, end = bytes.length): FrameLayout {
  const s = createFrameScan();
  const st = scanFrame(bytes, start, end, s);
  if (st) throw scanError(st, s);
  const base = s.svHeader;
  const asdus: AsduLayout[] = [];
  for (let i = 0; i < s.asduCount; i++) {
    const v = s.fieldOffset[i * FIELD_COUNT + F_SVID]!;
    const n = s.fieldLength[i * FIELD_COUNT + F_SVID]!;
    const c = s.fieldOffset[i * FIELD_COUNT + F_SMPCNT]!;
    const cn = s.fieldLength[i * FIELD_COUNT + F_SMPCNT]!;
    // The svID TLV's header, read back from the value: the codec accepts long forms, so do we.
    let tlvBytes = 0;
    if (bytes[v - 2] === 0x80 && bytes[v - 1] === n) tlvBytes = 2;
    else if (bytes[v - 3] === 0x80 && bytes[v - 2] === 0x81 && bytes[v - 1] === n) tlvBytes = 3;
    else if (bytes[v - 4] === 0x80 && bytes[v - 3] === 0x82 && bytes[v - 2] === n >> 8 && bytes[v - 1] === (n & 0xff)) tlvBytes = 4;
    if (tlvBytes === 0 || bytes[c - 2] !== 0x82 || bytes[c - 1] !== cn) {
      throw new SvtraceError('TRACE_LAYOUT_UNSUPPORTED', `ASDU ${i} of APPID 0x${hex4(s.appId)} encodes svID or smpCnt in a form the kernel matcher does not handle`, {
        hint: 'encode svID and smpCnt with minimal BER lengths (up to 3 length octets)',
      });
    }
    asdus.push({ svId: latin1(bytes, v, n), svIdOffset: v - base, svIdTlvBytes: tlvBytes, smpCntOffset: c - base, smpCntBytes: cn });
  }
  return validateLayout({ appId: s.appId, length: s.length, asdus }, 'learnt layout');
}

/** True when every character is one octet (latin1), as svIDs are kept. */
export function isOctets(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

export function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function bad(field: string, message: string): SvtraceError {
  return new SvtraceError('TRACE_CONFIG_INVALID', `trace config: ${field} ${message}`, {
    hint: 'give layouts as { appId, length, asdus: [{ svId, svIdOffset, svIdTlvBytes, smpCntOffset, smpCntBytes }] } with offsets from the APPID, or let svtrace learn them',
  });
}

const int = (v: unknown, lo: number, hi: number): v is number => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** Checks a layout from an untrusted source (config, or a learnt frame) and returns a clean copy. */
export function validateLayout(v: unknown, field: string): FrameLayout {
  if (typeof v !== 'object' || v === null) throw bad(field, 'must be an object');
  const o = v as Record<string, unknown>;
  if (!int(o.appId, 0, 0xffff)) throw bad(`${field}.appId`, 'must be 0..65535');
  if (!int(o.length, 8 + 2, 1500)) throw bad(`${field}.length`, 'must be 10..1500');
  const length = o.length;
  if (!Array.isArray(o.asdus) || o.asdus.length < 1 || o.asdus.length > MAX_LAYOUT_ASDUS) {
    throw new SvtraceError('TRACE_LAYOUT_UNSUPPORTED', `${field}: a frame layout must have 1 to ${MAX_LAYOUT_ASDUS} ASDUs`, {
      hint: `svtrace traces frames of up to ${MAX_LAYOUT_ASDUS} ASDUs; split the publisher's frames or ask for more`,
    });
  }
  const asdus = o.asdus.map((x: unknown, i): AsduLayout => {
    const f = `${field}.asdus[${i}]`;
    if (typeof x !== 'object' || x === null) throw bad(f, 'must be an object');
    const a = x as Record<string, unknown>;
    if (typeof a.svId !== 'string' || a.svId.length < 1 || a.svId.length > 255 || !isOctets(a.svId)) throw bad(`${f}.svId`, 'must be 1..255 octets');
    if (!int(a.svIdTlvBytes, 2, 4) || (a.svIdTlvBytes === 2 && a.svId.length > 127)) throw bad(`${f}.svIdTlvBytes`, 'must be 2 (short form, svID up to 127 octets), 3 or 4');
    if (!int(a.svIdOffset, 8 + a.svIdTlvBytes, length - a.svId.length)) throw bad(`${f}.svIdOffset`, 'must lie inside the PDU');
    if (!int(a.smpCntBytes, 1, 2)) throw bad(`${f}.smpCntBytes`, 'must be 1 or 2');
    if (!int(a.smpCntOffset, 8 + 2, length - a.smpCntBytes)) throw bad(`${f}.smpCntOffset`, 'must lie inside the PDU');
    const sv0 = a.svIdOffset - a.svIdTlvBytes, sv1 = a.svIdOffset + a.svId.length;
    if (a.smpCntOffset - 2 < sv1 && a.smpCntOffset + a.smpCntBytes > sv0) throw bad(f, 'svID and smpCnt overlap');
    return { svId: a.svId, svIdOffset: a.svIdOffset, svIdTlvBytes: a.svIdTlvBytes, smpCntOffset: a.smpCntOffset, smpCntBytes: a.smpCntBytes };
  });
  return { appId: o.appId, length, asdus };
}
