/**
 * Printing an explain run: the cause table and the worst samples as text,
 * and the same data as JSON (bigints as decimal strings). Pure.
 */
import { groupDigits, printable, renderTable } from '../util/text.ts';
import { topByCount, type Explanation } from './explain.ts';
import type { ExplainRunResult } from './run.ts';

const us = (ns: number | null) => (ns === null ? '-' : groupDigits(ns / 1000));

export function renderExplainSummary(r: ExplainRunResult, worst = 5): string {
  const out: string[] = [];
  out.push(`${r.segment}: ${groupDigits(r.samples)} samples, p50 ${us(r.p50Ns)} µs, p99 ${us(r.p99Ns)} µs, max ${us(r.maxNs)} µs; ${groupDigits(r.late)} over ${us(r.thresholdNs)} µs, ${groupDigits(r.explanations.length)} explained`);
  if (r.recorder) {
    const rec = r.recorder;
    out.push(`recorder: ${groupDigits(rec.events)} events (${groupDigits(rec.eventsPerS)}/s)${rec.engine === 'bpf' ? ', bpf engine' : ''}, ${rec.engine === 'bpf' ? 'lost to a full ring' : 'bpftrace lost'} ${groupDigits(rec.lostEvents)},${rec.skippedRuns ? ` ${groupDigits(rec.skippedRuns)} runs skipped by the kernel,` : ''} ${rec.kernelEvents === null ? 'kernel count unknown' : `${groupDigits(rec.lostInRun)} lost while running, ${groupDigits(rec.notReceivedAtStop)} still in flight at stop`}${rec.ringOverflowed ? `, ${groupDigits(rec.ringOverflowed)} pushed out of a full ring` : ''}${rec.shortSoftirqs ? `; ${groupDigits(rec.shortSoftirqs)} softirqs under ${groupDigits((rec.softirqMinNs ?? 0) / 1000)} µs counted, not recorded` : ''}`);
  }
  out.push(`points: ${r.trace.points.map((p) => `${p.name} ${groupDigits(p.frames)} frames`).join(', ')}; ${groupDigits(r.unpaired)} without their other point${r.mismatched ? `, ${groupDigits(r.mismatched)} out of order` : ''}`);
  if (r.trace.lostEvents > 0 || r.trace.lostLines > 0) out.push(`points: ${r.recorder?.engine === 'bpf' ? 'lost to a full ring' : 'bpftrace lost'} ${groupDigits(r.trace.lostEvents)} events, ${groupDigits(r.trace.lostLines)} frames matched but not received`);
  if (r.causes.length > 0) {
    out.push('', 'causes by total delay:');
    out.push(renderTable(['cause', 'samples', 'total µs', 'max µs'], r.causes.slice(0, 10).map((c) => [c.key, groupDigits(c.count), us(c.totalDelayNs), us(c.maxDelayNs)]), new Set([1, 2, 3])).trimEnd());
    const byCount = topByCount(r.causes).slice(0, 5).map((c) => `${c.key} (${groupDigits(c.count)})`);
    out.push('', `most frequent: ${byCount.join(', ')}`);
  }
  if (r.worst.length > 0) {
    out.push('', `worst ${Math.min(worst, r.worst.length)}:`);
    for (const w of r.worst.slice(0, worst)) out.push(`  ${printable(w.explanation.svId)} smpCnt ${w.explanation.smpCnt}: ${w.explanation.text}`);
  }
  return out.join('\n') + '\n';
}

function plainExplanation(x: Explanation): unknown {
  const point = (p: Explanation['from']) => ({ point: p.point, cpu: p.cpu, tMonoNs: String(p.tMonoNs), ...(p.tNs !== undefined ? { tNs: String(p.tNs) } : {}) });
  return { ...x, from: point(x.from), to: point(x.to) };
}

/** The result as JSON-ready data (without the Chrome traces, which go to their own files). */
export function explainJson(r: ExplainRunResult): unknown {
  return {
    segment: r.segment, thresholdNs: r.thresholdNs, samples: r.samples, late: r.late, unpaired: r.unpaired, mismatched: r.mismatched, p50Ns: r.p50Ns, p99Ns: r.p99Ns, maxNs: r.maxNs,
    causes: r.causes, recorder: r.recorder, warnings: r.warnings,
    points: { lostEvents: r.trace.lostEvents, lostLines: r.trace.lostLines, frames: r.trace.points.map((p) => ({ point: p.name, frames: p.frames, kernelFrames: p.kernelFrames })) },
    worst: r.worst.map((w) => plainExplanation(w.explanation)),
    explanations: r.explanations.map(plainExplanation),
  };
}
