/**
 * The types of the record writer's API (see writer.ts).
 */
import type { SvtraceError } from '../errors.ts';
import type { CompactionMode } from './compaction-queue.ts';
import type { RecordManifest, StreamInfo } from './manifest.ts';
import type { PointSource } from './schema.ts';
import type { SvIdInput } from './svid.ts';

export type { CompactionMode } from './compaction-queue.ts';

export interface ManifestInit {
  /** Defaults to a random UUID. */
  runId?: string;
  /** Defaults to os.hostname(). */
  host?: string;
  role: 'publish' | 'subscribe' | 'trace' | (string & {});
  /** The points this record holds; `append` refuses others. */
  points: readonly string[];
  clock: { name: 'realtime' | 'tai'; note?: string };
  /** Defaults to now (ms resolution); pass the precise start from the native clock. */
  startedNs?: bigint;
  command?: readonly string[];
  counters?: Record<string, number>;
  streams?: StreamInfo[];
  extra?: unknown;
}

export interface RecordWriterOptions {
  /** Write + fsync the batch at least this often. Default 500 ms. */
  flushIntervalMs?: number;
  /** Write + fsync when the batch grows past this many bytes. Default 4 MiB. */
  flushBytes?: number;
  /** Start a new segment after this many rows. Default 2,000,000. */
  rotateRows?: number;
  /** Start a new segment after this many seconds (if it has rows). Default 60. */
  rotateSeconds?: number;
  /** When CSV segments become Parquet. Default 'rotate'. */
  compaction?: CompactionMode;
  /** Keep a compacted CSV this long, so SQL built just before still finds it. Default 10 s. */
  csvGraceMs?: number;
  /** Called once when recording stops on a write error (RECORD_DISK_FULL / RECORD_WRITE_FAILED). */
  onError?: (error: SvtraceError) => void;
}

/** Rows of one point from one source, column-wise (e.g. straight from the native addon). */
export interface PointColumns {
  point: string;
  src: PointSource;
  /** The svIDs that `stream` indexes. */
  svIds: readonly SvIdInput[];
  stream: ArrayLike<number>;
  appId: ArrayLike<number>;
  smpCnt: ArrayLike<number>;
  iter: ArrayLike<number>;
  tNs: BigInt64Array | readonly bigint[];
  /** CPU per row; a negative value means unknown (NULL). */
  cpu?: ArrayLike<number>;
  /** Rows to take; default tNs.length. */
  length?: number;
}

export interface RecordWriterStats {
  rowsAppended: number;
  /** Rows written and fsynced. */
  rowsDurable: number;
  segmentsStarted: number;
  /** Bytes formatted but not yet written. */
  pendingBytes: number;
  segmentsCompacted: number;
  compactionMs: number;
  failed: SvtraceError | undefined;
}

export interface CloseSummary {
  rows: number;
  segments: number;
  manifest: RecordManifest;
}

export interface RecordWriter {
  readonly dir: string;
  /** Format one row into the batch (no I/O). Throws RECORD_BAD_ROW, RECORD_CLOSED, or the error that stopped recording. */
  append(point: string, svId: SvIdInput, appId: number, smpCnt: number, iter: number, tNs: bigint, src: PointSource, cpu?: number | null): void;
  /** Append rows column-wise. A bad row throws RECORD_BAD_ROW; the rows before it are recorded. */
  appendColumns(columns: PointColumns): void;
  /** Resolves when every row appended so far is written and fsynced. */
  flush(): Promise<void>;
  /** Set manifest fields (counters are merged), written at close. Throws RECORD_BAD_MANIFEST at once if invalid. */
  update(fields: { counters?: Record<string, number>; streams?: StreamInfo[]; extra?: unknown; pointsAfter?: Record<string, string> }): void;
  stats(): RecordWriterStats;
  close(final?: { stoppedNs?: bigint; counters?: Record<string, number>; streams?: StreamInfo[]; extra?: unknown }): Promise<CloseSummary>;
}
