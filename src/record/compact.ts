/**
 * Compaction: a closed CSV journal becomes a Parquet segment (zstd) through
 * DuckDB with explicit column types. DuckDB runs with one thread so that a
 * measuring process is barely disturbed. The Parquet file is written under a
 * tmp name, its row count verified, fsynced, renamed into place; only then
 * may the CSV go.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { open, rename, unlink } from 'node:fs/promises';
import { SvtraceError } from '../errors.ts';
import { fsyncDir } from './manifest.ts';
import { COLUMN_LIST_SQL, TMP_SUFFIX, readCsvSql, readParquetSql, sqlString } from './schema.ts';
import { dirname } from 'node:path';

export interface DuckDb {
  connection: DuckDBConnection;
  close(): void;
}

/** An in-memory DuckDB with `threads` threads. */
export async function openDuckDb(threads = 1, memoryLimit = '1GB'): Promise<DuckDb> {
  const instance = await DuckDBInstance.create(':memory:', { threads: String(threads), memory_limit: memoryLimit });
  const connection = await instance.connect();
  return {
    connection,
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

export async function countRowsSql(db: DuckDb, relationSql: string): Promise<number> {
  const reader = await db.connection.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM ${relationSql}`);
  const n = reader.getRows()[0]?.[0];
  return Number(n);
}

export interface CompactResult {
  parquetPath: string;
  rows: number;
  elapsedMs: number;
}

/**
 * Compact `csvPath` (complete lines only, `expectedRows` data rows) into
 * `parquetPath`. The CSV is left in place: the caller deletes it (see
 * `deleteCsv`). Throws RECORD_COMPACT_FAILED; a failure leaves the CSV intact.
 */
export async function compactSegment(db: DuckDb, csvPath: string, parquetPath: string, expectedRows: number): Promise<CompactResult> {
  const started = performance.now();
  const tmp = parquetPath + TMP_SUFFIX;
  try {
    await db.connection.run(
      `COPY (SELECT ${COLUMN_LIST_SQL} FROM ${readCsvSql([csvPath])}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`,
    );
    const rows = await countRowsSql(db, readParquetSql([tmp]));
    if (rows !== expectedRows) {
      throw new Error(`the Parquet file has ${rows} rows, the journal ${expectedRows}`);
    }
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, parquetPath);
    await fsyncDir(dirname(parquetPath));
    return { parquetPath, rows, elapsedMs: performance.now() - started };
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    const full = (e as NodeJS.ErrnoException).code === 'ENOSPC' || /no space left/i.test(String(e));
    throw new SvtraceError('RECORD_COMPACT_FAILED', `compacting ${csvPath} to Parquet failed: ${(e as Error).message}`, {
      hint: full
        ? 'The disk is full. The CSV journal is intact and readable; free space and run record recovery to compact it.'
        : 'The CSV journal is intact and readable; run record recovery to retry the compaction.',
      cause: e,
    });
  }
}

/** Delete a journal whose Parquet twin is in place, durably. */
export async function deleteCsv(csvPath: string): Promise<void> {
  await unlink(csvPath).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  await fsyncDir(dirname(csvPath));
}
