/**
 * The journal pump: the only code that writes CSV segments. Batches of
 * formatted lines are queued by the writer and written strictly in order by
 * one async loop (pwrite at known offsets, then fdatasync); consecutive
 * batches are coalesced when the disk falls behind. On the first write error
 * the file is truncated back to the end of the last complete batch, the
 * journal stops for good, and every later call is refused with that error.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { fsyncDir } from './manifest.ts';
import { CSV_HEADER, segmentFileName } from './schema.ts';

export interface ClosedSegment {
  index: number;
  path: string;
  rows: number;
}

export interface JournalEvents {
  /** A segment was closed (fsynced) and holds `rows` rows. */
  onSegmentClosed(segment: ClosedSegment): void;
  /** The journal stopped on a write error. Called once. */
  onFail(error: SvtraceError): void;
}

type Job = { kind: 'data'; buf: Buffer; rows: number } | { kind: 'rotate' } | { kind: 'finish' };

export interface Journal {
  /** Queue complete lines for the current segment. */
  enqueue(buf: Buffer, rows: number): void;
  /** Close the current segment after what is queued and start the next one. */
  rotate(): void;
  /** Resolves when everything queued so far is written and fsynced. */
  drain(): Promise<void>;
  /** Drain, then close the last segment (deleted if it has no rows). */
  finish(): Promise<void>;
  failed(): SvtraceError | undefined;
  rowsDurable(): number;
  pendingBytes(): number;
  segmentsStarted(): number;
}

const COALESCE_BYTES = 16 << 20;

/** Map an fs error to the user-facing error of a stopped recording. */
export function writeFailure(e: unknown, file: string, rowsDurable: number, dir: string): SvtraceError {
  const code = (e as NodeJS.ErrnoException).code;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  const what = full ? 'the disk is full' : `a write failed (${(e as Error).message})`;
  return new SvtraceError(
    full ? 'RECORD_DISK_FULL' : 'RECORD_WRITE_FAILED',
    `recording stopped: ${what} while writing ${file}; ${rowsDurable} rows were safely written before it and stay readable in ${dir}`,
    {
      hint: full
        ? `Free space on the disk holding ${dir} (or record to a larger one) and start a new recording; run record recovery on ${dir} to compact what was written.`
        : `Check the disk holding ${dir} (permissions, health, the kernel log), then start a new recording; run record recovery on ${dir} to compact what was written.`,
      cause: e,
    },
  );
}

async function startSegment(dir: string, index: number): Promise<{ fh: FileHandle; path: string; offset: number }> {
  const path = join(dir, segmentFileName(index, 'csv'));
  const fh = await open(path, 'wx');
  try {
    const header = Buffer.from(CSV_HEADER + '\n', 'latin1');
    await fh.write(header, 0, header.length, 0);
    await fh.datasync();
    await fsyncDir(dir);
    return { fh, path, offset: header.length };
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw Object.assign(e as Error, { file: path });
  }
}

export async function openJournal(dir: string, events: JournalEvents): Promise<Journal> {
  let index = 1;
  let seg = await startSegment(dir, index);
  let segRows = 0;
  let durable = 0;
  let pending = 0;
  let failure: SvtraceError | undefined;
  let finished = false;
  const queue: Job[] = [];
  let pumping = false;
  let waiters: { resolve: () => void; reject: (e: SvtraceError) => void }[] = [];

  function settle(): void {
    const w = waiters;
    waiters = [];
    for (const { resolve, reject } of w) {
      if (failure !== undefined) reject(failure);
      else resolve();
    }
  }

  /** Write `parts` at the end of the segment: one writev, then the rest of a short write. */
  async function writeAll(parts: Buffer[], bytes: number): Promise<void> {
    let done = (await seg.fh.writev(parts, seg.offset)).bytesWritten;
    if (done >= bytes) return;
    const rest = Buffer.concat(parts, bytes).subarray(done);
    while (done < bytes) {
      const { bytesWritten } = await seg.fh.write(rest, done - (bytes - rest.length), bytes - done, seg.offset + done);
      done += bytesWritten;
    }
  }

  async function closeSegment(): Promise<void> {
    await seg.fh.datasync();
    await seg.fh.close();
    if (segRows > 0) events.onSegmentClosed({ index, path: seg.path, rows: segRows });
    else await unlink(seg.path).then(() => fsyncDir(dir));
  }

  async function runJob(): Promise<void> {
    const job = queue[0];
    if (job === undefined) return;
    if (job.kind === 'data') {
      const parts: Buffer[] = [];
      let bytes = 0;
      let rows = 0;
      while (queue[0]?.kind === 'data' && (rows === 0 || bytes < COALESCE_BYTES)) {
        const d = queue.shift() as { buf: Buffer; rows: number };
        parts.push(d.buf);
        bytes += d.buf.length;
        rows += d.rows;
      }
      try {
        await writeAll(parts, bytes);
        await seg.fh.datasync();
      } catch (e) {
        await seg.fh.truncate(seg.offset).catch(() => undefined);
        throw e;
      }
      seg.offset += bytes;
      segRows += rows;
      durable += rows;
      pending -= bytes;
    } else if (job.kind === 'rotate') {
      queue.shift();
      if (segRows === 0) return;
      await closeSegment();
      index++;
      segRows = 0;
      seg = await startSegment(dir, index);
    } else {
      queue.shift();
      await closeSegment();
      finished = true;
    }
  }

  async function pump(): Promise<void> {
    if (pumping) return;
    pumping = true;
    try {
      while (queue.length > 0 && failure === undefined) {
        try {
          await runJob();
        } catch (e) {
          const file = (e as { file?: string }).file ?? seg.path;
          failure = writeFailure(e, file, durable, dir);
          queue.length = 0;
          events.onFail(failure);
          await seg.fh.close().catch(() => undefined);
        }
      }
    } finally {
      pumping = false;
      settle();
    }
  }

  function push(job: Job): void {
    if (failure !== undefined) throw failure;
    if (finished) throw new SvtraceError('RECORD_CLOSED', `the journal of ${dir} is closed`, { hint: 'Open a new record writer.' });
    queue.push(job);
    void pump();
  }

  function drain(): Promise<void> {
    if (!pumping && queue.length === 0) return failure === undefined ? Promise.resolve() : Promise.reject(failure);
    return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
  }

  return {
    enqueue(buf, rows) {
      pending += buf.length;
      push({ kind: 'data', buf, rows });
    },
    rotate() {
      push({ kind: 'rotate' });
    },
    drain,
    finish() {
      if (!finished && failure === undefined) push({ kind: 'finish' });
      return drain();
    },
    failed: () => failure,
    rowsDurable: () => durable,
    pendingBytes: () => pending,
    segmentsStarted: () => index,
  };
}
