/** `svtrace decode FILE`: one row per ASDU, as a table, CSV or JSON. */
import type { Command } from 'commander';
import { readCaptureStream } from '../pcap/index.ts';
import { createDecoder, type DecodeFormat } from '../capture/decode-rows.ts';
import { SvtraceError } from '../errors.ts';
import { action } from './run.ts';
import { pacedChunks, stdoutOutput } from './output.ts';
import { collect, parseAppIdList } from './parse.ts';
import { printable } from '../util/text.ts';

export function register(program: Command): void {
  program
    .command('decode')
    .description('print every ASDU of the SV frames in a capture (pcap or pcapng; - for stdin)')
    .argument('<file>', 'capture file, or - for stdin')
    .option('-f, --format <format>', 'table, csv or json', 'table')
    .option('--svid <svid>', 'only this svID (repeat for several)', collect, [])
    .option('--appid <appid>', 'only these APPIDs: hex (4000, 0x4000), lists (4000,4001), ranges (4000..40ff); repeatable', collect, [])
    .addHelpText('after', '\nExample:\n  svtrace decode capture.pcap --svid MU01 --format csv > mu01.csv\n  tcpdump -i eth1 -w - ether proto 0x88ba | svtrace decode -')
    .action(action(async (file: string, opts: { format: string; svid?: string[]; appid?: string[] }) => {
      if (!['table', 'csv', 'json'].includes(opts.format)) {
        throw new SvtraceError('USAGE', `unknown format "${printable(opts.format)}"`, { hint: 'use --format table, csv or json' });
      }
      const out = stdoutOutput();
      const decoder = createDecoder({ svIds: opts.svid, appIds: opts.appid?.length ? parseAppIdList(opts.appid) : undefined }, opts.format as DecodeFormat, out.write);
      const summary = await readCaptureStream(pacedChunks(file, out), decoder.onPacket);
      const result = decoder.end();
      await out.drained();
      if (summary.truncated) {
        process.stderr.write(`svtrace: warning: ${file} ends inside a record at byte ${summary.truncated.offset}; the ${result.rows} rows before it were printed\n`);
      }
      if (result.malformed) {
        process.stderr.write(`svtrace: warning: ${result.malformed} malformed SV frame(s) skipped, e.g.\n${result.firstErrors.map((e) => '  ' + printable(e)).join('\n')}\n`);
      }
      if (summary.packets > 0 && result.rows === 0 && !opts.svid?.length && !opts.appid?.length) {
        process.stderr.write(`svtrace: warning: no SV frames among the ${summary.packets} packets of ${file}\n`);
      }
    }));
}
