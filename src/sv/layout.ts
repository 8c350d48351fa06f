/**
 * The wire layout of an IEC 61850-9-2 Sampled Values frame, defined once.
 * Every size and tag the codec, the publisher and the tracer rely on lives here.
 *
 *   offset  size  field                      byte order
 *   0       6     destination MAC
 *   6       6     source MAC
 *   12      2     0x8100 (optional 802.1Q)   big-endian
 *   14      2     TCI: PCP(3) DEI(1) VID(12) big-endian   (only when tagged)
 *   12/16   2     ethertype 0x88BA           big-endian
 *   +2      2     APPID                      big-endian
 *   +4      2     Length (APPID..end of PDU, so 8 + PDU bytes)
 *   +6      2     Reserved1 (bit 15 = Simulated)
 *   +8      2     Reserved2
 *   +10     …     savPdu, BER (tag 0x60), bounded by Length; anything after
 *                 it (padding, FCS, trailer) is ignored.
 *
 * savPdu (0x60) := noASDU [0x80] INTEGER, security [0x81] OPTIONAL,
 *   seqASDU [0xA2] SEQUENCE OF ASDU (0x30)
 * ASDU (0x30) := svID [0x80] VisibleString, datSet [0x81] OPTIONAL,
 *   smpCnt [0x82] INT16U (2 octets), confRev [0x83] INT32U (4 octets),
 *   refrTm [0x84] UtcTime (8 octets) OPTIONAL, smpSynch [0x85] INT8U (1 octet),
 *   smpRate [0x86] INT16U OPTIONAL, seqData [0x87] OCTET STRING,
 *   smpMod [0x88] INT16U OPTIONAL, gmIdentity [0x89] 8 octets OPTIONAL (Ed. 2.1)
 *
 * 9-2LE seqData: 8 × (INT32 value, 32-bit quality), big-endian, 64 octets:
 *   IA, IB, IC, IN (1 mA per LSB), VA, VB, VC, VN (10 mV per LSB).
 */
export const ETHERTYPE_SV = 0x88ba;
export const ETHERTYPE_VLAN = 0x8100;
export const ETH_HEADER_BYTES = 14;
export const VLAN_TAG_BYTES = 4;
export const SV_HEADER_BYTES = 8;
export const SIMULATED_BIT = 0x8000;

export const TAG_SAVPDU = 0x60;
export const TAG_NO_ASDU = 0x80;
export const TAG_SECURITY = 0x81;
export const TAG_SEQ_ASDU = 0xa2;
export const TAG_ASDU = 0x30;

/** Context tags inside an ASDU, and the index each field gets in a scan. */
export const ASDU_TAGS = {
  svId: 0x80,
  datSet: 0x81,
  smpCnt: 0x82,
  confRev: 0x83,
  refrTm: 0x84,
  smpSynch: 0x85,
  smpRate: 0x86,
  seqData: 0x87,
  smpMod: 0x88,
  gmIdentity: 0x89,
} as const;
export type AsduField = keyof typeof ASDU_TAGS;
export const ASDU_FIELDS = Object.keys(ASDU_TAGS) as AsduField[];
export const FIELD_COUNT = ASDU_FIELDS.length;

/** Fixed encoded sizes (octets) of the integer and fixed-size fields. */
export const FIELD_BYTES = {
  smpCnt: 2,
  confRev: 4,
  refrTm: 8,
  smpSynch: 1,
  smpRate: 2,
  smpMod: 2,
  gmIdentity: 8,
} as const;

export const LE_CHANNELS = 8;
export const LE_SEQDATA_BYTES = LE_CHANNELS * 8;
export const LE_CHANNEL_NAMES = ['IA', 'IB', 'IC', 'IN', 'VA', 'VB', 'VC', 'VN'] as const;
/** 9-2LE scaling: raw / divisor = A or V (currents 1 mA per LSB, voltages 10 mV per LSB). */
export const LE_DIVISOR = [1000, 1000, 1000, 1000, 100, 100, 100, 100] as const;

/** How many ASDUs a frame may carry before the codec calls it malformed. */
export const MAX_ASDUS = 64;
