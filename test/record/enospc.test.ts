/**
 * A full disk, for real: a 1 MiB tmpfs (needs root to mount).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openRecordWriter, recordSql, type RecordWriter } from '../../src/record/index.ts';
import { writeFailure } from '../../src/record/journal.ts';
import { isSvtraceError, type SvtraceError } from '../../src/errors.ts';
import { checkPatternRows, patternRow } from './fixtures/pattern.ts';
import { collectRows, duckQuery, sleep, within } from './helpers.ts';

function mountTmpfs(dir: string): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: cannot mount a small tmpfs to fill';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (e) {
    return `mount -t tmpfs failed here: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`;
  }
}

test('a full disk stops recording with RECORD_DISK_FULL; rows written before stay readable', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'svtrace-record-'));
  const mnt = join(root, 'small');
  mkdirSync(mnt);
  const skip = mountTmpfs(mnt);
  // One hook, in order: unmount, then remove the temp dir.
  t.after(() => {
    try {
      if (skip === undefined) execFileSync('umount', [mnt]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
  if (skip !== undefined) {
    t.skip(skip);
    return;
  }
  const dir = join(mnt, 'rec');
  const errors: SvtraceError[] = [];
  const w: RecordWriter = await openRecordWriter(
    dir,
    { role: 'subscribe', points: ['T3'], clock: { name: 'tai' } },
    { flushIntervalMs: 20, flushBytes: 32 << 10, compaction: 'never', onError: (e) => errors.push(e) },
  );
  let n = 0;
  await within(20_000, 'the disk to fill', (async () => {
    while (errors.length === 0) {
      for (let k = 0; k < 500; k++, n++) {
        const r = patternRow(n);
        w.append(r.point, r.svId, r.appId, r.smpCnt, r.iter, r.tNs, r.src, r.cpu);
      }
      await sleep(1);
    }
  })());
  assert.equal(errors.length, 1);
  const error = errors[0] as SvtraceError;
  const durable = w.stats().rowsDurable;
  assert.ok(durable > 1000 && durable < n, `durable ${durable}, appended ${n}`);
  assert.equal(error.code, 'RECORD_DISK_FULL');
  assert.ok(error.message.includes(join(dir, 'points-000001.csv')), error.message);
  assert.ok(error.message.includes(`${durable} rows were safely written`), error.message);
  assert.match(error.hint ?? '', /Free space/);
  assert.equal((error.cause as NodeJS.ErrnoException).code, 'ENOSPC');

  const r = patternRow(n);
  assert.throws(() => w.append(r.point, r.svId, r.appId, r.smpCnt, r.iter, r.tNs, r.src, r.cpu), (e) => e === error);
  await assert.rejects(w.flush(), (e) => e === error);
  await assert.rejects(w.close(), (e) => e === error);

  const rows = await collectRows(dir);
  assert.equal(rows.length, durable);
  checkPatternRows(rows);
  const [count] = (await duckQuery(`SELECT count(*) FROM (${await recordSql([dir])})`))[0] as [bigint];
  assert.equal(Number(count), durable);
});

test('write errors map to RECORD_DISK_FULL (ENOSPC, EDQUOT) or RECORD_WRITE_FAILED (anything else)', () => {
  const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: boom`), { code });
  const cases: [string, string][] = [
    ['ENOSPC', 'RECORD_DISK_FULL'],
    ['EDQUOT', 'RECORD_DISK_FULL'],
    ['EIO', 'RECORD_WRITE_FAILED'],
    ['EROFS', 'RECORD_WRITE_FAILED'],
  ];
  for (const [code, want] of cases) {
    const e = writeFailure(err(code), '/r/points-000007.csv', 42, '/r');
    assert.ok(isSvtraceError(e));
    assert.equal(e.code, want);
    assert.match(e.message, /\/r\/points-000007\.csv; 42 rows were safely written/);
  }
});
