/**
 * The path of a run as the first screen draws it, derived from an
 * AnalysisResult (summary.json) alone: its points in the result's order,
 * the hop between each two consecutive points (the segment measured from
 * one to the next), the segments spanning several hops (Tseapath, Ttot),
 * and for each its p50, p99, p99.99, max and verdict.
 */
import type { AnalysisResult, SegmentResult } from '../analyze/index.ts';

export type HopVerdict = 'pass' | 'fail' | 'none';

export interface PathSegment {
  segment: string;
  from: string;
  to: string;
  count: number;
  p50Ns: number | null;
  p99Ns: number | null;
  p9999Ns: number | null;
  maxNs: number | null;
  limitUs: number | null;
  /** fail when a verdict on this segment failed, pass when all its verdicts passed, none without one. */
  verdict: HopVerdict;
  /** ± ns of a segment between machines whose clock offset was corrected (the offsets' uncertainties); null otherwise. */
  clockUncertaintyNs: number | null;
  /** Between machines and corrected with a clock offset. */
  clockCorrected: boolean;
}

export interface PathView {
  points: string[];
  /** hops[i] joins points[i] and points[i + 1]; null when no segment goes from one to the other. */
  hops: (PathSegment | null)[];
  /** Segments over more than one hop, in the result's order. */
  spans: PathSegment[];
}

/**
 * Short names of the points of the path (src/path's POINTS) for the
 * picture's boxes: publisher → NIC → switch → VM port → VM → application.
 * `via` names what the frame crosses between this point and the next. A
 * point not listed (a custom one) is drawn with its name alone; the box's
 * tooltip is src/path's meaning of the point.
 * TODO(path): a short `place` in src/path's POINTS would make this table unnecessary.
 */
export const POINT_PLACES: Readonly<Record<string, { place: string; via?: string }>> = {
  T0: { place: 'publisher' },
  T1: { place: 'NIC', via: 'switch' },
  T2: { place: 'VM port' },
  T3: { place: 'VM' },
  T4: { place: 'application' },
};

function verdictOf(r: AnalysisResult, segment: string): HopVerdict {
  const vs = r.verdicts.filter((v) => v.segment === segment && v.status !== 'not-measured');
  if (vs.some((v) => v.status === 'fail')) return 'fail';
  return vs.length ? 'pass' : 'none';
}

function pathSegment(r: AnalysisResult, s: SegmentResult): PathSegment {
  const p = s.all.percentilesNs;
  return {
    segment: s.segment, from: s.from, to: s.to, count: s.all.count,
    p50Ns: p.p50, p99Ns: p.p99, p9999Ns: p['p99.99'], maxNs: s.all.maxNs,
    limitUs: s.limitUs, verdict: verdictOf(r, s.segment),
    // older summary.json files have no clock
    clockUncertaintyNs: s.clock?.uncertaintyNs ?? null, clockCorrected: s.clock?.corrected ?? false,
  };
}

export function pathView(r: AnalysisResult): PathView {
  const points = [...r.points];
  const hops = points.slice(1).map((to, i) => {
    const s = r.segments.find((x) => x.from === points[i] && x.to === to);
    return s ? pathSegment(r, s) : null;
  });
  const inHops = new Set(hops.filter((h) => h !== null).map((h) => h.segment));
  const spans = r.segments.filter((s) => !inHops.has(s.segment)).map((s) => pathSegment(r, s));
  return { points, hops, spans };
}

export const QUANTILES = [
  { key: 'p50Ns', label: 'p50' },
  { key: 'p99Ns', label: 'p99' },
  { key: 'p9999Ns', label: 'p99.99' },
] as const;
