/**
 * The demo's publisher and subscriber, each in a process of its own, as on
 * real machines. The demo's own event loop reads bpftrace's output (tens of
 * thousands of lines a second); sharing it, the publisher's ring refills and
 * the subscriber's receive batches waited behind that work (seen on a 2-vCPU
 * machine: the sender 0.67 s behind schedule, which broke the time join, and
 * Tsub p50 134 µs). Started by `fork()` from run.ts; one job per process,
 * over the IPC channel (structured clone: Infinity and bigints pass).
 */
import type { ErrorKind } from '../errors.ts';
import { runPublish, type PublishOptions, type PublishProgress } from '../publish/run.ts';
import { runSubscribe, type SubscribeOptions } from '../subscribe/run.ts';

export type ChildJob =
  | { kind: 'publish'; options: Omit<PublishOptions, 'signal' | 'onProgress'> }
  | { kind: 'subscribe'; options: Omit<SubscribeOptions, 'signal' | 'onProgress' | 'onReady' | 'onMetrics'> };

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'progress'; progress: PublishProgress }
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: { message: string; code?: string; hint?: string; kind?: ErrorKind } };

/** Parent → child: stop early (Ctrl-C in the demo). */
export const STOP = 'stop';

function send(m: ChildMessage): void {
  process.send?.(m);
}

async function run(job: ChildJob, signal: AbortSignal): Promise<unknown> {
  if (job.kind === 'publish') {
    return runPublish({ ...job.options, signal, onProgress: (progress) => send({ type: 'progress', progress }) });
  }
  return runSubscribe({ ...job.options, signal, onReady: () => send({ type: 'ready' }) });
}

if (process.send) {
  const stop = new AbortController();
  // the demo is gone (crash, kill): stop and let the recorder close its files
  process.on('disconnect', () => stop.abort());
  // Ctrl-C reaches the whole process group: the demo stops us through the channel
  process.on('SIGINT', () => stop.abort());
  process.on('SIGTERM', () => stop.abort());
  process.on('message', (m: unknown) => {
    if (m === STOP) { stop.abort(); return; }
    const job = m as ChildJob;
    run(job, stop.signal).then(
      (result) => send({ type: 'result', result }),
      (e: unknown) => {
        const err = e as Error & { code?: string; hint?: string; kind?: ErrorKind };
        send({ type: 'error', error: { message: err.message ?? String(e), ...(err.code ? { code: err.code } : {}), ...(err.hint ? { hint: err.hint } : {}), ...(err.kind ? { kind: err.kind } : {}) } });
      },
    ).finally(() => process.disconnect());
  });
}
