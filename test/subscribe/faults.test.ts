/**
 * Faults inside the addon's callbacks (the receive and TX-report handlers)
 * stop the run at once: a record or a pcapng file on a disk that fills ends
 * `subscribe` and `publish` within a second or two with the error and exit 3,
 * never with hundreds of "Uncaught N-API callback exception" warnings and a
 * run that goes on to the end of --duration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, isRoot } from '../helpers/cli.ts';
import { makeVethPair } from '../helpers/netns.ts';
import { smallDisk } from '../helpers/tmpfs.ts';

const skip = isRoot() ? false : 'needs root: network namespaces, packet sockets and a tmpfs to fill';

async function timed(args: string[], pattern: RegExp): Promise<{ code: number | null; stderr: string; totalMs: number; afterErrorMs: number }> {
  const started = Date.now();
  let errorAt = 0;
  const r = await runCli(args, { timeoutMs: 120_000, onStderr: (s) => { if (!errorAt && pattern.test(s)) errorAt = Date.now(); } });
  const end = Date.now();
  return { code: r.code, stderr: r.stderr, totalMs: end - started, afterErrorMs: errorAt ? end - errorAt : -1 };
}

function checkStopped(r: { code: number | null; stderr: string; totalMs: number; afterErrorMs: number }, code: RegExp, durationS: number): void {
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, code);
  assert.doesNotMatch(r.stderr, /DEP0168|Uncaught N-API/);
  assert.ok(r.totalMs < durationS * 1000 * 0.75, `ran ${r.totalMs} ms of its ${durationS} s: it should stop when the disk fills`);
  assert.ok(r.afterErrorMs >= 0 && r.afterErrorMs < 3000, `exited ${r.afterErrorMs} ms after printing the error`);
}

test('subscribe --record on a disk that fills stops at once: RECORD_DISK_FULL, exit 3', { skip, timeout: 150_000 }, async (t) => {
  const disk = smallDisk('1m');
  if (typeof disk === 'string') { t.skip(disk); return; }
  const pair = makeVethPair('ff');
  t.after(() => { pair.remove(); disk.remove(); });
  const pub = runCli(['publish', '--netns', pair.nsA, '-i', pair.ifA, '-n', '4', '-d', '20'], { timeoutMs: 120_000 });
  const r = await timed(['subscribe', '--netns', pair.nsB, '-i', pair.ifB, '--record', join(disk.dir, 'rec'), '-d', '20'], /RECORD_DISK_FULL/);
  await pub;
  checkStopped(r, /RECORD_DISK_FULL/, 20);
  assert.ok(existsSync(join(disk.dir, 'rec', 'manifest.json')), 'the record is there');
});

test('subscribe -w on a disk that fills stops at once: CAPTURE_WRITE_FAILED, exit 3', { skip, timeout: 150_000 }, async (t) => {
  const disk = smallDisk('1m');
  if (typeof disk === 'string') { t.skip(disk); return; }
  const pair = makeVethPair('fw');
  t.after(() => { pair.remove(); disk.remove(); });
  const pub = runCli(['publish', '--netns', pair.nsA, '-i', pair.ifA, '-n', '4', '-d', '20'], { timeoutMs: 120_000 });
  const r = await timed(['subscribe', '--netns', pair.nsB, '-i', pair.ifB, '-w', join(disk.dir, 'rx.pcapng'), '-d', '20'], /CAPTURE_WRITE_FAILED/);
  await pub;
  checkStopped(r, /CAPTURE_WRITE_FAILED/, 20);
});

test('publish --record on a disk that fills stops at once: RECORD_DISK_FULL, exit 3', { skip, timeout: 150_000 }, async (t) => {
  const disk = smallDisk('1m');
  if (typeof disk === 'string') { t.skip(disk); return; }
  const pair = makeVethPair('fp');
  t.after(() => { pair.remove(); disk.remove(); });
  const r = await timed(['publish', '--netns', pair.nsA, '-i', pair.ifA, '-n', '4', '-d', '20', '--record', join(disk.dir, 'rec')], /RECORD_DISK_FULL/);
  checkStopped(r, /RECORD_DISK_FULL/, 20);
});
