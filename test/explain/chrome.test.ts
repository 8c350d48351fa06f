/** The Chrome/Perfetto export against a small schema of the trace event format. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exportChromeTrace, SAMPLES_PID } from '../../src/explain/chrome.ts';
import { createRing, parseRecorderLine, pushEvent, ringSlice, tasksAt, type RecorderEvent } from '../../src/explain/events.ts';
import { checkSchema } from './chrome-schema.ts';

const B = 5_000_000_000n;
const at = (us: number) => String(B + BigInt(us * 1000));
const events = [
  `S ${at(10)} 1 0 120 0 854 120 ovs-vswitchd`,
  `S ${at(100)} 1 854 120 0 4242 9 svtrace-hog`,
  `W ${at(150)} 0 854 120 1 ovs-vswitchd`,
  `E ${at(160)} 0 3`, `X ${at(170.5)} 0 3`,
  `I ${at(180)} 0 24 eth"0\\`, `J ${at(181)} 0 24`,
  `M ${at(190)} 0 77 120 0 1 a b`,
  `S ${at(2100)} 1 4242 9 1 854 120 ovs-vswitchd`,
  `E ${at(2200)} 1 1`,
].map((l) => parseRecorderLine(l)).filter((e): e is RecorderEvent => e !== null);

test('export: valid trace JSON, slices per task per CPU, points as instants, rows named', () => {
  const trace = exportChromeTrace({ events, fromMonoNs: B, toMonoNs: B + 3_000_000n }, [
    { name: 'MU01 smpCnt 7 Thyp', points: [{ point: 'T2', tMonoNs: B + 2_150_000n, cpu: 1 }, { point: 'T1', tMonoNs: B + 120_000n, cpu: 0 }], text: 'preempted' },
  ]);
  const json = JSON.stringify(trace);
  checkSchema(json);
  const ev = trace.traceEvents;
  const hog = ev.find((e) => e.ph === 'X' && e.name === 'svtrace-hog');
  assert.deepEqual([hog?.ts, hog?.dur, hog?.pid, hog?.tid], [100, 2000, 1, 4242]);
  const first = ev.find((e) => e.ph === 'X' && e.pid === 1 && e.tid === 0);
  assert.deepEqual([first?.ts, first?.dur], [0, 10], 'the task before the first switch starts at the window');
  assert.equal(ev.find((e) => e.name === 'NET_RX')?.dur, 10.5);
  assert.equal(ev.find((e) => e.cat === 'irq')?.name, 'IRQ 24 eth"0\\');
  assert.ok(ev.find((e) => e.name === 'TIMER' && e.ts === 2200 && e.dur === 800), 'an open softirq is closed at the window end');
  const last = ev.filter((e) => e.ph === 'X' && e.pid === 1 && e.tid === 854).pop();
  assert.deepEqual([last?.ts, last?.dur], [2100, 900]);
  const pts = ev.filter((e) => e.pid === SAMPLES_PID && e.ph === 'i').map((e) => [e.name, e.ts]);
  assert.deepEqual(pts, [['T1', 120], ['T2', 2150]]);
  assert.equal(ev.find((e) => e.pid === SAMPLES_PID && e.ph === 'X')?.dur, 2030);
  assert.ok(ev.some((e) => e.ph === 'M' && e.name === 'process_name' && e.args?.name === 'CPU 1'));
  assert.ok(ev.some((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'svtrace-hog (4242)'));
  assert.ok(ev.some((e) => e.name.startsWith('migrate a b (77)')));
});

test('export: no events and no samples is still a valid trace', () => {
  checkSchema(JSON.stringify(exportChromeTrace({ events: [], fromMonoNs: 1n, toMonoNs: 2n }, [])));
  // events outside the window are left out, points outside are clamped to it
  const t = exportChromeTrace({ events, fromMonoNs: B + 5_000_000n, toMonoNs: B + 6_000_000n }, [{ name: 's', points: [{ point: 'T1', tMonoNs: B, cpu: 0 }] }]);
  checkSchema(JSON.stringify(t));
  assert.equal(t.traceEvents.filter((e) => e.cat === 'sched').length, 0);
  assert.equal(t.traceEvents.find((e) => e.name === 'T1')?.ts, 0);
});

test('export: a task that runs through the whole window is shown from what the CPU ran before it', () => {
  const ring = createRing(10_000_000_000n);
  for (const e of events) pushEvent(ring, e);
  // at 2 200 µs CPU 1 runs ovs-vswitchd (switched in at 2 100), CPU 0 has no switch at all
  const from = B + 2_200_000n, to = B + 2_300_000n;
  const initial = tasksAt(ring, from);
  assert.deepEqual(initial.get(1), { pid: 854, prio: 120, comm: 'ovs-vswitchd' });
  assert.equal(initial.has(0), false);
  const trace = exportChromeTrace({ events: ringSlice(ring, from, to), fromMonoNs: from, toMonoNs: to }, [], undefined, initial);
  checkSchema(JSON.stringify(trace));
  const s = trace.traceEvents.find((e) => e.ph === 'X' && e.pid === 1 && e.tid === 854);
  assert.deepEqual([s?.name, s?.ts, s?.dur], ['ovs-vswitchd', 0, 100]);
});
