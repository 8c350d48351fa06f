/**
 * Two analyses side by side: every headline figure of every segment in A and
 * in B with its relative change ("> 200 µs: 352 533 → 512, −99.85 %"), the
 * overlaid histograms, exceedance curves and worst-per-second curves, in the
 * same outputs as a report (HTML, SVG/PNG, Markdown, JSON).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { printable, renderTable } from '../util/text.ts';
import type { AnalysisResult, LatencyStats, SegmentResult } from '../analyze/index.ts';
import { exceedanceSpec, histogramSpec, perSecondSpec } from './charts.ts';
import { escapeHtml, escapeMarkdown } from './escape.ts';
import { change, count, us } from './format.ts';
import { htmlTable, inlineSvg, renderPage } from './html.ts';
import { firstScreenHtml } from './first-screen.ts';
import { pathView } from './path-view.ts';
import { writeCharts, type Chart, type ReportFiles } from './report.ts';
import { markdownTable, type Table } from './summary.ts';

export interface ComparisonFigure {
  figure: string;
  unit: 'us' | 'samples';
  a: number | null;
  b: number | null;
  /** (b − a) / |a|, null when either is missing or a is 0. */
  change: number | null;
}

export interface ComparisonSegment {
  segment: string;
  figures: ComparisonFigure[];
}

export interface ComparisonResult {
  format: 'svtrace-comparison';
  formatVersion: 1;
  segments: ComparisonSegment[];
  totals: ComparisonFigure[];
  /** B's verdicts decide the exit code of `svtrace compare`. */
  passed: { a: boolean; b: boolean };
  a: AnalysisResult;
  b: AnalysisResult;
  /** What A and B are (e.g. "nominal", "tuned") and how B differs from A, when the caller knows. */
  labels?: { a: string; b: string };
  notes?: string[];
}

const fig = (figure: string, unit: ComparisonFigure['unit'], a: number | null, b: number | null): ComparisonFigure =>
  ({ figure, unit, a, b, change: a === null || b === null || a === 0 ? null : (b - a) / Math.abs(a) });

function statsFigures(a: LatencyStats | null, b: LatencyStats | null): ComparisonFigure[] {
  const us = (f: (s: LatencyStats) => number | null) => [a ? f(a) : null, b ? f(b) : null] as const;
  const out = [
    fig('samples', 'samples', a?.count ?? null, b?.count ?? null),
    fig('mean', 'us', ...us((s) => s.meanNs)),
    fig('min', 'us', ...us((s) => s.minNs)),
    fig('p50', 'us', ...us((s) => s.percentilesNs.p50)),
    fig('p99', 'us', ...us((s) => s.percentilesNs.p99)),
    fig('p99.9', 'us', ...us((s) => s.percentilesNs['p99.9'])),
    fig('p99.99', 'us', ...us((s) => s.percentilesNs['p99.99'])),
    fig('max', 'us', ...us((s) => s.maxNs)),
  ];
  const thresholds = [...new Set([...(a?.above ?? []), ...(b?.above ?? [])].map((t) => t.thresholdUs))].sort((x, y) => x - y);
  for (const t of thresholds) {
    const n = (s: LatencyStats | null) => (s ? s.above.find((x) => x.thresholdUs === t)?.count ?? null : null);
    out.push(fig(`> ${t} µs`, 'samples', n(a), n(b)));
  }
  out.push(fig('negative', 'samples', a?.negative ?? null, b?.negative ?? null));
  return out;
}

export function compareAnalyses(a: AnalysisResult, b: AnalysisResult): ComparisonResult {
  const names = [...new Set([...a.segments, ...b.segments].map((s) => s.segment))];
  const find = (r: AnalysisResult, n: string) => r.segments.find((s) => s.segment === n) ?? null;
  const missing = (r: AnalysisResult) => r.streams.reduce((s, x) => s + x.missing, 0);
  return {
    format: 'svtrace-comparison',
    formatVersion: 1,
    segments: names.map((n) => ({ segment: n, figures: statsFigures(find(a, n)?.all ?? null, find(b, n)?.all ?? null) })),
    totals: [fig('samples', 'samples', a.samples, b.samples), fig('missing', 'samples', missing(a), missing(b))],
    passed: { a: a.passed, b: b.passed },
    a,
    b,
  };
}

/** A figure's value as the tables print it. */
const value = (f: ComparisonFigure, x: number | null) => (x === null ? '–' : f.unit === 'us' ? us(x) : count(x));

/** The segment's verdict limit (µs), B's first, else 200 µs (the SEAPATH end-to-end limit). */
const limitOf = (c: ComparisonResult, segment: string) =>
  c.b.segments.find((x) => x.segment === segment)?.limitUs ?? c.a.segments.find((x) => x.segment === segment)?.limitUs ?? 200;

/** "352 533 → 512, −99.85 %" */
export function describeChange(f: ComparisonFigure): string {
  const v = (x: number | null) => (x === null ? '–' : f.unit === 'us' ? `${us(x)} µs` : count(x));
  return `${v(f.a)} → ${v(f.b)}, ${change(f.a, f.b)}`;
}

function table(title: string, figures: readonly ComparisonFigure[]): Table {
  const v = value;
  return {
    title,
    header: ['figure', 'A', 'B', 'change'],
    rows: figures.map((f) => [f.unit === 'us' ? `${f.figure} (µs)` : f.figure, v(f, f.a), v(f, f.b), change(f.a, f.b)]),
    right: [1, 2, 3],
  };
}

/** One line per segment for the figures people quote: "Tseapath > 200 µs: 352 533 → 512, −99.85 %". */
export function headlines(c: ComparisonResult): string[] {
  return c.segments.flatMap((s) => {
    const limit = limitOf(c, s.segment);
    return s.figures.filter((f) => ['mean', 'p99.99', 'max', `> ${limit} µs`].includes(f.figure)).map((f) => `${s.segment} ${f.figure}: ${describeChange(f)}`);
  });
}

function tables(c: ComparisonResult): Table[] {
  return [table('Totals', c.totals), ...c.segments.map((s) => table(s.segment, s.figures))];
}

const side = (label: string, r: AnalysisResult, c?: ComparisonResult) =>
  `${label}${c?.labels ? ` (${label === 'A' ? c.labels.a : c.labels.b})` : ''}: ${r.records.map((x) => `${printable(x.role)}@${printable(x.host)}`).join(', ')} (run ${[...new Set(r.records.map((x) => printable(x.runId)))].join(', ')}), ${r.passed ? 'PASS' : 'FAIL'}`;

export function renderComparisonText(c: ComparisonResult): string {
  const out = [side('A', c.a, c), side('B', c.b, c), ...(c.notes ?? []).map((n) => `  ${n}`), '', ...headlines(c), ''];
  for (const t of tables(c)) out.push(t.title, renderTable(t.header, t.rows, new Set(t.right)));
  return out.join('\n');
}

export function renderComparisonMarkdown(c: ComparisonResult): string {
  const out = [`# svtrace compare: B ${c.passed.b ? 'PASS' : 'FAIL'}`, '', `- ${escapeMarkdown(side('A', c.a, c))}`, `- ${escapeMarkdown(side('B', c.b, c))}`,
    ...(c.notes ?? []).map((n) => `  - ${escapeMarkdown(n)}`), '',
    ...headlines(c).map((h) => `- ${escapeMarkdown(h)}`), ''];
  for (const t of tables(c)) out.push(`## ${t.title}`, '', markdownTable(t));
  return out.join('\n');
}

function comparisonCharts(c: ComparisonResult): Chart[] {
  return c.segments.flatMap(({ segment }) => {
    const sa = c.a.segments.find((s) => s.segment === segment), sb = c.b.segments.find((s) => s.segment === segment);
    const series = <T>(f: (s: SegmentResult) => readonly T[]) => [...(sa ? [{ run: 'A', data: f(sa) }] : []), ...(sb ? [{ run: 'B', data: f(sb) }] : [])];
    const limit = sb?.limitUs ?? sa?.limitUs ?? null;
    return [
      { name: `${segment}-histogram`, spec: histogramSpec(segment, series((s) => s.histogram)) },
      { name: `${segment}-exceedance`, spec: exceedanceSpec(segment, series((s) => s.exceedance), limit) },
      { name: `${segment}-per-second`, spec: perSecondSpec(segment, series((s) => s.perSecondMax), limit, true) },
    ];
  });
}

export async function writeComparison(c: ComparisonResult, dir: string, onProgress?: (done: number, total: number) => void): Promise<ReportFiles> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new SvtraceError('REPORT_OUT_DIR', `cannot create ${printable(dir)}: ${(e as Error).message}`, { hint: 'Give a writable directory with --out.', cause: e });
  }
  const { files, svgs } = await writeCharts(dir, comparisonCharts(c), onProgress);
  const segSections = c.segments.map((s) => {
    const t = tables(c).find((x) => x.title === s.segment)!;
    const chart = (kind: string) => `<div class="chart">${inlineSvg(svgs.get(`${s.segment}-${kind}`) ?? '')}</div>`;
    return `<h2>${escapeHtml(s.segment)}</h2>\n${htmlTable(t)}\n${chart('histogram')}\n${chart('exceedance')}\n${chart('per-second')}`;
  });
  const html = renderPage({
    title: 'svtrace compare',
    verdict: c.passed.b ? 'PASS' : 'FAIL',
    meta: [side('A', c.a, c), side('B', c.b, c), ...(c.notes ?? []), 'Charts: A blue, B red; worst per second against seconds since each run\'s start.'],
    warnings: [...c.a.warnings.map((w) => ({ ...w, code: `A ${w.code}` })), ...c.b.warnings.map((w) => ({ ...w, code: `B ${w.code}` }))],
    sections: [firstScreenHtml([{ label: 'A', view: pathView(c.a) }, { label: 'B', view: pathView(c.b) }]), `<h2>Headlines</h2>\n<ul>${headlines(c).map((h) => `<li>${escapeHtml(h)}</li>`).join('')}</ul>`, `<h2>Totals</h2>\n${htmlTable(tables(c)[0]!)}`, ...segSections],
    data: c,
  });
  const paths = { html: join(dir, 'report.html'), markdown: join(dir, 'summary.md'), json: join(dir, 'summary.json') };
  await writeFile(paths.html, html);
  await writeFile(paths.markdown, renderComparisonMarkdown(c));
  await writeFile(paths.json, JSON.stringify(c, null, 2) + '\n');
  return { ...paths, charts: files };
}

/**
 * The seed's table: for each segment (Ttot first), mean, min, max, p99,
 * p99.99 and the samples over its limit (200 µs when it has none), before →
 * after with the change: the comparison's own figures, picked.
 */
export function seedTable(c: ComparisonResult): { header: string[]; rows: string[][] } {
  const order = (n: string) => (n === 'Ttot' ? -1 : c.segments.findIndex((s) => s.segment === n));
  const rows: string[][] = [];
  for (const s of [...c.segments].sort((x, y) => order(x.segment) - order(y.segment))) {
    if (!s.figures.find((f) => f.figure === 'samples')?.a && !s.figures.find((f) => f.figure === 'samples')?.b) continue;
    const limit = limitOf(c, s.segment);
    const cell = (name: string) => {
      const f = s.figures.find((x) => x.figure === name);
      return f ? `${value(f, f.a)} → ${value(f, f.b)} (${change(f.a, f.b)})` : '–';
    };
    rows.push([s.segment, ...['mean', 'min', 'max', 'p99', 'p99.99'].map(cell), `${cell(`> ${limit} µs`)} > ${limit} µs`]);
  }
  return { header: ['segment', 'mean µs', 'min µs', 'max µs', 'p99 µs', 'p99.99 µs', 'over the limit'], rows };
}
