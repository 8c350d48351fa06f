/**
 * Throws a million mutated and random frames at the parser. Properties:
 * it never throws (scan) or throws only SvtraceError (decode), never reads
 * past the frame's end (a frame scanned inside a larger buffer full of
 * random bytes gives the same result as the exact-size copy), and every
 * offset it reports lies inside the frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFrameScan, scanFrame, decodeFrame, encodeFrame, encodeLe, FIELD_COUNT, type SvFrame } from '../../src/sv/index.ts';
import { SvtraceError } from '../../src/errors.ts';

// xorshift32: deterministic, so a failure can be replayed from its iteration number
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
}

function seeds(): Uint8Array[] {
  const base: SvFrame = {
    dst: '01:0c:cd:04:00:01', src: '02:00:00:00:00:01', appId: 0x4000, reserved1: 0, simulated: false, reserved2: 0,
    asdus: [{ svId: 'MU01', smpCnt: 1, confRev: 1, smpSynch: 2, seqData: encodeLe([1, 2, 3, 4, 5, 6, 7, 8]) }],
  };
  const tagged: SvFrame = { ...base, vlan: { priority: 4, dei: false, id: 1 } };
  const multi: SvFrame = { ...tagged, asdus: [0, 1, 2].map((i) => ({ svId: `S${i}`, datSet: 'DS', smpCnt: i, confRev: 1, smpSynch: 0, smpRate: 4000, refrTm: new Uint8Array(8), gmIdentity: new Uint8Array(8), seqData: new Uint8Array(64) })) };
  const long: SvFrame = { ...base, lengthForms: { savPdu: 1, seqAsdu: 2, asdus: [1] } };
  return [base, tagged, multi, long].map(encodeFrame);
}

function checkScan(frame: Uint8Array, padded: Uint8Array, s1: ReturnType<typeof createFrameScan>, s2: ReturnType<typeof createFrameScan>, iter: number) {
  const st1 = scanFrame(frame, 0, frame.length, s1);
  const st2 = scanFrame(padded, 0, frame.length, s2);
  if (st1 !== st2 || s1.asduCount !== s2.asduCount || (st1 !== 0 && s1.errorOffset !== s2.errorOffset)) {
    assert.fail(`iteration ${iter}: result depends on bytes past the frame end (${st1} vs ${st2})`);
  }
  if (st1 === 0) {
    for (let k = 0; k < s1.asduCount * FIELD_COUNT; k++) {
      const o = s1.fieldOffset[k]!;
      if (o >= 0 && (o < 0 || o + s1.fieldLength[k]! > frame.length)) assert.fail(`iteration ${iter}: field ${k} outside the frame`);
    }
  } else if (s1.errorOffset < 0 || s1.errorOffset > frame.length) {
    assert.fail(`iteration ${iter}: error offset ${s1.errorOffset} outside the frame (${frame.length} bytes)`);
  }
  return st1;
}

test('a million mutated and random frames: no crash, no out-of-bounds read, typed errors', () => {
  const next = rng(0x5eed);
  const base = seeds();
  const s1 = createFrameScan();
  const s2 = createFrameScan();
  const padded = new Uint8Array(2048);
  let ok = 0, bad = 0;
  const N = 1_000_000;
  for (let iter = 0; iter < N; iter++) {
    let frame: Uint8Array;
    const kind = iter % 10;
    if (kind === 9) {
      // random bytes behind a valid Ethernet + SV prefix, so the PDU parser is reached
      const len = 14 + (next() % 200);
      frame = new Uint8Array(len);
      for (let k = 0; k < len; k++) frame[k] = next() & 0xff;
      if (len >= 14) { frame[12] = 0x88; frame[13] = 0xba; }
    } else {
      const src = base[iter % base.length]!;
      frame = src.slice(0, src.length - (kind === 8 ? next() % src.length : 0));
      const flips = 1 + (next() % 4);
      for (let k = 0; k < flips && frame.length; k++) {
        const at = next() % frame.length;
        frame[at] = kind < 4 ? next() & 0xff : frame[at]! ^ (1 << (next() % 8));
      }
    }
    padded.set(frame);
    // random bytes right behind the frame: a read past its end would see them
    for (let k = frame.length; k < frame.length + 64; k += 4) {
      const r = next();
      padded[k] = r; padded[k + 1] = r >> 8; padded[k + 2] = r >> 16; padded[k + 3] = r >> 24;
    }
    const st = checkScan(frame, padded, s1, s2, iter);
    if (st === 0) ok++; else bad++;
    if (iter % 50 === 0) {
      // the object decoder must agree and fail only with SvtraceError
      try {
        decodeFrame(frame);
        assert.equal(st, 0, `iteration ${iter}: decode accepted what scan refused`);
      } catch (e) {
        if (!(e instanceof SvtraceError)) assert.fail(`iteration ${iter}: ${String(e)}`);
        assert.notEqual(st, 0);
      }
    }
  }
  // both outcomes must be exercised, or the fuzzer is not fuzzing
  assert.ok(ok > 10_000 && bad > 100_000, `ok ${ok}, bad ${bad}`);
});
