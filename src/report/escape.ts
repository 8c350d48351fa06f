/**
 * Escaping for every output a report writes. Strings that came off the wire
 * (svIDs) or from a manifest (hosts, runIds, directory names) go through one
 * of these before they reach HTML, SVG, Markdown or JSON-in-HTML.
 */
import { printable } from '../util/text.ts';

/** Text or attribute value for HTML/SVG: & < > " ' become entities. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

/** A wire string for HTML: first made printable (controls become \xNN), then escaped. */
export function wireHtml(s: string): string {
  return escapeHtml(printable(s));
}

/** A wire string for Markdown: made printable, then escaped with escapeMarkdown. */
export function wireMarkdown(s: string): string {
  return escapeMarkdown(printable(s));
}

/**
 * Text for Markdown: HTML (`& < >`), table cells (`|`), links and images
 * (`[ ]`), code and emphasis (`` ` * _ ``) and escapes (`\`) become numeric
 * entities; the rest stays readable in a raw CI log.
 */
export function escapeMarkdown(s: string): string {
  return s.replace(/[&<>|`*_[\]\\]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON to embed in `<script type="application/json">`: `<`, `>`, `&` and the
 * JS line separators are \u-escaped, so no `</script>` or `<!--` can appear.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
