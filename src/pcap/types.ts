/**
 * Data shapes shared by the capture readers and writers.
 *
 * Timestamps are kept exactly in nanoseconds: a reader gives whole seconds
 * (`tsSec`) and nanoseconds within the second (`tsNsec`) as two numbers, both
 * exact, and `tsNs()` joins them into one bigint when an exact absolute value
 * is needed (ns since the epoch do not fit a JS number exactly).
 */

/** LINKTYPE_ETHERNET (DLT_EN10MB), the link type of every SV capture. */
export const LINKTYPE_ETHERNET = 1;

/** Largest record or block a reader accepts before calling the input corrupt: 256 MiB. */
export const MAX_RECORD_BYTES = 256 * 1024 * 1024;

/** Classic pcap with µs timestamps, with ns timestamps, the "modified" (Kuznetzov) pcap, or pcapng. */
export type CaptureFormat = 'pcap' | 'pcap-ns' | 'pcap-modified' | 'pcapng';

export type ByteOrder = 'little' | 'big';

/**
 * One packet as the push parser sees it. The parser hands the same object to
 * every callback and overwrites it: it is valid only during the callback, and
 * `bytes` may be a buffer the parser reuses. Copy what you keep
 * (`copyPacket(view)`, or `tsNs(view)` and a copy of `bytes.subarray(offset, offset + capLen)`).
 */
export interface PacketView {
  /** Buffer holding the packet; the packet is `bytes[offset, offset + capLen)`. */
  readonly bytes: Uint8Array;
  readonly offset: number;
  /** Bytes captured (present in `bytes`). */
  readonly capLen: number;
  /** Length of the packet on the wire (≥ capLen when the capture was cut by a snaplen). */
  readonly origLen: number;
  /** Whole seconds since the epoch (including any pcapng if_tsoffset). */
  readonly tsSec: number;
  /** Nanoseconds within the second, 0..999 999 999. */
  readonly tsNsec: number;
  /** false for a pcapng Simple Packet Block, which carries no timestamp (tsSec = tsNsec = 0). */
  readonly hasTimestamp: boolean;
  /** pcapng interface ID within its section (0 for classic pcap). */
  readonly interfaceId: number;
  /** 0-based pcapng section the packet belongs to (0 for classic pcap). */
  readonly sectionIndex: number;
  /** LINKTYPE_* of the packet's interface (1 = Ethernet). */
  readonly linkType: number;
}

/** Resolution of an interface's timestamps: one unit is base^-exponent seconds. */
export interface TsResolution {
  readonly base: 10 | 2;
  readonly exponent: number;
}

/** One capture interface: the classic pcap header, or one pcapng Interface Description Block. */
export interface CaptureInterface {
  sectionIndex: number;
  interfaceId: number;
  linkType: number;
  /** Snapshot length; 0 means no limit (pcapng). */
  snapLen: number;
  tsResolution: TsResolution;
  /** pcapng if_tsoffset in seconds, added to every timestamp (0 when absent). */
  tsOffsetSec: number;
  /** pcapng if_name, or null. */
  name: string | null;
  /** Bytes of FCS at the end of each frame when the capture says so (pcapng if_fcslen, pcap FCS bits), else null. */
  fcsBytes: number | null;
  /** Packets delivered for this interface. */
  packets: number;
}

/** Where the input ended in the middle of a record. */
export interface CaptureTruncation {
  /** Byte offset of the cut record in the input. */
  offset: number;
  /** Length that record needs (its header length when even the header was cut). */
  expectedBytes: number;
  /** Bytes of it that were present. */
  availableBytes: number;
}

export interface CaptureSummary {
  format: CaptureFormat;
  /** Byte order of the file header (of the first section for pcapng). */
  byteOrder: ByteOrder;
  /** Packets delivered to the callback. */
  packets: number;
  /** Sum of the captured lengths of the delivered packets. */
  capturedBytes: number;
  /** Bytes of input read, headers and any truncated tail included. */
  inputBytes: number;
  /** Sections seen (1 for classic pcap). */
  sections: number;
  interfaces: CaptureInterface[];
  /** The last record was cut short; every packet before it was delivered. null when the input ended cleanly. */
  truncated: CaptureTruncation | null;
}

/** Exact timestamp of a packet in ns since the epoch. */
export function tsNs(view: Pick<PacketView, 'tsSec' | 'tsNsec'>): bigint {
  return BigInt(view.tsSec) * 1_000_000_000n + BigInt(view.tsNsec);
}
