/**
 * The live view: per stream and segment the samples, rate, min, mean, p50,
 * p99, p99.9, max, count above the limit, missing; a latency histogram of
 * all streams per segment; and the worst latency of each of the last
 * seconds. `renderLive` returns the screen as a string; on a terminal the
 * caller redraws it every second, elsewhere `renderLiveLine` gives one plain
 * line per second.
 */
import { bucketUpperNs, BUCKETS_PER_DECADE, createHistogram, merge, percentileNs, type LatencyHistogram } from './histogram.ts';
import type { SegmentStats } from './joiner.ts';
import { groupDigits, hex4, printable, renderTable } from '../util/text.ts';

export interface LiveFrame {
  title: string;
  elapsedS: number;
  stats: SegmentStats[];
  /** Samples counted a second ago per stats entry key, for the rate. */
  rates: Map<SegmentStats, number>;
  missing: Map<string, number>;
  worstLines: string[];
  footer: string[];
}

export function formatUs(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  const us = ns / 1000;
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : us >= 100 ? us.toFixed(0) : us.toFixed(1);
}

const BAR = 40;

/** A log-scale histogram as text: one line per bucket group (5 per decade), bar ∝ log10(count + 1). */
export function histogramLines(h: LatencyHistogram): string[] {
  if (h.count === 0) return [];
  const step = BUCKETS_PER_DECADE / 5;
  const rows: Array<[string, number]> = [];
  let first = -1, last = -1;
  for (let i = 1; i < h.counts.length - 1; i += step) {
    let n = 0;
    for (let k = i; k < i + step && k < h.counts.length - 1; k++) n += h.counts[k]!;
    if (i === 1) n += h.counts[0]!;
    if (i + step >= h.counts.length - 1) n += h.counts[h.counts.length - 1]!;
    rows.push([`≤ ${formatUs(bucketUpperNs(Math.min(i + step - 1, h.counts.length - 2)))}`, n]);
    if (n > 0) { if (first < 0) first = rows.length - 1; last = rows.length - 1; }
  }
  const shown = rows.slice(first, last + 1);
  const maxLog = Math.max(...shown.map(([, n]) => Math.log10(n + 1)));
  return shown.map(([label, n]) => `${label.padStart(11)} │${'█'.repeat(Math.round((Math.log10(n + 1) / maxLog) * BAR)).padEnd(BAR)} ${groupDigits(n)}`);
}

export function renderLive(f: LiveFrame): string {
  let out = `${f.title}  ·  ${f.elapsedS.toFixed(0)} s\n\n`;
  const rows = f.stats.map((s) => {
    const h = s.hist;
    const rate = h.count - (f.rates.get(s) ?? h.count);
    return [
      s.segment, printable(s.stream), hex4(s.appId), groupDigits(h.count), groupDigits(rate),
      formatUs(h.min), formatUs(h.count ? h.sum / h.count : NaN), formatUs(percentileNs(h, 50)), formatUs(percentileNs(h, 99)),
      formatUs(percentileNs(h, 99.9)), formatUs(h.max), s.limitNs === null ? '-' : `${groupDigits(s.late)} > ${formatUs(s.limitNs)}`,
      groupDigits(f.missing.get(s.stream) ?? 0),
    ];
  });
  out += renderTable(['segment', 'svID', 'APPID', 'samples', 'rate/s', 'min µs', 'mean', 'p50 ≤', 'p99 ≤', 'p99.9 ≤', 'max', 'late', 'missing'], rows, new Set([3, 4, 5, 6, 7, 8, 9, 10, 12]));
  const bySegment = new Map<string, LatencyHistogram>();
  for (const s of f.stats) {
    const h = bySegment.get(s.segment) ?? createHistogram();
    merge(h, s.hist);
    bySegment.set(s.segment, h);
  }
  for (const [seg, h] of bySegment) {
    out += `\n${seg}, all streams (µs, log scale)\n${histogramLines(h).join('\n')}\n`;
  }
  if (f.worstLines.length) out += `\nworst per second\n${f.worstLines.join('\n')}\n`;
  if (f.footer.length) out += `\n${f.footer.join('\n')}\n`;
  return out;
}

/** One plain line per second for logs and pipes. */
export function renderLiveLine(f: LiveFrame): string {
  const bySegment = new Map<string, LatencyHistogram>();
  let late = 0;
  for (const s of f.stats) {
    const h = bySegment.get(s.segment) ?? createHistogram();
    merge(h, s.hist);
    bySegment.set(s.segment, h);
    late += s.late;
  }
  const parts = [...bySegment].map(([seg, h]) => `${seg} n=${h.count} p50≤${formatUs(percentileNs(h, 50))} p99≤${formatUs(percentileNs(h, 99))} max=${formatUs(h.max)}`);
  const missing = [...f.missing.values()].reduce((a, b) => a + b, 0);
  return `${f.elapsedS.toFixed(0)}s ${parts.join(' | ')} late=${late} missing=${missing}`;
}
