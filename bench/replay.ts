/**
 * Replaying a real capture: `svtrace publish --pcap` beside tcpreplay, on the
 * same frames, in the same run, over a veth pair.
 *   npm run bench -- replay [--seconds S]
 *
 * The public 4800/s capture (../shared/fixtures/SV_Normal_Traffic.pcap, one
 * stream, 10 161 frames over 2.117 s) is looped to about S seconds (default
 * 10) by each sender. The subscriber's kernel RX timestamps give the
 * inter-frame jitter |gap − mean gap| (p50, p99, max, µs) and the rate
 * (frames − 1 over the first-to-last span) against the capture's own.
 * Targets (issue 14): p99 no worse than tcpreplay's and ≤ 10 µs with
 * --fifo --spin; the rate within 0.01 % of the capture's.
 *
 * Output (figures vary with the machine and its load):
 *   capture: 4800.008 frames/s, jitter p50 0.7 p99 1.7 max 3.3 µs
 *   svtrace publish --pcap (sleeping)        p50 … p99 … max … µs  rate … (… %)  frames …
 *   svtrace publish --pcap --fifo 50 --spin 150 …
 *   tcpreplay --preload-pcap --loop N        …
 *   ratio p99 tcpreplay / svtrace --fifo --spin: …
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runReplay } from '../src/publish/replay.ts';
import { runSubscribe } from '../src/subscribe/run.ts';
import { capturePackets } from '../src/pcap/index.ts';
import { makeVethPair } from '../test/helpers/netns.ts';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'fixtures', 'SV_Normal_Traffic.pcap');

export interface Pacing { frames: number; rateHz: number; p50Us: number; p99Us: number; maxUs: number }

/** Frame rate and jitter |gap − mean gap| of a capture's timestamps. */
export async function pacingOf(path: string): Promise<Pacing> {
  const t: bigint[] = [];
  for await (const p of capturePackets(path)) t.push(p.tsNs);
  const n = t.length;
  const spanNs = Number(t[n - 1]! - t[0]!);
  const mean = spanNs / (n - 1);
  const dev = new Float64Array(n - 1);
  for (let i = 1; i < n; i++) dev[i - 1] = Math.abs(Number(t[i]! - t[i - 1]!) - mean);
  dev.sort();
  const at = (q: number) => dev[Math.min(dev.length - 1, Math.ceil((q / 100) * dev.length) - 1)]! / 1e3;
  return { frames: n, rateHz: ((n - 1) * 1e9) / spanNs, p50Us: at(50), p99Us: at(99), maxUs: dev[dev.length - 1]! / 1e3 };
}

function run(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.on('error', reject);
    c.on('close', (code) => resolve(code ?? -1));
  });
}

export async function benchReplay(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) { console.log('replay: skipped, needs root (network namespaces, AF_PACKET)'); return; }
  const seconds = Number(args[args.indexOf('--seconds') + 1] ?? 0) || 10;
  const capture = await pacingOf(FIXTURE);
  const loops = Math.max(1, Math.round(seconds / (capture.frames / capture.rateHz)));
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-bench-replay-'));
  const pair = makeVethPair('br');
  const receive = async (name: string, send: () => Promise<unknown>): Promise<Pacing> => {
    const out = join(dir, name);
    mkdirSync(out);
    let ready!: () => void;
    const isReady = new Promise<void>((r) => { ready = r; });
    const sub = runSubscribe({ ifname: pair.ifB, netns: pair.nsB, streams: [], durationS: 600, idleStopS: 1, pcapPath: join(out, 'rx.pcapng'), onReady: ready, rcvBufBytes: 64 << 20 });
    await isReady;
    await send();
    const r = await sub;
    if (r.samples === 0) throw new Error(`${name}: the subscriber received nothing`);
    return pacingOf(join(out, 'rx.pcapng'));
  };
  try {
    const rows: Array<[string, Pacing]> = [];
    rows.push(['svtrace publish --pcap (sleeping, SCHED_OTHER)', await receive('sleep', () => runReplay({ path: FIXTURE, ifname: pair.ifA, netns: pair.nsA, loops }))]);
    const fifo = await receive('fifo', () => runReplay({ path: FIXTURE, ifname: pair.ifA, netns: pair.nsA, loops, fifoPriority: 50, spinUs: 150 }));
    rows.push(['svtrace publish --pcap --fifo 50 --spin 150', fifo]);
    let peer: Pacing | null = null;
    if (await run('tcpreplay', ['-V']).catch(() => -1) === 0) {
      peer = await receive('tcpreplay', () => run('ip', ['netns', 'exec', pair.nsA, 'tcpreplay', '-q', '--preload-pcap', `--loop=${loops}`, '-i', pair.ifA, FIXTURE]));
      rows.push([`tcpreplay --preload-pcap --loop=${loops}`, peer]);
    }
    const f = (x: number, w = 8) => x.toFixed(1).padStart(w);
    const err = (p: Pacing) => ((p.rateHz / capture.rateHz - 1) * 100);
    console.log(`replay of SV_Normal_Traffic.pcap (1 stream, 4800 samples/s, ${capture.frames} frames) × ${loops} loops over veth; jitter |gap − mean gap| in µs from kernel RX timestamps, rate vs the capture's:`);
    console.log(`  the capture itself                              p50 ${f(capture.p50Us)}  p99 ${f(capture.p99Us)}  max ${f(capture.maxUs)}  rate ${capture.rateHz.toFixed(3)}/s`);
    for (const [name, p] of rows) {
      console.log(`  ${name.padEnd(46)} p50 ${f(p.p50Us)}  p99 ${f(p.p99Us)}  max ${f(p.maxUs)}  rate ${p.rateHz.toFixed(3)}/s (${err(p) >= 0 ? '+' : ''}${err(p).toFixed(4)} %)  frames ${p.frames}`);
    }
    if (peer) {
      console.log(`  ratio p99 tcpreplay / svtrace --fifo 50 --spin 150: ${(peer.p99Us / fifo.p99Us).toFixed(2)} (target ≥ 1, and svtrace p99 ≤ 10 µs)`);
      console.log(`  rate error: svtrace --fifo --spin ${Math.abs(err(fifo)).toFixed(4)} %, tcpreplay ${Math.abs(err(peer)).toFixed(4)} % (target ≤ 0.01 %)`);
    } else console.log('  tcpreplay is not installed: no peer, no ratio');
  } finally {
    pair.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}
