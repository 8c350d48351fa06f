/**
 * The binary engine's config and records as bytes, laid out as
 * native/bpf/points.h says (a test compares every size with the addon's).
 * Pure: validated points and layouts in, Uint8Arrays out; records in, plain
 * values out. Nothing from the config becomes code: the kernel program is
 * fixed, and these bytes fill its maps.
 *
 * A layout becomes a list of word compares, as svtrace.bt's (generate.ts,
 * `byteCompares`): each ASDU's svID TLV (tag, BER length, every octet) and
 * smpCnt tag, as 64-bit little-endian words at offsets from the APPID, the
 * tail as one overlapping word, short fields as one masked word.
 */
import { SvtraceError } from '../errors.ts';
import { layoutExtent, svIdTlv, type FrameLayout } from './layout.ts';
import type { ProgramPoint } from './generate.ts';

export const BPF_SIZES = {
  config: 80, point: 160, layout: 13112, word: 24, cands: 40, recFrame: 48, recUnknown: 144,
  maxPointId: 99, counters: 4, layoutWordsOffset: 56, pointCommOffset: 144, configPointsOffset: 24,
} as const;

const MAX_PER_PROBE = 8, MAX_ASDUS = 16, MAX_WORDS = 544, MAX_CAND = 8, MAX_PIDS = 32, BUF = 2048;
export const UNKNOWN_BYTES = 128;

/** The raw tracepoints of points.bpf.c, by the probe names of probes.ts. */
export const BPF_PROBES: readonly string[] = [
  'tracepoint:net:netif_receive_skb', 'tracepoint:net:net_dev_start_xmit', 'tracepoint:net:net_dev_queue', 'tracepoint:net:net_dev_xmit',
  'tracepoint:skb:consume_skb', 'tracepoint:skb:kfree_skb', 'tracepoint:skb:skb_copy_datagram_iovec',
];

/** Counter kinds per point, as SVB_C_* (matched frames, unknown, short, ring full). */
export const C_MATCHED = 0, C_UNKNOWN = 1, C_SHORT = 2, C_LOST = 3;

export interface BpfWord { off: number; val: bigint; mask: bigint }

function tooMany(what: string, hint: string): SvtraceError {
  return new SvtraceError('TRACE_BPF_TOO_MANY', `the bpf engine cannot trace this: ${what}`, { hint });
}

/** The word compares of `bytes` placed at `offset` from the APPID. */
export function wordsOf(bytes: Uint8Array, offset: number): BpfWord[] {
  const word = (p: number, n: number): BpfWord => {
    let val = 0n, mask = 0n;
    for (let i = n - 1; i >= 0; i--) {
      val = (val << 8n) | BigInt(bytes[p + i]!);
      mask = (mask << 8n) | 0xffn;
    }
    return { off: offset + p, val, mask };
  };
  const len = bytes.length;
  if (len < 8) return [word(0, len)];
  const out: BpfWord[] = [];
  let p = 0;
  for (; p + 8 <= len; p += 8) out.push(word(p, 8));
  if (p < len) out.push(word(len - 8, 8));
  return out;
}

export function layoutWords(l: FrameLayout): BpfWord[] {
  return l.asdus.flatMap((a) => [
    ...wordsOf(svIdTlv(a), a.svIdOffset - a.svIdTlvBytes),
    ...wordsOf(new Uint8Array([0x82, a.smpCntBytes]), a.smpCntOffset - 2),
  ]);
}

export interface BpfConfigBytes {
  config: Uint8Array;
  points: Uint8Array;
  layouts: Uint8Array;
  cands: Uint8Array;
}

/** Packs validated points (ids 1..99, filters checked by generate.ts's rules) and layouts into the maps' bytes. */
export function packBpfConfig(points: readonly ProgramPoint[], layouts: readonly FrameLayout[], unknownSamples: number): BpfConfigBytes {
  const S = BPF_SIZES;
  const config = new Uint8Array(S.config);
  const cv = new DataView(config.buffer);
  let maxExtent = 0;
  for (const l of layouts) maxExtent = Math.max(maxExtent, layoutExtent(l));
  cv.setUint32(4, Math.min(BUF - 1, Math.max(UNKNOWN_BYTES, maxExtent + 18)), true);
  cv.setUint32(8, unknownSamples, true);

  const pts = new Uint8Array((S.maxPointId + 1) * S.point);
  const pv = new DataView(pts.buffer);
  for (const p of points) {
    if (!Number.isInteger(p.id) || p.id < 1 || p.id > S.maxPointId) throw tooMany(`point id ${p.id}`, 'at most 99 points');
    const base = p.id * S.point;
    const f = p.filter;
    if (f.interface) {
      pv.setUint32(base, f.interface.ifindex, true);
      pv.setUint32(base + 4, f.interface.netnsInode, true);
    }
    if (f.pids) {
      if (f.pids.length > MAX_PIDS) throw tooMany(`${f.pids.length} pids for point ${p.name}`, `at most ${MAX_PIDS}`);
      pv.setUint32(base + 8, f.pids.length, true);
      f.pids.forEach((pid, i) => pv.setUint32(base + 12 + 4 * i, pid, true));
    }
    const comm = f.comm ?? f.commPrefix;
    if (f.comm !== undefined && f.commPrefix !== undefined) throw tooMany(`point ${p.name} has both comm and commPrefix`, 'give one of them');
    if (comm !== undefined) {
      const bytes = Uint8Array.from(comm, (c) => c.charCodeAt(0) & 0xff);
      // exact: the name and its NUL (comm is 15 bytes at most); a prefix: its bytes only
      pv.setUint32(base + S.pointCommOffset - 4, f.comm !== undefined ? Math.min(16, bytes.length + 1) : bytes.length, true);
      pts.set(bytes.subarray(0, 15), base + S.pointCommOffset);
    }
    for (const probe of p.probes) {
      const k = BPF_PROBES.indexOf(probe);
      if (k < 0) {
        throw new SvtraceError('TRACE_BPF_UNAVAILABLE', `the bpf engine has no program for ${probe} (point ${p.name})`, {
          hint: `use --engine bpftrace for this point; the bpf engine covers ${BPF_PROBES.join(', ')}`,
        });
      }
      const n = config[16 + k]!;
      if (n >= MAX_PER_PROBE) throw tooMany(`more than ${MAX_PER_PROBE} points on ${probe}`, 'split the points over two traces');
      config[S.configPointsOffset + k * MAX_PER_PROBE + n] = p.id;
      config[16 + k] = n + 1;
    }
  }

  const lay = new Uint8Array(layouts.length * S.layout);
  const lv = new DataView(lay.buffer);
  const byHeader = new Map<number, number[]>();
  layouts.forEach((l, k) => {
    const base = k * S.layout;
    const words = layoutWords(l);
    if (words.length > MAX_WORDS || l.asdus.length > MAX_ASDUS) throw tooMany(`layout ${k} needs ${words.length} word compares`, `at most ${MAX_WORDS}`);
    lv.setUint32(base, layoutExtent(l), true);
    lv.setUint16(base + 4, words.length, true);
    lv.setUint16(base + 6, l.asdus.length, true);
    l.asdus.forEach((a, i) => {
      lv.setUint16(base + 8 + 2 * i, a.smpCntOffset, true);
      lay[base + 40 + i] = a.smpCntBytes;
    });
    words.forEach((w, i) => {
      const at = base + S.layoutWordsOffset + i * S.word;
      lv.setBigUint64(at, w.val, true);
      lv.setBigUint64(at + 8, w.mask, true);
      lv.setUint32(at + 16, w.off, true);
    });
    // the key: the APPID and Length octets, as the kernel reads them (one 32-bit word)
    const key = new DataView(new Uint8Array([l.appId >> 8, l.appId & 0xff, l.length >> 8, l.length & 0xff]).buffer).getUint32(0, true);
    const list = byHeader.get(key) ?? [];
    list.push(k);
    byHeader.set(key, list);
  });
  if (byHeader.size > 256) throw tooMany(`${byHeader.size} APPID/Length pairs`, 'at most 256; trace fewer streams');
  const cands = new Uint8Array(byHeader.size * S.cands);
  const kv = new DataView(cands.buffer);
  [...byHeader].forEach(([key, ks], i) => {
    if (ks.length > MAX_CAND) throw tooMany(`${ks.length} layouts share one APPID and Length`, `at most ${MAX_CAND}; trace fewer streams at once`);
    const base = i * S.cands;
    kv.setUint32(base, key, true);
    kv.setUint32(base + 4, ks.length, true);
    ks.forEach((k, j) => kv.setUint32(base + 8 + 4 * j, k, true));
  });
  return { config, points: pts, layouts: lay, cands };
}

export interface BpfFrameRecord { type: 1; point: number; layout: number; cpu: number; tMonoNs: bigint; smpCnts: number[] }
export interface BpfUnknownRecord { type: 2; point: number; tMonoNs: bigint; bytes: Uint8Array }

/**
 * Walks the records of one batch (as the kernel wrote them). Calls `frame`
 * with reused arguments for each matched frame (the hot path), `unknown` for
 * the rare unknown-frame samples. Returns how many records were read.
 */
export function readRecords(buf: Uint8Array, frame: (point: number, layout: number, cpu: number, tMonoNs: bigint, n: number, smpCnts: Uint16Array) => void, unknown: (r: BpfUnknownRecord) => void): number {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const cnts = new Uint16Array(MAX_ASDUS);
  let at = 0, count = 0;
  while (at + 16 <= buf.length) {
    const type = buf[at]!;
    if (type === 1 && at + BPF_SIZES.recFrame <= buf.length) {
      const n = Math.min(MAX_ASDUS, v.getUint16(at + 6, true));
      for (let i = 0; i < n; i++) cnts[i] = v.getUint16(at + 16 + 2 * i, true);
      frame(buf[at + 1]!, v.getUint16(at + 2, true), v.getUint16(at + 4, true), v.getBigUint64(at + 8, true), n, cnts);
      at += BPF_SIZES.recFrame;
    } else if (type === 2 && at + BPF_SIZES.recUnknown <= buf.length) {
      const avail = v.getUint16(at + 2, true);
      unknown({ type: 2, point: buf[at + 1]!, tMonoNs: v.getBigUint64(at + 8, true), bytes: buf.slice(at + 16, at + 16 + Math.min(avail, UNKNOWN_BYTES)) });
      at += BPF_SIZES.recUnknown;
    } else {
      throw new SvtraceError('TRACE_BPF_INVALID', `a ring buffer record of type ${type} at byte ${at} of ${buf.length} is not one points.h defines`, { hint: 'rebuild the addon (npm run install): the BPF object and the addon disagree' });
    }
    count++;
  }
  return count;
}
