/**
 * Classic pcap file header and format detection from the first 4 bytes.
 *
 *   u32 magic | u16 major = 2 | u16 minor = 4 | i32 thiszone | u32 sigfigs | u32 snaplen | u32 link type
 *
 * magic a1b2c3d4 = µs timestamps, a1b23c4d = ns, a1b2cd34 = "modified" pcap
 * (24-byte record headers), each in either byte order; 0a0d0d0a = pcapng.
 * Link-type field: bits 0-15 LINKTYPE_*, bit 26 "FCS length present", bits 28-31 FCS length in 16-bit words.
 */
import { SvtraceError } from '../errors.ts';
import type { CaptureFormat, CaptureInterface } from './types.ts';

const MAGICS = new Map<number, { format: CaptureFormat; le: boolean }>([
  [0xa1b2c3d4, { format: 'pcap', le: false }],
  [0xd4c3b2a1, { format: 'pcap', le: true }],
  [0xa1b23c4d, { format: 'pcap-ns', le: false }],
  [0x4d3cb2a1, { format: 'pcap-ns', le: true }],
  [0xa1b2cd34, { format: 'pcap-modified', le: false }],
  [0x34cdb2a1, { format: 'pcap-modified', le: true }],
  // pcapng: the SHB type reads the same in both byte orders; its own magic tells the order.
  [0x0a0d0d0a, { format: 'pcapng', le: true }],
]);

/** The format of a capture from its first 4 bytes at b[pos]; throws CAPTURE_UNKNOWN_FORMAT. */
export function detectFormat(b: Uint8Array, pos: number): { format: CaptureFormat; le: boolean } {
  const magic = ((b[pos]! << 24) | (b[pos + 1]! << 16) | (b[pos + 2]! << 8) | b[pos + 3]!) >>> 0;
  const m = MAGICS.get(magic);
  if (m) return m;
  const hex = magic.toString(16).padStart(8, '0');
  const hint = (magic >>> 16) === 0x1f8b
    ? 'the input is gzip-compressed: decompress it first (gunzip)'
    : 'give a classic pcap (magic a1b2c3d4 or a1b23c4d, either byte order) or a pcapng file, e.g. from `tcpdump -w` or `tshark -w`; convert others with `editcap -F pcapng IN OUT`';
  throw new SvtraceError('CAPTURE_UNKNOWN_FORMAT', `not a pcap or pcapng capture: the first 4 bytes are 0x${hex}`, { offset: 0, hint });
}

/** Reads the 24-byte file header at dv[pos] into the capture's one interface. */
export function readPcapFileHeader(dv: DataView, pos: number, le: boolean, nanoseconds: boolean, abs: number): CaptureInterface {
  const major = dv.getUint16(pos + 4, le);
  if (major !== 2) {
    throw new SvtraceError('CAPTURE_UNSUPPORTED', `pcap file header has version ${major}.${dv.getUint16(pos + 6, le)}, expected 2.4`, {
      offset: abs, hint: 'convert the file with `editcap -F pcap IN OUT`',
    });
  }
  const network = dv.getUint32(pos + 20, le);
  const hasFcs = (network & 0x04000000) !== 0;
  return {
    sectionIndex: 0, interfaceId: 0, linkType: network & 0xffff, snapLen: dv.getUint32(pos + 16, le),
    tsResolution: { base: 10, exponent: nanoseconds ? 9 : 6 }, tsOffsetSec: 0, name: null,
    fcsBytes: hasFcs ? ((network >>> 28) & 0xf) * 2 : null, packets: 0,
  };
}
