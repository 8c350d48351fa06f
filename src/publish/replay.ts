/**
 * `publish --pcap`: replay the SV frames of a capture through the paced C
 * transmit thread, byte for byte (or as copies of its streams), recording T0
 * of every ASDU with its identity exactly as a synthetic run does.
 *
 *   1. open the socket (its MTU bounds the frames), read the capture once
 *      (replay-plan.ts): streams, wraps, rates, loop period, damage;
 *   2. read it again per loop in small batches (bounded memory) and turn each
 *      packet into frames with send times (replay-frames.ts);
 *   3. hand the frames to the transmit thread ~0.5 s ahead of their time; its
 *      per-frame reports become T0 rows.
 * A damaged capture is replayed up to the damage; the run then stops and
 * says why (`stoppedBy`), unless skipBad.
 */
import { SvtraceError, type ErrorKind } from '../errors.ts';
import { clockNowNs, openPacketSocket, type PacketSocket, TS_SOURCE_HARDWARE, TS_SOURCE_SOFTWARE, type TxReportBatch, type TxStats } from '../net/index.ts';
import { openRecordWriter, type RecordWriter } from '../record/index.ts';
import { parseStreamFilter } from '../subscribe/filter.ts';
import { clearBatch, createReplayBatch, createReplayFeeder, type ReplayBatch } from './replay-frames.ts';
import { nothingToReplay, planReplay, tooLargeError, type ReplayPlan } from './replay-plan.ts';
import { readPacketBatches, spoolStdin } from './replay-read.ts';
import type { SenderOptions } from './run.ts';

export interface ReplayOptions extends SenderOptions {
  /** Capture file (pcap or pcapng); '-' reads stdin. */
  path: string;
  /** Divide the capture's time by this (2 = twice as fast). Default 1. */
  speed?: number;
  /** Send each stream at its nominal period instead of the capture's own times. */
  repace?: boolean;
  /** Times to replay the capture; Infinity = until the signal aborts. Default 1. */
  loops?: number;
  /** Copies of each captured stream (default 1: the capture as it is), and their svID pattern ({svid}, {n}, {n:02}). */
  copies?: number;
  svIdPattern?: string;
  /** Streams to replay: svIDs or APPIDs, as `subscribe --streams` takes them. Empty = all. */
  only?: readonly string[];
  /** Send the frames that are not SV too (as they are), instead of skipping them. */
  sendOther?: boolean;
  /** Leave out malformed frames and frames over the MTU, and end quietly at a damaged record. */
  skipBad?: boolean;
  onProgress?: (p: ReplayProgress) => void;
}

export interface ReplayProgress { elapsedS: number; loop: number; framesSent: number; sendErrors: number; late: number }

export interface ReplayResult {
  file: string;
  /** Per pass over the capture. */
  packets: number;
  svFramesPerLoop: number;
  streams: Array<{ svId: string; appId: number; rate: number; asdusPerFrame: number; spanSamples: number; rateHz: number | null }>;
  copies: number;
  timing: 'capture' | 'repace';
  speed: number;
  /** Loops begun (the last may be cut short by an interrupt or damage). */
  loops: number;
  loopNs: number;
  startNs: string;
  framesScheduled: number;
  framesSent: number;
  samplesRecorded: number;
  /** Over all loops: frames that are not SV, left out or sent as they are (sendOther). */
  otherSkipped: number;
  otherSent: number;
  filteredOut: number;
  /** Malformed frames and frames over the MTU left out (skipBad). */
  badSkipped: number;
  t0Sources: { kernel: number; hw: number; app: number };
  tx: TxStats;
  interrupted: boolean;
  recordDir: string | null;
  /** Why the replay ended early: the capture's damage or a bad frame (without skipBad). */
  stoppedBy: { code: string; message: string; hint: string | undefined; kind: ErrorKind } | null;
  /** The damage skipBad passed over, once per loop. */
  damageSkipped: string | null;
  maxLagNs: number;
  framesLagging: number;
}

const FRAME_RING = 1 << 18;
const ASDU_RING = 1 << 21;
const ROWS = 16384;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runReplay(o: ReplayOptions): Promise<ReplayResult> {
  const speed = o.speed ?? 1;
  const loops = o.loops ?? 1;
  const copies = o.copies ?? 1;
  if (!(speed > 0 && speed <= 1000)) throw new SvtraceError('USAGE', `speed ${speed} is out of range`, { hint: 'give a speed above 0 and at most 1000' });
  if (!(loops === Infinity || (Number.isInteger(loops) && loops >= 1))) throw new SvtraceError('USAGE', `loop ${loops} is not a whole number ≥ 1`, { hint: 'give --loop N or --loop forever' });
  if (!(Number.isInteger(copies) && copies >= 1 && copies <= 1024)) throw new SvtraceError('USAGE', `${copies} copies: give 1 to 1024`, { hint: 'e.g. --streams 8' });
  const filter = parseStreamFilter(o.only ?? []);
  const spool = o.path === '-' ? await spoolStdin() : null;
  const path = spool?.path ?? o.path;
  const shown = o.path === '-' ? 'stdin' : o.path;
  let sock: PacketSocket | null = null;
  let writer: RecordWriter | null = null;
  // A failure in the TX reports' handler (the record's disk full) ends the run at once.
  let fault: unknown = null;
  const onFault = (e: unknown) => { fault ??= e; };
  try {
    const plan = await planReplay(path, { filter, sendOther: o.sendOther === true });
    checkPlan(plan, shown, o);
    sock = openPacketSocket({ ifname: o.ifname, netns: o.netns, sndBufBytes: 8 << 20 });
    const mtu = sock.info.mtu;
    if (plan.largest.mtuNeeded > mtu && !o.skipBad) throw tooLargeError(plan.largest.packet, plan.largest.bytes, mtu, plan.largest.bytes - plan.largest.mtuNeeded + mtu);
    const startNs = alignedStartNs(plan, speed, clockNowNs() + 300_000_000n);
    const maxFrameBytes = 14 + 4 + mtu + 64;
    const feeder = createReplayFeeder({
      plan, startNs, timing: { speed, repace: o.repace === true }, copies: { count: copies, svIdPattern: o.svIdPattern ?? '{svid}_{n}' },
      filter, sendOther: o.sendOther === true, skipBad: o.skipBad === true, mtu, maxFrameBytes,
    });
    const streams = feeder.streams;
    if (o.recordDir) {
      writer = await openRecordWriter(o.recordDir, {
        role: 'publish', points: ['T0'], clock: { name: 'realtime', note: 'T0: kernel software TX timestamp (src kernel), else send time (src app)' },
        startedNs: startNs, command: o.command,
        streams: streams.map((s) => ({ svId: s.svId, appId: s.appId, rate: s.rate, asdusPerFrame: s.asdusPerFrame })),
        extra: { interface: o.ifname, netns: o.netns ?? null, replay: { file: shown, speed, repace: o.repace === true, loops: Number.isFinite(loops) ? loops : 'forever', copies } },
      }, { onError: onFault });
    }
    const svIds = streams.map((s) => s.svIdBytes);
    const appIds = streams.map((s) => s.appId);
    // frame index → its ASDUs in the ASDU ring (the TX reports name frames by enqueue index)
    const frameAsduPos = new Float64Array(FRAME_RING), frameAsduN = new Uint8Array(FRAME_RING);
    const ringStream = new Uint32Array(ASDU_RING), ringSmp = new Uint16Array(ASDU_RING), ringIter = new Float64Array(ASDU_RING);
    const sources = { kernel: 0, hw: 0, app: 0 };
    let samplesRecorded = 0, framesReported = 0, asdusReported = 0;
    const rows = [rowSet(), rowSet()]; // kernel, app
    function flushRows(k: 0 | 1): void {
      const r = rows[k]!;
      if (r.n === 0 || !writer) { r.n = 0; return; }
      writer.appendColumns({ point: 'T0', src: k === 0 ? 'kernel' : 'app', svIds, stream: r.stream, appId: r.app, smpCnt: r.smp, iter: r.iter, tNs: r.t, length: r.n });
      samplesRecorded += r.n;
      r.n = 0;
    }
    function onTxReport(rep: TxReportBatch): void {
      for (let i = 0; i < rep.count; i++) {
        const idx = (rep.firstIndex + i) % FRAME_RING;
        const n = frameAsduN[idx]!;
        asdusReported = frameAsduPos[idx]! + n;
        if (rep.errno[i] !== 0 || n === 0) continue;
        const src = rep.kernelTxSource[i]!;
        const hasKernel = src === TS_SOURCE_SOFTWARE || src === TS_SOURCE_HARDWARE;
        if (src === TS_SOURCE_HARDWARE) sources.hw++; else if (hasKernel) sources.kernel++; else sources.app++;
        const k = hasKernel ? 0 : 1;
        const t = hasKernel ? rep.kernelTxNs[i]! : rep.sentNs[i]!;
        const r = rows[k]!;
        if (r.n + n > ROWS) flushRows(k);
        for (let a = 0; a < n; a++) {
          const pos = (frameAsduPos[idx]! + a) % ASDU_RING;
          const s = ringStream[pos]!;
          r.stream[r.n] = s; r.app[r.n] = appIds[s]!; r.smp[r.n] = ringSmp[pos]!; r.iter[r.n] = ringIter[pos]!; r.t[r.n] = t;
          r.n++;
        }
      }
      framesReported = rep.firstIndex + rep.count;
      flushRows(0); flushRows(1);
    }

    const tx = sock.startTransmit({ onTxReport, onFault, fifoPriority: o.fifoPriority || undefined, cpu: o.cpu !== undefined && o.cpu >= 0 ? o.cpu : undefined, spinUs: o.spinUs || undefined });
    const batchFrames = Math.max(2048, 2 * feeder.framesPerPacket);
    const batch = createReplayBatch(batchFrames, feeder.bytesPerPacket / feeder.framesPerPacket);
    const leadNs = BigInt(Math.round((o.leadMs ?? 500) * 1e6));
    let queued = 0, asdusQueued = 0;
    let interrupted = false;
    const counts = { other: 0, otherSent: 0, filtered: 0, bad: 0 };
    const t0 = Date.now();
    let lastProgress = t0;
    let loop = 0;
    const aborted = () => { if (o.signal?.aborted) interrupted = true; return interrupted || fault !== null; };

    async function flushBatch(b: ReplayBatch): Promise<void> {
      let from = 0, asduAt = 0;
      while (from < b.count && !aborted()) {
        const until = clockNowNs() + leadNs;
        let k = from;
        while (k < b.count && b.timesNs[k]! < until && k - from < 4096) k++;
        // keep the frame and ASDU rings of T0 metadata from overrunning the reports
        while (k > from && (queued + (k - from) - framesReported >= FRAME_RING || asdusQueued + b.asduCount - asdusReported >= ASDU_RING)) k = from + ((k - from) >> 1);
        const accepted = k > from ? tx.enqueue(b.bytes, b.offsets.subarray(from, k), b.lengths.subarray(from, k), b.timesNs.subarray(from, k)) : 0;
        for (let i = 0; i < accepted; i++) {
          const idx = (queued + i) % FRAME_RING;
          const n = b.asdus[from + i]!;
          frameAsduPos[idx] = asdusQueued;
          frameAsduN[idx] = n;
          for (let a = 0; a < n; a++, asduAt++, asdusQueued++) {
            const pos = asdusQueued % ASDU_RING;
            ringStream[pos] = b.asduStream[asduAt]!; ringSmp[pos] = b.asduSmpCnt[asduAt]!; ringIter[pos] = b.asduIter[asduAt]!;
          }
        }
        queued += accepted;
        from += accepted;
        progress();
        if (from < b.count) {
          const waitMs = k === from ? Math.min(20, Math.max(1, Number(b.timesNs[from]! - until) / 1e6)) : 5;
          await sleep(waitMs);
        }
      }
      clearBatch(b);
    }

    function progress(): void {
      const now = Date.now();
      if (!o.onProgress || now - lastProgress < 1000) return;
      lastProgress = now;
      const st = tx.stats();
      o.onProgress({ elapsedS: (now - t0) / 1000, loop: loop + 1, framesSent: st.framesSent, sendErrors: st.sendErrorsTotal, late: st.late });
    }

    let stoppedBy: SvtraceError | null = null;
    let damageSkipped: string | null = null;
    for (loop = 0; loop < loops && !aborted() && !stoppedBy; loop++) {
      feeder.startLoop(loop);
      const reader = readPacketBatches(path);
      let r = await reader.next();
      while (!r.done && !aborted() && !stoppedBy) {
        for (const p of r.value) {
          if (batch.count + feeder.framesPerPacket > batchFrames || batch.used + feeder.bytesPerPacket > batch.bytes.length) await flushBatch(batch);
          if (aborted()) break;
          let outcome;
          try {
            outcome = feeder.add(p, batch);
          } catch (e) {
            if (!(e instanceof SvtraceError)) throw e;
            stoppedBy = e;
            break;
          }
          if (outcome === 'other') counts.other++;
          else if (outcome === 'other-sent') counts.otherSent++;
          else if (outcome === 'filtered') counts.filtered++;
          else if (outcome === 'bad') counts.bad++;
        }
        if (stoppedBy || aborted()) { await reader.return({ summary: null, damage: null }); break; }
        r = await reader.next();
      }
      if (r.done && r.value.damage) {
        if (o.skipBad) damageSkipped = r.value.damage.message;
        else stoppedBy = r.value.damage;
      }
      await flushBatch(batch);
    }
    const txStats = await tx.stop({ drain: !interrupted && fault === null });
    if (fault !== null) throw fault;
    flushRows(0); flushRows(1);
    const result: ReplayResult = {
      file: shown, packets: plan.packets, svFramesPerLoop: plan.svFrames,
      streams: streams.map((s, i) => {
        const c = plan.streams[Math.floor(i / copies)]!;
        return { svId: s.svId, appId: s.appId, rate: s.rate, asdusPerFrame: s.asdusPerFrame, spanSamples: c.spanSamples, rateHz: c.rateHz };
      }),
      copies, timing: o.repace ? 'repace' : 'capture', speed, loops: loop, loopNs: plan.loopNs, startNs: startNs.toString(),
      framesScheduled: queued, framesSent: txStats.framesSent, samplesRecorded,
      otherSkipped: counts.other, otherSent: counts.otherSent, filteredOut: counts.filtered, badSkipped: counts.bad,
      t0Sources: sources, tx: txStats, interrupted, recordDir: o.recordDir ?? null,
      stoppedBy: stoppedBy ? { code: stoppedBy.code, message: stoppedBy.message, hint: stoppedBy.hint, kind: stoppedBy.kind } : null, damageSkipped,
      maxLagNs: Math.max(0, txStats.maxLateNs), framesLagging: txStats.lagging,
    };
    if (writer) {
      await writer.close({ stoppedNs: clockNowNs(), counters: { framesSent: txStats.framesSent, sendErrors: txStats.sendErrorsTotal, late: txStats.late, underruns: txStats.underruns, kernelTsMissing: txStats.kernelTsMissing, samplesRecorded, maxLagNs: result.maxLagNs, framesLagging: result.framesLagging, loops: loop } });
      writer = null;
    }
    return result;
  } finally {
    if (writer) await writer.close().catch(() => undefined);
    sock?.close();
    spool?.remove();
  }
}

/**
 * The run's time origin, at or after `notBeforeNs`, chosen so that the
 * stream with the most frames sends smpCnt k at k / rate past a whole second,
 * as a PTP-synchronised merging unit does and as synthetic publishing does:
 * `report` joins records by that instant (src/analyze/join.ts), so a replay
 * of a real-time capture at its own speed joins like any other run.
 */
export function alignedStartNs(plan: ReplayPlan, speed: number, notBeforeNs: bigint): bigint {
  let main = plan.streams[0]!;
  for (const s of plan.streams) if (s.frames > main.frames) main = s;
  const firstAtNs = BigInt(Math.round(main.firstRelNs / speed));
  const phaseNs = BigInt(Math.floor((main.firstSmpCnt * 1e9) / main.wrap));
  const sec = (notBeforeNs + firstAtNs - phaseNs) / 1_000_000_000n + 1n;
  return sec * 1_000_000_000n + phaseNs - firstAtNs;
}

function rowSet() {
  return { n: 0, stream: new Uint32Array(ROWS), app: new Uint16Array(ROWS), smp: new Uint16Array(ROWS), iter: new Float64Array(ROWS), t: new BigInt64Array(ROWS) };
}

/** Refuses, before anything is sent, a capture with nothing to replay or streams whose rate --repace cannot learn. */
function checkPlan(plan: ReplayPlan, shown: string, o: ReplayOptions): void {
  if (plan.svFrames === 0) {
    if (plan.damage && plan.packets === 0) throw plan.damage;
    throw nothingToReplay(shown, plan);
  }
  if (o.repace) {
    const unknown = plan.streams.find((s) => s.nominalRateHz === null || !(s.nominalRateHz > 0));
    if (unknown) {
      throw new SvtraceError('REPLAY_NO_RATE', `--repace needs each stream's rate, and stream ${JSON.stringify(unknown.svId)} (APPID 0x${unknown.appId.toString(16)}) has ${unknown.frames} frame(s) spanning no time`, {
        hint: 'replay with the capture\'s own timing (leave out --repace), or leave that stream out with --only',
      });
    }
  }
}
