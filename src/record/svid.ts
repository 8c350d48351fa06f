/**
 * svID escaping. An svID comes from the wire and may hold any bytes. It is
 * stored as text: every byte 0x20..0x7E except '%' as itself, every other
 * byte (controls, DEL, '%', bytes >= 0x80) as %XX (uppercase hex). A normal
 * svID ("MU01_LD0/LLN0$SV") is stored unchanged; the mapping is one-to-one,
 * so the stored form is the key to join on. DuckDB's `url_decode(sv_id)` and
 * Python's `urllib.parse.unquote_to_bytes` undo it ('+' is never special).
 */
import { SvtraceError } from '../errors.ts';

/** Raw bytes from the wire, or text (taken as UTF-8). */
export type SvIdInput = string | Uint8Array;

const HEX = '0123456789ABCDEF';

function isPlain(code: number): boolean {
  return code >= 0x20 && code <= 0x7e && code !== 0x25;
}

function escapeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    out += isPlain(b) ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/** The stored form of an svID (the `sv_id` column). */
export function encodeSvId(svId: SvIdInput): string {
  if (typeof svId !== 'string') return escapeBytes(svId);
  for (let i = 0; i < svId.length; i++) {
    if (!isPlain(svId.charCodeAt(i))) return escapeBytes(Buffer.from(svId, 'utf8'));
  }
  return svId;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/** The original bytes of a stored svID. */
export function decodeSvId(stored: string): Uint8Array {
  const out = new Uint8Array(stored.length);
  let n = 0;
  for (let i = 0; i < stored.length; i++) {
    const c = stored.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(stored.charCodeAt(i + 1));
      const lo = hexValue(stored.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) {
        throw new SvtraceError('RECORD_BAD_SVID', `stored svID ${JSON.stringify(stored)} has a bad %-escape at offset ${i}`, {
          hint: 'A stored svID escapes bytes as %XX with two hex digits; was this file edited by hand?',
          offset: i,
        });
      }
      out[n++] = hi * 16 + lo;
      i += 2;
    } else if (c > 0x7f) {
      throw new SvtraceError('RECORD_BAD_SVID', `stored svID ${JSON.stringify(stored)} holds a non-ASCII character at offset ${i}`, {
        hint: 'A stored svID is printable ASCII with %XX escapes; was this file edited by hand?',
        offset: i,
      });
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

/** A stored svID as text (UTF-8; invalid bytes become U+FFFD). For display. */
export function svIdText(stored: string): string {
  return Buffer.from(decodeSvId(stored)).toString('utf8');
}
