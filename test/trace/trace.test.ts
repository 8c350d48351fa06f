/**
 * The tracer against real bpftrace and real frames: veth pairs between
 * namespaces made for the test, fixture captures replayed with tcpreplay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { probeCapabilities, type Capabilities } from '../../src/trace/capabilities.ts';
import { layoutFromFrame } from '../../src/trace/layout.ts';
import { resolveInterface } from '../../src/trace/interfaces.ts';
import { startTrace, type PointEvent, type TraceWarning } from '../../src/trace/runner.ts';
import { cannotTrace, createLab, fixture, readFrames, sameSumFrames, sleep, writePcap } from './lab.ts';

const SKIP = cannotTrace();
const caps: Capabilities | null = SKIP ? null : await probeCapabilities();
const opts = { skip: SKIP ?? false, timeout: 180_000 };

function collect() {
  const events: PointEvent[] = [];
  const warnings: TraceWarning[] = [];
  return { events, warnings, handlers: { onPoint: (e: PointEvent) => events.push(e), onWarning: (w: TraceWarning) => warnings.push(w) } };
}

test('T3 traces every frame of SV_Normal_Traffic (tagged, 10161 frames) at its own pace, with smpCnt wraps counted', opts, async () => {
  const lab = createLab('a');
  const [link] = lab.links;
  try {
    const c = collect();
    const session = await startTrace(
      { engine: 'bpftrace', role: 'vm', vmInterface: { name: link!.rx, netns: link!.rxNs }, streams: [{ svId: '4001' }] },
      c.handlers,
      { capabilities: caps!, stopOnSignals: false, onLearnReady: () => { void lab.replay(link!, ['-q', '-L', '40', '--topspeed', fixture('SV_Normal_Traffic.pcap')]); } },
    );
    assert.deepEqual(session.layouts, [{ appId: 0x4001, length: 102, asdus: [{ svId: '4001', svIdOffset: 19, svIdTlvBytes: 2, smpCntOffset: 25, smpCntBytes: 2 }] }]);
    await lab.replay(link!, ['-q', fixture('SV_Normal_Traffic.pcap')]);
    await sleep(300);
    const sum = await session.stop();
    // in time order: lines from two CPUs' buffers may arrive out of order
    const seen = c.events.filter((e) => e.point === 'T3').sort((a, b) => (a.tMonoNs < b.tMonoNs ? -1 : 1));
    assert.ok(seen.length >= 10161 * 0.999, `saw ${seen.length} of 10161`);
    assert.equal(seen.length, 10161, 'in fact every one');
    // 280..4799, 0..4799, 0..840 with iterations 0, 1, 2
    const expected = [...Array.from({ length: 4520 }, (_, i) => [0, 280 + i]), ...Array.from({ length: 4800 }, (_, i) => [1, i]), ...Array.from({ length: 841 }, (_, i) => [2, i])];
    assert.deepEqual(seen.map((e) => [e.iter, e.smpCnt]), expected);
    assert.equal(sum.streams[0]!.wraps, 2);
    assert.equal(sum.points[0]!.kernelFrames, 10161);
    assert.equal(sum.lostEvents, 0);
    assert.equal(sum.lostLines, 0);
    assert.equal(sum.endSeen, true);
    const now = BigInt(Date.now()) * 1_000_000n;
    assert.ok(seen[0]!.tNs < now && seen[0]!.tNs > now - 120_000_000_000n, 'realtime within the last two minutes');
  } finally {
    lab.destroy();
  }
});

test('streams with the same APPID and svIDs of the same byte sum ("4001", "4010", "1004") stay apart; an unlisted svID is counted as unknown', opts, async () => {
  const lab = createLab('b');
  const [link] = lab.links;
  try {
    const { ids, frames } = await sameSumFrames();
    const pcap = await writePcap(join(lab.tmp, 'same-sum.pcap'), frames, 60);
    const layouts = ids.map((id) => layoutFromFrame(frames[ids.indexOf(id)]!));
    const c = collect();
    const session = await startTrace(
      { engine: 'bpftrace', vmInterface: { name: link!.rx, netns: link!.rxNs }, streams: ids.map((svId) => ({ svId, appId: 0x4001, smpCntWrap: 4800 })), layouts, unknownSamples: 2 },
      c.handlers, { capabilities: caps!, stopOnSignals: false },
    );
    await lab.replay(link!, ['-q', pcap]);
    await sleep(300);
    const sum = await session.stop();
    for (const id of ids) {
      const got = c.events.filter((e) => e.svId === id).sort((a, b) => (a.tMonoNs < b.tMonoNs ? -1 : 1));
      assert.deepEqual(got.map((e) => e.smpCnt), Array.from({ length: 1000 }, (_, i) => 280 + i), `stream ${id}`);
      assert.ok(got.every((e) => e.appId === 0x4001 && e.iter === 0));
    }
    assert.equal(sum.points[0]!.unknown, 50);
    assert.deepEqual(sum.unknownFrames.map((u) => [u.appId, u.svIds]), [[0x4001, ['0104']], [0x4001, ['0104']]]);
    assert.equal(c.warnings.filter((w) => w.kind === 'unknown-frame').length, 2);
    assert.equal(sum.lostLines, 0);
  } finally {
    lab.destroy();
  }
});

test('untagged 50new.pcap (svID MU857SJ85Mod2MU103, long-form BER lengths) is learnt from traffic and traced', opts, async () => {
  const lab = createLab('c');
  const [link] = lab.links;
  try {
    const c = collect();
    const session = await startTrace(
      { engine: 'bpftrace', vmInterface: { name: link!.rx, netns: link!.rxNs }, streams: [{ svId: 'MU857SJ85Mod2MU103' }] },
      c.handlers,
      { capabilities: caps!, stopOnSignals: false, onLearnReady: () => { void lab.replay(link!, ['-q', '-L', '5', '--topspeed', fixture('50new.pcap')]); } },
    );
    assert.equal(session.layouts[0]!.asdus[0]!.svId, 'MU857SJ85Mod2MU103');
    await lab.replay(link!, ['-q', '--pps=2000', fixture('50new.pcap')]);
    await sleep(300);
    const sum = await session.stop();
    assert.deepEqual(c.events.map((e) => e.smpCnt).sort((a, b) => a - b), Array.from({ length: 80 }, (_, i) => i));
    assert.equal(sum.points[0]!.unknown, 0);
  } finally {
    lab.destroy();
  }
});

test('ifindex repeats across namespaces: the filter on (ifindex, netns inode) keeps them apart', opts, async () => {
  const lab = createLab('d', 2);
  const [l0, l1] = lab.links;
  try {
    const r0 = await resolveInterface({ name: l0!.rx, netns: l0!.rxNs });
    const r1 = await resolveInterface({ name: l1!.rx, netns: l1!.rxNs });
    assert.equal(r0.ifindex, r1.ifindex, 'premise: both receivers have the same ifindex');
    assert.notEqual(r0.netnsInode, r1.netnsInode);
    const [normal] = await readFrames('SV_Normal_Traffic.pcap');
    const c = collect();
    const session = await startTrace({
      engine: 'bpftrace',
      points: [
        { name: 'RX0', probe: 'tracepoint:net:netif_receive_skb', interface: { name: l0!.rx, netns: l0!.rxNs } },
        { name: 'RX1', probe: 'tracepoint:net:netif_receive_skb', interface: { name: l1!.rx, netns: l1!.rxNs } },
      ],
      layouts: [layoutFromFrame(normal!)],
    }, c.handlers, { capabilities: caps!, stopOnSignals: false });
    await lab.replay(l0!, ['-q', '-L', '100', '--pps=5000', fixture('SV_Normal_Traffic.pcap')]);
    await lab.replay(l1!, ['-q', '-L', '37', '--pps=5000', fixture('SV_Normal_Traffic.pcap')]);
    await sleep(300);
    const sum = await session.stop();
    assert.equal(c.events.filter((e) => e.point === 'RX0').length, 100);
    assert.equal(c.events.filter((e) => e.point === 'RX1').length, 37);
    assert.deepEqual(sum.points.map((p) => p.kernelFrames), [100, 37]);
  } finally {
    lab.destroy();
  }
});
