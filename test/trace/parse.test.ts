import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createFrameLine, createLineSplitter, parseFrameLine, parseLearnLine, parseLost, parseMapLine, parseUnknownLine, wordsToBytes,
} from '../../src/trace/parse.ts';
import { createIterationTracker, sampleIteration } from '../../src/trace/iteration.ts';
import { parseClockOutput } from '../../src/trace/clock.ts';
import { createTraceState, handleLine, summarize, type PointEvent, type TraceWarning } from '../../src/trace/events.ts';
import type { FrameLayout } from '../../src/trace/layout.ts';

test('frame lines parse exactly, other lines are refused', () => {
  const f = createFrameLine();
  assert.ok(parseFrameLine('2 1 3691277235693 1 4799', f));
  assert.deepEqual({ ...f, smpCnts: [...f.smpCnts] }, { point: 2, layout: 1, tMonoNs: 3691277235693n, cpu: 1, smpCnts: [4799] });
  assert.ok(parseFrameLine('1 0 18446744073709551615 0 1 2 3', f));
  assert.equal(f.tMonoNs, 18446744073709551615n, 'times beyond 2^53 stay exact');
  assert.deepEqual(f.smpCnts, [1, 2, 3]);
  for (const bad of ['', '1 0 5 1', '1 0 5 1 x', '1  0 5 1 2', 'Lost 3 events', '1 0 5 1 2 ', '@frames[1]: 3']) {
    assert.equal(parseFrameLine(bad, f), false, JSON.stringify(bad));
  }
});

test('rare lines: lost events, maps, unknown-frame bytes, learn chunks', () => {
  assert.equal(parseLost('Lost 1915 events'), 1915);
  assert.equal(parseLost('1 0 5 1 2'), null);
  assert.deepEqual(parseMapLine('@frames[1]: 10161'), { map: 'frames', key: 1, value: 10161 });
  const words = ['feca020004cd0c01', '180008169eeffc0', ...Array(14).fill('0')];
  const bytes = wordsToBytes(words);
  assert.deepEqual([...bytes.subarray(0, 10)], [0x01, 0x0c, 0xcd, 0x04, 0x00, 0x02, 0xca, 0xfe, 0xc0, 0xff]);
  const u = parseUnknownLine(`U 3 12 ${words.join(' ')}`);
  assert.equal(u?.point, 3);
  assert.equal(u?.bytes.length, 12);
  const l = parseLearnLine(`L 1 4164783083640 120 0 ${words.join(' ')}`);
  assert.equal(l?.key, '1:4164783083640');
  assert.equal(parseLearnLine(`L 1 2 3 12 ${words.join(' ')}`), null, 'chunk out of range');
});

test('line splitter joins lines across chunks', () => {
  const lines: string[] = [];
  const s = createLineSplitter((l) => lines.push(l));
  for (const c of ['a', 'b\nc', 'd\n', '\ne', 'f']) s.push(c);
  s.end();
  assert.deepEqual(lines, ['ab', 'cd', '', 'ef']);
});

test('iterations: wraps forward, late samples of the previous iteration, learnt range', () => {
  const t = createIterationTracker(4800);
  assert.equal(sampleIteration(t, 4798), 0);
  assert.equal(sampleIteration(t, 4799), 0);
  assert.equal(sampleIteration(t, 0), 1, 'wrap');
  assert.equal(sampleIteration(t, 4799), 0, 'another point still seeing the last sample before the wrap');
  assert.equal(sampleIteration(t, 1), 1);
  assert.equal(sampleIteration(t, 0), 1, 'small reorder is not a wrap');
  const learnt = createIterationTracker();
  assert.equal(sampleIteration(learnt, 5), 0);
  assert.equal(sampleIteration(learnt, 3000), 0, 'a big jump forward before any wrap is loss, not the past');
  assert.equal(sampleIteration(learnt, 3999), 0);
  assert.equal(sampleIteration(learnt, 0), 1);
  assert.equal(sampleIteration(learnt, 3998), 0);
  assert.equal(learnt.wraps, 1);
});

test('clock output becomes an offset at the middle of the narrowest bracket', () => {
  const c = parseClockOutput('100 1000 1795936302656409904 1100\n80 2000 1795936302656410904 2080\n');
  assert.equal(c.realtimeOffsetNs, 1795936302656409904n - 1050n);
  assert.equal(c.taiOffsetNs, 1795936302656410904n - 2040n);
  assert.equal(c.uncertaintyNs, 50);
});

test('events: per-ASDU events with realtime, iterations, counters, lost lines and warnings', () => {
  const layouts: FrameLayout[] = [
    { appId: 0x4001, length: 102, asdus: [{ svId: '4001', svIdOffset: 19, svIdTlvBytes: 2, smpCntOffset: 25, smpCntBytes: 2 }] },
    { appId: 0x4001, length: 102, asdus: [{ svId: '1004', svIdOffset: 19, svIdTlvBytes: 2, smpCntOffset: 25, smpCntBytes: 2 }] },
  ];
  const streams = [{ index: 0, svId: '4001', appId: 0x4001, smpCntWrap: 4800 }, { index: 1, svId: '1004', appId: 0x4001 }];
  const clock = { realtimeOffsetNs: 1_000_000_000_000_000_000n, taiOffsetNs: 0n, uncertaintyNs: 10, measuredAtMonoNs: 0n };
  const s = createTraceState([{ id: 1, name: 'T1', probes: [], filter: {} }, { id: 2, name: 'T2', probes: [], filter: {} }], layouts, streams, clock);
  const events: PointEvent[] = [];
  const warnings: TraceWarning[] = [];
  const h = { onPoint: (e: PointEvent) => events.push(e), onWarning: (w: TraceWarning) => warnings.push(w) };
  for (const l of ['Attaching 3 probes...', '1 0 100 0 4799', '1 1 101 1 7', '2 0 150 0 4799', '1 0 300 0 0', 'Lost 2 events', 'SVTRACE_END',
    '@frames[1]: 3', '@frames[2]: 4', '@unknown[1]: 5', '', '@short[2]: 1', 'stdin:3:1-4: WARNING: Failed to map_update_elem: Argument list too long (-7)', '\t@x = count();', '  ~~~~']) {
    handleLine(s, l, h);
  }
  assert.equal(events.length, 4);
  assert.deepEqual(events.map((e) => [e.point, e.svId, e.smpCnt, e.iter]), [['T1', '4001', 4799, 0], ['T1', '1004', 7, 0], ['T2', '4001', 4799, 0], ['T1', '4001', 0, 1]]);
  assert.equal(events[0]!.tNs, 1_000_000_000_000_000_100n);
  const sum = summarize(s, { code: 0, signal: null, killed: false }, 1);
  assert.equal(sum.lostEvents, 2);
  assert.equal(sum.lostLines, 3, 'T2: kernel counted 4, one line arrived');
  assert.equal(sum.mapFullWarnings, 1);
  assert.deepEqual(sum.points.map((p) => [p.frames, p.kernelFrames, p.unknown, p.short]), [[3, 3, 5, 0], [1, 4, 0, 1]]);
  assert.deepEqual(warnings.map((w) => w.kind), ['lost-events', 'map-full']);
});

test('iterations: a follower lagging more than half a wrap keeps its samples\' iterations and never drags the edge back', () => {
  // the leading point (T3) is 0.6 s ahead of a follower (T4) at 4000 samples/s: 2400 samples
  const t = createIterationTracker(4000);
  const got: Array<[string, number]> = [];
  for (let n = 0; n < 3 * 4000; n += 8) {
    got.push(['T3', sampleIteration(t, n % 4000) * 4000 + (n % 4000) - n]);
    const m = n - 2400;
    if (m >= 0) got.push(['T4', sampleIteration(t, m % 4000, true) * 4000 + (m % 4000) - m]);
  }
  assert.deepEqual(got.filter(([, err]) => err !== 0), [], 'every sample got its true iteration at both points');
  const old = createIterationTracker(4000);
  let wrong = 0;
  for (let n = 0; n < 3 * 4000; n += 8) {
    sampleIteration(old, n % 4000);
    const m = n - 2400;
    if (m >= 0 && sampleIteration(old, m % 4000) * 4000 + (m % 4000) !== m) wrong++;
  }
  assert.ok(wrong > 0, 'without the follower rule the lagging point\'s iterations go wrong (the case this guards)');
});
