/**
 * manifest.json: what a record is (who wrote it, which points, which clock,
 * whether it was closed cleanly). Validated with zod on every read and write;
 * written atomically (tmp + fsync + rename + fsync of the directory).
 */
import { open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { SvtraceError } from '../errors.ts';
import { MANIFEST_FILE, POINT_NAME_RE, TMP_SUFFIX } from './schema.ts';

export const FORMAT_NAME = 'svtrace-record';
export const FORMAT_VERSION = 1;

const decimalNs = z.string().regex(/^-?\d{1,20}$/, 'a bigint as a decimal string');

const streamSchema = z.looseObject({
  /** Stored (escaped) svID, as in the `sv_id` column. */
  svId: z.string(),
  appId: z.number().int().min(0).max(65535).optional(),
});

export const manifestSchema = z.looseObject({
  format: z.literal(FORMAT_NAME),
  formatVersion: z.literal(FORMAT_VERSION),
  runId: z.string().min(1),
  host: z.string(),
  role: z.string().min(1),
  points: z.array(z.string().regex(POINT_NAME_RE, 'a point name: a letter, then letters, digits, _ . -')),
  /** Custom points' place along the path: the point each comes right after (src/path). */
  pointsAfter: z.record(z.string(), z.string()).optional(),
  clock: z.object({ name: z.enum(['realtime', 'tai']), note: z.string().optional() }),
  startedNs: decimalNs,
  stoppedNs: decimalNs.optional(),
  state: z.enum(['recording', 'closed', 'recovered']),
  svtraceVersion: z.string(),
  command: z.array(z.string()).optional(),
  counters: z.record(z.string(), z.number()).optional(),
  streams: z.array(streamSchema).optional(),
  extra: z.unknown().optional(),
});

export type RecordManifest = z.infer<typeof manifestSchema>;
export type RecordState = RecordManifest['state'];
export type StreamInfo = z.infer<typeof streamSchema>;

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length === 0 ? '(top)' : i.path.join('.')}: ${i.message}`)
    .join('; ');
}

/** Validate a manifest object; `where` names it in the error. */
export function parseManifest(value: unknown, where: string): RecordManifest {
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    if (v.format === FORMAT_NAME && typeof v.formatVersion === 'number' && v.formatVersion > FORMAT_VERSION) {
      throw new SvtraceError(
        'RECORD_UNSUPPORTED_VERSION',
        `${where} is record format version ${v.formatVersion}; this svtrace reads version ${FORMAT_VERSION}`,
        { hint: 'Upgrade svtrace to read this record.' },
      );
    }
  }
  const result = manifestSchema.safeParse(value);
  if (!result.success) {
    throw new SvtraceError('RECORD_BAD_MANIFEST', `${where} is not a valid svtrace record manifest: ${describeIssues(result.error)}`, {
      hint: 'The manifest was written by something other than svtrace, or edited by hand; see src/record/FORMAT.md.',
      cause: result.error,
    });
  }
  return result.data;
}

/** Read and validate `DIR/manifest.json`. */
export async function readManifest(dir: string): Promise<RecordManifest> {
  const path = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const dirExists = await stat(dir).then((s) => s.isDirectory(), () => false);
      throw new SvtraceError(
        'RECORD_NOT_A_RECORD',
        dirExists ? `${dir} has no manifest.json: is this a svtrace record directory?` : `${dir} does not exist or is not a directory`,
        { hint: 'Pass the directory that svtrace publish/subscribe/trace wrote (it holds manifest.json and points-*.csv/parquet).', cause: e },
      );
    }
    throw new SvtraceError('RECORD_READ_FAILED', `cannot read ${path}: ${(e as Error).message}`, {
      hint: 'Check the permissions of the record directory.',
      cause: e,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SvtraceError('RECORD_BAD_MANIFEST', `${path} is not valid JSON: ${(e as Error).message}`, {
      hint: 'The manifest is written atomically by svtrace; a broken one was edited by hand or copied incompletely.',
      cause: e,
    });
  }
  return parseManifest(json, path);
}

/** fsync a directory so that a create, rename or unlink in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Validate and write `DIR/manifest.json` atomically. Throws raw fs errors. */
export async function writeManifest(dir: string, manifest: RecordManifest): Promise<void> {
  const valid = parseManifest(manifest, `manifest for ${dir}`);
  const path = join(dir, MANIFEST_FILE);
  const tmp = path + TMP_SUFFIX;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(valid, null, 2) + '\n', 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
}
