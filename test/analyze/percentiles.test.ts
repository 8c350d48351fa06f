/**
 * Exact nearest-rank percentiles against brute force (ties, tiny n,
 * negatives, zeros, heavy tails), the bucket rule in SQL against JS, the
 * display histogram and exceedance curve, and the verdict rules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { analyzeRecords, evaluateVerdicts, verdictRules } from '../../src/analyze/index.ts';
import { bucketHighNs, bucketLowNs, bucketOf, bucketSql, displayHistogram, edgeAtOrAbove, exceedance, locateRank, mergeFine } from '../../src/analyze/histogram.ts';
import { brute, prng, tAt, writeRecord, type TestRow } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'svtrace-pct-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function tsubOf(name: string, values: readonly number[]) {
  const rows: TestRow[] = [];
  values.forEach((v, smp) => {
    const t3 = tAt(0, smp, 4000, 10_000);
    rows.push({ point: 'T3', svId: 'S', smpCnt: smp, tNs: t3 }, { point: 'T4', svId: 'S', smpCnt: smp, tNs: t3 + BigInt(v) });
  });
  const res = await analyzeRecords([await writeRecord(join(dir, name), { role: 'subscribe', host: 'vm', points: ['T3', 'T4'] }, rows)], { verdicts: { limitsUs: {}, maxMissing: 0 } });
  return res.segments.find((s) => s.segment === 'Tsub')!;
}

test('percentiles are the nearest-rank values of brute force, with ties, tiny n, negatives and tails', async () => {
  const r = prng(5);
  const cases: [string, number[]][] = [
    ['one', [42_000]],
    ['two', [5_000, 3_000]],
    ['three-ties', [7_000, 7_000, 1_000]],
    ['ties', Array.from({ length: 1001 }, () => 1000 * Math.floor(r() * 20))],
    ['tails', Array.from({ length: 4000 }, () => Math.round(r() < 0.01 ? 200_000 + r() * 1e7 : 20_000 + r() * 40_000 - (r() < 0.02 ? 70_000 : 0)))],
    ['zeros', Array.from({ length: 997 }, (_, i) => (i % 3 === 0 ? 0 : i % 3 === 1 ? -1 : 1))],
  ];
  for (const [name, values] of cases) {
    const s = await tsubOf(name, values);
    const want = brute(values);
    assert.equal(s.all.count, values.length, name);
    assert.equal(s.all.minNs, want.min, name);
    assert.equal(s.all.maxNs, want.max, name);
    assert.equal(s.all.negative, want.negative, name);
    for (const [k, v] of Object.entries(want.p)) assert.equal(s.all.percentilesNs[k as 'p50'], v, `${name} ${k}`);
    assert.equal(s.histogram.reduce((a, b) => a + b.count, 0), values.length);
  }
});

test('the SQL bucket rule is the JS rule, monotone, and its edges are exact', async () => {
  const values = [-1e9, -1_000_001, -1000, -101, -100, -99, -11, -10, -9, -2, -1, 0, 1, 2, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 1009, 1010, 1_000_000, 14_612_000, 1e9, 2 ** 52];
  const r = prng(1);
  for (let i = 0; i < 500; i++) values.push(Math.round((r() - 0.3) * 10 ** (1 + r() * 8)));
  values.sort((a, b) => a - b);
  const inst = await DuckDBInstance.create(':memory:');
  const c = await inst.connect();
  const got = (await c.runAndReadAll(`SELECT ${bucketSql('v')} AS b FROM (SELECT unnest([${values.join(', ')}]::BIGINT[]) AS v)`)).getRowObjectsJS().map((x) => Number(x.b));
  c.closeSync();
  inst.closeSync();
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!, b = got[i]!;
    if (i > 0) assert.ok(b >= got[i - 1]!, `monotone at ${v}`);
    assert.equal(b, bucketOf(v), `bucket of ${v}`);
    if (v >= 0) assert.ok(bucketLowNs(b) <= v && v < bucketHighNs(b), `${v} in [${bucketLowNs(b)}, ${bucketHighNs(b)})`);
  }
  assert.equal(bucketOf(edgeAtOrAbove(10 ** 3.1)), bucketOf(1260)); // log edges land on bucket edges
  assert.equal(bucketLowNs(bucketOf(edgeAtOrAbove(10 ** 3.1))), 1260);
});

test('display histogram, exceedance and rank location', () => {
  const values = [-3, -3, 0, 20_000, 20_000, 20_000, 20_001, 20_049, 20_050, 20_099, 20_100, 20_100, 20_100, 50_000, 50_000, 50_000, 50_000, 50_000, 14_612_000, 400_000_000];
  const fine = mergeFine([values.map((v) => ({ bucket: bucketOf(v), count: 1 }))]);
  const h = displayHistogram(fine, -3, 400_000_000);
  assert.equal(h.length, 52);
  assert.equal(h[0]!.count, 3); // below 1 µs, with negatives
  assert.equal(h.at(-1)!.count, 1); // ≥ 100 ms
  assert.equal(h.reduce((s, b) => s + b.count, 0), values.length);
  for (const bin of h.slice(1, -1)) assert.equal(bin.count, values.filter((v) => v >= bin.loNs && v < bin.hiNs).length, `bin [${bin.loNs}, ${bin.hiNs})`);
  const ex = exceedance(fine, values.length);
  for (let i = 1; i < ex.length; i++) assert.ok(ex[i]!.share <= ex[i - 1]!.share && ex[i]!.thresholdNs > ex[i - 1]!.thresholdNs);
  for (const p of ex) assert.equal(p.count, values.filter((v) => v >= p.thresholdNs).length, `≥ ${p.thresholdNs}`);
  assert.equal(ex.at(-1)!.count, 1);
  const sorted = [...values].sort((a, b) => a - b);
  for (const rank of [1, 3, 4, 13, 20]) {
    const at = locateRank(fine, rank)!;
    assert.equal(at.bucket, bucketOf(sorted[rank - 1]!));
  }
  assert.equal(locateRank(fine, 21), null);
});

test('verdict rules: max by default, percentile keys, at, unknown names refused', () => {
  const names = ['Ttot', 'Thyp', 'Tsub', 'Tovs'];
  assert.deepEqual(verdictRules({ limitsUs: { Ttot: 200, Ttot_p99_99: 150, Thyp_p99: 80 }, maxMissing: 0 }, names).map((r) => [r.segment, r.statistic, r.limitUs]),
    [['Ttot', 'max', 200], ['Ttot', 99.99, 150], ['Thyp', 99, 80]]);
  assert.deepEqual(verdictRules({ limitsUs: { Tovs: 50 }, maxMissing: 0, at: 'p99.9' }, names).map((r) => r.statistic), [99.9]);
  assert.throws(() => verdictRules({ limitsUs: { Ttotal: 200 }, maxMissing: 0 }, names), { code: 'ANALYZE_UNKNOWN_SEGMENT' });
  assert.throws(() => verdictRules({ limitsUs: {}, maxMissing: 0, at: 'p101' as 'p99' }, names), { code: 'ANALYZE_BAD_PERCENTILE' });
  const rules = verdictRules({ limitsUs: { Ttot: 200, Thyp: 100, Tsub: 100 }, maxMissing: 2 }, names);
  const measured: Record<string, number | null> = { Ttot: 200_000, Thyp: 100_001, Tsub: null };
  const v = evaluateVerdicts(rules, (seg) => measured[seg] ?? null, 3, 2);
  assert.deepEqual(v.map((x) => x.status), ['pass', 'fail', 'not-measured', 'fail']);
  assert.equal(evaluateVerdicts(rules, () => 1, 2, 2).at(-1)!.status, 'pass');
});
