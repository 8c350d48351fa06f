/**
 * A JavaScript callback that the addon calls from its threads (through a
 * Node-API threadsafe function). Node drops an exception thrown there with a
 * DEP0168 warning and goes on, so a failure (a record on a full disk) would
 * be repeated for every batch until the end of the run. The guard catches
 * the first one, stops calling the callback, tells the owner at once and
 * keeps the error for the stop() that follows.
 */
export interface GuardedCallback<T> {
  call: (arg: T) => void;
  /** The first exception of the callback, or undefined. */
  fault: () => unknown;
}

export function guardCallback<T>(fn: (arg: T) => void, onFault?: (error: unknown) => void): GuardedCallback<T> {
  let faulted = false;
  let error: unknown;
  return {
    call(arg: T): void {
      if (faulted) return;
      try {
        fn(arg);
      } catch (e) {
        faulted = true;
        error = e;
        try {
          onFault?.(e);
        } catch {
          // the owner's handler failing must not reach Node either: the error is kept for stop()
        }
      }
    },
    fault: () => error,
  };
}

/** Resolves as the native stop does, but rejects with the callback's fault when there was one. */
export async function settle<R>(stopped: Promise<R>, guard: Pick<GuardedCallback<unknown>, 'fault'>): Promise<R> {
  const r = await stopped;
  const f = guard.fault();
  if (f !== undefined) throw f;
  return r;
}
