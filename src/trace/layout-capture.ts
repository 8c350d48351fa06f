/**
 * Frame layouts taken from a capture instead of live traffic
 * (`svtrace trace --layouts-from FILE`): one per distinct layout of the SV
 * frames in it. Learning needs traffic while bpftrace starts, and costs a
 * bpftrace start of its own (minutes in an emulated guest); a capture of the
 * streams (tcpdump, Wireshark, or the publisher's own frames) gives the same.
 */
import { SvtraceError } from '../errors.ts';
import { readCaptureFile } from '../pcap/index.ts';
import { MAX_STREAMS } from './config.ts';
import { layoutFromFrame, layoutKey, type FrameLayout } from './layout.ts';

export interface CaptureLayouts {
  layouts: FrameLayout[];
  frames: number;
  /** SV frames whose layout the kernel matcher cannot take (with the first reason). */
  unsupported: number;
  firstProblem?: string;
}

export async function layoutsFromCapture(path: string): Promise<CaptureLayouts> {
  const byKey = new Map<string, FrameLayout>();
  let frames = 0;
  let unsupported = 0;
  let firstProblem: string | undefined;
  await readCaptureFile(path, (p) => {
    frames++;
    try {
      const l = layoutFromFrame(p.bytes, p.offset, p.offset + p.capLen);
      const key = layoutKey(l);
      if (!byKey.has(key) && byKey.size < MAX_STREAMS) byKey.set(key, l);
    } catch (e) {
      // not SV at all is fine (a capture holds other traffic); SV the matcher cannot take is counted
      if (e instanceof SvtraceError && e.code === 'TRACE_LAYOUT_UNSUPPORTED') { unsupported++; firstProblem ??= e.message; }
    }
  });
  if (byKey.size === 0) {
    throw new SvtraceError('TRACE_NO_LAYOUT', `no SV frame the tracer can match in ${path} (${frames} frame(s) read${unsupported ? `; ${unsupported} unsupported: ${firstProblem}` : ''})`, {
      hint: 'capture the streams on the wire first (tcpdump -w FILE ether proto 0x88ba or vlan), or let svtrace learn them from live traffic',
    });
  }
  return { layouts: [...byKey.values()], frames, unsupported, ...(firstProblem ? { firstProblem } : {}) };
}
