/** The decoded form of an IEC 61850-9-2 Sampled Values frame (see layout.ts). */

export interface VlanTag {
  /** 802.1Q priority code point, 0..7 (SV usually 4). */
  priority: number;
  /** Drop eligible indicator. */
  dei: boolean;
  /** VLAN id, 0..4095. */
  id: number;
}

export interface SvAsdu {
  /** svID, one character per octet (latin1), exactly as on the wire. */
  svId: string;
  datSet?: string;
  smpCnt: number;
  confRev: number;
  /** refrTm as the 8 raw octets of a UtcTime (see utcTimeToNs). */
  refrTm?: Uint8Array;
  /** 0 none, 1 local, 2 global (Ed. 2). */
  smpSynch: number;
  smpRate?: number;
  /** The raw seqData octets (9-2LE: see decodeLe). */
  seqData: Uint8Array;
  smpMod?: number;
  /** Ed. 2.1 grandmaster identity, 8 octets. */
  gmIdentity?: Uint8Array;
}

/**
 * Length-of-length octets of the constructed TLVs as found on the wire
 * (0 = short form). Kept so that encoding a decoded frame reproduces it
 * byte for byte; absent means minimal encoding.
 */
export interface LengthForms {
  savPdu: number;
  seqAsdu: number;
  asdus: number[];
}

export interface SvFrame {
  /** Destination MAC, lower-case colon form (01:0c:cd:04:00:01). */
  dst: string;
  src: string;
  vlan?: VlanTag;
  appId: number;
  /** The Length field as on the wire; encode recomputes it. */
  length?: number;
  /** Reserved1 without the Simulated bit. */
  reserved1: number;
  /** Reserved1 bit 15 (0x8000). */
  simulated: boolean;
  reserved2: number;
  /** savPdu security octets, when present. */
  security?: Uint8Array;
  asdus: SvAsdu[];
  lengthForms?: LengthForms;
}
