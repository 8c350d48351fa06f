/**
 * Verdicts: config limits → rules → pass/fail. A key naming a segment limits
 * its max by default (every sample within the limit: the SEAPATH CI rule),
 * or the percentile given by `at`. A key `<segment>_p<int>[_<frac>]` (TOML
 * keys cannot hold dots: `Ttot_p99_99 = 150` is p99.99 ≤ 150 µs) limits that
 * percentile. A limit on a segment whose points were not recorded is
 * reported as not measured and does not fail the run; a key that names no
 * segment at all is a usage error (a typo must not pass silently).
 */
import { SvtraceError } from '../errors.ts';
import { printable } from '../util/text.ts';
import type { VerdictConfig, VerdictResult } from './types.ts';

export interface VerdictRule {
  key: string;
  segment: string;
  /** 'max' or a percentile in (0, 100]. */
  statistic: 'max' | number;
  limitUs: number;
}

export const DEFAULT_VERDICTS: VerdictConfig = { limitsUs: { Ttot: 200, Thyp: 100, Tsub: 100 }, maxMissing: 0 };

const PERCENTILE_KEY = /^(.+)_p(\d{1,2}|100)(?:_(\d{1,6}))?$/;

export function parsePercentile(s: string): number {
  const m = /^p(\d{1,3}(?:\.\d{1,6})?)$/.exec(s);
  const p = m ? Number(m[1]) : NaN;
  if (!(p > 0 && p <= 100)) {
    throw new SvtraceError('ANALYZE_BAD_PERCENTILE', `${printable(s)} is not a percentile`, { hint: 'Write it as p99, p99.9 or p99.99 (or max).' });
  }
  return p;
}

export function statisticName(s: 'max' | number): string {
  return s === 'max' ? 'max' : `p${s}`;
}

export function verdictRules(cfg: VerdictConfig, segmentNames: readonly string[]): VerdictRule[] {
  const known = new Set(segmentNames);
  const plain: 'max' | number = cfg.at === undefined || cfg.at === 'max' ? 'max' : parsePercentile(cfg.at);
  const rules: VerdictRule[] = [];
  for (const [key, limitUs] of Object.entries(cfg.limitsUs)) {
    if (!(limitUs > 0)) {
      throw new SvtraceError('ANALYZE_BAD_LIMIT', `verdict limit ${printable(key)} = ${limitUs} is not a positive number of µs`, { hint: 'Give limits in µs, e.g. Ttot = 200.' });
    }
    if (known.has(key)) {
      rules.push({ key, segment: key, statistic: plain, limitUs });
      continue;
    }
    const m = PERCENTILE_KEY.exec(key);
    if (m && known.has(m[1]!)) {
      const p = Number(`${m[2]}${m[3] === undefined ? '' : '.' + m[3]}`);
      if (p > 0 && p <= 100) {
        rules.push({ key, segment: m[1]!, statistic: p, limitUs });
        continue;
      }
    }
    throw new SvtraceError('ANALYZE_UNKNOWN_SEGMENT', `verdict limit ${printable(key)} names no segment`, {
      hint: `Known segments: ${segmentNames.join(', ')}; for a percentile write <segment>_p99_99 (p99.99). Define custom segments with --segment NAME=FROM:TO.`,
    });
  }
  return rules;
}

/** The limit (µs) that makes a sample of `segment` late: the max rule's, else the smallest. */
export function lateLimitUs(rules: readonly VerdictRule[], segment: string): number | null {
  const mine = rules.filter((r) => r.segment === segment);
  if (mine.length === 0) return null;
  const max = mine.find((r) => r.statistic === 'max');
  return max ? max.limitUs : Math.min(...mine.map((r) => r.limitUs));
}

/**
 * `measureNs(segment, statistic)` returns the measured ns, or null when the
 * segment was not measured.
 */
export function evaluateVerdicts(
  rules: readonly VerdictRule[],
  measureNs: (segment: string, statistic: 'max' | number) => number | null,
  missing: number,
  maxMissing: number,
): VerdictResult[] {
  const out: VerdictResult[] = rules.map((r) => {
    const ns = measureNs(r.segment, r.statistic);
    const measured = ns === null ? null : ns / 1000;
    const stat = statisticName(r.statistic);
    return {
      name: `${r.segment} ${stat} ≤ ${r.limitUs} µs`,
      kind: 'limit',
      segment: r.segment,
      statistic: stat,
      limit: r.limitUs,
      unit: 'us',
      measured,
      status: measured === null ? 'not-measured' : measured <= r.limitUs ? 'pass' : 'fail',
    };
  });
  out.push({
    name: `missing samples ≤ ${maxMissing}`,
    kind: 'missing',
    segment: null,
    statistic: 'missing',
    limit: maxMissing,
    unit: 'samples',
    measured: missing,
    status: missing <= maxMissing ? 'pass' : 'fail',
  });
  return out;
}
