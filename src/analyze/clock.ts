/**
 * Two clocks, handled: each machine's clock offset (machine − reference, the
 * reference being the clock of the machines that have none), read from the
 * records (`extra.vm.clock`, written by `svtrace subscribe` in the lab's QEMU
 * guest) or given (`--clock-offset MACHINE=OFFSET[±UNC]`, [report]
 * clock_offsets), and the SQL that maps a record's times onto the reference
 * clock. Both engines read point rows through `pointRowsSql`, so both join
 * and count the corrected times, identically.
 *
 * A machine is a manifest's `host`. One offset per machine, never per record:
 * two points of one machine move by the same amount, so a segment within one
 * machine is unchanged to the nanosecond. With several measurements of one
 * machine at different times (each `lab exec` measures anew), the offset is
 * interpolated linearly between the earliest and the latest (drift), and held
 * constant outside them, when they differ by more than their uncertainties
 * together; otherwise the one with the smallest uncertainty holds throughout.
 */
import { SvtraceError } from '../errors.ts';
import { recordSql, type RecordManifest } from '../record/index.ts';
import { printable } from '../util/text.ts';
import type { AnalysisWarning, ClockOffsetOption, MachineClockResult, SegmentClock } from './types.ts';

export interface ClockMeasurement {
  /** machine − reference, ns: subtract it from the machine's time. */
  offsetNs: bigint;
  /** The offset is within ± this; null when the record did not say. */
  uncertaintyNs: bigint | null;
  /** Reference-clock time of the measurement; null when unknown. */
  measuredAtNs: bigint | null;
}

export interface MachineClock {
  machine: string;
  source: 'record' | 'option';
  /** In order of measuredAtNs (unknown times first). */
  measurements: ClockMeasurement[];
}

const INT_NS = /^-?\d{1,19}$/;
/** Offsets beyond a day are not a clock to correct but a wrong clock. */
const MAX_OFFSET_NS = 86_400n * 1_000_000_000n;
const UNIT_NS: Record<string, bigint> = { ns: 1n, us: 1_000n, 'µs': 1_000n, ms: 1_000_000n, s: 1_000_000_000n };

/** "12.5ms" → 12 500 000n; null unless a whole number of ns. */
function durationNs(value: string, unit: string | undefined): bigint | null {
  const m = /^(-?)(\d{1,15})(?:\.(\d{1,9}))?$/.exec(value);
  const scale = UNIT_NS[unit ?? 'ns'];
  if (!m || scale === undefined) return null;
  const frac = m[3] ?? '';
  const num = BigInt(m[2]! + frac) * scale;
  const den = 10n ** BigInt(frac.length);
  if (num % den !== 0n) return null;
  return (m[1] === '-' ? -1n : 1n) * (num / den);
}

/**
 * `MACHINE=OFFSET[±UNC]` (also `+-` for ±), OFFSET and UNC integers or
 * decimals with a unit ns (default), us, ms or s: `svt-vm=-605ms±1.2ms`.
 */
export function parseClockOffset(spec: string): ClockOffsetOption {
  const bad = (why: string) => new SvtraceError('ANALYZE_BAD_CLOCK_OFFSET', `clock offset ${printable(spec)}: ${why}`, {
    hint: 'Write MACHINE=OFFSET[±UNCERTAINTY], the machine as its records name it (report shows "on HOST"), the offset machine − reference, e.g. --clock-offset "svt-vm=-605ms±1.2ms" (units ns, us, ms, s; +- for ±).',
  });
  const eq = spec.lastIndexOf('=');
  if (eq <= 0) throw bad('not MACHINE=OFFSET');
  const machine = spec.slice(0, eq);
  if (machine.length > 255 || printable(machine) !== machine) throw bad('the machine name is empty, too long or not printable');
  const m = /^([-+]?[\d.]+)([a-zµ]*)(?:(?:±|\+-|\+\/-)([\d.]+)([a-zµ]*))?$/.exec(spec.slice(eq + 1).trim());
  if (!m) throw bad('the offset is not a number with an optional unit and ±uncertainty');
  const offsetNs = durationNs(m[1]!.replace(/^\+/, ''), m[2] || undefined);
  const uncertaintyNs = m[3] === undefined ? 0n : durationNs(m[3], m[4] || undefined);
  if (offsetNs === null || uncertaintyNs === null) throw bad('not a whole number of nanoseconds, or an unknown unit');
  if (offsetNs > MAX_OFFSET_NS || offsetNs < -MAX_OFFSET_NS || uncertaintyNs > MAX_OFFSET_NS) throw bad('more than a day');
  return { machine, offsetNs: offsetNs.toString(), uncertaintyNs: uncertaintyNs.toString() };
}

/** The clock offset a record's manifest carries (`extra.vm.clock`), null without one, a warning when it is malformed. */
export function manifestClock(m: RecordManifest, dir: string): { measurement: ClockMeasurement | null; warning?: AnalysisWarning } {
  const clock = (m.extra as { vm?: { clock?: Record<string, unknown> } } | undefined)?.vm?.clock;
  if (clock === undefined || clock === null || typeof clock !== 'object') return { measurement: null };
  const field = (k: string): bigint | null | undefined => {
    const v = clock[k];
    if (v === undefined || v === '') return null;
    return typeof v === 'string' && INT_NS.test(v) ? BigInt(v) : undefined;
  };
  const offsetNs = field('offsetNs'), uncertaintyNs = field('uncertaintyNs'), measuredAtNs = field('measuredAtNs');
  if (offsetNs === undefined || offsetNs === null || uncertaintyNs === undefined || measuredAtNs === undefined
    || offsetNs > MAX_OFFSET_NS || offsetNs < -MAX_OFFSET_NS || (uncertaintyNs !== null && uncertaintyNs < 0n)) {
    return {
      measurement: null,
      warning: { code: 'ANALYZE_CLOCK_BAD_OFFSET', message: `record ${printable(dir)}: its clock offset (extra.vm.clock) is malformed; not used`, hint: 'Give the offset instead: --clock-offset MACHINE=OFFSET±UNC (svtrace lab clock measures it).' },
    };
  }
  return { measurement: { offsetNs, uncertaintyNs, measuredAtNs } };
}

/** One clock per machine: the option's where given, else every measurement its records carry. */
export function machineClocks(records: readonly { dir: string; manifest: RecordManifest }[], given: readonly ClockOffsetOption[]): { clocks: Map<string, MachineClock>; warnings: AnalysisWarning[] } {
  const clocks = new Map<string, MachineClock>();
  const warnings: AnalysisWarning[] = [];
  for (const { dir, manifest } of records) {
    const { measurement, warning } = manifestClock(manifest, dir);
    if (warning) warnings.push(warning);
    if (!measurement) continue;
    const c = clocks.get(manifest.host) ?? { machine: manifest.host, source: 'record' as const, measurements: [] };
    if (!c.measurements.some((x) => x.offsetNs === measurement.offsetNs && x.measuredAtNs === measurement.measuredAtNs)) c.measurements.push(measurement);
    clocks.set(manifest.host, c);
  }
  const hosts = new Set(records.map((r) => r.manifest.host));
  for (const g of given) {
    if (!hosts.has(g.machine)) {
      throw new SvtraceError('ANALYZE_BAD_CLOCK_OFFSET', `clock offset for machine ${printable(g.machine)}, but no record was written on it (machines: ${[...hosts].map(printable).join(', ')})`, {
        hint: 'Name the machine as its records do (the report\'s "record … on HOST" lines; the lab\'s guest is "svt-vm" by default).',
      });
    }
    clocks.set(g.machine, { machine: g.machine, source: 'option', measurements: [{ offsetNs: BigInt(g.offsetNs), uncertaintyNs: BigInt(g.uncertaintyNs), measuredAtNs: null }] });
  }
  for (const c of clocks.values()) c.measurements.sort((a, b) => (a.measuredAtNs ?? -1n) < (b.measuredAtNs ?? -1n) ? -1 : 1);
  return { clocks, warnings };
}

/**
 * The two measurements the mapping interpolates between, or one for a constant offset: the earliest and the
 * latest when they differ by more than their uncertainties together (a drift measured, not noise).
 */
function anchors(c: MachineClock): [ClockMeasurement] | [ClockMeasurement, ClockMeasurement] {
  const timed = c.measurements.filter((x) => x.measuredAtNs !== null);
  const first = timed[0], last = timed.at(-1);
  if (first && last && last.measuredAtNs! > first.measuredAtNs!) {
    const apart = last.offsetNs > first.offsetNs ? last.offsetNs - first.offsetNs : first.offsetNs - last.offsetNs;
    if (first.uncertaintyNs === null || last.uncertaintyNs === null || apart > first.uncertaintyNs + last.uncertaintyNs) return [first, last];
  }
  // one measurement, or none timed: the one with the smallest uncertainty
  return [[...c.measurements].sort((a, b) => (a.uncertaintyNs ?? MAX_OFFSET_NS) < (b.uncertaintyNs ?? MAX_OFFSET_NS) ? -1 : 1)[0]!];
}

/**
 * A DuckDB expression (BIGINT) of the column `t_ns` on the machine's clock
 * mapped onto the reference clock. Linear between two measurements: the
 * anchors are the measurement times on the machine's own clock (reference
 * time + offset), integer arithmetic (HUGEINT products, division truncated
 * toward zero), identical for both engines since both read rows through it.
 */
export function referenceTimeSql(c: MachineClock): string {
  const a = anchors(c);
  if (a.length === 1) return `(t_ns - (${a[0].offsetNs})::BIGINT)`;
  const [p, q] = a;
  const g0 = p.measuredAtNs! + p.offsetNs, g1 = q.measuredAtNs! + q.offsetNs;
  const clamped = `least(greatest(t_ns, ${g0}::BIGINT), ${g1}::BIGINT)`;
  return `(t_ns - ((${p.offsetNs})::BIGINT + (((${clamped} - ${g0}::BIGINT)::HUGEINT * (${q.offsetNs - p.offsetNs})::HUGEINT) // (${g1 - g0})::HUGEINT)::BIGINT))`;
}

/** The same mapping in TypeScript, for one time (tests, and whoever maps a single timestamp). */
export function referenceTimeNs(c: MachineClock, tNs: bigint): bigint {
  const a = anchors(c);
  if (a.length === 1) return tNs - a[0].offsetNs;
  const [p, q] = a;
  const g0 = p.measuredAtNs! + p.offsetNs, g1 = q.measuredAtNs! + q.offsetNs;
  const t = tNs < g0 ? g0 : tNs > g1 ? g1 : tNs;
  return tNs - (p.offsetNs + ((t - g0) * (q.offsetNs - p.offsetNs)) / (g1 - g0));
}

/** The point rows of the records (recordSql's columns), each record's t_ns on the reference clock. */
export async function pointRowsSql(dirs: readonly string[], clockOf: (dir: string) => MachineClock | undefined): Promise<string> {
  const parts: string[] = [];
  for (const dir of dirs) {
    const sql = await recordSql([dir]);
    const c = clockOf(dir);
    parts.push(c ? `SELECT * REPLACE (${referenceTimeSql(c)} AS t_ns) FROM (${sql})` : sql);
  }
  return parts.join('\nUNION ALL\n');
}

/** What the result says of each machine's clock. */
export function clockResults(records: readonly { host: string; points: string[] }[], clocks: ReadonlyMap<string, MachineClock>): MachineClockResult[] {
  const machines = [...new Set(records.map((r) => r.host))];
  return machines.map((machine) => {
    const points = [...new Set(records.filter((r) => r.host === machine).flatMap((r) => r.points))];
    const c = clocks.get(machine);
    if (!c) return { machine, points, status: 'reference', source: null, offsetNs: null, uncertaintyNs: null, driftNsPerS: null, measurements: 0 };
    const a = anchors(c);
    const unc = a.some((x) => x.uncertaintyNs === null) ? null : Number(a.reduce((m, x) => (x.uncertaintyNs! > m ? x.uncertaintyNs! : m), 0n));
    const drift = a.length === 2 ? Number(a[1].offsetNs - a[0].offsetNs) / (Number(a[1].measuredAtNs! - a[0].measuredAtNs!) / 1e9) : null;
    return { machine, points, status: 'corrected', source: c.source, offsetNs: Number(a[0].offsetNs), uncertaintyNs: unc, driftNsPerS: drift, measurements: c.measurements.length };
  });
}

/**
 * Which machines hold a segment's two points, whether the segment crosses
 * machines, whether a clock correction applies to it, and its uncertainty:
 * the sum of the two ends' offset uncertainties (the largest over the
 * machines at each end; 0 for the reference clock).
 */
export function segmentClock(from: string, to: string, machines: readonly MachineClockResult[]): SegmentClock {
  const at = (p: string) => machines.filter((m) => m.points.includes(p));
  const a = at(from), b = at(to);
  const fromMachines = a.map((m) => m.machine), toMachines = b.map((m) => m.machine);
  const crossMachine = !(a.length === 1 && b.length === 1 && a[0] === b[0]);
  const corrected = crossMachine && [...a, ...b].some((m) => m.status === 'corrected');
  let uncertaintyNs: number | null = null;
  if (corrected) {
    const end = (ms: MachineClockResult[]) => ms.reduce<number | null>((acc, m) => (acc === null || (m.status === 'corrected' && m.uncertaintyNs === null) ? null : Math.max(acc, m.uncertaintyNs ?? 0)), 0);
    const ua = end(a), ub = end(b);
    uncertaintyNs = ua === null || ub === null ? null : ua + ub;
  }
  return { fromMachines, toMachines, crossMachine, corrected, uncertaintyNs };
}
