/**
 * Impairments as data: validation, the `tc ... netem` arguments they become,
 * and reading them back from `tc -j qdisc show`. Pure; ./impair.ts runs tc.
 *
 * netem's JSON (iproute2 ≥ 5.x) gives delay and jitter in seconds, loss as a
 * fraction and rate in bytes per second; here they are µs, percent and Mbit/s.
 */
import { SvtraceError } from '../errors.ts';

/**
 * `pub`: the publisher's veth egress (inside its namespace). `vm`: the host's port towards the VM.
 * `guest`: inside a QEMU guest, between its NIC and the application's port (guest-hop.ts).
 */
export type Hop = 'pub' | 'vm' | 'guest';
export const HOPS: readonly Hop[] = ['pub', 'vm', 'guest'];

export interface Impairment {
  delayUs?: number;
  jitterUs?: number;
  lossPct?: number;
  rateMbit?: number;
}

/** What a qdisc on a lab link is, as status reports it. */
export interface QdiscInfo {
  kind: string;
  handle: string;
  root: boolean;
  /** Present when kind is netem. */
  netem?: Required<Pick<Impairment, 'delayUs' | 'jitterUs' | 'lossPct'>> & { rateMbit?: number; limitPackets?: number };
}

const MAX_DELAY_US = 10_000_000;
const MAX_RATE_MBIT = 100_000;

export function isHop(s: string): s is Hop {
  return s === 'pub' || s === 'vm' || s === 'guest';
}

function bad(message: string, hint: string): SvtraceError {
  return new SvtraceError('LAB_IMPAIRMENT_INVALID', message, { hint });
}

/** Checks the numbers and returns a copy without undefined fields. */
export function validateImpairment(imp: Impairment): Impairment {
  const out: Impairment = {};
  for (const key of ['delayUs', 'jitterUs'] as const) {
    const v = imp[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_DELAY_US) {
      throw bad(`${key === 'delayUs' ? 'delay' : 'jitter'} ${String(v)} µs is not valid`, `use a whole number of µs from 0 to ${MAX_DELAY_US}`);
    }
    out[key] = v;
  }
  if (imp.lossPct !== undefined) {
    const v = imp.lossPct;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 100) {
      throw bad(`loss ${String(v)} % is not valid`, 'use a percentage from 0 to 100');
    }
    if (v !== 0 && v < 1e-6) throw bad(`loss ${v} % is below netem's resolution`, 'use 0 or at least 0.000001 %');
    out.lossPct = v;
  }
  if (imp.rateMbit !== undefined) {
    const v = imp.rateMbit;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > MAX_RATE_MBIT) {
      throw bad(`rate ${String(v)} Mbit/s is not valid`, `use a rate above 0 and at most ${MAX_RATE_MBIT} Mbit/s`);
    }
    if (Math.round(v * 1000) < 1) throw bad(`rate ${v} Mbit/s is below 1 kbit/s`, 'use at least 0.001 Mbit/s');
    out.rateMbit = v;
  }
  if ((out.jitterUs ?? 0) > 0 && out.delayUs === undefined) out.delayUs = 0;
  if (Object.keys(out).length === 0) {
    throw bad('the impairment sets nothing', 'give at least one of --delay, --jitter, --loss, --rate');
  }
  return out;
}

/** A number as tc reads it: no exponent, no trailing zeros. */
function plain(n: number, decimals: number): string {
  return n.toFixed(decimals).replace(/\.?0+$/, '') || '0';
}

/** The netem part of `tc qdisc replace dev IF root netem ...`. */
export function netemArgs(imp: Impairment): string[] {
  const v = validateImpairment(imp);
  const args: string[] = ['netem'];
  if (v.delayUs !== undefined || v.jitterUs !== undefined) {
    args.push('delay', `${v.delayUs ?? 0}us`);
    if ((v.jitterUs ?? 0) > 0) args.push(`${v.jitterUs}us`);
  }
  if (v.lossPct !== undefined) args.push('loss', `${plain(v.lossPct, 6)}%`);
  if (v.rateMbit !== undefined) args.push('rate', `${Math.round(v.rateMbit * 1000)}kbit`);
  return args;
}

function num(x: unknown): number | undefined {
  return typeof x === 'number' && Number.isFinite(x) ? x : undefined;
}

function obj(x: unknown): Record<string, unknown> | undefined {
  return typeof x === 'object' && x !== null && !Array.isArray(x) ? (x as Record<string, unknown>) : undefined;
}

/** Parses the output of `tc -j qdisc show dev IF`. Unknown shapes give kind 'unknown', never a throw. */
export function parseQdiscJson(text: string): QdiscInfo[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim() === '' ? '[]' : text);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.map((raw): QdiscInfo => {
    const q = obj(raw) ?? {};
    const info: QdiscInfo = {
      kind: typeof q.kind === 'string' ? q.kind : 'unknown',
      handle: typeof q.handle === 'string' ? q.handle : '',
      root: q.root === true,
    };
    if (info.kind === 'netem') {
      const o = obj(q.options) ?? {};
      const delay = obj(o.delay) ?? {};
      const loss = obj(o['loss-random']) ?? {};
      const rate = num(obj(o.rate)?.rate);
      info.netem = {
        delayUs: Math.round((num(delay.delay) ?? 0) * 1e6),
        jitterUs: Math.round((num(delay.jitter) ?? 0) * 1e6),
        lossPct: Number(((num(loss.loss) ?? 0) * 100).toPrecision(12)),
      };
      if (rate !== undefined) info.netem.rateMbit = (rate * 8) / 1e6;
      const limit = num(o.limit);
      if (limit !== undefined) info.netem.limitPackets = limit;
    }
    return info;
  });
}

export function describeImpairment(imp: Impairment): string {
  const parts: string[] = [];
  if (imp.delayUs !== undefined) parts.push(`delay ${imp.delayUs} µs`);
  if ((imp.jitterUs ?? 0) > 0) parts.push(`jitter ${imp.jitterUs} µs`);
  if (imp.lossPct !== undefined) parts.push(`loss ${imp.lossPct} %`);
  if (imp.rateMbit !== undefined) parts.push(`rate ${imp.rateMbit} Mbit/s`);
  return parts.join(', ');
}
