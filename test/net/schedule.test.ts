// The paced transmitter: a schedule of real SV frames sent from namespace A
// at absolute times, received in namespace B: every frame arrives and has its
// report with its own kernel TX timestamp; failures, backpressure and
// underruns are counted. Timing is printed, asserted only loosely (the run
// lasts its time +-10 %): machines are noisy.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clockNowNs, openPacketSocket, TS_SOURCE_SOFTWARE, type TxReportBatch } from '../../src/net/index.ts';
import { ip, isRoot, makeVethLab, NOT_ROOT_REASON, waitFor } from './helpers.ts';
import { describe, openPair, packed, runSchedule } from './run-schedule.ts';

const skip = isRoot() ? false : NOT_ROOT_REASON;
test('4000 frames/s for 1 s: every frame arrives in order, paced, with a TX report and kernel TX timestamp', { skip, timeout: 30_000 }, async (t) => {
  const { a, b } = openPair(t);
  const sc = { rateHz: 4000, burst: 1, total: 4000 };
  const { rateHz, total } = sc;
  const run = await runSchedule(a, b, sc);
  const line = describe(sc, run);
  t.diagnostic(line);
  console.log(line);

  assert.equal(run.sent.framesSent, total);
  assert.equal(run.received, total, 'every frame arrived');
  assert.ok(run.inOrder, 'frames arrived byte-identical and in order');
  const durationNs = Number((run.rxKernelNs[total - 1] ?? 0n) - (run.rxKernelNs[0] ?? 0n));
  const expectNs = (total - 1) * (1e9 / rateHz);
  assert.ok(Math.abs(durationNs - expectNs) < 0.1 * expectNs, `the run lasted ${durationNs / 1e6} ms, expected ${expectNs / 1e6} ms`);

  checkReports(run.reports, total);
  assert.equal(run.sent.kernelTsMissing, 0);
  assert.equal(run.sent.kernelTsUnmatched, 0);
});

/**
 * One report per frame, in order, each sent and with its own kernel TX
 * timestamp: on a veth the timestamp is taken inside send(), so it must fall
 * between this frame's clock read and the next send's (a mismatched key
 * would shift timestamps by a frame and break this).
 */
function checkReports(reports: readonly TxReportBatch[], total: number): void {
  const sent: bigint[] = [];
  const kernel: bigint[] = [];
  let index = 0;
  for (const r of reports) {
    assert.equal(r.firstIndex, index, 'reports come in frame order without gaps');
    for (let i = 0; i < r.count; i++) {
      const at = index + i;
      assert.equal(r.errno[i], 0, `frame ${at} was sent`);
      assert.ok((r.sentNs[i] ?? 0n) >= (r.scheduledNs[i] ?? 0n), `frame ${at} sent before its time`);
      assert.equal(r.kernelTxSource[i], TS_SOURCE_SOFTWARE, `frame ${at} has a software kernel TX timestamp`);
      sent.push(r.sentNs[i] ?? 0n);
      kernel.push(r.kernelTxNs[i] ?? 0n);
    }
    index += r.count;
  }
  assert.equal(index, total, 'one report per frame');
  for (let i = 0; i < total; i++) {
    const k = kernel[i] ?? 0n;
    const s = sent[i] ?? 0n;
    const next = sent[i + 1];
    assert.ok(k >= s, `frame ${i}: kernel TX ts ${k} before the clock read ${s} before its send`);
    if (next !== undefined && next > s) assert.ok(k <= next, `frame ${i}: kernel TX ts ${k} after the next send began ${next}`);
  }
}

test('TX timestamps match their frames with the counter fallback of kernels before 6.13 too', { skip, timeout: 30_000 }, async (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const a = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA, txKeyMode: 'counter' });
  t.after(() => a.close());
  const b = openPacketSocket({ ifname: lab.ifB, netns: lab.nsB });
  t.after(() => b.close());
  assert.equal(a.info.txKeyMode, 'counter');
  const sc = { rateHz: 4000, burst: 4, total: 2000 };
  for (let round = 0; round < 2; round++) { // the counter carries over to the next transmitter
    const run = await runSchedule(a, b, sc);
    checkReports(run.reports, sc.total);
    assert.equal(run.sent.kernelTsUnmatched, 0);
    assert.equal(run.received, sc.total);
  }
});

test('failed sends are counted by errno and keep TX timestamps matched (peer down: ENOBUFS)', { skip, timeout: 30_000 }, async (t) => {
  for (const txKeyMode of ['auto', 'counter'] as const) {
    const lab = makeVethLab();
    t.after(() => lab.cleanup());
    const a = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA, txKeyMode });
    t.after(() => a.close());
    const reports: TxReportBatch[] = [];
    const tx = a.startTransmit({ onTxReport: (r) => reports.push(r) });
    const send = async (n: number): Promise<void> => {
      const t0 = clockNowNs() + 2_000_000n;
      const times = BigInt64Array.from({ length: n }, (_, i) => t0 + BigInt(i) * 250_000n);
      assert.equal(tx.enqueue(packed.data, packed.offsets.subarray(0, n), packed.lengths.subarray(0, n), times), n);
      assert.ok(await waitFor(() => tx.pending() === 0, 2000));
    };
    ip('-n', lab.nsB, 'link', 'set', lab.ifB, 'down');
    await send(10);
    ip('-n', lab.nsB, 'link', 'set', lab.ifB, 'up');
    await send(10);
    const stats = await tx.stop({ drain: true });
    const errnos = reports.flatMap((r) => Array.from(r.errno));
    assert.equal(errnos.length, 20);
    assert.equal(stats.framesSent + stats.sendErrorsTotal, 20);
    assert.equal(stats.sendErrors.ENOBUFS, stats.sendErrorsTotal, `${txKeyMode}: ${JSON.stringify(stats.sendErrors)}`);
    assert.ok(stats.sendErrorsTotal >= 1, 'sending to a peer that is down fails');
    assert.equal(stats.sendBufferFull, stats.sendErrorsTotal);
    assert.equal(stats.kernelTsUnmatched, 0, txKeyMode);
    const last = reports.flatMap((r) => Array.from(r.kernelTxNs).map((k, i) => ({ k, s: r.sentNs[i] ?? 0n, e: r.errno[i] }))).slice(10);
    last.forEach((x, i) => {
      assert.equal(x.e, 0, `${txKeyMode}: frame ${10 + i} sent after the peer came up`);
      assert.ok(x.k >= x.s && x.k - x.s < 1_000_000_000n, `${txKeyMode}: frame ${10 + i} has its own TX timestamp`);
      const next = last[i + 1];
      if (next !== undefined && next.s > x.s) assert.ok(x.k <= next.s, `${txKeyMode}: frame ${10 + i} timestamp is not the next frame's`);
    });
  }
});

test('enqueue applies backpressure; stop without drain discards the queue promptly', { skip }, async (t) => {
  const { a } = openPair(t);
  const tx = a.startTransmit({ onTxReport: () => {}, queueFrames: 1024 });
  const times = new BigInt64Array(4000).fill(clockNowNs() + 60_000_000_000n); // a minute away
  const n = 4000;
  const offsets = packed.offsets.subarray(0, n);
  const lengths = packed.lengths.subarray(0, n);
  assert.equal(tx.enqueue(packed.data, offsets, lengths, times), 1024, 'the ring takes what fits');
  assert.equal(tx.enqueue(packed.data, offsets, lengths, times), 0);
  assert.equal(tx.pending(), 1024);
  const t0 = Date.now();
  const stats = await tx.stop();
  assert.ok(Date.now() - t0 < 1000, 'stop does not wait for the schedule');
  assert.equal(stats.framesSent, 0);
  assert.equal(stats.framesQueued, 1024);
  assert.equal(stats.framesDiscarded, 1024);
  assert.throws(() => tx.enqueue(packed.data, offsets, lengths, times), { code: 'NET_TX_NOT_RUNNING' });
});

test('a queue that runs dry before a frame is due counts an underrun', { skip }, async (t) => {
  const { a } = openPair(t);
  const tx = a.startTransmit({ onTxReport: () => {}, clock: 'tai' });
  const one = (timeNs: bigint): number =>
    tx.enqueue(packed.data, packed.offsets.subarray(0, 1), packed.lengths.subarray(0, 1), BigInt64Array.of(timeNs));
  assert.equal(one(clockNowNs('tai') + 5_000_000n), 1);
  await waitFor(() => tx.pending() === 0, 2000);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(one(clockNowNs('tai') - 1_000_000n), 1); // already due when it arrives
  const stats = await tx.stop({ drain: true });
  assert.equal(stats.clock, 'tai');
  assert.equal(stats.framesSent, 2);
  assert.equal(stats.underruns, 1);
  assert.ok(stats.late >= 1, 'the frame that came too late is late');
});
