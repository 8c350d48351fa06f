/**
 * The guest's clock against the host's, NTP-style over the control channel:
 * the host reads its CLOCK_REALTIME (t0), asks the guest for its own (g),
 * reads again when the answer arrives (t1). If the request and the answer took
 * equally long, g was read at (t0 + t1) / 2, so offset = g − (t0 + t1) / 2,
 * uncertain by at most ± (t1 − t0) / 2. Of several exchanges the one with the
 * shortest round trip is kept (min-RTT filtering): the others waited in a
 * queue, a scheduler or the emulator, and say less.
 */
import { clockNowNs } from '../net/index.ts';
import type { ControlSession } from './vm-control.ts';

export interface ClockOffset {
  /** guest − host, CLOCK_REALTIME, in ns: subtract it from a guest timestamp to put it on the host's clock. */
  offsetNs: bigint;
  /** Half the round trip of the kept exchange: the offset is within ± this. */
  uncertaintyNs: bigint;
  rttNs: bigint;
  exchanges: number;
  /** Host CLOCK_REALTIME of the kept exchange. */
  measuredAtNs: bigint;
}

export interface Exchange {
  t0Ns: bigint;
  guestNs: bigint;
  t1Ns: bigint;
}

/** The min-RTT estimate from exchanges (pure). */
export function estimateOffset(exchanges: readonly Exchange[]): ClockOffset | undefined {
  let best: Exchange | undefined;
  for (const e of exchanges) {
    if (e.t1Ns < e.t0Ns) continue;
    if (!best || e.t1Ns - e.t0Ns < best.t1Ns - best.t0Ns) best = e;
  }
  if (!best) return undefined;
  const rtt = best.t1Ns - best.t0Ns;
  const mid = best.t0Ns + rtt / 2n;
  return { offsetNs: best.guestNs - mid, uncertaintyNs: (rtt + 1n) / 2n, rttNs: rtt, exchanges: exchanges.length, measuredAtNs: mid };
}

/** Runs `count` exchanges on the session (one at a time; each waits at most timeoutMs). */
export async function measureClockOffset(session: ControlSession, count = 16, timeoutMs = 2_000): Promise<ClockOffset | undefined> {
  const exchanges: Exchange[] = [];
  for (let id = 1; id <= count; id++) {
    const t0Ns = clockNowNs('realtime');
    const guestNs = await new Promise<bigint | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      session.onMessage((m) => {
        if (m.t === 'clock' && m.id === id) {
          clearTimeout(timer);
          resolve(BigInt(m.ns));
        }
      });
      session.send({ t: 'clock', id });
    });
    const t1Ns = clockNowNs('realtime');
    if (guestNs !== undefined) exchanges.push({ t0Ns, guestNs, t1Ns });
  }
  session.onMessage(() => {});
  return estimateOffset(exchanges);
}

/** The offset as environment variables for a command in the guest (svtrace subscribe keeps them in its record). */
export function clockOffsetEnv(o: ClockOffset): Record<string, string> {
  return {
    SVTRACE_CLOCK_OFFSET_NS: o.offsetNs.toString(),
    SVTRACE_CLOCK_UNCERTAINTY_NS: o.uncertaintyNs.toString(),
    SVTRACE_CLOCK_MEASURED_AT_NS: o.measuredAtNs.toString(),
  };
}
