/** `svtrace publish`: real SV streams on an interface, paced in C, T0 of every sample recorded. */
import type { Command } from 'commander';
import { loadConfig, } from '../config/load.ts';
import { streamsSpec } from '../config/resolve.ts';
import { expandStreams } from '../publish/streams.ts';
import { runPublish } from '../publish/run.ts';
import { runReplay } from '../publish/replay.ts';
import { renderReplay, replayWarnings } from '../publish/replay-render.ts';
import { SvtraceError } from '../errors.ts';
import { action } from './run.ts';
import { collect } from './parse.ts';
import { interruptSignal, progressLine } from './progress.ts';
import { groupDigits, renderTable } from '../util/text.ts';

interface Flags {
  config?: string; interface?: string; netns?: string; duration?: string; streams?: string; svid?: string; appid?: string;
  dstMac?: string; vlan?: string; priority?: string; freq?: string; spc?: string; asdus?: string; confRev?: string; smpSynch?: string;
  simulated?: boolean; drop?: string; spin?: string; fifo?: string; cpu?: string; record?: string; json?: boolean;
  pcap?: string; loop?: string; speed?: string; repace?: boolean; only?: string[]; sendOther?: boolean; skipBad?: boolean;
}

/** Flags that describe synthetic streams, meaningless when a capture is replayed. */
const SYNTHETIC_FLAGS: Array<[keyof Flags, string]> = [
  ['appid', '--appid'], ['dstMac', '--dst-mac'], ['vlan', '--vlan'], ['priority', '--priority'], ['freq', '--freq'], ['spc', '--spc'],
  ['asdus', '--asdus'], ['confRev', '--conf-rev'], ['smpSynch', '--smp-synch'], ['simulated', '--simulated'], ['drop', '--drop'], ['duration', '--duration'],
];
const REPLAY_FLAGS: Array<[keyof Flags, string]> = [['only', '--only'], ['sendOther', '--send-other'], ['skipBad', '--skip-bad']];

function parseLoop(v: string | undefined): number | 'forever' | undefined {
  if (v === undefined || v === 'forever') return v;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new SvtraceError('USAGE', `--loop ${v} is not a whole number ≥ 1 or "forever"`, { hint: 'e.g. --loop 3 or --loop forever' });
  return n;
}

const num = (v: string | undefined, name: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new SvtraceError('USAGE', `${name} ${v} is not a number`, { hint: `give ${name} a number` });
  return n;
};

export function register(program: Command): void {
  program
    .command('publish')
    .description('publish IEC 61850-9-2LE streams on an interface, paced by a C thread, recording T0 of every sample')
    .option('-c, --config <file>', 'TOML config (default /etc/svtrace.toml when it exists)')
    .option('-i, --interface <if>', 'interface to send on')
    .option('--netns <name>', 'network namespace of the interface (ip netns)')
    .option('-d, --duration <s>', 'seconds to publish (default: until Ctrl-C)')
    .option('-n, --streams <count>', 'number of streams (default 8)')
    .option('--svid <pattern>', 'svID pattern, {n} or {n:02} is the stream number (default MU{n:02})')
    .option('--appid <hex>', 'APPID of the first stream, hex (default 4000)')
    .option('--dst-mac <mac>', 'destination MAC of the first stream (default 01:0c:cd:04:00:00)')
    .option('--vlan <id>', 'VLAN id, or "none" for untagged frames (default 0, priority-tagged)')
    .option('--priority <p>', '802.1Q priority (default 4)')
    .option('--freq <hz>', '50 or 60 (default 50)')
    .option('--spc <n>', 'samples per cycle, 80 or 256 (default 80)')
    .option('--asdus <n>', 'ASDUs per frame (default 1)')
    .option('--conf-rev <n>', 'confRev (default 1)')
    .option('--smp-synch <n>', 'smpSynch: 0 none, 1 local, 2 global (default 2)')
    .option('--simulated', 'set the Simulated bit (Reserved1 0x8000)')
    .option('--fifo <prio>', 'SCHED_FIFO priority of the transmit thread (1..99)')
    .option('--cpu <n>', 'pin the transmit thread to this CPU')
    .option('--spin <us>', 'busy-wait this many µs before each send (sharper pacing on machines with slow timer wake-ups; costs CPU)')
    .option('--drop <percent>', 'fault injection: leave out this share of frames at random, to test a subscriber')
    .option('-r, --record <dir>', 'record T0 of every sample into this new directory')
    .option('--pcap <file>', 'replay the SV frames of this capture (pcap or pcapng, - for stdin) instead of synthetic streams')
    .option('--loop <n>', 'with --pcap: replay N times, or "forever"; smpCnt and timing continue across loops (default 1)')
    .option('--speed <x>', 'with --pcap: replay X times as fast as captured (default 1)')
    .option('--repace', 'with --pcap: send each stream at its nominal period instead of the capture\'s timing')
    .option('--only <spec>', 'with --pcap: replay only these streams: an svID, or APPIDs as 0x4000 / 4000..40ff (repeatable), as subscribe --streams', collect)
    .option('--send-other', 'with --pcap: send the frames that are not SV too, as they are (default: skip and count them)')
    .option('--skip-bad', 'with --pcap: leave out malformed frames and frames over the MTU, and end quietly at a damaged record')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  svtrace publish -i eth1 -n 8 -d 60 --record runs/pub1\n  svtrace publish --netns svt-pub -i svtpub0 --vlan none --freq 60\n' +
      '  svtrace publish -i eth1 --pcap mu.pcap --loop forever --record runs/replay1\n  svtrace publish -i eth1 --pcap mu.pcap --streams 8 --svid \'MU{n:02}\' --repace\n\n' +
      'With --pcap, --streams N makes N copies of each captured stream, named by --svid ({svid} = the captured svID, {n} = the copy number; default {svid}_{n}).')
    .action(action(async (f: Flags) => {
      if (f.pcap !== undefined || loadConfig(f.config, {}).publish.pcap !== undefined) {
        await replay(f);
        return;
      }
      const given = [...REPLAY_FLAGS, ['loop', '--loop'], ['speed', '--speed'], ['repace', '--repace']].find(([k]) => f[k as keyof Flags] !== undefined);
      if (given) throw new SvtraceError('USAGE', `${given[1]} applies to a replayed capture, and no --pcap was given`, { hint: 'add --pcap FILE (or publish.pcap in the config), or leave it out' });
      const vlan = f.vlan === undefined ? undefined : f.vlan === 'none' ? false : num(f.vlan, '--vlan');
      const appid = f.appid === undefined ? undefined : parseInt(f.appid.replace(/^0x/i, ''), 16);
      if (f.appid !== undefined && !/^(0x)?[0-9a-fA-F]{1,4}$/.test(f.appid)) throw new SvtraceError('USAGE', `--appid ${f.appid} is not a hex APPID`, { hint: 'e.g. --appid 4000' });
      const config = loadConfig(f.config, {
        'streams.count': num(f.streams, '--streams'), 'streams.svid': f.svid, 'streams.appid': appid, 'streams.dst_mac': f.dstMac,
        'streams.vlan_id': vlan, 'streams.vlan_priority': num(f.priority, '--priority'), 'streams.frequency': num(f.freq, '--freq'),
        'streams.samples_per_cycle': num(f.spc, '--spc'), 'streams.asdus_per_frame': num(f.asdus, '--asdus'), 'streams.conf_rev': num(f.confRev, '--conf-rev'),
        'streams.smp_synch': num(f.smpSynch, '--smp-synch'), 'streams.simulated': f.simulated,
        'publish.interface': f.interface, 'publish.netns': f.netns, 'publish.duration_s': num(f.duration, '--duration'),
        'publish.fifo_priority': num(f.fifo, '--fifo'), 'publish.spin_us': num(f.spin, '--spin'), 'publish.cpu': num(f.cpu, '--cpu'), 'publish.record': f.record,
      });
      const p = config.publish;
      if (p.loop !== 1 || p.speed !== 1 || p.repace) {
        throw new SvtraceError('USAGE', 'publish.loop, publish.speed and publish.repace apply to a replayed capture, and publish.pcap is not set', { hint: 'set publish.pcap (or give --pcap FILE), or remove those keys' });
      }
      if (!p.interface) throw new SvtraceError('USAGE', 'no interface to publish on', { hint: 'give -i IFACE (and --netns NAME if it lives in a namespace), or publish.interface in the config' });
      const streams = expandStreams(streamsSpec(config));
      const progress = progressLine();
      const stop = interruptSignal();
      try {
        const r = await runPublish({
          streams, ifname: p.interface, netns: p.netns, durationS: p.duration_s ?? Infinity, fifoPriority: p.fifo_priority, cpu: p.cpu, spinUs: p.spin_us,
          recordDir: p.record, command: process.argv.slice(2), signal: stop.signal, dropPercent: num(f.drop, '--drop'),
          onProgress: (x) => progress.update(`publish ${x.elapsedS.toFixed(0)} s: ${groupDigits(x.framesSent)} frames sent (${groupDigits(x.framesPerSecond)}/s), send errors ${x.sendErrors} (buffer full ${x.sendBufferFull}), late ${x.late}, underruns ${x.underruns}`),
        });
        progress.done();
        if (f.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return; }
        const t = r.tx;
        process.stdout.write(renderTable(['streams', 'rate/s', 'frames/s', 'sent', 'send errors', 'buffer full', 'late', 'underruns', 'T0 kernel', 'T0 app'], [[
          String(r.streams), String(r.sampleRate), groupDigits(r.framesPerSecond), groupDigits(r.framesSent), groupDigits(t.sendErrorsTotal),
          groupDigits(t.sendBufferFull), groupDigits(t.late), groupDigits(t.underruns), groupDigits(r.t0Sources.kernel + r.t0Sources.hw), groupDigits(r.t0Sources.app),
        ]], new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])));
        if (r.recordDir) process.stdout.write(`record: ${r.recordDir} (${groupDigits(r.samplesRecorded)} samples with T0)\n`);
        if (r.framesLagging > 0) {
          const behind = r.maxLagNs >= 1e9 ? `${(r.maxLagNs / 1e9).toFixed(2)} s` : `${(r.maxLagNs / 1e6).toFixed(1)} ms`;
          process.stderr.write(`svtrace: warning: the transmit thread fell up to ${behind} behind schedule (${groupDigits(r.framesLagging)} frames more than 10 ms late); ` +
            `T0 is the send time, so it drifts from the sample's instant by as much${r.maxLagNs >= 400e6 ? ', and joining records by time (svtrace report) can pair the wrong samples' : ''}. ` +
            `Give the transmit thread a CPU: --fifo 50, --cpu N, fewer streams, or a less loaded machine.\n`);
        }
        if (t.sendErrorsTotal > 0) process.stderr.write(`svtrace: warning: ${t.sendErrorsTotal} frames could not be sent (${Object.entries(t.sendErrors).map(([k, v]) => `${k} ×${v}`).join(', ')}); those samples are missing on the wire\n`);
      } finally {
        stop.dispose();
      }
    }));
}

/** `publish --pcap`: replay a capture. */
async function replay(f: Flags): Promise<void> {
  const synthetic = SYNTHETIC_FLAGS.find(([k]) => f[k] !== undefined);
  if (synthetic) throw new SvtraceError('USAGE', `${synthetic[1]} describes synthetic streams and has no meaning with --pcap`, { hint: 'leave it out: a replay sends the frames of the capture as they are' });
  const config = loadConfig(f.config, {
    'publish.interface': f.interface, 'publish.netns': f.netns, 'publish.fifo_priority': num(f.fifo, '--fifo'), 'publish.spin_us': num(f.spin, '--spin'),
    'publish.cpu': num(f.cpu, '--cpu'), 'publish.record': f.record,
    'publish.pcap': f.pcap, 'publish.loop': parseLoop(f.loop), 'publish.speed': num(f.speed, '--speed'), 'publish.repace': f.repace,
  });
  const p = config.publish;
  if (!p.interface) throw new SvtraceError('USAGE', 'no interface to publish on', { hint: 'give -i IFACE (and --netns NAME if it lives in a namespace), or publish.interface in the config' });
  const copies = num(f.streams, '--streams') ?? 1;
  if (f.svid !== undefined && copies < 2) throw new SvtraceError('USAGE', '--svid names the copies of a replayed stream, and --streams asks for none', { hint: 'add --streams N (N ≥ 2), or leave --svid out: a replay keeps the captured svIDs' });
  const progress = progressLine();
  const stop = interruptSignal();
  try {
    const r = await runReplay({
      path: p.pcap!, ifname: p.interface, netns: p.netns, speed: p.speed, repace: p.repace, loops: p.loop === 'forever' ? Infinity : p.loop,
      copies, svIdPattern: f.svid, only: f.only ?? [], sendOther: f.sendOther, skipBad: f.skipBad,
      fifoPriority: p.fifo_priority, cpu: p.cpu, spinUs: p.spin_us, recordDir: p.record, command: process.argv.slice(2), signal: stop.signal,
      onProgress: (x) => progress.update(`replay ${x.elapsedS.toFixed(0)} s, loop ${x.loop}: ${groupDigits(x.framesSent)} frames sent, send errors ${x.sendErrors}, late ${x.late}`),
    });
    progress.done();
    if (f.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
    else process.stdout.write(renderReplay(r));
    for (const w of replayWarnings(r)) process.stderr.write(`svtrace: warning: ${w}\n`);
    if (r.stoppedBy) throw new SvtraceError(r.stoppedBy.code, r.stoppedBy.message, { hint: r.stoppedBy.hint, kind: r.stoppedBy.kind });
  } finally {
    stop.dispose();
  }
}
