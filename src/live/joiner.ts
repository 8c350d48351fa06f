/**
 * Live joining of the points of each sample inside one tracer or subscriber
 * (where every point shares one wrap-iteration count): when the second point
 * of a segment arrives, its latency goes into that stream's and segment's
 * histogram, its exact late counts, and the worst-per-second line. Memory is
 * bounded: a sample whose other point never comes is evicted after
 * `maxAgeMs` and counted as unmatched. bpftrace reads its per-CPU buffers
 * one after the other, so under load the two points of a sample can reach
 * us seconds apart (seen in CI: more than 2 s); 5 s keeps them together at
 * the cost of ~5 s of samples in memory (about 30 MB at 8 × 4000/s).
 */
import { createHistogram, record, type LatencyHistogram } from './histogram.ts';
import { segmentsAmong, type SegmentDef } from '../path/index.ts';

export interface SegmentStats {
  stream: string;
  appId: number;
  segment: string;
  hist: LatencyHistogram;
  /** The segment's limit (ns) from the verdicts, and the exact count of samples above it. */
  limitNs: number | null;
  late: number;
  /** Worst latency in the current second, ns. */
  worstThisSecondNs: number;
}

/** How many times a point of a stream was seen (every call to `point`, or every point of `sample`). */
export interface PointCount {
  stream: string;
  appId: number;
  point: string;
  count: number;
}

export interface LiveJoiner {
  point(stream: string, appId: number, smpCnt: number, iter: number, point: string, tNs: bigint): void;
  /**
   * A sample whose points the caller already holds together (a subscriber has
   * T3 and T4 of a frame at once): counts each point and measures every
   * segment between two of them, without waiting for halves.
   */
  sample(stream: string, appId: number, tNs: Readonly<Record<string, bigint>>): void;
  /** Call about once a second: evicts old halves, returns the worst latency per segment in the second that ended. */
  tick(nowMs: number): Array<{ segment: string; stream: string; worstNs: number }>;
  stats(): SegmentStats[];
  /** Points seen per stream, as recorded (a copy of a packet at the same point counts here, not in the segments). */
  points(): PointCount[];
  unmatched(): number;
  segments(): SegmentDef[];
}

export function createJoiner(points: string[], limitsNs: Record<string, number>, maxAgeMs = 5000): LiveJoiner {
  const segments = segmentsAmong(points);
  const pending = new Map<string, { t: Map<string, bigint>; bornMs: number }>();
  const stats = new Map<string, SegmentStats>();
  const seen = new Map<string, PointCount>();
  let unmatched = 0;
  let nowMs = Date.now();

  function statsFor(stream: string, appId: number, segment: string): SegmentStats {
    const key = `${segment}\u0000${stream}`;
    let s = stats.get(key);
    if (!s) stats.set(key, (s = { stream, appId, segment, hist: createHistogram(), limitNs: limitsNs[segment] ?? null, late: 0, worstThisSecondNs: -1 }));
    return s;
  }

  function countPoint(stream: string, appId: number, point: string): void {
    const key = `${point}\u0000${stream}`;
    const c = seen.get(key);
    if (c) c.count++;
    else seen.set(key, { stream, appId, point, count: 1 });
  }

  function measure(stream: string, appId: number, segment: string, ns: number): void {
    const s = statsFor(stream, appId, segment);
    record(s.hist, ns);
    if (s.limitNs !== null && ns > s.limitNs) s.late++;
    if (ns > s.worstThisSecondNs) s.worstThisSecondNs = ns;
  }

  return {
    point(stream, appId, smpCnt, iter, point, tNs) {
      countPoint(stream, appId, point);
      if (segments.length === 0) return;
      const key = `${stream}\u0000${iter}\u0000${smpCnt}`;
      let p = pending.get(key);
      if (!p) pending.set(key, (p = { t: new Map(), bornMs: nowMs }));
      if (p.t.has(point)) return; // a copy of the same packet at the same point: the first counts
      p.t.set(point, tNs);
      for (const seg of segments) {
        const a = p.t.get(seg.from), b = p.t.get(seg.to);
        if (a === undefined || b === undefined || (point !== seg.from && point !== seg.to)) continue;
        measure(stream, appId, seg.name, Number(b - a));
      }
      // complete samples stay until evicted, so that a late copy at a point is still recognised
    },
    sample(stream, appId, tNs) {
      for (const point in tNs) countPoint(stream, appId, point);
      for (const seg of segments) {
        const a = tNs[seg.from], b = tNs[seg.to];
        if (a !== undefined && b !== undefined) measure(stream, appId, seg.name, Number(b - a));
      }
    },
    tick(ms) {
      nowMs = ms;
      for (const [k, p] of pending) {
        if (ms - p.bornMs <= maxAgeMs) break; // insertion order = age order
        if (p.t.size < points.length) unmatched++;
        pending.delete(k);
      }
      const out: Array<{ segment: string; stream: string; worstNs: number }> = [];
      for (const s of stats.values()) {
        if (s.worstThisSecondNs >= 0) out.push({ segment: s.segment, stream: s.stream, worstNs: s.worstThisSecondNs });
        s.worstThisSecondNs = -1;
      }
      return out;
    },
    stats: () => [...stats.values()].sort((a, b) => a.segment.localeCompare(b.segment) || a.appId - b.appId || (a.stream < b.stream ? -1 : 1)),
    points: () => [...seen.values()].sort((a, b) => a.point.localeCompare(b.point) || a.appId - b.appId || (a.stream < b.stream ? -1 : 1)),
    unmatched: () => unmatched,
    segments: () => segments,
  };
}
