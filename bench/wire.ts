/**
 * Pacing and capacity of publish + subscribe on a real wire.
 *   npm run bench -- wire [--seconds S]
 *
 * Pacing: 8 streams × 4000/s published by `svtrace publish` and, in the same
 * run, the same frames at the same instants replayed by tcpreplay; the
 * subscriber's kernel RX timestamps give each stream's jitter |gap − mean gap|
 * (p50, p99, max). Target: p99 no worse than tcpreplay's and ≤ 20 µs.
 * Capacity: streams × rate rising until the subscriber misses samples, over a
 * direct veth pair and through the lab's Open vSwitch (when installed), with
 * the CPU this process used per 10 k frames/s (publisher and subscriber both).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPublish } from '../src/publish/run.ts';
import { runSubscribe, type SubscribeResult } from '../src/subscribe/run.ts';
import { createBatch, createSchedule } from '../src/publish/schedule.ts';
import { DEFAULT_WAVEFORM, expandStreams, type StreamSpec } from '../src/publish/streams.ts';
import { writeCaptureFile, type PacketToWrite } from '../src/pcap/index.ts';
import { inspectCapture } from '../src/capture/inspect.ts';
import { labDown, labUp } from '../src/lab/index.ts';

function streams(count: number, freqHz: 50 | 60): StreamSpec[] {
  return expandStreams({
    count, svIdPattern: 'MU{n:02}', appIdBase: 0x4000, dstMacBase: '01:0c:cd:04:00:00', srcMacBase: '02:53:56:00:00:01',
    vlan: { id: 0, priority: 4 }, freqHz, samplesPerCycle: 80, asdusPerFrame: 1, confRev: 1, smpSynch: 2, simulated: false, waveform: DEFAULT_WAVEFORM,
  });
}

function vethPair(): { nsA: string; ifA: string; nsB: string; ifB: string; remove(): void } {
  const id = `bw${process.pid % 10000}`;
  const p = { nsA: `${id}-a`, ifA: `${id}a`, nsB: `${id}-b`, ifB: `${id}b` };
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: 'ignore' });
  const remove = () => { for (const ns of [p.nsA, p.nsB]) { try { ip('netns', 'del', ns); } catch { /* gone */ } } };
  try {
    ip('netns', 'add', p.nsA); ip('netns', 'add', p.nsB);
    ip('link', 'add', p.ifA, 'type', 'veth', 'peer', 'name', p.ifB);
    ip('link', 'set', p.ifA, 'netns', p.nsA); ip('link', 'set', p.ifB, 'netns', p.nsB);
    ip('-n', p.nsA, 'link', 'set', p.ifA, 'up'); ip('-n', p.nsB, 'link', 'set', p.ifB, 'up');
  } catch (e) { remove(); throw e; }
  return { ...p, remove };
}

async function subscribeWhile<T>(ns: string, ifname: string, pcapPath: string | undefined, work: () => Promise<T>): Promise<{ sub: SubscribeResult; work: T }> {
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  const sub = runSubscribe({ ifname, netns: ns, streams: [], durationS: 600, idleStopS: 1, pcapPath, onReady: ready, rcvBufBytes: 64 << 20 });
  await isReady;
  const w = await work();
  return { sub: await sub, work: w };
}

async function jitter(file: string): Promise<{ p50: number; p99: number; max: number; missing: number }> {
  const r = await inspectCapture(file);
  const p50s = r.streams.map((s) => s.pacingUs!.jitterP50).sort((a, b) => a - b);
  return {
    p50: p50s[Math.floor(p50s.length / 2)]!, p99: Math.max(...r.streams.map((s) => s.pacingUs!.jitterP99)),
    max: Math.max(...r.streams.map((s) => s.pacingUs!.jitterMax)), missing: r.streams.reduce((m, s) => m + s.missing, 0),
  };
}

export async function benchWire(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) { console.log('wire: skipped, needs root (network namespaces, AF_PACKET)'); return; }
  const seconds = Number(args[args.indexOf('--seconds') + 1] ?? 0) || 5;
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-bench-wire-'));
  const pair = vethPair();
  try {
    // pacing: svtrace publish
    const eight = streams(8, 50);
    const ours = join(dir, 'svtrace.pcapng');
    await subscribeWhile(pair.nsB, pair.ifB, ours, () => runPublish({ streams: eight, ifname: pair.ifA, netns: pair.nsA, durationS: seconds }));
    const j0 = await jitter(ours);
    // tcpreplay busy-waits between packets; the fair comparison is svtrace with SCHED_FIFO and a busy-wait before each send
    await subscribeWhile(pair.nsB, pair.ifB, ours, () => runPublish({ streams: eight, ifname: pair.ifA, netns: pair.nsA, durationS: seconds, fifoPriority: 50, spinUs: 150 }));
    const j1 = await jitter(ours);
    // the same frames at the same instants, replayed by tcpreplay
    const frames = join(dir, 'schedule.pcap');
    const schedule = createSchedule(eight, { notBeforeNs: 1_700_000_000_000_000_000n, durationS: seconds });
    const batch = createBatch(8192, 256);
    async function* packets(): AsyncGenerator<PacketToWrite> {
      while (true) {
        const n = schedule.next(batch, 8192, 1n << 62n);
        if (n === 0) return;
        for (let i = 0; i < n; i++) yield { tsNs: batch.timesNs[i]!, data: batch.bytes.slice(batch.offsets[i]!, batch.offsets[i]! + batch.lengths[i]!) };
      }
    }
    await writeCaptureFile(frames, packets(), { format: 'pcap-ns' });
    const theirs = join(dir, 'tcpreplay.pcapng');
    const haveTcpreplay = spawnSync('tcpreplay', ['-V']).status === 0;
    let j2: Awaited<ReturnType<typeof jitter>> | null = null;
    if (haveTcpreplay) {
      await subscribeWhile(pair.nsB, pair.ifB, theirs, async () => {
        spawnSync('ip', ['netns', 'exec', pair.nsA, 'tcpreplay', '-q', '--preload-pcap', '-i', pair.ifA, frames], { stdio: 'ignore' });
      });
      j2 = await jitter(theirs);
    }
    const f = (x: number) => x.toFixed(1).padStart(8);
    console.log(`pacing, 8 streams × 4000/s for ${seconds} s over veth, per-stream jitter |gap − mean gap| in µs (kernel RX timestamps):`);
    console.log(`  svtrace publish (sleeping, SCHED_OTHER)       p50 ${f(j0.p50)}  p99 ${f(j0.p99)}  max ${f(j0.max)}  missing ${j0.missing}`);
    console.log(`  svtrace publish --fifo 50 --spin 150         p50 ${f(j1.p50)}  p99 ${f(j1.p99)}  max ${f(j1.max)}  missing ${j1.missing}`);
    if (j2) {
      console.log(`  tcpreplay --preload-pcap                     p50 ${f(j2.p50)}  p99 ${f(j2.p99)}  max ${f(j2.max)}  missing ${j2.missing}`);
      console.log(`  ratio p99 tcpreplay / svtrace (--fifo 50 --spin 150): ${(j2.p99 / j1.p99).toFixed(2)} (target ≥ 1, and svtrace p99 ≤ 20 µs)`);
    } else console.log('  tcpreplay is not installed: no peer, no ratio');

    // capacity over veth, then through OVS
    const ladder: Array<[number, 50 | 60]> = [[8, 50], [16, 60], [32, 60], [64, 60]];
    const capacity = async (label: string, ns: [string, string], ifs: [string, string]) => {
      console.log(`capacity ${label} (${seconds} s per step):`);
      for (const [count, hz] of ladder) {
        const before = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const { sub, work: pub } = await subscribeWhile(ns[1], ifs[1], undefined, () => runPublish({ streams: streams(count, hz), ifname: ifs[0], netns: ns[0], durationS: seconds }));
        const cpu = process.cpuUsage(before);
        const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
        const fps = count * hz * 80;
        const cpuPer10k = ((cpu.user + cpu.system) / 1e6 / wallS) / (fps / 10_000);
        const lost = pub.framesSent - sub.samples;
        console.log(`  ${String(count).padStart(2)} × ${hz * 80}/s = ${String(fps).padStart(6)} frames/s: sent ${pub.framesSent}, received ${sub.samples}, lost ${lost}, kernel drops ${sub.rx.kernelDrops}, late sends ${pub.tx.late}, CPU ${(cpuPer10k * 100).toFixed(1)} % of a core per 10 k frames/s`);
        if (lost > 0) break;
      }
    };
    await capacity('over a veth pair', [pair.nsA, pair.nsB], [pair.ifA, pair.ifB]);
    if (spawnSync('ovs-vsctl', ['--version']).status === 0) {
      const runDir = join(dir, 'lab');
      const lab = await labUp({ runDir, prefix: `bw${process.pid % 1000}`, switch: 'ovs' });
      try {
        const t = lab.topology;
        await capacity('through the lab (Open vSwitch userspace datapath)', [t.pubNetns, t.vmNetns], [t.pubIf, t.vmIf]);
      } finally {
        await labDown(runDir);
      }
    }
  } finally {
    pair.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}
