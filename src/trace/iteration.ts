/**
 * Wrap iterations of smpCnt, per stream and shared by every point, so that
 * one sample gets the same (smpCnt, iter) at T1 and at T2 even when a point
 * sees it after another point has already seen the wrap.
 *
 * The tracker keeps the leading edge (the latest sample any point has seen).
 * A sample more than half the range behind it (going backwards) is the next
 * iteration (a wrap); more than half the range ahead of it is a late sample
 * of the previous iteration; anything else is the current iteration. The
 * range is the configured smpCntWrap, or learnt as the largest smpCnt seen + 1.
 * Until a wrap has been seen with a learnt range, a new largest smpCnt is
 * always taken as moving forward (it cannot be from before a wrap).
 *
 * A follower (a point later on the path than the leading one) cannot be
 * ahead of the leading point by more than the order in which bpftrace hands
 * over the lines of different CPUs: a sample of a follower more than an
 * eighth of the range ahead of the edge is from the previous iteration, one
 * up to 7/8 of the range behind it is from the current one, and only one
 * further behind (the leading point's lines are late) wraps. So a point that
 * lags by up to 7/8 of a wrap (875 ms at 4000 samples/s) keeps its samples'
 * iterations; with the old rule (half a range either way) a subscriber in an
 * emulated guest lagging 0.6 s behind T3 dragged the edge back and split one
 * second's samples between two iterations.
 */

export interface IterationTracker {
  /** Configured range, or 0 when learnt. */
  readonly fixedWrap: number;
  iter: number;
  last: number;
  maxSeen: number;
  started: boolean;
  wraps: number;
}

export function createIterationTracker(smpCntWrap?: number): IterationTracker {
  return { fixedWrap: smpCntWrap ?? 0, iter: 0, last: 0, maxSeen: -1, started: false, wraps: 0 };
}

/** The wrap iteration of this smpCnt, updating the tracker; `follower`: seen at a point after the leading one. */
export function sampleIteration(t: IterationTracker, smpCnt: number, follower = false): number {
  if (!t.started) {
    t.started = true;
    t.last = smpCnt;
    t.maxSeen = smpCnt;
    return t.iter;
  }
  const learning = t.fixedWrap === 0;
  if (learning && smpCnt > t.maxSeen && t.wraps === 0) {
    t.maxSeen = smpCnt;
    t.last = smpCnt;
    return t.iter;
  }
  if (smpCnt > t.maxSeen) t.maxSeen = smpCnt;
  const range = learning ? t.maxSeen + 1 : t.fixedWrap;
  const diff = smpCnt - t.last;
  if (follower) {
    if (diff * 8 > range) return t.iter - 1;
    if (diff * 8 >= -7 * range) {
      if (diff > 0) t.last = smpCnt;
      return t.iter;
    }
  }
  if (diff * 2 < -range) {
    t.iter++;
    t.wraps++;
    t.last = smpCnt;
    return t.iter;
  }
  if (diff * 2 > range) return t.iter - 1;
  if (diff > 0) t.last = smpCnt;
  return t.iter;
}
