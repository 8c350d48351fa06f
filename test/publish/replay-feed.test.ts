/**
 * The replay's two passes without a network (src/publish/replay-plan.ts,
 * replay-frames.ts): what the first pass learns from the public captures,
 * and the frames, send times and identities the second pass produces, loop
 * after loop, for the capture's timing, --speed, --repace, copies, filters,
 * non-SV frames and damaged input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planReplay, nothingToReplay, type ReplayPlan } from '../../src/publish/replay-plan.ts';
import { clearBatch, createReplayBatch, createReplayFeeder, type CopySpec, type ReplayTiming } from '../../src/publish/replay-frames.ts';
import { readPacketBatches } from '../../src/publish/replay-read.ts';
import { parseStreamFilter } from '../../src/subscribe/filter.ts';
import { createSequence, observe } from '../../src/subscribe/sequence.ts';
import { capturePackets, writeCaptureFile } from '../../src/pcap/index.ts';
import { decodeFrame, encodeFrame, encodeLe } from '../../src/sv/index.ts';
import { resolveConfig } from '../../src/config/resolve.ts';
import { fixture } from '../helpers/cli.ts';

const all = parseStreamFilter([]);
const START = 1_800_000_000_000_000_000n;

interface Sent { bytes: Uint8Array; tNs: bigint; asdus: Array<{ stream: number; smpCnt: number; iter: number }> }

async function replayFrames(path: string, o: { loops?: number; timing?: Partial<ReplayTiming>; copies?: CopySpec; only?: string[]; sendOther?: boolean; skipBad?: boolean } = {}) {
  const filter = parseStreamFilter(o.only ?? []);
  const plan = await planReplay(path, { filter, sendOther: o.sendOther === true });
  const feeder = createReplayFeeder({
    plan, startNs: START, timing: { speed: 1, repace: false, ...o.timing }, copies: o.copies ?? { count: 1, svIdPattern: '{svid}_{n}' },
    filter, sendOther: o.sendOther === true, skipBad: o.skipBad === true, mtu: 1500, maxFrameBytes: 1600,
  });
  const sent: Sent[] = [];
  const outcomes: Record<string, number> = {};
  const batch = createReplayBatch(64, 1700 * feeder.framesPerPacket);
  for (let loop = 0; loop < (o.loops ?? 1); loop++) {
    feeder.startLoop(loop);
    for await (const packets of readPacketBatches(path)) {
      for (const p of packets) {
        clearBatch(batch);
        const r = feeder.add(p, batch);
        outcomes[r] = (outcomes[r] ?? 0) + 1;
        let a = 0;
        for (let i = 0; i < batch.count; i++) {
          const asdus = [];
          for (let k = 0; k < batch.asdus[i]!; k++, a++) asdus.push({ stream: batch.asduStream[a]!, smpCnt: batch.asduSmpCnt[a]!, iter: batch.asduIter[a]! });
          sent.push({ bytes: batch.bytes.slice(batch.offsets[i]!, batch.offsets[i]! + batch.lengths[i]!), tNs: batch.timesNs[i]!, asdus });
        }
      }
    }
  }
  return { plan, feeder, sent, outcomes };
}

test('the first pass learns each public capture as inspect sees it: streams, wrap, span, rate, loop period', async () => {
  const expect: Record<string, { svId: string; appId: number; wrap: number; first: number; span: number; rate: number }> = {
    'SV_Normal_Traffic.pcap': { svId: '4001', appId: 0x4001, wrap: 4800, first: 280, span: 10_161, rate: 4800 },
    '50new.pcap': { svId: 'MU857SJ85Mod2MU103', appId: 0x4000, wrap: 4000, first: 0, span: 80, rate: 94.6 },
    'pcapQual.pcap': { svId: 'MU857SJ85Mod2MU103', appId: 0x4001, wrap: 4000, first: 0, span: 80, rate: 89.2 },
    'pcap4000.pcap': { svId: 'MU857SJ85Mod2MU103', appId: 0x4000, wrap: 4000, first: 0, span: 4000, rate: 93.7 },
  };
  for (const [file, e] of Object.entries(expect)) {
    const plan = await planReplay(fixture(file), { filter: all, sendOther: false });
    assert.equal(plan.streams.length, 1, file);
    const s = plan.streams[0]!;
    assert.deepEqual([s.svId, s.appId, s.wrap, s.firstSmpCnt, s.spanSamples], [e.svId, e.appId, e.wrap, e.first, e.span], file);
    assert.ok(Math.abs(s.rateHz! - e.rate) / e.rate < 0.01, `${file}: rate ${s.rateHz}`);
    assert.equal(s.rateHz, plan.inspect[0]!.rateHz, 'the rate is inspect\'s');
    // the loop period: the capture's span plus one mean frame interval
    assert.equal(plan.loopNs, Math.round((s.lastRelNs - s.firstRelNs) * s.frames / (s.frames - 1)), file);
    assert.equal(plan.damage, null);
  }
});

test('loops: smpCnt continues across every seam and wraps at the stream\'s rate; timing is continuous at the seam', async () => {
  const path = fixture('SV_Normal_Traffic.pcap');
  const { plan, sent } = await replayFrames(path, { loops: 3 });
  assert.equal(sent.length, 3 * 10_161);
  const seq = createSequence(4800);
  let abs = 280;
  for (const [i, f] of sent.entries()) {
    const d = decodeFrame(f.bytes).asdus[0]!;
    assert.equal(d.smpCnt, abs % 4800, `frame ${i}`);
    assert.equal(f.asdus[0]!.smpCnt, d.smpCnt);
    assert.equal(f.asdus[0]!.iter, Math.floor(abs / 4800), 'wrap iteration as a subscriber counts it');
    assert.equal(observe(seq, d.smpCnt), f.asdus[0]!.iter);
    abs++;
  }
  assert.equal(seq.missing, 0);
  assert.equal(seq.duplicates, 0);
  // loop 0 is the capture byte for byte
  let i = 0;
  for await (const p of capturePackets(path)) assert.deepEqual(sent[i++]!.bytes, p.data);
  // the gaps of loop 1 are the capture's; the seam's is the mean interval
  const gap = (k: number) => Number(sent[k + 1]!.tNs - sent[k]!.tNs);
  const mean = plan.loopNs / 10_161;
  assert.ok(Math.abs(gap(10_160) - mean) < 1, `seam gap ${gap(10_160)} ns, mean ${mean}`);
  assert.ok(Math.abs(gap(2 * 10_161 - 1) - mean) < 1);
  for (let k = 0; k < 10_160; k += 997) assert.ok(Math.abs(gap(k) - gap(k + 10_161)) <= 1, 'loop 1 keeps the capture\'s gaps');
  assert.equal(sent[0]!.tNs, START);
});

test('--speed divides the capture\'s time; --repace sends each stream at its nominal period', async () => {
  const path = fixture('pcap4000.pcap');
  const fast = await replayFrames(path, { timing: { speed: 20 } });
  const slow = await replayFrames(path);
  const span = (x: typeof fast) => Number(x.sent.at(-1)!.tNs - x.sent[0]!.tNs);
  assert.ok(Math.abs(span(slow) / span(fast) - 20) < 1e-6);
  // repace: SV_Normal at exactly 4800/s, loops included (sample j at j × 1e9 / 4800 ns)
  const re = await replayFrames(fixture('SV_Normal_Traffic.pcap'), { timing: { repace: true }, loops: 2 });
  for (const [j, f] of re.sent.entries()) assert.equal(f.tNs - START, BigInt(Math.round((j * 1e9) / 4800)), `sample ${j}`);
  // a stream whose rate is not a usual one is repaced at its measured rate
  const odd = await replayFrames(fixture('50new.pcap'), { timing: { repace: true } });
  const rate = odd.plan.streams[0]!.rateHz!;
  assert.equal(odd.plan.streams[0]!.nominalRateHz, rate);
  assert.equal(odd.sent[79]!.tNs - START, BigInt(Math.round((79 * 1e9) / rate)));
});

test('copies: each has its own svID, APPID and source MAC, and smpCnt of its own stream; the record names them apart', async () => {
  const { feeder, sent } = await replayFrames(fixture('50new.pcap'), { copies: { count: 3, svIdPattern: 'IED{n:02}/{svid}' }, loops: 2 });
  assert.deepEqual(feeder.streams.map((s) => [s.svId, s.appId]), [1, 2, 3].map((n) => [`IED0${n}/MU857SJ85Mod2MU103`, 0x4000 + n - 1]));
  assert.equal(sent.length, 2 * 80 * 3);
  for (const [i, f] of sent.entries()) {
    const copy = i % 3, sample = Math.floor(i / 3);
    const d = decodeFrame(f.bytes);
    assert.equal(d.asdus[0]!.svId, `IED0${copy + 1}/MU857SJ85Mod2MU103`);
    assert.equal(d.appId, 0x4000 + copy);
    assert.equal(d.src, `b0:be:76:8c:d6:${(0xa6 + copy).toString(16)}`);
    assert.equal(d.asdus[0]!.smpCnt, sample, 'loop 2 continues at 80');
    assert.deepEqual(f.asdus, [{ stream: copy, smpCnt: sample, iter: 0 }]);
    assert.equal(f.tNs, sent[i - copy]!.tNs, 'the copies of a frame go together');
  }
  await assert.rejects(replayFrames(fixture('50new.pcap'), { copies: { count: 2, svIdPattern: 'same' } }), /gives "same" twice/);
});

/** A capture mixing SV, another ethertype, a malformed SV frame, and a cut tail. */
async function mixedCapture(dir: string): Promise<string> {
  const sv = (smpCnt: number, svId: string) => encodeFrame({
    dst: '01:0c:cd:04:00:01', src: '02:00:00:00:00:01', appId: svId === 'B' ? 0x4002 : 0x4001, reserved1: 0, simulated: false, reserved2: 0,
    asdus: [{ svId, smpCnt, confRev: 1, smpSynch: 2, seqData: encodeLe([1, 2, 3, 4, 5, 6, 7, 8]) }],
  });
  const arp = new Uint8Array(60); arp.fill(0xff, 0, 6); arp[12] = 0x08; arp[13] = 0x06;
  const bad = sv(3, 'A'); bad[bad.length - 66] = 0x7f; // seqData's length now lies
  const frames = [sv(0, 'A'), sv(0, 'B'), arp, sv(1, 'A'), sv(1, 'B'), sv(2, 'A'), bad, sv(4, 'A'), arp];
  const path = join(dir, 'mixed.pcap');
  await writeCaptureFile(path, frames.map((data, i) => ({ tsNs: 1_700_000_000_000_000_000n + BigInt(i) * 250_000n, data })), { format: 'pcap-ns' });
  return path;
}

test('non-SV frames are skipped and counted, or sent as they are; filters keep streams by svID or APPID; a malformed frame stops the replay unless --skip-bad', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-replay-feed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = await mixedCapture(dir);
  const plan = await planReplay(path, { filter: all, sendOther: false });
  assert.deepEqual([plan.packets, plan.svFrames, plan.otherFrames, plan.badFrames, plan.firstBad?.packet], [9, 6, 2, 1, 7]);
  await assert.rejects(replayFrames(path), (e: Error & { code?: string }) => e.code === 'REPLAY_MALFORMED_FRAME' && /packet 7/.test(e.message));
  const skipped = await replayFrames(path, { skipBad: true });
  assert.deepEqual(skipped.outcomes, { sent: 6, other: 2, bad: 1 });
  const other = await replayFrames(path, { skipBad: true, sendOther: true });
  assert.deepEqual(other.outcomes, { sent: 6, 'other-sent': 2, bad: 1 });
  assert.equal(other.sent[2]!.bytes[12], 0x08, 'the ARP frame goes as it is, in its place');
  assert.deepEqual(other.sent[2]!.asdus, [], 'and has no T0');
  const onlyB = await replayFrames(path, { skipBad: true, only: ['appid:4002'] });
  assert.deepEqual(onlyB.sent.map((f) => decodeFrame(f.bytes).asdus[0]!.svId), ['B', 'B']);
  const onlyA = await replayFrames(path, { skipBad: true, only: ['A'] });
  assert.deepEqual(onlyA.sent.map((f) => decodeFrame(f.bytes).asdus[0]!.smpCnt), [0, 1, 2, 4]);
  const none = await planReplay(path, { filter: parseStreamFilter(['nope']), sendOther: false });
  assert.match(nothingToReplay(path, none).message, /no SV frame .* matches the stream filter/);
});

test('a capture with no SV says so; a truncated capture gives every packet before the cut, then its damage', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-replay-feed-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const arp = new Uint8Array(60); arp[12] = 0x08; arp[13] = 0x06;
  const noSv = join(dir, 'arp.pcap');
  await writeCaptureFile(noSv, [{ tsNs: 1n, data: arp }, { tsNs: 2n, data: arp }], { format: 'pcap' });
  const plan: ReplayPlan = await planReplay(noSv, { filter: all, sendOther: false });
  assert.equal(plan.svFrames, 0);
  const e = nothingToReplay(noSv, plan);
  assert.equal(e.code, 'REPLAY_NO_SV');
  assert.equal(e.kind, 'usage');
  assert.match(e.message, /holds no Sampled Values frame to replay \(2 packets: 2 not SV/);
  // cut SV_Normal_Traffic in the middle of packet 5001's record
  const whole = readFileSync(fixture('SV_Normal_Traffic.pcap'));
  const cut = join(dir, 'cut.pcap');
  writeFileSync(cut, whole.subarray(0, 24 + 5000 * (16 + 120) + 70));
  const r = await replayFrames(cut, { loops: 2 });
  assert.equal(r.sent.length, 2 * 5000);
  const p2 = await planReplay(cut, { filter: all, sendOther: false });
  assert.equal(p2.svFrames, 5000);
  assert.equal(p2.damage?.code, 'CAPTURE_CORRUPT');
  assert.match(p2.damage!.message, /cut short after packet 5000/);
  // a corrupt record header (an impossible captured length) right after packet 100
  const bad = Buffer.from(whole);
  bad.writeUInt32LE(0x7fffffff, 24 + 100 * 136 + 8);
  const corrupt = join(dir, 'corrupt.pcap');
  writeFileSync(corrupt, bad);
  const reader = readPacketBatches(corrupt);
  let n = 0, end;
  for (let x = await reader.next(); ; x = await reader.next()) { if (x.done) { end = x.value; break; } n += x.value.length; }
  assert.equal(n, 100);
  assert.match(end.damage!.message, /damaged after packet 100/);
});

test('config: [publish] pcap, loop (a number or "forever"), speed and repace are the replay options, validated', () => {
  const c = resolveConfig({ publish: { pcap: 'a.pcap', loop: 'forever', speed: 2.5, repace: true } });
  assert.deepEqual([c.publish.pcap, c.publish.loop, c.publish.speed, c.publish.repace], ['a.pcap', 'forever', 2.5, true]);
  assert.deepEqual([resolveConfig({}).publish.loop, resolveConfig({}).publish.speed], [1, 1]);
  for (const bad of [{ loop: 0 }, { loop: 'always' }, { speed: 0 }, { speed: 5000 }, { repace: 'yes' }, { pcap: '' }, { loops: 2 }]) {
    assert.throws(() => resolveConfig({ publish: bad }), (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID', JSON.stringify(bad));
  }
});
