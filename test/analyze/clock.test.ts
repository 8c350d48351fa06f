/**
 * Two clocks: a host publisher (T0) and a hypervisor trace (T1, T2) on the
 * host's clock, a guest subscriber (T3, T4) on a clock 605 ms behind, all
 * written by the real record writer, the guest's manifest carrying the offset
 * the lab measured (extra.vm.clock, as `svtrace subscribe` writes it under
 * `lab exec`). Corrected, every segment equals the truth to the nanosecond in
 * both engines, cross-machine segments carry the offset's uncertainty, Tsub
 * (within the guest) is untouched; uncorrected, the warnings name the clocks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeRecords, parseClockOffset, type AnalysisResult, type AnalyzeOptions } from '../../src/analyze/index.ts';
import { referenceTimeNs } from '../../src/analyze/clock.ts';
import { brute } from './helpers.ts';
import { GUEST, HOST, OFFSET_NS, START_NS, UNC_NS, guestExtra, shifted, truth, writeClockWorld, type Truth } from './clock-world.ts';

const dir = mkdtempSync(join(tmpdir(), `svtrace-clock-${process.pid}-`));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const world = (name: string, tr: Truth, guestNs: (t: bigint) => bigint, extra: unknown, guestRecords?: [string, string[]][]) =>
  writeClockWorld(join(dir, name), tr, { guestNs, extra, ...(guestRecords ? { guestRecords } : {}) });

const seg = (r: AnalysisResult, name: string) => r.segments.find((s) => s.segment === name)!;

function assertTruth(r: AnalysisResult, tr: Truth, toleranceNs = 0): void {
  for (const [name, values] of Object.entries(tr.seg)) {
    const b = brute(values), a = seg(r, name).all;
    assert.equal(a.count, b.count, `${r.engine} ${name} count`);
    assert.equal(a.negative, 0, `${r.engine} ${name} negative`);
    for (const [k, v] of [['min', a.minNs, b.min], ['max', a.maxNs, b.max], ...Object.entries(b.p).map(([p, x]) => [p, a.percentilesNs[p as 'p50'], x])] as [string, number, number][]) {
      assert.ok(Math.abs(v - x(k, b)) <= toleranceNs, `${r.engine} ${name} ${k}: ${v} vs truth ${x(k, b)}`);
    }
  }
  function x(k: string, b: ReturnType<typeof brute>): number {
    return k === 'min' ? b.min : k === 'max' ? b.max : b.p[k]!;
  }
}

async function both(paths: string[], options: AnalyzeOptions = {}): Promise<AnalysisResult[]> {
  const r = [await analyzeRecords(paths, { ...options, engine: 'native' }), await analyzeRecords(paths, { ...options, engine: 'duckdb' })];
  assert.deepEqual(r.map((x) => x.engine), ['native', 'duckdb']);
  return r;
}

const tr = truth(7);

test('the guest\'s offset from its record: every segment equals the truth exactly in both engines, cross-machine ones carry ± the offset\'s uncertainty', async () => {
  const run = await world('measured', tr, shifted, guestExtra({ offsetNs: OFFSET_NS, uncertaintyNs: UNC_NS, measuredAtNs: START_NS }));
  for (const r of await both([run])) {
    assertTruth(r, tr);
    assert.deepEqual(r.warnings.filter((w) => /NEGATIVE|CLOCK/.test(w.code)), [], r.engine);
    assert.deepEqual(r.clocks.map((c) => [c.machine, c.status, c.source, c.offsetNs, c.uncertaintyNs]).sort(),
      [[GUEST, 'corrected', 'record', Number(OFFSET_NS), Number(UNC_NS)], [HOST, 'reference', null, null, null]]);
    for (const name of ['Ttrans', 'Tseapath', 'Ttot']) {
      assert.deepEqual(seg(r, name).clock, { fromMachines: [HOST], toMachines: [GUEST], crossMachine: true, corrected: true, uncertaintyNs: Number(UNC_NS) }, name);
    }
    for (const name of ['Tnet', 'Thyp', 'Tsub']) assert.deepEqual([seg(r, name).clock.crossMachine, seg(r, name).clock.uncertaintyNs], [false, null], name);
    // the worst samples' times are on the reference clock too
    const w = seg(r, 'Ttot').worst[0]!;
    assert.equal(BigInt(w.pointsNs.T4!) - BigInt(w.pointsNs.T0!), BigInt(w.latencyNs));
  }
});

test('the same run without the offset: negative latencies, and the warning names the two machines\' clocks and how to measure the offset', async () => {
  // 205 ms behind: the join still pairs the right seconds (within ±0.5 s), Ttrans goes negative
  const run = await world('unmeasured', tr, (t) => t - 205_000_000n, guestExtra());
  const [r] = await both([run]);
  const neg = r!.warnings.filter((w) => w.code === 'ANALYZE_NEGATIVE_LATENCY');
  assert.deepEqual(neg.map((w) => w.message.split(':')[0]), ['Ttrans', 'Tseapath', 'Ttot']);
  for (const w of neg) {
    assert.match(w.message, /T\d is on "lab-host", T\d on "\(none\)", whose clocks differ and no clock offset is known/);
    assert.match(w.hint, /svtrace lab clock/);
    assert.match(w.hint, /--clock-offset '\(none\)=OFFSET±UNCERTAINTY'/);
    assert.match(w.hint, /PTP/);
  }
  assert.equal(seg(r!, 'Tsub').all.negative, 0);
  assert.deepEqual(seg(r!, 'Ttot').clock, { fromMachines: [HOST], toMachines: [GUEST], crossMachine: true, corrected: false, uncertaintyNs: null });
  assert.ok(r!.clocks.every((c) => c.status === 'reference'));
  // Tsub lies within the guest: exact without any correction
  assert.equal(seg(r!, 'Tsub').all.percentilesNs['p99.9'], brute(tr.seg.Tsub!).p['p99.9']);

  // 605 ms behind: beyond half a second the seconds pair one apart; the latency is absurd, not negative, and flagged
  const far = await world('unmeasured-far', tr, shifted, guestExtra());
  const f = await analyzeRecords([far]);
  const suspect = f.warnings.filter((w) => w.code === 'ANALYZE_CLOCK_SUSPECT').map((w) => w.message.split(':')[0]);
  assert.deepEqual(suspect, ['Ttrans', 'Tseapath', 'Ttot']);
  assert.ok(seg(f, 'Ttot').all.percentilesNs.p50! > 300_000_000);

  // the offset given on the command line's form corrects the same records exactly
  const given = parseClockOffset(`${GUEST}=${Number(OFFSET_NS) / 1e6}ms±1.187ms`);
  assert.deepEqual(given, { machine: GUEST, offsetNs: String(OFFSET_NS), uncertaintyNs: String(UNC_NS) });
  for (const g of await both([far], { clockOffsets: [given] })) {
    assertTruth(g, tr);
    assert.equal(g.clocks.find((c) => c.machine === GUEST)?.source, 'option');
    assert.equal(seg(g, 'Ttot').clock.uncertaintyNs, Number(UNC_NS));
  }
  // an offset wrong by 60 µs (within its ±1.187 ms) makes some Ttrans negative: the warning says it is the offset's own error;
  // wrong by 5 ms, beyond it, the warning says to measure again
  for (const [errNs, within] of [[60_000n, true], [5_000_000n, false]] as const) {
    const w = await analyzeRecords([far], { clockOffsets: [{ ...given, offsetNs: String(OFFSET_NS + errNs) }] });
    const neg = w.warnings.find((x) => x.code === 'ANALYZE_NEGATIVE_LATENCY' && x.message.startsWith('Ttrans'));
    assert.ok(neg, `an offset ${errNs} ns off`);
    assert.match(neg.message, /after correcting the clock of "\(none\)" by 60\d\.\d{3} ms ±1\.187 ms \(segment uncertainty ±1\.187 ms\)/);
    assert.equal(/all within that uncertainty, the offset's own error/.test(neg.message), within, neg.message);
    assert.match(neg.hint, /measure it again \(svtrace lab clock\)/);
  }
});

test('a drifting guest clock measured at the start and at the end: interpolated linearly, within 1 ns of the truth', async () => {
  // 100 µs/s of drift: over 2 s the offset moves 200 µs, far more than any hop, so one constant offset would fail
  const a0 = START_NS, a1 = START_NS + 2_000_000_000n, o0 = OFFSET_NS, o1 = OFFSET_NS + 200_000n;
  const guest = (t: bigint) => t + o0 + ((t - a0) * (o1 - o0)) / (a1 - a0);
  // uncertainties of a few tens of µs (KVM, not TCG): the 200 µs between the two measurements is a drift, not noise
  const extras = [guestExtra({ offsetNs: o0, uncertaintyNs: 20_000n, measuredAtNs: a0 }), guestExtra({ offsetNs: o1, uncertaintyNs: 30_000n, measuredAtNs: a1 })];
  // two guest records (a tracer at T3, the subscriber at T4), each with the offset measured when it started
  const run = await world('drift', tr, guest, extras, [['trace', ['T3']], ['subscribe', ['T4']]]);
  const [n, d] = await both([run]);
  for (const r of [n!, d!]) {
    assertTruth(r, tr, 1);
    const c = r.clocks.find((x) => x.machine === GUEST)!;
    assert.deepEqual([c.measurements, c.driftNsPerS, c.uncertaintyNs], [2, 100_000, 30_000]);
    assert.equal(seg(r, 'Ttot').clock.uncertaintyNs, 30_000);
  }
  assert.deepEqual(n!.segments.map((s) => s.all), d!.segments.map((s) => s.all).map((a, i) => ({ ...a, meanNs: n!.segments[i]!.all.meanNs, stddevNs: n!.segments[i]!.all.stddevNs })));
  // two measurements that agree within their uncertainties (TCG's ±1 ms): no drift claimed, the more certain one holds
  const agree = await world('agree', tr, shifted, [guestExtra({ offsetNs: OFFSET_NS + 150_000n, uncertaintyNs: UNC_NS, measuredAtNs: a0 }), guestExtra({ offsetNs: OFFSET_NS, uncertaintyNs: 800_000n, measuredAtNs: a1 })],
    [['trace', ['T3']], ['subscribe', ['T4']]]);
  const g = await analyzeRecords([agree]);
  assertTruth(g, tr);
  assert.deepEqual(g.clocks.filter((x) => x.machine === GUEST).map((x) => [x.offsetNs, x.uncertaintyNs, x.driftNsPerS, x.measurements]), [[Number(OFFSET_NS), 800_000, null, 2]]);
  // the TypeScript mapping is the SQL's
  const clock = { machine: GUEST, source: 'record' as const, measurements: [{ offsetNs: o0, uncertaintyNs: 1n, measuredAtNs: a0 }, { offsetNs: o1, uncertaintyNs: 1n, measuredAtNs: a1 }] };
  for (const t of [a0 - 5n, a0 + 777_777_777n, a1 + 9n]) assert.ok(referenceTimeNs(clock, guest(t)) - t <= 1n && t - referenceTimeNs(clock, guest(t)) <= 1n);
});

test('--clock-offset specs: units, ±, and refusals', () => {
  assert.deepEqual(parseClockOffset('vm=-605ms'), { machine: 'vm', offsetNs: '-605000000', uncertaintyNs: '0' });
  assert.deepEqual(parseClockOffset('a=b=+1.5us+-250ns'), { machine: 'a=b', offsetNs: '1500', uncertaintyNs: '250' });
  assert.deepEqual(parseClockOffset('h=12±3'), { machine: 'h', offsetNs: '12', uncertaintyNs: '3' });
  for (const bad of ['=5ms', 'vm', 'vm=', 'vm=5 parsecs', 'vm=1.0000000001s', 'vm=2d', 'vm=90000s', 'vm=5ms±-1ms', 'v\u001bm=5ms']) {
    assert.throws(() => parseClockOffset(bad), (e: { code?: string }) => e.code === 'ANALYZE_BAD_CLOCK_OFFSET', bad);
  }
});
