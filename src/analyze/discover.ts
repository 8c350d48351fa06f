/**
 * Discovery: which records, streams (svID, rate) and points there are, and
 * the time range, in one pass over the cheap columns (sv_id, point, smp_cnt)
 * plus the Parquet footers for t_ns. Leaves two relations in the work DB:
 * `pts` (every row of every record) and `streams` (sv_id → stream index, rate).
 */
import { orderPoints } from '../path/index.ts';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { SvtraceError } from '../errors.ts';
import { listSegments, readManifest, recordSql, type RecordManifest } from '../record/index.ts';
import { machineClocks, pointRowsSql, type MachineClock } from './clock.ts';
import { printable } from '../util/text.ts';
import { int, num, rows, sqlString } from './db.ts';
import { STREAM_ENUM } from './join.ts';
import type { AnalysisWarning, ClockOffsetOption, JoinMode, RecordSummary } from './types.ts';

/** Usual smpCnt wrap values: 50/60 Hz × 80 samples per cycle, 50/60 Hz × 256. */
export const USUAL_RATES: readonly number[] = [4000, 4800, 12800, 15360];

/** The wrap value from the largest smpCnt seen: max + 1 rounded up to a usual rate, else max + 1. */
export function rateFromMaxSmpCnt(maxSmpCnt: number): number {
  const need = maxSmpCnt + 1;
  return USUAL_RATES.find((r) => r >= need) ?? need;
}

export interface DiscoveredStream {
  svId: string;
  index: number;
  appId: number | null;
  rate: number;
  rateFrom: 'manifest' | 'data';
  /** Rows per point (all records). */
  rowsByPoint: Map<string, number>;
}

export interface Discovery {
  records: RecordSummary[];
  manifests: RecordManifest[];
  /** The clock of each machine (manifest host) that is not the reference: its rows are read mapped onto the reference clock. */
  clocks: Map<string, MachineClock>;
  /** The point rows of these records (recordSql's columns), t_ns on the reference clock: what both engines read. */
  rowsSql: (dirs: readonly string[]) => Promise<string>;
  clock: string;
  /** In path order (src/path). */
  points: string[];
  /** Custom points' place along the path, from the manifests. */
  pointsAfter: Record<string, string>;
  streams: DiscoveredStream[];
  /** Range of t_ns (time mode) or of iter (iter mode) over all rows; null when there are no rows. */
  range: { lo: bigint; hi: bigint } | null;
  warnings: AnalysisWarning[];
}

async function isDir(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

/** RUN arguments → record directories: a record itself, or a run directory holding records one level down. */
export async function resolveRecordDirs(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    if (!(await isDir(path))) {
      throw new SvtraceError('ANALYZE_NO_RECORD', `${printable(path)} does not exist or is not a directory`, {
        hint: 'Pass a record directory (with manifest.json) or a run directory holding record directories.',
      });
    }
    if (await stat(join(path, 'manifest.json')).then(() => true, () => false)) {
      out.push(resolve(path));
      continue;
    }
    const names = (await readdir(path)).sort();
    const found: string[] = [];
    for (const name of names) {
      const sub = join(path, name);
      if ((await isDir(sub)) && (await stat(join(sub, 'manifest.json')).then(() => true, () => false))) found.push(resolve(sub));
    }
    if (found.length === 0) {
      throw new SvtraceError('ANALYZE_NO_RECORD', `${printable(path)} holds no svtrace record (no manifest.json in it or in its subdirectories)`, {
        hint: 'Pass the directories that svtrace publish/subscribe/trace wrote, or the run directory that holds them.',
      });
    }
    out.push(...found);
  }
  return [...new Set(out)];
}

function manifestRate(m: RecordManifest, svId: string): number | undefined {
  for (const s of m.streams ?? []) {
    if (s.svId !== svId) continue;
    const r = (s as Record<string, unknown>).rate ?? (s as Record<string, unknown>).smpRate;
    if (typeof r === 'number' && Number.isInteger(r) && r > 0) return r;
  }
  return undefined;
}

/** Creates `pts` and `streams` in the work DB and returns what was found. */
export async function discover(c: DuckDBConnection, dirs: readonly string[], mode: JoinMode, clockOffsets: readonly ClockOffsetOption[] = []): Promise<Discovery> {
  const warnings: AnalysisWarning[] = [];
  const manifests = await Promise.all(dirs.map((d) => readManifest(d)));
  // Each machine's clock offset, applied as the rows are read: the join pairs samples on the reference clock.
  const { clocks, warnings: clockWarnings } = machineClocks(dirs.map((dir, i) => ({ dir, manifest: manifests[i]! })), clockOffsets);
  warnings.push(...clockWarnings);
  const hostOf = new Map(dirs.map((d, i) => [d, manifests[i]!.host]));
  const rowsSql = (ds: readonly string[]) => pointRowsSql(ds, (d) => clocks.get(hostOf.get(d) ?? ''));
  if (mode === 'iter' && dirs.length > 1) {
    throw new SvtraceError('ANALYZE_ITER_ACROSS_RECORDS', `join by iter needs exactly one record, got ${dirs.length}`, {
      hint: 'Each recorder counts iter from its own first sample, so iter only matches within one record; use --join time (needs synchronised clocks) for several records.',
    });
  }
  const clockNames = [...new Set(manifests.map((m) => m.clock.name))];
  if (mode === 'time' && clockNames.length > 1) {
    throw new SvtraceError('ANALYZE_CLOCK_MISMATCH', `the records use different clocks (${clockNames.join(', ')}): their times cannot be compared`, {
      hint: 'TAI and realtime differ by the leap seconds (37 s): record every point with the same clock, or analyze the records separately.',
    });
  }
  const segments = (await Promise.all(dirs.map((d) => listSegments(d)))).flat();
  const hasCsv = segments.some((s) => s.kind === 'csv');
  const sql = await rowsSql(dirs);
  if (hasCsv) {
    // CSV has no row-group statistics: read it once into the work DB so that windows prune by zone maps.
    await c.run(`CREATE TABLE pts AS SELECT point, sv_id, app_id, smp_cnt, iter, t_ns, run, record FROM (${sql})`);
  } else {
    await c.run(`CREATE VIEW pts AS ${sql}`);
  }
  const aggregates = `count(*) AS n, max(smp_cnt) AS max_smp, min(smp_cnt) AS min_smp, min(app_id) AS app${mode === 'iter' ? ', min(iter) AS lo, max(iter) AS hi' : ''}`;
  let found: Awaited<ReturnType<typeof rows>>;
  if (hasCsv) {
    found = await rows(c, `SELECT run, record, sv_id, point, ${aggregates} FROM pts GROUP BY ALL`);
  } else {
    // One record at a time: grouping by (sv_id, point) alone costs a third less than with run and record.
    found = [];
    for (const [i, dir] of dirs.entries()) {
      const ids = { run: manifests[i]!.runId, record: dir.split('/').at(-1) ?? dir };
      for (const r of await rows(c, `SELECT sv_id, point, ${aggregates} FROM (${await recordSql([dir])}) GROUP BY ALL`)) found.push({ ...ids, ...r });
    }
  }

  const records: RecordSummary[] = dirs.map((dir, i) => {
    const m = manifests[i]!;
    const name = dir.split('/').at(-1) ?? dir;
    const n = found.filter((r) => r.record === name && r.run === m.runId).reduce((s, r) => s + int(r.n), 0);
    return { dir, runId: m.runId, host: m.host, role: m.role, points: m.points, clock: m.clock.name, state: m.state, rows: n };
  });
  for (const r of records) {
    if (r.state === 'recording') {
      warnings.push({ code: 'ANALYZE_RECORD_OPEN', message: `record ${printable(r.dir)} is still marked recording: read up to its last complete line`, hint: 'If its writer crashed, run recovery on it; if it is still being written, analyze again later for the rest.' });
    }
  }

  const bySv = new Map<string, { max: number; app: number | null; rowsByPoint: Map<string, number> }>();
  const points = new Set<string>();
  let lo: bigint | null = null, hi: bigint | null = null;
  for (const r of found) {
    const svId = String(r.sv_id);
    if (int(r.min_smp) < 0 || int(r.max_smp) > 65535) {
      throw new SvtraceError('ANALYZE_BAD_SMPCNT', `stream ${printable(svId)} has smpCnt values outside 0..65535 (${int(r.min_smp)}..${int(r.max_smp)}) in record ${printable(String(r.record))}`, {
        hint: 'smpCnt is 16 bits on the wire: this record was damaged or not written by svtrace.',
      });
    }
    const point = String(r.point);
    points.add(point);
    const e = bySv.get(svId) ?? { max: 0, app: num(r.app), rowsByPoint: new Map<string, number>() };
    e.max = Math.max(e.max, int(r.max_smp));
    e.rowsByPoint.set(point, (e.rowsByPoint.get(point) ?? 0) + int(r.n));
    bySv.set(svId, e);
    if (mode === 'iter') {
      const l = BigInt(int(r.lo)), h = BigInt(int(r.hi));
      lo = lo === null || l < lo ? l : lo;
      hi = hi === null || h > hi ? h : hi;
    }
  }
  const svIds = [...bySv.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const streams: DiscoveredStream[] = svIds.map((svId, index) => {
    const e = bySv.get(svId)!;
    const fromData = rateFromMaxSmpCnt(e.max);
    const declared = manifests.map((m) => manifestRate(m, svId)).find((r) => r !== undefined);
    let rate = fromData, rateFrom: 'manifest' | 'data' = 'data';
    if (declared !== undefined && declared > e.max) {
      rate = declared;
      rateFrom = 'manifest';
    } else if (declared !== undefined) {
      warnings.push({ code: 'ANALYZE_RATE_MISMATCH', message: `stream ${printable(svId)}: the manifest says ${declared} samples/s but smpCnt reaches ${e.max}; using ${fromData}`, hint: 'Check the publisher configuration; samples were matched with the wrap value seen in the data.' });
    }
    return { svId, index, appId: e.app, rate, rateFrom, rowsByPoint: e.rowsByPoint };
  });
  if (streams.length > 0) {
    await c.run(`CREATE TABLE streams AS SELECT * FROM (VALUES ${streams.map((s) => `(${sqlString(s.svId)}, ${s.index}, ${s.rate})`).join(', ')}) v(sv_id, stream, rate)`);
    await c.run(`CREATE TYPE ${STREAM_ENUM} AS ENUM (${streams.map((s) => sqlString(s.svId)).join(', ')})`);
  } else {
    await c.run('CREATE TABLE streams (sv_id VARCHAR, stream INTEGER, rate INTEGER)');
  }

  if (mode === 'time' && found.length > 0) {
    const parquet = segments.filter((s) => s.kind === 'parquet').map((s) => resolve(s.path));
    // Footers hold the machines' own times: with a clock corrected, read the corrected range instead.
    let metaOk = !hasCsv && parquet.length > 0 && clocks.size === 0;
    if (metaOk) {
      const [m] = await rows(c, `SELECT min(stats_min_value::BIGINT) AS lo, max(stats_max_value::BIGINT) AS hi, count(*) FILTER (stats_min_value IS NULL OR stats_max_value IS NULL) AS unknown
        FROM parquet_metadata([${parquet.map(sqlString).join(', ')}]) WHERE path_in_schema = 't_ns'`);
      if (m && m.lo !== null && m.hi !== null && int(m.unknown) === 0) {
        lo = BigInt(m.lo as bigint);
        hi = BigInt(m.hi as bigint);
      } else metaOk = false;
    }
    if (!metaOk) {
      const [m] = await rows(c, 'SELECT min(t_ns) AS lo, max(t_ns) AS hi FROM pts');
      lo = BigInt(m!.lo as bigint);
      hi = BigInt(m!.hi as bigint);
    }
  }
  const pointsAfter = Object.assign({}, ...manifests.map((m) => m.pointsAfter ?? {})) as Record<string, string>;
  return {
    records,
    manifests,
    clocks,
    rowsSql,
    clock: clockNames.join(','),
    // along the path (src/path), never by the alphabet; custom points by their declared place
    points: orderPoints([...points].sort(), pointsAfter),
    pointsAfter,
    streams,
    range: lo === null || hi === null ? null : { lo, hi },
    warnings,
  };
}
