// `trace --layouts-from CAPTURE`: the frame layouts of a public capture are the ones learnt from its
// frames one by one; a capture without SV is refused with a hint.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutsFromCapture } from '../../src/trace/layout-capture.ts';
import { layoutFromFrame, layoutKey } from '../../src/trace/layout.ts';
import { capturePackets, writeCaptureFile } from '../../src/pcap/index.ts';
import { SvtraceError } from '../../src/errors.ts';

const FIXTURES = join(import.meta.dirname, '../../../shared/fixtures');

test('the layouts of a public capture: one per distinct layout, as learnt from each frame', async () => {
  const file = join(FIXTURES, 'SV_Normal_Traffic.pcap');
  const got = await layoutsFromCapture(file);
  const keys = new Set<string>();
  for await (const p of capturePackets(file)) {
    try { keys.add(layoutKey(layoutFromFrame(p.data))); } catch { /* not SV */ }
  }
  assert.deepEqual(new Set(got.layouts.map(layoutKey)), keys);
  assert.deepEqual(got.layouts.map((l) => l.asdus.map((a) => a.svId)).flat(), ['4001']);
  assert.ok(got.frames > 1000);
});

test('a capture with no SV frame is refused, saying what to do', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-lc-'));
  try {
    const file = join(dir, 'arp.pcap');
    const arp = new Uint8Array(60); arp.fill(0xff, 0, 6); arp[12] = 0x08; arp[13] = 0x06;
    await writeCaptureFile(file, [{ tsNs: 1n, data: arp }], { format: 'pcap-ns' });
    await assert.rejects(layoutsFromCapture(file), (e: unknown) => e instanceof SvtraceError && e.code === 'TRACE_NO_LAYOUT' && /no SV frame/.test(e.message) && /tcpdump/.test(e.hint ?? ''));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
