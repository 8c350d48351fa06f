import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBatch, createSchedule } from '../../src/publish/schedule.ts';
import { DEFAULT_WAVEFORM, expandStreams, formatSvId, type StreamsSpec } from '../../src/publish/streams.ts';
import { decodeFrame, decodeLe } from '../../src/sv/index.ts';

const base: StreamsSpec = {
  count: 3, svIdPattern: 'MU{n:02}', appIdBase: 0x4000, dstMacBase: '01:0c:cd:04:00:00', srcMacBase: '02:53:56:00:00:01',
  vlan: { id: 100, priority: 4 }, freqHz: 50, samplesPerCycle: 80, asdusPerFrame: 1, confRev: 1, smpSynch: 2, simulated: false,
  waveform: { ...DEFAULT_WAVEFORM, fault: { atS: 0.5, currentFactor: 10, voltageFactor: 0.5 } },
};

test('svID patterns and stream expansion', () => {
  assert.equal(formatSvId('MU{n:02}', 3), 'MU03');
  assert.equal(formatSvId('IED{n}/LD0', 12), 'IED12/LD0');
  const s = expandStreams(base);
  assert.deepEqual(s.map((x) => [x.svId, x.appId, x.dstMac]), [['MU01', 0x4000, '01:0c:cd:04:00:00'], ['MU02', 0x4001, '01:0c:cd:04:00:01'], ['MU03', 0x4002, '01:0c:cd:04:00:02']]);
  assert.throws(() => expandStreams({ ...base, svIdPattern: 'MU' }), { code: 'CONFIG_INVALID' });
  assert.throws(() => expandStreams({ ...base, appIdBase: 0xffff }), /pass 0xffff/);
});

test('one second: phase-aligned instants, smpCnt 0 on the second, real three-phase values and a fault step', () => {
  const streams = expandStreams(base);
  const notBefore = 1_700_000_000_123_456_789n;
  const sch = createSchedule(streams, { notBeforeNs: notBefore, durationS: 1 });
  assert.ok(sch.startNs >= notBefore && sch.startNs - notBefore < 250_000n);
  const batch = createBatch(20_000, 200);
  const n = sch.next(batch, 20_000, sch.startNs + 2_000_000_000n);
  assert.equal(n, 3 * 4000);
  assert.equal(sch.next(batch, 10, sch.startNs + 5_000_000_000n), 0, 'the run is over after its duration');
  const again = createSchedule(streams, { notBeforeNs: notBefore, durationS: 1 });
  again.next(batch, 20_000, sch.startNs + 2_000_000_000n);
  let wrapsSeen = 0;
  let maxIa = 0, maxIaFault = 0;
  for (let i = 0; i < n; i++) {
    const f = decodeFrame(batch.bytes, batch.offsets[i]!, batch.offsets[i]! + batch.lengths[i]!);
    const a = f.asdus[0]!;
    assert.equal(a.svId, streams[batch.stream[i]!]!.svId);
    assert.equal(a.smpCnt, batch.smpCnt[i]);
    // all streams share the instant of a sample; smpCnt k is due at k × 250 µs into its second
    assert.equal(batch.timesNs[i]! % 1_000_000_000n, BigInt(a.smpCnt) * 250_000n);
    if (i >= 3) assert.equal(batch.timesNs[i], batch.timesNs[i - (i % 3)]);
    if (a.smpCnt === 0 && i % 3 === 0) wrapsSeen++;
    const le = decodeLe(a.seqData)!;
    assert.equal(le.values[3], le.values[0]! + le.values[1]! + le.values[2]!, 'neutral is the sum of the phases');
    assert.deepEqual(le.quality, [0, 0, 0, 0x2000, 0, 0, 0, 0x2000]);
    const t = Number(batch.timesNs[i]! - sch.startNs) / 1e9;
    if (t < 0.5) maxIa = Math.max(maxIa, Math.abs(le.values[0]!));
    else maxIaFault = Math.max(maxIaFault, Math.abs(le.values[0]!));
  }
  assert.equal(wrapsSeen, 1);
  // 200 A rms → 282.8 A peak (in mA); ×10 after the fault
  assert.ok(Math.abs(maxIa - 282_843) < 300, String(maxIa));
  assert.ok(Math.abs(maxIaFault - 2_828_427) < 3000, String(maxIaFault));
});

test('4800/s with 2 ASDUs per frame: exact instants though the period is not a whole ns', () => {
  const streams = expandStreams({ ...base, count: 1, freqHz: 60, asdusPerFrame: 2 });
  const sch = createSchedule(streams, { notBeforeNs: 1_700_000_000_000_000_000n, durationS: 2 });
  const batch = createBatch(5000, 300);
  const n = sch.next(batch, 5000, sch.startNs + 10_000_000_000n);
  assert.equal(n, 4800);
  assert.equal(batch.timesNs[2400]! - batch.timesNs[0]!, 1_000_000_000n);
  const f = decodeFrame(batch.bytes, batch.offsets[1]!, batch.offsets[1]! + batch.lengths[1]!);
  assert.deepEqual(f.asdus.map((a) => a.smpCnt), [2, 3]);
  assert.equal(batch.iter[2400], 1);
  assert.throws(() => createSchedule(expandStreams({ ...base, asdusPerFrame: 3 }), { notBeforeNs: 0n, durationS: 1 }), /do not divide/);
});
