/**
 * Background compaction of closed segments, one at a time, on a single-thread
 * DuckDB opened on first use. A failed compaction leaves its CSV journal in
 * place (still readable) and is remembered, not thrown: recording goes on.
 * A compacted CSV is deleted after a grace period, so SQL built from a
 * listing taken just before still finds its files.
 */
import { SvtraceError } from '../errors.ts';
import type { ClosedSegment } from './journal.ts';
import { compactSegment, deleteCsv, openDuckDb, type DuckDb } from './compact.ts';

export type CompactionMode = 'rotate' | 'close' | 'never';

export interface CompactionQueue {
  /** Queue a closed CSV segment for compaction. */
  add(segment: ClosedSegment): void;
  /** Delete compacted CSVs whose grace period is over (all of them if `all`). */
  deleteDue(all: boolean): void;
  /** Wait for queued work, delete compacted CSVs if `deleteAll`, close DuckDB; the first compaction error, if any. */
  finish(deleteAll: boolean): Promise<SvtraceError | undefined>;
  compacted(): number;
  elapsedMs(): number;
}

export function createCompactionQueue(graceMs: number): CompactionQueue {
  let chain: Promise<void> = Promise.resolve();
  let db: DuckDb | undefined;
  let firstError: SvtraceError | undefined;
  let compacted = 0;
  let elapsedMs = 0;
  const toDelete: { path: string; atMs: number }[] = [];

  function then(step: () => Promise<void>): void {
    chain = chain.then(step).catch((e: unknown) => {
      firstError ??=
        e instanceof SvtraceError
          ? e
          : new SvtraceError('RECORD_COMPACT_FAILED', `compaction failed: ${(e as Error).message}`, {
              hint: 'The CSV journals are intact and readable; run record recovery to retry the compaction.',
              cause: e,
            });
    });
  }

  function deleteDue(all: boolean): void {
    const now = Date.now();
    const due = toDelete.filter((d) => all || d.atMs <= now);
    if (due.length === 0) return;
    toDelete.splice(0, toDelete.length, ...toDelete.filter((d) => !due.includes(d)));
    then(async () => {
      // A CSV that cannot be deleted is harmless: readers prefer its Parquet twin.
      for (const d of due) await deleteCsv(d.path).catch(() => undefined);
    });
  }

  return {
    add(segment) {
      then(async () => {
        db ??= await openDuckDb(1);
        const parquetPath = segment.path.replace(/\.csv$/, '.parquet');
        const result = await compactSegment(db, segment.path, parquetPath, segment.rows);
        compacted++;
        elapsedMs += result.elapsedMs;
        toDelete.push({ path: segment.path, atMs: Date.now() + graceMs });
        if (graceMs <= 0) deleteDue(false);
      });
    },
    deleteDue,
    async finish(deleteAll) {
      await chain;
      if (deleteAll) {
        deleteDue(true);
        await chain;
      }
      db?.close();
      db = undefined;
      return firstError;
    },
    compacted: () => compacted,
    elapsedMs: () => elapsedMs,
  };
}
