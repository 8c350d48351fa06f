// The kernel's count of skipped probe runs (recursion_misses in a BPF program's fdinfo) is read from the
// programs a real bpftrace holds; a process holding no program gives null, not 0.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { kernelCountsSkips, recursionMisses } from '../../src/trace/skips.ts';
import { cannotTrace } from './lab.ts';

const skip = cannotTrace() ?? false;

test('recursion misses are read from the programs bpftrace holds', { skip, timeout: 60_000 }, async (t) => {
  assert.equal(recursionMisses(process.pid), null, 'no BPF program here');
  const bt = spawn('bpftrace', ['-e', 'BEGIN { printf("ready\\n"); } tracepoint:sched:sched_switch { @n = count(); } interval:s:30 { exit(); }'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { bt.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    bt.stdout.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
    bt.on('exit', (c) => reject(new Error(`bpftrace exited ${String(c)}`)));
  });
  const n = recursionMisses(bt.pid!);
  assert.equal(typeof n, 'number', 'the kernel\'s count of skipped runs, read from fdinfo');
  assert.ok(n! >= 0);
});

test('only Linux 6.7 and later count the skipped runs of tracepoint and kprobe programs (the QEMU guest\'s 6.1 does not)', () => {
  for (const r of ['6.7.0', '6.18.3-cloud', '7.0.0-rc1', '10.1']) assert.equal(kernelCountsSkips(r), true, r);
  for (const r of ['6.1.0-57-amd64', '6.6.30', '5.15.0-91-generic', '4.19.0', 'garbage', '']) assert.equal(kernelCountsSkips(r), false, r);
});
