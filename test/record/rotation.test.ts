import assert from 'node:assert/strict';
import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { listSegments, openRecordWriter, readManifest, recordSql, recoverRecord, type RecordWriter } from '../../src/record/index.ts';
import { writeManifest } from '../../src/record/manifest.ts';
import { isSvtraceError } from '../../src/errors.ts';
import { checkPatternRows, patternRow } from './fixtures/pattern.ts';
import { collectRows, duckQuery, sleep, tempDir, within } from './helpers.ts';

function appendPattern(w: RecordWriter, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const r = patternRow(i);
    w.append(r.point, r.svId, r.appId, r.smpCnt, r.iter, r.tNs, r.src, r.cpu);
  }
}

/** Count and distinct count of t_ns (unique per pattern row) through recordSql + DuckDB. */
async function sqlCounts(dir: string): Promise<[bigint, bigint]> {
  const rows = await duckQuery(`SELECT count(*), count(DISTINCT t_ns) FROM (${await recordSql([dir])})`);
  return rows[0] as [bigint, bigint];
}

const init = { role: 'subscribe', points: ['T3'], clock: { name: 'tai' as const } };

test('rotation every N rows; readers see every row exactly once during and after background compaction', async (t) => {
  const dir = join(tempDir(t), 'rec');
  const w = await openRecordWriter(dir, init, { rotateRows: 1000, compaction: 'rotate', csvGraceMs: 0 });
  const total = 20_500;
  for (let i = 0; i < total; i += 500) {
    appendPattern(w, i, i + 500);
    await sleep(1);
  }
  await w.flush();
  // Compaction runs in the background: read again and again while it works.
  let sawMixed = false;
  let reads = 0;
  const deadline = Date.now() + 60_000;
  while (w.stats().segmentsCompacted < 20) {
    assert.ok(Date.now() < deadline, `compaction stalled: ${JSON.stringify(w.stats())}`);
    const kinds = new Set((await listSegments(dir)).map((s) => s.kind));
    if (kinds.size === 2) sawMixed = true;
    checkPatternRows(await collectRows(dir));
    assert.equal((await collectRows(dir)).length, total);
    assert.deepEqual(await sqlCounts(dir), [BigInt(total), BigInt(total)]);
    reads++;
  }
  // whether a read lands while CSV and Parquet segments coexist depends on timing (a quiet machine compacts
  // before the first read); the grace-period test below makes that state on purpose
  t.diagnostic(`reads during compaction: ${reads}, saw CSV and Parquet together: ${sawMixed}`);
  const summary = await w.close();
  assert.equal(summary.rows, total);
  assert.equal(summary.segments, 21);
  const segments = await listSegments(dir);
  assert.deepEqual(segments.map((s) => `${s.index}:${s.kind}`), Array.from({ length: 21 }, (_, i) => `${i + 1}:parquet`));
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.csv') || n.endsWith('.tmp')), []);
  const perFile = await duckQuery(`SELECT count(*) FROM read_parquet('${dir}/points-*.parquet', filename=true) GROUP BY filename ORDER BY filename`);
  assert.deepEqual(perFile.map((r) => Number(r[0])), [...Array<number>(20).fill(1000), 500]);
  const rows = await collectRows(dir);
  assert.equal(rows.length, total);
  checkPatternRows(rows);
  assert.deepEqual(await sqlCounts(dir), [BigInt(total), BigInt(total)]);
});

test('rotation every T seconds, only for segments that have rows', async (t) => {
  const dir = join(tempDir(t), 'rec');
  const w = await openRecordWriter(dir, init, { rotateSeconds: 0.3, flushIntervalMs: 50, compaction: 'never' });
  appendPattern(w, 0, 100);
  await sleep(500);
  appendPattern(w, 100, 200);
  await sleep(1000); // an idle second: no empty segment
  appendPattern(w, 200, 300);
  const summary = await w.close();
  const segments = await listSegments(dir);
  assert.equal(summary.segments, segments.length);
  assert.ok(segments.length >= 2 && segments.length <= 4, `segments: ${segments.length}`);
  const rows = await collectRows(dir);
  assert.equal(rows.length, 300);
  checkPatternRows(rows);
});

test("compaction 'close' leaves journals until close; 'never' keeps CSV only", async (t) => {
  const root = tempDir(t);
  const atClose = await openRecordWriter(join(root, 'close'), init, { rotateRows: 100, compaction: 'close' });
  appendPattern(atClose, 0, 350);
  await atClose.flush();
  await sleep(200);
  assert.deepEqual(new Set((await listSegments(join(root, 'close'))).map((s) => s.kind)), new Set(['csv']));
  await atClose.close();
  assert.deepEqual((await listSegments(join(root, 'close'))).map((s) => s.kind), ['parquet', 'parquet', 'parquet', 'parquet']);
  checkPatternRows(await collectRows(join(root, 'close')));

  const never = await openRecordWriter(join(root, 'never'), init, { rotateRows: 100, compaction: 'never' });
  appendPattern(never, 0, 350);
  await never.close();
  assert.deepEqual((await listSegments(join(root, 'never'))).map((s) => s.kind), ['csv', 'csv', 'csv', 'csv']);
  assert.equal((await collectRows(join(root, 'never'))).length, 350);
});

test('a compacted CSV is kept for the grace period beside its Parquet twin and never read twice', async (t) => {
  const dir = join(tempDir(t), 'rec');
  const w = await openRecordWriter(dir, init, { rotateRows: 100, compaction: 'rotate', csvGraceMs: 60_000 });
  appendPattern(w, 0, 250);
  await w.flush();
  await within(20_000, 'compaction of 2 segments', (async () => {
    while (w.stats().segmentsCompacted < 2) await sleep(20);
  })());
  assert.ok(existsSync(join(dir, 'points-000001.csv')) && existsSync(join(dir, 'points-000001.parquet')));
  assert.deepEqual((await listSegments(dir)).map((s) => s.kind), ['parquet', 'parquet', 'csv']);
  checkPatternRows(await collectRows(dir));
  assert.deepEqual(await sqlCounts(dir), [250n, 250n]);
  await w.close();
  assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'points-000001.parquet', 'points-000002.parquet', 'points-000003.parquet']);
});

const TORN_TAILS = ['T3,"MU', 'T3,"MU1",16385,0,0,17644', 'T3,"MU1",16385,0,0,1764403200123456789,kernel,1'];

for (const torn of TORN_TAILS) {
  test(`a torn last line (${JSON.stringify(torn)}) is skipped by readers and cut by recovery`, async (t) => {
    const dir = join(tempDir(t), 'rec');
    const w = await openRecordWriter(dir, init, { rotateRows: 400, compaction: 'never' });
    appendPattern(w, 0, 1000);
    await w.close();
    // Make it look like a crash: manifest still 'recording', a torn line at the end.
    await writeManifest(dir, { ...(await readManifest(dir)), state: 'recording', stoppedNs: undefined, counters: undefined });
    const last = join(dir, 'points-000003.csv');
    appendFileSync(last, torn);
    const rows = await collectRows(dir);
    assert.equal(rows.length, 1000);
    checkPatternRows(rows);
    assert.deepEqual(await sqlCounts(dir), [1000n, 1000n]);

    const report = await recoverRecord(dir);
    assert.equal(report.tornBytesDropped, torn.length);
    assert.equal(report.rows, 1000);
    assert.equal(report.state, 'recovered');
    assert.equal(report.compacted.length, 3);
    const m = await readManifest(dir);
    assert.equal(m.state, 'recovered');
    assert.equal(m.counters?.recordRows, 1000);
    assert.equal(m.counters?.recoveredTornBytes, torn.length);
    assert.ok(m.stoppedNs !== undefined);
    assert.deepEqual((await listSegments(dir)).map((s) => s.kind), ['parquet', 'parquet', 'parquet']);
    checkPatternRows(await collectRows(dir));
    assert.deepEqual(await sqlCounts(dir), [1000n, 1000n]);
    const again = await recoverRecord(dir);
    assert.deepEqual([again.rows, again.tornBytesDropped, again.compacted.length], [1000, 0, 0]);
  });
}

test('recovery removes leftovers of an interrupted compaction and empty journals', async (t) => {
  const dir = join(tempDir(t), 'rec');
  const w = await openRecordWriter(dir, init, { rotateRows: 100, compaction: 'never' });
  appendPattern(w, 0, 300);
  await w.close();
  await recoverRecord(dir); // compacts all three
  // Crash after the Parquet rename, before the CSV unlink: CSV twin present.
  writeFileSync(join(dir, 'points-000002.csv'), readFileSync(join(dir, 'manifest.json'), 'utf8'));
  // Crash during a compaction and during a manifest write.
  writeFileSync(join(dir, 'points-000003.parquet.tmp'), 'half a parquet file');
  writeFileSync(join(dir, 'manifest.json.tmp'), '{');
  // Crash right after a rotation: a journal with a torn header, no rows.
  writeFileSync(join(dir, 'points-000004.csv'), 'point,sv_id,app');
  assert.equal((await collectRows(dir)).length, 300);
  const report = await recoverRecord(dir);
  assert.equal(report.rows, 300);
  assert.equal(report.segments, 3);
  assert.equal(report.removed.length, 4);
  assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'points-000001.parquet', 'points-000002.parquet', 'points-000003.parquet']);
  checkPatternRows(await collectRows(dir));
  assert.ok(statSync(join(dir, 'manifest.json')).size > 0);
});

test('a damaged line inside a journal is RECORD_CORRUPT with file and line, never skipped', async (t) => {
  const dir = join(tempDir(t), 'rec');
  const w = await openRecordWriter(dir, init, { compaction: 'never' });
  appendPattern(w, 0, 10);
  await w.close();
  const path = join(dir, 'points-000001.csv');
  const lines = readFileSync(path, 'latin1').split('\n');
  lines[5] = (lines[5] as string).replace('kernel', 'kern,el');
  writeFileSync(path, lines.join('\n'), 'latin1');
  const isCorrupt = (e: unknown): boolean => isSvtraceError(e) && e.code === 'RECORD_CORRUPT' && e.message.includes(`${path} line 6`);
  await assert.rejects(collectRows(dir), isCorrupt);
  await assert.rejects(recoverRecord(dir), isCorrupt);
  await assert.rejects(duckQuery(`SELECT count(*) FROM (${await recordSql([dir])})`), /CSV Error|Expected Number of Columns/);
});
