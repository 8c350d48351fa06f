/**
 * inspect/decode on captures the encoder wrote: several streams (two share an
 * APPID, their svIDs have the same byte sum), multi-ASDU frames, every
 * optional field, known loss/duplicates/reordering, foreign and malformed
 * frames, stdin, a truncated file. Cross-checked with tshark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { haveTool, runCli } from '../helpers/cli.ts';
import { writeCaptureFile, type PacketToWrite } from '../../src/pcap/index.ts';
import { encodeFrame, encodeLe, type SvFrame } from '../../src/sv/index.ts';
import type { InspectResult } from '../../src/capture/inspect.ts';

const dir = mkdtempSync(join(tmpdir(), 'svtrace-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_700_000_000_000_000_000n;
const PERIOD = 250_000n;

function frame(svIds: string[], appId: number, smpCnt: number, src = '02:00:00:00:00:01'): Uint8Array {
  const f: SvFrame = {
    dst: '01:0c:cd:04:00:01', src, vlan: { priority: 4, dei: false, id: 5 }, appId, reserved1: 0, simulated: false, reserved2: 0,
    asdus: svIds.map((svId, i) => ({
      svId, datSet: 'IED1LD0/LLN0$PhsMeas1', smpCnt: (smpCnt + i) % 4000, confRev: 7, smpSynch: 2, smpRate: 4000,
      refrTm: new Uint8Array(8), gmIdentity: Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]),
      seqData: encodeLe([smpCnt, -smpCnt, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0x2000, 0, 0, 0, 0x2000]),
    })),
  };
  return encodeFrame(f);
}

/** 3 streams, 4000 samples each (one second, wrapping once from 3000) with known anomalies in stream "AB". */
function scenario(): PacketToWrite[] {
  const out: PacketToWrite[] = [];
  let t = T0;
  const abOrder: number[] = [];
  for (let i = 0; i < 4000; i++) abOrder.push((3000 + i) % 4000);
  // AB: lose 10..14 (5 samples) and 2000; duplicate 20; swap 30 and 31
  const ab = abOrder.filter((c) => !(c >= 10 && c <= 14) && c !== 2000);
  const i20 = ab.indexOf(20);
  ab.splice(i20 + 1, 0, 20);
  const i30 = ab.indexOf(30);
  [ab[i30], ab[i30 + 1]] = [ab[i30 + 1]!, ab[i30]!];
  for (let i = 0; i < 4000; i++) {
    t += PERIOD;
    if (i < ab.length) out.push({ tsNs: t, data: frame(['AB'], 0x4000, ab[i]!) });
    out.push({ tsNs: t + 1000n, data: frame(['BA'], 0x4000, abOrder[i]!) });
    if (i % 2 === 0) out.push({ tsNs: t + 2000n, data: frame(['MU03/a,b', 'MU03/a,b'], 0x4003, abOrder[i]!, '02:00:00:00:00:03') });
  }
  // a GOOSE frame and a malformed SV frame (Length that lies)
  const goose = frame(['x'], 1, 0).slice(); goose[16] = 0x88; goose[17] = 0xb8;
  out.push({ tsNs: t + 5000n, data: goose });
  const liar = frame(['AB'], 0x4000, 0).slice(); new DataView(liar.buffer).setUint16(20, 900);
  out.push({ tsNs: t + 6000n, data: liar });
  return out;
}

const file = join(dir, 'scenario.pcapng');
const packets = scenario();
await writeCaptureFile(file, packets, { format: 'pcapng' });
// the same without the foreign and malformed frames, for tshark (which accepts a lying Length)
const clean = join(dir, 'clean.pcap');
await writeCaptureFile(clean, packets.slice(0, -2), { format: 'pcap-ns' });

test('inspect reports exactly the loss, duplicates and reordering that were made', async () => {
  const r = await runCli(['inspect', '--json', file]);
  assert.equal(r.code, 0, r.stderr);
  const res = JSON.parse(r.stdout) as InspectResult;
  assert.equal(res.otherFrames, 1);
  assert.equal(res.malformed.count, 1);
  assert.deepEqual(Object.keys(res.malformed.byCode), ['SV_BAD_LENGTH']);
  assert.equal(res.streams.length, 3);
  const [ab, ba, mu3] = res.streams;
  // same APPID, svIDs with the same byte sum: two streams, never merged
  assert.equal(ab!.svId, 'AB');
  assert.equal(ba!.svId, 'BA');
  assert.equal(ab!.missing, 6);
  assert.deepEqual(ab!.gaps.map((g) => [g.fromSmpCnt, g.toSmpCnt, g.iter]), [[10, 14, 1], [2000, 2000, 1]]);
  assert.equal(ab!.duplicates, 1);
  assert.equal(ab!.outOfOrder, 1);
  assert.equal(ab!.samples, 3994);
  assert.equal(ab!.wraps, 1);
  assert.equal(ba!.missing + ba!.duplicates + ba!.outOfOrder, 0);
  assert.equal(ba!.samples, 4000);
  assert.equal(ba!.pacingUs!.p50, 250);
  assert.equal(mu3!.svId, 'MU03/a,b');
  assert.deepEqual(mu3!.asdusPerFrame, [2]);
  assert.equal(mu3!.frames, 2000);
  assert.equal(mu3!.pacingUs!.p50, 500);
  // the human table says it too
  const human = await runCli(['inspect', file]);
  assert.match(human.stdout, /10\.\.14 \(iter 1\)/);
  assert.match(human.stderr + human.stdout, /SV_BAD_LENGTH/);
});

test('decode filters by svID and APPID, and CSV quotes svIDs that need it', async () => {
  const r = await runCli(['decode', '--format', 'csv', '--svid', 'MU03/a,b', file]);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1 + 4000);
  assert.match(lines[1]!, /^\d+,[0-9T:.-]+Z,\d+,"MU03\/a,b",0x4003,3000,7,2,3000,-3000,3,4,5,6,7,8,0x0,0x0,0x0,0x2000,/);
  const byApp = await runCli(['decode', '--format', 'json', '--appid', '4000', file]);
  const rows = JSON.parse(byApp.stdout) as Array<{ svId: string }>;
  assert.equal(rows.length, 3995 + 4000);
  assert.ok(rows.every((x) => x.svId === 'AB' || x.svId === 'BA'));
  const bad = await runCli(['decode', '--appid', 'zz', file]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /hint: write APPIDs in hex/);
});

test('tshark reads the frames the encoder wrote and agrees on every ASDU', { skip: haveTool('tshark') ? false : 'tshark is not installed' }, async () => {
  const t = spawnSync('tshark', ['-r', clean, '-T', 'fields', '-E', 'aggregator=;', '-e', 'sv.svID', '-e', 'sv.smpCnt', '-e', 'sv.datSet', '-e', 'sv.smpRate', '-e', '_ws.expert', '-Y', 'sv && !_ws.malformed'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(t.status, 0, t.stderr);
  const theirs: string[] = [];
  for (const line of t.stdout.split('\n').filter(Boolean)) {
    const [ids, cnts, ds, rates, expert] = line.split('\t');
    assert.equal(expert, '', `tshark flags a frame: ${line}`);
    ids!.split(';').forEach((id, i) => theirs.push(`${id}|${cnts!.split(';')[i]}|${ds!.split(';')[i]}|${rates!.split(';')[i]}`));
  }
  const ours = JSON.parse((await runCli(['decode', '--format', 'json', clean])).stdout) as Array<{ svId: string; smpCnt: number }>;
  assert.equal(theirs.length, ours.length);
  assert.deepEqual(theirs, ours.map((x) => `${x.svId}|${x.smpCnt}|IED1LD0/LLN0$PhsMeas1|4000`));
});

test('reads stdin with -, and reports a truncated last record while keeping what came before', async () => {
  const bytes = readFileSync(file);
  const viaStdin = await runCli(['inspect', '--json', '-'], { input: bytes });
  assert.equal(viaStdin.code, 0, viaStdin.stderr);
  assert.equal((JSON.parse(viaStdin.stdout) as InspectResult).streams.length, 3);
  const cut = bytes.subarray(0, bytes.length - 50);
  const r = await runCli(['inspect', '--json', '-'], { input: cut });
  const res = JSON.parse(r.stdout) as InspectResult;
  assert.ok(res.truncated, 'truncation reported');
  assert.equal(res.packets, 3995 + 4000 + 2000 + 1); // all but the cut malformed frame
  const d = await runCli(['decode', '-'], { input: cut });
  assert.equal(d.code, 0);
  assert.match(d.stderr, /ends inside a record/);
});

test('errors say what to do: missing file, not a capture', async () => {
  const missing = await runCli(['inspect', join(dir, 'nope.pcap')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /error CAPTURE_/);
  const text = join(dir, 'text.pcap');
  writeFileSync(text, 'hello, this is not a capture\n');
  const notCapture = await runCli(['inspect', text]);
  assert.equal(notCapture.code, 2);
  assert.match(notCapture.stderr, /CAPTURE_UNKNOWN_FORMAT[\s\S]*hint:/);
});
