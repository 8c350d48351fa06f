/**
 * The row schema of a record, defined once: column names, DuckDB types, the
 * CSV header, the DuckDB `read_csv` options that read a journal without
 * sniffing anything, and segment file names. See FORMAT.md beside this file.
 */

/** Where a timestamp came from. */
export type PointSource = 'hw' | 'kernel' | 'app' | 'bpf' | 'sched';
export const POINT_SOURCES: readonly PointSource[] = ['hw', 'kernel', 'app', 'bpf', 'sched'];
const POINT_SOURCE_SET: ReadonlySet<string> = new Set(POINT_SOURCES);

export function isPointSource(s: string): s is PointSource {
  return POINT_SOURCE_SET.has(s);
}

/** 'T0'..'T4' or a custom point name (src/path). */
export { POINT_NAME_RE } from '../path/index.ts';

/** One timestamped point of one sample, as read back from a record. */
export interface PointRow {
  point: string;
  /** The stored (escaped) svID: exactly the `sv_id` column. See svid.ts. */
  svId: string;
  appId: number;
  smpCnt: number;
  /** How many times this stream's smpCnt wrapped before this sample. */
  iter: number;
  /** ns since the Unix epoch, in the clock named in the manifest. */
  tNs: bigint;
  src: string;
  cpu: number | null;
}

/** Columns in file order with their DuckDB (and Parquet) types. */
export const RECORD_COLUMNS = [
  ['point', 'VARCHAR'],
  ['sv_id', 'VARCHAR'],
  ['app_id', 'INTEGER'],
  ['smp_cnt', 'INTEGER'],
  ['iter', 'BIGINT'],
  ['t_ns', 'BIGINT'],
  ['src', 'VARCHAR'],
  ['cpu', 'SMALLINT'],
] as const;

export const COLUMN_NAMES: readonly string[] = RECORD_COLUMNS.map(([name]) => name);

/** The first line of every CSV journal, without its newline. */
export const CSV_HEADER = COLUMN_NAMES.join(',');

/** `point, sv_id, ...` for SELECT lists. */
export const COLUMN_LIST_SQL = COLUMN_NAMES.join(', ');

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

/**
 * Options for DuckDB's `read_csv` that read a journal exactly: explicit types,
 * no sniffing, a quoted empty svID stays '' while an empty cpu is NULL.
 */
export const CSV_READ_OPTIONS_SQL =
  "header=true, auto_detect=false, delim=',', quote='\"', escape='\"', new_line='\\n', " +
  `columns={${RECORD_COLUMNS.map(([n, t]) => `'${n}': '${t}'`).join(', ')}}, ` +
  "allow_quoted_nulls=false, nullstr=''";

/** `read_csv([...files], <exact options>)`. */
export function readCsvSql(files: readonly string[], extraOptions = ''): string {
  const list = `[${files.map(sqlString).join(', ')}]`;
  return `read_csv(${list}, ${CSV_READ_OPTIONS_SQL}${extraOptions === '' ? '' : `, ${extraOptions}`})`;
}

export function readParquetSql(files: readonly string[]): string {
  return `read_parquet([${files.map(sqlString).join(', ')}])`;
}

export type SegmentKind = 'csv' | 'parquet';

/** `points-000001.csv` */
export function segmentFileName(index: number, kind: SegmentKind): string {
  return `points-${String(index).padStart(6, '0')}.${kind}`;
}

const SEGMENT_RE = /^points-(\d{6,})\.(csv|parquet)$/;

export function parseSegmentFileName(name: string): { index: number; kind: SegmentKind } | undefined {
  const m = SEGMENT_RE.exec(name);
  if (m === null || m[1] === undefined || m[2] === undefined) return undefined;
  return { index: Number(m[1]), kind: m[2] as SegmentKind };
}

export const MANIFEST_FILE = 'manifest.json';
/** Suffix of files being written (manifest, Parquet): never read, removed by recovery. */
export const TMP_SUFFIX = '.tmp';
