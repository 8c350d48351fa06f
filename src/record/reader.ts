/**
 * Reading records: DuckDB SQL over all segments of one or several records
 * (for the analysis, tens of millions of rows), and a row stream for small
 * uses and tests. Both work on records that are still being written or were
 * never recovered after a crash: a torn last line is never a row.
 */
import { basename, resolve } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { openDuckDb, type DuckDb } from './compact.ts';
import { endsWithNewline, readCsvRows, scanCsv } from './csv.ts';
import { readManifest } from './manifest.ts';
import { listSegmentFiles, type Segment } from './segments.ts';
import { COLUMN_LIST_SQL, RECORD_COLUMNS, readCsvSql, readParquetSql, segmentFileName, sqlString, type PointRow } from './schema.ts';

/** Columns that recordSql adds to the row columns, all VARCHAR. */
export const RECORD_ID_COLUMNS = ['run', 'record', 'host', 'role'] as const;

function emptyRelationSql(): string {
  const cols = [...RECORD_COLUMNS.map(([n, t]) => `NULL::${t} AS ${n}`), ...RECORD_ID_COLUMNS.map((n) => `NULL::VARCHAR AS ${n}`)];
  return `SELECT ${cols.join(', ')} WHERE false`;
}

/**
 * A DuckDB `SELECT` over every row of the records in `dirs`: the row columns
 * (point, sv_id, app_id, smp_cnt, iter, t_ns, src, cpu) plus `run` (manifest
 * runId), `record` (directory name), `host` and `role`. Use it as
 * `CREATE VIEW points AS <sql>` or `FROM (<sql>)`. The file list is taken
 * now: on a record still being written, build it again for newer rows.
 */
export async function recordSql(dirs: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const dir of dirs) {
    const manifest = await readManifest(dir);
    const { segments } = await listSegmentFiles(dir);
    const ids = [manifest.runId, basename(resolve(dir)), manifest.host, manifest.role].map(sqlString);
    const select = `SELECT ${COLUMN_LIST_SQL}, ${ids.map((v, i) => `${v} AS ${RECORD_ID_COLUMNS[i]}`).join(', ')} FROM`;
    const parquet = segments.filter((s) => s.kind === 'parquet').map((s) => resolve(s.path));
    if (parquet.length > 0) parts.push(`${select} ${readParquetSql(parquet)}`);
    const completeCsv: string[] = [];
    const last = segments.at(-1);
    for (const seg of segments) {
      if (seg.kind !== 'csv') continue;
      const path = resolve(seg.path);
      const live = manifest.state === 'recording' && seg === last;
      if (!live && (await endsWithNewline(path))) {
        completeCsv.push(path);
        continue;
      }
      // Being written, or torn by a crash: take the complete lines present now.
      const scan = await scanCsv(path);
      if (scan.rows > 0) parts.push(`${select} (SELECT * FROM ${readCsvSql([path], 'ignore_errors=true')} LIMIT ${scan.rows})`);
    }
    if (completeCsv.length > 0) parts.push(`${select} ${readCsvSql(completeCsv)}`);
  }
  return parts.length === 0 ? emptyRelationSql() : parts.join('\nUNION ALL\n');
}

/** `CREATE OR REPLACE VIEW "name" AS <recordSql(dirs)>`. */
export async function recordViewSql(viewName: string, dirs: readonly string[]): Promise<string> {
  return `CREATE OR REPLACE VIEW "${viewName.replaceAll('"', '""')}" AS\n${await recordSql(dirs)}`;
}

async function* parquetRows(db: DuckDb, path: string): AsyncGenerator<PointRow> {
  const result = await db.connection.stream(`SELECT ${COLUMN_LIST_SQL} FROM ${readParquetSql([path])}`);
  for await (const chunk of result) {
    for (const r of chunk.getRows()) {
      const [point, svId, appId, smpCnt, iter, tNs, src, cpu] = r;
      yield {
        point: String(point),
        svId: String(svId),
        appId: Number(appId),
        smpCnt: Number(smpCnt),
        iter: Number(iter),
        tNs: tNs as bigint,
        src: String(src),
        cpu: cpu === null ? null : Number(cpu),
      };
    }
  }
}

/**
 * Every row of one record, segment by segment in file order, `tNs` as bigint.
 * Meant for small records and tests; use `recordSql` for analysis.
 */
export async function* readRecordRows(dir: string): AsyncGenerator<PointRow> {
  await readManifest(dir);
  const { segments } = await listSegmentFiles(dir);
  let db: DuckDb | undefined;
  try {
    for (const seg of segments) {
      let parquet: Segment = seg;
      if (seg.kind === 'csv') {
        try {
          for await (const rows of readCsvRows(seg.path)) yield* rows;
          continue;
        } catch (e) {
          // Compacted and deleted since the listing: its rows are in the Parquet twin.
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          parquet = { index: seg.index, kind: 'parquet', path: seg.path.replace(/\.csv$/, '.parquet') };
        }
      }
      db ??= await openDuckDb(1);
      try {
        yield* parquetRows(db, parquet.path);
      } catch (e) {
        throw new SvtraceError('RECORD_READ_FAILED', `cannot read ${parquet.path} (${segmentFileName(seg.index, 'parquet')}): ${(e as Error).message}`, {
          hint: 'A Parquet segment is renamed into place only when complete; a damaged one was altered after the recording.',
          cause: e,
        });
      }
    }
  } finally {
    db?.close();
  }
}
