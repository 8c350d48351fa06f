import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capturePackets, copyPacket, createCaptureParser, createCaptureWriter, parseCapture, readCaptureFile, type CapturedPacket } from '../../src/pcap/index.ts';
import { SvtraceError } from '../../src/errors.ts';
import { digest, fixture, ngBlock, ngEnhancedPacket, ngInterface, ngSectionHeader, option, tempDir } from './helpers.ts';

const tmp = tempDir();
after(tmp.cleanup);

const SV = readFileSync(fixture('SV_Normal_Traffic.pcap'));
const SV_RECORD = 16 + 120;

function parseAll(bytes: Uint8Array): CapturedPacket[] {
  const out: CapturedPacket[] = [];
  parseCapture(bytes, (p) => out.push(copyPacket(p)));
  return out;
}

function errorOf(fn: () => unknown): SvtraceError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SvtraceError, `expected SvtraceError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

test('a pcap cut inside a record: every earlier packet delivered, the cut record reported', () => {
  const all = parseAll(SV);
  for (const [cutInto, expected] of [[10, 16], [16, SV_RECORD], [70, SV_RECORD], [SV_RECORD - 1, SV_RECORD]] as const) {
    const k = 5000;
    const recordAt = 24 + k * SV_RECORD;
    const got: CapturedPacket[] = [];
    const summary = parseCapture(SV.subarray(0, recordAt + cutInto), (p) => got.push(copyPacket(p)));
    assert.equal(got.length, k);
    assert.equal(summary.packets, k);
    assert.equal(digest(got), digest(all.slice(0, k)));
    assert.deepEqual(summary.truncated, { offset: recordAt, expectedBytes: expected, availableBytes: cutInto });
  }
  // cut exactly between records: clean
  assert.equal(parseCapture(SV.subarray(0, 24 + 7 * SV_RECORD), () => undefined).truncated, null);
  // cut inside the file header
  const head = parseCapture(SV.subarray(0, 10), () => undefined);
  assert.deepEqual(head.truncated, { offset: 0, expectedBytes: 24, availableBytes: 10 });
  assert.equal(head.packets, 0);
});

test('a truncated file through readCaptureFile and capturePackets reports the cut', async () => {
  const path = join(tmp.dir, 'cut.pcap');
  writeFileSync(path, SV.subarray(0, 24 + 100 * SV_RECORD + 50));
  const summary = await readCaptureFile(path, () => undefined, { chunkBytes: 4096 });
  assert.equal(summary.packets, 100);
  assert.deepEqual(summary.truncated, { offset: 24 + 100 * SV_RECORD, expectedBytes: SV_RECORD, availableBytes: 50 });
  const gen = capturePackets(path);
  let n = 0;
  let r = await gen.next();
  while (!r.done) {
    n++;
    r = await gen.next();
  }
  assert.equal(n, 100);
  assert.equal(r.value.truncated?.offset, 24 + 100 * SV_RECORD);
});

test('a pcapng cut inside an EPB is reported with the block offset and length', () => {
  const w = createCaptureWriter({ format: 'pcapng' });
  const header = w.header();
  const recs = parseAll(SV).slice(0, 10).map((p) => w.encodeRecord(p.tsNs, p.data));
  const full = Buffer.concat([header, ...recs]);
  const at = header.length + 9 * recs[0]!.length;
  for (const keep of [3, 12, 40]) {
    const got: CapturedPacket[] = [];
    const summary = parseCapture(full.subarray(0, at + keep), (p) => got.push(copyPacket(p)));
    assert.equal(got.length, 9);
    assert.deepEqual(summary.truncated, { offset: at, expectedBytes: keep < 12 ? 12 : recs[0]!.length, availableBytes: keep });
  }
});

test('non-capture input: CAPTURE_UNKNOWN_FORMAT with the magic seen and a hint', () => {
  const text = errorOf(() => parseAll(Buffer.from('hello, this is not a capture')));
  assert.equal(text.code, 'CAPTURE_UNKNOWN_FORMAT');
  assert.match(text.message, /0x68656c6c/);
  assert.equal(text.offset, 0);
  assert.ok(text.hint && text.hint.length > 0);
  const gz = errorOf(() => parseAll(Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0)));
  assert.equal(gz.code, 'CAPTURE_UNKNOWN_FORMAT');
  assert.match(gz.hint ?? '', /gzip/);
  assert.equal(errorOf(() => parseAll(new Uint8Array(0))).code, 'CAPTURE_EMPTY');
  assert.equal(errorOf(() => parseAll(Uint8Array.of(0xd4, 0xc3, 0xb2))).code, 'CAPTURE_UNKNOWN_FORMAT');
});

test('a classic record claiming an absurd length: CAPTURE_CORRUPT at its offset, whatever the chunking', () => {
  const bad = Buffer.from(SV.subarray(0, 24 + 20 * SV_RECORD));
  const at = 24 + 12 * SV_RECORD;
  bad.writeUInt32LE(0x7ffffff0, at + 8);
  for (const chunk of [bad.length, 1, 7]) {
    let n = 0;
    const parser = createCaptureParser(() => n++);
    const e = errorOf(() => {
      for (let o = 0; o < bad.length; o += chunk) parser.push(bad.subarray(o, o + chunk));
    });
    assert.equal(e.code, 'CAPTURE_CORRUPT');
    assert.equal(e.offset, at);
    assert.equal(n, 12);
    // the parser stays failed
    assert.equal(errorOf(() => parser.push(bad.subarray(0, 1))), e);
  }
});

test('corrupt pcapng blocks: CAPTURE_CORRUPT or CAPTURE_UNSUPPORTED with the byte offset', () => {
  const data = new Uint8Array(60).fill(1);
  const shb = ngSectionHeader('le');
  const idb = ngInterface('le', 1, 0);
  const epb = ngEnhancedPacket('le', 0, 1n, data);
  const at = shb.length + idb.length;
  const withEpb = (edit: (b: Buffer) => void): Buffer => {
    const b = Buffer.concat([shb, idb, epb, epb]);
    edit(b);
    return b;
  };
  const cases: [string, Buffer, string, number][] = [
    ['length not a multiple of 4', withEpb((b) => b.writeUInt32LE(94, at + 4)), 'CAPTURE_CORRUPT', at],
    ['length below 12', withEpb((b) => b.writeUInt32LE(8, at + 4)), 'CAPTURE_CORRUPT', at],
    ['length above 256 MiB', withEpb((b) => b.writeUInt32LE(0x20000000, at + 4)), 'CAPTURE_CORRUPT', at],
    ['trailing length differs', withEpb((b) => b.writeUInt32LE(96, at + epb.length - 4)), 'CAPTURE_CORRUPT', at],
    ['captured length beyond the block', withEpb((b) => b.writeUInt32LE(200, at + 20)), 'CAPTURE_CORRUPT', at],
    ['unknown interface', withEpb((b) => b.writeUInt32LE(3, at + 8)), 'CAPTURE_CORRUPT', at],
    ['EPB shorter than its header', Buffer.concat([shb, idb, ngBlock(6, new Uint8Array(8), 'le')]), 'CAPTURE_CORRUPT', at],
    ['bad byte-order magic', withEpb((b) => b.writeUInt32LE(0x11223344, 8)), 'CAPTURE_CORRUPT', 0],
    ['section version 2', withEpb((b) => b.writeUInt16LE(2, 12)), 'CAPTURE_UNSUPPORTED', 0],
    ['IDB option running past the block', Buffer.concat([shb, ngBlock(1, Buffer.concat([Buffer.alloc(8), option(9, Uint8Array.of(9), 'le').fill(0xff, 2, 4)]), 'le')]), 'CAPTURE_CORRUPT', shb.length + 16],
    ['SPB with no interface', Buffer.concat([shb, ngBlock(3, Buffer.alloc(64), 'le')]), 'CAPTURE_CORRUPT', shb.length],
  ];
  for (const [what, bytes, code, offset] of cases) {
    const e = errorOf(() => parseAll(bytes));
    assert.equal(e.code, code, what);
    assert.equal(e.offset, offset, what);
    assert.match(e.message, new RegExp(`offset ${offset}|version`), what);
  }
});

test('random corruption of real captures never hangs, never reads out of bounds, only throws typed errors', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const w = createCaptureWriter({ format: 'pcapng' });
  const ng = Buffer.concat([w.header(), ...parseAll(SV).slice(0, 40).map((p) => w.encodeRecord(p.tsNs, p.data))]);
  const pcap = SV.subarray(0, 24 + 40 * SV_RECORD);
  const outcomes = new Map<string, number>();
  for (const base of [ng, pcap]) {
    for (let i = 0; i < 1500; i++) {
      const b = Buffer.from(base);
      for (let k = 0, m = 1 + rand(4); k < m; k++) b[rand(b.length)] = rand(256);
      const cut = rand(3) === 0 ? b.subarray(0, rand(b.length)) : b;
      try {
        const s = parseCapture(cut, (p) => {
          assert.ok(p.offset >= 0 && p.offset + p.capLen <= p.bytes.length, 'packet within its buffer');
          assert.ok(p.tsNsec >= 0 && p.tsNsec < 1e9);
        });
        assert.ok(s.inputBytes === cut.length);
        outcomes.set('ok', (outcomes.get('ok') ?? 0) + 1);
      } catch (e) {
        assert.ok(e instanceof SvtraceError && e.code.startsWith('CAPTURE_'), `unexpected ${String(e)}`);
        assert.ok(e.offset === undefined || (e.offset >= 0 && e.offset <= cut.length));
        outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
      }
    }
  }
  assert.ok((outcomes.get('CAPTURE_CORRUPT') ?? 0) > 0 && (outcomes.get('ok') ?? 0) > 0, JSON.stringify([...outcomes]));
});

test('file errors name the file; push after end is refused', async () => {
  await assert.rejects(readCaptureFile(join(tmp.dir, 'missing.pcap'), () => undefined), (e: unknown) => e instanceof SvtraceError && e.code === 'CAPTURE_OPEN_FAILED');
  const path = join(tmp.dir, 'garbage.bin');
  writeFileSync(path, 'not a capture at all');
  await assert.rejects(readCaptureFile(path, () => undefined), (e: unknown) => {
    return e instanceof SvtraceError && e.code === 'CAPTURE_UNKNOWN_FORMAT' && e.message.includes(path);
  });
  const parser = createCaptureParser(() => undefined);
  parser.push(SV.subarray(0, 24));
  assert.equal(parser.end().packets, 0);
  assert.equal(errorOf(() => parser.push(SV.subarray(24, 30))).code, 'CAPTURE_PARSER_ENDED');
});
