import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeFrame, encodeFrame, encodeLe, decodeLe, decodeQuality, createFrameScan, scanFrame, SCAN_ERRORS,
  svIdEquals, utcTimeToNs, type SvFrame,
} from '../../src/sv/index.ts';
import { SvtraceError } from '../../src/errors.ts';

function sample(overrides: Partial<SvFrame> = {}): SvFrame {
  return {
    dst: '01:0c:cd:04:00:01',
    src: '02:00:00:00:00:01',
    vlan: { priority: 4, dei: false, id: 100 },
    appId: 0x4000,
    reserved1: 0,
    simulated: false,
    reserved2: 0,
    asdus: [{ svId: 'MU01', smpCnt: 3999, confRev: 1, smpSynch: 2, seqData: encodeLe([1, -2, 3, -4, 5, -6, 7, -8], [0, 1, 2, 3, 0x2000, 0, 0, 0x2000]) }],
    ...overrides,
  };
}

function withoutLength(f: SvFrame): SvFrame {
  const { length: _l, lengthForms: _f, ...rest } = f;
  return rest;
}

test('decode(encode(x)) == x for a tagged 9-2LE frame', () => {
  const f = sample();
  const bytes = encodeFrame(f);
  const back = decodeFrame(bytes);
  assert.deepEqual(withoutLength(back), f);
  assert.equal(back.length, bytes.length - 18);
  assert.deepEqual(back.lengthForms, { savPdu: 0, seqAsdu: 0, asdus: [0] });
});

test('every optional field, several ASDUs, simulated bit, security, untagged', () => {
  const asdu = (i: number) => ({
    svId: `Station/LD${i}`, datSet: 'LD0/LLN0$PhsMeas1', smpCnt: i, confRev: 0xffffffff, smpSynch: 1,
    refrTm: Uint8Array.from([0x5f, 0, 0, 1, 0x80, 0, 0, 0x0a]), smpRate: 4000,
    seqData: new Uint8Array(64).fill(i), smpMod: 1, gmIdentity: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
  });
  const f = sample({ vlan: undefined, simulated: true, reserved2: 7, security: Uint8Array.from([9, 9]), asdus: [0, 1, 2, 3, 4, 5, 6, 7].map(asdu) });
  delete f.vlan;
  const bytes = encodeFrame(f);
  const back = decodeFrame(bytes);
  assert.deepEqual(withoutLength(back), f);
  // 8 ASDUs of ~150 bytes: the savPdu and seqASDU need two-octet long-form lengths
  assert.equal(back.lengthForms?.savPdu, 2);
  assert.equal(back.lengthForms?.seqAsdu, 2);
  assert.equal(utcTimeToNs(back.asdus[0]!.refrTm!), 0x5f000001n * 1_000_000_000n + 500_000_000n);
});

test('long-form lengths asked for are kept, and decode reports them', () => {
  const f = sample({ lengthForms: { savPdu: 1, seqAsdu: 1, asdus: [2] } });
  const bytes = encodeFrame(f);
  const back = decodeFrame(bytes);
  assert.deepEqual(back.lengthForms, { savPdu: 1, seqAsdu: 1, asdus: [2] });
  assert.deepEqual(encodeFrame(back), bytes);
});

test('trailing bytes and an FCS after the Length bound are ignored', () => {
  const bytes = encodeFrame(sample());
  const padded = new Uint8Array(bytes.length + 10);
  padded.set(bytes);
  padded.fill(0xee, bytes.length);
  assert.deepEqual(decodeFrame(padded), decodeFrame(bytes));
});

test('unknown optional tags inside an ASDU and the PDU are skipped', () => {
  const f = sample({ vlan: undefined });
  delete f.vlan;
  const bytes = encodeFrame(f);
  // insert an unknown context tag [0x8a] len 2 at the end of the ASDU and fix up the lengths
  const extra = [0x8a, 0x02, 0xab, 0xcd];
  const out = Uint8Array.from([...bytes, ...extra]);
  const s = createFrameScan();
  assert.equal(scanFrame(bytes, 0, bytes.length, s), 0);
  // lengths to bump: SV Length (offset 16), savPdu (23), seqASDU, ASDU
  const dv = new DataView(out.buffer);
  dv.setUint16(16, dv.getUint16(16) + 4);
  out[23] = out[23]! + 4; // savPdu short length
  const seqLenAt = 24 + 3 + 1; // 60 L | 80 01 01 | a2 L
  out[seqLenAt] = out[seqLenAt]! + 4;
  out[seqLenAt + 2] = out[seqLenAt + 2]! + 4; // 30 L
  const back = decodeFrame(out);
  assert.deepEqual(withoutLength(back), f);
});

test('9-2LE values, scaling and quality flags', () => {
  const f = decodeFrame(encodeFrame(sample()));
  const le = decodeLe(f.asdus[0]!.seqData)!;
  assert.deepEqual(le.values, [1, -2, 3, -4, 5, -6, 7, -8]);
  assert.equal(le.scaled[0], 0.001);
  assert.equal(le.scaled[4], 0.05);
  assert.deepEqual(le.quality, [0, 1, 2, 3, 0x2000, 0, 0, 0x2000]);
  assert.equal(decodeQuality(0).validity, 'good');
  assert.equal(decodeQuality(1).validity, 'invalid');
  assert.equal(decodeQuality(3).validity, 'questionable');
  assert.equal(decodeQuality(0x2000).derived, true);
  assert.equal(decodeQuality(0x800).test, true);
  assert.equal(decodeLe(new Uint8Array(48)), null);
});

test('the scan fast path gives identity and smpCnt of every ASDU', () => {
  const f = sample({ asdus: [0, 1, 2, 3].map((i) => ({ svId: i % 2 ? 'AB' : 'BA', smpCnt: 100 + i, confRev: 1, smpSynch: 0, seqData: new Uint8Array(64) })) });
  const bytes = encodeFrame(f);
  const s = createFrameScan();
  assert.equal(scanFrame(bytes, 0, bytes.length, s), 0);
  assert.equal(s.asduCount, 4);
  assert.deepEqual(Array.from(s.smpCnt.subarray(0, 4)), [100, 101, 102, 103]);
  assert.equal(s.appId, 0x4000);
  const ab = new TextEncoder().encode('AB');
  assert.deepEqual([0, 1, 2, 3].map((i) => svIdEquals(bytes, s, i, ab)), [false, true, false, true]);
});

function expectCode(bytes: Uint8Array, code: string, offset?: number) {
  assert.throws(() => decodeFrame(bytes), (e: unknown) => {
    assert.ok(e instanceof SvtraceError, `not a SvtraceError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (offset !== undefined) assert.equal(e.offset, offset, e.message);
    assert.ok(e.hint);
    return true;
  });
}

test('malformed frames give typed errors with the byte offset', () => {
  const good = encodeFrame(sample());
  expectCode(good.subarray(0, 10), 'SV_TRUNCATED', 0);
  expectCode(good.subarray(0, 20), 'SV_TRUNCATED', 18);
  const goose = good.slice(); goose[16] = 0x88; goose[17] = 0xb8;
  expectCode(goose, 'SV_NOT_SV', 16);
  const lying = good.slice(); new DataView(lying.buffer).setUint16(20, 500);
  expectCode(lying, 'SV_BAD_LENGTH', 20);
  const tiny = good.slice(); new DataView(tiny.buffer).setUint16(20, 4);
  expectCode(tiny, 'SV_BAD_LENGTH', 20);
  const badTag = good.slice(); badTag[26] = 0x61;
  expectCode(badTag, 'SV_BAD_TAG', 26);
  const zero = encodeFrame(sample());
  zero[30] = 0; // noASDU value
  expectCode(zero, 'SV_NO_ASDU');
  const mismatch = encodeFrame(sample()); mismatch[30] = 2;
  expectCode(mismatch, 'SV_ASDU_COUNT_MISMATCH');
  const indefinite = good.slice(); indefinite[27] = 0x80;
  expectCode(indefinite, 'SV_BAD_LENGTH', 27);
  // truncate inside the PDU while the Length field still claims the whole
  expectCode(good.subarray(0, good.length - 5), 'SV_BAD_LENGTH', 20);
});

test('a missing mandatory field is named', () => {
  const f = sample();
  const bytes = encodeFrame(f);
  // rename the smpCnt tag (0x82) into an unknown one (0x9f would be multi-byte; use 0x8b)
  const i = bytes.indexOf(0x82, 30);
  const mutated = bytes.slice(); mutated[i] = 0x8b;
  assert.throws(() => decodeFrame(mutated), /lacks smpCnt/);
  assert.equal(SCAN_ERRORS.includes('SV_MISSING_FIELD'), true);
});

test('encode refuses values that do not fit', () => {
  assert.throws(() => encodeFrame(sample({ appId: 0x10000 })), { code: 'SV_ENCODE_RANGE' });
  assert.throws(() => encodeFrame(sample({ asdus: [] })), { code: 'SV_ENCODE_RANGE' });
  assert.throws(() => encodeFrame(sample({ vlan: { priority: 8, dei: false, id: 1 } })), { code: 'SV_ENCODE_RANGE' });
  assert.throws(() => encodeFrame(sample({ dst: 'nope' })), { code: 'SV_BAD_MAC' });
  const a = sample().asdus[0]!;
  assert.throws(() => encodeFrame(sample({ asdus: [{ ...a, smpCnt: 70000 }] })), /smpCnt = 70000/);
  assert.throws(() => encodeFrame(sample({ asdus: [{ ...a, svId: 'Ω' }] })), /beyond one octet/);
});
