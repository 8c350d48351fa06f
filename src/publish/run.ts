/**
 * A publish run: the schedule (schedule.ts) feeds the addon's paced transmit
 * thread ~0.5 s ahead; per-frame TX reports become point T0 of every sample
 * (the kernel's TX timestamp, or the application's send time when the kernel
 * gave none) in a record. JavaScript never touches the pacing.
 */
import { createRunLoop } from '../util/run-loop.ts';
import { ROLE_POINTS } from '../path/index.ts';
import { clockNowNs, openPacketSocket, TS_SOURCE_HARDWARE, TS_SOURCE_SOFTWARE, type TxReportBatch, type TxStats } from '../net/index.ts';
import { openRecordWriter, type RecordWriter } from '../record/index.ts';
import { createBatch, createSchedule, type FrameBatch } from './schedule.ts';
import { sampleRate, type StreamSpec } from './streams.ts';

/** What every sender (synthetic streams, a replayed capture) takes: where, how its thread runs, the record. */
export interface SenderOptions {
  ifname: string;
  netns?: string;
  fifoPriority?: number;
  cpu?: number;
  /** Busy-wait this long before each send instead of sleeping (sharper pacing, costs CPU). */
  spinUs?: number;
  recordDir?: string;
  command?: string[];
  signal?: AbortSignal;
  /** How far ahead of time frames are handed to the transmit thread. Default 500 ms. */
  leadMs?: number;
}

export interface PublishOptions extends SenderOptions {
  streams: StreamSpec[];
  /** Seconds; Infinity runs until the signal aborts. */
  durationS: number;
  onProgress?: (p: PublishProgress) => void;
  /**
   * Fault injection: leave out this share (%) of frames, chosen at random
   * (seeded, repeatable), to check a subscriber's loss accounting where tc
   * netem is unavailable. Left-out frames are never sent and get no T0.
   */
  dropPercent?: number;
  dropSeed?: number;
}

export interface PublishProgress {
  elapsedS: number;
  framesSent: number;
  framesPerSecond: number;
  sendErrors: number;
  sendBufferFull: number;
  late: number;
  underruns: number;
}

export interface PublishResult {
  streams: number;
  sampleRate: number;
  framesPerSecond: number;
  startNs: string;
  framesScheduled: number;
  framesSent: number;
  /** Frames left out by dropPercent. */
  framesDropped: number;
  samplesRecorded: number;
  t0Sources: { kernel: number; hw: number; app: number };
  tx: TxStats;
  interrupted: boolean;
  recordDir: string | null;
  /** How far behind its schedule the transmit thread sent: the largest (send time − scheduled time), ns (tx.maxLateNs). */
  maxLagNs: number;
  /** Frames sent more than 10 ms after their time: their T0 (the send time) no longer marks the sample's instant (tx.lagging). */
  framesLagging: number;
}

const META_RING = 1 << 19;

export async function runPublish(o: PublishOptions): Promise<PublishResult> {
  const streams = o.streams;
  const sock = openPacketSocket({ ifname: o.ifname, netns: o.netns, sndBufBytes: 8 << 20 });
  let writer: RecordWriter | null = null;
  // A failure in the TX reports' handler (the record's disk full) ends the run at once.
  const loop = createRunLoop();
  const onFault = (e: unknown) => loop.fail(e);
  try {
    const rate = sampleRate(streams[0]!);
    const n = streams[0]!.asdusPerFrame;
    const schedule = createSchedule(streams, { notBeforeNs: clockNowNs() + 300_000_000n, durationS: o.durationS });
    if (o.recordDir) {
      writer = await openRecordWriter(o.recordDir, {
        role: 'publish', points: [...ROLE_POINTS.publish], clock: { name: 'realtime', note: 'T0: kernel software TX timestamp (src kernel), else send time (src app)' },
        startedNs: schedule.startNs, command: o.command,
        streams: streams.map((s) => ({ svId: s.svId, appId: s.appId, rate, asdusPerFrame: n })),
        extra: { interface: o.ifname, netns: o.netns ?? null },
      }, { onError: onFault });
    }
    // frame index → stream, smpCnt, iter (the TX reports name frames by enqueue index)
    const metaStream = new Uint16Array(META_RING), metaSmp = new Uint16Array(META_RING), metaIter = new Uint32Array(META_RING);
    const svIds = streams.map((s) => s.svId);
    const appIds = streams.map((s) => s.appId);
    const sources = { kernel: 0, hw: 0, app: 0 };
    let samplesRecorded = 0;
    const cap = n * 8192;
    const rowStream = new Uint32Array(cap), rowApp = new Uint16Array(cap), rowSmp = new Uint16Array(cap), rowIter = new Float64Array(cap);
    const rowT = new BigInt64Array(cap);

    function onTxReport(r: TxReportBatch): void {
      if (!writer) return;
      for (let start = 0; start < r.count; start += 8192) {
        const end = Math.min(r.count, start + 8192);
        let kernelRows = 0, appRows = 0;
        // two passes so that each appendColumns call has one source
        for (const wantKernel of [true, false]) {
          let m = 0;
          for (let i = start; i < end; i++) {
            if (r.errno[i] !== 0) continue;
            const hasKernel = r.kernelTxSource[i] === TS_SOURCE_SOFTWARE || r.kernelTxSource[i] === TS_SOURCE_HARDWARE;
            if (hasKernel !== wantKernel) continue;
            const idx = (r.firstIndex + i) % META_RING;
            const t = hasKernel ? r.kernelTxNs[i]! : r.sentNs[i]!;
            for (let a = 0; a < n; a++) {
              rowStream[m] = metaStream[idx]!; rowApp[m] = appIds[metaStream[idx]!]!;
              rowSmp[m] = metaSmp[idx]! + a; rowIter[m] = metaIter[idx]!; rowT[m] = t;
              m++;
            }
            if (hasKernel && r.kernelTxSource[i] === TS_SOURCE_HARDWARE) sources.hw++;
            else if (hasKernel) sources.kernel++;
            else sources.app++;
          }
          if (m === 0) continue;
          writer.appendColumns({ point: 'T0', src: wantKernel ? 'kernel' : 'app', svIds, stream: rowStream, appId: rowApp, smpCnt: rowSmp, iter: rowIter, tNs: rowT, length: m });
          if (wantKernel) kernelRows = m; else appRows = m;
        }
        samplesRecorded += kernelRows + appRows;
      }
    }

    const tx = sock.startTransmit({ onTxReport, onFault, fifoPriority: o.fifoPriority || undefined, cpu: o.cpu !== undefined && o.cpu >= 0 ? o.cpu : undefined, spinUs: o.spinUs || undefined });
    const maxFrame = 64 + n * (96 + Math.max(...streams.map((s) => s.svId.length + (s.datSet?.length ?? 0))));
    const batch: FrameBatch = createBatch(4096, maxFrame);
    let queued = 0; // frames enqueued so far = next frame index
    let carry = 0; // frames of `batch` not yet accepted by the ring
    let carryFrom = 0;
    const leadNs = BigInt((o.leadMs ?? 500) * 1e6);
    let interrupted = false;
    let dropped = 0;
    const dropBelow = Math.round(((o.dropPercent ?? 0) / 100) * 2 ** 32);
    let rng = (o.dropSeed ?? 1) >>> 0 || 1;
    const t0 = Date.now();
    let lastProgress = t0;

    // compacts the batch in place, keeping the frames the fault injection lets through
    function dropFrames(count: number): number {
      let kept = 0;
      for (let i = 0; i < count; i++) {
        rng ^= rng << 13; rng >>>= 0; rng ^= rng >>> 17; rng ^= rng << 5; rng >>>= 0;
        if (rng < dropBelow) { dropped++; continue; }
        batch.offsets[kept] = batch.offsets[i]!; batch.lengths[kept] = batch.lengths[i]!; batch.timesNs[kept] = batch.timesNs[i]!;
        batch.stream[kept] = batch.stream[i]!; batch.smpCnt[kept] = batch.smpCnt[i]!; batch.iter[kept] = batch.iter[i]!;
        kept++;
      }
      return kept;
    }

    await loop.start({
      intervalMs: 20, signal: o.signal, tick: () => {
        const until = clockNowNs() + leadNs;
        while (true) {
          if (carry === 0) {
            let got = schedule.next(batch, batch.offsets.length, until);
            if (got === 0) break;
            if (dropBelow > 0) got = dropFrames(got);
            carry = got; carryFrom = 0;
            if (got === 0) continue;
          }
          const offs = batch.offsets.subarray(carryFrom, carryFrom + carry);
          const accepted = tx.enqueue(batch.bytes, offs, batch.lengths.subarray(carryFrom, carryFrom + carry), batch.timesNs.subarray(carryFrom, carryFrom + carry));
          for (let i = 0; i < accepted; i++) {
            const idx = (queued + i) % META_RING;
            metaStream[idx] = batch.stream[carryFrom + i]!; metaSmp[idx] = batch.smpCnt[carryFrom + i]!; metaIter[idx] = batch.iter[carryFrom + i]!;
          }
          queued += accepted; carryFrom += accepted; carry -= accepted;
          if (carry > 0) break; // ring full: the rest waits for the next tick
        }
        const now = Date.now();
        if (o.onProgress && now - lastProgress >= 1000) {
          lastProgress = now;
          const st = tx.stats();
          o.onProgress({ elapsedS: (now - t0) / 1000, framesSent: st.framesSent, framesPerSecond: schedule.framesPerSecond, sendErrors: st.sendErrorsTotal, sendBufferFull: st.sendBufferFull, late: st.late, underruns: st.underruns });
        }
        if (carry === 0 && schedule.finished() && tx.pending() === 0) loop.finish();
      },
    });
    interrupted = loop.interrupted;
    const txStats = await tx.stop({ drain: false });
    if (loop.fault !== null) throw loop.fault;
    const maxLagNs = Math.max(0, txStats.maxLateNs), framesLagging = txStats.lagging;
    const result: PublishResult = {
      streams: streams.length, sampleRate: rate, framesPerSecond: schedule.framesPerSecond, startNs: schedule.startNs.toString(),
      framesScheduled: queued, framesSent: txStats.framesSent, framesDropped: dropped, samplesRecorded, t0Sources: sources, tx: txStats, interrupted,
      recordDir: o.recordDir ?? null, maxLagNs, framesLagging,
    };
    if (writer) {
      await writer.close({ stoppedNs: clockNowNs(), counters: { framesSent: txStats.framesSent, sendErrors: txStats.sendErrorsTotal, late: txStats.late, underruns: txStats.underruns, kernelTsMissing: txStats.kernelTsMissing, samplesRecorded, maxLagNs, framesLagging } });
      writer = null;
    }
    return result;
  } finally {
    if (writer) await writer.close().catch(() => undefined);
    sock.close();
  }
}
