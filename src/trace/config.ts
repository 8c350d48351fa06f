/**
 * The trace config: which points to timestamp, on which interfaces or
 * processes, and which streams. Everything here may come from a user's file
 * or flags, so `validateTraceConfig` checks every field before any of it can
 * reach a generated program or a command line.
 */
import { POINT_NAME_RE } from '../path/index.ts';
import { SvtraceError } from '../errors.ts';
import { probeDef } from './probes.ts';
import { isOctets, validateLayout, type FrameLayout } from './layout.ts';

export type TraceRole = 'hypervisor' | 'vm';
export type SubscriberMode = 'recvmsg' | 'ring';
/** bpftrace: the generated, readable program; bpf: the fixed binary program (native/bpf/points.bpf.c) with a ring buffer. */
export type TraceEngine = 'bpftrace' | 'bpf';
export const TRACE_ENGINES: readonly TraceEngine[] = ['bpftrace', 'bpf'];

/** An interface by name, in a network namespace (an `ip netns` name, or a path such as /proc/PID/ns/net). */
export interface InterfaceRef {
  name: string;
  netns?: string;
}

/** Which processes a point watches: any of the pids (thread-group ids), or by command name. */
export interface ProcessFilter {
  pids?: number[];
  comm?: string;
  commPrefix?: string;
}

export interface SubscriberSpec extends ProcessFilter {
  /** How the subscriber reads: recvmsg/recvfrom on a packet socket, or a PACKET_RX_RING. Default recvmsg. */
  mode?: SubscriberMode;
}

export interface CustomPoint extends ProcessFilter {
  /** Point name in the output, e.g. "T2vhost" or "T2.5" (a letter, then letters, digits, _ . -). */
  name: string;
  /** The point this one comes right after along the path (e.g. "T2"); a name T<number> places itself. */
  after?: string;
  /** bpftrace attach point, one of PROBES. */
  probe: string;
  interface?: InterfaceRef;
}

export interface StreamSpec {
  svId: string;
  appId?: number;
  /** smpCnt range (it wraps to 0 at this value), e.g. 4000 or 4800; learnt when absent. */
  smpCntWrap?: number;
}

export interface TraceConfig {
  role?: TraceRole;
  /** Which engine takes the points and runs the flight recorder (default: bpf where it can run, else bpftrace). */
  engine?: TraceEngine;
  /** hypervisor: the NIC where SV arrives (T1). */
  ingress?: InterfaceRef;
  /** hypervisor: the port towards the VM (T2): tap, veth or OVS port. */
  vmPort?: InterfaceRef;
  /** vm: the VM's NIC (T3). */
  vmInterface?: InterfaceRef;
  /** vm: the subscriber application (T4). */
  subscriber?: SubscriberSpec;
  points?: CustomPoint[];
  /** Streams of interest; when empty, every stream seen while learning. */
  streams?: StreamSpec[];
  /** Frame layouts known in advance; other streams are learnt from the first frames. */
  layouts?: FrameLayout[];
  learn?: { timeoutMs?: number; framesPerKey?: number };
  /** How many frames of unknown layout each point prints (as bytes) for the report. Default 4. */
  unknownSamples?: number;
}

const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,14}$/;
const NETNS_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const NETNS_PATH = /^(\/proc\/[0-9]{1,10}\/(task\/[0-9]{1,10}\/)?ns\/net|\/run\/netns\/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}|\/var\/run\/netns\/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})$/;
const COMM = /^[A-Za-z0-9_.:+/-]{1,15}$/;
const POINT_NAME = POINT_NAME_RE;
const MAX_PIDS = 32;
export const MAX_STREAMS = 256;

function bad(field: string, message: string, hint: string): SvtraceError {
  return new SvtraceError('TRACE_CONFIG_INVALID', `trace config: ${field} ${message}`, { hint });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(v: Record<string, unknown>, field: string, allowed: string[]): void {
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) throw bad(field, `has an unknown key ${JSON.stringify(k)}`, `allowed keys: ${allowed.join(', ')}`);
  }
}

export function validateInterface(v: unknown, field: string): InterfaceRef {
  if (!isObject(v)) throw bad(field, 'must be an object { name, netns? }', 'e.g. { name: "ens1f0" }');
  checkKeys(v, field, ['name', 'netns']);
  const { name, netns } = v;
  if (typeof name !== 'string' || !IFNAME.test(name)) {
    throw bad(`${field}.name`, `${JSON.stringify(name)} is not an interface name`, 'use 1 to 15 letters, digits, or _ . : @ -, as `ip link` shows it');
  }
  if (netns === undefined) return { name };
  if (typeof netns !== 'string' || !(NETNS_NAME.test(netns) || NETNS_PATH.test(netns))) {
    throw bad(`${field}.netns`, `${JSON.stringify(netns)} is not a network namespace`, 'use a name from `ip netns list`, /run/netns/NAME or /proc/PID/ns/net');
  }
  return { name, netns };
}

function validateProcess(v: Record<string, unknown>, field: string): ProcessFilter {
  const out: ProcessFilter = {};
  if (v.pids !== undefined) {
    if (!Array.isArray(v.pids) || v.pids.length === 0 || v.pids.length > MAX_PIDS
      || !v.pids.every((p) => Number.isSafeInteger(p) && (p as number) > 0 && (p as number) < 2 ** 22)) {
      throw bad(`${field}.pids`, 'must be 1 to 32 process ids', 'give the subscriber\'s pid, e.g. from `pgrep -x NAME`');
    }
    out.pids = [...(v.pids as number[])];
  }
  for (const key of ['comm', 'commPrefix'] as const) {
    const c = v[key];
    if (c === undefined) continue;
    if (typeof c !== 'string' || !COMM.test(c)) {
      throw bad(`${field}.${key}`, `${JSON.stringify(c)} is not a command name`, 'use up to 15 letters, digits or _ . : + / - (as /proc/PID/comm shows it)');
    }
    out[key] = c;
  }
  return out;
}

function validateStream(v: unknown, field: string): StreamSpec {
  if (!isObject(v)) throw bad(field, 'must be an object { svId, appId?, smpCntWrap? }', 'e.g. { svId: "4001" }');
  checkKeys(v, field, ['svId', 'appId', 'smpCntWrap']);
  if (typeof v.svId !== 'string' || v.svId.length < 1 || v.svId.length > 255 || !isOctets(v.svId)) {
    throw bad(`${field}.svId`, 'must be 1 to 255 octets (one character per octet)', 'give the svID exactly as the publisher sends it');
  }
  const out: StreamSpec = { svId: v.svId };
  if (v.appId !== undefined) {
    if (!Number.isInteger(v.appId) || (v.appId as number) < 0 || (v.appId as number) > 0xffff) {
      throw bad(`${field}.appId`, 'must be an integer 0..65535', 'SV APPIDs are usually 0x4000..0x7FFF');
    }
    out.appId = v.appId as number;
  }
  if (v.smpCntWrap !== undefined) {
    if (!Number.isInteger(v.smpCntWrap) || (v.smpCntWrap as number) < 2 || (v.smpCntWrap as number) > 65536) {
      throw bad(`${field}.smpCntWrap`, 'must be an integer 2..65536', 'smpCnt wraps at the sample rate per second, e.g. 4000 or 4800');
    }
    out.smpCntWrap = v.smpCntWrap as number;
  }
  return out;
}

/** Checks a config from an untrusted source and returns a clean copy. Throws TRACE_CONFIG_INVALID. */
export function validateTraceConfig(input: unknown): TraceConfig {
  if (!isObject(input)) throw bad('', 'must be an object', 'see TraceConfig');
  checkKeys(input, 'config', ['role', 'engine', 'ingress', 'vmPort', 'vmInterface', 'subscriber', 'points', 'streams', 'layouts', 'learn', 'unknownSamples']);
  const c: TraceConfig = {};
  if (input.role !== undefined) {
    if (input.role !== 'hypervisor' && input.role !== 'vm') throw bad('role', 'must be "hypervisor" or "vm"', 'hypervisor traces T1/T2, vm traces T3/T4');
    c.role = input.role;
  }
  if (input.engine !== undefined) {
    if (!TRACE_ENGINES.includes(input.engine as TraceEngine)) throw bad('engine', 'must be "bpftrace" or "bpf"', 'bpftrace runs the generated program (--print-program), bpf the binary engine with a ring buffer');
    c.engine = input.engine as TraceEngine;
  }
  for (const key of ['ingress', 'vmPort', 'vmInterface'] as const) {
    if (input[key] !== undefined) c[key] = validateInterface(input[key], key);
  }
  if ((c.ingress || c.vmPort) && c.role === 'vm') throw bad('ingress/vmPort', 'belong to the hypervisor role', 'set role: "hypervisor" or use vmInterface/subscriber');
  if ((c.vmInterface || input.subscriber) && c.role === 'hypervisor') throw bad('vmInterface/subscriber', 'belong to the vm role', 'set role: "vm" or use ingress/vmPort');
  if (input.subscriber !== undefined) {
    const s = input.subscriber;
    if (!isObject(s)) throw bad('subscriber', 'must be an object { pids?, comm?, mode? }', 'e.g. { comm: "sv-sub", mode: "recvmsg" }');
    checkKeys(s, 'subscriber', ['pids', 'comm', 'commPrefix', 'mode']);
    const sub: SubscriberSpec = validateProcess(s, 'subscriber');
    if (s.mode !== undefined && s.mode !== 'recvmsg' && s.mode !== 'ring') throw bad('subscriber.mode', 'must be "recvmsg" or "ring"', 'ring is PACKET_RX_RING');
    if (s.mode !== undefined) sub.mode = s.mode;
    if ((sub.mode ?? 'recvmsg') === 'recvmsg' && !sub.pids && !sub.comm && !sub.commPrefix) {
      throw bad('subscriber', 'needs pids or comm to find the reader', 'give { comm: "NAME" } or { pids: [PID] }');
    }
    c.subscriber = sub;
  }
  if (input.points !== undefined) {
    if (!Array.isArray(input.points) || input.points.length > 16) throw bad('points', 'must be a list of at most 16 points', 'each { name, probe, interface? | pids? | comm? }');
    c.points = input.points.map((p, i) => validateCustomPoint(p, `points[${i}]`));
  }
  if (input.streams !== undefined) {
    if (!Array.isArray(input.streams) || input.streams.length > MAX_STREAMS) throw bad('streams', `must be a list of at most ${MAX_STREAMS}`, 'one { svId } per stream of interest');
    c.streams = input.streams.map((s, i) => validateStream(s, `streams[${i}]`));
  }
  if (input.layouts !== undefined) {
    if (!Array.isArray(input.layouts) || input.layouts.length > MAX_STREAMS) throw bad('layouts', `must be a list of at most ${MAX_STREAMS}`, 'see FrameLayout');
    c.layouts = input.layouts.map((l, i) => validateLayout(l, `layouts[${i}]`));
  }
  if (input.learn !== undefined) {
    const l = input.learn;
    if (!isObject(l)) throw bad('learn', 'must be an object { timeoutMs?, framesPerKey? }', '');
    checkKeys(l, 'learn', ['timeoutMs', 'framesPerKey']);
    c.learn = {};
    if (l.timeoutMs !== undefined) {
      if (!Number.isInteger(l.timeoutMs) || (l.timeoutMs as number) < 100 || (l.timeoutMs as number) > 600_000) throw bad('learn.timeoutMs', 'must be 100..600000', '');
      c.learn.timeoutMs = l.timeoutMs as number;
    }
    if (l.framesPerKey !== undefined) {
      if (!Number.isInteger(l.framesPerKey) || (l.framesPerKey as number) < 1 || (l.framesPerKey as number) > 1000) throw bad('learn.framesPerKey', 'must be 1..1000', '');
      c.learn.framesPerKey = l.framesPerKey as number;
    }
  }
  if (input.unknownSamples !== undefined) {
    if (!Number.isInteger(input.unknownSamples) || (input.unknownSamples as number) < 0 || (input.unknownSamples as number) > 100) throw bad('unknownSamples', 'must be 0..100', '');
    c.unknownSamples = input.unknownSamples as number;
  }
  if (!c.ingress && !c.vmPort && !c.vmInterface && !c.subscriber && !(c.points && c.points.length > 0)) {
    throw bad('', 'has no point to trace', 'give ingress/vmPort (hypervisor), vmInterface/subscriber (vm), or points');
  }
  return c;
}

function validateCustomPoint(v: unknown, field: string): CustomPoint {
  if (!isObject(v)) throw bad(field, 'must be an object { name, probe, interface?, pids?, comm? }', '');
  checkKeys(v, field, ['name', 'probe', 'after', 'interface', 'pids', 'comm', 'commPrefix']);
  if (typeof v.name !== 'string' || !POINT_NAME.test(v.name)) throw bad(`${field}.name`, `${JSON.stringify(v.name)} is not a point name`, 'use a letter then up to 31 letters, digits, _ . or -');
  if (v.after !== undefined && (typeof v.after !== 'string' || !POINT_NAME.test(v.after) || v.after === v.name)) throw bad(`${field}.after`, `${JSON.stringify(v.after)} is not another point's name`, 'name the point this one follows along the path, e.g. after = "T2"');
  const def = typeof v.probe === 'string' ? probeDef(v.probe) : undefined;
  if (!def) throw bad(`${field}.probe`, `${JSON.stringify(v.probe)} is not a known probe`, 'see PROBES in src/trace/probes.ts, e.g. "tracepoint:net:netif_receive_skb"');
  const p: CustomPoint = { name: v.name, probe: def.attach, ...(typeof v.after === 'string' ? { after: v.after } : {}), ...validateProcess(v, field) };
  if (v.interface !== undefined) p.interface = validateInterface(v.interface, `${field}.interface`);
  const hasProcess = p.pids || p.comm || p.commPrefix;
  if (!p.interface && !hasProcess) throw bad(field, 'needs an interface or a process filter', 'an unfiltered point would trace every frame of the machine');
  if (p.interface && def.filter === 'process') throw bad(`${field}.interface`, `cannot filter ${def.attach} by interface`, def.racy ?? 'the device is not known at this probe; use pids or comm');
  if (hasProcess && def.filter === 'interface') throw bad(field, `cannot filter ${def.attach} by process`, 'it fires in softirq context; use an interface');
  return p;
}
