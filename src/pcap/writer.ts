/**
 * Capture writers: bytes for a classic pcap (µs or ns) or pcapng file. Pure:
 * `header()` gives the file start, `encodeRecordInto()` writes one record
 * into a caller's buffer (no allocation), `encodeRecord()` returns it as new
 * bytes. pcapng output is one SHB (shb_userappl "svtrace") + one IDB with
 * if_tsresol = 9 (ns) + one EPB per packet. Packets longer than snapLen are
 * cut to it, keeping their original length.
 */
import { SvtraceError } from '../errors.ts';
import {
  BLOCK_EPB, BLOCK_IDB, BLOCK_SHB, BYTE_ORDER_MAGIC, OPT_IF_NAME, OPT_IF_TSRESOL, OPT_SHB_USERAPPL, pad4,
} from './pcapng-blocks.ts';
import { LINKTYPE_ETHERNET, type ByteOrder } from './types.ts';

export type CaptureWriteFormat = 'pcap' | 'pcap-ns' | 'pcapng';

export interface CaptureWriterOptions {
  format: CaptureWriteFormat;
  /** LINKTYPE_* of the packets; default 1 (Ethernet). */
  linkType?: number;
  /** Snapshot length written in the header, and the most bytes kept per packet; default 262144. */
  snapLen?: number;
  /** pcapng if_name of the one interface. */
  interfaceName?: string;
  /** Default little-endian; big-endian exists to test readers. */
  byteOrder?: ByteOrder;
}

export interface CaptureWriter {
  readonly format: CaptureWriteFormat;
  /** The file header (classic) or SHB + IDB (pcapng). */
  header(): Uint8Array;
  /** Bytes `encodeRecordInto` will write for a packet of `dataLength` bytes. */
  recordBytes(dataLength: number): number;
  /** Writes one record at target[offset]; returns the bytes written. */
  encodeRecordInto(target: Uint8Array, offset: number, tsNs: bigint, data: Uint8Array, origLen?: number): number;
  encodeRecord(tsNs: bigint, data: Uint8Array, origLen?: number): Uint8Array;
}

const DEFAULT_SNAPLEN = 262144;
const NS_PER_SEC = 1_000_000_000n;
const MAX_U32 = 0xffffffff;
const MAX_U64 = (1n << 64n) - 1n;
const MAX_PCAP_TS_NS = (BigInt(MAX_U32) + 1n) * NS_PER_SEC - 1n;

function badOption(message: string, hint: string): SvtraceError {
  return new SvtraceError('CAPTURE_WRITER_OPTIONS', message, { hint });
}

function checkTimestamp(tsNs: bigint, max: bigint, format: CaptureWriteFormat): void {
  if (tsNs < 0n || tsNs > max) {
    throw new SvtraceError('CAPTURE_TIMESTAMP_RANGE', `timestamp ${tsNs} ns cannot be written to a ${format} file`, {
      hint: format === 'pcapng' ? 'timestamps must be 0..2^64-1 ns since the epoch' : 'classic pcap holds 0..2^32-1 s since the epoch; use pcapng',
    });
  }
}

function optionBytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function pcapngHeader(le: boolean, linkType: number, snapLen: number, interfaceName: string | undefined): Uint8Array {
  const appl = optionBytes('svtrace');
  const shbLen = 28 + 4 + pad4(appl.length) + 4;
  const name = interfaceName === undefined ? null : optionBytes(interfaceName);
  const idbLen = 20 + (name ? 4 + pad4(name.length) : 0) + 8 + 4;
  const out = new Uint8Array(shbLen + idbLen);
  const dv = new DataView(out.buffer);
  // SHB
  dv.setUint32(0, BLOCK_SHB, le);
  dv.setUint32(4, shbLen, le);
  dv.setUint32(8, BYTE_ORDER_MAGIC, le);
  dv.setUint16(12, 1, le);
  dv.setUint16(14, 0, le);
  dv.setBigInt64(16, -1n, le);
  dv.setUint16(24, OPT_SHB_USERAPPL, le);
  dv.setUint16(26, appl.length, le);
  out.set(appl, 28);
  // the end-of-options marker is 4 zero bytes, already there
  dv.setUint32(shbLen - 4, shbLen, le);
  // IDB
  const i = shbLen;
  dv.setUint32(i, BLOCK_IDB, le);
  dv.setUint32(i + 4, idbLen, le);
  dv.setUint16(i + 8, linkType, le);
  dv.setUint32(i + 12, snapLen, le);
  let p = i + 16;
  if (name) {
    dv.setUint16(p, OPT_IF_NAME, le);
    dv.setUint16(p + 2, name.length, le);
    out.set(name, p + 4);
    p += 4 + pad4(name.length);
  }
  dv.setUint16(p, OPT_IF_TSRESOL, le);
  dv.setUint16(p + 2, 1, le);
  out[p + 4] = 9;
  dv.setUint32(i + idbLen - 4, idbLen, le);
  return out;
}

function pcapHeader(le: boolean, nanoseconds: boolean, linkType: number, snapLen: number): Uint8Array {
  const out = new Uint8Array(24);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, nanoseconds ? 0xa1b23c4d : 0xa1b2c3d4, le);
  dv.setUint16(4, 2, le);
  dv.setUint16(6, 4, le);
  dv.setUint32(16, snapLen, le);
  dv.setUint32(20, linkType, le);
  return out;
}

export function createCaptureWriter(options: CaptureWriterOptions): CaptureWriter {
  const { format } = options;
  const linkType = options.linkType ?? LINKTYPE_ETHERNET;
  const snapLen = options.snapLen ?? DEFAULT_SNAPLEN;
  const le = (options.byteOrder ?? 'little') === 'little';
  if (format !== 'pcap' && format !== 'pcap-ns' && format !== 'pcapng') {
    throw badOption(`unknown capture format '${String(format)}'`, "use 'pcap', 'pcap-ns' or 'pcapng'");
  }
  if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) {
    throw badOption(`link type ${linkType} is out of range`, 'use a LINKTYPE_* number in 0..65535 (1 = Ethernet)');
  }
  if (!Number.isInteger(snapLen) || snapLen < 1 || snapLen > MAX_U32) {
    throw badOption(`snapLen ${snapLen} is out of range`, 'use a positive integer, e.g. 262144');
  }
  const isNg = format === 'pcapng';
  const headerBytes = isNg ? pcapngHeader(le, linkType, snapLen, options.interfaceName) : pcapHeader(le, format === 'pcap-ns', linkType, snapLen);
  const maxTs = isNg ? MAX_U64 : MAX_PCAP_TS_NS;
  let lastTarget: Uint8Array | null = null;
  let lastDv: DataView = new DataView(new ArrayBuffer(0));

  function recordBytes(dataLength: number): number {
    const cap = Math.min(dataLength, snapLen);
    return isNg ? 32 + pad4(cap) : 16 + cap;
  }

  function encodeRecordInto(target: Uint8Array, offset: number, tsNs: bigint, data: Uint8Array, origLen = data.length): number {
    checkTimestamp(tsNs, maxTs, format);
    const capLen = Math.min(data.length, snapLen);
    if (!Number.isInteger(origLen) || origLen < capLen || origLen > MAX_U32) {
      throw new SvtraceError('CAPTURE_BAD_RECORD', `original length ${origLen} is smaller than the ${capLen} captured bytes or out of range`, {
        hint: 'give origLen ≥ data.length, or leave it out',
      });
    }
    const total = isNg ? 32 + pad4(capLen) : 16 + capLen;
    if (offset < 0 || offset + total > target.length) {
      throw new SvtraceError('CAPTURE_BUFFER_TOO_SMALL', `record of ${total} bytes does not fit at offset ${offset} of a ${target.length}-byte buffer`, {
        hint: 'size the buffer with recordBytes()',
      });
    }
    if (target !== lastTarget) {
      lastTarget = target;
      lastDv = new DataView(target.buffer, target.byteOffset, target.byteLength);
    }
    const dv = lastDv;
    const o = offset;
    const payload = capLen === data.length ? data : data.subarray(0, capLen);
    if (isNg) {
      dv.setUint32(o, BLOCK_EPB, le);
      dv.setUint32(o + 4, total, le);
      dv.setUint32(o + 8, 0, le);
      dv.setUint32(o + 12, Number(tsNs >> 32n), le);
      dv.setUint32(o + 16, Number(tsNs & 0xffffffffn), le);
      dv.setUint32(o + 20, capLen, le);
      dv.setUint32(o + 24, origLen, le);
      target.set(payload, o + 28);
      for (let z = o + 28 + capLen; z < o + total - 4; z++) target[z] = 0;
      dv.setUint32(o + total - 4, total, le);
    } else {
      const sec = tsNs / NS_PER_SEC;
      const nsec = Number(tsNs - sec * NS_PER_SEC);
      dv.setUint32(o, Number(sec), le);
      dv.setUint32(o + 4, format === 'pcap-ns' ? nsec : Math.floor(nsec / 1000), le);
      dv.setUint32(o + 8, capLen, le);
      dv.setUint32(o + 12, origLen, le);
      target.set(payload, o + 16);
    }
    return total;
  }

  return {
    format,
    header: () => headerBytes.slice(),
    recordBytes,
    encodeRecordInto,
    encodeRecord(tsNs, data, origLen) {
      const out = new Uint8Array(recordBytes(data.length));
      encodeRecordInto(out, 0, tsNs, data, origLen);
      return out;
    },
  };
}
