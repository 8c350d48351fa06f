/** Number formatting shared by the text, Markdown and HTML summaries. */
import { groupDigits } from '../util/text.ts';

/** ns → µs with a precision that suits the magnitude: 0.85, 58.3, 14 612. */
export function us(ns: number | null | undefined): string {
  if (ns === null || ns === undefined || !Number.isFinite(ns)) return '–';
  const v = ns / 1000;
  const a = Math.abs(v);
  if (a >= 1000) return groupDigits(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? '–' : groupDigits(n);
}

/** A share as a percentage with enough digits to show rare events: 0.73 %, 0.0011 %. */
export function percent(share: number): string {
  if (share === 0) return '0 %';
  const p = share * 100;
  if (p >= 10) return `${p.toFixed(1)} %`;
  if (p >= 0.1) return `${p.toFixed(2)} %`;
  return `${p.toPrecision(2)} %`;
}

/** Relative change from a to b: "−99.85 %", "+12.0 %", "±0" or "new". */
export function change(a: number | null, b: number | null): string {
  if (a === null || b === null) return '–';
  if (a === b) return '±0';
  if (a === 0) return 'new';
  const r = ((b - a) / Math.abs(a)) * 100;
  const sign = r < 0 ? '−' : '+';
  const m = Math.abs(r);
  return `${sign}${m >= 10 ? m.toFixed(1) : m.toFixed(2)} %`;
}

/** Seconds since the epoch → "2025-11-29 08:00:05Z". */
export function utcSecond(second: number): string {
  return new Date(second * 1000).toISOString().replace('T', ' ').replace('.000Z', 'Z');
}

/** A verdict status as a short mark. */
export function statusMark(status: string): string {
  return status === 'pass' ? 'PASS' : status === 'fail' ? 'FAIL' : 'n/a';
}
