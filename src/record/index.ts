// The on-disk record of timestamped points: writer, recovery, readers. See FORMAT.md.
export { openRecordWriter } from './writer.ts';
export type { CloseSummary, CompactionMode, ManifestInit, PointColumns, RecordWriter, RecordWriterOptions, RecordWriterStats } from './writer-api.ts';
export { recoverRecord } from './recover.ts';
export type { RecoveryOptions, RecoveryReport } from './recover.ts';
export { readRecordRows, recordSql, recordViewSql, RECORD_ID_COLUMNS } from './reader.ts';
export { readManifest, FORMAT_NAME, FORMAT_VERSION } from './manifest.ts';
export type { RecordManifest, RecordState, StreamInfo } from './manifest.ts';
export { listSegments } from './segments.ts';
export type { Segment } from './segments.ts';
export { decodeSvId, encodeSvId, svIdText } from './svid.ts';
export type { SvIdInput } from './svid.ts';
export { COLUMN_NAMES, CSV_HEADER, CSV_READ_OPTIONS_SQL, POINT_SOURCES, RECORD_COLUMNS } from './schema.ts';
export type { PointRow, PointSource } from './schema.ts';
