/**
 * The binary engine (`--engine bpf`: native/bpf/points.bpf.c, a ring buffer
 * read by the addon) against its reference, the bpftrace engine: both trace
 * the same frames at the same time and must report the same points, streams,
 * smpCnts and counts. Then a ring too small for the traffic: every lost
 * record is counted and warned about, and nothing of the engine is left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { probeCapabilities, type Capabilities } from '../../src/trace/capabilities.ts';
import { layoutFromFrame, svIdTlv } from '../../src/trace/layout.ts';
import { startTrace, type PointEvent, type TraceWarning, type TraceConfig } from '../../src/trace/index.ts';
import { BPF_SIZES, layoutWords, packBpfConfig, readRecords } from '../../src/trace/bpf-pack.ts';
import { bpfAddon, bpfEngineUnavailable } from '../../src/trace/bpf-engine.ts';
import { labDown, labUp } from '../../src/lab/index.ts';
import { runPublish } from '../../src/publish/run.ts';
import { demoStreams } from '../../src/demo/run.ts';
import { frameTemplate } from '../../src/publish/frames.ts';
import { haveTool, runCli, spawnJob } from '../helpers/cli.ts';
import { bpfProgramsOf } from '../../src/trace/skips.ts';
import { makeVethPair } from '../helpers/netns.ts';
import { cannotTrace, createLab, fixture, readFrames, sameSumFrames, sleep, writePcap } from './lab.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { resolveConfig } from '../../src/config/resolve.ts';
import { validateTraceConfig } from '../../src/trace/config.ts';
import type { SvtraceError } from '../../src/errors.ts';
import { tmpdir } from 'node:os';

const NO_BPF = bpfEngineUnavailable();
const SKIP = cannotTrace() ?? (NO_BPF ? `SKIPPED: the bpf engine cannot run here: ${NO_BPF}` : null);
const caps: Capabilities | null = SKIP ? null : await probeCapabilities();
const opts = { skip: SKIP ?? false, timeout: 180_000 };

function collect() {
  const events: PointEvent[] = [];
  const warnings: TraceWarning[] = [];
  return { events, warnings, handlers: { onPoint: (e: PointEvent) => events.push(e), onWarning: (w: TraceWarning) => warnings.push(w) } };
}

/** Every event as "point svID iter smpCnt", sorted: what must be the same for both engines. */
const identities = (events: PointEvent[]) => events.map((e) => `${e.point} ${e.svId} ${e.appId} ${e.iter} ${e.smpCnt}`).sort();

/** The BPF objects (programs, maps, links) this process holds: none may be left after a trace. */
function bpfFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (/^anon_inode:bpf/.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

test('the config bytes have the sizes and offsets of native/bpf/points.h, and a layout\'s words match exactly its frames', { skip: NO_BPF ? `SKIPPED: ${NO_BPF}` : false }, async () => {
  const sizes = bpfAddon().bpfTraceSizes();
  for (const [k, v] of Object.entries(BPF_SIZES)) assert.equal(sizes[k], v, k);
  // the word compares, applied in JS as the kernel applies them: the frame matches, any octet of its svID changed does not
  const [frame] = await readFrames('SV_Normal_Traffic.pcap');
  const l = layoutFromFrame(frame!);
  const appIdAt = frame![12] === 0x81 ? 18 : 14;
  const matches = (f: Uint8Array) => layoutWords(l).every((w) => {
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(f[appIdAt + w.off + i] ?? 0);
    return (v & w.mask) === w.val;
  });
  assert.ok(matches(frame!));
  const a = l.asdus[0]!;
  for (let i = 0; i < svIdTlv(a).length; i++) {
    const f = frame!.slice();
    f[appIdAt + a.svIdOffset - a.svIdTlvBytes + i]! ^= 0x01;
    assert.ok(!matches(f), `svID TLV octet ${i} changed`);
  }
  const packed = packBpfConfig([{ id: 3, name: 'T3', probes: ['tracepoint:net:netif_receive_skb'], filter: { comm: 'svtrace-rx' } }], [l, l], 4);
  assert.equal(packed.layouts.length, 2 * BPF_SIZES.layout);
  assert.equal(packed.cands.length, BPF_SIZES.cands, 'two layouts of one APPID and Length: one candidate list');
  assert.equal(new DataView(packed.cands.buffer).getUint32(4, true), 2);
  // a frame record read back
  const rec = new Uint8Array(BPF_SIZES.recFrame);
  const rv = new DataView(rec.buffer);
  rec[0] = 1; rec[1] = 3; rv.setUint16(2, 1, true); rv.setUint16(4, 1, true); rv.setUint16(6, 2, true); rv.setBigUint64(8, 123456789012345n, true); rv.setUint16(16, 4799, true); rv.setUint16(18, 0, true);
  const got: unknown[] = [];
  assert.equal(readRecords(rec, (p, k, cpu, t, n, c) => got.push([p, k, cpu, t, [...c.subarray(0, n)]]), () => assert.fail('no unknown record')), 1);
  assert.deepEqual(got, [[3, 1, 1, 123456789012345n, [4799, 0]]]);
});

test('the engine is chosen by [trace] engine or --engine: bpf or bpftrace, nothing else', () => {
  assert.equal(resolveConfig({ trace: { engine: 'bpf' } }).trace.engine, 'bpf');
  assert.equal(resolveConfig({ trace: {} }, { 'trace.engine': 'bpftrace' }).trace.engine, 'bpftrace');
  assert.throws(() => resolveConfig({ trace: { engine: 'fast' } }), (e: SvtraceError) => e.code === 'CONFIG_INVALID' && /trace\.engine/.test(e.message));
  assert.equal(validateTraceConfig({ engine: 'bpf', vmInterface: { name: 'eth0' } }).engine, 'bpf');
  assert.throws(() => validateTraceConfig({ engine: 'perf', vmInterface: { name: 'eth0' } }), (e: SvtraceError) => e.code === 'TRACE_CONFIG_INVALID');
  // a probe the binary program has no raw tracepoint for is refused, not ignored
  assert.throws(() => packBpfConfig([{ id: 1, name: 'T4', probes: ['kprobe:tpacket_rcv'], filter: { comm: 'x' } }], [], 4), (e: SvtraceError) => e.code === 'TRACE_BPF_UNAVAILABLE');
});

test('fixture traffic through both engines at once: the same events (point, svID, APPID, iter, smpCnt) and the same counts, unknown frames included', opts, async () => {
  const lab = createLab('be', 2);
  const [l0, l1] = lab.links;
  try {
    // three svIDs of one APPID and one byte sum, and one svID no layout names (unknown); and the untagged, long-form 50new.pcap
    const { ids, frames } = await sameSumFrames();
    const pcap = await writePcap(join(lab.tmp, 'same-sum.pcap'), frames, 60);
    const [other] = await readFrames('50new.pcap');
    const layouts = [...ids.map((id) => layoutFromFrame(frames[ids.indexOf(id)]!)), layoutFromFrame(other!)];
    const config = (engine: 'bpf' | 'bpftrace'): TraceConfig => ({
      engine, layouts, unknownSamples: 2,
      points: [
        { name: 'RX0', probe: 'tracepoint:net:netif_receive_skb', interface: { name: l0!.rx, netns: l0!.rxNs } },
        { name: 'RX1', probe: 'tracepoint:net:netif_receive_skb', interface: { name: l1!.rx, netns: l1!.rxNs } },
      ],
    });
    const before = bpfFds();
    const ref = collect(), bin = collect();
    const refSession = await startTrace(config('bpftrace'), ref.handlers, { capabilities: caps!, stopOnSignals: false });
    const binSession = await startTrace(config('bpf'), bin.handlers, { capabilities: caps!, stopOnSignals: false });
    assert.equal(binSession.engine, 'bpf');
    await Promise.all([lab.replay(l0!, ['-q', pcap]), lab.replay(l1!, ['-q', '--pps=2000', fixture('50new.pcap')])]);
    await sleep(300);
    const [refSum, binSum] = await Promise.all([refSession.stop(), binSession.stop()]);
    assert.equal(bpfFds(), before, 'no BPF program, map or link of the bpf engine is left');
    assert.equal(ref.events.length, 3000 + 80, 'premise: bpftrace saw every ASDU');
    assert.deepEqual(identities(bin.events), identities(ref.events));
    for (const [i, p] of refSum.points.entries()) {
      const b = binSum.points[i]!;
      assert.deepEqual([b.name, b.frames, b.events, b.kernelFrames, b.unknown, b.short], [p.name, p.frames, p.events, p.kernelFrames, p.unknown, p.short], `point ${p.name}`);
    }
    assert.equal(binSum.points[0]!.unknown, 50);
    assert.deepEqual(binSum.unknownFrames.map((u) => [u.point, u.appId, u.svIds]), refSum.unknownFrames.map((u) => [u.point, u.appId, u.svIds]));
    assert.deepEqual([binSum.lostEvents, binSum.lostLines, binSum.endSeen], [0, 0, true]);
    // the same instants: both engines read CLOCK_MONOTONIC in the same probe
    const t = (ev: PointEvent[]) => new Map(ev.map((e) => [`${e.point} ${e.svId} ${e.iter} ${e.smpCnt}`, e.tMonoNs]));
    const tr = t(ref.events), tb = t(bin.events);
    let near = 0;
    for (const [k, v] of tb) if (tr.has(k) && (v > tr.get(k)! ? v - tr.get(k)! : tr.get(k)! - v) < 1_000_000n) near++;
    assert.ok(near >= tb.size * 0.99, `${near} of ${tb.size} timestamps within 1 ms of bpftrace's`);
  } finally {
    lab.destroy();
  }
});

test('lab traffic (publisher → bridge → VM port, 3 streams × 4000/s): T1 and T2 of both engines at once give the same sample identities', opts, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-test-bpf-'));
  const runDir = join(dir, 'lab');
  try {
    const lab = (await labUp({ runDir, switch: 'bridge', prefix: `tb${(process.pid % 10000).toString(36)}` })).topology;
    const streams = demoStreams(3);
    const layouts = streams.map((s) => layoutFromFrame(frameTemplate(s).bytes));
    const config = (engine: 'bpf' | 'bpftrace'): TraceConfig => ({ role: 'hypervisor', engine, ingress: { name: lab.hostPubIf }, vmPort: { name: lab.hostVmIf }, layouts });
    const ref = collect(), bin = collect();
    const refSession = await startTrace(config('bpftrace'), ref.handlers, { capabilities: caps!, stopOnSignals: false });
    const binSession = await startTrace(config('bpf'), bin.handlers, { capabilities: caps!, stopOnSignals: false });
    await runPublish({ streams, ifname: lab.pubIf, netns: lab.pubNetns, durationS: 2 });
    await sleep(300);
    const [refSum, binSum] = await Promise.all([refSession.stop(), binSession.stop()]);
    assert.equal(refSum.lostLines + refSum.lostEvents, 0, 'premise: bpftrace lost nothing');
    assert.ok(ref.events.filter((e) => e.point === 'T1').length >= 3 * 4000 * 1.5, `T1 saw ${ref.events.length} events`);
    assert.deepEqual(identities(bin.events), identities(ref.events));
    assert.deepEqual(binSum.points.map((p) => [p.name, p.kernelFrames, p.frames]), refSum.points.map((p) => [p.name, p.kernelFrames, p.frames]));
    assert.deepEqual([binSum.lostEvents, binSum.lostLines], [0, 0]);
  } finally {
    await labDown(runDir).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a ring buffer too small for a burst: every record it drops is counted per point and warned about, never silent', opts, async () => {
  const lab = createLab('bf');
  const [link] = lab.links;
  try {
    const [normal] = await readFrames('SV_Normal_Traffic.pcap');
    const c = collect();
    const before = bpfFds();
    const session = await startTrace(
      { engine: 'bpf', vmInterface: { name: link!.rx, netns: link!.rxNs }, layouts: [layoutFromFrame(normal!)] },
      c.handlers, { capabilities: caps!, stopOnSignals: false, ringBytes: 4096 },
    );
    await lab.replay(link!, ['-q', '--topspeed', fixture('SV_Normal_Traffic.pcap')]);
    await sleep(300);
    const sum = await session.stop();
    assert.equal(bpfFds(), before, 'no BPF object left');
    const p = sum.points[0]!;
    assert.equal(p.kernelFrames, 10161, 'the kernel matched every frame');
    assert.ok(sum.lostEvents > 0, `a 4 KiB ring (about 70 records) dropped some of a 10 161-frame burst (lost ${sum.lostEvents})`);
    assert.equal(p.frames + sum.lostEvents, 10161, 'received + lost = matched: each loss counted once');
    assert.equal(sum.lostLines, sum.lostEvents);
    const lost = c.warnings.filter((w) => w.kind === 'lost-events');
    assert.ok(lost.length > 0 && lost.reduce((n, w) => n + w.count, 0) === sum.lostEvents, 'warned about, with the counts');
    assert.ok(c.warnings.some((w) => w.kind === 'lost-lines'));
  } finally {
    lab.destroy();
  }
});


const progExists = (id: number) => spawnSync('bpftool', ['prog', 'show', 'id', String(id)]).status === 0;

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(100);
  return cond();
}

test('svtrace trace --engine bpf: Ctrl-C on the whole job reads the ring to its end (every matched frame received); killed -9, its BPF programs go with it', { ...opts, skip: opts.skip || (haveTool('bpftool') ? false : 'SKIPPED: bpftool is not installed') }, async (t) => {
  const pair = makeVethPair('bk');
  t.after(() => pair.remove());
  let pubChild: ChildProcess | null = null;
  const pub = runCli(['publish', '--netns', pair.nsA, '-i', pair.ifA, '-n', '2', '-d', '40'], { timeoutMs: 100_000, onStderr: (_s, c) => { pubChild = c; } });
  t.after(async () => { pubChild?.kill('SIGINT'); await pub.catch(() => undefined); });
  const job = spawnJob(['trace', '--engine', 'bpf', '--ingress', `${pair.ifB}@${pair.nsB}`, '--json']);
  let stderr = '';
  job.child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  t.after(() => { try { process.kill(-job.child.pid!, 'SIGKILL'); } catch { /* ended */ } });
  assert.ok(await until(() => /svtrace: tracing/.test(stderr), 60_000), `tracing started: ${stderr}`);
  await sleep(3000);
  process.kill(-job.child.pid!, 'SIGINT');
  const r = await job.out;
  assert.equal(r.code, 0, r.stderr);
  const s = (JSON.parse(r.stdout) as { summary: { endSeen: boolean; lostEvents: number; lostLines: number; points: Array<{ frames: number; kernelFrames: number | null }> } }).summary;
  assert.ok(s.endSeen, 'the ring was read to its end');
  assert.ok(s.points[0]!.frames > 10_000, `${s.points[0]!.frames} frames in 3 s of 2 × 4000/s`);
  assert.equal(s.points[0]!.kernelFrames, s.points[0]!.frames + s.lostEvents, 'every matched frame received or counted lost');
  assert.equal(s.lostEvents, 0, 'and none lost at this rate');

  const killed = spawnJob(['trace', '--engine', 'bpf', '--ingress', `${pair.ifB}@${pair.nsB}`]);
  let stderr2 = '';
  killed.child.stderr!.on('data', (d: Buffer) => { stderr2 += d.toString(); });
  t.after(() => { try { process.kill(-killed.child.pid!, 'SIGKILL'); } catch { /* ended */ } });
  assert.ok(await until(() => /svtrace: tracing/.test(stderr2), 60_000), `tracing started: ${stderr2}`);
  const ids = bpfProgramsOf(killed.child.pid!).map((p) => p.id);
  assert.ok(ids.length >= 1 && ids.every(progExists), `svtrace holds its programs (${ids.join(', ')})`);
  killed.child.kill('SIGKILL');
  await killed.out;
  assert.ok(await until(() => !ids.some(progExists), 10_000), 'the kernel released every program with the process');
});
