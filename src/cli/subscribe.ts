/** `svtrace subscribe`: the timestamp logger. Every sample's T3 (kernel RX) and T4 (application), with sequence checks, a record, metrics. */
import type { Command } from 'commander';
import { loadConfig } from '../config/load.ts';
import { runSubscribe } from '../subscribe/run.ts';
import { SvtraceError } from '../errors.ts';
import { action } from './run.ts';
import { interruptSignal, progressLine } from './progress.ts';
import { collect } from './parse.ts';
import { groupDigits, hex4, printable, renderTable } from '../util/text.ts';

/** An integer flag, or a usage error that names it (never NaN passed on). */
function intFlag(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new SvtraceError('USAGE', `${flag} ${printable(v)} is not a whole number`, { hint: flag === '--fifo' ? 'e.g. --fifo 50 (1..99)' : 'e.g. --cpu 1' });
  return n;
}

export function register(program: Command): void {
  program
    .command('subscribe')
    .description('receive SV on an interface: per sample kernel RX (T3) and application (T4) timestamps, sequence checks, a record')
    .option('-c, --config <file>', 'TOML config (default /etc/svtrace.toml when it exists)')
    .option('-i, --interface <if>', 'interface to receive on')
    .option('--netns <name>', 'network namespace of the interface (ip netns)')
    .option('-d, --duration <s>', 'seconds to receive (default: until Ctrl-C)')
    .option('--streams <spec>', 'keep only these streams: an svID, or APPIDs as 0x4000 / 4000..40ff (repeatable)', collect, [])
    .option('-r, --record <dir>', 'record T3 and T4 of every sample into this new directory')
    .option('-w, --pcap <file>', 'also write every received frame to this pcapng file (kernel RX time, ns)')
    .option('--fifo <prio>', 'SCHED_FIFO priority of the receive thread (1..99), as a protection application runs')
    .option('--cpu <n>', 'pin the receive thread to this CPU')
    .option('--hardware', 'use NIC hardware RX timestamps for T3')
    .option('--no-promisc', 'do not ask for promiscuous mode (by default the socket holds it while open, as libpcap does)')
    .option('--metrics <host:port>', 'serve Prometheus metrics while receiving (default host 127.0.0.1; port 0 picks a free one)')
    .option('--json', 'print the summary as JSON')
    .addHelpText('after', '\nExamples:\n  svtrace subscribe -i eth1 --streams 4000..4007 -d 60 --record runs/vm1\n  svtrace subscribe -i eth1 --metrics 127.0.0.1:9465')
    .action(action(async (f: { config?: string; interface?: string; netns?: string; duration?: string; streams: string[]; record?: string; pcap?: string; fifo?: string; cpu?: string; hardware?: boolean; promisc: boolean; metrics?: string; json?: boolean }) => {
      const duration = f.duration === undefined ? undefined : Number(f.duration);
      if (duration !== undefined && !(duration > 0)) throw new SvtraceError('USAGE', `--duration ${f.duration} is not a positive number of seconds`, { hint: 'e.g. -d 60' });
      const config = loadConfig(f.config, {
        'subscribe.interface': f.interface, 'subscribe.netns': f.netns, 'subscribe.duration_s': duration,
        'subscribe.streams': f.streams.length ? f.streams : undefined, 'subscribe.record': f.record,
        'subscribe.timestamping': f.hardware ? 'hardware' : undefined, 'subscribe.metrics': f.metrics,
        'subscribe.fifo_priority': intFlag(f.fifo, '--fifo'), 'subscribe.cpu': intFlag(f.cpu, '--cpu'),
      });
      const s = config.subscribe;
      if (!s.interface) throw new SvtraceError('USAGE', 'no interface to receive on', { hint: 'give -i IFACE (and --netns NAME if it lives in a namespace), or subscribe.interface in the config' });
      const progress = progressLine();
      const stop = interruptSignal();
      try {
        const r = await runSubscribe({
          ifname: s.interface, netns: s.netns, streams: s.streams, durationS: s.duration_s ?? Infinity, recordDir: s.record,
          rcvBufBytes: s.rcvbuf_bytes, pcapPath: f.pcap, fifoPriority: s.fifo_priority || undefined, cpu: s.cpu >= 0 ? s.cpu : undefined, timestamping: s.timestamping, promiscuous: f.promisc, command: process.argv.slice(2), signal: stop.signal,
          metrics: s.metrics, limitsUs: config.verdicts.limits_us,
          onMetrics: (url) => process.stderr.write(`svtrace: metrics on ${url}\n`),
          onReady: () => process.stderr.write(`svtrace: receiving on ${s.interface}${s.netns ? ` (netns ${s.netns})` : ''}\n`),
          onProgress: (x) => progress.update(`subscribe ${x.elapsedS.toFixed(0)} s: ${groupDigits(x.frames)} frames, ${groupDigits(x.samples)} samples, ${x.streams} streams, missing ${groupDigits(x.missing)}, kernel drops ${x.kernelDrops}`),
        });
        progress.done();
        if (f.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return; }
        process.stdout.write(renderTable(['svID', 'APPID', 'frames', 'samples', 'missing', 'dup', 'reorder', 'wraps', 'confRev changes'], r.streams.map((x) => [
          printable(x.svId), hex4(x.appId), groupDigits(x.frames), groupDigits(x.samples), groupDigits(x.missing), groupDigits(x.duplicates), groupDigits(x.outOfOrder), String(x.wraps), String(x.confRevChanges),
        ]), new Set([2, 3, 4, 5, 6, 7, 8])));
        process.stdout.write(`${groupDigits(r.frames)} frames, ${groupDigits(r.samples)} samples; kernel drops ${r.rx.kernelDrops}; malformed ${r.malformed}; filtered ${r.filtered}\n`);
        for (const x of r.streams.filter((x) => x.gaps.length)) {
          process.stdout.write(`  ${printable(x.svId)} gaps: ${x.gaps.slice(0, 10).map((g) => `${g.fromSmpCnt}..${g.toSmpCnt} (iter ${g.iter})`).join(', ')}${x.gaps.length > 10 ? ', …' : ''}\n`);
        }
        if (r.recordDir) process.stdout.write(`record: ${r.recordDir}\n`);
        if (r.rx.kernelDrops > 0) process.stderr.write(`svtrace: warning: the kernel dropped ${r.rx.kernelDrops} frames (receive buffer full); raise subscribe.rcvbuf_bytes\n`);
      } finally {
        stop.dispose();
      }
    }));
}
