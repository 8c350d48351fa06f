/**
 * A subscribe run: the addon's receive thread hands over frames with their
 * kernel RX timestamp (T3) and the application time taken in C right after
 * receive (T4); the receiver decodes and checks each stream's sequence; the
 * samples go to a record and, with `metrics`, to a Prometheus endpoint.
 * Stops after a duration or on the signal (Ctrl-C), after the last batch was
 * taken: nothing received is lost.
 */
import { guestOfLab } from '../lab/guest-env.ts';
import { createRunLoop } from '../util/run-loop.ts';
import { ROLE_POINTS } from '../path/index.ts';
import { clockNowNs, openPacketSocket, type RxStats } from '../net/index.ts';
import { encodeSvId, openRecordWriter, type RecordWriter } from '../record/index.ts';
import { openCaptureSink, type CaptureSink } from '../pcap/index.ts';
import { parseStreamFilter } from './filter.ts';
import { createReceiver, type StreamSummary } from './receiver.ts';
import { createSubscribeMetrics } from './metrics.ts';
import { serveMetrics } from '../live/metrics.ts';

export interface SubscribeOptions {
  ifname: string;
  netns?: string;
  streams: string[];
  durationS: number;
  recordDir?: string;
  rcvBufBytes?: number;
  timestamping?: 'software' | 'hardware';
  /** Ask for promiscuous mode on the socket (a packet membership, dropped at close). Default true: NICs filter multicast otherwise. */
  promiscuous?: boolean;
  command?: string[];
  signal?: AbortSignal;
  onProgress?: (p: SubscribeProgress) => void;
  /** Called once the socket is receiving (tests and scripts start the publisher then). */
  onReady?: () => void;
  /** Stop after this many seconds without any frame once frames were seen. */
  idleStopS?: number;
  /** Also write every received frame (with its kernel RX time) to this pcapng file. */
  pcapPath?: string;
  /** SCHED_FIFO priority of the receive thread (as a protection application would run), 0 = normal. */
  fifoPriority?: number;
  /** Pin the receive thread to this CPU. */
  cpu?: number;
  /** Serve Prometheus metrics on HOST:PORT (loopback unless a host is given; port 0 takes a free one) while receiving. */
  metrics?: string;
  /** Limits per segment in µs for the late counters of the metrics (the verdicts' limits_us; Tsub is the one a subscriber measures). */
  limitsUs?: Record<string, number>;
  /** Called with the metrics URL once it is served. */
  onMetrics?: (url: string) => void;
}

export interface SubscribeProgress {
  elapsedS: number;
  frames: number;
  samples: number;
  streams: number;
  missing: number;
  kernelDrops: number;
}

export interface SubscribeResult {
  frames: number;
  samples: number;
  malformed: number;
  filtered: number;
  otherFrames: number;
  firstErrors: string[];
  streams: StreamSummary[];
  rx: RxStats;
  interrupted: boolean;
  recordDir: string | null;
}

export async function runSubscribe(o: SubscribeOptions): Promise<SubscribeResult> {
  const filter = parseStreamFilter(o.streams);
  const receiver = createReceiver(filter);
  let rxStats: RxStats | null = null; // the socket's, live while it receives, the final ones after
  const live = o.metrics !== undefined
    ? createSubscribeMetrics(receiver, Object.fromEntries(Object.entries(o.limitsUs ?? { Tsub: 100 }).map(([k, v]) => [k, v * 1000])), () => rxStats ?? sock.stats().rx)
    : null;
  // listen before the socket opens: a port in use fails at once, with nothing to undo
  const metrics = live && o.metrics !== undefined ? await serveMetrics(o.metrics, live.source) : null;
  let sock: ReturnType<typeof openPacketSocket>;
  try {
    sock = openPacketSocket({ ifname: o.ifname, netns: o.netns, rcvBufBytes: o.rcvBufBytes ?? 32 << 20, timestamping: o.timestamping, promiscuous: o.promiscuous ?? true });
  } catch (e) {
    await metrics?.close();
    throw e;
  }
  let writer: RecordWriter | null = null;
  let pcap: CaptureSink | null = null;
  // A failure while receiving (the record's disk full, the pcap write failing) ends the run at once.
  const loop = createRunLoop();
  const onFault = (e: unknown) => loop.fail(e);
  try {
    if (metrics) o.onMetrics?.(metrics.url);
    if (o.pcapPath) pcap = await openCaptureSink(o.pcapPath, { format: 'pcapng', interfaceName: o.ifname });
    if (o.recordDir) {
      writer = await openRecordWriter(o.recordDir, {
        role: 'subscribe', points: [...ROLE_POINTS.subscribe], startedNs: clockNowNs(), command: o.command,
        clock: { name: 'realtime', note: `T3: ${o.timestamping === 'hardware' ? 'NIC hardware' : 'kernel software'} RX timestamp; T4: application time after recvmmsg, in C` },
        extra: { interface: o.ifname, netns: o.netns ?? null, promiscuous: sock.info.promiscuous, ...guestOfLab() },
      }, { onError: onFault });
    }
    const svIds: Uint8Array[] = [];
    let lastFrameAt = 0;
    sock.startReceive((b) => {
      const cols = receiver.take(b);
      if (pcap) for (let i = 0; i < b.count; i++) void pcap.write(b.kernelTsNs[i]!, b.frames.subarray(b.offsets[i]!, b.offsets[i]! + b.lengths[i]!));
      if (b.count) lastFrameAt = Date.now();
      if (cols.length === 0) return;
      live?.take(cols);
      if (!writer) return;
      for (let i = svIds.length; i < receiver.streams.length; i++) svIds.push(receiver.streams[i]!.svIdBytes);
      const common = { svIds, stream: cols.stream, appId: cols.appId, smpCnt: cols.smpCnt, iter: cols.iter, length: cols.length };
      writer.appendColumns({ point: 'T3', src: o.timestamping === 'hardware' ? 'hw' : 'kernel', tNs: cols.t3Ns, ...common });
      writer.appendColumns({ point: 'T4', src: 'app', tNs: cols.t4Ns, ...common });
    }, { onFault, ...(o.fifoPriority ? { fifoPriority: o.fifoPriority } : {}), ...(o.cpu !== undefined && o.cpu >= 0 ? { cpu: o.cpu } : {}) });
    o.onReady?.();
    const t0 = Date.now();
    await loop.start({
      intervalMs: o.onProgress ? 1000 : 100, signal: o.signal, tick: () => {
        const now = Date.now();
        const c = receiver.counters();
        o.onProgress?.({
          elapsedS: (now - t0) / 1000, frames: c.frames, samples: c.samples, streams: receiver.streams.length,
          missing: receiver.streams.reduce((m, s) => m + s.seq.missing, 0), kernelDrops: sock.stats().rx.kernelDrops,
        });
        if (now - t0 >= o.durationS * 1000) loop.finish();
        if (o.idleStopS && lastFrameAt && now - lastFrameAt > o.idleStopS * 1000) loop.finish();
      },
    });
    const interrupted = loop.interrupted;
    const rx = await sock.stopReceive();
    rxStats = rx;
    if (loop.fault !== null) throw loop.fault;
    if (pcap) { await pcap.close(); pcap = null; }
    const c = receiver.counters();
    const streams = receiver.summary();
    if (writer) {
      await writer.close({
        stoppedNs: clockNowNs(),
        counters: { frames: c.frames, samples: c.samples, malformed: c.malformed, kernelDrops: rx.kernelDrops, missing: streams.reduce((m, s) => m + s.missing, 0) },
        streams: receiver.streams.map((s, i) => ({ svId: encodeSvId(s.svIdBytes), appId: s.appId, rate: streams[i]!.wrap })),
      });
      writer = null;
    }
    return { ...c, streams, rx, interrupted, recordDir: o.recordDir ?? null };
  } finally {
    if (writer) await writer.close().catch(() => undefined);
    if (pcap) await pcap.close().catch(() => undefined);
    try { rxStats ??= sock.stats().rx; } catch { /* a broken socket: the metrics keep what they had */ }
    sock.close();
    await metrics?.close();
  }
}
