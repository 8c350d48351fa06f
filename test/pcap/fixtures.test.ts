import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { capturePackets, copyPacket, readCaptureFile, readCaptureStream, tsNs, type CapturedPacket } from '../../src/pcap/index.ts';
import { digest, epochString, FIXTURES, fixture, skipUnless, tsharkFields } from './helpers.ts';

async function readAll(path: string): Promise<CapturedPacket[]> {
  const out: CapturedPacket[] = [];
  for await (const p of capturePackets(path)) out.push(p);
  return out;
}

for (const { name, frames } of FIXTURES) {
  test(`${name}: ${frames} frames, summary matches the file`, async () => {
    const path = fixture(name);
    const size = readFileSync(path).length;
    let count = 0;
    let firstNs = -1n;
    let lastNs = -1n;
    const summary = await readCaptureFile(path, (p) => {
      if (count === 0) firstNs = tsNs(p);
      lastNs = tsNs(p);
      count++;
      assert.equal(p.linkType, 1);
      assert.equal(p.hasTimestamp, true);
      assert.ok(p.tsNsec % 1000 === 0, 'µs capture gives whole µs');
    });
    assert.equal(count, frames);
    assert.equal(summary.packets, frames);
    assert.equal(summary.format, 'pcap');
    assert.equal(summary.byteOrder, 'little');
    assert.equal(summary.inputBytes, size);
    assert.equal(summary.capturedBytes, size - 24 - 16 * frames);
    assert.equal(summary.truncated, null);
    assert.equal(summary.interfaces.length, 1);
    assert.equal(summary.interfaces[0]?.linkType, 1);
    assert.equal(summary.interfaces[0]?.packets, frames);
    assert.ok(lastNs > firstNs && firstNs > 1_500_000_000_000_000_000n);
  });

  test(`${name}: every timestamp and length agrees with tshark`, { skip: skipUnless('tshark') }, async () => {
    const path = fixture(name);
    const ours = await readAll(path);
    const theirs = tsharkFields(path, ['frame.time_epoch', 'frame.len', 'frame.cap_len']);
    assert.equal(theirs.length, frames);
    assert.equal(ours.length, frames);
    for (let i = 0; i < frames; i++) {
      const [epoch, len, capLen] = theirs[i]!;
      const p = ours[i]!;
      assert.equal(epochString(p.tsNs), epoch, `frame ${i + 1} timestamp`);
      assert.equal(String(p.origLen), len, `frame ${i + 1} length`);
      assert.equal(String(p.data.length), capLen, `frame ${i + 1} captured length`);
    }
  });
}

test('SV_Normal_Traffic.pcap: 120-byte SV frames, 802.1Q-tagged 0x88BA', async () => {
  const packets = await readAll(fixture('SV_Normal_Traffic.pcap'));
  for (const p of packets) {
    assert.equal(p.data.length, 120);
    assert.equal(p.data[12], 0x81);
    assert.equal(p.data[13], 0x00);
    assert.equal(p.data[16], 0x88);
    assert.equal(p.data[17], 0xba);
  }
});

test('readCaptureStream over a Readable with small chunks gives the same packets as readCaptureFile', async () => {
  const path = fixture('pcap4000.pcap');
  const fromFile: CapturedPacket[] = [];
  await readCaptureFile(path, (p) => fromFile.push(copyPacket(p)), { chunkBytes: 1000 });
  const fromStream: CapturedPacket[] = [];
  const summary = await readCaptureStream(createReadStream(path, { highWaterMark: 333 }), (p) => fromStream.push(copyPacket(p)));
  assert.equal(summary.packets, 4000);
  assert.equal(digest(fromStream), digest(fromFile));
  assert.equal(digest(fromFile), digest(await readAll(path)));
});

test("readCaptureFile('-') reads stdin", () => {
  const path = fixture('50new.pcap');
  const script = [
    "import { readCaptureFile } from './src/pcap/index.ts';",
    'let n = 0;',
    "const s = await readCaptureFile('-', () => { n++; });",
    'console.log(JSON.stringify({ n, packets: s.packets, inputBytes: s.inputBytes }));',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    input: readFileSync(path), encoding: 'utf8', cwd: new URL('../..', import.meta.url).pathname,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { n: 80, packets: 80, inputBytes: 12184 });
});
