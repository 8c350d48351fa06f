import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, type SvFrame } from '../../src/sv/index.ts';
import { byteCompares, commentText, generateLearnProgram, generateTraceProgram, type ProgramPoint } from '../../src/trace/generate.ts';
import { layoutFromFrame, svIdTlv, type FrameLayout } from '../../src/trace/layout.ts';
import { validateTraceConfig } from '../../src/trace/config.ts';
import { PROBES } from '../../src/trace/probes.ts';
import { dryRun } from '../../src/trace/bpftrace.ts';
import { startBpftrace } from '../../src/trace/session.ts';
import { netnsInode } from '../../src/trace/interfaces.ts';
import { fillTemplate } from '../../src/trace/template.ts';
import { cannotTrace, readFrames } from './lab.ts';

const SKIP = cannotTrace();
const iface = { name: 'eth0', netns: null, ifindex: 2, netnsInode: 4026531833 };

function frame(asdus: Array<{ svId: string; smpCnt: number }>, vlan = true): Uint8Array {
  const f: SvFrame = {
    dst: '01:0c:cd:04:00:01', src: '02:00:00:00:00:01', appId: 0x4000, reserved1: 0, simulated: false, reserved2: 0,
    ...(vlan ? { vlan: { priority: 4, dei: false, id: 1 } } : {}),
    asdus: asdus.map((a) => ({ svId: a.svId, smpCnt: a.smpCnt, confRev: 1, smpSynch: 2, seqData: new Uint8Array(64) })),
  };
  return encodeFrame(f);
}

/** Reads the constants back out of the compare expressions and checks they spell the bytes. */
function decodeCompares(exprs: string[], base: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (const e of exprs) {
    const m = /^\*\(int(\d+) \*\)\(\$sv \+ (\d+)\) == \(?(-?\d+)/.exec(e);
    assert.ok(m, e);
    const bytes = Number(m[1]) / 8, at = Number(m[2]) - base;
    let v = BigInt.asUintN(bytes * 8, BigInt(m[3]!));
    for (let i = 0; i < bytes; i++) { out[at + i] = Number(v & 0xffn); v >>= 8n; }
  }
  return out;
}

test('svID compares are exact: every octet, in place, for every length', () => {
  for (let n = 1; n <= 40; n++) {
    const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
    assert.deepEqual(decodeCompares(byteCompares(bytes, 10), 10, n), bytes, `length ${n}`);
  }
  const ab = byteCompares(svIdTlv({ svId: 'AB', svIdOffset: 20, svIdTlvBytes: 2, smpCntOffset: 26, smpCntBytes: 2 }), 18);
  const ba = byteCompares(svIdTlv({ svId: 'BA', svIdOffset: 20, svIdTlvBytes: 2, smpCntOffset: 26, smpCntBytes: 2 }), 18);
  assert.notDeepEqual(ab, ba, 'same byte sum, different words');
  const l4001 = byteCompares(svIdTlv({ svId: '4001', svIdOffset: 19, svIdTlvBytes: 2, smpCntOffset: 25, smpCntBytes: 2 }), 17);
  const l1004 = byteCompares(svIdTlv({ svId: '1004', svIdOffset: 19, svIdTlvBytes: 2, smpCntOffset: 25, smpCntBytes: 2 }), 17);
  assert.notDeepEqual(l4001, l1004);
});

test('layouts from the fixtures and from encoded frames (long-form lengths, 8 ASDUs, long svID)', async () => {
  const [normal] = await readFrames('SV_Normal_Traffic.pcap');
  assert.deepEqual(layoutFromFrame(normal!), { appId: 0x4001, length: 102, asdus: [{ svId: '4001', svIdOffset: 19, svIdTlvBytes: 2, smpCntOffset: 25, smpCntBytes: 2 }] });
  const [fifty] = await readFrames('50new.pcap');
  const l = layoutFromFrame(fifty!);
  assert.equal(l.asdus[0]!.svId, 'MU857SJ85Mod2MU103');
  assert.equal(l.appId, 0x4000);
  const eight = layoutFromFrame(frame(Array.from({ length: 8 }, (_, i) => ({ svId: 'MU01', smpCnt: i }))));
  assert.equal(eight.asdus.length, 8);
  const long = layoutFromFrame(frame([{ svId: 'x'.repeat(130), smpCnt: 1 }], false));
  assert.equal(long.asdus[0]!.svIdTlvBytes, 3, 'svID over 127 octets uses a long-form length');
});

test('hostile configs are rejected before anything reaches a program', () => {
  const bad: unknown[] = [
    { vmInterface: { name: 'eth0"; system("id"); "' } },
    { vmInterface: { name: 'eth0\nkprobe:x { }' } },
    { vmInterface: { name: 'a'.repeat(16) } },
    { vmInterface: { name: 'eth0', netns: '../../etc/passwd' } },
    { vmInterface: { name: 'eth0', netns: 'ns"1' } },
    { subscriber: { comm: 'sub"); exit(); printf("' } },
    { subscriber: { comm: 'a\\b' } },
    { subscriber: { pids: [1.5] } },
    { subscriber: { pids: ['1 || 1'] } },
    { points: [{ name: 'X', probe: 'kprobe:do_sys_open', comm: 'x' }] },
    { points: [{ name: 'X Y', probe: 'tracepoint:net:netif_receive_skb', interface: { name: 'eth0' } }] },
    { points: [{ name: 'X', probe: 'tracepoint:skb:skb_copy_datagram_iovec', interface: { name: 'eth0' } }] },
    { vmInterface: { name: 'eth0' }, layouts: [{ appId: 1, length: 102, asdus: [{ svId: '4001', svIdOffset: 5000, svIdTlvBytes: 2, smpCntOffset: 25, smpCntBytes: 2 }] }] },
    { vmInterface: { name: 'eth0' }, extra: 1 },
    { ingress: { name: 'eth0' }, role: 'vm' },
  ];
  for (const c of bad) assert.throws(() => validateTraceConfig(c), { code: 'TRACE_CONFIG_INVALID' }, JSON.stringify(c));
  assert.throws(() => generateTraceProgram({ points: [{ id: 1, name: 'T3', probes: ['tracepoint:net:netif_receive_skb'], filter: { interface: { ...iface, name: 'x"y' } } }], layouts: [], unknownSamples: 1 }), { code: 'TRACE_PROGRAM_INVALID' });
  assert.throws(() => generateTraceProgram({ points: [{ id: 1, name: 'T4', probes: ['tracepoint:skb:skb_copy_datagram_iovec'], filter: { comm: 'a"' } }], layouts: [], unknownSamples: 1 }), { code: 'TRACE_PROGRAM_INVALID' });
  assert.throws(() => fillTemplate('learn.bt', { SUMMARY: '{{X}}', PROBES: '', FILTER: '', FRAMES_PER_KEY: '1', MAX_FRAMES: '1' }), { code: 'TRACE_TEMPLATE_PARAM' });
  assert.throws(() => fillTemplate('learn.bt', { SUMMARY: '' }), { code: 'TRACE_TEMPLATE_PARAM' });
});

test('svIDs with quotes, backslashes, comment ends and control octets only reach the program as numbers and escaped comments', () => {
  const svId = '4"\\*/\n\x00\xff';
  const layout: FrameLayout = { appId: 0x4001, length: 102, asdus: [{ svId, svIdOffset: 19, svIdTlvBytes: 2, smpCntOffset: 29, smpCntBytes: 2 }] };
  const text = generateTraceProgram({ points: [{ id: 1, name: 'T3', probes: ['tracepoint:net:netif_receive_skb'], filter: { interface: iface } }], layouts: [layout], unknownSamples: 2 });
  assert.ok(!text.includes(svId));
  assert.ok(text.includes(commentText(svId)));
  assert.equal(commentText(svId), '"4\\x22\\x5c\\x2a/\\x0a\\x00\\xff"');
  assert.equal(text.match(/\*\//g)?.length, 1, 'only the header comment closes');
});

function allPrograms(): Array<[string, string]> {
  const layouts: FrameLayout[] = [
    layoutFromFrame(frame([{ svId: '4001', smpCnt: 1 }])),
    layoutFromFrame(frame([{ svId: '4010', smpCnt: 1 }])),
    layoutFromFrame(frame(Array.from({ length: 8 }, (_, i) => ({ svId: 'MU857SJ85Mod2MU103', smpCnt: i })))),
    layoutFromFrame(frame([{ svId: 'y'.repeat(200), smpCnt: 1 }], false)),
    { appId: 0x4002, length: 102, asdus: [{ svId: '4"\\1', svIdOffset: 19, svIdTlvBytes: 2, smpCntOffset: 25, smpCntBytes: 1 }] },
  ];
  const out: Array<[string, string]> = [];
  // Every probe as its own point of one program: one dry run checks them all.
  const points: ProgramPoint[] = Object.entries(PROBES).map(([probe, def], i) => ({
    id: i + 1, name: `P${i + 1}`, probes: [probe],
    filter: def.filter === 'process' ? { pids: [1, 2], comm: 'sv-sub', commPrefix: 'vhost-' } : { interface: iface },
  }));
  out.push(['every probe', generateTraceProgram({ points, layouts, unknownSamples: 4 })]);
  out.push(['no layout', generateTraceProgram({ points: [{ id: 1, name: 'T1', probes: ['tracepoint:net:netif_receive_skb'], filter: { interface: iface } }], layouts: [], unknownSamples: 0 })]);
  out.push(['ring pair', generateTraceProgram({ points: [{ id: 4, name: 'T4', probes: ['tracepoint:skb:consume_skb', 'tracepoint:skb:kfree_skb'], filter: { interface: iface } }], layouts, unknownSamples: 1 })]);
  out.push(['learn', generateLearnProgram({ probes: ['tracepoint:net:netif_receive_skb', 'tracepoint:net:net_dev_start_xmit'], interfaces: [iface, { ...iface, ifindex: 3 }], framesPerKey: 8, maxFrames: 100 })]);
  out.push(['learn all', generateLearnProgram({ probes: ['tracepoint:net:netif_receive_skb'], interfaces: [], framesPerKey: 8, maxFrames: 100 })]);
  return out;
}

test('every generated program passes bpftrace\'s dry run (kprobe programs too, where kprobes are absent)', { skip: SKIP ?? false }, async () => {
  for (const [name, text] of allPrograms()) {
    const r = await dryRun(text);
    assert.ok(r.ok, `${name}:\n${r.messages.join('\n')}`);
    assert.ok(!r.messages.some((m) => /ERROR/.test(m)), `${name}: ${r.messages.join('\n')}`);
  }
  const broken = await dryRun('tracepoint:skb:consume_skb { printf("%d", args->no_such_field); }');
  assert.equal(broken.ok, false, 'the dry run does catch errors');
});

function manyLayouts(streams: number, asdus: number): FrameLayout[] {
  return Array.from({ length: streams }, (_, k) => layoutFromFrame(frame(
    Array.from({ length: asdus }, (_, i) => ({ svId: `SEAPATH_MU_${String(k).padStart(3, '0')}_with_a_long_name`, smpCnt: i })))));
}

test('programs too big for BPF jumps are refused with a hint, before bpftrace fails to load them', () => {
  const pt: ProgramPoint = { id: 1, name: 'T3', probes: ['tracepoint:net:netif_receive_skb'], filter: { interface: iface } };
  assert.throws(() => generateTraceProgram({ points: [pt], layouts: manyLayouts(64, 8), unknownSamples: 1 }), { code: 'TRACE_PROGRAM_TOO_LARGE' });
});

test('the largest programs the generator accepts load into the kernel (48 streams x 8 ASDUs with 35-octet svIDs, two points)', { skip: SKIP ?? false, timeout: 180_000 }, async () => {
  const lo = { name: 'lo', netns: null, ifindex: 1, netnsInode: netnsInode() };
  for (const [streams, asdus] of [[48, 8]] as const) {
    const program = generateTraceProgram({
      points: [{ id: 1, name: 'T3', probes: ['tracepoint:net:netif_receive_skb'], filter: { interface: lo } }, { id: 2, name: 'T2', probes: ['tracepoint:net:net_dev_start_xmit'], filter: { interface: lo } }],
      layouts: manyLayouts(streams, asdus), unknownSamples: 1,
    });
    const run = startBpftrace({ program, readyMarker: 'SVTRACE_READY', onLine: () => {} });
    try {
      await run.ready;
    } finally {
      await run.stop();
    }
  }
});
