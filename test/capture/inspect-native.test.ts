/**
 * The native inspect engine (native/inspect_scan*.c) against the TypeScript
 * inspector, the reference: the same JSON on every capture of
 * ../shared/fixtures and on generated hostile captures in every container
 * layout, from memory and from a file; damaged captures go to the reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInspector, inspectCapture, type InspectResult } from '../../src/capture/inspect.ts';
import { inspectNative } from '../../src/capture/inspect-native.ts';
import { parseCapture } from '../../src/pcap/index.ts';
import { encodeFrame } from '../../src/sv/index.ts';
import { FIXTURES, runCli } from '../helpers/cli.ts';
import { classicPcap, hostilePackets, pcapng } from './hostile-captures.ts';

function reference(bytes: Uint8Array, wrapAt?: number): InspectResult {
  const inspector = createInspector({ wrapAt });
  return inspector.finish(parseCapture(bytes, inspector.onPacket));
}

const dir = mkdtempSync(join(tmpdir(), `svtrace-inspect-native-${process.pid}-`));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Native from memory and from a file: both must answer, and say exactly what the reference says. */
async function same(name: string, bytes: Uint8Array, wrapAt?: number): Promise<InspectResult> {
  const want = JSON.stringify(reference(bytes, wrapAt));
  const path = join(dir, name);
  writeFileSync(path, bytes);
  for (const source of [bytes, path]) {
    const got = await inspectNative(source, { wrapAt, engine: 'native' });
    assert.ok(!('fallback' in got), `${name}: native engine fell back: ${'fallback' in got ? got.fallback : ''}`);
    assert.equal(JSON.stringify(got), want, `${name} (${typeof source === 'string' ? 'file' : 'memory'}, wrap ${wrapAt ?? 'learnt'})`);
  }
  return JSON.parse(want) as InspectResult;
}

test('every fixture: native and TypeScript inspect agree', async () => {
  const names = readdirSync(FIXTURES).filter((n) => /\.(pcap|pcapng)$/.test(n));
  assert.ok(names.length >= 5, `fixtures in ${FIXTURES}`);
  for (const n of names) {
    const r = await same(n, readFileSync(join(FIXTURES, n)));
    assert.ok(r.streams.length > 0, n);
  }
});

test('hostile captures in every layout: native and TypeScript inspect agree', async () => {
  const packets = hostilePackets(30_000, 7);
  const layouts: Array<[string, Uint8Array]> = [
    ['le-us.pcap', classicPcap(packets, { le: true })],
    ['be-ns.pcap', classicPcap(packets, { le: false, ns: true })],
    ['modified.pcap', classicPcap(packets, { le: true, modified: true })],
    ['ns.pcapng', pcapng(packets, { tsresol: 9, sections: 3 })],
    ['us.pcapng', pcapng(packets, { tsresol: 6, sections: 2 })],
  ];
  for (const [name, bytes] of layouts) {
    const r = await same(name, bytes);
    // the generator's trouble is really there, so the comparison means something
    assert.ok(r.streams.length >= 7, `${name}: ${r.streams.length} streams`);
    assert.ok(r.otherFrames > 0 && r.malformed.count > 20 && Object.keys(r.malformed.byCode).length >= 4, `${name}: ${JSON.stringify(r.malformed.byCode)}`);
    const sum = (k: 'missing' | 'duplicates' | 'outOfOrder' | 'wraps' | 'confRevChanges') => r.streams.reduce((a, s) => a + s[k], 0);
    for (const k of ['missing', 'duplicates', 'outOfOrder', 'wraps', 'confRevChanges'] as const) assert.ok(sum(k) > 0, `${name}: no ${k}`);
    assert.ok(r.streams.some((s) => s.asdusPerFrame.length > 1), name);
    assert.ok(r.streams.some((s) => s.wrapAt === 4800 && s.simulated) && r.streams.some((s) => s.gaps.some((g) => g.missing < g.size)), name);
  }
  // a wrap given (also below the smpCnt seen), and a capture cut at several places
  const bytes = layouts[0]![1];
  await same('wrap4000.pcap', bytes, 4000);
  await same('wrap100.pcap', bytes, 100);
  for (const cut of [4, 10, 24, 30, 24 + 16 + 5, Math.floor(bytes.length / 2) + 1, bytes.length - 1]) {
    const r = await same(`cut-${cut}.pcap`, bytes.subarray(0, cut));
    if (cut >= 24) assert.ok(r.truncated !== null || cut === 24, `cut ${cut}`);
  }
  const ng = layouts[3]![1];
  for (const cut of [8, 100, ng.length - 3]) await same(`cut-${cut}.pcapng`, ng.subarray(0, cut));
});

test('a long clean capture with many gaps: listed gaps stop at 1000, the rest counted', async () => {
  const packets = [];
  let smp = 0;
  for (let i = 0; i < 40_000; i++) {
    smp = (smp + (i % 7 === 3 ? 3 : 1)) % 4000;
    packets.push({ tsNs: 1_000_000_000n + BigInt(i) * 250_000n, data: frameWith(smp) });
  }
  const r = await same('gaps.pcap', classicPcap(packets, { le: true, ns: true }));
  assert.equal(r.streams[0]!.gaps.length, 1000);
  assert.ok(r.streams[0]!.gapsNotListed > 0);
});

test('damaged captures and stdin go to the TypeScript reader, with its error', async () => {
  const good = classicPcap(hostilePackets(200, 3), { le: true });
  const damaged = [
    new Uint8Array(0), Uint8Array.from([0xd4, 0xc3]), Uint8Array.from([1, 2, 3, 4, 5, 6]),
    (() => { const b = good.slice(); b[4] = 3; return b; })(), // pcap version 3.4
    (() => { const b = good.slice(); new DataView(b.buffer).setUint32(24 + 8, 0x7fffffff, true); return b; })(), // a record of 2 GiB
    (() => { const b = pcapng(hostilePackets(50, 4), { tsresol: 9, sections: 1 }); b[b.length - 1]! ^= 1; return b; })(), // trailing length
    pcapng(hostilePackets(50, 4), { tsresol: 0x86 as number, sections: 1 }), // a 2^-6 s resolution: not handled natively
  ];
  for (const [i, bytes] of damaged.entries()) {
    const got = await inspectNative(bytes, { engine: 'native' });
    assert.ok('fallback' in got, `damaged ${i} must fall back`);
  }
  const path = join(dir, 'damaged.pcap');
  writeFileSync(path, damaged[3]!);
  await assert.rejects(inspectCapture(path), /version 3\.4/);
  assert.ok('fallback' in (await inspectNative('-')));
  assert.ok('fallback' in (await inspectNative(join(dir, 'absent.pcap'))));
  const r = await runCli(['inspect', '--json', join(dir, 'absent.pcap')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /CAPTURE_OPEN_FAILED/);
});

test('a file cut short while the engine maps it: no crash (SIGBUS is caught), the reference answers', async () => {
  const frame = frameWith(1);
  const packets = Array.from({ length: 150_000 }, (_, i) => ({ tsNs: BigInt(i) * 250_000n, data: frame }));
  const bytes = classicPcap(packets, { le: true });
  for (let round = 0; round < 4; round++) {
    const path = join(dir, `shrinking-${round}.pcap`);
    writeFileSync(path, bytes);
    const pending = inspectNative(path, { engine: 'native' });
    await new Promise((resolve) => setTimeout(resolve, 2 + round * 4));
    truncateSync(path, 1000);
    const got = await pending;
    // the scan either finished first, or fell back; this process is still here
    if ('fallback' in got) assert.match(got.fallback, /shrank/);
    else assert.ok(got.packets === 150_000 || got.truncated !== null, JSON.stringify(got.truncated));
    const whole = await inspectCapture(path);
    assert.ok(whole.truncated !== null, 'the reference reads what is left: a cut record');
  }
});

function frameWith(smpCnt: number): Uint8Array {
  return encodeFrame({
    dst: '01:0c:cd:04:00:01', src: '02:00:00:00:00:09', appId: 0x4009, reserved1: 0, simulated: false, reserved2: 0,
    asdus: [{ svId: 'GAPS', smpCnt, confRev: 1, smpSynch: 2, seqData: new Uint8Array(64) }],
  });
}
