import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  capturePackets, createCaptureWriter, openCaptureSink, parseCapture, readCaptureFile, writeCaptureFile,
  copyPacket, type CapturedPacket, type CaptureWriteFormat,
} from '../../src/pcap/index.ts';
import { digest, epochString, fixture, skipUnless, tempDir, tsharkFields } from './helpers.ts';
import { SvtraceError } from '../../src/errors.ts';

const tmp = tempDir();
after(tmp.cleanup);

async function readAll(path: string): Promise<CapturedPacket[]> {
  const out: CapturedPacket[] = [];
  for await (const p of capturePackets(path)) out.push(p);
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SvtraceError, `expected SvtraceError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected an error');
}

const variants: { format: CaptureWriteFormat; byteOrder: 'little' | 'big'; readAs: string }[] = [
  { format: 'pcap', byteOrder: 'little', readAs: 'pcap' },
  { format: 'pcap-ns', byteOrder: 'little', readAs: 'pcap-ns' },
  { format: 'pcapng', byteOrder: 'little', readAs: 'pcapng' },
  { format: 'pcap', byteOrder: 'big', readAs: 'pcap' },
  { format: 'pcap-ns', byteOrder: 'big', readAs: 'pcap-ns' },
  { format: 'pcapng', byteOrder: 'big', readAs: 'pcapng' },
];

for (const name of ['SV_Normal_Traffic.pcap', '50new.pcap']) {
  for (const v of variants) {
    const label = `${name} → ${v.format} (${v.byteOrder}-endian) → read back`;
    test(`${label}: same bytes and ns timestamps`, async () => {
      const original = await readAll(fixture(name));
      const out = join(tmp.dir, `${name}.${v.format}.${v.byteOrder}`);
      const written = await writeCaptureFile(out, original, { format: v.format, byteOrder: v.byteOrder, interfaceName: 'sv0' });
      assert.equal(written.packets, original.length);
      assert.equal(written.bytes, readFileSync(out).length);
      const back: CapturedPacket[] = [];
      const summary = await readCaptureFile(out, (p) => back.push(copyPacket(p)));
      assert.equal(summary.format, v.readAs);
      assert.equal(summary.byteOrder, v.byteOrder);
      assert.equal(summary.truncated, null);
      assert.equal(back.length, original.length);
      assert.equal(digest(back), digest(original));
      if (v.format === 'pcapng') {
        assert.deepEqual(summary.interfaces[0]?.tsResolution, { base: 10, exponent: 9 });
        assert.equal(summary.interfaces[0]?.name, 'sv0');
      }
    });

    test(`${label}: tshark reads what we wrote`, { skip: skipUnless('tshark') }, async () => {
      const out = join(tmp.dir, `${name}.${v.format}.${v.byteOrder}.tshark`);
      const original = await readAll(fixture(name));
      await writeCaptureFile(out, original, { format: v.format, byteOrder: v.byteOrder });
      const rows = tsharkFields(out, ['frame.time_epoch', 'frame.len', 'frame.cap_len']);
      assert.equal(rows.length, original.length);
      rows.forEach(([epoch, len, capLen], i) => {
        const p = original[i]!;
        assert.equal(epoch, epochString(p.tsNs), `frame ${i + 1}`);
        assert.equal(len, String(p.origLen));
        assert.equal(capLen, String(p.data.length));
      });
    });
  }
}

test('writing a fixture as µs pcap with its snaplen reproduces the file byte for byte', async () => {
  for (const name of ['SV_Normal_Traffic.pcap', '50new.pcap', 'pcap4000.pcap']) {
    const src = readFileSync(fixture(name));
    const original = await readAll(fixture(name));
    const snapLen = src.readUInt32LE(16);
    const out = join(tmp.dir, `${name}.identical.pcap`);
    await writeCaptureFile(out, original, { format: 'pcap', snapLen });
    assert.ok(readFileSync(out).equals(src), name);
  }
});

test('openCaptureSink with a small buffer (flushes, records larger than the buffer) writes the same file', async () => {
  const original = await readAll(fixture('50new.pcap'));
  const big = { tsNs: 1_700_000_000_123_456_789n, data: new Uint8Array(5000).fill(0xab) };
  const packets = [...original, big, ...original.slice(0, 3)];
  const reference = join(tmp.dir, 'sink-ref.pcapng');
  await writeCaptureFile(reference, packets, { format: 'pcapng' });
  const out = join(tmp.dir, 'sink-small.pcapng');
  const sink = await openCaptureSink(out, { format: 'pcapng', bufferBytes: 1000 });
  for (const p of packets) await sink.write(p.tsNs, p.data);
  assert.equal(sink.packets, packets.length);
  await sink.close();
  assert.ok(readFileSync(out).equals(readFileSync(reference)));
  assert.throws(() => sink.write(0n, new Uint8Array(1)), (e: unknown) => e instanceof SvtraceError && e.code === 'CAPTURE_SINK_CLOSED');
  const back = await readAll(out);
  assert.equal(back[original.length]?.tsNs, big.tsNs);
  assert.equal(back[original.length]?.data.length, 5000);
});

test('openCaptureSink respects backpressure on a slow reader (a FIFO drained by cat)', { skip: skipUnless('mkfifo', 'cat') }, async () => {
  const fifo = join(tmp.dir, 'slow.fifo');
  const copy = join(tmp.dir, 'slow.copy.pcap');
  execFileSync('mkfifo', [fifo]);
  const reader = spawn('sh', ['-c', `cat "${fifo}" > "${copy}"`]);
  const exited = new Promise<number | null>((resolve) => reader.on('exit', resolve));
  const original = await readAll(fixture('SV_Normal_Traffic.pcap'));
  const sink = await openCaptureSink(fifo, { format: 'pcap', bufferBytes: 64 * 1024 });
  let waits = 0;
  for (const p of original) {
    const wait = sink.write(p.tsNs, p.data);
    if (wait) {
      waits++;
      await wait;
    }
  }
  await sink.close();
  assert.equal(await exited, 0);
  assert.ok(waits > 0, 'the stream asked the writer to wait at least once');
  assert.equal(digest(await readAll(copy)), digest(original));
});

test("openCaptureSink('-') writes a capture to stdout", () => {
  const script = [
    "import { openCaptureSink } from './src/pcap/index.ts';",
    "const sink = await openCaptureSink('-', { format: 'pcap-ns' });",
    'for (let i = 0; i < 3; i++) sink.write(1_700_000_000_000_000_001n + BigInt(i), new Uint8Array(60).fill(i));',
    'await sink.close();',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url).pathname,
  });
  assert.equal(r.status, 0, r.stderr.toString());
  const got: bigint[] = [];
  const summary = parseCapture(r.stdout, (p) => got.push(copyPacket(p).tsNs));
  assert.equal(summary.format, 'pcap-ns');
  assert.deepEqual(got, [1_700_000_000_000_000_001n, 1_700_000_000_000_000_002n, 1_700_000_000_000_000_003n]);
});

test('snapLen cuts long packets and keeps their original length', { skip: skipUnless('tshark') }, async () => {
  const out = join(tmp.dir, 'snap.pcapng');
  await writeCaptureFile(out, [{ tsNs: 1_600_000_000_000_000_000n, data: new Uint8Array(200).fill(7) }], { format: 'pcapng', snapLen: 100 });
  const [p] = await readAll(out);
  assert.equal(p?.data.length, 100);
  assert.equal(p?.origLen, 200);
  assert.deepEqual(tsharkFields(out, ['frame.len', 'frame.cap_len']), [['200', '100']]);
});

test('µs pcap truncates sub-µs timestamps; ns pcap and pcapng keep them', async () => {
  const ts = 1_700_000_000_123_456_789n;
  for (const [format, expected] of [['pcap', 1_700_000_000_123_456_000n], ['pcap-ns', ts], ['pcapng', ts]] as const) {
    const w = createCaptureWriter({ format });
    const bytes = new Uint8Array([...w.header(), ...w.encodeRecord(ts, new Uint8Array(61))]);
    const got: bigint[] = [];
    parseCapture(bytes, (p) => got.push(copyPacket(p).tsNs));
    assert.deepEqual(got, [expected], format);
  }
});

test('pcapng records are padded to 4 bytes with zeros and carry both lengths', () => {
  const w = createCaptureWriter({ format: 'pcapng' });
  const rec = w.encodeRecord(5n, Uint8Array.of(1, 2, 3, 4, 5), 9);
  assert.equal(rec.length, 40);
  assert.equal(w.recordBytes(5), 40);
  const dv = new DataView(rec.buffer);
  assert.equal(dv.getUint32(4, true), 40);
  assert.equal(dv.getUint32(36, true), 40);
  assert.equal(dv.getUint32(20, true), 5);
  assert.equal(dv.getUint32(24, true), 9);
  assert.deepEqual([...rec.subarray(28, 36)], [1, 2, 3, 4, 5, 0, 0, 0]);
});

test('writer rejects what a file cannot hold', () => {
  const pcap = createCaptureWriter({ format: 'pcap' });
  const ng = createCaptureWriter({ format: 'pcapng' });
  const data = new Uint8Array(60);
  assert.equal(codeOf(() => pcap.encodeRecord(-1n, data)), 'CAPTURE_TIMESTAMP_RANGE');
  assert.equal(codeOf(() => pcap.encodeRecord(2n ** 32n * 1_000_000_000n, data)), 'CAPTURE_TIMESTAMP_RANGE');
  assert.equal(codeOf(() => ng.encodeRecord(2n ** 64n, data)), 'CAPTURE_TIMESTAMP_RANGE');
  assert.equal(codeOf(() => ng.encodeRecord(0n, data, 59)), 'CAPTURE_BAD_RECORD');
  assert.equal(codeOf(() => ng.encodeRecordInto(new Uint8Array(50), 0, 0n, data)), 'CAPTURE_BUFFER_TOO_SMALL');
  assert.equal(codeOf(() => createCaptureWriter({ format: 'pcapx' as CaptureWriteFormat })), 'CAPTURE_WRITER_OPTIONS');
  assert.equal(codeOf(() => createCaptureWriter({ format: 'pcap', linkType: 70000 })), 'CAPTURE_WRITER_OPTIONS');
  assert.equal(codeOf(() => createCaptureWriter({ format: 'pcap', snapLen: 0 })), 'CAPTURE_WRITER_OPTIONS');
  // the largest pcapng timestamp still round-trips
  const max = 2n ** 64n - 1n;
  const got: bigint[] = [];
  parseCapture(new Uint8Array([...ng.header(), ...ng.encodeRecord(max, data)]), (p) => got.push(copyPacket(p).tsNs));
  assert.deepEqual(got, [max]);
});

test('openCaptureSink into a missing directory fails with CAPTURE_WRITE_FAILED', async () => {
  await assert.rejects(openCaptureSink(join(tmp.dir, 'no/such/dir/x.pcap'), { format: 'pcap' }), (e: unknown) => {
    return e instanceof SvtraceError && e.code === 'CAPTURE_WRITE_FAILED' && e.hint !== undefined;
  });
});
