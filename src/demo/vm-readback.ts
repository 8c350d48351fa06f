/**
 * Reading the guest's hop back from the guest tracer's record: per phase
 * (one stream each), the median of the segment that holds the hop
 * (T3→T3app) and of the segments around it, their shift from the baseline,
 * and the samples lost on the hop against what netem says it dropped.
 * Only points of the guest's own clock are used, joined by the tracer's
 * iteration (one record): the readback needs no clock correction.
 */
import { analyzeRecords } from '../analyze/analyze.ts';
import type { AnalysisResult } from '../analyze/types.ts';
import { HOLD_SEGMENT, HOP_POINT, HOP_SEGMENT, type VmPhaseResult } from './vm.ts';

/** The segments of the guest: the hop, after it (to the application's read), and the whole of Tsub. */
export const GUEST_SEGMENTS = [HOP_SEGMENT, HOLD_SEGMENT, { name: 'Tapp', from: HOP_POINT, to: 'T4' }] as const;

export interface PhaseReadback {
  label: string;
  svId: string;
  injectedDelayUs: number;
  /** p50 in µs per guest segment (Thop, Thold: netem's own queue inside the hop, Tapp, Tsub). */
  p50Us: Record<string, number | null>;
  /** p50 minus the baseline's (the mean of the baseline phases' p50), µs. */
  shiftUs: Record<string, number | null>;
  /**
   * Samples the tracer saw at T3 and not at T3app. Not exact: in a 1-vCPU guest the kernel skips a
   * tracepoint's program when it fires while another BPF program runs on that CPU (recursion protection),
   * and bpftrace 0.17 does not report those skips.
   */
  lostOnHop: number;
  /** Samples the application never received (lost at the last point): what a loss on the hop must equal. */
  missing: number;
  /** What netem dropped there, in samples (frames × ASDUs a frame), or null when its counters were not read. */
  netemDroppedSamples: number | null;
}

function p50Us(a: AnalysisResult, segment: string, svId: string): number | null {
  const s = a.segments.find((x) => x.segment === segment)?.byStream.find((b) => b.svId === svId);
  const v = s?.percentilesNs.p50;
  return v === undefined || v === null ? null : v / 1000;
}

/**
 * The readback from the guest tracer's record and, when given, the hypervisor tracer's (Thyp, on the
 * host's clock): each joined alone, by iteration.
 */
export async function readBackHop(vmRecord: string, phases: readonly VmPhaseResult[], asdusPerFrame: number, hypervisorRecord?: string): Promise<{ analysis: AnalysisResult; phases: PhaseReadback[] }> {
  const guest = await analyzeRecords([vmRecord], { join: 'iter', segments: [...GUEST_SEGMENTS] });
  const host = hypervisorRecord ? await analyzeRecords([hypervisorRecord], { join: 'iter' }) : null;
  const analysis = host ? { ...guest, segments: [...guest.segments, ...host.segments.filter((s) => s.segment === 'Thyp')] } : guest;
  const names = [HOP_SEGMENT.name, HOLD_SEGMENT.name, 'Tapp', 'Tsub', ...(host ? ['Thyp'] : [])];
  // the baseline: every phase with the first one's impairment (A B A B alternates them), averaged
  const first = phases[0];
  const isBase = (p: VmPhaseResult) => first !== undefined && JSON.stringify(p.impairment) === JSON.stringify(first.impairment);
  const baseP50 = (n: string): number | null => {
    const v = phases.filter(isBase).map((p) => p50Us(analysis, n, p.svId)).filter((x): x is number => x !== null);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  };
  const out = phases.map((p): PhaseReadback => {
    const stream = analysis.streams.find((s) => s.svId === p.svId);
    const lost = (point: string) => stream?.points.find((x) => x.point === point)?.lost ?? 0;
    const p50 = Object.fromEntries(names.map((n) => [n, p50Us(analysis, n, p.svId)]));
    const shift = Object.fromEntries(names.map((n) => {
      const b = baseP50(n);
      return [n, p50[n] !== null && b !== null ? p50[n]! - b : null];
    }));
    return {
      label: p.label, svId: p.svId, injectedDelayUs: (p.impairment.delayUs ?? 0) - (first?.impairment.delayUs ?? 0), p50Us: p50, shiftUs: shift,
      lostOnHop: lost(HOP_POINT) - lost('T3'), missing: stream?.missing ?? 0, netemDroppedSamples: p.netem ? p.netem.dropped * asdusPerFrame : null,
    };
  });
  return { analysis, phases: out };
}
