/**
 * The record writer: `append` formats a row into an in-memory batch (no I/O);
 * a timer (unref'd) and a size threshold hand batches to the journal, which
 * writes and fsyncs them in order. Segments rotate every N rows or T seconds;
 * closed segments are compacted to Parquet (see compact.ts). `close()`
 * flushes everything, compacts, and marks the manifest closed.
 */
import { mkdir, readdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { SvtraceError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { openJournal, writeFailure, type ClosedSegment, type Journal } from './journal.ts';
import { FORMAT_NAME, FORMAT_VERSION, parseManifest, writeManifest, type RecordManifest } from './manifest.ts';
import { createCompactionQueue } from './compaction-queue.ts';
import type { CloseSummary, ManifestInit, RecordWriter, RecordWriterOptions } from './writer-api.ts';
import { isPointSource, MANIFEST_FILE } from './schema.ts';
import { encodeSvId, type SvIdInput } from './svid.ts';
import { quoteSvId } from './csv.ts';
import { createRowBatch } from './batch.ts';


const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function badRow(what: string): SvtraceError {
  return new SvtraceError('RECORD_BAD_ROW', `refused to record a row: ${what}`, {
    hint: 'This is a bug in the caller of the record writer: check the values it passes.',
  });
}

/** Why a record could not even start (nothing was recorded yet). */
function openFailure(e: unknown, path: string, dir: string): SvtraceError {
  const code = (e as NodeJS.ErrnoException).code;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  return new SvtraceError(full ? 'RECORD_DISK_FULL' : 'RECORD_WRITE_FAILED', `cannot start a record in ${dir}: ${full ? 'the disk is full' : (e as Error).message} (writing ${path})`, {
    hint: full ? 'Free space on that disk, or record to another one.' : 'Check that the directory can be created and written (permissions, read-only file system).',
    cause: e,
  });
}

async function prepareDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    const names = await readdir(dir);
    if (names.includes(MANIFEST_FILE)) {
      throw new SvtraceError('RECORD_EXISTS', `${dir} already holds a record`, { hint: 'Record into a new directory, or remove the old record first.' });
    }
    if (names.length > 0) {
      throw new SvtraceError('RECORD_DIR_NOT_EMPTY', `${dir} is not empty`, { hint: 'Record into a new or empty directory.' });
    }
  } catch (e) {
    if (e instanceof SvtraceError) throw e;
    throw openFailure(e, dir, dir);
  }
}

export async function openRecordWriter(dir: string, init: ManifestInit, options: RecordWriterOptions = {}): Promise<RecordWriter> {
  const flushIntervalMs = options.flushIntervalMs ?? 500;
  const flushBytes = options.flushBytes ?? 4 << 20;
  const rotateRows = options.rotateRows ?? 2_000_000;
  const rotateMs = (options.rotateSeconds ?? 60) * 1000;
  const mode = options.compaction ?? 'rotate';
  if (!(rotateRows >= 1 && flushIntervalMs > 0 && flushBytes > 0 && rotateMs > 0)) {
    throw new SvtraceError('RECORD_BAD_OPTIONS', 'rotateRows, rotateSeconds, flushIntervalMs and flushBytes must be positive', {
      hint: 'Fix the record writer options.',
    });
  }
  let manifest: RecordManifest = parseManifest(
    {
      format: FORMAT_NAME,
      formatVersion: FORMAT_VERSION,
      runId: init.runId ?? randomUUID(),
      host: init.host ?? hostname(),
      role: init.role,
      points: [...init.points],
      clock: init.clock,
      startedNs: String(init.startedNs ?? BigInt(Date.now()) * 1_000_000n),
      state: 'recording',
      svtraceVersion: VERSION,
      command: init.command === undefined ? undefined : [...init.command],
      counters: init.counters,
      streams: init.streams,
      extra: init.extra,
    },
    `manifest for ${dir}`,
  );
  await prepareDir(dir);
  try {
    await writeManifest(dir, manifest);
  } catch (e) {
    throw openFailure(e, `${dir}/${MANIFEST_FILE}`, dir);
  }

  let failure: SvtraceError | undefined;
  const compactor = createCompactionQueue(options.csvGraceMs ?? 10_000);
  const closedSegments: ClosedSegment[] = [];
  const journal: Journal = await openJournal(dir, {
    onSegmentClosed(segment) {
      closedSegments.push(segment);
      if (mode === 'rotate') compactor.add(segment);
    },
    onFail(error) {
      failure = error;
      clearInterval(timer);
      options.onError?.(error);
    },
  }).catch((e: unknown) => {
    throw openFailure(e, (e as { file?: string }).file ?? dir, dir);
  });

  const pointSet = new Set(manifest.points);
  const prefixes = new Map<string, Map<string, Buffer>>();
  const batch = createRowBatch(flushBytes);
  let segRows = 0;
  let segStartedMs = Date.now();
  let rowsAppended = 0;
  let closing: Promise<CloseSummary> | undefined;

  function pushBatch(): void {
    const taken = batch.take();
    if (taken !== undefined) journal.enqueue(taken.buf, taken.rows);
  }

  function rotate(): void {
    pushBatch();
    journal.rotate();
    segRows = 0;
    segStartedMs = Date.now();
  }

  const timer = setInterval(() => {
    if (failure !== undefined || closing !== undefined) return;
    if (segRows === 0) segStartedMs = Date.now();
    else if (Date.now() - segStartedMs >= rotateMs) rotate();
    pushBatch();
    compactor.deleteDue(false);
  }, flushIntervalMs);
  timer.unref();

  function refuseIfStopped(): void {
    if (failure !== undefined) throw failure;
    if (closing !== undefined) {
      throw new SvtraceError('RECORD_CLOSED', `the record writer of ${dir} is closed`, { hint: 'Do not append after close().' });
    }
  }

  function prefixOf(point: string, svId: SvIdInput): Buffer {
    let bySv = prefixes.get(point);
    if (bySv === undefined) {
      if (!pointSet.has(point)) throw badRow(`point ${JSON.stringify(point)} is not one of this record's points (${manifest.points.join(', ')})`);
      bySv = new Map();
      prefixes.set(point, bySv);
    }
    if (typeof svId !== 'string') return Buffer.from(`${point},${quoteSvId(encodeSvId(svId))},`, 'latin1');
    let prefix = bySv.get(svId);
    if (prefix === undefined) {
      if (bySv.size >= 65536) bySv.clear();
      prefix = Buffer.from(`${point},${quoteSvId(encodeSvId(svId))},`, 'latin1');
      bySv.set(svId, prefix);
    }
    return prefix;
  }

  function addLine(prefix: Buffer, appId: number, smpCnt: number, iter: number, tNs: bigint, src: string, cpu: number | null | undefined): void {
    if ((appId & 0xffff) !== appId) throw badRow(`appId ${appId} is not an integer 0..65535`);
    if ((smpCnt | 0) !== smpCnt || smpCnt < 0) throw badRow(`smpCnt ${smpCnt} is not an integer 0..2^31-1`);
    if (!Number.isSafeInteger(iter) || iter < 0) throw badRow(`iter ${iter} is not a non-negative integer`);
    if (typeof tNs !== 'bigint' || tNs < INT64_MIN || tNs > INT64_MAX) throw badRow(`tNs ${String(tNs)} is not an int64 bigint`);
    let cpuValue = -1;
    if (cpu !== undefined && cpu !== null) {
      if ((cpu & 0x7fff) !== cpu) throw badRow(`cpu ${cpu} is not an integer 0..32767`);
      cpuValue = cpu;
    }
    batch.addRow(prefix, appId, smpCnt, iter, tNs, src, cpuValue);
    rowsAppended++;
    if (++segRows >= rotateRows) rotate();
    else if (batch.bytes() >= flushBytes) pushBatch();
  }

  const writer: RecordWriter = {
    dir,
    append(point, svId, appId, smpCnt, iter, tNs, src, cpu) {
      refuseIfStopped();
      if (!isPointSource(src)) throw badRow(`src ${JSON.stringify(src)} is not one of hw, kernel, app, bpf, sched`);
      addLine(prefixOf(point, svId), appId, smpCnt, iter, tNs, src, cpu);
    },
    appendColumns(c) {
      refuseIfStopped();
      if (!isPointSource(c.src)) throw badRow(`src ${JSON.stringify(c.src)} is not one of hw, kernel, app, bpf, sched`);
      const n = c.length ?? c.tNs.length;
      const streamPrefixes = c.svIds.map((s) => prefixOf(c.point, s));
      for (let i = 0; i < n; i++) {
        const prefix = streamPrefixes[c.stream[i] as number];
        if (prefix === undefined) throw badRow(`row ${i}: stream index ${c.stream[i]} is not an index into svIds`);
        const cpu = c.cpu === undefined ? undefined : (c.cpu[i] as number);
        addLine(prefix, c.appId[i] as number, c.smpCnt[i] as number, c.iter[i] as number, c.tNs[i] as bigint, c.src, cpu !== undefined && cpu < 0 ? null : cpu);
      }
    },
    async flush() {
      refuseIfStopped();
      pushBatch();
      await journal.drain();
    },
    update(fields) {
      manifest = parseManifest({ ...manifest, ...fields, counters: { ...manifest.counters, ...fields.counters } }, `manifest for ${dir}`);
    },
    stats() {
      return {
        rowsAppended,
        rowsDurable: journal.rowsDurable(),
        segmentsStarted: journal.segmentsStarted(),
        pendingBytes: journal.pendingBytes() + batch.bytes(),
        segmentsCompacted: compactor.compacted(),
        compactionMs: compactor.elapsedMs(),
        failed: failure,
      };
    },
    close(final = {}) {
      closing ??= (async (): Promise<CloseSummary> => {
        clearInterval(timer);
        if (failure === undefined) pushBatch();
        try {
          await journal.finish();
        } finally {
          if (failure !== undefined) {
            await compactor.finish(true).catch(() => undefined);
          }
        }
        if (mode === 'close') for (const s of closedSegments) compactor.add(s);
        const compactError = await compactor.finish(mode !== 'never');
        const { stoppedNs, ...fields } = final;
        manifest = parseManifest(
          {
            ...manifest,
            ...fields,
            state: 'closed',
            stoppedNs: String(stoppedNs ?? BigInt(Date.now()) * 1_000_000n),
            counters: { ...manifest.counters, ...fields.counters, recordRows: journal.rowsDurable(), recordSegments: closedSegments.length },
          },
          `manifest for ${dir}`,
        );
        try {
          await writeManifest(dir, manifest);
        } catch (e) {
          throw writeFailure(e, `${dir}/${MANIFEST_FILE}`, journal.rowsDurable(), dir);
        }
        if (compactError !== undefined) throw compactError;
        return { rows: journal.rowsDurable(), segments: closedSegments.length, manifest };
      })();
      return closing;
    },
  };
  return writer;
}
