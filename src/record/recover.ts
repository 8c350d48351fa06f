/**
 * Recovery after a crash (kill -9, power loss, full disk): remove interrupted
 * writes (*.tmp) and journals already compacted, cut a torn last line off
 * each CSV journal, check every remaining line, compact the journals, and
 * mark the manifest 'recovered' with counts. Idempotent. Never run it on a
 * record that is still being written.
 */
import { open, stat, unlink } from 'node:fs/promises';
import { SvtraceError } from '../errors.ts';
import { compactSegment, countRowsSql, deleteCsv, openDuckDb, type DuckDb } from './compact.ts';
import { readCsvRows, scanCsv } from './csv.ts';
import { fsyncDir, parseManifest, readManifest, writeManifest, type RecordState } from './manifest.ts';
import { listSegmentFiles } from './segments.ts';
import { readParquetSql } from './schema.ts';

export interface RecoveryOptions {
  /** Compact CSV journals to Parquet. Default true. */
  compact?: boolean;
}

export interface RecoveryReport {
  dir: string;
  state: RecordState;
  rows: number;
  segments: number;
  /** Bytes of torn last lines cut off. */
  tornBytesDropped: number;
  /** CSV journals compacted to Parquet. */
  compacted: string[];
  /** Leftover files deleted (tmp files, compacted journals, empty journals). */
  removed: string[];
}

async function countCsvRows(path: string): Promise<number> {
  let n = 0;
  for await (const rows of readCsvRows(path)) n += rows.length;
  return n;
}

export async function recoverRecord(dir: string, options: RecoveryOptions = {}): Promise<RecoveryReport> {
  try {
    return await recover(dir, options);
  } catch (e) {
    if (e instanceof SvtraceError) throw e;
    throw new SvtraceError('RECORD_RECOVERY_FAILED', `recovering ${dir} failed: ${(e as Error).message}`, {
      hint: (e as NodeJS.ErrnoException).code === 'ENOSPC' ? 'The disk is full: free space and run recovery again.' : 'Check permissions and the disk holding the record, then run recovery again; it is safe to repeat.',
      cause: e,
    });
  }
}

async function recover(dir: string, options: RecoveryOptions): Promise<RecoveryReport> {
  const manifest = await readManifest(dir);
  const listing = await listSegmentFiles(dir);
  const removed: string[] = [];
  for (const path of [...listing.tmpFiles, ...listing.supersededCsv]) {
    await unlink(path);
    removed.push(path);
  }
  let tornBytesDropped = 0;
  const csvRows = new Map<string, number>();
  let lastWriteNs = 0n;
  for (const seg of listing.segments) {
    lastWriteNs = (await stat(seg.path, { bigint: true })).mtimeNs;
    if (seg.kind !== 'csv') continue;
    const scan = await scanCsv(seg.path);
    if (scan.tornBytes > 0) {
      const fh = await open(seg.path, 'r+');
      try {
        await fh.truncate(scan.completeBytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      tornBytesDropped += scan.tornBytes;
    }
    const rows = scan.hasHeader ? await countCsvRows(seg.path) : 0;
    if (rows !== scan.rows) {
      throw new SvtraceError('RECORD_CORRUPT', `${seg.path}: ${scan.rows} lines but ${rows} rows`, { hint: 'The journal was altered; inspect it by hand.' });
    }
    if (rows === 0) {
      await unlink(seg.path);
      removed.push(seg.path);
    } else {
      csvRows.set(seg.path, rows);
    }
  }
  if (removed.length > 0) await fsyncDir(dir);

  const compacted: string[] = [];
  let db: DuckDb | undefined;
  let rows = 0;
  try {
    if (options.compact ?? true) {
      for (const [path, n] of csvRows) {
        db ??= await openDuckDb(1);
        await compactSegment(db, path, path.replace(/\.csv$/, '.parquet'), n);
        await deleteCsv(path);
        compacted.push(path);
      }
    }
    const after = await listSegmentFiles(dir);
    const parquet = after.segments.filter((s) => s.kind === 'parquet').map((s) => s.path);
    if (parquet.length > 0) {
      db ??= await openDuckDb(1);
      rows += await countRowsSql(db, readParquetSql(parquet));
    }
    for (const s of after.segments) if (s.kind === 'csv') rows += csvRows.get(s.path) ?? 0;
    const state: RecordState = manifest.state === 'closed' ? 'closed' : 'recovered';
    const next = parseManifest(
      {
        ...manifest,
        state,
        stoppedNs: manifest.stoppedNs ?? String(lastWriteNs === 0n ? BigInt(manifest.startedNs) : lastWriteNs),
        counters: {
          ...manifest.counters,
          recordRows: rows,
          recordSegments: after.segments.length,
          ...(state === 'recovered' ? { recoveredTornBytes: (manifest.counters?.recoveredTornBytes ?? 0) + tornBytesDropped } : {}),
        },
      },
      `manifest for ${dir}`,
    );
    await writeManifest(dir, next);
    return { dir, state, rows, segments: after.segments.length, tornBytesDropped, compacted, removed };
  } finally {
    db?.close();
  }
}
