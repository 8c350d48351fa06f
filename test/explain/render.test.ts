/** The printed summary and the JSON of an explain run, from a synthetic result. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregateCauses, explainSample } from '../../src/explain/explain.ts';
import { parseRecorderLine, type RecorderEvent } from '../../src/explain/events.ts';
import { explainJson, renderExplainSummary } from '../../src/explain/render.ts';
import type { ExplainRunResult } from '../../src/explain/run.ts';
import type { TraceSummary } from '../../src/trace/index.ts';

const events = ['S 1000 1 0 120 0 854 120 ovs-vswitchd', 'S 2000 1 854 120 0 42 9 svtrace-hog', 'S 900000 1 42 9 1 854 120 ovs-vswitchd']
  .map((l) => parseRecorderLine(l)).filter((e): e is RecorderEvent => e !== null);
const x = explainSample({ svId: 'MU\x1b01', smpCnt: 5, iter: 0, segment: 'Thyp', latencyNs: 898_500, normalNs: 40_000,
  from: { point: 'T1', tMonoNs: 1500n, cpu: 0, tNs: 1_700_000_000_000_001_500n }, to: { point: 'T2', tMonoNs: 900_000n, cpu: 1 } }, events);

const result: ExplainRunResult = {
  segment: 'Thyp', thresholdNs: 100_000, samples: 12_345, late: 1, unpaired: 2, mismatched: 0, p50Ns: 40_000, p99Ns: 90_000, maxNs: 898_500,
  explanations: [x], causes: aggregateCauses([x]), worst: [{ explanation: x, chrome: { traceEvents: [], displayTimeUnit: 'ns', otherData: { clock: '', windowStartMonoNs: '0', windowEndMonoNs: '0' } } }],
  recorder: { durationMs: 1000, events: 25_000, eventsPerS: 25_000, lostEvents: 0, kernelEvents: 25_010, lostLines: 10, lostInRun: 0, notReceivedAtStop: 10, otherLines: [], ringOverflowed: 0 },
  trace: { points: [{ id: 1, name: 'T1', probes: [], frames: 12_346, events: 12_346, kernelFrames: 12_346, unknown: 0, short: 0 }], lostEvents: 0, lostLines: 0 } as unknown as TraceSummary,
  warnings: [],
};

test('summary: figures, the cause table, the worst samples; nothing from the wire reaches the terminal raw', () => {
  const text = renderExplainSummary(result);
  assert.match(text, /^Thyp: 12 345 samples, p50 40 µs, p99 90 µs, max 899 µs; 1 over 100 µs, 1 explained$/m);
  assert.match(text, /recorder: 25 000 events \(25 000\/s\), bpftrace lost 0, 0 lost while running, 10 still in flight at stop/);
  assert.match(text, /preemption svtrace-hog\[42\]\s+1\s+898/);
  assert.match(text, /MU\\x1b01 smpCnt 5: Thyp 899 µs/);
  assert.ok(!text.includes('\u001b'), 'no raw escape');
});

test('JSON: bigints as strings, the same explanations', () => {
  const doc = JSON.parse(JSON.stringify(explainJson(result))) as { explanations: Array<{ from: { tMonoNs: string; tNs: string }; primary: { kind: string } }>; samples: number };
  assert.equal(doc.samples, 12_345);
  assert.equal(doc.explanations[0]?.from.tMonoNs, '1500');
  assert.equal(doc.explanations[0]?.from.tNs, '1700000000000001500');
  assert.equal(doc.explanations[0]?.primary.kind, 'preemption');
});
