import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capturePackets, copyPacket, parseCapture, readCaptureFile, type CapturedPacket, type PacketView } from '../../src/pcap/index.ts';
import { digest, epochString, fixture, handmadePcapng, run, skipUnless, tempDir, tsharkFields, type HandmadePacket } from './helpers.ts';

const tmp = tempDir();
after(tmp.cleanup);

async function readAll(path: string): Promise<CapturedPacket[]> {
  const out: CapturedPacket[] = [];
  for await (const p of capturePackets(path)) out.push(p);
  return out;
}

for (const [editcapFormat, ourFormat] of [['pcapng', 'pcapng'], ['nsecpcap', 'pcap-ns'], ['modpcap', 'pcap-modified']] as const) {
  test(`editcap -F ${editcapFormat} of a fixture reads as the same packets`, { skip: skipUnless('editcap') }, async () => {
    const src = fixture('SV_Normal_Traffic.pcap');
    const out = join(tmp.dir, `editcap.${editcapFormat}`);
    // -a adds a comment option to frame 3's EPB in pcapng: options after the data must be skipped.
    run('editcap', ['-F', editcapFormat, ...(editcapFormat === 'pcapng' ? ['-a', '3:a comment on frame 3'] : []), src, out]);
    const back: CapturedPacket[] = [];
    const summary = await readCaptureFile(out, (p) => back.push(copyPacket(p)));
    assert.equal(summary.format, ourFormat);
    assert.equal(summary.packets, 10161);
    assert.equal(summary.truncated, null);
    assert.equal(digest(back), digest(await readAll(src)));
  });
}

test('mergecap -I none of a µs and a ns capture: two interfaces with their own resolutions, as tshark sees them', { skip: skipUnless('editcap', 'mergecap', 'tshark') }, async () => {
  const ns = join(tmp.dir, 'ns.pcap');
  run('editcap', ['-F', 'nsecpcap', fixture('50new.pcap'), ns]);
  const merged = join(tmp.dir, 'merged.pcapng');
  run('mergecap', ['-I', 'none', '-F', 'pcapng', '-w', merged, fixture('pcapQual.pcap'), ns]);
  const seen: { ts: string; iface: number; len: number }[] = [];
  const summary = await readCaptureFile(merged, (p) => seen.push({ ts: epochString(copyPacket(p).tsNs), iface: p.interfaceId, len: p.origLen }));
  assert.equal(summary.format, 'pcapng');
  assert.equal(summary.interfaces.length, 2);
  const resolutions = summary.interfaces.map((i) => i.tsResolution.exponent).sort();
  assert.deepEqual(resolutions, [6, 9]);
  assert.deepEqual(summary.interfaces.map((i) => i.packets), [80, 80]);
  const rows = tsharkFields(merged, ['frame.time_epoch', 'frame.interface_id', 'frame.len']);
  assert.deepEqual(seen, rows.map(([ts, iface, len]) => ({ ts: ts!, iface: Number(iface), len: Number(len) })));
});

async function fixtureFrames(): Promise<Uint8Array[]> {
  return (await readAll(fixture('50new.pcap'))).slice(0, 5).map((p, i) => p.data.subarray(0, 60 + i)); // odd lengths exercise padding
}

test('hand-built pcapng: sections in both byte orders, 2 interfaces at 10^-6 and 2^-30 (+ if_tsoffset), ns and ms, SPB, skipped NRB/ISB/custom', async () => {
  const { bytes, expected } = handmadePcapng(await fixtureFrames());
  const got: HandmadePacket[] = [];
  const summary = parseCapture(bytes, (p: PacketView) => {
    const c = copyPacket(p);
    got.push({ ts: p.hasTimestamp ? c.tsNs : null, iface: p.interfaceId, section: p.sectionIndex, data: c.data, origLen: p.origLen });
  });
  assert.deepEqual(got, expected);
  assert.equal(summary.sections, 2);
  assert.equal(summary.byteOrder, 'little');
  assert.deepEqual(summary.interfaces.map((i) => [i.sectionIndex, i.interfaceId, i.tsResolution.base, i.tsResolution.exponent, i.tsOffsetSec, i.name]), [
    [0, 0, 10, 6, 0, 'eth0'], [0, 1, 2, 30, 100, 'vm-port'], [1, 0, 10, 9, 0, null], [1, 1, 10, 3, 0, null],
  ]);
  assert.deepEqual(summary.interfaces.map((i) => i.packets), [2, 1, 1, 1]);
});

test('hand-built pcapng: tshark agrees on every timestamped packet (independent check of 2^-30 and if_tsoffset)', { skip: skipUnless('tshark') }, async () => {
  const { bytes, expected } = handmadePcapng(await fixtureFrames());
  const path = join(tmp.dir, 'handmade.pcapng');
  writeFileSync(path, bytes);
  // tshark 4 lists each Custom Block as a record without an interface: leave those out.
  const all = tsharkFields(path, ['frame.time_epoch', 'frame.len', 'frame.cap_len', 'frame.interface_id']);
  const rows = all.filter((r) => (r[3] ?? '') !== '');
  assert.equal(all.length - rows.length, 2, 'the two custom blocks');
  assert.equal(rows.length, expected.length);
  rows.forEach(([ts, len, capLen, iface], i) => {
    assert.equal(iface, String(expected[i]!.iface));
    const e = expected[i]!;
    if (e.ts !== null) assert.equal(ts, epochString(e.ts), `packet ${i + 1}`);
    assert.equal(len, String(e.origLen));
    assert.equal(capLen, String(e.data.length));
  });
  // and our reader on the file agrees with the in-memory reading
  assert.equal(digest(await readAll(path)), digest(expected.map((e) => ({ tsNs: e.ts ?? 0n, data: e.data, origLen: e.origLen, interfaceId: e.iface, linkType: 1 }))));
});

test('big-endian classic pcap made by byte-swapping a fixture header and records', async () => {
  const src = readFileSync(fixture('pcap4000.pcap'));
  const be = Buffer.from(src);
  const swap32 = (o: number): void => {
    be.writeUInt32BE(src.readUInt32LE(o), o);
  };
  const swap16 = (o: number): void => {
    be.writeUInt16BE(src.readUInt16LE(o), o);
  };
  swap32(0); swap16(4); swap16(6); swap32(8); swap32(12); swap32(16); swap32(20);
  for (let o = 24; o < src.length; o += 16 + src.readUInt32LE(o + 8)) {
    for (let k = 0; k < 16; k += 4) swap32(o + k);
  }
  assert.equal(be.readUInt32BE(0), 0xa1b2c3d4);
  const got: CapturedPacket[] = [];
  const summary = parseCapture(be, (p) => got.push(copyPacket(p)));
  assert.equal(summary.byteOrder, 'big');
  assert.equal(summary.packets, 4000);
  assert.equal(digest(got), digest(await readAll(fixture('pcap4000.pcap'))));
});
