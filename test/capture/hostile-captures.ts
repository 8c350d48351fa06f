/**
 * Captures for comparing the native inspect engine with the TypeScript one:
 * SV streams with losses, duplicates, reordering, wraps, learnt wraps,
 * confRev and smpSynch changes, several ASDUs per frame, shared APPIDs and
 * svIDs, VLAN and untagged, non-SV frames, runts, and fuzzed (cut, mutated)
 * SV frames; timestamps with jitter and steps back. Written by hand in every
 * container layout the reader knows (pcap µs/ns, both byte orders, the
 * "modified" pcap, pcapng with several sections, resolutions, SPB and OPB).
 */
import { prng } from '../analyze/helpers.ts';
import { encodeFrame } from '../../src/sv/index.ts';
import type { SvAsdu } from '../../src/sv/index.ts';

export interface Packet { tsNs: bigint; data: Uint8Array }

/** Deterministic PRNG (mulberry32): the analysis tests' own. */
export const rng = prng;

interface StreamSpec { svId: string; appId: number; src: number; vlan: boolean; wrap: number; simulated?: boolean; asdus?: number[] }

const STREAMS: StreamSpec[] = [
  { svId: 'MU01', appId: 0x4000, src: 1, vlan: true, wrap: 4000 },
  { svId: 'MU02', appId: 0x4000, src: 1, vlan: false, wrap: 4000 }, // same APPID, other svID
  { svId: 'MU01', appId: 0x4000, src: 2, vlan: true, wrap: 4000 }, // same svID, other source
  { svId: 'M\u00e9U\u0000', appId: 0x4001, src: 3, vlan: true, wrap: 4800, simulated: true }, // learnt wrap, odd bytes
  { svId: 'MU05', appId: 0x4002, src: 4, vlan: false, wrap: 12800, asdus: [2, 8, 1] }, // several ASDUs per frame
  { svId: '', appId: 0x3fff, src: 5, vlan: true, wrap: 65536 },
];

function asdu(svId: string, smpCnt: number, confRev: number, smpSynch: number): SvAsdu {
  return { svId, smpCnt, confRev, smpSynch, seqData: new Uint8Array(16) };
}

const NON_SV = [
  Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00, 0x45, 0, 0, 20, ...new Array(30).fill(0)]),
  Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x81, 0x00, 0x80, 1, 0x08, 0x06, ...new Array(28).fill(1)]),
];

/** `frames` packets of the streams above, with every kind of trouble. */
export function hostilePackets(frames: number, seed: number): Packet[] {
  const r = rng(seed);
  const next = STREAMS.map(() => 0);
  const confRev = STREAMS.map(() => 1);
  const out: Packet[] = [];
  let t = 1_700_000_000_000_000_000n;
  let held: Packet | null = null;
  for (let i = 0; i < frames; i++) {
    t += BigInt(Math.floor(r() * 60_000));
    if (r() < 0.003) t -= 2_000_000n; // a clock step back
    const x = r();
    let data: Uint8Array;
    if (x < 0.02) {
      data = NON_SV[Math.floor(r() * NON_SV.length)]!;
    } else if (x < 0.025) {
      data = Uint8Array.from({ length: Math.floor(r() * 14) }, () => Math.floor(r() * 256)); // runt
    } else {
      const k = Math.floor(r() * STREAMS.length);
      const s = STREAMS[k]!;
      const e = r();
      if (e < 0.01) next[k] = (next[k]! + 1 + Math.floor(r() * 5)) % s.wrap; // loss
      else if (e < 0.012) next[k] = (next[k]! + 500 + Math.floor(r() * 1500)) % s.wrap; // a long loss
      else if (e < 0.02) next[k] = (next[k]! + s.wrap - 1 - Math.floor(r() * 3)) % s.wrap; // duplicates / late
      if (r() < 0.002) confRev[k]!++;
      const n = s.asdus ? s.asdus[Math.floor(r() * s.asdus.length)]! : 1;
      const asdus: SvAsdu[] = [];
      for (let a = 0; a < n; a++) {
        asdus.push(asdu(s.svId, next[k]!, confRev[k]!, r() < 0.01 ? 1 : 2));
        next[k] = (next[k]! + 1) % s.wrap;
      }
      if (k === 4 && r() < 0.05) asdus.push(asdu('MU02', 7, 1, 0)); // another stream inside the frame
      data = encodeFrame({
        dst: '01:0c:cd:04:00:01', src: `02:00:00:00:00:0${s.src}`, vlan: s.vlan ? { priority: 4, dei: false, id: 5 } : undefined,
        appId: s.appId, reserved1: 0, simulated: s.simulated ?? false, reserved2: 0, asdus,
      });
      const m = r();
      if (m < 0.01) data = data.slice(0, Math.floor(r() * data.length)); // cut
      else if (m < 0.03) {
        data = data.slice();
        for (let j = 0; j < 1 + Math.floor(r() * 3); j++) data[14 + Math.floor(r() * (data.length - 14))] = Math.floor(r() * 256);
      }
    }
    const p = { tsNs: t, data };
    if (held) { out.push(p, held); held = null; } // reordered on the wire
    else if (r() < 0.003) held = p;
    else out.push(p);
  }
  if (held) out.push(held);
  return out;
}

class Bytes {
  private parts: number[] = [];
  constructor(private le: boolean) {}
  u8(v: number) { this.parts.push(v & 0xff); return this; }
  u16(v: number) { return this.le ? this.u8(v).u8(v >> 8) : this.u8(v >> 8).u8(v); }
  u32(v: number) { return this.le ? this.u16(v & 0xffff).u16(v >>> 16) : this.u16(v >>> 16).u16(v & 0xffff); }
  raw(b: ArrayLike<number>) { for (let i = 0; i < b.length; i++) this.parts.push(b[i]!); return this; }
  get length() { return this.parts.length; }
  done(): Uint8Array { return Uint8Array.from(this.parts); }
}

/** Classic pcap: µs or ns, either byte order, or the "modified" variant (24-byte record headers). */
export function classicPcap(packets: Packet[], o: { le: boolean; ns?: boolean; modified?: boolean }): Uint8Array {
  const w = new Bytes(o.le);
  w.u32(o.modified ? 0xa1b2cd34 : o.ns ? 0xa1b23c4d : 0xa1b2c3d4).u16(2).u16(4).u32(0).u32(0).u32(65535).u32(1);
  for (const p of packets) {
    const sec = Number(p.tsNs / 1_000_000_000n), ns = Number(p.tsNs % 1_000_000_000n);
    w.u32(sec).u32(o.ns ? ns : Math.floor(ns / 1000)).u32(p.data.length).u32(p.data.length + 4);
    if (o.modified) w.u32(7).u16(1).u8(0).u8(0);
    w.raw(p.data);
  }
  return w.done();
}

function block(w: Bytes, type: number, body: Bytes | Uint8Array): void {
  const b = body instanceof Bytes ? body.done() : body;
  const pad = (4 - (b.length % 4)) % 4;
  const len = 12 + b.length + pad;
  w.u32(type).u32(len).raw(b).raw(new Array(pad).fill(0)).u32(len);
}

/**
 * pcapng: sections alternate byte order; each has an interface with a
 * resolution of 10^-`tsresol` s (and an if_tsoffset in the second); packets
 * go as EPB, with an SPB and an OPB now and then, and a custom block.
 */
export function pcapng(packets: Packet[], o: { tsresol: number; sections: number }): Uint8Array {
  const all = new Bytes(true);
  const per = Math.ceil(packets.length / o.sections);
  for (let s = 0; s < o.sections; s++) {
    const le = s % 2 === 0;
    const w = new Bytes(le);
    block(w, 0x0a0d0d0a, new Bytes(le).u32(0x1a2b3c4d).u16(1).u16(0).u32(0xffffffff).u32(0xffffffff));
    const offset = s === 1 ? 5 : 0;
    const idb = new Bytes(le).u16(1).u16(0).u32(s === 2 ? 40 : 0).u16(9).u16(1).u8(o.tsresol).u8(0).u8(0).u8(0);
    if (offset) idb.u16(14).u16(8).u32(le ? offset : 0).u32(le ? 0 : offset);
    block(w, 1, idb.u16(0).u16(0));
    const unit = o.tsresol & 0x80 ? 1n : 10n ** BigInt(9 - o.tsresol); // 2^-n: any timestamps will do
    packets.slice(s * per, (s + 1) * per).forEach((p, i) => {
      const units = (p.tsNs - BigInt(offset) * 1_000_000_000n) / unit;
      const hi = Number(units >> 32n), lo = Number(units & 0xffffffffn);
      if (i % 97 === 5) block(w, 3, new Bytes(le).u32(p.data.length).raw(p.data));
      else if (i % 89 === 7) block(w, 2, new Bytes(le).u16(0).u16(0).u32(hi).u32(lo).u32(p.data.length).u32(p.data.length).raw(p.data));
      else block(w, 6, new Bytes(le).u32(0).u32(hi).u32(lo).u32(p.data.length).u32(p.data.length).raw(p.data));
      if (i % 500 === 3) block(w, 0x40000bad, new Bytes(le).u32(1));
    });
    all.raw(w.done());
  }
  return all.done();
}
