import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReceiver, type ReceivedFrames } from '../../src/subscribe/receiver.ts';
import { parseStreamFilter } from '../../src/subscribe/filter.ts';
import { encodeFrame, encodeLe } from '../../src/sv/index.ts';

function frame(svId: string, appId: number, smpCnt: number, asdus = 1): Uint8Array {
  return encodeFrame({
    dst: '01:0c:cd:04:00:01', src: '02:00:00:00:00:01', appId, reserved1: 0, simulated: false, reserved2: 0,
    asdus: Array.from({ length: asdus }, (_, i) => ({ svId, smpCnt: (smpCnt + i) % 4000, confRev: 1, smpSynch: 2, seqData: encodeLe([0, 0, 0, 0, 0, 0, 0, 0]) })),
  });
}

function batch(frames: Uint8Array[], t0 = 1_000n): ReceivedFrames {
  const total = frames.reduce((n, f) => n + f.length, 0);
  const out: ReceivedFrames = { count: frames.length, frames: new Uint8Array(total), offsets: new Uint32Array(frames.length), lengths: new Uint32Array(frames.length), kernelTsNs: new BigInt64Array(frames.length), appTsNs: new BigInt64Array(frames.length) };
  let at = 0;
  frames.forEach((f, i) => { out.frames.set(f, at); out.offsets[i] = at; out.lengths[i] = f.length; out.kernelTsNs[i] = t0 + BigInt(i) * 250_000n; out.appTsNs[i] = t0 + BigInt(i) * 250_000n + 7_000n; at += f.length; });
  return out;
}

test('samples with T3/T4, wrap iterations, loss and duplicates across batches; svIDs with equal byte sums apart', () => {
  const r = createReceiver(parseStreamFilter([]));
  const first = r.take(batch([frame('AB', 0x4000, 3998), frame('BA', 0x4000, 3998), frame('AB', 0x4000, 3999), frame('AB', 0x4000, 0)]));
  assert.equal(first.length, 4);
  assert.deepEqual(Array.from(first.iter.subarray(0, 4)), [0, 0, 0, 1]);
  assert.deepEqual(Array.from(first.stream.subarray(0, 4)), [0, 1, 0, 0]);
  assert.equal(first.t4Ns[0]! - first.t3Ns[0]!, 7_000n);
  const second = r.take(batch([frame('AB', 0x4000, 0), frame('AB', 0x4000, 5), frame('XY', 0x4000, 0, 2)]));
  assert.equal(second.length, 1 + 2, 'the duplicate is not a sample');
  const [ab, ba, xy] = r.summary();
  assert.equal(ab!.duplicates, 1);
  assert.equal(ab!.missing, 4);
  assert.deepEqual(ab!.gaps.map((g) => [g.fromSmpCnt, g.toSmpCnt]), [[1, 4]]);
  assert.equal(ba!.svId, 'BA');
  assert.equal(xy!.frames, 1);
  assert.equal(xy!.samples, 2);
});

test('--streams: svIDs, APPID ranges, and the svID "4001" is not APPID 0x4001', () => {
  const r = createReceiver(parseStreamFilter(['4001', '0x4010', '4020..4021']));
  const got = r.take(batch([frame('4001', 0x1, 0), frame('X', 0x4001, 0), frame('Y', 0x4010, 0), frame('Z', 0x4021, 0), frame('W', 0x4022, 0)]));
  assert.equal(got.length, 3);
  assert.deepEqual(r.streams.map((s) => s.svId), ['4001', 'Y', 'Z']);
  assert.equal(r.counters().filtered, 2);
  assert.throws(() => parseStreamFilter(['40ff..4000']), /runs backwards/);
});

test('malformed and foreign frames are counted, never recorded', () => {
  const r = createReceiver(parseStreamFilter([]));
  const liar = frame('A', 1, 0).slice(); new DataView(liar.buffer).setUint16(16, 999);
  const goose = frame('A', 1, 0).slice(); goose[12] = 0x88; goose[13] = 0xb8;
  assert.equal(r.take(batch([liar, goose, frame('A', 1, 1)])).length, 1);
  const c = r.counters();
  assert.equal(c.malformed, 1);
  assert.equal(c.otherFrames, 1);
  assert.match(c.firstErrors[0]!, /SV_BAD_LENGTH/);
});
