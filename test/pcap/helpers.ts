/**
 * Test helpers for src/pcap: the fixtures, tshark/editcap runners, and an
 * independent pcapng block builder (written separately from src/pcap/writer.ts,
 * with Buffer methods, so tests do not check the reader against itself).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { CapturedPacket } from '../../src/pcap/index.ts';

export const FIXTURES_DIR = fileURLToPath(new URL('../../../shared/fixtures', import.meta.url));

/** Frame counts as SOURCES.md states them. */
export const FIXTURES: readonly { name: string; frames: number }[] = [
  { name: 'SV_Normal_Traffic.pcap', frames: 10161 },
  { name: '50new.pcap', frames: 80 },
  { name: 'pcapCRC32.pcap', frames: 80 },
  { name: 'pcapQual.pcap', frames: 80 },
  { name: 'pcap4000.pcap', frames: 4000 },
];

export function fixture(name: string): string {
  return join(FIXTURES_DIR, name);
}

const toolCache = new Map<string, boolean>();

export function hasTool(name: string): boolean {
  let ok = toolCache.get(name);
  if (ok === undefined) {
    ok = spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
    toolCache.set(name, ok);
  }
  return ok;
}

/** A skip reason when a tool is missing, else false (for `test(name, { skip }, fn)`). */
export function skipUnless(...tools: string[]): string | false {
  const missing = tools.filter((t) => !hasTool(t));
  return missing.length > 0 ? `${missing.join(', ')} not installed` : false;
}

/** Runs a command, returns stdout; throws with stderr on failure. */
export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** tshark's fields for every frame of a file, one array per frame. */
export function tsharkFields(file: string, fields: string[]): string[][] {
  const args = ['-r', file, '-T', 'fields', '-E', 'separator=\t'];
  for (const f of fields) args.push('-e', f);
  return run('tshark', args).split('\n').filter((l) => l.length > 0).map((l) => l.split('\t'));
}

/** Formats ns since the epoch like tshark's frame.time_epoch: seconds with 9 decimals. */
export function epochString(tsNs: bigint): string {
  const sec = tsNs / 1_000_000_000n;
  const ns = tsNs % 1_000_000_000n;
  return `${sec}.${ns.toString().padStart(9, '0')}`;
}

/** A temporary directory removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-pcap-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A digest of packets (timestamps, lengths, bytes, interfaces) to compare whole readings. */
export function digest(packets: readonly CapturedPacket[]): string {
  const h = createHash('sha256');
  for (const p of packets) {
    h.update(`${p.tsNs}|${p.origLen}|${p.interfaceId}|${p.linkType}|${p.data.length}|`);
    h.update(p.data);
  }
  return h.digest('hex');
}

// ---- an independent pcapng builder ----

type Order = 'le' | 'be';

function u16(v: number, o: Order): Buffer {
  const b = Buffer.alloc(2);
  if (o === 'le') b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
}

function u32(v: number, o: Order): Buffer {
  const b = Buffer.alloc(4);
  if (o === 'le') b.writeUInt32LE(v);
  else b.writeUInt32BE(v);
  return b;
}

function padded(data: Uint8Array): Buffer {
  const b = Buffer.alloc(Math.ceil(data.length / 4) * 4);
  b.set(data);
  return b;
}

/** One option (code, value), padded; pass code 0 to end the list. */
export function option(code: number, value: Uint8Array, o: Order): Buffer {
  return Buffer.concat([u16(code, o), u16(value.length, o), padded(value)]);
}

export function endOfOptions(): Buffer {
  return Buffer.alloc(4);
}

/** A block: type, total length, body (padded), total length. */
export function ngBlock(type: number, body: Uint8Array, o: Order): Buffer {
  const body4 = padded(body);
  const total = 12 + body4.length;
  return Buffer.concat([u32(type, o), u32(total, o), body4, u32(total, o)]);
}

export function ngSectionHeader(o: Order): Buffer {
  const body = Buffer.concat([u32(0x1a2b3c4d, o), u16(1, o), u16(0, o), Buffer.alloc(8, 0xff)]);
  return ngBlock(0x0a0d0d0a, body, o);
}

export function ngInterface(o: Order, linkType: number, snapLen: number, opts: { tsresol?: number; name?: string; tsoffsetSec?: bigint } = {}): Buffer {
  const parts: Buffer[] = [u16(linkType, o), u16(0, o), u32(snapLen, o)];
  if (opts.name !== undefined) parts.push(option(2, Buffer.from(opts.name), o));
  if (opts.tsresol !== undefined) parts.push(option(9, Uint8Array.of(opts.tsresol), o));
  if (opts.tsoffsetSec !== undefined) {
    const v = Buffer.alloc(8);
    if (o === 'le') v.writeBigInt64LE(opts.tsoffsetSec);
    else v.writeBigInt64BE(opts.tsoffsetSec);
    parts.push(option(14, v, o));
  }
  if (parts.length > 3) parts.push(endOfOptions());
  return ngBlock(1, Buffer.concat(parts), o);
}

/** An Enhanced Packet Block with a timestamp in units of the interface's resolution. */
export function ngEnhancedPacket(o: Order, interfaceId: number, tsUnits: bigint, data: Uint8Array, origLen = data.length, comment?: string): Buffer {
  const parts = [
    u32(interfaceId, o), u32(Number(tsUnits >> 32n), o), u32(Number(tsUnits & 0xffffffffn), o),
    u32(data.length, o), u32(origLen, o), padded(data),
  ];
  if (comment !== undefined) parts.push(option(1, Buffer.from(comment), o), endOfOptions());
  return ngBlock(6, Buffer.concat(parts), o);
}

export function ngSimplePacket(o: Order, data: Uint8Array, origLen = data.length): Buffer {
  return ngBlock(3, Buffer.concat([u32(origLen, o), padded(data)]), o);
}

/** A Name Resolution Block with one IPv4 record and the end record. */
export function ngNameResolution(o: Order): Buffer {
  const rec = Buffer.concat([Uint8Array.of(192, 0, 2, 1), Buffer.from('mu1.example\0')]);
  return ngBlock(4, Buffer.concat([u16(1, o), u16(rec.length, o), padded(rec), u16(0, o), u16(0, o)]), o);
}

/** An Interface Statistics Block for interface 0 with no options. */
export function ngInterfaceStatistics(o: Order): Buffer {
  return ngBlock(5, Buffer.concat([u32(0, o), u32(0, o), u32(12345, o)]), o);
}

/** A Custom Block (type 0x00000BAD) with a private enterprise number and payload. */
export function ngCustom(o: Order): Buffer {
  return ngBlock(0x00000bad, Buffer.concat([u32(32473, o), Buffer.from('svtrace test payload')]), o);
}

/** What the parser should deliver for a hand-built packet (ts null: an SPB, no timestamp). */
export interface HandmadePacket {
  ts: bigint | null;
  iface: number;
  section: number;
  data: Uint8Array;
  origLen: number;
}

/** A hand-built pcapng: two sections in opposite byte orders, two interfaces at different resolutions, SPB, and blocks to skip. */
export function handmadePcapng(frames: Uint8Array[]): { bytes: Buffer; expected: HandmadePacket[] } {
  const f = (i: number): Uint8Array => frames[i % frames.length]!;
  const parts: Buffer[] = [];
  const expected: HandmadePacket[] = [];
  const base = 1_700_000_000n;
  // section 0, little-endian: iface 0 in µs (default resolution), iface 1 in 2^-30 s with if_tsoffset 100 s
  parts.push(ngSectionHeader('le'), ngInterface('le', 1, 65535, { name: 'eth0' }), ngNameResolution('le'));
  parts.push(ngInterface('le', 1, 0, { tsresol: 0x80 | 30, tsoffsetSec: 100n, name: 'vm-port' }));
  parts.push(ngEnhancedPacket('le', 0, base * 1_000_000n + 123_456n, f(0)));
  expected.push({ ts: base * 1_000_000_000n + 123_456_000n, iface: 0, section: 0, data: f(0), origLen: f(0).length });
  const frac = 0x2345_6789n; // of 2^30
  parts.push(ngEnhancedPacket('le', 1, (base << 30n) + frac, f(1), f(1).length, 'with a comment'));
  expected.push({ ts: (base + 100n) * 1_000_000_000n + (frac * 1_000_000_000n) / (1n << 30n), iface: 1, section: 0, data: f(1), origLen: f(1).length });
  parts.push(ngCustom('le'), ngInterfaceStatistics('le'));
  parts.push(ngSimplePacket('le', f(2)));
  expected.push({ ts: null, iface: 0, section: 0, data: f(2), origLen: f(2).length });
  // section 1, big-endian: iface 0 in ns, iface 1 in 10^-3; a cut EPB (caplen < origlen)
  parts.push(ngSectionHeader('be'), ngInterface('be', 1, 262144, { tsresol: 9 }), ngInterface('be', 1, 262144, { tsresol: 3 }));
  parts.push(ngEnhancedPacket('be', 0, base * 1_000_000_000n + 987_654_321n, f(3)));
  expected.push({ ts: base * 1_000_000_000n + 987_654_321n, iface: 0, section: 1, data: f(3), origLen: f(3).length });
  parts.push(ngCustom('be'));
  parts.push(ngEnhancedPacket('be', 1, base * 1000n + 999n, f(4).subarray(0, 30), f(4).length));
  expected.push({ ts: base * 1_000_000_000n + 999_000_000n, iface: 1, section: 1, data: f(4).subarray(0, 30), origLen: f(4).length });
  return { bytes: Buffer.concat(parts), expected };
}
