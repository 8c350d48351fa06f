/**
 * CLOCK_MONOTONIC (bpftrace's nsecs in 0.17) to CLOCK_REALTIME and
 * CLOCK_TAI, by a measured offset. Reads the clocks through the native
 * addon (clock_gettime in C, a few hundred ns per read) in a tight loop:
 * monotonic, realtime, monotonic; the narrowest bracket wins and the offset
 * is taken at its middle. Re-measure it now and then: NTP/PTP slew the
 * realtime clock.
 */
import { clockNowNs } from '../net/frames.ts';
import { SvtraceError } from '../errors.ts';

export interface ClockOffset {
  /** realtime = monotonic + realtimeOffsetNs. */
  realtimeOffsetNs: bigint;
  /** tai = monotonic + taiOffsetNs (equals the realtime offset plus the kernel's TAI-UTC, 0 when never set). */
  taiOffsetNs: bigint;
  /** Half the narrowest monotonic bracket around the realtime read: the offset is good to about this. */
  uncertaintyNs: number;
  /** When it was measured, CLOCK_MONOTONIC ns. */
  measuredAtMonoNs: bigint;
}

/**
 * Parses two lines "width mono1 clock mono2" (realtime, then TAI) into an
 * offset: the text form of a measurement, as other tools (or a log) give it.
 */
export function parseClockOutput(text: string): ClockOffset {
  const lines = text.trim().split('\n').map((l) => l.trim().split(/\s+/).map((x) => BigInt(x)));
  const [rt, tai] = lines;
  if (!rt || !tai || rt.length !== 4 || tai.length !== 4) throw new Error(`unexpected clock output ${JSON.stringify(text)}`);
  return fromBrackets(rt as Bracket, tai as Bracket);
}

/** [width, mono before, clock, mono after]. */
type Bracket = [bigint, bigint, bigint, bigint];

function fromBrackets(rt: Bracket, tai: Bracket): ClockOffset {
  const offset = (v: Bracket) => v[2] - (v[1] + v[3]) / 2n;
  return {
    realtimeOffsetNs: offset(rt),
    taiOffsetNs: offset(tai),
    uncertaintyNs: Number(rt[0]) / 2,
    measuredAtMonoNs: (rt[1] + rt[3]) / 2n,
  };
}

function narrowest(clock: 'realtime' | 'tai', rounds: number): Bracket {
  let best: Bracket | null = null;
  for (let i = 0; i < rounds; i++) {
    const a = clockNowNs('monotonic');
    const r = clockNowNs(clock);
    const z = clockNowNs('monotonic');
    if (best === null || z - a < best[0]) best = [z - a, a, r, z];
  }
  return best!;
}

/** Measures the offsets; `rounds` bracketed reads per clock (default 2000, about a millisecond). */
export async function measureClockOffset(rounds = 2000): Promise<ClockOffset> {
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1_000_000) throw new RangeError('rounds must be 1..1000000');
  try {
    return fromBrackets(narrowest('realtime', rounds), narrowest('tai', rounds));
  } catch (e) {
    if (e instanceof SvtraceError) throw e;
    throw new SvtraceError('TRACE_CLOCK_FAILED', `cannot read the realtime and monotonic clocks: ${(e as Error).message}`, {
      hint: 'the native addon reads them: rebuild it with `npm ci`', cause: e,
    });
  }
}

/** Realtime ns for a monotonic ns. */
export function monoToRealtimeNs(monoNs: bigint, c: ClockOffset): bigint {
  return monoNs + c.realtimeOffsetNs;
}
