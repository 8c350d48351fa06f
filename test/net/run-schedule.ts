/**
 * Running a transmit schedule in tests: real SV frames (from the shared
 * fixtures) fed to a Transmitter in namespace A, received in namespace B,
 * and the pacing measured from timestamps (|gap - period| in µs).
 */
import {
  clockNowNs,
  openPacketSocket,
  packFrames,
  rxFrame,
  type PacketSocket,
  type Transmitter,
  type TxReportBatch,
  type TxStats,
} from '../../src/net/index.ts';
import { FIXTURES, isRoot, makeVethLab, percentile, readPcapFrames, waitFor } from './helpers.ts';

export const fixture = isRoot() ? readPcapFrames(`${FIXTURES}/SV_Normal_Traffic.pcap`) : [];
export const packed = packFrames(fixture);

interface Pacing {
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/** |gap - period| statistics of consecutive timestamps, in µs. */
function pacing(ts: BigInt64Array, n: number, periodNs: number): Pacing {
  const dev: number[] = [];
  for (let i = 1; i < n; i++) dev.push(Math.abs(Number((ts[i] ?? 0n) - (ts[i - 1] ?? 0n)) - periodNs) / 1000);
  dev.sort((x, y) => x - y);
  const r = (v: number): number => Math.round(v * 10) / 10;
  return { p50Us: r(percentile(dev, 50)), p99Us: r(percentile(dev, 99)), maxUs: r(dev[dev.length - 1] ?? NaN) };
}

/** Frame j of a schedule of `burst` frames every periodNs from startNs. */
function timeOf(startNs: bigint, periodNs: number, burst: number, j: number): bigint {
  return startNs + BigInt(Math.round(Math.floor(j / burst) * periodNs));
}

/** Keeps the transmitter fed leadNs ahead of now until all `total` frames are queued. */
export async function feed(tx: Transmitter, startNs: bigint, periodNs: number, burst: number, total: number, leadNs: bigint): Promise<number> {
  let next = 0;
  let refused = 0;
  while (next < total) {
    const horizon = clockNowNs() + leadNs;
    let n = 0;
    while (next + n < total && timeOf(startNs, periodNs, burst, next + n) < horizon && n < 65536) n++;
    if (n > 0) {
      const offsets = new Uint32Array(n);
      const lengths = new Uint32Array(n);
      const times = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const k = (next + i) % fixture.length;
        offsets[i] = packed.offsets[k] ?? 0;
        lengths[i] = packed.lengths[k] ?? 0;
        times[i] = timeOf(startNs, periodNs, burst, next + i);
      }
      const accepted = tx.enqueue(packed.data, offsets, lengths, times);
      if (accepted < n) refused++;
      next += accepted;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return refused;
}

export interface Run {
  sent: TxStats;
  reports: TxReportBatch[];
  received: number;
  rxKernelNs: BigInt64Array;
  inOrder: boolean;
  kernelDrops: number;
}

/** rateHz frames per second in bursts of `burst` frames at the same instant. */
export interface Schedule {
  rateHz: number;
  burst: number;
  total: number;
  /** SCHED_FIFO priority of the transmit thread. */
  fifoPriority?: number;
  /** Busy-wait the last µs before each send time. */
  spinUs?: number;
}

export function periodOf(sc: Schedule): number {
  return (1e9 * sc.burst) / sc.rateHz;
}

export async function runSchedule(a: PacketSocket, b: PacketSocket, sc: Schedule): Promise<Run> {
  const rxKernelNs = new BigInt64Array(sc.total);
  let received = 0;
  let inOrder = true;
  b.startReceive((batch) => {
    for (let i = 0; i < batch.count; i++, received++) {
      if (received < sc.total) rxKernelNs[received] = batch.kernelTsNs[i] ?? 0n;
      if (inOrder && !rxFrame(batch, i).equals(fixture[received % fixture.length] as Buffer)) inOrder = false;
    }
  });
  const reports: TxReportBatch[] = [];
  const tx = a.startTransmit({
    onTxReport: (r) => reports.push(r),
    ...(sc.fifoPriority === undefined ? {} : { fifoPriority: sc.fifoPriority }),
    ...(sc.spinUs === undefined ? {} : { spinUs: sc.spinUs }),
  });
  const startNs = clockNowNs() + 300_000_000n;
  await feed(tx, startNs, periodOf(sc), sc.burst, sc.total, 500_000_000n);
  const sent = await tx.stop({ drain: true });
  await waitFor(() => received >= sent.framesSent, 2000);
  const rx = await b.stopReceive();
  return { sent, reports, received, rxKernelNs, inOrder, kernelDrops: rx.kernelDrops };
}

/** Every burst-th element (the first frame of each instant). */
function firstOfBursts(ts: BigInt64Array, n: number, burst: number): BigInt64Array {
  const out = new BigInt64Array(Math.ceil(n / burst));
  for (let i = 0; i * burst < n; i++) out[i] = ts[i * burst] ?? 0n;
  return out;
}

export function describe(sc: Schedule, run: Run): string {
  const periodNs = periodOf(sc);
  const n = Math.min(run.received, run.rxKernelNs.length);
  const rxStarts = firstOfBursts(run.rxKernelNs, n, sc.burst);
  const rx = pacing(rxStarts, rxStarts.length, periodNs);
  const sentNs = new BigInt64Array(run.reports.reduce((s, r) => s + r.count, 0));
  const lateUs: number[] = [];
  let k = 0;
  for (const r of run.reports) {
    r.sentNs.forEach((v, i) => {
      sentNs[k++] = v;
      lateUs.push(Number(v - (r.scheduledNs[i] ?? 0n)) / 1000);
    });
  }
  lateUs.sort((x, y) => x - y);
  const txStarts = firstOfBursts(sentNs, k, sc.burst);
  const app = pacing(txStarts, txStarts.length, periodNs);
  const s = run.sent;
  const durMs = Number((run.rxKernelNs[n - 1] ?? 0n) - (run.rxKernelNs[0] ?? 0n)) / 1e6;
  const f = (v: number): string => v.toFixed(1);
  return (
    `${sc.rateHz}/s (${sc.burst} per instant every ${f(periodNs / 1000)} µs, ` +
    `${sc.fifoPriority === undefined ? 'SCHED_OTHER' : `SCHED_FIFO ${sc.fifoPriority}`}` +
    `${sc.spinUs === undefined ? '' : `, spin ${sc.spinUs} µs`}): sent ${s.framesSent}/${s.framesQueued}, ` +
    `received ${run.received} in ${durMs.toFixed(1)} ms, kernel drops ${run.kernelDrops}, send errors ${JSON.stringify(s.sendErrors)}, ` +
    `underruns ${s.underruns}; |gap - period| RX kernel ts p50 ${rx.p50Us} µs, p99 ${rx.p99Us} µs, max ${rx.maxUs} µs; ` +
    `TX app ts p50 ${app.p50Us} µs, p99 ${app.p99Us} µs, max ${app.maxUs} µs; ` +
    `sent - scheduled p50 ${f(percentile(lateUs, 50))} µs, p99 ${f(percentile(lateUs, 99))} µs, max ${f(lateUs[lateUs.length - 1] ?? NaN)} µs`
  );
}

export function openPair(t: { after: (fn: () => void) => void }): { a: PacketSocket; b: PacketSocket } {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const a = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA });
  t.after(() => a.close());
  const b = openPacketSocket({ ifname: lab.ifB, netns: lab.nsB, rcvBufBytes: 64 << 20 });
  t.after(() => b.close());
  return { a, b };
}
