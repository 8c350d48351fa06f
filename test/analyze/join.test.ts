/**
 * The join against brute force: three records from three "machines" (T0;
 * T1,T2 as Parquet; T3,T4 shuffled), streams at 4000/s and 4800/s (the
 * latter's rate learnt from the data), loss at one point / after a point /
 * everywhere, a duplicated point, reordering, latency spikes and a run of
 * late samples, wraps over several seconds. Every figure is recomputed here
 * from the generated samples.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeRecords, type AnalysisResult } from '../../src/analyze/index.ts';
import { brute, longestRun, prng, tAt, writeRecord, type TestRow } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'svtrace-join-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const POINTS = ['T0', 'T1', 'T2', 'T3', 'T4'];
const SEGS: Record<string, [number, number]> = { Tnet: [0, 1], Thyp: [1, 2], Ttrans: [2, 3], Tsub: [3, 4], Tseapath: [1, 4], Ttot: [0, 4] };
interface Sample { svId: string; rate: number; sec: number; smp: number; t: (bigint | null)[] }
const HOSTILE = '<script>alert(1)</script>';
const STREAMS = [{ svId: 'MU01', rate: 4000 }, { svId: 'MU02', rate: 4800 }, { svId: HOSTILE, rate: 4000 }];
const SECONDS = 3;

function world(seed: number): { samples: Sample[]; dupT2: Map<string, bigint> } {
  const r = prng(seed);
  const samples: Sample[] = [];
  for (const { svId, rate } of STREAMS) {
    for (let sec = 0; sec < SECONDS; sec++) {
      for (let smp = 0; smp < rate; smp++) {
        const t0 = tAt(sec, smp, rate, 2000 + r() * 1000);
        const t1 = t0 + BigInt(Math.round(5000 + r() * 2000));
        let hyp = 10_000 + r() * 50_000;
        if (r() < 0.01) hyp = 150_000 + r() * 250_000;
        if (svId === 'MU01' && sec === 1 && smp >= 100 && smp < 105) hyp = 120_000 + smp; // a run of 5 late samples
        const t2 = t1 + BigInt(Math.round(hyp));
        const t3 = t2 + BigInt(Math.round(3000 + r() * 4000));
        let sub = 10_000 + r() * 20_000;
        if (svId === HOSTILE && sec === 1 && smp === 299) sub = 400_000; // sample 300 overtakes it at T4
        samples.push({ svId, rate, sec, smp, t: [t0, t1, t2, t3, t3 + BigInt(Math.round(sub))] });
      }
    }
  }
  const find = (svId: string, sec: number, smp: number) => samples.find((s) => s.svId === svId && s.sec === sec && s.smp === smp)!;
  find('MU01', 1, 500).t[0] = null; // no TX timestamp, the frame went through
  const b = find('MU02', 2, 10); b.t[2] = b.t[3] = b.t[4] = null; // dropped in the hypervisor
  find(HOSTILE, 0, 7).t = [null, null, null, null, null]; // lost on the wire: seen nowhere
  const dupT2 = new Map([['MU01:0:20', find('MU01', 0, 20).t[2]! + 1_000_000n]]);
  return { samples, dupT2 };
}

function rowsOf(samples: Sample[], points: number[], dupT2: Map<string, bigint>): TestRow[] {
  const out: TestRow[] = [];
  for (const s of samples) {
    for (const p of points) {
      const t = s.t[p];
      if (t !== null && t !== undefined) out.push({ point: POINTS[p]!, svId: s.svId, smpCnt: s.smp, iter: s.sec, tNs: t });
      const dup = dupT2.get(`${s.svId}:${s.sec}:${s.smp}`);
      if (p === 2 && dup !== undefined) out.push({ point: 'T2', svId: s.svId, smpCnt: s.smp, iter: s.sec, tNs: dup });
    }
  }
  return out;
}

const seg = (res: AnalysisResult, name: string) => res.segments.find((s) => s.segment === name)!;

test('three machines: joined segments, losses, duplicates, reordering and pacing equal brute force', async () => {
  const { samples, dupT2 } = world(7);
  const run = join(dir, 'run1');
  const manifestStreams = [{ svId: 'MU01', appId: 16384, rate: 4000 }, { svId: HOSTILE, appId: 16386, rate: 4000 }];
  await writeRecord(join(run, 'pub'), { role: 'publish', host: 'pub', points: ['T0'], streams: manifestStreams }, rowsOf(samples, [0], dupT2));
  await writeRecord(join(run, 'hv'), { role: 'trace', host: 'hv', points: ['T1', 'T2'], format: 'parquet' }, rowsOf(samples, [1, 2], dupT2));
  const vmRows = rowsOf(samples, [3, 4], dupT2);
  const shuffle = prng(99);
  for (let i = vmRows.length - 1; i > 0; i--) { const j = Math.floor(shuffle() * (i + 1)); [vmRows[i], vmRows[j]] = [vmRows[j]!, vmRows[i]!]; }
  await writeRecord(join(run, 'vm'), { role: 'subscribe', host: 'vm', points: ['T3', 'T4'] }, vmRows);

  const res = await analyzeRecords([run], { verdicts: { limitsUs: { Thyp: 100, Ttot: 500 }, maxMissing: 0 } });
  assert.equal(res.records.length, 3);
  assert.deepEqual(res.points, POINTS);
  assert.equal(res.samples, samples.filter((s) => s.t.some((t) => t !== null)).length);

  for (const st of STREAMS) {
    const mine = samples.filter((s) => s.svId === st.svId);
    const sr = res.streams.find((s) => s.svId === st.svId)!;
    assert.equal(sr.rate, st.rate);
    assert.equal(sr.rateFrom, st.svId === 'MU02' ? 'data' : 'manifest');
    for (let p = 0; p < 5; p++) {
      const ks = mine.filter((s) => s.t[p] !== null).map((s) => s.sec * st.rate + s.smp);
      const pr = sr.points[p]!;
      assert.equal(pr.seen, ks.length, `${st.svId} ${POINTS[p]} seen`);
      assert.equal(pr.lost, Math.max(...ks) - Math.min(...ks) + 1 - ks.length, `${st.svId} ${POINTS[p]} lost`);
      assert.equal(pr.duplicates, st.svId === 'MU01' && p === 2 ? 1 : 0);
      // pacing: consecutive pairs present at the point, and how many were overtaken
      const at = new Map(mine.filter((s) => s.t[p] !== null).map((s) => [s.sec * st.rate + s.smp, s.t[p]!]));
      let pairs = 0, reordered = 0;
      for (const [k, t] of at) {
        const prev = at.get(k - 1);
        if (prev === undefined) continue;
        pairs++;
        if (t < prev) reordered++;
      }
      assert.equal(pr.pacing.pairs, pairs, `${st.svId} ${POINTS[p]} pairs`);
      assert.equal(pr.pacing.reordered, reordered, `${st.svId} ${POINTS[p]} reordered`);
    }
    assert.equal(sr.missing, sr.points.at(-1)!.lost, 'missing = not delivered: lost at the last point');
  }
  assert.equal(res.streams.find((s) => s.svId === HOSTILE)!.points[4]!.pacing.reordered >= 1, true);
  assert.equal(res.streams.find((s) => s.svId === 'MU02')!.points[4]!.lost, 1);
  assert.equal(res.streams.find((s) => s.svId === HOSTILE)!.missing, 1); // lost on the wire
  assert.equal(res.streams.find((s) => s.svId === 'MU02')!.missing, 1); // dropped in the hypervisor
  const mu01 = res.streams.find((s) => s.svId === 'MU01')!;
  assert.equal(mu01.points[0]!.lost, 1, 'MU01 has no T0 for one sample');
  assert.equal(mu01.missing, 0, 'but that sample was delivered: not missing');

  for (const [name, [a, b]] of Object.entries(SEGS)) {
    const sr = seg(res, name);
    const all: number[] = [];
    for (const st of STREAMS) {
      const vals = samples.filter((s) => s.svId === st.svId && s.t[a] !== null && s.t[b] !== null).map((s) => Number(s.t[b]! - s.t[a]!));
      all.push(...vals);
      const got = sr.byStream.find((x) => x.svId === st.svId)!;
      const want = brute(vals);
      assert.equal(got.count, want.count, `${name} ${st.svId} count`);
      assert.equal(got.minNs, want.min);
      assert.equal(got.maxNs, want.max);
      assert.ok(Math.abs(got.meanNs! - want.mean) < 1e-6 * want.mean);
      for (const [k, v] of Object.entries(want.p)) assert.equal(got.percentilesNs[k as 'p50'], v, `${name} ${st.svId} ${k}`);
    }
    const want = brute(all);
    assert.equal(sr.all.count, want.count);
    for (const [k, v] of Object.entries(want.p)) assert.equal(sr.all.percentilesNs[k as 'p50'], v, `${name} all ${k}`);
    for (const th of sr.all.above) assert.equal(th.count, want.above(th.thresholdUs * 1000), `${name} > ${th.thresholdUs} µs`);
    assert.deepEqual(sr.worst.map((w) => w.latencyNs), [...all].sort((x, y) => y - x).slice(0, 20));
    assert.equal(sr.histogram.reduce((s, h) => s + h.count, 0), want.count);
    const perSec = new Map<number, number>();
    for (const s of samples) if (s.t[a] !== null && s.t[b] !== null) perSec.set(s.sec, Math.max(perSec.get(s.sec) ?? -Infinity, Number(s.t[b]! - s.t[a]!)));
    assert.deepEqual(sr.perSecondMax.map((x) => [x.second - 1_764_403_200, x.maxNs]), [...perSec.entries()].sort((x, y) => x[0] - y[0]));
  }
  // worst sample identity and times
  const w0 = seg(res, 'Thyp').worst[0]!;
  const s0 = samples.find((s) => s.svId === w0.svId && s.smp === w0.smpCnt && s.sec === w0.second - 1_764_403_200)!;
  assert.equal(w0.pointsNs.T1, String(s0.t[1]));
  assert.equal(w0.pointsNs.T2, String(s0.t[2]));
  // the run of 5 late samples (Thyp > 100 µs) in MU01
  const lateK = samples.filter((s) => s.svId === 'MU01' && s.t[1] !== null && s.t[2] !== null && Number(s.t[2]! - s.t[1]!) > 100_000).map((s) => s.sec * 4000 + s.smp);
  const lateRun = seg(res, 'Thyp').byStream.find((x) => x.svId === 'MU01')!.longestLateRun!;
  assert.equal(lateRun.length, longestRun(lateK));
  assert.ok(lateRun.length >= 5);
  assert.equal(res.passed, false); // Thyp max > 100 µs and missing samples
  assert.equal(res.verdicts.find((v) => v.segment === 'Thyp')!.status, 'fail');
  assert.equal(res.verdicts.find((v) => v.kind === 'missing')!.status, 'fail');
});

test('two machines overlapping in part: segments only where both recorded, no false loss', async () => {
  const r = prng(3);
  const hvRows: TestRow[] = [], vmRows: TestRow[] = [];
  const vals: number[] = [];
  for (let sec = 0; sec < 7; sec++) {
    for (let smp = 0; smp < 4000; smp++) {
      const t1 = tAt(sec, smp, 4000, 6000), t2 = t1 + BigInt(Math.round(15_000 + r() * 9000));
      const t3 = t2 + 4000n, t4 = t3 + BigInt(Math.round(9000 + r() * 5000));
      if (sec <= 4) hvRows.push({ point: 'T1', svId: 'MU01', smpCnt: smp, iter: sec, tNs: t1 }, { point: 'T2', svId: 'MU01', smpCnt: smp, iter: sec, tNs: t2 });
      if (sec >= 2) vmRows.push({ point: 'T3', svId: 'MU01', smpCnt: smp, iter: sec - 2, tNs: t3 }, { point: 'T4', svId: 'MU01', smpCnt: smp, iter: sec - 2, tNs: t4 });
      if (sec >= 2 && sec <= 4) vals.push(Number(t4 - t1));
    }
  }
  const run = join(dir, 'overlap');
  await writeRecord(join(run, 'hv'), { role: 'trace', host: 'hv', points: ['T1', 'T2'], format: 'parquet' }, hvRows);
  await writeRecord(join(run, 'vm'), { role: 'subscribe', host: 'vm', points: ['T3', 'T4'], format: 'parquet' }, vmRows);
  const res = await analyzeRecords([run], { windowSamples: 4000, thresholdsUs: [33] }); // one-second windows: joins across window edges
  const st = res.streams[0]!;
  assert.deepEqual(st.points.map((p) => [p.point, p.lost, p.firstSecond! - 1_764_403_200, p.lastSecond! - 1_764_403_200]),
    [['T1', 0, 0, 4], ['T2', 0, 0, 4], ['T3', 0, 2, 6], ['T4', 0, 2, 6]]);
  assert.equal(st.missing, 0);
  assert.equal(st.samples, 7 * 4000);
  assert.deepEqual(st.points.map((p) => p.pacing.pairs), [5 * 4000 - 1, 5 * 4000 - 1, 5 * 4000 - 1, 5 * 4000 - 1]); // no pair lost at window edges
  assert.equal(st.points[0]!.pacing.maxAbsJitterNs, 0); // T1 at the nominal times exactly
  assert.equal(st.points[0]!.pacing.meanGapNs, 250_000);
  const s = seg(res, 'Tseapath');
  const want = brute(vals);
  assert.equal(s.all.count, want.count);
  assert.equal(s.all.percentilesNs['p99.9'], want.p['p99.9']);
  assert.equal(s.all.maxNs, want.max);
  assert.equal(s.all.above.find((a) => a.thresholdUs === 33)!.count, want.above(33_000));
  assert.equal(seg(res, 'Thyp').all.count, 5 * 4000);
  assert.equal(res.verdicts.find((v) => v.segment === 'Ttot')!.status, 'not-measured');
  assert.equal(res.passed, true);
  assert.ok(res.warnings.some((w) => w.code === 'ANALYZE_VERDICT_NOT_MEASURED'));
});

test('clocks out of sync: negative latencies are counted and flagged with a PTP hint', async () => {
  const rows3: TestRow[] = [], rows2: TestRow[] = [];
  for (let smp = 0; smp < 4000; smp++) {
    const t2 = tAt(0, smp, 4000, 20_000);
    rows2.push({ point: 'T2', svId: 'MU01', smpCnt: smp, tNs: t2 });
    rows3.push({ point: 'T3', svId: 'MU01', smpCnt: smp, tNs: t2 + BigInt(smp % 4 === 0 ? -30_000 : 5_000) });
  }
  const run = join(dir, 'skew');
  await writeRecord(join(run, 'hv'), { role: 'trace', host: 'hv', points: ['T2'] }, rows2);
  await writeRecord(join(run, 'vm'), { role: 'trace', host: 'vm', points: ['T3'] }, rows3);
  const res = await analyzeRecords([run]);
  const t = seg(res, 'Ttrans');
  assert.equal(t.all.negative, 1000);
  assert.equal(t.all.minNs, -30_000);
  const w = res.warnings.find((x) => x.code === 'ANALYZE_NEGATIVE_LATENCY');
  assert.ok(w && /PTP/.test(w.hint));
});

test('join by iter within one recorder gives the same answer as by time; iter across records is refused', async () => {
  const r = prng(11);
  const rows: TestRow[] = [];
  for (let sec = 0; sec < 3; sec++) {
    for (let smp = 0; smp < 4800; smp++) {
      const t1 = tAt(sec, smp, 4800, 4000);
      const t2 = t1 + BigInt(Math.round(8000 + r() * 30_000));
      rows.push({ point: 'T2', svId: 'MU9', smpCnt: smp, iter: sec, tNs: t2 }, { point: 'T1', svId: 'MU9', smpCnt: smp, iter: sec, tNs: t1 });
    }
  }
  const rec = await writeRecord(join(dir, 'single'), { role: 'trace', host: 'hv', points: ['T1', 'T2'] }, rows);
  const byTime = await analyzeRecords([rec]);
  const byIter = await analyzeRecords([rec], { join: 'iter' });
  assert.equal(byIter.join, 'iter');
  assert.deepEqual(seg(byIter, 'Thyp').all, seg(byTime, 'Thyp').all);
  assert.equal(byTime.streams[0]!.rate, 4800);
  await assert.rejects(analyzeRecords([join(dir, 'skew')], { join: 'iter' }), { code: 'ANALYZE_ITER_ACROSS_RECORDS' });
});

test('input errors: bogus timestamps, mixed clocks, no record, corrupt smpCnt', async () => {
  const ok = (smp: number, t: bigint): TestRow => ({ point: 'T3', svId: 'MU01', smpCnt: smp, tNs: t });
  const bogus = await writeRecord(join(dir, 'bogus'), { role: 'trace', host: 'h', points: ['T3'] }, [ok(0, tAt(0, 0, 4000, 0)), ok(1, 0n)]);
  await assert.rejects(analyzeRecords([bogus]), { code: 'ANALYZE_TIME_RANGE' });
  const mixed = join(dir, 'mixed');
  await writeRecord(join(mixed, 'a'), { role: 'trace', host: 'h', points: ['T3'], clock: 'tai' }, [ok(0, tAt(0, 0, 4000, 0))]);
  await writeRecord(join(mixed, 'b'), { role: 'trace', host: 'h', points: ['T4'], clock: 'realtime' }, [{ ...ok(0, tAt(0, 0, 4000, 9000)), point: 'T4' }]);
  await assert.rejects(analyzeRecords([mixed]), { code: 'ANALYZE_CLOCK_MISMATCH' });
  await assert.rejects(analyzeRecords([join(dir, 'does-not-exist')]), { code: 'ANALYZE_NO_RECORD' });
  const neg = await writeRecord(join(dir, 'neg'), { role: 'trace', host: 'h', points: ['T3'] }, [ok(-5, tAt(0, 0, 4000, 0))]);
  await assert.rejects(analyzeRecords([neg]), { code: 'ANALYZE_BAD_SMPCNT' });
  const empty = await writeRecord(join(dir, 'empty'), { role: 'trace', host: 'h', points: ['T3'] }, []);
  await assert.rejects(analyzeRecords([empty]), { code: 'ANALYZE_NO_SAMPLES' });
});

test('points are ordered along the path, not by the alphabet: a custom Tvhost after T2 is not the end of the path', async () => {
  const hv: TestRow[] = [], vm: TestRow[] = [];
  const lostAtT4 = new Set([100, 101, 102, 2500, 3000]); // (a loss after the last sample seen cannot be told apart from the end of the run)
  for (let smp = 0; smp < 4000; smp++) {
    const t1 = tAt(0, smp, 4000, 5000);
    hv.push({ point: 'T1', svId: 'MU01', smpCnt: smp, tNs: t1 }, { point: 'T2', svId: 'MU01', smpCnt: smp, tNs: t1 + 10_000n },
      { point: 'Tvhost', svId: 'MU01', smpCnt: smp, tNs: t1 + 14_000n }, { point: 'T2.5', svId: 'MU01', smpCnt: smp, tNs: t1 + 12_000n });
    vm.push({ point: 'T3', svId: 'MU01', smpCnt: smp, tNs: t1 + 20_000n });
    if (!lostAtT4.has(smp)) vm.push({ point: 'T4', svId: 'MU01', smpCnt: smp, tNs: t1 + 30_000n });
  }
  const run = join(dir, 'path-order');
  await writeRecord(join(run, 'hv'), { role: 'trace', host: 'hv', points: ['T1', 'T2', 'Tvhost', 'T2.5'], pointsAfter: { Tvhost: 'T2.5' } }, hv);
  await writeRecord(join(run, 'vm'), { role: 'subscribe', host: 'vm', points: ['T3', 'T4'] }, vm);
  const res = await analyzeRecords([run], { segments: [{ name: 'Tvh', from: 'T2', to: 'Tvhost' }] });
  const st = res.streams[0]!;
  assert.deepEqual(st.points.map((p) => p.point), ['T1', 'T2', 'T2.5', 'Tvhost', 'T3', 'T4']);
  assert.equal(st.missing, lostAtT4.size, 'missing = not delivered at T4, the last point of the path (alphabetically last would be Tvhost, which saw every sample)');
  assert.equal(seg(res, 'Tvh').all.maxNs, 4000);
});
