/**
 * A real child process records pattern rows (fixtures/append-child.ts); we
 * kill it with SIGKILL, or interrupt it with SIGINT, and check what is on
 * disk against what it said it had appended.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listSegments, readManifest, recordSql, recoverRecord } from '../../src/record/index.ts';
import { checkPatternRows } from './fixtures/pattern.ts';
import { collectRows, duckQuery, sleep, tempDir, within } from './helpers.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/append-child.ts', import.meta.url));

interface Progress {
  rows: number;
  durable: number;
  atMs: number;
}

/** The longest time a row waited between append and fsync, as seen in the progress lines. */
function maxDurabilityLagMs(progress: readonly Progress[]): number {
  let lag = 0;
  for (const p of progress) {
    // The first moment row p.durable (the first row not yet durable) had been appended.
    const appended = progress.find((q) => q.rows > p.durable);
    if (appended !== undefined && appended.atMs < p.atMs) lag = Math.max(lag, p.atMs - appended.atMs);
  }
  return lag;
}

interface Child {
  proc: ChildProcessByStdio<null, Readable, Readable>;
  progress: Progress[];
  lines: string[];
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(dir: string, rotateRows: number): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, String(rotateRows)], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  const child: Child = {
    proc,
    progress: [],
    lines: [],
    stderr: [],
    exited: new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal }))),
  };
  let carry = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (carry + chunk).split('\n');
    carry = parts.pop() ?? '';
    for (const line of parts) {
      child.lines.push(line);
      const m = /^appended (\d+) durable (\d+) at (\d+)$/.exec(line);
      if (m !== null) child.progress.push({ rows: Number(m[1]), durable: Number(m[2]), atMs: Number(m[3]) });
    }
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => child.stderr.push(chunk));
  return child;
}

async function waitForRows(child: Child, rows: number): Promise<void> {
  await within(30_000, `the child to append ${rows} rows (stderr: ${child.stderr.join('')})`, (async () => {
    while ((child.progress.at(-1)?.rows ?? 0) < rows) await sleep(10);
  })());
}

test('kill -9: every row appended more than 1 s before the kill is on disk, whole and in order; recovery works', async (t) => {
  const dir = join(tempDir(t), 'rec');
  const child = startChild(dir, 100_000);
  t.after(() => child.proc.kill('SIGKILL'));
  await waitForRows(child, 1);
  const startedMs = child.progress[0]?.atMs ?? 0;
  while (Date.now() - startedMs < 2500) await sleep(10);
  const killedMs = Date.now();
  child.proc.kill('SIGKILL');
  const exit = await child.exited;
  assert.equal(exit.signal, 'SIGKILL');

  const appended = child.progress.at(-1)?.rows ?? 0;
  const mustHave = child.progress.filter((p) => p.atMs <= killedMs - 1000).at(-1)?.rows ?? 0;
  assert.ok(mustHave > 10_000, `the child appended only ${mustHave} rows in its first 1.5 s`);

  const rows = await collectRows(dir);
  checkPatternRows(rows); // whole rows 0..n-1 in order: no corrupted, missing or repeated row
  assert.ok(rows.length >= mustHave, `on disk ${rows.length} rows, appended more than 1 s before the kill ${mustHave}`);
  assert.ok(rows.length <= appended + 2000, `on disk ${rows.length} rows, appended ${appended}`);
  t.diagnostic(
    `appended ${appended} rows; ${mustHave} more than 1 s before the kill; ${rows.length} on disk (lost ${appended - rows.length}); ` +
      `longest wait from append to fsync seen: ${maxDurabilityLagMs(child.progress)} ms`,
  );
  assert.equal((await readManifest(dir)).state, 'recording');
  const [sqlRows] = (await duckQuery(`SELECT count(*) FROM (${await recordSql([dir])})`))[0] as [bigint];
  assert.equal(Number(sqlRows), rows.length);

  const report = await recoverRecord(dir);
  assert.equal(report.rows, rows.length);
  assert.equal((await readManifest(dir)).state, 'recovered');
  assert.ok((await listSegments(dir)).every((s) => s.kind === 'parquet'));
  const recovered = await collectRows(dir);
  assert.equal(recovered.length, rows.length);
  checkPatternRows(recovered);
});

test('SIGINT: the child closes the writer and nothing is lost', async (t) => {
  const dir = join(tempDir(t), 'rec');
  const child = startChild(dir, 50_000);
  t.after(() => child.proc.kill('SIGKILL'));
  await waitForRows(child, 60_000); // past a rotation, so a compaction may be running
  child.proc.kill('SIGINT');
  const exit = await within(60_000, 'the child to close and exit', child.exited);
  assert.deepEqual(exit, { code: 0, signal: null }, child.stderr.join(''));
  const closed = child.lines.map((l) => /^closed (\d+)$/.exec(l)).find((m) => m !== null);
  assert.ok(closed?.[1] !== undefined, `no "closed N" line in ${child.lines.slice(-3).join(' | ')}`);
  const closedRows = Number(closed[1]);
  assert.equal(closedRows, child.progress.at(-1)?.rows);

  const manifest = await readManifest(dir);
  assert.equal(manifest.state, 'closed');
  assert.equal(manifest.counters?.recordRows, closedRows);
  assert.ok((await listSegments(dir)).every((s) => s.kind === 'parquet'));
  const rows = await collectRows(dir);
  assert.equal(rows.length, closedRows);
  checkPatternRows(rows);
});
