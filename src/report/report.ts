/**
 * `writeReport(result, dir)`: report.html (one self-contained file), the
 * charts as SVG and PNG, summary.md and summary.json. Pure rendering of an
 * AnalysisResult; the CLI decides what to print.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { printable } from '../util/text.ts';
import type { AnalysisResult, SegmentResult } from '../analyze/index.ts';
import { exceedanceSpec, histogramSpec, perSecondSpec, renderSvg, svgToPng } from './charts.ts';
import { escapeHtml } from './escape.ts';
import { htmlTable, inlineSvg, renderPage } from './html.ts';
import { count, percent, us, utcSecond } from './format.ts';
import { clockLines, renderSummaryMarkdown, segmentTable, streamTable, verdictTable, type Table } from './summary.ts';
import { firstScreenHtml } from './first-screen.ts';
import { pathView } from './path-view.ts';
import { analysisJson, explainSectionHtml } from './explain.ts';
import type * as vl from 'vega-lite';

export interface ReportFiles {
  html: string;
  markdown: string;
  json: string;
  charts: string[];
}

export interface Chart {
  name: string;
  spec: vl.TopLevelSpec;
}

/** Writes `name.svg` and `name.png` for every chart; returns the SVGs for inline use. */
export async function writeCharts(dir: string, charts: readonly Chart[], onChart?: (done: number, total: number) => void): Promise<{ files: string[]; svgs: Map<string, string> }> {
  await mkdir(join(dir, 'charts'), { recursive: true });
  const files: string[] = [];
  const svgs = new Map<string, string>();
  let done = 0;
  for (const c of charts) {
    const svg = await renderSvg(c.spec, c.name);
    const base = join(dir, 'charts', c.name);
    await writeFile(`${base}.svg`, svg);
    await writeFile(`${base}.png`, svgToPng(svg));
    files.push(`${base}.svg`, `${base}.png`);
    svgs.set(c.name, svg);
    onChart?.(++done, charts.length);
  }
  return { files, svgs };
}

export function worstTable(s: SegmentResult, points: readonly string[]): Table {
  const present = points.filter((p) => s.worst.some((w) => w.pointsNs[p] !== null));
  return {
    title: `The ${s.worst.length} worst samples`,
    header: ['#', 'svID', 'smpCnt', 'second (UTC)', `${s.segment} (µs)`, 'first point at (UTC)', ...present.map((p) => `${p} (µs after first)`)],
    rows: s.worst.map((w, i) => {
      const times = present.map((p) => (w.pointsNs[p] === null ? null : BigInt(w.pointsNs[p]!)));
      const first = times.reduce<bigint | null>((a, t) => (t === null ? a : a === null || t < a ? t : a), null);
      return [String(i + 1), printable(w.svId), String(w.smpCnt), utcSecond(w.second), us(w.latencyNs), w.iso ?? '–',
        ...times.map((t) => (t === null || first === null ? '–' : us(Number(t - first))))];
    }),
    right: [0, 2, 4, ...present.map((_, i) => 6 + i)],
  };
}

export function chartNames(s: SegmentResult): { histogram: string; exceedance: string; perSecond: string } {
  return { histogram: `${s.segment}-histogram`, exceedance: `${s.segment}-exceedance`, perSecond: `${s.segment}-per-second` };
}

function segmentSection(r: AnalysisResult, s: SegmentResult, svgs: Map<string, string>): string {
  const n = chartNames(s);
  const under = s.histogram[0]?.count ?? 0, over = s.histogram.at(-1)?.count ?? 0;
  const lim = s.limitUs === null ? null : s.all.above.find((t) => t.thresholdUs === s.limitUs);
  const caption = [
    `${count(s.all.count)} samples; mean ${us(s.all.meanNs)} µs, p99.99 ${us(s.all.percentilesNs['p99.99'])} µs, max ${us(s.all.maxNs)} µs`,
    lim ? `; ${count(lim.count)} (${percent(lim.share)}) above ${s.limitUs} µs` : '',
    under > 0 ? `; ${count(under)} below 1 µs (not drawn)` : '',
    over > 0 ? `; ${count(over)} at 100 ms or more` : '',
  ].join('');
  const chart = (name: string) => `<div class="chart">${inlineSvg(svgs.get(name) ?? '')}</div>`;
  return `<h2 id="seg-${s.segment}">${s.segment} = ${s.to} − ${s.from}</h2>
<p class="caption">${escapeHtml(caption)}</p>
${chart(n.histogram)}
${chart(n.exceedance)}
${chart(n.perSecond)}
<h3>The worst samples</h3>
${htmlTable(worstTable(s, r.points))}`;
}

export function reportCharts(r: AnalysisResult): Chart[] {
  return r.segments.flatMap((s) => {
    const n = chartNames(s);
    return [
      { name: n.histogram, spec: histogramSpec(s.segment, [{ run: '', data: s.histogram }]) },
      { name: n.exceedance, spec: exceedanceSpec(s.segment, [{ run: '', data: s.exceedance }], s.limitUs) },
      { name: n.perSecond, spec: perSecondSpec(s.segment, [{ run: '', data: s.perSecondMax }], s.limitUs, r.join === 'iter') },
    ];
  });
}

export function renderReportHtml(r: AnalysisResult, svgs: Map<string, string>): string {
  const explain = r.explanations ?? [];
  const tables = [verdictTable(r), segmentTable(r), streamTable(r, printable)];
  return renderPage({
    title: 'svtrace report',
    verdict: r.passed ? 'PASS' : 'FAIL',
    meta: [
      `${count(r.samples)} samples, ${r.streams.length} stream(s), points ${r.points.join(' ')}, join by ${r.join}, clock ${r.clock}`,
      ...(r.firstSecond !== null && r.lastSecond !== null && r.join === 'time' ? [`${utcSecond(r.firstSecond)} .. ${utcSecond(r.lastSecond)}`] : []),
      ...r.records.map((x) => `record ${printable(x.dir)}: ${printable(x.role)} on ${printable(x.host)}, run ${printable(x.runId)}, ${count(x.rows)} rows`),
      ...clockLines(r, printable),
    ],
    warnings: r.warnings,
    sections: [
      firstScreenHtml([{ label: '', view: pathView(r) }]),
      ...tables.map((t, i) => `<h2>${escapeHtml(t.title)}</h2>\n${htmlTable(t, i === 0 ? 2 : -1)}`),
      ...r.segments.map((s) => segmentSection(r, s, svgs)),
      ...(explain.length > 0 ? [explainSectionHtml(explain)] : []),
    ],
    data: analysisJson(r),
  });
}

/** Renders an analysis result (its explanations included) into `dir`; reads no input file. */
export async function writeReport(r: AnalysisResult, dir: string, onProgress?: (done: number, total: number) => void): Promise<ReportFiles> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new SvtraceError('REPORT_OUT_DIR', `cannot create ${printable(dir)}: ${(e as Error).message}`, { hint: 'Give a writable directory with --out.', cause: e });
  }
  const { files, svgs } = await writeCharts(dir, reportCharts(r), onProgress);
  const html = join(dir, 'report.html'), markdown = join(dir, 'summary.md'), json = join(dir, 'summary.json');
  await writeFile(html, renderReportHtml(r, svgs));
  await writeFile(markdown, renderSummaryMarkdown(r));
  // explanations add a key; the analysis keys stay as they are
  await writeFile(json, JSON.stringify(analysisJson(r), null, 2) + '\n');
  return { html, markdown, json, charts: files };
}
