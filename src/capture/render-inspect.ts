/** Human rendering of an InspectResult. Every svID goes through printable(). */
import { groupDigits, hex4, printable, renderTable } from '../util/text.ts';
import type { InspectResult, StreamReport } from './inspect.ts';

function gapsText(s: StreamReport): string {
  if (s.gaps.length === 0) return '';
  const shown = s.gaps.slice(0, 10).map((g) => (g.fromSmpCnt === g.toSmpCnt ? `${g.fromSmpCnt}` : `${g.fromSmpCnt}..${g.toSmpCnt}`) + ` (iter ${g.iter}${g.missing !== g.size ? `, ${g.missing} still missing` : ''})`);
  const more = s.gaps.length - shown.length + s.gapsNotListed;
  return `    gaps: ${shown.join(', ')}${more > 0 ? `, and ${more} more` : ''}\n`;
}

export function renderInspect(r: InspectResult, source: string): string {
  let out = `${printable(source)}: ${r.format}, ${groupDigits(r.packets)} packets, ${groupDigits(r.svFrames)} SV frames`;
  if (r.otherFrames) out += `, ${groupDigits(r.otherFrames)} other`;
  out += `, ${r.streams.length} stream${r.streams.length === 1 ? '' : 's'}\n`;
  if (r.truncated) {
    out += `warning: the capture ends inside a record at byte ${r.truncated.offset} (${r.truncated.availableBytes} of ${r.truncated.expectedBytes} bytes); everything before it is counted\n`;
  }
  if (r.malformed.count) {
    out += `warning: ${r.malformed.count} malformed SV frame(s): ${Object.entries(r.malformed.byCode).map(([c, n]) => `${c} ×${n}`).join(', ')}\n`;
    for (const m of r.malformed.first.slice(0, 5)) out += `  packet ${m.packet}: ${m.code} at byte ${m.offset}: ${printable(m.detail)}\n`;
  }
  if (r.streams.length === 0) return out;
  out += '\n';
  const rows = r.streams.map((s) => [
    printable(s.svId), hex4(s.appId), s.srcMac, s.vlan ? `${s.vlan.id}/${s.vlan.priority}` : '-',
    groupDigits(s.frames), groupDigits(s.samples), s.asdusPerFrame.join(','),
    s.rateHz === null ? '-' : s.rateHz.toFixed(1), s.smpCnt ? `${s.smpCnt.min}..${s.smpCnt.max}` : '-', String(s.wraps),
    groupDigits(s.missing), groupDigits(s.duplicates), groupDigits(s.outOfOrder), `${s.confRev}${s.confRevChanges ? ` (${s.confRevChanges} changes)` : ''}`,
  ]);
  out += renderTable(
    ['svID', 'APPID', 'source', 'VLAN/pri', 'frames', 'samples', 'ASDU/fr', 'rate/s', 'smpCnt', 'wraps', 'missing', 'dup', 'reorder', 'confRev'],
    rows, new Set([4, 5, 7, 9, 10, 11, 12]),
  );
  out += '\npacing (µs between frames of a stream)\n';
  out += renderTable(['svID', 'APPID', 'min', 'mean', 'p50', 'p99', 'max', 'stddev', 'jitter p50', 'jitter p99', 'jitter max'], r.streams.map((s) => {
    const p = s.pacingUs;
    const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2));
    return [printable(s.svId), hex4(s.appId), f(p?.min), f(p?.mean), f(p?.p50), f(p?.p99), f(p?.max), f(p?.stddev), f(p?.jitterP50), f(p?.jitterP99), f(p?.jitterMax)];
  }), new Set([2, 3, 4, 5, 6, 7, 8, 9, 10]));
  out += '(jitter = |gap − mean gap|)\n';
  const gaps = r.streams.map((s) => (s.gaps.length ? `  ${printable(s.svId)} ${hex4(s.appId)}:\n${gapsText(s)}` : '')).join('');
  if (gaps) out += `\nmissing samples\n${gaps}`;
  return out;
}
