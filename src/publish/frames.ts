/**
 * Frames of a stream from a template: the frame is encoded once, then for
 * each sample only smpCnt and the 9-2LE values are written in place, at
 * offsets the codec's own scan found in the template.
 */
import { SvtraceError } from '../errors.ts';
import { createFrameScan, encodeFrame, encodeLe, F_SEQDATA, F_SMPCNT, FIELD_COUNT, scanFrame, type SvFrame } from '../sv/index.ts';
import type { StreamSpec } from './streams.ts';
import { LE_QUALITIES } from './waveform.ts';

export interface FrameTemplate {
  bytes: Uint8Array;
  /** Per ASDU: offset of the 2-octet smpCnt value and of the 64-octet seqData. */
  smpCntAt: number[];
  seqDataAt: number[];
}

export function frameTemplate(s: StreamSpec): FrameTemplate {
  const frame: SvFrame = {
    dst: s.dstMac, src: s.srcMac, appId: s.appId, reserved1: 0, simulated: s.simulated, reserved2: 0,
    asdus: Array.from({ length: s.asdusPerFrame }, () => ({
      svId: s.svId, smpCnt: 0, confRev: s.confRev, smpSynch: s.smpSynch, seqData: encodeLe(new Array(8).fill(0), LE_QUALITIES),
      ...(s.datSet ? { datSet: s.datSet } : {}),
    })),
  };
  if (s.vlan) frame.vlan = { priority: s.vlan.priority, dei: false, id: s.vlan.id };
  const bytes = encodeFrame(frame);
  const scan = createFrameScan();
  const st = scanFrame(bytes, 0, bytes.length, scan);
  if (st) throw new SvtraceError('PUBLISH_TEMPLATE', `internal: the frame template of ${s.svId} does not scan (${st})`);
  const smpCntAt: number[] = [], seqDataAt: number[] = [];
  for (let i = 0; i < scan.asduCount; i++) {
    smpCntAt.push(scan.fieldOffset[i * FIELD_COUNT + F_SMPCNT]!);
    seqDataAt.push(scan.fieldOffset[i * FIELD_COUNT + F_SEQDATA]!);
  }
  return { bytes, smpCntAt, seqDataAt };
}

/**
 * Writes the frame carrying samples smpCnt0, smpCnt0+1, … (one per ASDU) into
 * `out` at `at` from the template and the waveform table; returns its length.
 */
export function writeFrame(t: FrameTemplate, table: Int32Array, rate: number, smpCnt0: number, out: Uint8Array, at: number): number {
  const b = t.bytes;
  out.set(b, at);
  for (let i = 0; i < t.smpCntAt.length; i++) {
    const c = (smpCnt0 + i) % rate;
    const sc = at + t.smpCntAt[i]!;
    out[sc] = c >> 8;
    out[sc + 1] = c & 0xff;
    let p = at + t.seqDataAt[i]!;
    const row = c * 8;
    for (let ch = 0; ch < 8; ch++, p += 8) {
      const v = table[row + ch]!;
      out[p] = v >>> 24; out[p + 1] = (v >>> 16) & 0xff; out[p + 2] = (v >>> 8) & 0xff; out[p + 3] = v & 0xff;
    }
  }
  return b.length;
}
