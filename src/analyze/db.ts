/**
 * The analysis's scratch DuckDB: a database file in a fresh temp directory
 * (so joined samples can leave memory), bounded threads and memory, removed
 * on close. Small helpers to read rows as plain JS values.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';

export interface WorkDb {
  connection: DuckDBConnection;
  dir: string;
  close(): Promise<void>;
}

export async function openWorkDb(options: { threads?: number; memoryLimit?: string; tmpDir?: string } = {}): Promise<WorkDb> {
  let dir: string;
  try {
    dir = await mkdtemp(join(options.tmpDir ?? tmpdir(), 'svtrace-analyze-'));
  } catch (e) {
    throw new SvtraceError('ANALYZE_TMP_FAILED', `cannot create a scratch directory under ${options.tmpDir ?? tmpdir()}: ${(e as Error).message}`, {
      hint: 'Give a writable directory with free space (about 15 bytes per sample) with --tmp-dir.',
      cause: e,
    });
  }
  let instance: DuckDBInstance;
  try {
    instance = await DuckDBInstance.create(join(dir, 'work.duckdb'), {
      threads: String(options.threads ?? 2),
      memory_limit: options.memoryLimit ?? '512MB',
      temp_directory: join(dir, 'spill'),
      preserve_insertion_order: 'false',
    });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new SvtraceError('ANALYZE_DB_FAILED', `cannot start DuckDB: ${(e as Error).message}`, { hint: 'Check the memory limit and the scratch directory.', cause: e });
  }
  const connection = await instance.connect();
  // Every join window reads the same Parquet footers: keep them (ignored where the setting is unknown).
  await connection.run('SET parquet_metadata_cache = true').catch(() => {});
  // ...but not the files' data (DuckDB's external file cache): memory would grow with the run.
  await connection.run('SET enable_external_file_cache = false').catch(() => {});
  return {
    connection,
    dir,
    async close() {
      connection.closeSync();
      instance.closeSync();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type Row = Record<string, unknown>;

/** Runs `sql` and returns its rows as objects of JS values (BIGINT/HUGEINT as bigint). */
export async function rows(connection: DuckDBConnection, sql: string): Promise<Row[]> {
  const reader = await connection.runAndReadAll(sql);
  return reader.getRowObjectsJS() as Row[];
}

/** A number from a JS value DuckDB returned (bigint, number, null → null). */
export function num(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '') return Number(v);
  return null;
}

/** Like num(), 0 for null. */
export function int(v: unknown): number {
  return num(v) ?? 0;
}

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}
