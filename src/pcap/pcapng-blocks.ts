/**
 * pcapng block layout (draft-ietf-opsawg-pcapng), written once. Every block:
 *
 *   u32 block type | u32 block total length | body ... | u32 block total length
 *
 * lengths in the section's byte order (set by the SHB's byte-order magic),
 * total length a multiple of 4 and at least 12. Body layouts used here:
 *
 *   SHB 0x0A0D0D0A  u32 byte-order magic 0x1A2B3C4D | u16 major | u16 minor | i64 section length | options
 *   IDB 0x00000001  u16 link type | u16 reserved | u32 snaplen | options
 *   EPB 0x00000006  u32 interface id | u32 ts high | u32 ts low | u32 cap len | u32 orig len | data (pad 4) | options
 *   SPB 0x00000003  u32 orig len | data (pad 4)                          (interface 0, no timestamp)
 *   OPB 0x00000002  u16 interface id | u16 drops | u32 ts high | u32 ts low | u32 cap len | u32 orig len | data
 *
 * Options: u16 code | u16 length | value padded to 4; code 0 ends the list.
 */
import { SvtraceError } from '../errors.ts';
import { decodeTsResol, DEFAULT_TS_RESOLUTION } from './timestamp.ts';
import type { CaptureInterface, TsResolution } from './types.ts';

export const BLOCK_SHB = 0x0a0d0d0a;
export const BLOCK_IDB = 0x00000001;
export const BLOCK_OPB = 0x00000002;
export const BLOCK_SPB = 0x00000003;
export const BLOCK_EPB = 0x00000006;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const SHB_MIN_BYTES = 28;
export const IDB_MIN_BYTES = 20;
export const EPB_MIN_BYTES = 32;
export const SPB_MIN_BYTES = 16;
export const OPB_MIN_BYTES = 32;

export const OPT_END = 0;
export const OPT_SHB_USERAPPL = 4;
export const OPT_IF_NAME = 2;
export const OPT_IF_TSRESOL = 9;
export const OPT_IF_FCSLEN = 13;
export const OPT_IF_TSOFFSET = 14;

/** What the reader keeps from an IDB's options. */
export interface IdbOptions {
  name: string | null;
  tsResolution: TsResolution;
  tsOffsetSec: number;
  fcsBytes: number | null;
}

export function corrupt(message: string, offset: number, hint?: string): SvtraceError {
  return new SvtraceError('CAPTURE_CORRUPT', `${message} at byte offset ${offset}`, {
    offset,
    hint: hint ?? 'the capture is damaged; check it with `tshark -r FILE` or recover the readable part with `editcap`',
  });
}

/**
 * Reads the options of an IDB whose options start at `pos` and end before `end`
 * (the trailing length field). `abs` is the absolute offset of `pos`.
 */
export function readIdbOptions(bytes: Uint8Array, dv: DataView, pos: number, end: number, le: boolean, abs: number): IdbOptions {
  const out: IdbOptions = { name: null, tsResolution: DEFAULT_TS_RESOLUTION, tsOffsetSec: 0, fcsBytes: null };
  let p = pos;
  while (p + 4 <= end) {
    const code = dv.getUint16(p, le);
    const len = dv.getUint16(p + 2, le);
    if (code === OPT_END) break;
    const valueAt = p + 4;
    if (valueAt + len > end) {
      throw corrupt(`option ${code} of length ${len} runs past the end of its Interface Description Block`, abs + (p - pos));
    }
    if (code === OPT_IF_TSRESOL && len >= 1) {
      out.tsResolution = decodeTsResol(bytes[valueAt] ?? 6);
    } else if (code === OPT_IF_TSOFFSET && len >= 8) {
      out.tsOffsetSec = Number(dv.getBigInt64(valueAt, le));
    } else if (code === OPT_IF_NAME) {
      out.name = new TextDecoder().decode(bytes.subarray(valueAt, valueAt + len)).replace(/\0+$/, '');
    } else if (code === OPT_IF_FCSLEN && len >= 1) {
      out.fcsBytes = bytes[valueAt] ?? null;
    }
    p = valueAt + ((len + 3) & ~3);
  }
  return out;
}

/** Byte order of the SHB at dv[pos], from its byte-order magic: true = little-endian. */
export function shbByteOrder(dv: DataView, pos: number, abs: number): boolean {
  const bom = dv.getUint32(pos + 8, true);
  if (bom === BYTE_ORDER_MAGIC) return true;
  if (bom === 0x4d3c2b1a) return false;
  throw corrupt(`Section Header Block has byte-order magic 0x${bom.toString(16)} instead of 0x1a2b3c4d`, abs);
}

/** Checks the SHB of `len` bytes at dv[pos]; returns its byte order (true = little-endian). */
export function readSectionHeader(dv: DataView, pos: number, len: number, abs: number): boolean {
  if (len < SHB_MIN_BYTES) throw corrupt(`Section Header Block of ${len} bytes is shorter than ${SHB_MIN_BYTES}`, abs);
  const le = shbByteOrder(dv, pos, abs);
  const major = dv.getUint16(pos + 12, le);
  if (major !== 1) {
    throw new SvtraceError('CAPTURE_UNSUPPORTED', `pcapng section has version ${major}.${dv.getUint16(pos + 14, le)}, expected 1.x`, {
      offset: abs, hint: 'convert the file with `editcap -F pcapng IN OUT`',
    });
  }
  return le;
}

/** Reads the IDB of `len` bytes at dv[pos] as interface `interfaceId` of section `sectionIndex`. */
export function readInterfaceDescription(
  b: Uint8Array, dv: DataView, pos: number, len: number, le: boolean, abs: number, sectionIndex: number, interfaceId: number,
): CaptureInterface {
  if (len < IDB_MIN_BYTES) throw corrupt(`Interface Description Block of ${len} bytes is shorter than ${IDB_MIN_BYTES}`, abs);
  const opts = readIdbOptions(b, dv, pos + 16, pos + len - 4, le, abs + 16);
  return {
    sectionIndex, interfaceId, linkType: dv.getUint16(pos + 8, le), snapLen: dv.getUint32(pos + 12, le),
    tsResolution: opts.tsResolution, tsOffsetSec: opts.tsOffsetSec, name: opts.name, fcsBytes: opts.fcsBytes, packets: 0,
  };
}

/** Padded length of `n` bytes of block data. */
export function pad4(n: number): number {
  return (n + 3) & ~3;
}
