/**
 * A throw inside a callback the addon calls from its threads never becomes
 * Node's "Uncaught N-API callback exception" (DEP0168, repeated per batch):
 * the receive stops handing batches over, the owner is told once, and
 * stopReceive() / stop() reject with the error. Both guards are tested: the
 * TypeScript one (src/net/guard.ts) and, under it, the C one (native/run.c).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadAddon } from '../../src/net/addon.ts';
import { openPacketSocket } from '../../src/net/index.ts';
import { FIXTURES, isRoot, makeVethLab, NOT_ROOT_REASON, readPcapFrames, waitFor } from './helpers.ts';

const skip = isRoot() ? false : NOT_ROOT_REASON;

function watchWarnings(): { warnings: string[]; stop(): void } {
  const warnings: string[] = [];
  const on = (w: Error & { code?: string }) => warnings.push(`${w.code ?? ''} ${w.message}`);
  process.on('warning', on);
  return { warnings, stop: () => process.off('warning', on) };
}

test('a throwing onBatch: onFault once, no more batches, stopReceive rejects with the error, no DEP0168', { skip }, async (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const a = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA });
  const b = openPacketSocket({ ifname: lab.ifB, netns: lab.nsB });
  t.after(() => { a.close(); b.close(); });
  const w = watchWarnings();
  t.after(() => w.stop());
  const frames = readPcapFrames(`${FIXTURES}/SV_Normal_Traffic.pcap`).slice(0, 200);
  let calls = 0;
  const faults: unknown[] = [];
  b.startReceive(() => { calls++; throw new Error('disk full (test)'); }, { maxBatchFrames: 1, maxBatchDelayMs: 0, onFault: (e) => faults.push(e) });
  for (const f of frames) a.send(f);
  await waitFor(() => faults.length > 0, 5000);
  for (const f of frames) a.send(f);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(calls, 1, 'no batch is handed over after the first throw');
  assert.equal(faults.length, 1);
  await assert.rejects(b.stopReceive(), /disk full \(test\)/);
  assert.deepEqual(w.warnings.filter((x) => /DEP0168|N-API/.test(x)), []);
});

test('the addon itself: a callback that throws stops the thread and its stop promise rejects with the exception', { skip }, async (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const a = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA });
  t.after(() => a.close());
  const addon = loadAddon();
  const opened = addon.open({ ifname: lab.ifB, netns: lab.nsB, hardware: 0 });
  const h = opened.handle;
  t.after(() => addon.close(h));
  const w = watchWarnings();
  t.after(() => w.stop());
  let calls = 0;
  addon.rxStart(h, () => { calls++; throw new Error('thrown in the callback'); }, { maxBatchDelayNs: 0, maxBatchFrames: 1 });
  const frames = readPcapFrames(`${FIXTURES}/SV_Normal_Traffic.pcap`).slice(0, 100);
  for (const f of frames) a.send(f);
  await waitFor(() => calls > 0, 5000);
  for (const f of frames) a.send(f);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(calls, 1, 'the C side hands nothing over after the throw');
  await assert.rejects(addon.rxStop(h) as Promise<unknown>, /thrown in the callback/);
  assert.deepEqual(w.warnings.filter((x) => /DEP0168|N-API/.test(x)), []);
});
