/**
 * Config file (TOML, or the original tool's svtrace.cfg) + command-line flags
 * + defaults → one validated SvtraceConfig. Pure: reading the file is the
 * caller's job (load.ts), so this is tested with tables.
 */
import { parse as parseToml } from 'smol-toml';
import { SvtraceError } from '../errors.ts';
import { printable } from '../util/text.ts';
import { configSchema, type SvtraceConfig } from './schema.ts';
import type { StreamsSpec } from '../publish/streams.ts';

/** Flags as dotted paths: { 'streams.count': 8, 'publish.interface': 'eth1' }. */
export type Overrides = Record<string, unknown>;

export function parseConfigText(text: string, name: string): Record<string, unknown> {
  if (/^\s*SV_[A-Z_]+\s*=/m.test(text) && !/^\s*\[/m.test(text)) return fromLegacyCfg(text, name);
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw new SvtraceError('CONFIG_SYNTAX', `${name} is not valid TOML: ${(e as Error).message.split('\n')[0]}`, {
      hint: 'fix the line it names; see the README section "Configuration" for an example', cause: e,
    });
  }
}

/**
 * The original svtrace's svtrace.cfg: shell-style KEY=VALUE lines.
 * SV_INTERFACE → the interface traced/subscribed; SV_BUFFER_SIZE → receive buffer (bytes).
 */
function fromLegacyCfg(text: string, name: string): Record<string, unknown> {
  const out: Record<string, Record<string, unknown>> = { subscribe: {}, trace: {} };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const m = /^([A-Z_]+)\s*=\s*"?([^"]*)"?$/.exec(line);
    if (!m) throw new SvtraceError('CONFIG_SYNTAX', `${name} line ${i + 1} is not KEY=VALUE: ${printable(line.slice(0, 60))}`, { hint: 'write it as SV_INTERFACE=eth1' });
    const [, key, value] = m as unknown as [string, string, string];
    if (key === 'SV_INTERFACE') { out.subscribe!.interface = value; out.trace!.interface = value; } else if (key === 'SV_BUFFER_SIZE') {
      const n = Number(value);
      if (!Number.isInteger(n) || n <= 0) throw new SvtraceError('CONFIG_INVALID', `${name}: SV_BUFFER_SIZE=${printable(value)} is not a size in bytes`, { hint: 'write a whole number of bytes, e.g. SV_BUFFER_SIZE=33554432' });
      out.subscribe!.rcvbuf_bytes = Math.max(65_536, n);
    }
    // other keys of the original tool have no meaning here and are ignored
  });
  return out;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof o[k] !== 'object' || o[k] === null) o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys.at(-1)!] = value;
}

export function resolveConfig(fileValues: Record<string, unknown> | null, overrides: Overrides = {}, source = 'config'): SvtraceConfig {
  const merged = structuredClone(fileValues ?? {});
  for (const [path, value] of Object.entries(overrides)) if (value !== undefined) setPath(merged, path, value);
  const r = configSchema.safeParse(merged);
  if (!r.success) {
    const first = r.error.issues[0]!;
    const where = first.path.join('.') || '(top level)';
    if (first.code === 'unrecognized_keys') {
      const key = first.keys[0]!;
      const full = [...first.path, key].join('.');
      const valid = keysAt(first.path.map(String));
      const near = closest(key, valid);
      throw new SvtraceError('CONFIG_INVALID', `${source}: unknown key ${printable(full)}${first.keys.length > 1 ? ` (and ${first.keys.slice(1).map((k) => printable(k)).join(', ')})` : ''}`, {
        hint: `${near ? `did you mean ${[...first.path, near].join('.')}? ` : ''}valid keys${first.path.length ? ` of [${first.path.join('.')}]` : ''}: ${valid.join(', ')} (README, "Configuration")`,
      });
    }
    throw new SvtraceError('CONFIG_INVALID', `${source}: ${where}: ${first.message}`, {
      hint: `fix ${where} in the config file or the matching command-line flag`,
    });
  }
  return r.data;
}

/** The keys the schema accepts at a path of sections (["trace"], [] for the top level). */
function keysAt(path: readonly string[]): string[] {
  let s: unknown = configSchema;
  for (const k of [...path, null]) {
    // unwrap .default() / .optional() / arrays down to the object
    for (;;) {
      const def = (s as { def?: { type?: string; innerType?: unknown; element?: unknown } }).def;
      if (def?.type === 'default' || def?.type === 'optional') s = def.innerType;
      else if (def?.type === 'array') s = def.element;
      else break;
    }
    const shape = (s as { shape?: Record<string, unknown> }).shape;
    if (!shape) return [];
    if (k === null) return Object.keys(shape);
    if (/^\d+$/.test(k)) continue;
    s = shape[k];
  }
  return [];
}

/** The valid key nearest to a misspelt one (edit distance ≤ 2), or null. */
function closest(key: string, valid: readonly string[]): string | null {
  let best: string | null = null, bestD = 3;
  for (const v of valid) {
    const d = editDistance(key.toLowerCase(), v.toLowerCase());
    if (d < bestD) { best = v; bestD = d; }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The publisher's stream description from the config. */
export function streamsSpec(c: SvtraceConfig): StreamsSpec {
  const s = c.streams;
  const w = s.waveform;
  return {
    count: s.count, svIdPattern: s.svid, appIdBase: s.appid, dstMacBase: s.dst_mac, srcMacBase: s.src_mac,
    vlan: s.vlan_id === false ? null : { id: s.vlan_id, priority: s.vlan_priority },
    freqHz: s.frequency, samplesPerCycle: s.samples_per_cycle, asdusPerFrame: s.asdus_per_frame, confRev: s.conf_rev,
    smpSynch: s.smp_synch, simulated: s.simulated, datSet: s.dat_set,
    waveform: {
      currentA: w.current_a, voltageV: w.voltage_v, currentAngleDeg: w.current_angle_deg, phaseDeg: w.phase_deg, harmonics: w.harmonics,
      fault: w.fault ? { atS: w.fault.at_s, currentFactor: w.fault.current_factor, voltageFactor: w.fault.voltage_factor } : undefined,
    },
  };
}
