/**
 * pcap (µs and ns) and pcapng, read and written in a stream, timestamps in ns.
 *
 *   readCaptureFile(path, onPacket)   fast: one reused PacketView per packet, no allocation
 *   capturePackets(path)              easy: async generator of copied packets
 *   createCaptureParser(onPacket)     the push parser under both, for any byte source
 *   openCaptureSink / writeCaptureFile / createCaptureWriter   writers
 */
export {
  LINKTYPE_ETHERNET, MAX_RECORD_BYTES, tsNs,
  type ByteOrder, type CaptureFormat, type CaptureInterface, type CaptureSummary, type CaptureTruncation,
  type PacketView, type TsResolution,
} from './types.ts';
export { createCaptureParser, type CaptureParser, type CaptureParserOptions } from './parser.ts';
export {
  capturePackets, copyPacket, parseCapture, readCaptureFile, readCaptureStream,
  type CapturedPacket, type ReadCaptureOptions,
} from './read.ts';
export { createCaptureWriter, type CaptureWriteFormat, type CaptureWriter, type CaptureWriterOptions } from './writer.ts';
export { openCaptureSink, writeCaptureFile, type CaptureSink, type CaptureSinkOptions, type PacketToWrite } from './sink.ts';
