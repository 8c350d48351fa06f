// Pacing, loss and drops at 4000/s, 32000/s and 64 streams x 4800/s (307200
// frames/s, 64 frames per sample instant) over a veth for 1 s each, with the
// transmit thread SCHED_OTHER, SCHED_FIFO, and SCHED_FIFO + spin. Printed for
// the record; asserted only for accounting (every frame sent or counted as
// failed, every frame reported), never for timing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRoot, NOT_ROOT_REASON } from './helpers.ts';
import { describe, openPair, runSchedule, type Schedule } from './run-schedule.ts';

const skip = isRoot() ? false : NOT_ROOT_REASON;

test('4000/s, 32000/s and 64 x 4800/s for 1 s, with and without SCHED_FIFO: pacing, loss and drops are reported', { skip, timeout: 90_000 }, async (t) => {
  const schedules: Schedule[] = [
    { rateHz: 32000, burst: 1, total: 32000 },
    { rateHz: 307200, burst: 64, total: 307200 },
    { rateHz: 4000, burst: 1, total: 4000, fifoPriority: 50 },
    { rateHz: 4000, burst: 1, total: 4000, fifoPriority: 50, spinUs: 150 },
    { rateHz: 32000, burst: 1, total: 32000, fifoPriority: 50 },
    { rateHz: 307200, burst: 64, total: 307200, fifoPriority: 50 },
  ];
  for (const sc of schedules) {
    const { a, b } = openPair(t);
    const run = await runSchedule(a, b, sc);
    const line = describe(sc, run);
    t.diagnostic(line);
    console.log(line);
    const reported = run.reports.reduce((s, r) => s + r.count, 0);
    assert.equal(reported, sc.total, 'every frame has a report (sent or failed)');
    assert.equal(run.sent.framesSent + run.sent.sendErrorsTotal, sc.total, 'every frame was sent or counted as failed');
    assert.ok(run.received <= run.sent.framesSent);
    assert.equal(run.sent.reportsDropped, 0);
  }
});
