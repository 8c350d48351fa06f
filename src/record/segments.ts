/**
 * The segment files of a record. Segment N is `points-N.csv` while it is a
 * journal and `points-N.parquet` once compacted. The Parquet file appears
 * (by rename) only when complete and verified, so when both exist the Parquet
 * file holds the rows and the CSV is a leftover awaiting deletion.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { parseSegmentFileName, type SegmentKind } from './schema.ts';

export interface Segment {
  index: number;
  kind: SegmentKind;
  /** Path of the file (dir joined with its name). */
  path: string;
}

export interface SegmentListing {
  /** The files that hold the rows, each segment once, by index. */
  segments: Segment[];
  /** CSV journals whose Parquet twin exists: not rows, to delete. */
  supersededCsv: string[];
  /** Files named `*.tmp`: interrupted writes, to delete. */
  tmpFiles: string[];
}

export async function listSegmentFiles(dir: string): Promise<SegmentListing> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new SvtraceError('RECORD_READ_FAILED', `cannot list ${dir}: ${(e as Error).message}`, {
      hint: 'Check that the record directory exists and is readable.',
      cause: e,
    });
  }
  const byIndex = new Map<number, { csv?: string; parquet?: string }>();
  const tmpFiles: string[] = [];
  for (const name of names) {
    if (name.endsWith('.tmp')) {
      tmpFiles.push(join(dir, name));
      continue;
    }
    const parsed = parseSegmentFileName(name);
    if (parsed === undefined) continue;
    const entry = byIndex.get(parsed.index) ?? {};
    entry[parsed.kind] = join(dir, name);
    byIndex.set(parsed.index, entry);
  }
  const segments: Segment[] = [];
  const supersededCsv: string[] = [];
  for (const index of [...byIndex.keys()].sort((a, b) => a - b)) {
    const entry = byIndex.get(index);
    if (entry?.parquet !== undefined) {
      segments.push({ index, kind: 'parquet', path: entry.parquet });
      if (entry.csv !== undefined) supersededCsv.push(entry.csv);
    } else if (entry?.csv !== undefined) {
      segments.push({ index, kind: 'csv', path: entry.csv });
    }
  }
  return { segments, supersededCsv, tmpFiles };
}

/** The files holding the rows of a record, each segment once, in order. */
export async function listSegments(dir: string): Promise<Segment[]> {
  return (await listSegmentFiles(dir)).segments;
}
