/**
 * The report's "why samples were late" section, from the explanations a
 * record holds (RECORD/explain/, written by `svtrace trace --explain` and
 * `svtrace demo --explain`): the cause table by count and by total delay,
 * and for the worst samples a timeline (inline SVG, no script) of the
 * sample's points and of what ran on each CPU between them, beside a normal
 * sample. Every comm, svID and explanation text is escaped for its target.
 */
import { type LoadedExplanations, type LoadedWorst, type RecordExplanations } from '../explain/files.ts';
import { topByCount, type CauseRow } from '../explain/explain.ts';
import { SAMPLES_PID, type ChromeTrace } from '../explain/chrome.ts';
import type { AnalysisResult } from '../analyze/index.ts';
import { printable } from '../util/text.ts';
import { escapeHtml, escapeMarkdown, wireHtml, wireMarkdown } from './escape.ts';

/**
 * svtrace's own text (explanations, cause keys: comms in them were made
 * printable when they were written) keeps its µ and →; control and bidi
 * characters, should a file carry any, become escapes.
 */
export function ownText(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const bad = c < 0x20 || (c >= 0x7f && c < 0xa0) || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    out += bad ? printable(ch) : ch;
  }
  return out;
}
const ownHtml = (s: string) => escapeHtml(ownText(s));
const ownMarkdown = (s: string) => escapeMarkdown(ownText(s));
const escapeMarkdownTitle = ownMarkdown;
import { htmlTable } from './html.ts';
import { count, us } from './format.ts';
import { markdownTable, type Table } from './summary.ts';

/** The explanations the analysis found in its records (src/explain/files.ts reads them). */
export type ReportExplanations = RecordExplanations;

/** The analysis result as JSON (summary.json, `report --json`): the explanations as their summary under `explain`, the analysis keys unchanged. */
export function analysisJson(r: AnalysisResult): unknown {
  const { explanations, ...rest } = r;
  return explanations && explanations.length > 0 ? { ...rest, explain: explainJsonSummary(explanations) } : rest;
}

/** The top causes by total delay and by count; `wire` escapes text from the kernel (comms) for the target. */
export function causeTables(causes: readonly CauseRow[], segment: string, wire: (s: string) => string, top = 10): [Table, Table] {
  const row = (c: CauseRow) => [wire(c.key), c.kind, count(c.count), us(c.totalDelayNs), us(c.maxDelayNs), wire(c.example)];
  const header = ['cause', 'kind', 'samples', 'total delay (µs)', 'max (µs)', 'example (the sample with the largest delay)'];
  return [
    { title: `${segment}: top causes by total delay`, header, rows: causes.slice(0, top).map(row), right: [2, 3, 4] },
    { title: `${segment}: top causes by count`, header, rows: topByCount(causes).slice(0, top).map(row), right: [2, 3, 4] },
  ];
}

/** One line on what was explained and what the recorder lost (never silent). */
export function explainHeadline(l: LoadedExplanations): string {
  const d = l.doc;
  const rec = d.recorder;
  const lost = rec
    ? `recorder ${count(rec.events)} events${rec.engine ? ` (${rec.engine} engine)` : ''}, ${rec.engine === 'bpf' ? 'lost to a full ring' : 'lost by bpftrace'} ${count(rec.lostEvents)}, lost while running ${count(rec.lostInRun)}, unread at stop ${count(rec.notReceivedAtStop)}${rec.ringOverflowed ? `, pushed out of a full ring ${count(rec.ringOverflowed)}` : ''}${rec.shortSoftirqs ? `, softirqs under ${count((rec.softirqMinNs ?? 0) / 1000)} µs counted only ${count(rec.shortSoftirqs)}` : ''}`
    : 'no recorder';
  return `${d.segment}: ${count(d.samples)} samples, p50 ${us(d.p50Ns)} µs, p99 ${us(d.p99Ns)} µs, max ${us(d.maxNs)} µs; ${count(d.late)} over ${us(d.thresholdNs)} µs, ${count(d.explanations.length)} explained; ${lost}; points lost ${rec?.engine === 'bpf' ? 'to a full ring' : 'by bpftrace'} ${count(d.points.lostEvents)}, not received ${count(d.points.lostLines)}`;
}

// ---- the timeline ---------------------------------------------------------

interface Slice { cpu: number; lane: 'task' | 'irq'; fromUs: number; toUs: number; name: string; tid: number; cat: string }
interface Mark { name: string; atUs: number; cpu: number | null }

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#86bcb6'];

function colorOf(name: string, tid: number): string {
  if (tid === 0 || name.startsWith('swapper')) return '#e6e6e6';
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

function slicesOf(t: ChromeTrace): { slices: Slice[]; marks: Mark[] } {
  const slices: Slice[] = [], marks: Mark[] = [];
  for (const e of t.traceEvents) {
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts) || typeof e.name !== 'string') continue;
    if (e.pid === SAMPLES_PID) {
      if (e.ph === 'i') marks.push({ name: e.name, atUs: e.ts, cpu: typeof e.args?.cpu === 'number' ? e.args.cpu : null });
      continue;
    }
    if (e.ph !== 'X' || typeof e.dur !== 'number' || !Number.isFinite(e.dur) || !Number.isInteger(e.pid)) continue;
    slices.push({ cpu: e.pid, lane: e.cat === 'softirq' || e.cat === 'irq' ? 'irq' : 'task', fromUs: e.ts, toUs: e.ts + e.dur, name: e.cat === 'sched' ? `${e.name} (${e.tid})` : e.name, tid: e.tid, cat: e.cat ?? '' });
  }
  marks.sort((a, b) => a.atUs - b.atUs);
  return { slices, marks };
}

function niceStep(spanUs: number): number {
  const raw = spanUs / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

const fmt = (n: number) => {
  const s = Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
  const t = s.includes('.') ? s.replace(/\.?0+$/, '') : s;
  return t === '-0' ? '0' : t;
};

/**
 * One sample's timeline as inline SVG: a row per CPU (tasks; softirq and
 * hard IRQs in a thin lane below), the sample's points as vertical lines,
 * time in µs from the first point. `title` is plain text (escaped here).
 */
export function timelineSvg(t: ChromeTrace, title: string, width = 540): string {
  const { slices, marks } = slicesOf(t);
  if (marks.length === 0) return `<p class="caption">${escapeHtml(title)}: the trace holds no sample points</p>`;
  const first = marks[0]!.atUs, last = marks[marks.length - 1]!.atUs;
  const span = Math.max(last - first, 1);
  const margin = Math.max(0.25 * span, 5);
  const lo = first - margin, hi = last + margin;
  const cpus = [...new Set(slices.map((s) => s.cpu))].sort((a, b) => a - b);
  const left = 56, right = 10, top = 34, laneH = 18, irqH = 7, gap = 8;
  const plotW = width - left - right;
  const x = (tUs: number) => left + ((Math.min(hi, Math.max(lo, tUs)) - lo) / (hi - lo)) * plotW;
  const rowY = (i: number) => top + i * (laneH + irqH + gap);
  const height = rowY(cpus.length) + 34;
  const out: string[] = [];
  out.push(`<svg class="timeline" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(title)}" font-family="DejaVu Sans, sans-serif" font-size="10">`);
  out.push(`<text x="${left}" y="12" font-weight="bold">${escapeHtml(title)}</text>`);
  // the sample's span, shaded
  out.push(`<rect x="${x(first).toFixed(1)}" y="${top - 4}" width="${Math.max(1, x(last) - x(first)).toFixed(1)}" height="${(rowY(cpus.length) - top).toFixed(1)}" fill="#fff3c4"/>`);
  const totals = new Map<string, { us: number; color: string }>();
  cpus.forEach((cpu, i) => {
    const y = rowY(i);
    out.push(`<text x="4" y="${y + 13}">CPU ${cpu}</text>`);
    out.push(`<rect x="${left}" y="${y}" width="${plotW}" height="${laneH}" fill="none" stroke="#ccc"/>`);
    for (const s of slices) {
      if (s.cpu !== cpu || s.toUs < lo || s.fromUs > hi) continue;
      const a = x(s.fromUs), b = x(s.toUs);
      const name = printable(s.name);
      const inView = Math.min(hi, s.toUs) - Math.max(lo, s.fromUs);
      const tip = `${name} on CPU ${cpu}: ${fmt(s.toUs - s.fromUs)} µs (${fmt(inView)} µs in view)`;
      if (s.lane === 'task') {
        const color = colorOf(s.name, s.tid);
        if (s.tid !== 0) {
          const k = totals.get(name) ?? { us: 0, color };
          k.us += Math.max(0, Math.min(last, s.toUs) - Math.max(first, s.fromUs));
          totals.set(name, k);
        }
        out.push(`<rect x="${a.toFixed(1)}" y="${y}" width="${Math.max(0.5, b - a).toFixed(1)}" height="${laneH}" fill="${color}" stroke="#fff" stroke-width="0.5"><title>${escapeHtml(tip)}</title></rect>`);
        if (b - a > 6.2 * Math.min(name.length, 24) && s.tid !== 0) {
          out.push(`<text x="${(a + 3).toFixed(1)}" y="${y + 13}" fill="#fff">${escapeHtml(name.length > 24 ? `${name.slice(0, 23)}…` : name)}</text>`);
        }
      } else {
        out.push(`<rect x="${a.toFixed(1)}" y="${y + laneH + 1}" width="${Math.max(0.8, b - a).toFixed(1)}" height="${irqH - 1}" fill="${s.cat === 'irq' ? '#c62828' : '#6a1b9a'}"><title>${escapeHtml(tip)}</title></rect>`);
      }
    }
  });
  // the points
  const bottom = rowY(cpus.length) - gap;
  marks.forEach((m, k) => {
    const px = x(m.atUs);
    out.push(`<line x1="${px.toFixed(1)}" y1="${top - 8}" x2="${px.toFixed(1)}" y2="${bottom}" stroke="#000" stroke-dasharray="3 2"/>`);
    const label = `${printable(m.name)}${m.cpu === null ? '' : ` (CPU ${m.cpu})`}`;
    const anchor = k === marks.length - 1 && marks.length > 1 ? 'end' : 'start';
    out.push(`<text x="${(px + (anchor === 'end' ? -2 : 2)).toFixed(1)}" y="${top - 10}" text-anchor="${anchor}">${escapeHtml(label)}</text>`);
  });
  // the axis: µs from the first point
  const step = niceStep(hi - lo);
  const axisY = bottom + 4;
  out.push(`<line x1="${left}" y1="${axisY}" x2="${left + plotW}" y2="${axisY}" stroke="#888"/>`);
  for (let v = Math.ceil((lo - first) / step) * step; v <= hi - first; v += step) {
    const px = x(first + v);
    out.push(`<line x1="${px.toFixed(1)}" y1="${axisY}" x2="${px.toFixed(1)}" y2="${axisY + 4}" stroke="#888"/><text x="${px.toFixed(1)}" y="${axisY + 14}" text-anchor="middle">${fmt(v)}</text>`);
  }
  out.push(`<text x="${left + plotW}" y="${axisY + 26}" text-anchor="end" fill="#555">µs from ${escapeHtml(printable(marks[0]!.name))}; lower lane: softirq (purple), hard IRQ (red)</text>`);
  out.push('</svg>');
  const legend = [...totals].filter(([, v]) => v.us > 0).sort((a, b) => b[1].us - a[1].us).slice(0, 6)
    .map(([n, v]) => `<span class="tl-key"><span class="tl-swatch" style="background:${v.color}"></span>${escapeHtml(n)} ${escapeHtml(fmt(v.us))} µs</span>`);
  return `${out.join('\n')}${legend.length ? `\n<p class="caption">between the points: ${legend.join(' ')}</p>` : ''}`;
}

function worstBlock(w: LoadedWorst, k: number): string {
  const x = w.explanation;
  const title = `#${k + 1} ${printable(x.svId)} smpCnt ${x.smpCnt}: ${x.segment} ${us(x.latencyNs)} µs`;
  const late = w.chrome ? timelineSvg(w.chrome, title) : `<p class="caption">${escapeHtml(title)}: its Chrome trace is missing</p>`;
  let normal = '<p class="caption">no normal sample was kept near this one</p>';
  if (w.normal) {
    const nt = `normal: ${printable(w.normal.svId)} smpCnt ${w.normal.smpCnt}: ${w.normal.segment} ${us(w.normal.latencyNs)} µs`;
    normal = w.normal.chrome ? timelineSvg(w.normal.chrome, nt) : `<p class="caption">${escapeHtml(nt)}: its Chrome trace is missing</p>`;
  }
  const files = [x.trace, w.normal?.trace].filter((f): f is string => typeof f === 'string').map((f) => wireHtml(f)).join(', ');
  return `<h4>${escapeHtml(title)}</h4>
<p>${ownHtml(x.text)}</p>
<div class="tl-pair"><div class="tl">${late}</div><div class="tl">${normal}</div></div>
<p class="caption">Chrome/Perfetto traces in the record's explain/ directory: ${files} (open them in ui.perfetto.dev)</p>`;
}

/** The HTML section (empty string when no record holds explanations). */
export function explainSectionHtml(list: readonly ReportExplanations[], worst = 3): string {
  if (list.length === 0) return '';
  const parts = ['<h2 id="explain">Why samples were late</h2>',
    '<p class="caption">From the flight recorder (scheduling and interrupt tracepoints) that ran beside the points: each sample over the threshold explained from what ran on the CPUs between its points.</p>'];
  for (const e of list) {
    parts.push(`<h3>Record ${wireHtml(e.record)}</h3>`);
    if (!e.loaded) { parts.push(`<div class="warn">${ownHtml(e.error ?? 'unreadable')}</div>`); continue; }
    const d = e.loaded.doc;
    parts.push(`<p class="meta">${ownHtml(explainHeadline(e.loaded))}</p>`);
    for (const w of d.warnings.slice(0, 5)) parts.push(`<div class="warn">${ownHtml(w)}</div>`);
    if (d.causes.length === 0) parts.push('<p>No sample was explained (none over the threshold once the recorder ran).</p>');
    else for (const t of causeTables(d.causes, d.segment, ownText)) parts.push(`<h4>${escapeHtml(t.title)}</h4>\n${htmlTable(t)}`);
    const shown = e.loaded.worst.slice(0, worst);
    if (shown.length > 0) {
      parts.push(`<h4>The ${shown.length} worst samples, each beside a normal one</h4>`);
      shown.forEach((w, k) => parts.push(worstBlock(w, k)));
    }
  }
  return parts.join('\n');
}

/** The Markdown section of summary.md (empty when no record holds explanations). */
export function explainMarkdown(list: readonly ReportExplanations[]): string {
  if (list.length === 0) return '';
  const out = ['## Why samples were late', ''];
  for (const e of list) {
    out.push(`### Record ${wireMarkdown(e.record)}`, '');
    if (!e.loaded) { out.push(`- ${ownMarkdown(e.error ?? 'unreadable')}`, ''); continue; }
    out.push(`- ${ownMarkdown(explainHeadline(e.loaded))}`, '');
    for (const t of causeTables(e.loaded.doc.causes, e.loaded.doc.segment, ownMarkdown)) out.push(`#### ${escapeMarkdownTitle(t.title)}`, '', markdownTable(t));
  }
  return out.join('\n');
}

/** What summary.json gains (a new key, `explain`): per record the figures, causes and worst samples, without the traces. */
export function explainJsonSummary(list: readonly ReportExplanations[]): unknown {
  return list.map((e) => {
    if (!e.loaded) return { record: e.record, error: e.error };
    const d = e.loaded.doc;
    return {
      record: e.record, segment: d.segment, thresholdNs: d.thresholdNs, samples: d.samples, late: d.late, explained: d.explanations.length,
      p50Ns: d.p50Ns, p99Ns: d.p99Ns, maxNs: d.maxNs, recorder: d.recorder, points: d.points, causes: d.causes,
      worst: d.worst.map((w) => ({ svId: w.svId, smpCnt: w.smpCnt, iter: w.iter, latencyNs: w.latencyNs, primary: w.primary.kind, cause: w.primary.key, text: w.text, trace: w.trace, normal: w.normal ? { svId: w.normal.svId, smpCnt: w.normal.smpCnt, latencyNs: w.normal.latencyNs, trace: w.normal.trace } : null })),
    };
  });
}
