/**
 * Turns resolved points and frame layouts into the text of svtrace.bt and
 * learn.bt. Only numbers and names checked against strict patterns reach the
 * program; svIDs enter it as integer constants and, in comments, escaped.
 */
import { POINT_NAME_RE } from '../path/index.ts';
import { SvtraceError } from '../errors.ts';
import { fillTemplate } from './template.ts';
import { probeDef, type ProbeDef } from './probes.ts';
import { hex4, layoutExtent, svIdTlv, validateLayout, type FrameLayout } from './layout.ts';
import type { ResolvedInterface } from './interfaces.ts';

export interface PointFilter {
  interface?: ResolvedInterface;
  pids?: number[];
  comm?: string;
  commPrefix?: string;
}

/** One trace point as the program sees it: its number in the output, its probes and its filter. */
export interface ProgramPoint {
  /** 1..99, the first field of every output line of this point. */
  id: number;
  name: string;
  probes: string[];
  filter: PointFilter;
}

export interface ProgramSpec {
  points: ProgramPoint[];
  layouts: FrameLayout[];
  /** Unknown frames printed per point (0..100). */
  unknownSamples: number;
  /**
   * The command name whose exec tells the program to stop matching (svtrace
   * runs it before SIGINT, so every line counted is printed and read: see
   * svtrace.bt). Lower-case letters and digits, at most 15.
   */
  stopComm?: string;
  /** The pid of svtrace: the program ends itself when that process exits (default this process). */
  ownerPid?: number;
}

/** The default stop command name of this process (unique per svtrace process). */
export function stopCommFor(pid: number): string {
  return `svtstop${pid}`.slice(0, 15);
}

/** 0x88BA and 0x8100 as the kernel reads them: little-endian 16-bit words, signed. */
const ETH_SV_LE = -17784;
const ETH_VLAN_LE = 129;
const WORDS_SHOWN = 16;

const POINT_NAME = POINT_NAME_RE;
const IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,14}$/;
const COMM = /^[A-Za-z0-9_.:+/-]{1,15}$/;

function invalid(what: string): SvtraceError {
  return new SvtraceError('TRACE_PROGRAM_INVALID', `cannot generate the bpftrace program: ${what}`, {
    hint: 'pass the config through validateTraceConfig and resolve interfaces with resolveInterface',
  });
}

const isInt = (v: unknown, lo: number, hi: number) => Number.isSafeInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** A comment-safe rendering of arbitrary octets: printable ASCII, the rest (and * \ ") as \xNN. */
export function commentText(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    out += c >= 0x20 && c < 0x7f && ch !== '*' && ch !== '\\' && ch !== '"' ? ch : `\\x${(c & 0xff).toString(16).padStart(2, '0')}`;
  }
  return `"${out}"`;
}

/** Little-endian signed integer of `n` bytes at `p`, as a bpftrace literal. */
function leLiteral(b: Uint8Array, p: number, n: 1 | 2 | 4 | 8): string {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[p + i]!);
  const s = BigInt.asIntN(n * 8, v);
  return s === -(2n ** 63n) ? '(-9223372036854775807 - 1)' : s.toString();
}

/** Exact comparisons of `bytes` at `$sv + offset`: 8-byte words, the tail as one overlapping word or 4/2/1-byte words. */
export function byteCompares(bytes: Uint8Array, offset: number): string[] {
  const cmp = (p: number, n: 1 | 2 | 4 | 8) => `*(int${n * 8} *)($sv + ${offset + p}) == ${leLiteral(bytes, p, n)}`;
  const out: string[] = [];
  const len = bytes.length;
  if (len >= 8) {
    let p = 0;
    for (; p + 8 <= len; p += 8) out.push(cmp(p, 8));
    if (p < len) out.push(cmp(len - 8, 8));
    return out;
  }
  let p = 0;
  for (const n of [4, 2, 1] as const) {
    if (len - p >= n) { out.push(cmp(p, n)); p += n; }
  }
  return out;
}

function checkPoint(pt: ProgramPoint): ProbeDef[] {
  if (!isInt(pt.id, 1, 99) || !POINT_NAME.test(pt.name)) throw invalid(`point ${JSON.stringify(pt.name)} #${pt.id}`);
  const f = pt.filter;
  if (f.interface) {
    const i = f.interface;
    if (!isInt(i.ifindex, 1, 2 ** 31 - 1) || !isInt(i.netnsInode, 1, 2 ** 32 - 1) || !IFNAME.test(i.name)) throw invalid(`interface of point ${pt.name}`);
  }
  if (f.pids && (f.pids.length === 0 || f.pids.length > 32 || !f.pids.every((p) => isInt(p, 1, 2 ** 22)))) throw invalid(`pids of point ${pt.name}`);
  if (f.comm !== undefined && !COMM.test(f.comm)) throw invalid(`comm of point ${pt.name}`);
  if (f.commPrefix !== undefined && !COMM.test(f.commPrefix)) throw invalid(`commPrefix of point ${pt.name}`);
  if (!f.interface && !f.pids && f.comm === undefined && f.commPrefix === undefined) throw invalid(`point ${pt.name} has no filter`);
  if (pt.probes.length === 0) throw invalid(`point ${pt.name} has no probe`);
  return pt.probes.map((p) => {
    const def = probeDef(p);
    if (!def) throw invalid(`unknown probe ${JSON.stringify(p)}`);
    if (f.interface && !def.dev) throw invalid(`${def.attach} cannot be filtered by interface`);
    return def;
  });
}

function filterExpr(f: PointFilter): string {
  const terms: string[] = [];
  if (f.interface) terms.push(`$dev->ifindex == ${f.interface.ifindex} && $dev->nd_net.net->ns.inum == ${f.interface.netnsInode}`);
  if (f.pids) terms.push(`(${f.pids.map((p) => `pid == ${p}`).join(' || ')})`);
  if (f.comm !== undefined) terms.push(`comm == "${f.comm}"`);
  if (f.commPrefix !== undefined) terms.push(`strncmp(comm, "${f.commPrefix}", ${f.commPrefix.length}) == 0`);
  return terms.join(' && ');
}

function describeFilter(f: PointFilter): string {
  const parts: string[] = [];
  if (f.interface) parts.push(`on ${f.interface.name} (ifindex ${f.interface.ifindex}, netns inode ${f.interface.netnsInode})`);
  if (f.pids) parts.push(`in pid ${f.pids.join(', ')}`);
  if (f.comm !== undefined) parts.push(`in comm ${f.comm}`);
  if (f.commPrefix !== undefined) parts.push(`in comm ${f.commPrefix}*`);
  return parts.join(' ');
}

/** The frame-reading preamble shared by every point: frame start, linear length, ethertype, SV header. */
function preamble(def: ProbeDef, filter: string, indent: string): string[] {
  return [
    '{',
    '\t$t = nsecs;',
    `\t$skb = ${def.skb};`,
    ...(def.dev ? [`\t$dev = ${def.dev};`] : []),
    `\tif (${filter ? filter + ' && ' : ''}$skb->mac_header != 65535) {`,
    `${indent}$mac = $skb->head + $skb->mac_header;`,
    `${indent}$lin = (int64)$skb->tail - (int64)$skb->mac_header;`,
    `${indent}$et0 = *(int16 *)($mac + 12);`,
    `${indent}$off = $et0 == ${ETH_VLAN_LE} ? 18 : 14;`,
    `${indent}$et = $et0 == ${ETH_VLAN_LE} ? *(int16 *)($mac + 16) : $et0;`,
  ];
}

function layoutMatch(l: FrameLayout, k: number, t: string): string[] {
  const hdr = new Uint8Array([l.appId >> 8, l.appId & 0xff, l.length >> 8, l.length & 0xff]);
  const cmps: string[] = [];
  for (const a of l.asdus) {
    cmps.push(...byteCompares(svIdTlv(a), a.svIdOffset - a.svIdTlvBytes));
    cmps.push(...byteCompares(new Uint8Array([0x82, a.smpCntBytes]), a.smpCntOffset - 2));
  }
  return [
    `${t}if ($k == -1 && $hdr == ${leLiteral(hdr, 0, 4)}) {`,
    `${t}\tif ($room < ${layoutExtent(l)}) { $k = -2; }`,
    `${t}\telse if (${cmps.join(` &&\n${t}\t\t`)}) { $k = ${k}; }`,
    `${t}}`,
  ];
}

function layoutEmit(l: FrameLayout, k: number, pointId: number, t: string): string[] {
  const lines = [`${t}if ($k == ${k}) {`];
  const args: string[] = [];
  l.asdus.forEach((a, i) => {
    lines.push(`${t}\t$c${i} = (uint64)*(uint${a.smpCntBytes * 8} *)($sv + ${a.smpCntOffset});`);
    args.push(a.smpCntBytes === 2 ? `(($c${i} & 255) << 8) | ($c${i} >> 8)` : `$c${i}`);
  });
  lines.push(`${t}\tprintf("${pointId} ${k} %llu %u${' %llu'.repeat(args.length)}\\n", $t, cpu, ${args.join(', ')});`);
  lines.push(`${t}}`);
  return lines;
}

function pointBlock(pt: ProgramPoint, def: ProbeDef, layouts: FrameLayout[], unknownSamples: number): string {
  const t1 = '\t\t', t2 = '\t\t\t';
  const id = pt.id;
  const words = Array.from({ length: WORDS_SHOWN }, (_, i) => `*(int64 *)($mac + ${i * 8})`);
  const lines = [
    `// point ${id} = ${pt.name}: ${def.attach} ${describeFilter(pt.filter)}`,
    `// fires when ${def.meaning}${def.racy ? ` (note: ${def.racy})` : ''}`,
    def.attach,
    ...preamble(def, filterExpr(pt.filter), t1),
    `${t1}if ($et == ${ETH_SV_LE} && $lin >= $off + 4 && @stop == 0) {`,
    `${t2}$sv = $mac + $off;`,
    `${t2}$room = $lin - $off;`,
    `${t2}$hdr = *(int32 *)($sv);`,
    `${t2}$k = -1;`,
    ...layouts.flatMap((l, k) => layoutMatch(l, k, t2)),
    ...layouts.flatMap((l, k) => layoutEmit(l, k, id, t2)),
    `${t2}if ($k >= 0) { @frames[${id}] = count(); }`,
    `${t2}if ($k == -2) { @short[${id}] = count(); }`,
    `${t2}if ($k == -1) {`,
    `${t2}\t@unknown[${id}] = count();`,
    `${t2}\tif (@shown[${id}] < ${unknownSamples}) {`,
    `${t2}\t\t@shown[${id}]++;`,
    `${t2}\t\tprintf("U ${id} %lld${' %llx'.repeat(WORDS_SHOWN)}\\n", $lin,`,
    `${t2}\t\t\t${words.join(', ')});`,
    `${t2}\t}`,
    `${t2}}`,
    `${t1}}`,
    '\t}',
    '}',
  ];
  return lines.join('\n');
}

function layoutSummary(l: FrameLayout, k: number): string {
  const asdus = l.asdus.map((a) => `svID ${commentText(a.svId)} at ${a.svIdOffset}, smpCnt at ${a.smpCntOffset}`).join('; ');
  return ` *   layout ${k}: APPID 0x${hex4(l.appId)}, Length ${l.length}, ${l.asdus.length} ASDU(s): ${asdus}`;
}

/**
 * BPF instructions of one point's program, estimated from the matching work:
 * ~10.5 per word compared or read, ~7 per layout (fitted on bpftrace 0.17's
 * output: 48 layouts x 8 ASDUs with 35-octet svIDs = 28 314 instructions).
 * BPF jumps reach 32 767 instructions, so bigger programs fail to load.
 */
export function estimateInstructions(layouts: FrameLayout[]): number {
  let ops = 0;
  for (const l of layouts) {
    for (const a of l.asdus) ops += byteCompares(svIdTlv(a), 0).length + 2;
  }
  return Math.round(300 + 7 * layouts.length + 10.5 * ops);
}

export const MAX_INSTRUCTIONS = 30_000;

/** The complete svtrace.bt program for these points and layouts. */
export function generateTraceProgram(spec: ProgramSpec): string {
  if (!isInt(spec.unknownSamples, 0, 100)) throw invalid('unknownSamples must be 0..100');
  if (spec.points.length === 0) throw invalid('no point');
  if (new Set(spec.points.map((p) => p.id)).size !== spec.points.length) throw invalid('point ids repeat');
  const layouts = spec.layouts.map((l, k) => validateLayout(l, `layout ${k}`));
  const insns = estimateInstructions(layouts);
  if (insns > MAX_INSTRUCTIONS) {
    throw new SvtraceError('TRACE_PROGRAM_TOO_LARGE', `${layouts.length} frame layouts (${layouts.reduce((n, l) => n + l.asdus.length, 0)} ASDUs) need about ${insns} BPF instructions per point, more than a BPF program can jump across`, {
      hint: 'trace fewer streams per run (list them in streams), or split them over two traces; about 48 streams of 8 ASDUs or 256 of 1 fit',
    });
  }
  const blocks: string[] = [];
  const summary: string[] = [];
  for (const pt of spec.points) {
    const defs = checkPoint(pt);
    summary.push(` *   point ${pt.id} = ${pt.name}: ${pt.probes.join(', ')} ${describeFilter(pt.filter)}`);
    for (const def of defs) blocks.push(pointBlock(pt, def, layouts, spec.unknownSamples));
  }
  layouts.forEach((l, k) => summary.push(layoutSummary(l, k)));
  if (layouts.length === 0) summary.push(' *   no layout: every SV frame counts as unknown');
  const stopComm = spec.stopComm ?? stopCommFor(process.pid);
  if (!/^[a-z0-9]{1,15}$/.test(stopComm)) throw invalid(`stopComm ${JSON.stringify(stopComm)} is not 1..15 lower-case letters and digits`);
  const ownerPid = spec.ownerPid ?? process.pid;
  if (!isInt(ownerPid, 1, 2 ** 22)) throw invalid(`ownerPid ${ownerPid} is not a pid`);
  return fillTemplate('svtrace.bt', { SUMMARY: summary.join('\n'), POINTS: '\n' + blocks.join('\n\n') + '\n', STOP_COMM: stopComm, OWNER_PID: String(ownerPid) });
}

export interface LearnSpec {
  /** Probes to learn at (tracepoints with args->skbaddr). */
  probes: string[];
  /** Interfaces to learn on; empty = every interface. */
  interfaces: ResolvedInterface[];
  framesPerKey: number;
  maxFrames: number;
}

/** The learn.bt program: the first frames of every stream, as bytes. */
export function generateLearnProgram(spec: LearnSpec): string {
  if (!isInt(spec.framesPerKey, 1, 1000) || !isInt(spec.maxFrames, 1, 100_000)) throw invalid('learn limits');
  if (spec.probes.length === 0) throw invalid('no learn probe');
  for (const p of spec.probes) {
    const def = probeDef(p);
    if (!def || def.kind !== 'tracepoint' || !def.dev) throw invalid(`cannot learn at ${JSON.stringify(p)}`);
  }
  const ifs = spec.interfaces.map((i) => {
    if (!isInt(i.ifindex, 1, 2 ** 31 - 1) || !isInt(i.netnsInode, 1, 2 ** 32 - 1) || !IFNAME.test(i.name)) throw invalid('learn interface');
    return i;
  });
  const filter = ifs.length === 0 ? ''
    : `(${ifs.map((i) => `($dev->ifindex == ${i.ifindex} && $dev->nd_net.net->ns.inum == ${i.netnsInode})`).join(' || ')}) && `;
  const summary = [
    ` *   probes: ${spec.probes.join(', ')}`,
    ` *   interfaces: ${ifs.length === 0 ? 'all' : ifs.map((i) => `${i.name} (ifindex ${i.ifindex}, netns inode ${i.netnsInode})`).join(', ')}`,
    ` *   at most ${spec.framesPerKey} frames per APPID/Length, ${spec.maxFrames} in all`,
  ];
  return fillTemplate('learn.bt', {
    SUMMARY: summary.join('\n'),
    PROBES: spec.probes.join(',\n'),
    FILTER: filter,
    FRAMES_PER_KEY: String(spec.framesPerKey),
    MAX_FRAMES: String(spec.maxFrames),
  });
}
