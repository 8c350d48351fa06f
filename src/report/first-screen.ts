/**
 * The first screen of report.html: a picture of the path (a box per point,
 * an arrow per hop with its p50, p99 and max in the colour of its verdict,
 * the segments spanning several hops beneath) and one chart of where the
 * time goes (each hop's share at p50, p99, p99.99). In a comparison, a
 * picture per run and the two runs' bars on one scale per percentile.
 * Hand-made inline SVG: no script, no fetch; every string escaped; every
 * number read from the PathView, i.e. from summary.json.
 */
import { SEGMENTS, knownPoint } from '../path/index.ts';
import { escapeHtml } from './escape.ts';
import { us } from './format.ts';
import { POINT_PLACES, QUANTILES, type PathSegment, type PathView } from './path-view.ts';

export interface RunView {
  /** '' for a single run; 'A', 'B' in a comparison. */
  label: string;
  view: PathView;
}

const W = 960, M = 10, BOX_W = 104, BOX_H = 46, BOX_Y = 34;
const FONT = 'font-family="DejaVu Sans, sans-serif"';
export const VERDICT_COLORS = { pass: '#2e7d32', fail: '#c62828', none: '#757575' } as const;
const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#b279a2', '#72b7b2', '#eeca3b', '#ff9da6', '#9d755d'];

const e = escapeHtml;
const fig = (ns: number | null) => `${us(ns)} µs`;
const attrNs = (ns: number | null) => (ns === null ? '' : String(ns));
/** A corrected cross-machine segment's clock uncertainty, as its label shows it. */
const clockText = (s: PathSegment) => (s.clockCorrected ? `clock ±${s.clockUncertaintyNs === null ? '?' : fig(s.clockUncertaintyNs)}` : '');

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${FONT} ${attrs}>${e(s)}</text>`;
}

/** The path: boxes for points, arrows for hops, brackets for spans. */
export function pathSvg(v: PathView, idPrefix: string): string {
  const n = v.points.length;
  const gap = n > 1 ? (W - 2 * M - n * BOX_W) / (n - 1) : 0;
  const x = (i: number) => (n > 1 ? M + i * (BOX_W + gap) : (W - BOX_W) / 2);
  const midY = BOX_Y + BOX_H / 2;
  const parts: string[] = [];
  v.points.forEach((p, i) => {
    const place = POINT_PLACES[p]?.place;
    const known = knownPoint(p);
    const tip = known ? `${p}: ${known.meaning} (${known.machine})` : `${p}: a custom point`;
    parts.push(`<g class="point" data-point="${e(p)}"><title>${e(tip)}</title><rect x="${x(i)}" y="${BOX_Y}" width="${BOX_W}" height="${BOX_H}" rx="6" fill="#f4f6fa" stroke="#8a8f98"/>`
      + text(x(i) + BOX_W / 2, BOX_Y + (place ? 19 : 28), place ?? p, 'font-size="13" font-weight="bold" text-anchor="middle" fill="#222"')
      + (place ? text(x(i) + BOX_W / 2, BOX_Y + 36, p, 'font-size="11" text-anchor="middle" fill="#555"') : '') + '</g>');
  });
  v.hops.forEach((h, i) => {
    const x1 = x(i) + BOX_W + 3, x2 = x(i + 1) - 3, cx = (x1 + x2) / 2;
    const via = POINT_PLACES[v.points[i]!]?.via;
    const color = h ? VERDICT_COLORS[h.verdict] : '#bbb';
    const arrow = `<line x1="${x1}" y1="${midY}" x2="${x2 - 8}" y2="${midY}" stroke="${color}" stroke-width="3"${h ? '' : ' stroke-dasharray="5 4"'}/>`
      + `<path d="M${x2},${midY} L${x2 - 10},${midY - 6} L${x2 - 10},${midY + 6} Z" fill="${color}"/>`;
    if (!h) {
      parts.push(`<g class="hop" data-segment="">${arrow}${text(cx, midY + 17, 'no segment', 'font-size="11" text-anchor="middle" fill="#777"')}</g>`);
      return;
    }
    parts.push(`<g class="hop" data-segment="${e(h.segment)}" data-verdict="${h.verdict}" data-p50-ns="${attrNs(h.p50Ns)}" data-p99-ns="${attrNs(h.p99Ns)}" data-max-ns="${attrNs(h.maxNs)}">`
      + (via ? text(cx, BOX_Y - 14, `via ${via}`, 'font-size="11" text-anchor="middle" fill="#555"') : '')
      + text(cx, midY - 7, h.segment, `font-size="13" font-weight="bold" text-anchor="middle" fill="${color}"`)
      + arrow
      + text(cx, midY + 17, `p50 ${fig(h.p50Ns)}`, 'class="fig" data-fig="p50" font-size="11" text-anchor="middle" fill="#222"')
      + text(cx, midY + 31, `p99 ${fig(h.p99Ns)}`, 'class="fig" data-fig="p99" font-size="11" text-anchor="middle" fill="#222"')
      + text(cx, midY + 45, `max ${fig(h.maxNs)}`, `class="fig" data-fig="max" font-size="11" text-anchor="middle" fill="${color}"`)
      + (h.clockCorrected ? text(cx, midY + 59, clockText(h), `class="fig" data-fig="clock" data-clock-ns="${attrNs(h.clockUncertaintyNs)}" font-size="11" text-anchor="middle" fill="#555"`) : '')
      + '</g>');
  });
  const spanY = midY + (v.hops.some((h) => h?.clockCorrected) ? 80 : 70);
  v.spans.forEach((s, k) => {
    const a = v.points.indexOf(s.from), b = v.points.indexOf(s.to);
    if (a < 0 || b < 0) return;
    const y = spanY + k * 28, xa = x(a) + BOX_W / 2, xb = x(b) + BOX_W / 2, color = VERDICT_COLORS[s.verdict];
    const label = `${s.segment} (${s.from}→${s.to}): p50 ${fig(s.p50Ns)} · p99 ${fig(s.p99Ns)} · max ${fig(s.maxNs)}${s.clockCorrected ? ` · ${clockText(s)}` : ''}`;
    const half = label.length * 3.3;
    const cx = Math.min(Math.max((xa + xb) / 2, M + half), W - M - half);
    parts.push(`<g class="span" data-segment="${e(s.segment)}" data-verdict="${s.verdict}" data-p50-ns="${attrNs(s.p50Ns)}" data-p99-ns="${attrNs(s.p99Ns)}" data-max-ns="${attrNs(s.maxNs)}">`
      + `<path d="M${xa},${y - 6} V${y} H${xb} V${y - 6}" fill="none" stroke="${color}" stroke-width="2"/>`
      + text(cx, y + 14, label, `font-size="11" text-anchor="middle" fill="${color}"`)
      + '</g>');
  });
  const h = v.spans.length ? spanY + v.spans.length * 28 + 6 : midY + 56;
  return `<svg id="${e(idPrefix)}" class="path-svg" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="the path with each hop's p50, p99 and max">${parts.join('')}</svg>`;
}

const LABEL_W = 120, SUM_W = 150, ROW_H = 24, BAR_H = 17;

/** Where the time goes: per percentile, a stacked bar of the hops' values per run, one scale for all runs of that percentile. */
export function shareSvg(runs: readonly RunView[], idPrefix: string): string {
  const segments = [...new Set(runs.flatMap((r) => r.view.hops.filter((h) => h !== null).map((h) => h.segment)))];
  // A segment keeps its colour from report to report: the path's segments by their place in src/path, others after them.
  const custom = segments.filter((x) => !SEGMENTS.some((d) => d.name === x));
  const color = (s: string) => {
    const known = SEGMENTS.findIndex((d) => d.name === s);
    return PALETTE[(known >= 0 ? known : SEGMENTS.length + custom.indexOf(s)) % PALETTE.length]!;
  };
  const barW = W - LABEL_W - SUM_W;
  const parts: string[] = [];
  let y = 6;
  for (const q of QUANTILES) {
    const rows = runs.map((r) => {
      const hops = r.view.hops.filter((h): h is PathSegment => h !== null && h[q.key] !== null && h[q.key]! > 0);
      return { r, hops, sum: hops.reduce((a, h) => a + h[q.key]!, 0) };
    });
    const scale = Math.max(...rows.map((x) => x.sum), 1);
    for (const { r, hops, sum } of rows) {
      parts.push(text(LABEL_W - 8, y + 13, r.label ? `${q.label} ${r.label}` : q.label, 'font-size="12" text-anchor="end" fill="#222"'));
      let x0 = LABEL_W;
      for (const h of hops) {
        const v = h[q.key]!, w = (v / scale) * barW, share = v / sum;
        parts.push(`<g class="share" data-run="${e(r.label)}" data-quantile="${q.label}" data-segment="${e(h.segment)}" data-ns="${v}" data-share="${share.toFixed(6)}">`
          + `<rect x="${x0.toFixed(2)}" y="${y}" width="${Math.max(w, 0.5).toFixed(2)}" height="${BAR_H}" fill="${color(h.segment)}"><title>${e(`${h.segment} ${q.label} ${fig(v)} (${(share * 100).toFixed(1)} %)`)}</title></rect>`
          + (w > 70 ? text(x0 + 4, y + 12.5, `${h.segment} ${(share * 100).toFixed(share < 0.1 ? 1 : 0)} %`, 'font-size="11" fill="#fff"') : '')
          + '</g>');
        x0 += w;
      }
      parts.push(text(LABEL_W + barW + 8, y + 13, hops.length ? `Σ ${fig(sum)}` : 'not measured', `class="sum" data-run="${e(r.label)}" data-quantile="${q.label}" data-sum-ns="${sum}" font-size="12" fill="#222"`));
      y += ROW_H;
    }
    y += 8;
  }
  let lx = LABEL_W;
  for (const s of segments) {
    parts.push(`<rect x="${lx}" y="${y + 2}" width="12" height="12" fill="${color(s)}"/>` + text(lx + 16, y + 12, s, 'font-size="12" fill="#222"'));
    lx += 24 + s.length * 8;
  }
  const h = y + 20;
  return `<svg id="${e(idPrefix)}" class="share-svg" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" role="img" aria-label="each hop's share of the time at p50, p99 and p99.99">${parts.join('')}</svg>`;
}

const key = () => Object.entries({ pass: 'within its limit', fail: 'over its limit', none: 'no limit' })
  .map(([k, label]) => `<span class="fs-key"><span class="tl-swatch" style="background:${VERDICT_COLORS[k as keyof typeof VERDICT_COLORS]}"></span>${label}</span>`).join('');

/** The first screen's HTML: the path picture(s), the share chart, and a line on how to read them. */
export function firstScreenHtml(runs: readonly RunView[]): string {
  const pictures = runs.map((r, i) => `<div class="fs-run">${r.label ? `<h3>${e(r.label === 'A' ? 'A (before)' : r.label === 'B' ? 'B (after)' : r.label)}</h3>` : ''}<div class="path-picture">${pathSvg(r.view, `path-${i}`)}</div></div>`).join('');
  const compare = runs.length > 1;
  // The span over the whole path drawn, if measured: its percentiles are the path's own.
  const whole = runs.map((r) => r.view.spans.find((x) => x.from === r.view.points[0] && x.to === r.view.points.at(-1))?.segment).find((x) => x !== undefined);
  return `<div class="first-screen">
<h2>The path</h2>
<p class="caption">Each arrow is a segment between two points, with its p50, p99 and max over all streams: ${key()}</p>
<div class="fs-pair">${pictures}</div>
<h2>Where the time goes</h2>
<p class="caption">Each bar stacks the segments' own percentile (p50, p99, p99.99) along the path; a segment's share is its part of the sum Σ. Percentiles do not add up: Σ at p99 is not the p99 of the whole path${whole ? ` (that is ${e(whole)}'s, under the path)` : ''}.${compare ? ' A and B share one scale per percentile.' : ''}</p>
<div class="share-chart">${shareSvg(runs, 'share')}</div>
</div>`;
}

export const FIRST_SCREEN_CSS = `.fs-pair{display:flex;flex-wrap:wrap;gap:1rem}.fs-run{flex:1 1 900px;min-width:0}.fs-run h3{margin:.4rem 0}
.path-picture svg,.share-chart svg{max-width:100%;height:auto}.fs-key{white-space:nowrap;margin-left:.6rem}`;
