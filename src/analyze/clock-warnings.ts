/**
 * What a segment's figures say about the clocks: negative latencies (the
 * `to` point before the `from` point), and latencies of a fraction of a
 * second between machines with no known offset. Each warning names the
 * clocks as the likely cause when the two points are on different machines,
 * and says how to measure or give the offset.
 */
import { printable } from '../util/text.ts';
import type { Moments } from './stats.ts';
import type { AnalysisWarning, MachineClockResult, SegmentClock, SegmentDef } from './types.ts';

/** Above this p50, a segment between two machines with no offset is a clock, not a network. */
export const SUSPECT_P50_NS = 100_000_000;

const names = (ms: readonly string[]) => ms.map((m) => `"${printable(m)}"`).join(' and ');
const ms = (ns: number) => `${(ns / 1e6).toFixed(3)} ms`;

function measureHint(machines: readonly string[]): string {
  const m = printable(machines[0] ?? 'MACHINE');
  return 'The clocks are the likely cause. Measure the offset: in the lab, records of commands run with `svtrace lab exec vm -- …` carry it, '
    + 'and `svtrace lab clock --run-dir DIR` prints it; then give it with `svtrace report --clock-offset '
    + `'${m}=OFFSET±UNCERTAINTY'\` (e.g. -605ms±1ms) or [report] clock_offsets. Between real machines, synchronise the clocks with PTP (ptp4l + phc2sys).`;
}

export function clockWarnings(name: string, def: SegmentDef, all: Moments | undefined, p50Ns: number | null, clock: SegmentClock, clocks: readonly MachineClockResult[]): AnalysisWarning[] {
  const out: AnalysisWarning[] = [];
  const between = `${def.from} is on ${names(clock.fromMachines)}, ${def.to} on ${names(clock.toMachines)}`;
  const others = clock.toMachines.filter((m) => !clock.fromMachines.includes(m));
  if (all && all.negative > 0) {
    const head = `${name}: ${all.negative} of ${all.count} samples reached ${def.to} before ${def.from} (negative latency, min ${all.minNs} ns)`;
    if (clock.crossMachine && !clock.corrected) {
      out.push({ code: 'ANALYZE_NEGATIVE_LATENCY', message: `${head}: ${between}, whose clocks differ and no clock offset is known for them`, hint: measureHint(others.length ? others : clock.toMachines) });
    } else if (clock.corrected) {
      const applied = clocks.filter((c) => c.status === 'corrected' && [...clock.fromMachines, ...clock.toMachines].includes(c.machine))
        .map((c) => `"${printable(c.machine)}" by ${ms(-(c.offsetNs ?? 0))}${c.uncertaintyNs === null ? '' : ` ±${ms(c.uncertaintyNs)}`}`).join(', ');
      const unc = clock.uncertaintyNs === null ? 'unknown' : `±${ms(clock.uncertaintyNs)}`;
      const within = clock.uncertaintyNs !== null && all.minNs !== null && -all.minNs <= clock.uncertaintyNs ? ': all within that uncertainty, the offset\'s own error' : '';
      out.push({
        code: 'ANALYZE_NEGATIVE_LATENCY',
        message: `${head}, after correcting the clock of ${applied} (segment uncertainty ${unc})${within}`,
        hint: 'Within the uncertainty this is the offset\'s own error; beyond it the clocks drifted since the offset was measured, or the offset belongs to another run: measure it again (svtrace lab clock), or synchronise the clocks with PTP (ptp4l + phc2sys).',
      });
    } else {
      out.push({ code: 'ANALYZE_NEGATIVE_LATENCY', message: head, hint: 'The timestamps disagree: synchronise the machines\' clocks with PTP (ptp4l + phc2sys) and record every point with the same clock; on one host, check that hardware and kernel timestamps share a clock.' });
    }
  } else if (clock.crossMachine && !clock.corrected && p50Ns !== null && p50Ns > SUSPECT_P50_NS) {
    out.push({
      code: 'ANALYZE_CLOCK_SUSPECT',
      message: `${name}: p50 ${ms(p50Ns)}: ${between}, with no clock offset known; a path this slow is more likely two clocks apart (beyond 0.5 s apart, samples of different seconds are paired)`,
      hint: measureHint(others.length ? others : clock.toMachines),
    });
  }
  return out;
}
