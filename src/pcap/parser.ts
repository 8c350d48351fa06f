/**
 * The push parser for classic pcap and pcapng: feed it chunks of any size,
 * it calls `onPacket` once per packet with one reused view and allocates
 * nothing per packet. Only a record split across chunks is copied (into a
 * reused tail buffer). The format is detected from the first bytes.
 *
 * Classic pcap (all fields in the byte order of the magic):
 *   file header 24 B: u32 magic | u16 major=2 | u16 minor | i32 thiszone | u32 sigfigs | u32 snaplen | u32 linktype+FCS bits
 *   record 16 B:      u32 ts sec | u32 ts µs or ns | u32 cap len | u32 orig len | data
 *   (the "modified" variant adds 8 bytes to each record header)
 * pcapng: see pcapng-blocks.ts.
 */
import { SvtraceError } from '../errors.ts';
import { detectFormat, readPcapFileHeader } from './pcap-header.ts';
import {
  BLOCK_EPB, BLOCK_IDB, BLOCK_OPB, BLOCK_SHB, BLOCK_SPB, corrupt, EPB_MIN_BYTES, OPB_MIN_BYTES,
  readInterfaceDescription, readSectionHeader, shbByteOrder, SPB_MIN_BYTES,
} from './pcapng-blocks.ts';
import { convertTimestamp, createTsConverter, type TsConverter } from './timestamp.ts';
import {
  type ByteOrder, type CaptureFormat, type CaptureInterface, type CaptureSummary, MAX_RECORD_BYTES, type PacketView,
} from './types.ts';

export interface CaptureParserOptions {
  /** Largest record or block accepted before the input is called corrupt. Default 256 MiB. */
  maxRecordBytes?: number;
}

export interface CaptureParser {
  /** Parses as much of `chunk` as forms whole records. The chunk may be reused by the caller afterwards. */
  push(chunk: Uint8Array): void;
  /** Ends the input and summarizes it; a cut last record is reported in `truncated`. */
  end(): CaptureSummary;
}

type MutableView = { -readonly [K in keyof PacketView]: PacketView[K] };

interface InterfaceState {
  info: CaptureInterface;
  conv: TsConverter;
}

const STAGE_DETECT = 0;
const STAGE_PCAP_HEADER = 1;
const STAGE_PCAP = 2;
const STAGE_PCAPNG = 3;
const PCAP_HEADER_BYTES = 24;
const PCAPNG_PROBE_BYTES = 12;
const EMPTY = new Uint8Array(0);

export function createCaptureParser(onPacket: (p: PacketView) => void, options: CaptureParserOptions = {}): CaptureParser {
  const maxRecord = options.maxRecordBytes ?? MAX_RECORD_BYTES;
  const view: MutableView = {
    bytes: EMPTY, offset: 0, capLen: 0, origLen: 0, tsSec: 0, tsNsec: 0,
    hasTimestamp: true, interfaceId: 0, sectionIndex: 0, linkType: 0,
  };
  let stage = STAGE_DETECT;
  let format: CaptureFormat | null = null;
  let firstByteOrder: ByteOrder = 'little';
  let le = true;
  // classic pcap
  let recordHeaderBytes = 16;
  let fracToNs = 1000;
  let classic: CaptureInterface | null = null;
  // pcapng
  let sectionIndex = -1;
  let sectionIfaces: InterfaceState[] = [];
  const interfaces: CaptureInterface[] = [];
  // counters and the partial tail
  let packets = 0;
  let capturedBytes = 0;
  let inputBytes = 0;
  let tail = new Uint8Array(0);
  let tailDv = new DataView(tail.buffer);
  let tailLen = 0;
  let tailAbs = 0;
  let ended = false;
  let failure: unknown = null;

  function detect(b: Uint8Array, pos: number): void {
    const m = detectFormat(b, pos);
    format = m.format;
    le = m.le;
    if (m.format === 'pcapng') {
      stage = STAGE_PCAPNG;
      return;
    }
    firstByteOrder = le ? 'little' : 'big';
    fracToNs = m.format === 'pcap-ns' ? 1 : 1000;
    recordHeaderBytes = m.format === 'pcap-modified' ? 24 : 16;
    stage = STAGE_PCAP_HEADER;
  }

  /** Byte order of the block at pos: the section's, or for an SHB its own byte-order magic. */
  function blockByteOrder(dv: DataView, pos: number, abs: number): boolean {
    return dv.getUint32(pos, true) === BLOCK_SHB ? shbByteOrder(dv, pos, abs) : le;
  }

  /** Length of the unit (header, record, block) at pos, or -(bytes needed to know it). Validates it. */
  function unitLength(b: Uint8Array, dv: DataView, pos: number, avail: number, abs: number): number {
    if (stage === STAGE_DETECT) {
      if (avail < 4) return -4;
      detect(b, pos);
    }
    if (stage === STAGE_PCAP_HEADER) return PCAP_HEADER_BYTES;
    if (stage === STAGE_PCAP) {
      if (avail < recordHeaderBytes) return -recordHeaderBytes;
      const capLen = dv.getUint32(pos + 8, le);
      if (capLen > maxRecord) throw recordTooLarge(capLen, abs);
      return recordHeaderBytes + capLen;
    }
    if (avail < PCAPNG_PROBE_BYTES) return -PCAPNG_PROBE_BYTES;
    const blockLe = blockByteOrder(dv, pos, abs);
    const len = dv.getUint32(pos + 4, blockLe);
    if (len < 12 || len % 4 !== 0 || len > maxRecord) {
      throw corrupt(`pcapng block (type 0x${dv.getUint32(pos, blockLe).toString(16)}) has an invalid total length ${len}`, abs,
        'a block length must be a multiple of 4, at least 12 and at most ' + maxRecord);
    }
    return len;
  }

  function recordTooLarge(capLen: number, abs: number): SvtraceError {
    return corrupt(`packet record claims ${capLen} captured bytes (more than the ${maxRecord} accepted)`, abs);
  }

  function emit(b: Uint8Array, dataAt: number, capLen: number, origLen: number, iface: CaptureInterface): void {
    view.bytes = b;
    view.offset = dataAt;
    view.capLen = capLen;
    view.origLen = origLen;
    view.interfaceId = iface.interfaceId;
    view.sectionIndex = iface.sectionIndex;
    view.linkType = iface.linkType;
    iface.packets++;
    packets++;
    capturedBytes += capLen;
    onPacket(view);
  }

  function classicRecord(b: Uint8Array, dv: DataView, pos: number, capLen: number): void {
    let sec = dv.getUint32(pos, le);
    let ns = dv.getUint32(pos + 4, le) * fracToNs;
    if (ns >= 1_000_000_000) {
      const carry = Math.floor(ns / 1_000_000_000);
      sec += carry;
      ns -= carry * 1_000_000_000;
    }
    view.tsSec = sec;
    view.tsNsec = ns;
    view.hasTimestamp = true;
    emit(b, pos + recordHeaderBytes, capLen, dv.getUint32(pos + 12, le), classic!);
  }

  function classicHeader(dv: DataView, pos: number, abs: number): void {
    classic = readPcapFileHeader(dv, pos, le, format === 'pcap-ns', abs);
    interfaces.push(classic);
    sectionIndex = 0;
    stage = STAGE_PCAP;
  }

  function sectionHeader(dv: DataView, pos: number, len: number, abs: number): void {
    le = readSectionHeader(dv, pos, len, abs);
    if (sectionIndex < 0) firstByteOrder = le ? 'little' : 'big';
    sectionIndex++;
    sectionIfaces = [];
  }

  function interfaceDescription(b: Uint8Array, dv: DataView, pos: number, len: number, abs: number): void {
    const info = readInterfaceDescription(b, dv, pos, len, le, abs, sectionIndex, sectionIfaces.length);
    sectionIfaces.push({ info, conv: createTsConverter(info.tsResolution, info.tsOffsetSec) });
    interfaces.push(info);
  }

  function interfaceFor(id: number, abs: number): InterfaceState {
    const s = sectionIfaces[id];
    if (s === undefined) {
      throw corrupt(`packet block refers to interface ${id} but section ${sectionIndex} declares ${sectionIfaces.length}`, abs);
    }
    return s;
  }

  function timedPacket(b: Uint8Array, dv: DataView, pos: number, len: number, abs: number, id: number, hdr: number): void {
    const s = interfaceFor(id, abs);
    const capLen = dv.getUint32(pos + hdr - 8, le);
    if (capLen > len - hdr - 4) throw corrupt(`packet block claims ${capLen} captured bytes but holds ${len - hdr - 4}`, abs);
    convertTimestamp(s.conv, dv.getUint32(pos + hdr - 16, le), dv.getUint32(pos + hdr - 12, le), view);
    view.hasTimestamp = true;
    emit(b, pos + hdr, capLen, dv.getUint32(pos + hdr - 4, le), s.info);
  }

  function block(b: Uint8Array, dv: DataView, pos: number, len: number, abs: number): void {
    const blockLe = blockByteOrder(dv, pos, abs);
    const trailing = dv.getUint32(pos + len - 4, blockLe);
    if (trailing !== len) throw corrupt(`pcapng block's trailing length ${trailing} differs from its leading length ${len}`, abs);
    const type = dv.getUint32(pos, blockLe);
    if (type === BLOCK_SHB) {
      sectionHeader(dv, pos, len, abs);
    } else if (sectionIndex < 0) {
      throw corrupt('pcapng block appears before any Section Header Block', abs);
    } else {
      if (type === BLOCK_EPB) {
        if (len < EPB_MIN_BYTES) throw corrupt(`Enhanced Packet Block of ${len} bytes is shorter than ${EPB_MIN_BYTES}`, abs);
        timedPacket(b, dv, pos, len, abs, dv.getUint32(pos + 8, le), 28);
      } else if (type === BLOCK_SPB) {
        if (len < SPB_MIN_BYTES) throw corrupt(`Simple Packet Block of ${len} bytes is shorter than ${SPB_MIN_BYTES}`, abs);
        const s = interfaceFor(0, abs);
        const origLen = dv.getUint32(pos + 8, le);
        const snap = s.info.snapLen === 0 ? origLen : Math.min(origLen, s.info.snapLen);
        const capLen = Math.min(snap, len - 16);
        view.tsSec = 0;
        view.tsNsec = 0;
        view.hasTimestamp = false;
        emit(b, pos + 12, capLen, origLen, s.info);
      } else if (type === BLOCK_IDB) {
        interfaceDescription(b, dv, pos, len, abs);
      } else if (type === BLOCK_OPB) {
        if (len < OPB_MIN_BYTES) throw corrupt(`Packet Block of ${len} bytes is shorter than ${OPB_MIN_BYTES}`, abs);
        timedPacket(b, dv, pos, len, abs, dv.getUint16(pos + 8, le), 28);
      }
      // Any other block (NRB, ISB, DSB, custom, ...) is skipped by its length.
    }
  }

  function unit(b: Uint8Array, dv: DataView, pos: number, len: number, abs: number): void {
    if (stage === STAGE_PCAP) classicRecord(b, dv, pos, len - recordHeaderBytes);
    else if (stage === STAGE_PCAPNG) block(b, dv, pos, len, abs);
    else classicHeader(dv, pos, abs);
  }

  /** Parses whole units of b[pos, end); returns where the first incomplete one starts. */
  function consume(b: Uint8Array, dv: DataView, pos: number, end: number, base: number): number {
    while (true) {
      if (stage === STAGE_PCAP) {
        // The hot loop for classic pcap.
        const hdr = recordHeaderBytes;
        while (end - pos >= hdr) {
          const capLen = dv.getUint32(pos + 8, le);
          if (capLen > maxRecord) throw recordTooLarge(capLen, base + pos);
          const next = pos + hdr + capLen;
          if (next > end) return pos;
          classicRecord(b, dv, pos, capLen);
          pos = next;
        }
        return pos;
      }
      const n = unitLength(b, dv, pos, end - pos, base + pos);
      if (n < 0 || n > end - pos) return pos;
      unit(b, dv, pos, n, base + pos);
      pos += n;
    }
  }

  function appendToTail(chunk: Uint8Array, from: number, count: number): void {
    if (tailLen + count > tail.length) {
      const grown = new Uint8Array(Math.max(tailLen + count, tail.length * 2, 256));
      grown.set(tail.subarray(0, tailLen));
      tail = grown;
      tailDv = new DataView(tail.buffer);
    }
    tail.set(chunk.subarray(from, from + count), tailLen);
    tailLen += count;
  }

  function pushChunk(chunk: Uint8Array): void {
    const chunkAbs = inputBytes;
    inputBytes += chunk.length;
    let pos = 0;
    // First complete the record left over from the previous chunk, one unit at a time.
    while (tailLen > 0) {
      const n = unitLength(tail, tailDv, 0, tailLen, tailAbs);
      const want = n < 0 ? -n : n;
      const take = Math.min(want - tailLen, chunk.length - pos);
      if (take > 0) {
        appendToTail(chunk, pos, take);
        pos += take;
      }
      if (tailLen < want) return;
      if (n < 0) continue;
      unit(tail, tailDv, 0, n, tailAbs);
      tailLen = 0;
    }
    const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const stop = consume(chunk, dv, pos, chunk.length, chunkAbs);
    if (stop < chunk.length) {
      tailAbs = chunkAbs + stop;
      appendToTail(chunk, stop, chunk.length - stop);
    }
  }

  function push(chunk: Uint8Array): void {
    if (failure !== null) throw failure;
    if (ended) throw new SvtraceError('CAPTURE_PARSER_ENDED', 'push() was called after end()', { hint: 'create a new parser for each input' });
    try {
      pushChunk(chunk);
    } catch (e) {
      // After an error (ours or one thrown by onPacket) the position in the input is lost.
      failure = e;
      throw e;
    }
  }

  function end(): CaptureSummary {
    if (failure !== null) throw failure;
    ended = true;
    if (format === null) {
      if (inputBytes === 0) {
        throw new SvtraceError('CAPTURE_EMPTY', 'the capture input is empty', { offset: 0, hint: 'give a pcap or pcapng file with at least its header' });
      }
      throw new SvtraceError('CAPTURE_UNKNOWN_FORMAT', `the input is only ${inputBytes} bytes, too short for a capture header`, {
        offset: 0, hint: 'give a complete pcap or pcapng file',
      });
    }
    let truncated: CaptureSummary['truncated'] = null;
    if (tailLen > 0) {
      const n = unitLength(tail, tailDv, 0, tailLen, tailAbs);
      truncated = { offset: tailAbs, expectedBytes: n < 0 ? -n : n, availableBytes: tailLen };
    }
    return {
      format, byteOrder: firstByteOrder, packets, capturedBytes, inputBytes,
      sections: Math.max(sectionIndex + 1, 0), interfaces, truncated,
    };
  }

  return { push, end };
}
