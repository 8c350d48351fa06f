import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertTimestamp, createTsConverter, decodeTsResol, encodeTsResol } from '../../src/pcap/timestamp.ts';
import type { TsResolution } from '../../src/pcap/types.ts';

/** The exact answer with bigints: floor(units · 10^9 / unitsPerSec), split into s and ns. */
function reference(res: TsResolution, units: bigint, offsetSec: bigint): { tsSec: number; tsNsec: number } {
  const per = BigInt(res.base) ** BigInt(res.exponent);
  return { tsSec: Number(units / per + offsetSec), tsNsec: Number(((units % per) * 1_000_000_000n) / per) };
}

const resolutions: TsResolution[] = [
  ...[0, 1, 3, 6, 9, 10, 12, 15].map((exponent) => ({ base: 10 as const, exponent })),
  ...[0, 1, 8, 9, 10, 20, 30, 31, 32, 33, 40].map((exponent) => ({ base: 2 as const, exponent })),
];

test('convertTimestamp is exact against bigint arithmetic for every resolution class', () => {
  let seed = 99;
  const rand32 = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return ((seed << 1) ^ (seed >>> 7)) >>> 0;
  };
  for (const res of resolutions) {
    const conv = createTsConverter(res, 0);
    const per = BigInt(res.base) ** BigInt(res.exponent);
    // values around "now" in that unit, the edges of 2^53 and 2^64, and remainders next to a whole second
    const now = 1_700_000_000n * per;
    const samples: bigint[] = [0n, 1n, per - 1n, per, per + 1n, now - 1n, now, now + per - 1n, (1n << 53n) - 1n, 1n << 53n, (1n << 64n) - 1n];
    for (let i = 0; i < 300; i++) samples.push((BigInt(rand32()) << 32n) | BigInt(rand32()), now + BigInt(rand32()));
    for (const units of samples) {
      if (units >= 1n << 64n) continue;
      const target = { tsSec: -1, tsNsec: -1 };
      convertTimestamp(conv, Number(units >> 32n), Number(units & 0xffffffffn), target);
      const want = reference(res, units, 0n);
      // Seconds beyond 2^53 cannot be exact numbers; compare what can be.
      if (units / per < 1n << 53n) assert.deepEqual(target, want, `${res.base}^-${res.exponent} units=${units}`);
      else assert.equal(target.tsNsec, want.tsNsec);
    }
  }
});

test('if_tsoffset is added in seconds', () => {
  const conv = createTsConverter({ base: 10, exponent: 6 }, -3600);
  const t = { tsSec: 0, tsNsec: 0 };
  convertTimestamp(conv, 0, 7_000_001, t);
  assert.deepEqual(t, { tsSec: 7 - 3600, tsNsec: 1000 });
});

test('if_tsresol byte: MSB clear = 10^-n, MSB set = 2^-n; encode inverts decode', () => {
  assert.deepEqual(decodeTsResol(6), { base: 10, exponent: 6 });
  assert.deepEqual(decodeTsResol(9), { base: 10, exponent: 9 });
  assert.deepEqual(decodeTsResol(0x80 | 30), { base: 2, exponent: 30 });
  for (let v = 0; v < 256; v++) assert.equal(encodeTsResol(decodeTsResol(v)), v);
});
