/**
 * pcapng timestamps: a 64-bit count of units (high and low 32-bit words)
 * turned into exact (seconds, nanoseconds) without allocating.
 *
 * The unit is given by the interface's if_tsresol option: 10^-n or 2^-n
 * seconds (default 10^-6). Fast paths cover every power of ten down to 1 ns
 * and every power of two down to 2^-32, all exact in doubles; anything finer
 * falls back to bigint arithmetic (exact, but it allocates). Sub-nanosecond
 * fractions are truncated, as Wireshark does.
 */
import { SvtraceError } from '../errors.ts';
import type { TsResolution } from './types.ts';

const TWO_POW_32 = 4294967296;
const TWO_POW_16 = 65536;
const NS_PER_SEC = 1_000_000_000;

const KIND_POW10 = 0;
const KIND_POW2 = 1;
const KIND_BIGINT = 2;

/** Precomputed conversion for one interface. */
export interface TsConverter {
  readonly resolution: TsResolution;
  readonly kind: number;
  /** Units per second (pow10 fast path). */
  readonly unitsPerSec: number;
  /** Nanoseconds per unit (pow10 fast path; an integer because unitsPerSec ≤ 1e9). */
  readonly nsPerUnit: number;
  /** Exponent n of 2^-n (pow2 fast path). */
  readonly shift: number;
  readonly unitsPerSecBig: bigint;
  readonly offsetSec: number;
}

/** The writable part of a packet view a conversion fills in. */
export interface TsTarget {
  tsSec: number;
  tsNsec: number;
}

/** Decodes the 1-byte if_tsresol value: MSB clear → 10^-v, MSB set → 2^-(v & 0x7f). */
export function decodeTsResol(value: number): TsResolution {
  return (value & 0x80) === 0 ? { base: 10, exponent: value } : { base: 2, exponent: value & 0x7f };
}

/** Encodes a resolution as the 1-byte if_tsresol value. */
export function encodeTsResol(res: TsResolution): number {
  if (!Number.isInteger(res.exponent) || res.exponent < 0 || res.exponent > 127) {
    throw new SvtraceError('CAPTURE_BAD_RESOLUTION', `timestamp resolution exponent ${res.exponent} is out of range`, {
      hint: 'use an integer exponent in 0..127 (9 for nanoseconds)',
    });
  }
  return res.base === 10 ? res.exponent : 0x80 | res.exponent;
}

export const DEFAULT_TS_RESOLUTION: TsResolution = { base: 10, exponent: 6 };

export function createTsConverter(resolution: TsResolution, offsetSec = 0): TsConverter {
  const { base, exponent } = resolution;
  if (base === 10 && exponent <= 9) {
    const unitsPerSec = 10 ** exponent;
    return { resolution, kind: KIND_POW10, unitsPerSec, nsPerUnit: NS_PER_SEC / unitsPerSec, shift: 0, unitsPerSecBig: BigInt(unitsPerSec), offsetSec };
  }
  if (base === 2 && exponent <= 32) {
    return { resolution, kind: KIND_POW2, unitsPerSec: 2 ** exponent, nsPerUnit: 0, shift: exponent, unitsPerSecBig: 1n << BigInt(exponent), offsetSec };
  }
  const unitsPerSecBig = base === 10 ? 10n ** BigInt(exponent) : 1n << BigInt(exponent);
  return { resolution, kind: KIND_BIGINT, unitsPerSec: Number(unitsPerSecBig), nsPerUnit: 0, shift: exponent, unitsPerSecBig, offsetSec };
}

/** Sets target.tsSec/tsNsec from a timestamp of (high·2^32 + low) units. */
export function convertTimestamp(conv: TsConverter, high: number, low: number, target: TsTarget): void {
  if (conv.kind === KIND_POW10) {
    const d = conv.unitsPerSec;
    let sec: number;
    let rem: number;
    if (high < 0x200000) {
      // The count is below 2^53, exact as a double; for integers below 2^53 the
      // correctly rounded quotient never reaches the next integer, so floor is exact.
      const units = high * TWO_POW_32 + low;
      sec = Math.floor(units / d);
      rem = units - sec * d;
    } else {
      // Long division in base 2^16: every partial value stays below d·2^16 ≤ 2^46.
      let cur = high >>> 16;
      const q3 = Math.floor(cur / d);
      rem = cur - q3 * d;
      cur = rem * TWO_POW_16 + (high & 0xffff);
      const q2 = Math.floor(cur / d);
      rem = cur - q2 * d;
      cur = rem * TWO_POW_16 + (low >>> 16);
      const q1 = Math.floor(cur / d);
      rem = cur - q1 * d;
      cur = rem * TWO_POW_16 + (low & 0xffff);
      const q0 = Math.floor(cur / d);
      rem = cur - q0 * d;
      sec = ((q3 * TWO_POW_16 + q2) * TWO_POW_16 + q1) * TWO_POW_16 + q0;
    }
    target.tsSec = sec + conv.offsetSec;
    target.tsNsec = rem * conv.nsPerUnit;
    return;
  }
  if (conv.kind === KIND_POW2) {
    const n = conv.shift;
    let sec: number;
    let frac: number;
    if (n === 32) {
      sec = high;
      frac = low;
    } else if (n === 0) {
      sec = high * TWO_POW_32 + low;
      frac = 0;
    } else {
      sec = high * 2 ** (32 - n) + (low >>> n);
      frac = low & ((1 << n) >>> 0) - 1;
    }
    // frac·10^9 / 2^n = frac·1953125 / 2^(n-9); frac·1953125 < 2^53 for n ≤ 32, and /2^k is exact.
    target.tsSec = sec + conv.offsetSec;
    target.tsNsec = n >= 9 ? Math.floor((frac * 1953125) / 2 ** (n - 9)) : (frac * NS_PER_SEC) / 2 ** n;
    return;
  }
  const units = (BigInt(high) << 32n) | BigInt(low);
  const sec = units / conv.unitsPerSecBig;
  const rem = units % conv.unitsPerSecBig;
  target.tsSec = Number(sec) + conv.offsetSec;
  target.tsNsec = Number((rem * 1_000_000_000n) / conv.unitsPerSecBig);
}
