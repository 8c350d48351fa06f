/**
 * A run over two clocks, for the clock tests: a host publisher (T0) and a
 * hypervisor trace (T1, T2) on the host's clock, guest records (T3, T4) on
 * the guest's, written by the real record writer; the guest's manifest
 * carries what `svtrace subscribe` writes under `lab exec` (extra.vm.clock).
 */
import { join } from 'node:path';
import { openRecordWriter } from '../../src/record/index.ts';
import { guestOfLab } from '../../src/lab/guest-env.ts';
import { prng, tAt } from './helpers.ts';

export const SECONDS = 2, RATE = 4000;
export const HOST = 'lab-host', GUEST = '(none)';
export const OFFSET_NS = -605_123_457n, UNC_NS = 1_187_000n;
export const START_NS = tAt(0, 0, RATE, 0);

export interface Truth { t: bigint[][]; seg: Record<string, number[]> }

/** The true times of T0..T4 of every sample (ns, host clock): a few tens of µs per hop. */
export function truth(seed: number): Truth {
  const r = prng(seed);
  const t: bigint[][] = [];
  for (let sec = 0; sec < SECONDS; sec++) {
    for (let smp = 0; smp < RATE; smp++) {
      const t0 = tAt(sec, smp, RATE, 12_000);
      const t1 = t0 + BigInt(Math.round(500 + r() * 500));
      const t2 = t1 + BigInt(Math.round(8_000 + r() * 30_000));
      const t3 = t2 + BigInt(Math.round(20_000 + r() * 60_000));
      const t4 = t3 + BigInt(Math.round(15_000 + r() * 40_000));
      t.push([t0, t1, t2, t3, t4]);
    }
  }
  const d = (a: number, b: number) => t.map((x) => Number(x[b]! - x[a]!));
  return { t, seg: { Tnet: d(0, 1), Thyp: d(1, 2), Ttrans: d(2, 3), Tsub: d(3, 4), Tseapath: d(1, 4), Ttot: d(0, 4) } };
}

async function write(dir: string, host: string, role: string, points: string[], tr: Truth, clockNs: (t: bigint) => bigint, extra: unknown = {}): Promise<void> {
  const w = await openRecordWriter(dir, { host, role, points, clock: { name: 'realtime' }, startedNs: START_NS, runId: 'clock', extra });
  tr.t.forEach((x, i) => {
    for (const p of points) w.append(p, 'MU01', 0x4000, i % RATE, Math.floor(i / RATE), clockNs(x[Number(p.slice(1))]!), 'kernel');
  });
  await w.close();
}

/**
 * The extra a guest subscriber writes under `lab exec` with the measured offset in its environment (or none):
 * guestOfLab() itself, called with the environment the lab gives the guest's commands.
 */
export function guestExtra(offset?: { offsetNs: bigint; uncertaintyNs: bigint; measuredAtNs: bigint }): unknown {
  const vars: Record<string, string> = {
    SVTRACE_VM_ACCEL: 'tcg',
    ...(offset ? { SVTRACE_CLOCK_OFFSET_NS: String(offset.offsetNs), SVTRACE_CLOCK_UNCERTAINTY_NS: String(offset.uncertaintyNs), SVTRACE_CLOCK_MEASURED_AT_NS: String(offset.measuredAtNs) } : {}),
  };
  const names = ['SVTRACE_VM_ACCEL', 'SVTRACE_CLOCK_OFFSET_NS', 'SVTRACE_CLOCK_UNCERTAINTY_NS', 'SVTRACE_CLOCK_MEASURED_AT_NS'];
  const saved = names.map((k) => [k, process.env[k]] as const);
  try {
    for (const k of names) delete process.env[k];
    Object.assign(process.env, vars);
    return guestOfLab();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

export interface WorldSpec {
  /** The guest's clock as a function of the host's. */
  guestNs: (t: bigint) => bigint;
  /** The guest records' extra, one per record when an array. */
  extra: unknown;
  guestRecords?: [string, string[]][];
  guestHost?: string;
}

/** Writes the run under `run`: host records pub and hv, guest records vm-ROLE. */
export async function writeClockWorld(run: string, tr: Truth, w: WorldSpec): Promise<string> {
  await write(join(run, 'pub'), HOST, 'publish', ['T0'], tr, (t) => t);
  await write(join(run, 'hv'), HOST, 'trace', ['T1', 'T2'], tr, (t) => t);
  const extras = Array.isArray(w.extra) ? [...(w.extra as unknown[])] : null;
  for (const [role, points] of w.guestRecords ?? [['subscribe', ['T3', 'T4']]]) {
    await write(join(run, `vm-${role}`), w.guestHost ?? GUEST, role, points, tr, w.guestNs, extras ? extras.shift() : w.extra);
  }
  return run;
}

export const shifted = (t: bigint) => t + OFFSET_NS;
