/**
 * The tuning report for a terminal, in the style of `svtrace doctor`: one
 * line per finding, what it means beneath, and `-> fix` where there is one.
 */
import type { TuningLevel, TuningReport } from './types.ts';

const MARK: Record<TuningLevel, string> = { pass: 'pass   ', warn: 'warning', fail: 'FAIL   ', unknown: 'unknown' };
const INDENT = ' '.repeat(9);

export function renderTuning(r: TuningReport): string {
  const lines: string[] = [];
  for (const f of r.findings) {
    lines.push(`${MARK[f.level]}  ${f.check}${f.subject ? ` (${f.subject})` : ''}: ${f.found}`);
    if (f.level !== 'pass') lines.push(`${INDENT}${f.meaning}`);
    if (f.fix && f.level !== 'pass') lines.push(`${INDENT}-> ${f.fix}`);
  }
  const c = r.counts;
  lines.push('', `tuning: ${c.pass} pass, ${c.warn} warning(s), ${c.fail} fail, ${c.unknown} unknown${r.root === '/' ? '' : ` (host tree at ${r.root})`}; read only, nothing was changed`);
  return lines.join('\n') + '\n';
}
