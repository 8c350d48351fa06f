import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyPacket, createCaptureParser, parseCapture, writeCaptureFile, type CapturedPacket, type CaptureSummary } from '../../src/pcap/index.ts';
import { digest, fixture, handmadePcapng, run, skipUnless, tempDir } from './helpers.ts';

const tmp = tempDir();
after(tmp.cleanup);

function readInChunks(bytes: Uint8Array, chunkBytes: number): { packets: CapturedPacket[]; summary: CaptureSummary } {
  const packets: CapturedPacket[] = [];
  const parser = createCaptureParser((p) => packets.push(copyPacket(p)));
  // Reuse one chunk buffer, as readCaptureFile does, so a parser that kept a reference would read overwritten bytes.
  const chunk = new Uint8Array(chunkBytes);
  for (let off = 0; off < bytes.length; off += chunkBytes) {
    const n = Math.min(chunkBytes, bytes.length - off);
    chunk.set(bytes.subarray(off, off + n));
    parser.push(chunk.subarray(0, n));
    chunk.fill(0xee);
  }
  return { packets, summary: parser.end() };
}

async function inputs(): Promise<{ label: string; bytes: Uint8Array }[]> {
  const list = [{ label: 'pcap4000.pcap (µs pcap)', bytes: readFileSync(fixture('pcap4000.pcap')) as Uint8Array }];
  const whole: CapturedPacket[] = [];
  parseCapture(readFileSync(fixture('50new.pcap')), (p) => whole.push(copyPacket(p)));
  for (const format of ['pcap-ns', 'pcapng'] as const) {
    const path = join(tmp.dir, `chunk.${format}`);
    await writeCaptureFile(path, whole, { format, byteOrder: format === 'pcapng' ? 'big' : 'little' });
    list.push({ label: `50new as ${format}`, bytes: readFileSync(path) });
  }
  const frames = whole.slice(0, 5).map((p, i) => p.data.subarray(0, 60 + i));
  list.push({ label: 'hand-built pcapng (2 sections, SPB, skipped blocks)', bytes: handmadePcapng(frames).bytes });
  if (skipUnless('editcap') === false) {
    const path = join(tmp.dir, 'chunk-editcap.pcapng');
    run('editcap', ['-F', 'pcapng', fixture('50new.pcap'), path]);
    list.push({ label: '50new via editcap -F pcapng', bytes: readFileSync(path) });
  }
  return list;
}

test('feeding a capture in chunks of 1, 7, 4096 bytes gives what one push gives', async () => {
  for (const { label, bytes } of await inputs()) {
    const whole = readInChunks(bytes, bytes.length);
    assert.ok(whole.packets.length >= 5, label);
    for (const size of [1, 7, 4096]) {
      const got = readInChunks(bytes, size);
      assert.equal(got.packets.length, whole.packets.length, `${label} in ${size}-byte chunks`);
      assert.equal(digest(got.packets), digest(whole.packets), `${label} in ${size}-byte chunks`);
      assert.deepEqual(got.summary, whole.summary, `${label} in ${size}-byte chunks`);
    }
  }
});

test('SV_Normal_Traffic.pcap in 1-byte chunks', () => {
  const bytes = readFileSync(fixture('SV_Normal_Traffic.pcap'));
  const one = readInChunks(bytes, 1);
  const whole = readInChunks(bytes, bytes.length);
  assert.equal(one.packets.length, 10161);
  assert.equal(digest(one.packets), digest(whole.packets));
});

test('empty chunks change nothing', () => {
  const bytes = readFileSync(fixture('50new.pcap'));
  let n = 0;
  const parser = createCaptureParser(() => n++);
  parser.push(new Uint8Array(0));
  parser.push(bytes.subarray(0, 100));
  parser.push(new Uint8Array(0));
  parser.push(bytes.subarray(100));
  parser.push(new Uint8Array(0));
  assert.equal(parser.end().packets, 80);
  assert.equal(n, 80);
});
