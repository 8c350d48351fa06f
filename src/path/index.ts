/**
 * The path of one Sampled Value, defined once: the points where svtrace
 * timestamps it (in order along the path), the segments between them, and
 * which role records which points. Planning, analysis, explain, the lab's
 * picture, the live view, the report and the config all derive from here.
 *
 * Adding a point (say, where vhost takes the frame) is one entry in POINTS
 * (its place along the path, machine, meaning) plus its probe in
 * src/trace/plan.ts. Custom points that users trace (`Tvhost`, `T2.5`) are
 * placed along the path by their `after` point or by the number in their
 * name, never by the alphabet.
 */

export type Machine = 'publisher' | 'hypervisor' | 'vm';

export interface PointDef {
  name: string;
  /** Position along the path: T0 = 0 ... T4 = 4; custom points fall between. */
  order: number;
  machine: Machine;
  /** Where the sample is when this point is taken. */
  meaning: string;
}

export const POINTS: readonly PointDef[] = [
  { name: 'T0', order: 0, machine: 'publisher', meaning: 'publisher NIC, transmit' },
  { name: 'T1', order: 1, machine: 'hypervisor', meaning: 'hypervisor NIC, receive' },
  { name: 'T2', order: 2, machine: 'hypervisor', meaning: 'leaves the hypervisor towards the VM (OVS port, tap, vhost)' },
  { name: 'T3', order: 3, machine: 'vm', meaning: 'VM NIC, receive' },
  { name: 'T4', order: 4, machine: 'vm', meaning: 'the subscriber application has it' },
];

export interface SegmentDef {
  name: string;
  from: string;
  to: string;
}

export interface SegmentInfo extends SegmentDef {
  meaning: string;
  /** The verdict limit of the SEAPATH CI (µs), when it has one. */
  defaultLimitUs?: number;
}

export const SEGMENTS: readonly SegmentInfo[] = [
  { name: 'Tnet', from: 'T0', to: 'T1', meaning: 'the network: publisher to hypervisor' },
  { name: 'Thyp', from: 'T1', to: 'T2', meaning: 'the hypervisor: its NIC to the VM port', defaultLimitUs: 100 },
  { name: 'Ttrans', from: 'T2', to: 'T3', meaning: 'into the VM: VM port to the VM\'s NIC' },
  { name: 'Tsub', from: 'T3', to: 'T4', meaning: 'in the VM: its NIC to the application', defaultLimitUs: 100 },
  { name: 'Tseapath', from: 'T1', to: 'T4', meaning: 'the platform: hypervisor NIC to the application' },
  { name: 'Ttot', from: 'T0', to: 'T4', meaning: 'end to end', defaultLimitUs: 200 },
];

/** The verdict limits (µs) used when the config gives none. */
export const DEFAULT_LIMITS_US: Readonly<Record<string, number>> = Object.fromEntries(
  SEGMENTS.filter((s) => s.defaultLimitUs !== undefined).map((s) => [s.name, s.defaultLimitUs!]),
);

/** The roles that record points, and which points each records. */
export type Role = 'publish' | 'hypervisor' | 'vm' | 'subscribe';

export const ROLE_POINTS: Readonly<Record<Role, readonly string[]>> = {
  publish: ['T0'],
  hypervisor: ['T1', 'T2'],
  vm: ['T3', 'T4'],
  subscribe: ['T3', 'T4'],
};

/** The segment a machine's tracer times by itself (and the flight recorder explains). */
export function roleSegment(role: 'hypervisor' | 'vm'): SegmentDef {
  const [from, to] = ROLE_POINTS[role] as [string, string];
  const s = SEGMENTS.find((x) => x.from === from && x.to === to)!;
  return { name: s.name, from: s.from, to: s.to };
}

/** A point name as users write it: a letter, then letters, digits, `_`, `.` or `-` (T2.5, Tvhost, T2_ovs). */
export const POINT_NAME_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;

export function knownPoint(name: string): PointDef | undefined {
  return POINTS.find((p) => p.name === name);
}

/**
 * A point's place along the path: a known point's order; `T<number>` (T2.5)
 * that number; a point declared `after` another, just after it; otherwise
 * null (off the path: measured in custom segments, never the path's end).
 * A point placed `after` another comes right after it (by 0.001), so a
 * chain of them stays in order.
 */
export function pointOrder(name: string, after?: Readonly<Record<string, string>>): number | null {
  const known = knownPoint(name);
  if (known) return known.order;
  const m = /^T(\d+(?:\.\d+)?)$/.exec(name);
  if (m) return Number(m[1]);
  const a = after?.[name];
  if (a !== undefined && a !== name) {
    const base = pointOrder(a, { ...after, [name]: name });
    return base === null ? null : base + 0.001; // right after it: before any T<n.m> that follows
  }
  return null;
}

/** Points in path order; points off the path come last, in the order given. */
export function orderPoints(names: Iterable<string>, after?: Readonly<Record<string, string>>): string[] {
  const list = [...new Set(names)];
  const at = new Map(list.map((n, i) => [n, { order: pointOrder(n, after), i }]));
  return list.sort((a, b) => {
    const x = at.get(a)!, y = at.get(b)!;
    if (x.order !== null && y.order !== null && x.order !== y.order) return x.order - y.order;
    if (x.order === null && y.order !== null) return 1;
    if (x.order !== null && y.order === null) return -1;
    return x.i - y.i;
  });
}

/** The last point along the path among these (where a sample is "delivered"), or null when none is on the path. */
export function lastPoint(names: Iterable<string>, after?: Readonly<Record<string, string>>): string | null {
  let best: string | null = null, bestOrder = -Infinity;
  for (const n of names) {
    const o = pointOrder(n, after);
    if (o !== null && o > bestOrder) { best = n; bestOrder = o; }
  }
  return best;
}

/** The default segments whose two points are both among these. */
export function segmentsAmong(points: Iterable<string>): SegmentDef[] {
  const have = new Set(points);
  return SEGMENTS.filter((s) => have.has(s.from) && have.has(s.to)).map((s) => ({ name: s.name, from: s.from, to: s.to }));
}
