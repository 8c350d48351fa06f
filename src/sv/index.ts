export * from './layout.ts';
export type { SvFrame, SvAsdu, VlanTag, LengthForms } from './types.ts';
export {
  createFrameScan, scanFrame, scanError, svIdEquals, readUint, SCAN_OK, SCAN_ERRORS,
  F_SVID, F_DATSET, F_SMPCNT, F_CONFREV, F_REFRTM, F_SMPSYNCH, F_SMPRATE, F_SEQDATA, F_SMPMOD, F_GMIDENTITY,
  type FrameScan, type ScanErrorCode,
} from './scan.ts';
export {
  decodeFrame, frameFromScan, decodeLe, decodeQuality, utcTimeToNs, formatMac, parseMac, latin1,
  type Quality, type LeChannels,
} from './decode.ts';
export { encodeFrame, encodeLe } from './encode.ts';
