/**
 * The sequence of one SV stream: loss, duplicates, reordering, wraps.
 *
 * smpCnt counts modulo the stream's wrap value (0..3999 at 4000 samples/s),
 * so every sample gets an absolute index `iter * wrap + smpCnt`, where `iter`
 * is the wrap iteration. A new smpCnt is placed at the absolute index
 * nearest after the highest one seen: ahead by 1 is in order, ahead by more
 * opens a gap of missing samples, at or behind it is either a late
 * (out-of-order) sample filling a gap, or a duplicate. A window of recent
 * indices remembers which were seen.
 *
 * The wrap value is learnt when not given: the smallest usual rate (4000,
 * 4800, 12800, 15360 samples/s, or 65536) above every smpCnt seen.
 */

const USUAL_WRAPS = [4000, 4800, 12800, 15360, 65536];
const WINDOW = 1 << 17; // indices remembered for duplicate / late detection
const MAX_GAPS_LISTED = 1000;

export interface SequenceGap {
  /** smpCnt of the first and last sample missing, and the wrap iteration of the first. */
  fromSmpCnt: number;
  toSmpCnt: number;
  iter: number;
  /** Samples the gap opened with. */
  size: number;
  /** Samples of the gap still missing (late arrivals fill gaps). */
  missing: number;
}

export type SampleClass = 'in-order' | 'gap' | 'late' | 'duplicate' | 'first';

export interface SequenceState {
  wrap: number;
  wrapFixed: boolean;
  /** Highest absolute index seen, -1 before the first sample. */
  highest: number;
  first: number;
  samples: number;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  wraps: number;
  confRevChanges: number;
  confRev: number;
  minSmpCnt: number;
  maxSmpCnt: number;
  gaps: SequenceGap[];
  gapsDropped: number;
  seen: Uint8Array;
  /** Result of the last `observe`: class and wrap iteration of the sample. */
  lastClass: SampleClass;
  lastIter: number;
}

export function createSequence(wrap?: number): SequenceState {
  return {
    wrap: wrap ?? USUAL_WRAPS[0]!, wrapFixed: wrap !== undefined, highest: -1, first: -1,
    samples: 0, missing: 0, duplicates: 0, outOfOrder: 0, wraps: 0, confRevChanges: 0, confRev: -1,
    minSmpCnt: Infinity, maxSmpCnt: -Infinity, gaps: [], gapsDropped: 0,
    seen: new Uint8Array(WINDOW), lastClass: 'first', lastIter: 0,
  };
}

function learnWrap(s: SequenceState, smpCnt: number): void {
  if (smpCnt < s.wrap || s.wrapFixed) return;
  const next = USUAL_WRAPS.find((w) => w > smpCnt) ?? smpCnt + 1;
  // rebase the absolute indices onto the new wrap, keeping the iteration
  const iter = Math.floor(s.highest / s.wrap);
  const lastSmp = s.highest - iter * s.wrap;
  s.wrap = next;
  if (s.highest >= 0) {
    s.seen.fill(0);
    s.highest = iter * next + lastSmp;
    s.seen[s.highest % WINDOW] = 1;
  }
}

/** Records one sample; returns its wrap iteration (also in `s.lastIter`, class in `s.lastClass`). */
export function observe(s: SequenceState, smpCnt: number, confRev = -1): number {
  learnWrap(s, smpCnt);
  if (confRev >= 0) {
    if (s.confRev >= 0 && confRev !== s.confRev) s.confRevChanges++;
    s.confRev = confRev;
  }
  s.samples++;
  if (smpCnt < s.minSmpCnt) s.minSmpCnt = smpCnt;
  if (smpCnt > s.maxSmpCnt) s.maxSmpCnt = smpCnt;
  const w = s.wrap;
  if (s.highest < 0) {
    s.highest = s.first = smpCnt;
    s.seen[smpCnt % WINDOW] = 1;
    s.lastClass = 'first';
    return (s.lastIter = 0);
  }
  // the absolute index for smpCnt nearest to highest + 1
  const target = s.highest + 1;
  let abs = Math.floor(target / w) * w + smpCnt;
  if (abs - target > w / 2) abs -= w;
  else if (target - abs > w / 2) abs += w;
  if (abs < 0) abs += w;
  const d = abs - s.highest;
  if (d >= 1) {
    if (Math.floor(abs / w) > Math.floor(s.highest / w)) s.wraps += Math.floor(abs / w) - Math.floor(s.highest / w);
    if (d > WINDOW) s.seen.fill(0);
    else for (let k = s.highest + 1; k < abs; k++) s.seen[k % WINDOW] = 0;
    if (d > 1) {
      s.missing += d - 1;
      const from = s.highest + 1;
      if (s.gaps.length < MAX_GAPS_LISTED) {
        s.gaps.push({ fromSmpCnt: from % w, toSmpCnt: (abs - 1) % w, iter: Math.floor(from / w), size: d - 1, missing: d - 1 });
      } else s.gapsDropped++;
      s.lastClass = 'gap';
    } else s.lastClass = 'in-order';
    s.seen[abs % WINDOW] = 1;
    s.highest = abs;
  } else if (s.highest - abs < WINDOW && !s.seen[abs % WINDOW]) {
    s.seen[abs % WINDOW] = 1;
    s.outOfOrder++;
    s.missing--;
    fillGap(s, abs);
    s.lastClass = 'late';
  } else {
    s.duplicates++;
    s.samples--; // a duplicate is not a new sample
    s.lastClass = 'duplicate';
  }
  return (s.lastIter = Math.floor(abs / w));
}

function fillGap(s: SequenceState, abs: number): void {
  const w = s.wrap;
  for (let g = s.gaps.length - 1; g >= 0; g--) {
    const gap = s.gaps[g]!;
    const from = gap.iter * w + gap.fromSmpCnt;
    const to = from + gap.size - 1;
    if (abs >= from && abs <= to) {
      if (--gap.missing === 0) s.gaps.splice(g, 1);
      return;
    }
    if (to < abs) return;
  }
}

export interface SequenceSummary {
  wrap: number;
  samples: number;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  wraps: number;
  confRevChanges: number;
  smpCntMin: number | null;
  smpCntMax: number | null;
  gaps: SequenceGap[];
  /** Gaps not listed (more than the list keeps); their samples are in `missing`. */
  gapsNotListed: number;
}

export function summarizeSequence(s: SequenceState): SequenceSummary {
  return {
    wrap: s.wrap, samples: s.samples, missing: s.missing, duplicates: s.duplicates, outOfOrder: s.outOfOrder,
    wraps: s.wraps, confRevChanges: s.confRevChanges,
    smpCntMin: s.samples ? s.minSmpCnt : null, smpCntMax: s.samples ? s.maxSmpCnt : null,
    gaps: s.gaps.map((g) => ({ ...g })), gapsNotListed: s.gapsDropped,
  };
}
