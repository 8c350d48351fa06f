/**
 * The summary of an analysis as tables (segments, verdicts, streams), and
 * their text (terminal) and Markdown renderings. Wire strings pass through
 * the escaper of the target format; nothing else in the tables is free text.
 */
import { printable, renderTable } from '../util/text.ts';
import type { AnalysisResult, SegmentResult } from '../analyze/index.ts';
import { escapeMarkdown, wireMarkdown } from './escape.ts';
import { count, percent, statusMark, us, utcSecond } from './format.ts';
import { explainMarkdown } from './explain.ts';

export interface Table {
  title: string;
  header: string[];
  rows: string[][];
  /** Indices of right-aligned (numeric) columns. */
  right: number[];
}

/** A segment's clock cell: ± the offsets' uncertainty when corrected, "no offset" across machines without one, "one machine" within one. */
export function segmentClockCell(c: SegmentResult['clock']): string {
  if (!c.crossMachine) return 'one machine';
  if (!c.corrected) return 'no offset';
  return c.uncertaintyNs === null ? '± unknown' : `±${us(c.uncertaintyNs)}`;
}

export function segmentTable(r: AnalysisResult): Table {
  // the clock column only when the records come from more than one machine
  const clocks = r.clocks.length > 1;
  const rows = r.segments.map((s) => {
    const a = s.all;
    const lim = s.limitUs === null ? null : a.above.find((t) => t.thresholdUs === s.limitUs);
    return [
      s.segment, `${s.from}→${s.to}`, count(a.count), us(a.minNs), us(a.meanNs), us(a.percentilesNs.p50), us(a.percentilesNs.p99),
      us(a.percentilesNs['p99.9']), us(a.percentilesNs['p99.99']), us(a.maxNs),
      lim ? `${count(lim.count)} (${percent(lim.share)}) > ${s.limitUs}` : '–',
      a.longestLateRun ? count(a.longestLateRun.length) : '–', a.negative > 0 ? count(a.negative) : '0',
      ...(clocks ? [segmentClockCell(s.clock)] : []),
    ];
  });
  return {
    title: 'Latency per segment (µs, all streams)',
    header: ['segment', 'points', 'samples', 'min', 'mean', 'p50', 'p99', 'p99.9', 'p99.99', 'max', 'late (> limit µs)', 'longest late run', 'negative', ...(clocks ? ['clock (± µs)'] : [])],
    rows,
    right: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, ...(clocks ? [13] : [])],
  };
}

const msText = (ns: number) => `${ns < 0 ? '−' : '+'}${(Math.abs(ns) / 1e6).toFixed(3)} ms`;

/** One line per machine whose clock was corrected onto the reference, and which machines are the reference. */
export function clockLines(r: AnalysisResult, wire: (s: string) => string): string[] {
  const corrected = r.clocks.filter((c) => c.status === 'corrected');
  if (corrected.length === 0) return [];
  const reference = r.clocks.filter((c) => c.status === 'reference').map((c) => `"${wire(c.machine)}"`).join(', ') || 'none';
  return corrected.map((c) => `clock of "${wire(c.machine)}" (${c.points.join(' ')}): ${msText(c.offsetNs ?? 0)} ${c.uncertaintyNs === null ? '± unknown' : `±${(c.uncertaintyNs / 1e6).toFixed(3)} ms`}`
    + `${c.driftNsPerS === null ? '' : `, drifting ${(c.driftNsPerS / 1e3).toFixed(3)} µs/s (interpolated between ${c.measurements} measurements)`}`
    + `, ${c.source === 'record' ? 'measured (its records)' : 'given (--clock-offset / [report] clock_offsets)'}; its times corrected onto the clock of ${reference} before the join`);
}

export function verdictTable(r: AnalysisResult): Table {
  return {
    title: `Verdicts: ${r.passed ? 'PASS' : 'FAIL'}`,
    header: ['verdict', 'measured', 'result'],
    rows: r.verdicts.map((v) => [v.name, v.measured === null ? 'not measured' : v.unit === 'us' ? `${us(v.measured * 1000)} µs` : count(v.measured), statusMark(v.status)]),
    right: [1],
  };
}

export function streamTable(r: AnalysisResult, wire: (s: string) => string): Table {
  return {
    title: 'Streams',
    header: ['svID', 'rate', 'samples', 'missing', 'duplicates', 'reordered', ...r.points.map((p) => `lost@${p}`)],
    rows: r.streams.map((s) => [
      wire(s.svId), `${s.rate}/s`, count(s.samples), count(s.missing),
      count(s.points.reduce((n, p) => n + p.duplicates, 0)), count(s.points.reduce((n, p) => n + p.pacing.reordered, 0)),
      ...s.points.map((p) => count(p.lost)),
    ]),
    right: [1, 2, 3, 4, 5, ...r.points.map((_, i) => 6 + i)],
  };
}

function heading(r: AnalysisResult, wire: (s: string) => string): string[] {
  const span = r.firstSecond === null || r.lastSecond === null ? 'no samples'
    : r.join === 'time' ? `${utcSecond(r.firstSecond)} .. ${utcSecond(r.lastSecond)} (${count(r.lastSecond - r.firstSecond + 1)} s)`
    : `iter ${r.firstSecond} .. ${r.lastSecond}`;
  return [
    `${count(r.samples)} samples, ${r.streams.length} stream(s), points ${r.points.join(' ')}, ${span}, clock ${r.clock}, join by ${r.join}`,
    ...r.records.map((x) => `record ${wire(x.dir)}: ${wire(x.role)} on ${wire(x.host)}, run ${wire(x.runId)}, points ${x.points.join(' ')}, ${count(x.rows)} rows${x.state === 'closed' ? '' : `, ${x.state}`}`),
    ...clockLines(r, wire),
  ];
}

/** The summary for a terminal: aligned tables, wire strings made printable. */
export function renderSummaryText(r: AnalysisResult): string {
  const parts = [heading(r, printable).join('\n'), ''];
  for (const t of [segmentTable(r), verdictTable(r), streamTable(r, printable)]) {
    parts.push(t.title, renderTable(t.header, t.rows, new Set(t.right)));
  }
  // Messages are svtrace's own text; wire strings in them were made printable when the message was built.
  for (const w of r.warnings) parts.push(`warning ${w.code}: ${w.message}\n  hint: ${w.hint}`);
  return parts.join('\n') + '\n';
}

export function markdownTable(t: Table): string {
  const cell = (s: string) => s.replaceAll('|', '&#124;');
  const align = t.header.map((_, i) => (t.right.includes(i) ? '---:' : '---'));
  return [`| ${t.header.map(cell).join(' | ')} |`, `| ${align.join(' | ')} |`, ...t.rows.map((row) => `| ${row.map(cell).join(' | ')} |`)].join('\n') + '\n';
}

/** The summary as Markdown (CI logs, merge requests). */
export function renderSummaryMarkdown(r: AnalysisResult): string {
  const explain = r.explanations ?? [];
  const out = [`# svtrace report: ${r.passed ? 'PASS' : 'FAIL'}`, '', ...heading(r, wireMarkdown).map((l) => `- ${l}`), ''];
  for (const t of [verdictTable(r), segmentTable(r), streamTable(r, wireMarkdown)]) out.push(`## ${t.title}`, '', markdownTable(t));
  if (r.warnings.length > 0) {
    out.push('## Warnings', '');
    for (const w of r.warnings) out.push(`- **${w.code}**: ${escapeMarkdown(w.message)} _(${escapeMarkdown(w.hint)})_`);
    out.push('');
  }
  if (explain.length > 0) out.push(explainMarkdown(explain));
  return out.join('\n');
}
