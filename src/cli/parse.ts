/** Parsers for command-line values, with errors that say what to type. */
import { SvtraceError } from '../errors.ts';

/** APPIDs as hex (4000, 0x4000) or ranges (4000..40ff), comma or space separated. */
export function parseAppIdList(values: string[]): number[] {
  const out: number[] = [];
  for (const part of values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)) {
    const m = /^(?:0x)?([0-9a-fA-F]{1,4})(?:\.\.(?:0x)?([0-9a-fA-F]{1,4}))?$/.exec(part);
    if (!m) {
      throw new SvtraceError('USAGE', `"${part.slice(0, 40)}" is not an APPID or APPID range`, { hint: 'write APPIDs in hex: 4000, 0x4001, or a range 4000..40ff' });
    }
    const from = parseInt(m[1]!, 16);
    const to = m[2] === undefined ? from : parseInt(m[2], 16);
    if (to < from) throw new SvtraceError('USAGE', `APPID range ${part} runs backwards`, { hint: 'write the lower APPID first: 4000..40ff' });
    if (to - from > 0xffff) break;
    for (let a = from; a <= to; a++) out.push(a);
  }
  return out;
}

/** commander helper for repeatable options: --x a --x b → ['a', 'b']. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
