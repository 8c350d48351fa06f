/** Helpers shared by the record tests: temp dirs, DuckDB, collecting rows. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { readRecordRows, type PointRow } from '../../src/record/index.ts';
import { openDuckDb } from '../../src/record/compact.ts';

/** A fresh temp dir, removed when the test ends. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-record-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function collectRows(dir: string): Promise<PointRow[]> {
  const rows: PointRow[] = [];
  for await (const row of readRecordRows(dir)) rows.push(row);
  return rows;
}

/** Run one query on a fresh DuckDB and return its rows as JS values (BIGINT as bigint). */
export async function duckQuery(sql: string): Promise<unknown[][]> {
  const db = await openDuckDb(2);
  try {
    return (await db.connection.runAndReadAll(sql)).getRows() as unknown[][];
  } finally {
    db.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve `p` or fail after `ms`. */
export async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
