/** `svtrace inspect FILE`: the streams of a capture, their sequence and pacing. */
import type { Command } from 'commander';
import { readCaptureStream } from '../pcap/index.ts';
import { createInspector } from '../capture/inspect.ts';
import { inspectNative } from '../capture/inspect-native.ts';
import { renderInspect } from '../capture/render-inspect.ts';
import { action } from './run.ts';
import { pacedChunks, stdoutOutput } from './output.ts';
import { SvtraceError } from '../errors.ts';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('summarise the SV streams of a capture: rate, sequence (missing, duplicates, reorder, wraps), pacing')
    .argument('<file>', 'capture file (pcap or pcapng), or - for stdin')
    .option('--json', 'print the result as JSON')
    .option('--wrap <n>', 'smpCnt wrap value (default: learnt, e.g. 4000 at 50 Hz × 80)')
    .addHelpText('after', '\nExample:\n  svtrace inspect capture.pcap\n  tcpdump -i eth1 -w - ether proto 0x88ba | svtrace inspect --json -')
    .action(action(async (file: string, opts: { json?: boolean; wrap?: string }) => {
      let wrapAt: number | undefined;
      if (opts.wrap !== undefined) {
        wrapAt = Number(opts.wrap);
        if (!Number.isInteger(wrapAt) || wrapAt < 2 || wrapAt > 65536) {
          throw new SvtraceError('USAGE', `--wrap ${opts.wrap} is not a wrap value`, { hint: 'give the number of samples per second, e.g. --wrap 4000' });
        }
      }
      const out = stdoutOutput();
      // the C engine when it can answer exactly, else the TypeScript reference (stdin, damaged captures)
      let result = await inspectNative(file, { wrapAt });
      if ('fallback' in result) {
        const inspector = createInspector({ wrapAt });
        result = inspector.finish(await readCaptureStream(pacedChunks(file, out), inspector.onPacket));
      }
      out.write(opts.json ? JSON.stringify(result, null, 2) + '\n' : renderInspect(result, file));
      await out.drained();
    }));
}
