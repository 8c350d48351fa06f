/**
 * One self-contained HTML page: inline CSS, inline SVG charts, tables, and
 * the full result as JSON in `<script type="application/json">` with `<`
 * escaped. No script runs, nothing is fetched: it opens offline, anywhere.
 */
import { escapeHtml, jsonForScript } from './escape.ts';
import type { Table } from './summary.ts';
import { FIRST_SCREEN_CSS } from './first-screen.ts';

const CSS = `
body{font-family:"DejaVu Sans",system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.6rem;margin:0 0 .3rem}h2{font-size:1.25rem;margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
h3{font-size:1.05rem;margin-top:1.4rem}
.verdict{display:inline-block;padding:.2rem .7rem;border-radius:4px;font-weight:bold;color:#fff;margin-left:.6rem;vertical-align:middle}
.PASS{background:#2e7d32}.FAIL{background:#c62828}.na{color:#777}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.86rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;white-space:nowrap}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.fail{color:#c62828;font-weight:bold}td.pass{color:#2e7d32}
.meta{color:#555;font-size:.9rem;margin:.1rem 0}.warn{background:#fff8e1;border-left:4px solid #f9a825;padding:.4rem .7rem;margin:.4rem 0;font-size:.9rem}
.chart svg{max-width:100%;height:auto}.caption{color:#555;font-size:.85rem;margin:.2rem 0 1rem}
.scroll{overflow-x:auto}
.tl-pair{display:flex;flex-wrap:wrap;gap:1rem}.tl{flex:1 1 480px;min-width:0}.tl svg{max-width:100%;height:auto}
.tl-key{white-space:nowrap;margin-right:.6rem}.tl-swatch{display:inline-block;width:.7em;height:.7em;margin-right:.25em;vertical-align:middle}
${FIRST_SCREEN_CSS}
`;

/** A table; every cell is escaped here (pass plain or printable() text, never pre-escaped HTML). */
export function htmlTable(t: Table, statusColumn = -1): string {
  const head = `<tr>${t.header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = t.rows.map((row) => `<tr>${row.map((c, i) => {
    const cls = [t.right.includes(i) ? 'num' : '', i === statusColumn ? c.toLowerCase() : ''].filter(Boolean).join(' ');
    return `<td${cls ? ` class="${cls}"` : ''}>${escapeHtml(c)}</td>`;
  }).join('')}</tr>`).join('\n');
  return `<div class="scroll"><table>\n${head}\n${body}\n</table></div>`;
}

/** An SVG from vega for inline use: no XML prolog, no namespace URLs (HTML5 knows SVG). */
export function inlineSvg(svg: string): string {
  return svg.replace(/<\?xml[^>]*>/, '').replace(/\s+xmlns(:xlink)?="[^"]*"/g, '');
}

export interface Page {
  title: string;
  verdict: 'PASS' | 'FAIL' | null;
  /** Lines of plain text (escaped here). */
  meta: string[];
  warnings: { code: string; message: string; hint: string }[];
  /** Already-built HTML sections (their text escaped by their builders). */
  sections: string[];
  data: unknown;
}

export function renderPage(p: Page): string {
  const badge = p.verdict === null ? '' : `<span class="verdict ${p.verdict}">${p.verdict}</span>`;
  const warnings = p.warnings.map((w) => `<div class="warn"><b>${escapeHtml(w.code)}</b>: ${escapeHtml(w.message)}<br><i>${escapeHtml(w.hint)}</i></div>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(p.title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(p.title)}${badge}</h1>
${p.meta.map((m) => `<p class="meta">${escapeHtml(m)}</p>`).join('\n')}
${warnings}
${p.sections.join('\n')}
<script type="application/json" id="svtrace-data">${jsonForScript(p.data)}</script>
</body>
</html>
`;
}
