/**
 * Public types of svtrace's packet I/O (the native addon's TypeScript face).
 *
 * Time: every timestamp is a signed 64-bit count of nanoseconds since the
 * epoch of its clock, kept as bigint / BigInt64Array (a JS number cannot hold
 * it exactly). Which clock, and who took it, is said on each field:
 *  - kernel software timestamps: CLOCK_REALTIME, taken by the kernel
 *    (RX: when the driver hands the frame to the stack; TX: when the driver
 *    takes it, skb_tx_timestamp);
 *  - hardware timestamps: the NIC's PTP hardware clock (PHC, /dev/ptpN with
 *    N = `PacketSocketInfo.phcIndex`), usually TAI when ptp4l disciplines it;
 *  - application timestamps: clock_gettime() in the addon's C threads (never
 *    in JavaScript, whose event loop lags by milliseconds).
 */

/** 'software': kernel timestamps; 'hardware': NIC timestamps (SIOCSHWTSTAMP). */
export type TimestampingMode = 'software' | 'hardware';

/** Clock of a transmit schedule (clock_nanosleep TIMER_ABSTIME in that clock). */
export type TxClock = 'realtime' | 'tai';

/** Who took a kernel/NIC timestamp: values of `kernelTsSource` / `kernelTxSource`. */
export const TS_SOURCE_NONE = 0;
export const TS_SOURCE_SOFTWARE = 1;
export const TS_SOURCE_HARDWARE = 2;
export type TimestampSource = 'none' | 'software' | 'hardware';

/** Bits of `RxBatch.flags`. */
/** The 802.1Q tag was stripped by the kernel (vlan_tci) and put back by us. */
export const RX_FLAG_VLAN_REINSERTED = 1;
/** The frame was longer than the 2044-byte receive slot; only its start is given. */
export const RX_FLAG_TRUNCATED = 2;

export interface OpenPacketSocketOptions {
  /** Interface name, 1 to 15 bytes. */
  ifname: string;
  /** Named network namespace (/var/run/netns/NAME, as made by `ip netns add`). */
  netns?: string;
  /** Default 'software'. 'hardware' fails with NET_NO_HW_TIMESTAMPING if the NIC cannot. */
  timestamping?: TimestampingMode;
  /** Receive buffer in bytes (SO_RCVBUFFORCE as root). Default 8 MiB. */
  rcvBufBytes?: number;
  /** Send buffer in bytes (SO_SNDBUFFORCE as root). Default 4 MiB. */
  sndBufBytes?: number;
  /**
   * How to match TX timestamps to frames (see PacketSocketInfo.txKeyMode):
   * 'auto' (default) uses SCM_TS_OPT_ID where the kernel has it; 'counter'
   * forces the fallback of older kernels (to test it).
   */
  txKeyMode?: 'auto' | 'counter';
  /**
   * Put the interface in promiscuous mode for as long as this socket is open:
   * a packet membership (PACKET_MR_PROMISC) the kernel drops when the socket
   * closes, as libpcap does. Receivers need it on NICs that filter multicast
   * and VLAN-tagged frames (virtio-net, real NICs). Default false.
   */
  promiscuous?: boolean;
}

export interface PacketSocketInfo {
  ifname: string;
  netns: string | undefined;
  timestamping: TimestampingMode;
  ifindex: number;
  mtu: number;
  macAddress: string;
  /** IFF_RUNNING when opened: the link has carrier. */
  carrier: boolean;
  /** Index N of /dev/ptpN, the clock of hardware timestamps; -1 if none is known. */
  phcIndex: number;
  /** Effective sizes as the kernel reports them (it doubles the requested value). */
  rcvBufBytes: number;
  sndBufBytes: number;
  /**
   * How TX timestamps are matched to frames: 'scm-ts-opt-id' (Linux >= 6.13,
   * exact: each send carries its frame index) or 'counter' (older kernels:
   * mirrors the kernel's per-socket counter; exact unless a send fails in a
   * way that leaves the two counters unsure, which is counted as unmatched).
   */
  txKeyMode: 'scm-ts-opt-id' | 'counter';
  /** The receive socket holds a promiscuous membership on the interface. */
  promiscuous: boolean;
}

export interface ReceiveOptions {
  /** Hand a batch to JS when it holds this many frames. Default 4096. */
  maxBatchFrames?: number;
  /** ... or when its first frame is this old. Default 10 ms. */
  maxBatchDelayMs?: number;
  /** SCHED_FIFO priority 1..99 for the receive thread. Default: not real-time. */
  fifoPriority?: number;
  /** Pin the receive thread to this CPU. */
  cpu?: number;
  /**
   * Called once when onBatch throws (a record on a full disk, ...): no batch
   * is handed over after that, and stopReceive() rejects with the error.
   * Stop the receive from here to end the run at once.
   */
  onFault?: (error: unknown) => void;
}

/**
 * Frames received by one hand-over of the receive thread. Frame i is
 * `frames.subarray(offsets[i], offsets[i] + lengths[i])`, exactly as on the
 * wire: an 802.1Q tag the kernel stripped is put back (see flags), no FCS.
 */
export interface RxBatch {
  count: number;
  frames: Buffer;
  /** Byte offset of frame i in `frames`. */
  offsets: Uint32Array;
  /** Length of frame i in bytes. */
  lengths: Uint32Array;
  /** Kernel (software, CLOCK_REALTIME) or NIC (hardware, PHC) RX time in ns; 0 if missing. */
  kernelTsNs: BigInt64Array;
  /** TS_SOURCE_* of kernelTsNs[i]. */
  kernelTsSource: Uint8Array;
  /**
   * Application RX time in ns, CLOCK_REALTIME read in C right after the
   * recvmmsg() that returned the frame (frames of one call share it).
   */
  appTsNs: BigInt64Array;
  /** RX_FLAG_* bits of frame i. */
  flags: Uint8Array;
  /** Frames received since the socket opened, including this batch. */
  totalFrames: number;
  /** Frames the kernel dropped (socket buffer full) since the socket opened. */
  totalKernelDrops: number;
}

export interface RxStats {
  running: boolean;
  /** Frames handed to JS (or held for the next batch). */
  frames: number;
  bytes: number;
  batches: number;
  /** PACKET_STATISTICS: frames that passed the SV filter, and those dropped for lack of buffer. */
  kernelPackets: number;
  kernelDrops: number;
  truncated: number;
  vlanReinserted: number;
  kernelTsMissing: number;
  recvErrors: number;
  /** errno of the last receive error, 0 if none. */
  lastErrno: number;
}

export interface TransmitOptions {
  /** Receives per-frame reports, in frame order, in batches (every ~10 ms). */
  onTxReport: (report: TxReportBatch) => void;
  /** Called once when onTxReport throws: no report is handed over after that, and stop() rejects with the error. */
  onFault?: (error: unknown) => void;
  /** Clock of the schedule's times. Default 'realtime'. */
  clock?: TxClock;
  /** SCHED_FIFO priority 1..99 for the transmit thread. */
  fifoPriority?: number;
  /** Pin the transmit thread to this CPU. */
  cpu?: number;
  /** A frame sent more than this after its time counts as late. Default 100 µs. */
  lateThresholdUs?: number;
  /**
   * Sleep only until this long before each send time, then busy-wait on the
   * clock. Timer wake-ups are late by tens of µs on many machines (~60 µs
   * p50 in the VM this was built on); spinning removes that at the cost of
   * CPU (spinUs / period of one core). Default 0 (sleep only), at most 10000.
   */
  spinUs?: number;
  /** Ring capacity in frames (rounded up to a power of two). Default 131072. */
  queueFrames?: number;
  /** Ring capacity in bytes of frame data. Default 16 MiB. */
  queueBytes?: number;
}

/** Reports on frames firstIndex .. firstIndex + count - 1 (enqueue order, from 0). */
export interface TxReportBatch {
  firstIndex: number;
  count: number;
  /** The time asked for, ns in the transmit clock. */
  scheduledNs: BigInt64Array;
  /**
   * Transmit clock read in C just before the send call (application TX time).
   * Frames already due when the thread woke go out in one sendmmsg() and
   * share this reading.
   */
  sentNs: BigInt64Array;
  /**
   * Kernel (software, CLOCK_REALTIME) or NIC (hardware, PHC) TX time in ns;
   * 0 if missing. A frame whose send failed with ENOBUFS may still have one
   * (the driver timestamped it, then dropped it).
   */
  kernelTxNs: BigInt64Array;
  /** TS_SOURCE_* of kernelTxNs[i]. */
  kernelTxSource: Uint8Array;
  /** 0 if the frame was sent, else the errno of its failed send (the frame is lost). */
  errno: Int32Array;
}

export interface TxStats {
  running: boolean;
  clock: TxClock;
  /** CLOCK_TAI - CLOCK_REALTIME in ns when the transmitter started (0 if the kernel's TAI offset is unset). */
  taiOffsetNs: number;
  framesQueued: number;
  framesSent: number;
  pending: number;
  sendErrorsTotal: number;
  /** EAGAIN + ENOBUFS: send buffer or device queue full. */
  sendBufferFull: number;
  /** Failed sends by errno name, e.g. { ENOBUFS: 3 }. */
  sendErrors: Record<string, number>;
  /** Frames sent more than lateThresholdUs after their time. */
  late: number;
  /** How far behind its time the latest-sent frame went out, ns. */
  maxLateNs: number;
  /** Frames sent more than 10 ms after their time (SVN_TX_LAG_NS): their kernel TX time no longer marks their instant. */
  lagging: number;
  /** Times the queue ran dry and the next frame arrived after its time had passed. */
  underruns: number;
  /** Frames sent whose kernel TX timestamp never came (within 200 ms). */
  kernelTsMissing: number;
  /** TX timestamps that matched no waiting frame. */
  kernelTsUnmatched: number;
  /** Reports not delivered because JS fell behind by more than 1024 batches. */
  reportsDropped: number;
  /** Frames still queued when the transmitter was stopped without drain. */
  framesDiscarded: number;
}

export interface PacketSocketStats {
  rx: RxStats;
  /** The running transmitter, or the last one, or null. */
  tx: TxStats | null;
  /** Frames sent with PacketSocket.send(), and those that failed. */
  syncSent: number;
  syncErrors: number;
}

export interface Transmitter {
  /**
   * Copies frames into the transmit ring. Frame i is
   * `frames.subarray(offsets[i], offsets[i] + lengths[i])`, sent at timesNs[i]
   * (ns in the transmit clock; times should not decrease, a time already past
   * is sent at once). Returns how many frames (a prefix) were accepted; the
   * rest did not fit: retry them later. Keep ~0.5-1 s of schedule queued.
   */
  enqueue(frames: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, timesNs: BigInt64Array): number;
  /** Frames queued and not yet sent. */
  pending(): number;
  stats(): TxStats;
  /**
   * Stops the thread. drain: false (default) stops now and discards the queue;
   * true sends every queued frame at its time first. Resolves after the last
   * report was delivered.
   */
  stop(opts?: { drain?: boolean }): Promise<TxStats>;
}

export interface PacketSocket {
  readonly info: PacketSocketInfo;
  readonly closed: boolean;
  /** Starts the receive thread; onBatch runs on the JS thread for each batch. */
  startReceive(onBatch: (batch: RxBatch) => void, opts?: ReceiveOptions): void;
  /** Stops receiving; resolves after the last batch was delivered. */
  stopReceive(): Promise<RxStats>;
  /** Sends one frame now from the JS thread (no pacing, no TX timestamp). */
  send(frame: Uint8Array): void;
  /** Starts the transmit thread (one per socket at a time). */
  startTransmit(opts: TransmitOptions): Transmitter;
  stats(): PacketSocketStats;
  /** Running threads keep the process alive (default); unref() lets it exit anyway. */
  ref(): void;
  unref(): void;
  /**
   * Stops both threads at once (batches and reports not yet delivered are
   * dropped: await stopReceive()/stop() first to get them) and closes the
   * sockets. Idempotent.
   */
  close(): void;
}
