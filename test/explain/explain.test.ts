/** Explanations from synthetic event sequences: every cause, the window edge, and the run's table. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregateCauses, explainSample, topByCount, type LateSample } from '../../src/explain/explain.ts';
import { createRing, parseRecorderLine, pushEvent, ringCoverage, ringSlice, type RecorderEvent } from '../../src/explain/events.ts';

const US = 1000n;
const ev = (lines: string[]): RecorderEvent[] => lines.map((l) => {
  const e = parseRecorderLine(l);
  assert.ok(e, `parses: ${l}`);
  return e;
});

/** ovs-vswitchd (854) on CPU 1; perl (4242, FIFO prio 9) preempts it from 1 100 µs to 2 900 µs. */
const BASE = 1_000_000_000n;
const t = (u: number) => String(BASE + BigInt(u) * US);
function sample(t1Us: number, t2Us: number, normalUs = 40, cpu = 1): LateSample {
  return { svId: 'MU01', smpCnt: 7, iter: 0, segment: 'Thyp', from: { point: 'T1', tMonoNs: BASE + BigInt(t1Us) * US, cpu: 0 }, to: { point: 'T2', tMonoNs: BASE + BigInt(t2Us) * US, cpu }, latencyNs: (t2Us - t1Us) * 1000, normalNs: normalUs * 1000 };
}
const preempt = ev([
  `S ${t(0)} 1 0 120 0 854 120 ovs-vswitchd`,
  `S ${t(500)} 1 854 120 1 0 120 swapper/1`,
  `S ${t(1100)} 1 0 120 0 4242 9 svtrace hog`,
  `W ${t(1150)} 0 854 120 1 ovs-vswitchd`,
  `S ${t(2900)} 1 4242 9 1 854 120 ovs-vswitchd`,
  `S ${t(2950)} 1 854 120 1 0 120 swapper/1`,
  `W ${t(3000)} 0 100 120 0 kworker/0:1`,
]);

test('parses every line kind; comm keeps its spaces; other lines are not events', () => {
  assert.deepEqual(parseRecorderLine('S 5 1 2 3 0 4 9 svtrace hog'), { kind: 'switch', tMonoNs: 5n, cpu: 1, prevPid: 2, prevPrio: 3, prevState: 0, nextPid: 4, nextPrio: 9, nextComm: 'svtrace hog' });
  assert.equal(parseRecorderLine('M 5 0 7 120 0 1 a')?.kind, 'migrate');
  assert.deepEqual(parseRecorderLine('E 5 1 3'), { kind: 'softirq-entry', tMonoNs: 5n, cpu: 1, vec: 3 });
  assert.equal(parseRecorderLine('I 5 1 24 virtio0-input.0')?.kind, 'irq-entry');
  for (const bad of ['SVTRACE_RECORDER_END', '@events[1]: 3', 'S x 1', 'S 5 1 2', 'Lost 3 events', '', 'E 5 1 3 4']) assert.equal(parseRecorderLine(bad), null, bad);
});

test('preemption: the waiter, the task that ran instead, its policy, the delay in µs', () => {
  const x = explainSample(sample(1120, 2930), preempt, { policies: new Map([[4242, { policy: 'SCHED_FIFO', rtPriority: 90 }]]) });
  assert.equal(x.primary.kind, 'preemption');
  assert.equal(x.primary.task?.pid, 4242);
  assert.equal(x.primary.task?.policy, 'SCHED_FIFO 90');
  assert.equal(x.waiter?.pid, 854);
  assert.equal(x.primary.delayNs, (2900 - 1150) * 1000);
  assert.equal(x.text, 'Thyp 1 810 µs (normal 40 µs): ovs-vswitchd (pid 854) waited 1 750 µs on CPU 1, CPU 1 ran svtrace hog (pid 4242), SCHED_FIFO 90, for 1 750 µs');
  // running on after the wait, beyond the normal latency, is the catch-up the hog caused
  const after = explainSample(sample(1120, 3090), preempt.slice(0, 5).concat(ev([`S ${t(3100)} 1 854 120 1 0 120 swapper/1`])));
  assert.deepEqual([after.primary.directNs, after.primary.catchUpNs, after.primary.delayNs, after.excessNs], [1_750_000, 150_000, 1_900_000, 1_930_000]);
  assert.match(after.text, /for 1 750 µs, then caught up for 150 µs more$/);
  // a normal task holding the CPU while a real-time waiter waits: said so
  const rtWaiter = ev([`S ${t(0)} 1 0 120 0 854 49 ovs-vswitchd`, `S ${t(100)} 1 854 49 0 77 120 node`, `S ${t(900)} 1 77 120 0 854 49 ovs-vswitchd`, `S ${t(950)} 1 854 49 1 0 120 swapper/1`]);
  const np = explainSample(sample(50, 920), rtWaiter);
  assert.equal(np.primary.lowerPriority, true);
  assert.match(np.text, /ran node \(pid 77\), nice 0, for 800 µs \(of lower priority: the kernel could not preempt it\)/);
  // without a policy table the kernel prio still says real-time
  assert.equal(explainSample(sample(1120, 2930), preempt).primary.task?.policy, 'RT 90');
});

test('a sample outside the window or with no context is unknown, never a crash', () => {
  assert.equal(explainSample(sample(5000, 5100), preempt).primary.kind, 'unknown');
  assert.equal(explainSample(sample(1120, 2930), [], {}).reason, 'the events given do not cover the sample');
  assert.match(explainSample(sample(1120, 2930), preempt, { coverage: { fromMonoNs: BASE + 2000n * US, toMonoNs: BASE + 4000n * US } }).reason ?? '', /outside the recorder window/);
  assert.equal(explainSample(sample(1120, 2930), preempt, { coverage: null }).primary.kind, 'unknown');
  const gaps = [{ cpu: 1, fromMonoNs: BASE + 2000n * US, toMonoNs: BASE + 2100n * US }];
  assert.match(explainSample(sample(1120, 2930), preempt, { gaps }).reason ?? '', /lost events of CPU 1/);
  assert.equal(explainSample(sample(1120, 2930), preempt, { gaps: [{ ...gaps[0]!, cpu: 5 }] }).primary.kind, 'preemption');
  assert.equal(explainSample(sample(2930, 1120), preempt).primary.kind, 'unknown');
  const noSwitchOnCpu = explainSample(sample(1120, 2930, 40, 7), preempt);
  assert.match(noSwitchOnCpu.reason ?? '', /no context switch on CPU 7/);
});

test('softirq and irq time on the waiter CPU, wakeup latency on an idle CPU, migration', () => {
  const soft = ev([
    `S ${t(0)} 1 0 120 0 854 120 ovs-vswitchd`,
    `E ${t(100)} 1 3`, `X ${t(700)} 1 3`,
    `I ${t(750)} 1 24 eth0`, `J ${t(800)} 1 24`,
    `S ${t(900)} 1 854 120 1 0 120 swapper/1`,
  ]);
  const s1 = explainSample(sample(50, 850), soft);
  assert.equal(s1.primary.kind, 'softirq');
  assert.equal(s1.primary.source, 'NET_RX');
  assert.equal(s1.primary.delayNs, 600_000);
  assert.equal(s1.causes.find((c) => c.kind === 'irq')?.delayNs, 50_000);

  const idle = ev([
    `S ${t(0)} 1 854 120 1 0 120 swapper/1`,
    `W ${t(100)} 0 854 120 1 ovs-vswitchd`,
    `S ${t(900)} 1 0 120 0 854 120 ovs-vswitchd`,
    `S ${t(950)} 1 854 120 1 0 120 swapper/1`,
  ]);
  const s2 = explainSample(sample(90, 940), idle);
  assert.equal(s2.primary.kind, 'wakeup-latency');
  assert.equal(s2.primary.delayNs, 800_000);

  const moved = ev([
    `S ${t(0)} 0 854 120 0 77 120 stress`,
    `S ${t(0)} 1 5 120 1 0 120 swapper/1`,
    `M ${t(300)} 0 854 120 0 1 ovs-vswitchd`,
    `S ${t(800)} 1 0 120 0 854 120 ovs-vswitchd`,
    `S ${t(950)} 1 854 120 1 0 120 swapper/1`,
  ]);
  const s3 = explainSample(sample(100, 900), moved);
  // stress (prio 120) ran while ovs-vswitchd (prio 120) waited: same priority, a plain preemption
  assert.equal(s3.causes.find((c) => c.kind === 'preemption')?.lowerPriority, undefined);
  assert.equal(s3.causes.find((c) => c.kind === 'preemption')?.task?.comm, 'stress');
  assert.equal(s3.causes.find((c) => c.kind === 'preemption')?.delayNs, 200_000);
  const m = s3.causes.find((c) => c.kind === 'migration');
  // 500 µs waiting there, then 100 µs of running of which 40 µs are the normal latency: 60 µs catch-up
  assert.deepEqual([m?.fromCpu, m?.toCpu, m?.directNs, m?.catchUpNs, m?.delayNs], [0, 1, 500_000, 60_000, 560_000]);
  assert.equal(s3.primary.kind, 'migration');
});

test('excess the events do not explain is unknown, with what they do say', () => {
  const x = explainSample(sample(10, 1800), preempt.slice(0, 2).concat(ev([`S ${t(1900)} 1 0 120 0 854 120 ovs-vswitchd`])));
  assert.equal(x.primary.kind, 'unknown');
  assert.match(x.reason ?? '', /idle \(interrupt context\)/);
  // a point in a softirq on top of some task (a Linux bridge forwarding in the sender's softirq) blames no thread
  const inSoftirq = explainSample(sample(100, 450), preempt.concat(ev([`E ${t(440)} 1 3`, `X ${t(460)} 1 3`])));
  assert.match(inSoftirq.reason ?? '', /fired in a softirq on CPU 1 on top of ovs-vswitchd \(pid 854\)/);
  // ksoftirqd is a thread like any other
  const ksoft = explainSample(sample(10, 30), ev([`S ${t(0)} 1 0 120 0 22 120 ksoftirqd/1`, `E ${t(20)} 1 3`, `X ${t(40)} 1 3`, `S ${t(50)} 1 22 120 1 0 120 swapper/1`]));
  assert.equal(ksoft.waiter?.comm, 'ksoftirqd/1');
  assert.notEqual(ksoft.reason?.includes('softirq on CPU'), true);
  const asleep = explainSample(sample(10, 1800), preempt.slice(0, 2).concat(ev([`S ${t(1790)} 1 0 120 0 854 120 ovs-vswitchd`, `S ${t(1900)} 1 854 120 1 0 120 swapper/1`])));
  assert.equal(asleep.primary.kind, 'unknown');
  assert.match(asleep.reason ?? '', /asleep 1 290 µs/);
  // the waiter running all along is 'busy', with its own time in figures
  const busy = explainSample(sample(100, 450), preempt);
  assert.equal(busy.primary.kind, 'busy');
  assert.equal(busy.primary.delayNs, 350_000);
  assert.match(busy.text, /ovs-vswitchd \(pid 854\) did not wait on CPU 1, it ran its own work for 350 µs/);
});

test('per-run table: by total delay and by count', () => {
  const a = explainSample(sample(1120, 2930), preempt);
  const b = explainSample(sample(1500, 2930), preempt);
  const c = explainSample(sample(5000, 5100), preempt);
  const d = explainSample(sample(6000, 6100), preempt);
  const rows = aggregateCauses([a, b, c, d]);
  assert.equal(rows[0]?.key, 'preemption svtrace hog[4242]');
  assert.equal(rows[0]?.count, 2);
  assert.equal(rows[0]?.totalDelayNs, 1_750_000 + 1_400_000);
  assert.equal(topByCount(rows)[0]?.count, 2);
  assert.equal(rows.find((r) => r.kind === 'unknown')?.count, 2);
});

test('the ring keeps the last window per CPU, bounded', () => {
  const ring = createRing(1000n, 3);
  for (let i = 0; i < 10; i++) pushEvent(ring, { kind: 'softirq-entry', tMonoNs: BigInt(i * 400), cpu: i % 2, vec: 1 });
  assert.deepEqual(ringSlice(ring, 0n, 10_000n).map((e) => e.tMonoNs), [2400n, 2800n, 3200n, 3600n]);
  assert.deepEqual(ringCoverage(ring), { fromMonoNs: 2800n, toMonoNs: 3200n });
  const full = createRing(1_000_000n, 2);
  for (let i = 0; i < 5; i++) pushEvent(full, { kind: 'softirq-exit', tMonoNs: BigInt(i), cpu: 0, vec: 1 });
  assert.equal(full.overflowed, 3);
});

test('a frame forwarded in softirq (Linux bridge): the softirq run between the points is the cause, hard IRQs inside it apart', () => {
  // CPU 0 idle; one NET_RX run from 95 µs holds T1 (100) and T2 (300); a hard IRQ of 30 µs inside it
  const run = ev([
    `S ${t(0)} 0 77 120 1 0 120 swapper/0`,
    `E ${t(95)} 0 3`, `I ${t(150)} 0 24 virtio0-input.0`, `J ${t(180)} 0 24`, `X ${t(320)} 0 3`,
    `S ${t(400)} 0 0 120 0 77 120 node`,
  ]);
  const s = { ...sample(100, 300, 7, 0) };
  const x = explainSample(s, run);
  assert.equal(x.primary.kind, 'softirq');
  assert.equal(x.primary.source, 'NET_RX');
  assert.equal(x.primary.delayNs, 170_000);
  assert.equal(x.causes.find((c) => c.kind === 'irq')?.delayNs, 30_000);
  assert.match(x.text, /^Thyp 200 µs \(normal 7 µs\): T1 and T2 in one softirq NET_RX run on CPU 0 \(on top of an idle CPU\), which had run 205 µs by then: softirq NET_RX took 170 µs between the points, hard IRQs 30 µs/);
  // a run that began long after T1 explains only its part: unknown, with the figures
  const late = explainSample({ ...sample(100, 300, 7, 0) }, ev([`S ${t(0)} 0 77 120 1 0 120 swapper/0`, `E ${t(290)} 0 3`, `X ${t(320)} 0 3`]));
  assert.equal(late.primary.kind, 'unknown');
  assert.match(late.reason ?? '', /began 10 µs before it/);
});

test('a softirq as one line at its exit: the entry is put back in its place in the ring', () => {
  assert.deepEqual(parseRecorderLine('X 10 1 3 5'), { kind: 'softirq-exit', tMonoNs: 10n, cpu: 1, vec: 3, entryNs: 5n });
  assert.deepEqual(parseRecorderLine('X 10 1 3 0'), { kind: 'softirq-exit', tMonoNs: 10n, cpu: 1, vec: 3 }, 'entry 0: began before the recorder');
  for (const bad of ['X 10 1 3 x', 'X 10 1 3 5 6', 'E 10 1 3 5']) assert.equal(parseRecorderLine(bad), null, bad);
  const ring = createRing(1_000_000_000n);
  for (const l of [`S ${t(0)} 1 0 120 0 854 120 ovs-vswitchd`, `W ${t(20)} 1 77 120 0 node`, `W ${t(30)} 1 78 120 0 node`]) pushEvent(ring, parseRecorderLine(l)!);
  // the NET_RX run from 10 to 40 µs arrives at its exit, after the wakeups inside it
  pushEvent(ring, { kind: 'softirq-entry', tMonoNs: BASE + 10n * US, cpu: 1, vec: 3 });
  pushEvent(ring, parseRecorderLine(`X ${t(40)} 1 3 ${t(10)}`)!);
  const kinds = ringSlice(ring, BASE, BASE + 100n * US).map((e) => `${e.kind}@${(e.tMonoNs - BASE) / US}`);
  assert.deepEqual(kinds, ['switch@0', 'softirq-entry@10', 'wakeup@20', 'wakeup@30', 'softirq-exit@40']);
  assert.equal(ring.pushed, 5);
});

test('the ring holds events from where the consumer is, when it lags, up to five windows', () => {
  const ring = createRing(1_000n);
  const sw = (tNs: number) => parseRecorderLine(`S ${tNs} 0 1 120 0 2 120 a`)!;
  ring.holdFromNs = 500n;
  for (let t = 0; t <= 4_000; t += 100) pushEvent(ring, sw(t));
  // window alone would keep 3 000..4 000; the hold keeps from 500
  assert.equal(ringSlice(ring, 0n, 10_000n)[0]!.tMonoNs, 500n);
  for (let t = 4_100; t <= 8_000; t += 100) pushEvent(ring, sw(t));
  // but never more than five windows behind the newest event
  assert.equal(ringSlice(ring, 0n, 10_000n)[0]!.tMonoNs, 3_000n);
  ring.holdFromNs = null;
  pushEvent(ring, sw(8_100));
  assert.equal(ringSlice(ring, 0n, 10_000n)[0]!.tMonoNs, 7_100n);
});
