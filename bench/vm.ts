/**
 * The path into a virtual machine (issue 12), beside the netns "VM" in the same run:
 *
 * 1. Segments: `demo` through the netns VM and `demo --vm qemu` through the
 *    QEMU guest (1 stream × 4000 samples/s), each reported from its records:
 *    Thyp, Ttrans, Tsub at p50, p99, max. The QEMU guest's Tsub is the VM
 *    tracer's T3 (virtio-net receive) → T4 (the subscriber's recvmsg).
 * 2. Capacity: the most streams × 4000 samples/s (1 ASDU a frame) that
 *    `svtrace subscribe` in the guest receives with nothing missing and no
 *    kernel drop, 5 s per step.
 * 3. The tracer's cost inside the guest: the subscriber's own Tsub p50 (its
 *    kernel RX timestamp → its read, no tracer involved) without and with
 *    `svtrace trace --machine vm` running beside it, with each engine.
 *
 *   sudo npm run bench -- vm [--duration S]
 *
 * Under TCG (no usable KVM) the guest's figures are an emulator's; the bench says which.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeRecords } from '../src/analyze/analyze.ts';
import type { AnalysisResult } from '../src/analyze/types.ts';
import { runDemo } from '../src/demo/run.ts';
import { inGuest, runVmDemo } from '../src/demo/vm.ts';
import { labDown, labUp } from '../src/lab/index.ts';
import { svtraceRoot } from '../src/lab/qemu.ts';
import { writeCaptureFile } from '../src/pcap/index.ts';
import { frameTemplate } from '../src/publish/frames.ts';
import { runPublish } from '../src/publish/run.ts';
import { expandStreams, DEFAULT_WAVEFORM } from '../src/publish/streams.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const us = (ns: number | null | undefined) => (ns === null || ns === undefined ? '–' : (ns / 1000).toFixed(1));

function seg(a: AnalysisResult, name: string): string[] {
  const s = a.segments.find((x) => x.segment === name);
  return s ? [us(s.all.percentilesNs.p50), us(s.all.percentilesNs.p99), us(s.all.maxNs)] : ['–', '–', '–'];
}


function streams(n: number, asdus: number) {
  return expandStreams({
    count: n, svIdPattern: 'B{n:02}', appIdBase: 0x4100, dstMacBase: '01:0c:cd:04:01:00', srcMacBase: '02:53:56:00:02:01',
    vlan: { id: 0, priority: 4 }, freqHz: 50, samplesPerCycle: 80, asdusPerFrame: asdus, confRev: 1, smpSynch: 2, simulated: false, waveform: DEFAULT_WAVEFORM,
  });
}

/** The subscriber's own Tsub p50 (its record: T3 RX timestamp → T4), for `seconds` of 1 stream in 8 ASDUs. */
async function subscriberTsub(runDir: string, lab: { pubNetns: string; pubIf: string }, cli: string, share: string, tag: string, seconds: number): Promise<{ p50: string; samples: number }> {
  const rec = join(share, `sub-${tag}`);
  const sub = await inGuest(runDir, [cli, 'subscribe', '-i', 'eth0', '--record', rec, '-d', String(seconds + 30)], /receiving on/);
  await sub.ready;
  await runPublish({ streams: streams(1, 8), ifname: lab.pubIf, netns: lab.pubNetns, durationS: seconds });
  await sleep(2000);
  sub.h.signal('SIGINT');
  await sub.h.done;
  const a = await analyzeRecords([rec], { join: 'iter' });
  return { p50: seg(a, 'Tsub')[0]!, samples: a.samples };
}

export async function benchVm(args: string[]): Promise<void> {
  const i = args.indexOf('--duration');
  const durationS = i >= 0 ? Number(args[i + 1]) : 10;
  if (!(durationS > 0)) throw new Error('--duration S');
  const work = mkdtempSync(join(tmpdir(), 'svtrace-bench-vm-'));
  const log = (l: string) => console.log(`  ${l}`);
  try {
    console.log(`load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    // 1. segments, netns beside QEMU
    const netns = await runDemo({ outDir: join(work, 'netns'), durationS, streams: 1, switch: 'bridge', impair: false, log: () => {} });
    const a = await analyzeRecords(netns.records);
    const q = await runVmDemo({ outDir: join(work, 'qemu'), durationS, asdus: 8, log: () => {} });
    const b = await analyzeRecords(q.records);
    const accel = q.lab.vm?.accel ?? '?';
    console.log(`\n1 stream × 4000 samples/s, ${durationS} s each (µs: p50 / p99 / max); QEMU ${accel.toUpperCase()}${accel === 'tcg' ? ' (emulation: the guest\'s timings are an emulator\'s)' : ''}`);
    console.log('path                    Thyp                      Ttrans                    Tsub');
    for (const [name, r] of [['netns VM (veth)', a], [`QEMU guest (${accel})`, b]] as const) {
      console.log(`${name.padEnd(22)}  ${seg(r, 'Thyp').join(' / ').padEnd(24)}  ${seg(r, 'Ttrans').join(' / ').padEnd(24)}  ${seg(r, 'Tsub').join(' / ')}`);
    }
    const sampleShare = (r: AnalysisResult) => r.streams.reduce((n, s) => n + s.samples - s.missing, 0) / Math.max(1, r.samples);
    console.log(`samples delivered: netns ${(100 * sampleShare(a)).toFixed(2)} %, QEMU ${(100 * sampleShare(b)).toFixed(2)} %`);

    // 2 and 3 in one QEMU lab
    const runDir = join(work, 'lab');
    const lab = (await labUp({ runDir, switch: 'bridge', vm: 'qemu', prefix: `bv${process.pid % 1000}`, tapQueueFrames: 20_000 })).topology;
    try {
      const cli = join(svtraceRoot(), 'bin', 'svtrace.js');
      console.log('\ncapacity into the guest (subscribe on eth0, 1 ASDU a frame, 5 s a step)');
      for (const n of [1, 2, 4, 8, 16]) {
        const sub = await inGuest(runDir, [cli, 'subscribe', '-i', 'eth0', '--json', '-d', '60'], /receiving on/);
        await sub.ready;
        const pub = await runPublish({ streams: streams(n, 1), ifname: lab.pubIf, netns: lab.pubNetns, durationS: 5 });
        await sleep(3000);
        sub.h.signal('SIGINT');
        await sub.h.done;
        const json = sub.output().slice(sub.output().indexOf('{'));
        const s = JSON.parse(json) as { samples: number; rx: { kernelDrops: number }; streams: Array<{ missing: number }> };
        const missing = s.streams.reduce((m, x) => m + x.missing, 0);
        const ok = s.samples >= pub.framesSent && missing === 0 && s.rx.kernelDrops === 0;
        console.log(`  ${String(n).padStart(2)} stream(s): sent ${pub.framesSent} frames, received ${s.samples} samples, missing ${missing}, kernel drops ${s.rx.kernelDrops}: ${ok ? 'carried' : 'NOT carried'}`);
        if (!ok) break;
      }
      console.log('\nthe VM tracer\'s cost inside the guest (the subscriber\'s own Tsub p50, 1 stream in 8 ASDUs a frame)');
      const share = lab.vm!.share;
      const without = await subscriberTsub(runDir, lab, cli, share, 'plain', durationS);
      const layouts = join(share, 'bench.pcap');
      await writeCaptureFile(layouts, [{ tsNs: 0n, data: frameTemplate(streams(1, 8)[0]!).bytes }], { format: 'pcap-ns' });
      const traced: string[] = [];
      for (const engine of ['bpf', 'bpftrace'] as const) {
        const tracer = await inGuest(runDir, [cli, 'trace', '--engine', engine, '--machine', 'vm', '--vm-if', 'eth0', '--subscriber-comm', 'svtrace-rx', '--layouts-from', layouts], /svtrace: tracing/);
        await Promise.race([tracer.ready, tracer.h.done]);
        const withTracer = await subscriberTsub(runDir, lab, cli, share, `traced-${engine}`, durationS);
        tracer.h.signal('SIGINT');
        await tracer.h.done;
        traced.push(`with the ${engine} engine: ${withTracer.p50} µs (${withTracer.samples} samples)`);
      }
      console.log(`  without the tracer: Tsub p50 ${without.p50} µs (${without.samples} samples); ${traced.join('; ')}`);
      writeFileSync(join(work, 'done'), '');
    } finally {
      await labDown(runDir).catch((e: unknown) => log(`lab down failed: ${(e as Error).message}`));
    }
  } finally {
    if (existsSync(work)) rmSync(work, { recursive: true, force: true });
  }
}
