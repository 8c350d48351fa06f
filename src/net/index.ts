// Packet I/O for svtrace: AF_PACKET sockets with kernel/hardware timestamps,
// a receive thread and a paced transmit thread, in a Node-API addon (native/).
export { openPacketSocket } from './socket.ts';
export { clockNowNs, packFrames, rxFrame, timestampSourceName, type PackedFrames } from './frames.ts';
export {
  RX_FLAG_TRUNCATED,
  RX_FLAG_VLAN_REINSERTED,
  TS_SOURCE_HARDWARE,
  TS_SOURCE_NONE,
  TS_SOURCE_SOFTWARE,
  type OpenPacketSocketOptions,
  type PacketSocket,
  type PacketSocketInfo,
  type PacketSocketStats,
  type ReceiveOptions,
  type RxBatch,
  type RxStats,
  type TimestampSource,
  type TimestampingMode,
  type TransmitOptions,
  type Transmitter,
  type TxClock,
  type TxReportBatch,
  type TxStats,
} from './types.ts';
