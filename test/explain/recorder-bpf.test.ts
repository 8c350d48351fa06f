/**
 * The flight recorder's binary engine (native/bpf/recorder.bpf.c): its
 * config and record layout against the addon's, and for real, as root:
 * the same switches as the bpftrace recorder (recorder.bt, the readable
 * reference) recording beside it, every event counted against the kernel,
 * and a ring too small to keep up turning its losses into gaps, never
 * silence.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { SvtraceError } from '../../src/errors.ts';
import { bpfAddon } from '../../src/trace/bpf-engine.ts';
import { findBpftrace } from '../../src/trace/bpftrace.ts';
import { bpfRecorderUnavailable, packRecorderConfig, readRecorderRecords, RECORDER_SIZES, startBpfRecorder } from '../../src/explain/recorder-bpf.ts';
import { startRecorder } from '../../src/explain/recorder.ts';
import type { RecorderEvent, SwitchEvent } from '../../src/explain/events.ts';
import type { RecorderGap } from '../../src/explain/recorder.ts';

const unavailable = bpfRecorderUnavailable() ?? undefined;
const notRoot = process.getuid?.() !== 0 ? 'needs root to load BPF programs' : unavailable;

test('the config packs validated CPUs into the bitmap, with the addon\'s sizes', { skip: unavailable }, () => {
  const sizes = (bpfAddon() as unknown as { bpfRecorderSizes(): Record<string, number> }).bpfRecorderSizes();
  for (const [k, v] of Object.entries(RECORDER_SIZES)) assert.equal(sizes[k], v, k);
  const c = packRecorderConfig([65, 1, 1], 1500);
  const v = new DataView(c.buffer);
  assert.equal(v.getUint8(4), 0, 'not all CPUs');
  assert.equal(v.getBigUint64(8, true), 1500n);
  assert.equal(v.getBigUint64(16, true), 2n, 'CPU 1');
  assert.equal(v.getBigUint64(24, true), 2n, 'CPU 65');
  assert.equal(new DataView(packRecorderConfig([], 0).buffer).getUint8(4), 1, 'no list = every CPU');
  for (const bad of [-1, 4096, 1.5, NaN]) {
    assert.throws(() => packRecorderConfig([bad], 0), (e: unknown) => e instanceof SvtraceError && e.code === 'EXPLAIN_INVALID_CPU', String(bad));
  }
  assert.throws(() => packRecorderConfig([], -1), (e: unknown) => e instanceof SvtraceError && e.code === 'EXPLAIN_INVALID_SOFTIRQ_MIN');
});

test('records decode by recorder.h\'s layout; a comm without its NUL and an unknown type are handled', () => {
  const b = Buffer.alloc(64 * 3);
  b[0] = 1; b.writeUInt16LE(3, 2); b.writeInt32LE(42, 4); b.writeBigUInt64LE(1000n, 8); b.writeBigUInt64LE(0x100n, 16);
  b.writeInt32LE(9, 24); b.writeInt32LE(77, 36); b.writeInt32LE(120, 40); b.write('sixteen-chars-xx', 48, 'latin1');
  b[64] = 7; b.writeUInt16LE(1, 66); b.writeBigUInt64LE(2000n, 72); b.writeBigUInt64LE(1500n, 80); b.writeInt32LE(12, 88);
  b[128] = 99;
  const ev: RecorderEvent[] = [], gaps: RecorderGap[] = [], unknown: number[] = [];
  readRecorderRecords(b, (e) => ev.push(e), (g) => gaps.push(g), (t) => unknown.push(t));
  assert.deepEqual(ev, [{ kind: 'switch', tMonoNs: 1000n, cpu: 3, prevPid: 42, prevPrio: 9, prevState: 0x100, nextPid: 77, nextPrio: 120, nextComm: 'sixteen-chars-xx' }]);
  assert.deepEqual(gaps, [{ cpu: 1, fromMonoNs: 1500n, toMonoNs: 2000n, lost: 12 }]);
  assert.deepEqual(unknown, [99]);
});

/** A child on CPU 0 that sleeps and wakes 20 times: switches with known pids and states. */
function sleeper(): Promise<number> {
  return new Promise((res) => {
    const c = spawn('taskset', ['-c', '0', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 0.01; done'], { stdio: 'ignore' });
    c.on('close', () => res(c.pid ?? 0));
  });
}

test('recording for real: the same switches as the bpftrace recorder beside it, every event counted', { skip: notRoot ?? (findBpftrace() === null ? 'bpftrace is not installed' : undefined), timeout: 120_000 }, async (t) => {
  const bt = await startRecorder({ cpus: [0], windowS: 30 });
  const bin = await startBpfRecorder({ cpus: [0], windowS: 30 });
  let sb, sbt;
  try {
    await sleeper();
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    sb = await bin.stop();
    sbt = await bt.stop();
  }
  const wakeups = (r: typeof bin) => (r.ring.cpus.get(0)?.events ?? []).filter((e) => e.kind === 'wakeup').length;
  t.diagnostic(`bpf: ${sb.events} events (${wakeups(bin)} wake-ups on CPU 0), kernel ${sb.kernelEvents}, lost ${sb.lostEvents}, runs skipped ${sb.skippedRuns}, short softirqs ${sb.shortSoftirqs}; bpftrace: ${sbt.events} events (${wakeups(bt)} wake-ups), lost ${sbt.lostLines}`);
  assert.equal(sb.engine, 'bpf');
  assert.equal(sb.kernelEvents, sb.events, 'every event the kernel wrote was received');
  assert.equal(sb.lostLines, 0);
  assert.equal(sb.otherLines.length, 0, sb.otherLines.join('\n'));
  // the switches both saw, in the span both ran: the same sequence of (prev, state, next, comm)
  const sw = (r: typeof bin) => (r.ring.cpus.get(0)?.events ?? []).filter((e): e is SwitchEvent => e.kind === 'switch');
  const a = sw(bin), b = sw(bt);
  assert.ok(a.length > 40 && b.length > 40, `switches on CPU 0: bpf ${a.length}, bpftrace ${b.length}`);
  const from = a[0]!.tMonoNs > b[0]!.tMonoNs ? a[0]!.tMonoNs : b[0]!.tMonoNs;
  const to = a[a.length - 1]!.tMonoNs < b[b.length - 1]!.tMonoNs ? a[a.length - 1]!.tMonoNs : b[b.length - 1]!.tMonoNs;
  const key = (e: SwitchEvent) => `${e.prevPid}/${e.prevState}>${e.nextPid} ${e.nextComm}`;
  // each switch is stamped by each program's own clock read: a few µs apart, so the window's ends are trimmed by 1 ms
  const inSpan = (e: SwitchEvent) => e.tMonoNs > from + 1_000_000n && e.tMonoNs < to - 1_000_000n;
  const ka = a.filter(inSpan).map(key), kb = b.filter(inSpan).map(key);
  assert.ok(ka.length > 20, `${ka.length} switches in the common span`);
  // bpftrace may lose lines (its perf buffer, counted in lostLines); the binary recorder lost none:
  // bpftrace's switches must be the binary recorder's, in the same order, with at most its losses left out
  let i = 0;
  for (const k of kb) {
    while (i < ka.length && ka[i] !== k) i++;
    if (i >= ka.length) assert.fail(`bpftrace saw a switch the bpf recorder did not (in order): ${k}; bpf has ${ka.filter((x) => x.startsWith(k.split("/")[0]!)).slice(0, 5).join(", ")}\nbpf:\n${ka.slice(0, 20).join('\n')}\nbpftrace:\n${kb.slice(0, 20).join('\n')}`);
    i++;
  }
  assert.ok(ka.length - kb.length <= sbt.lostLines, `the bpf recorder has ${ka.length - kb.length} switches more than bpftrace, which lost ${sbt.lostLines} lines`);
  // sleeping (state 1 = TASK_INTERRUPTIBLE) and preempted states as the tracepoint reports them
  assert.ok(a.some((e) => e.prevState === 1 && e.nextComm.length > 0));
  assert.ok(a.some((e) => e.nextComm === 'sleep'));
});

test('a ring too small to keep up: every loss is counted, and placed as a gap', { skip: notRoot, timeout: 60_000 }, async (t) => {
  const warnings: string[] = [];
  // 4 KiB = 56 records, read every millisecond; every CPU, every softirq
  const rec = await startBpfRecorder({ windowS: 5, ringBytes: 4096, softirqMinNs: 0, onWarning: (w) => warnings.push(w) });
  let s;
  try {
    // two shells forking busily, while this process stays free to read the ring
    const hogs = [0, 1].map(() => new Promise((r) => spawn('sh', ['-c', 'i=0; while [ $i -lt 400 ]; do /bin/true; i=$((i+1)); done'], { stdio: 'ignore' }).on('close', r)));
    await Promise.all(hogs);
  } finally {
    s = await rec.stop();
  }
  const gapLost = rec.gaps.reduce((n, g) => n + g.lost, 0);
  t.diagnostic(`${s.events} events, kernel ${s.kernelEvents}, lost to a full ring ${s.lostEvents}, in ${rec.gaps.length} gaps ${gapLost}, at stop ${s.notReceivedAtStop}`);
  assert.ok(s.kernelEvents !== null);
  assert.equal(s.kernelEvents - s.lostEvents, s.events, 'every record that fitted was received');
  assert.equal(s.lostLines, s.lostEvents);
  assert.equal(s.lostInRun, gapLost);
  assert.equal(gapLost, s.lostEvents, 'every loss is in a gap (those at the stop too)');
  if (s.lostEvents === 0) { t.skip('the 64-record ring kept up on this run: no loss to place'); return; }
  assert.ok(rec.gaps.length > 0, 'losses became gaps');
  for (const g of rec.gaps) assert.ok(g.lost > 0 && g.fromMonoNs <= g.toMonoNs, JSON.stringify(g, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
  assert.ok(warnings.some((w) => /ring buffer was full/.test(w)));
});
