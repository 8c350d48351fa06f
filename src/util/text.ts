/** Small text helpers shared by every renderer. */

/**
 * A string from the wire made safe for a terminal or a log: printable ASCII
 * stays, a backslash and everything else becomes an escape (\\, \n, \xNN).
 * Nothing a capture carries can move the cursor or change colours.
 */
export function printable(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) out += '\\\\';
    else if (c >= 0x20 && c < 0x7f) out += s[i];
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x100) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += '\\u' + c.toString(16).padStart(4, '0');
  }
  return out;
}

/** A CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF. */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}

/** ISO-8601 UTC with nanoseconds from seconds + ns within the second. */
export function isoNs(sec: number, nsec: number): string {
  const iso = new Date(sec * 1000).toISOString(); // 2020-07-16T10:11:12.000Z
  return iso.slice(0, 19) + '.' + String(nsec).padStart(9, '0') + 'Z';
}

export function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

/** Renders rows as an aligned text table; `right` lists right-aligned columns. */
export function renderTable(header: string[], rows: string[][], right: Set<number> = new Set()): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

/** Thousands separated by a thin space: 352 533. */
export function groupDigits(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
}
