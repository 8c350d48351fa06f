/**
 * `svtrace inspect` and `decode` on every public capture in ../shared/fixtures,
 * against what SOURCES.md says of them, and against tshark as a reference decoder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fixture, haveTool, runCli } from '../helpers/cli.ts';
import type { InspectResult } from '../../src/capture/inspect.ts';
import { capturePackets } from '../../src/pcap/index.ts';
import { decodeFrame, encodeFrame } from '../../src/sv/index.ts';

async function inspect(name: string): Promise<InspectResult> {
  const r = await runCli(['inspect', '--json', fixture(name)]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as InspectResult;
}

test('SV_Normal_Traffic.pcap: one tagged 60 Hz stream, 10 161 frames, two wraps, no gaps', async () => {
  const r = await inspect('SV_Normal_Traffic.pcap');
  assert.equal(r.packets, 10161);
  assert.equal(r.streams.length, 1);
  const s = r.streams[0]!;
  assert.equal(s.svId, '4001');
  assert.equal(s.appId, 0x4001);
  assert.equal(s.srcMac, 'ca:fe:c0:ff:ee:69');
  assert.equal(s.dstMac, '01:0c:cd:04:00:02');
  assert.deepEqual(s.vlan, { id: 1, priority: 4 });
  assert.equal(s.frames, 10161);
  assert.equal(s.samples, 10161);
  assert.deepEqual(s.smpCnt, { min: 0, max: 4799 });
  assert.equal(s.wrapAt, 4800);
  assert.equal(s.wraps, 2);
  assert.equal(s.missing + s.duplicates + s.outOfOrder, 0);
  assert.deepEqual(s.asdusPerFrame, [1]);
  assert.deepEqual(s.smpSynch, [2]);
  assert.equal(s.confRev, 1);
  // 208.33 µs mean spacing, min 205, max 211 (SOURCES.md)
  assert.ok(Math.abs(s.pacingUs!.mean - 208.33) < 0.01, String(s.pacingUs!.mean));
  assert.equal(s.pacingUs!.min, 205);
  assert.equal(s.pacingUs!.max, 211);
  assert.ok(Math.abs(s.rateHz! - 4800) < 1, String(s.rateHz));
});

test('50new, pcapCRC32, pcap4000: long-form BER, FCS trailers valid or not, 4000 samples without gaps', async () => {
  for (const name of ['50new.pcap', 'pcapCRC32.pcap']) {
    const r = await inspect(name);
    const s = r.streams[0]!;
    assert.equal(r.streams.length, 1);
    assert.equal(s.svId, 'MU857SJ85Mod2MU103');
    assert.equal(s.appId, 0x4000);
    assert.equal(s.vlan, null);
    assert.equal(s.frames, 80);
    assert.deepEqual(s.smpCnt, { min: 0, max: 79 });
    assert.equal(s.missing, 0);
    assert.equal(r.malformed.count, 0);
  }
  const r = await inspect('pcap4000.pcap');
  assert.equal(r.streams[0]!.frames, 4000);
  assert.deepEqual(r.streams[0]!.smpCnt, { min: 0, max: 3999 });
  assert.equal(r.streams[0]!.missing, 0);
  // long-form lengths of 50new are kept: encode(decode(frame)) gives the frame back up to the Length bound
  for await (const p of capturePackets(fixture('50new.pcap'))) {
    const f = decodeFrame(p.data);
    assert.deepEqual(f.lengthForms, { savPdu: 1, seqAsdu: 1, asdus: [0] });
    const again = encodeFrame(f);
    assert.equal(again.length, p.data.length - 4); // the 4-byte FCS lies beyond the Length bound
    assert.deepEqual(again, p.data.subarray(0, again.length));
  }
});

test('pcapQual.pcap: confRev 2000 and channel qualities good, invalid, reserved, questionable', async () => {
  const r = await runCli(['decode', '--format', 'json', fixture('pcapQual.pcap')]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ confRev: number; quality: number[]; appId: number }>;
  assert.equal(rows.length, 80);
  for (const row of rows) {
    assert.equal(row.confRev, 2000);
    assert.equal(row.appId, 0x4001);
    assert.deepEqual(row.quality.slice(0, 4), [0, 1, 2, 3]);
  }
});

test('encode of every decoded fixture frame reproduces its bytes up to the Length bound', async () => {
  for (const name of ['SV_Normal_Traffic.pcap', '50new.pcap', 'pcapCRC32.pcap', 'pcapQual.pcap', 'pcap4000.pcap']) {
    let n = 0;
    for await (const p of capturePackets(fixture(name))) {
      const again = encodeFrame(decodeFrame(p.data));
      assert.deepEqual(again, p.data.subarray(0, again.length), `${name} packet ${n}`);
      n++;
    }
    assert.ok(n > 0);
  }
});

function tsharkRows(file: string): string[] {
  const r = spawnSync('tshark', ['-r', file, '-o', 'sv.decode_data_as_phsmeas:TRUE', '-T', 'fields', '-E', 'aggregator=;',
    '-e', 'sv.svID', '-e', 'sv.smpCnt', '-e', 'sv.confRev', '-e', 'sv.smpSynch', '-e', 'sv.meas_value', '-e', 'sv.meas_quality', '-Y', 'sv'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr);
  // one line per frame, ASDU fields joined by ';' (values: 8 per ASDU)
  const rows: string[] = [];
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [ids, cnts, revs, synchs, values, quals] = line.split('\t').map((f) => f.split(';'));
    ids!.forEach((id, i) => {
      const v = values!.slice(i * 8, i * 8 + 8).join(',');
      const q = quals!.slice(i * 8, i * 8 + 8).map((x) => Number(x)).join(',');
      rows.push([id, cnts![i], revs![i], synchs![i], v, q].join('|'));
    });
  }
  return rows;
}

async function ourRows(file: string): Promise<string[]> {
  const r = await runCli(['decode', '--format', 'json', file]);
  assert.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ svId: string; smpCnt: number; confRev: number; smpSynch: number; values: number[]; quality: number[] }>;
  return rows.map((x) => [x.svId, x.smpCnt, x.confRev, x.smpSynch, x.values.join(','), x.quality.join(',')].join('|'));
}

test('decode agrees with tshark on every ASDU of every fixture', { skip: haveTool('tshark') ? false : 'tshark is not installed (apt-get install tshark)' }, async () => {
  for (const name of ['SV_Normal_Traffic.pcap', '50new.pcap', 'pcapCRC32.pcap', 'pcapQual.pcap', 'pcap4000.pcap']) {
    const theirs = tsharkRows(fixture(name));
    const ours = await ourRows(fixture(name));
    assert.ok(theirs.length > 0);
    assert.equal(ours.length, theirs.length, name);
    assert.deepEqual(ours, theirs, name);
  }
  assert.ok(readFileSync(fixture('SV_Normal_Traffic.pcap')).length > 0);
});
