/**
 * Rewriting captured frames for replay (src/publish/replay-rewrite.ts),
 * checked against the codec: decode the original, change it, encode it with
 * the original's length forms, put the trailer back: the rewrite must give
 * the same bytes. BER lengths that outgrow 127 and 255 take the long forms;
 * tshark decodes every rewritten frame without a complaint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFrameScan, decodeFrame, encodeFrame, encodeLe, parseMac, scanFrame, type SvFrame } from '../../src/sv/index.ts';
import { rewriteFrame, rewrittenSizeBound, type FrameRewrite } from '../../src/publish/replay-rewrite.ts';
import { capturePackets, writeCaptureFile } from '../../src/pcap/index.ts';
import { fixture, haveTool } from '../helpers/cli.ts';

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

function frameOf(asdus: number, svId: string, opts: { datSet?: string; vlan?: boolean; security?: boolean } = {}): SvFrame {
  return {
    dst: '01:0c:cd:04:00:01', src: '02:00:00:00:00:01', appId: 0x4000, reserved1: 0, simulated: false, reserved2: 0,
    ...(opts.vlan ? { vlan: { priority: 4, dei: false, id: 7 } } : {}),
    ...(opts.security ? { security: Uint8Array.of(1, 2, 3) } : {}),
    asdus: Array.from({ length: asdus }, (_, i) => ({
      svId, smpCnt: 100 + i, confRev: 1, smpSynch: 2, seqData: encodeLe([i, 2, 3, 4, 5, 6, 7, 8]),
      ...(opts.datSet ? { datSet: opts.datSet } : {}), refrTm: new Uint8Array(8).fill(9), smpRate: 4000,
    })),
  };
}

/** The codec's answer: decode, change, re-encode with the original length forms, trailer back. */
function reference(bytes: Uint8Array, r: FrameRewrite, svIdText: string[] | null): Uint8Array {
  const f = decodeFrame(bytes);
  const scan = createFrameScan();
  scanFrame(bytes, 0, bytes.length, scan);
  const trailer = bytes.subarray(scan.svHeader + scan.length);
  f.asdus.forEach((a, i) => {
    if (svIdText) a.svId = svIdText[i]!;
    if (r.smpCnt) a.smpCnt = r.smpCnt[i]!;
  });
  if (r.appId >= 0) f.appId = r.appId;
  if (r.srcMac) f.src = [...r.srcMac].map((x) => x.toString(16).padStart(2, '0')).join(':');
  const body = encodeFrame(f);
  const out = new Uint8Array(body.length + trailer.length);
  out.set(body); out.set(trailer, body.length);
  return out;
}

function rewrite(bytes: Uint8Array, r: FrameRewrite): Uint8Array {
  const scan = createFrameScan();
  assert.equal(scanFrame(bytes, 0, bytes.length, scan), 0);
  const out = new Uint8Array(rewrittenSizeBound(bytes.length, scan.asduCount, Math.max(0, ...(r.svIds ?? []).map((s) => s.length))) + 7);
  out.fill(0xee);
  const len = rewriteFrame(bytes, scan, r, out, 3);
  return out.slice(3, 3 + len);
}

const keep: FrameRewrite = { smpCnt: null, svIds: null, appId: -1, srcMac: null };

test('a rewrite that changes nothing gives the frame byte for byte (trailer and FCS included)', async () => {
  for await (const p of capturePackets(fixture('50new.pcap'))) {
    assert.deepEqual(rewrite(p.data, keep), p.data);
  }
});

test('smpCnt is patched in place: only its two octets differ', () => {
  const bytes = encodeFrame(frameOf(4, 'MU01', { vlan: true }));
  const got = rewrite(bytes, { ...keep, smpCnt: [4797, 4798, 4799, 0] });
  assert.equal(got.length, bytes.length);
  assert.deepEqual(decodeFrame(got).asdus.map((a) => a.smpCnt), [4797, 4798, 4799, 0]);
  let diff = 0;
  for (let i = 0; i < got.length; i++) if (got[i] !== bytes[i]) diff++;
  assert.ok(diff > 0 && diff <= 8, `${diff} octets differ`);
});

test('renaming to svIDs of other lengths re-encodes every length as the codec does, short and long forms', () => {
  const cases: Array<{ name: string; frame: SvFrame; svIds: string[] }> = [
    { name: 'shorter svID', frame: frameOf(1, 'MU857SJ85Mod2MU103'), svIds: ['M1'] },
    { name: 'ASDU grows past 127: short → 0x81', frame: frameOf(1, 'MU01'), svIds: ['X'.repeat(60)] },
    { name: 'seqASDU and savPdu grow past 255: 0x81 → 0x82', frame: frameOf(2, 'MU01', { datSet: 'LD0/LLN0$PhsMeas1' }), svIds: ['A'.repeat(120), 'B'.repeat(129)] },
    { name: 'ASDU shrinks below 128 but keeps its long form', frame: frameOf(1, 'Y'.repeat(70)), svIds: ['short'] },
    { name: 'VLAN, security, 8 ASDUs', frame: frameOf(8, 'IED1/LD0', { vlan: true, security: true }), svIds: Array.from({ length: 8 }, (_, i) => `copy-${i}-of-IED1/LD0`) },
  ];
  for (const c of cases) {
    const bytes = encodeFrame(c.frame);
    const trailer = Uint8Array.of(0xde, 0xad, 0xbe, 0xef); // an FCS kept from the capture
    const captured = new Uint8Array(bytes.length + 4);
    captured.set(bytes); captured.set(trailer, bytes.length);
    const r: FrameRewrite = { smpCnt: c.svIds.map((_, i) => (4790 + i) % 4800), svIds: c.svIds.map(latin1), appId: 0x4123, srcMac: parseMac('02:00:00:00:01:07') };
    const got = rewrite(captured, r);
    assert.deepEqual(got, reference(captured, r, c.svIds), c.name);
    const back = decodeFrame(got);
    assert.deepEqual(back.asdus.map((a) => a.svId), c.svIds, c.name);
    assert.deepEqual(got.subarray(got.length - 4), trailer, `${c.name}: trailer kept`);
    assert.deepEqual(back.asdus.map((a) => a.seqData), decodeFrame(captured).asdus.map((a) => a.seqData), c.name);
  }
  // the forms themselves, read off the wire
  const grown = rewrite(encodeFrame(frameOf(2, 'MU01')), { ...keep, svIds: [latin1('A'.repeat(120)), latin1('B'.repeat(129))] });
  const pdu = grown.indexOf(0x60, 22);
  assert.deepEqual([...grown.subarray(pdu, pdu + 2)], [0x60, 0x82], 'savPdu takes 0x82 LL LL');
  const kept = decodeFrame(rewrite(encodeFrame(frameOf(1, 'Y'.repeat(70))), { ...keep, svIds: [latin1('short')] }));
  assert.equal(kept.lengthForms!.asdus[0], 1, 'a long form on the wire stays long');
});

test('the public captures with long-form BER lengths (50new) keep their forms when renamed', async () => {
  for await (const p of capturePackets(fixture('50new.pcap'))) {
    const before = decodeFrame(p.data).lengthForms!;
    const got = rewrite(p.data, { ...keep, svIds: [latin1('M')] });
    assert.deepEqual(decodeFrame(got).lengthForms, before);
    assert.deepEqual(got, reference(p.data, { ...keep, svIds: [latin1('M')] }, ['M']));
  }
});

test('tshark decodes rewritten frames with no malformed frame or expert warning', { skip: haveTool('tshark') ? false : 'needs tshark (apt-get install tshark)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-rewrite-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const frames: Uint8Array[] = [];
  for (const [asdus, name] of [[1, 'X'.repeat(60)], [2, 'B'.repeat(129)], [8, 'copy-of-IED']] as const) {
    const bytes = encodeFrame(frameOf(asdus, 'MU01', { vlan: true }));
    frames.push(rewrite(bytes, { smpCnt: Array.from({ length: asdus }, (_, i) => 4799 - i), svIds: Array.from({ length: asdus }, () => latin1(name)), appId: 0x4001, srcMac: null }));
  }
  for await (const p of capturePackets(fixture('SV_Normal_Traffic.pcap'))) {
    if (frames.length > 20) break;
    frames.push(rewrite(p.data, { smpCnt: [1], svIds: [latin1('renamed-4001-with-a-much-longer-svID')], appId: 0x4002, srcMac: null }));
  }
  const file = join(dir, 'rewritten.pcap');
  await writeCaptureFile(file, frames.map((data, i) => ({ tsNs: BigInt(i) * 1000n, data })), { format: 'pcap-ns' });
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'sv.svID', '-e', 'sv.smpCnt', '-e', '_ws.malformed', '-e', '_ws.expert'], { encoding: 'utf8' });
  const lines = out.replace(/\n$/, '').split('\n');
  assert.equal(lines.length, frames.length);
  assert.equal(lines[0], `${'X'.repeat(60)}\t4799\t\t`);
  assert.equal(lines[1], `${'B'.repeat(129)},${'B'.repeat(129)}\t4799,4798\t\t`);
  for (const l of lines) assert.match(l, /^[^\t]+\t[0-9,]+\t\t$/, 'no malformed frame, no expert info');
});
