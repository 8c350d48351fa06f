/**
 * CLOCK_MONOTONIC (bpftrace's nsecs in 0.17) to CLOCK_REALTIME and
 * CLOCK_TAI, by a measured offset. Node has no nanosecond realtime clock, so
 * this reads both clocks from python3 in a tight loop: monotonic, realtime,
 * monotonic; the narrowest bracket wins and the offset is taken at its middle.
 * Re-measure it now and then: NTP/PTP slew the realtime clock.
 * (This moves into the native addon later.)
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { promisify } from 'node:util';
import { SvtraceError } from '../errors.ts';

const run = promisify(execFile);

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

const SCRIPT = `
import sys, time
g = time.clock_gettime_ns
M = time.CLOCK_MONOTONIC
n = int(sys.argv[1])
def best(C):
    b = None
    for _ in range(n):
        a = g(M); r = g(C); z = g(M)
        if b is None or z - a < b[0]:
            b = (z - a, a, r, z)
    return b
for C in (time.CLOCK_REALTIME, time.CLOCK_TAI):
    w, a, r, z = best(C)
    print(w, a, r, z)
`;

/** Parses the script's two lines "width mono1 clock mono2" into an offset. */
export function parseClockOutput(text: string): ClockOffset {
  const lines = text.trim().split('\n').map((l) => l.trim().split(/\s+/).map((x) => BigInt(x)));
  const [rt, tai] = lines;
  if (!rt || !tai || rt.length !== 4 || tai.length !== 4) throw new Error(`unexpected clock output ${JSON.stringify(text)}`);
  const offset = (v: bigint[]) => v[2]! - (v[1]! + v[3]!) / 2n;
  return {
    realtimeOffsetNs: offset(rt),
    taiOffsetNs: offset(tai),
    uncertaintyNs: Number(rt[0]!) / 2,
    measuredAtMonoNs: (rt[1]! + rt[3]!) / 2n,
  };
}

/** The system python3 first (a pyenv shim takes a second to start), then whatever PATH has; -I -S: isolated, no site. */
function python(): string {
  for (const p of ['/usr/bin/python3', '/usr/local/bin/python3']) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return 'python3';
}

/** Measures the offsets; `rounds` bracketed reads per clock (default 2000, a few ms). */
export async function measureClockOffset(rounds = 2000): Promise<ClockOffset> {
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1_000_000) throw new RangeError('rounds must be 1..1000000');
  let stdout: string;
  try {
    ({ stdout } = await run(python(), ['-I', '-S', '-c', SCRIPT, String(rounds)], { timeout: 10_000 }));
  } catch (e) {
    throw new SvtraceError('TRACE_CLOCK_FAILED', 'cannot read the realtime and monotonic clocks (python3 failed)', {
      hint: 'install python3 (3.7 or later); svtrace uses it to map bpftrace times to realtime', cause: e,
    });
  }
  try {
    return parseClockOutput(stdout);
  } catch (e) {
    throw new SvtraceError('TRACE_CLOCK_FAILED', 'cannot parse the clock measurement', { hint: 'check that python3 is CPython 3.7 or later', cause: e });
  }
}

/** Realtime ns for a monotonic ns. */
export function monoToRealtimeNs(monoNs: bigint, c: ClockOffset): bigint {
  return monoNs + c.realtimeOffsetNs;
}
