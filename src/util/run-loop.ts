/**
 * The loop of a run that feeds or drains a native thread (publish, subscribe):
 * a tick every `intervalMs` until the tick says it is done, the signal aborts
 * (Ctrl-C: `interrupted`), or a fault ends it at once (a full disk under the
 * thread's callback). The fault is kept for the caller to throw once the
 * thread has stopped.
 */
export interface RunLoop {
  /** Ends the loop (from a tick: the work is done). */
  finish(): void;
  /** Ends the loop at once because of this error (the first one is kept). */
  fail(error: unknown): void;
  readonly interrupted: boolean;
  /** The first error given to fail(), or null. */
  readonly fault: unknown;
}

/** A loop whose fault handler exists before the loop starts (callbacks are wired first). */
export function createRunLoop(): RunLoop & { start(o: { intervalMs: number; signal?: AbortSignal | undefined; tick: () => void }): Promise<void> } {
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => { resolveDone = r; });
  let fault: unknown = null;
  let interrupted = false;
  let ended = false;
  let cleanup = () => undefined as void;
  const finish = () => {
    if (ended) return;
    ended = true;
    cleanup();
    resolveDone();
  };
  return {
    finish,
    fail(e: unknown) { fault ??= e; finish(); },
    get interrupted() { return interrupted; },
    get fault() { return fault; },
    start({ intervalMs, signal, tick }) {
      if (ended) return done;
      const onAbort = () => { interrupted = true; finish(); };
      if (signal?.aborted) onAbort();
      else {
        signal?.addEventListener('abort', onAbort, { once: true });
        const timer = setInterval(() => { if (!ended) tick(); }, intervalMs);
        cleanup = () => { clearInterval(timer); signal?.removeEventListener('abort', onAbort); };
      }
      return done;
    },
  };
}
