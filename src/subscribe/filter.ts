/**
 * Which streams a subscriber keeps: `--streams` values are svIDs, or APPIDs
 * written as a range (4000..40ff), with 0x (0x4000) or with `appid:`
 * (appid:4000). A bare value is an svID, so svID "4001" is not taken for
 * APPID 0x4001. An empty list keeps every stream.
 */
import { SvtraceError } from '../errors.ts';

export interface StreamFilter {
  svIds: Set<string>;
  appIds: Uint8Array; // 65536 flags
  any: boolean;
}

export function parseStreamFilter(values: readonly string[]): StreamFilter {
  const f: StreamFilter = { svIds: new Set(), appIds: new Uint8Array(65536), any: values.length === 0 };
  for (const raw of values) {
    const v = raw.trim();
    const range = /^(?:appid:)?(?:0x)?([0-9a-fA-F]{1,4})\.\.(?:0x)?([0-9a-fA-F]{1,4})$/.exec(v);
    const single = /^(?:appid:(?:0x)?|0x)([0-9a-fA-F]{1,4})$/.exec(v);
    if (range || single) {
      const from = parseInt((range ?? single)![1]!, 16);
      const to = range ? parseInt(range[2]!, 16) : from;
      if (to < from) throw new SvtraceError('USAGE', `APPID range ${v} runs backwards`, { hint: 'write the lower APPID first: 4000..40ff' });
      f.appIds.fill(1, from, to + 1);
    } else if (v.startsWith('appid:')) {
      throw new SvtraceError('USAGE', `"${v.slice(0, 40)}" is not an APPID`, { hint: 'write appid:4000 or a range 4000..40ff (hex)' });
    } else if (v.length > 0) {
      f.svIds.add(v.startsWith('svid:') ? v.slice(5) : v);
    }
  }
  return f;
}

export function keeps(f: StreamFilter, appId: number, svId: string): boolean {
  return f.any || f.appIds[appId] === 1 || f.svIds.has(svId);
}
