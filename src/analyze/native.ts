/**
 * The native engine: the join and every statistic in one pass in C
 * (native/analyze_join.c), reading each record through a streaming DuckDB
 * query, then exact percentiles from the latencies it spilled to the scratch
 * directory. Same figures as the DuckDB reference (figures.ts), which a test
 * compares on runs with loss, duplicates, wraps, reordering and clock steps.
 *
 * Which engine runs: `options.engine` ('auto' by default), or the
 * environment variable SVTRACE_ANALYZE_ENGINE (`native`, `duckdb`, `auto`).
 * `auto` takes the native engine when the addon and DuckDB's shared library
 * are there, and the reference when they are not or when the rows of a
 * record are too far out of time order for the native merge.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isErrorCode, SvtraceError } from '../errors.ts';
import { rank } from '../util/percentile.ts';
import { sqlString } from './db.ts';
import { percentileTargets, type FigureRequest, type Figures, type LateRuns } from './figures.ts';
import { locateRank, type FineHistogram } from './histogram.ts';
import type { PointCoverage } from './pacing.ts';
import type { FineMoments, WorstRow } from './stats.ts';
import type { PacingStats } from './types.ts';

export type Engine = 'native' | 'duckdb';
export type EngineChoice = Engine | 'auto';

interface AjResult {
  samples: Float64Array;
  points: Float64Array;
  moments: Float64Array;
  hist: Float64Array[];
  seconds: Float64Array[];
  worst: { stream: number; sec: number; smpCnt: number; latencyNs: number; t: (bigint | null)[] }[][];
  late: Float64Array;
  rows: Float64Array;
}

interface AjAddon {
  ajRun(opts: Record<string, unknown>): Promise<unknown>;
  ajResult(handle: unknown): AjResult;
  ajPercentiles(handle: unknown, targets: Float64Array): Float64Array;
  ajClose(handle: unknown): void;
}

const ADDON_FILE = 'native/build/Release/svtrace_net.node';
let loaded: { addon: AjAddon; libPath: string } | null | undefined;
let unavailableWhy = '';

/** The addon and DuckDB's shared library, or null (and why) when either is missing. */
function load(): { addon: AjAddon; libPath: string } | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  const require = createRequire(import.meta.url);
  const addonPath = ['../../', '../'].map((up) => fileURLToPath(new URL(up + ADDON_FILE, import.meta.url))).find((p) => existsSync(p));
  if (!addonPath) {
    unavailableWhy = 'the native addon is not built';
    return null;
  }
  let libPath: string;
  try {
    const pkg = require.resolve(`@duckdb/node-bindings-${process.platform}-${process.arch}/package.json`);
    libPath = join(dirname(pkg), process.platform === 'darwin' ? 'libduckdb.dylib' : 'libduckdb.so');
  } catch {
    unavailableWhy = `no @duckdb/node-bindings-${process.platform}-${process.arch} package`;
    return null;
  }
  if (!existsSync(libPath)) {
    unavailableWhy = `DuckDB's shared library is not at ${libPath}`;
    return null;
  }
  const addon = require(addonPath) as Partial<AjAddon>;
  if (typeof addon.ajRun !== 'function') {
    unavailableWhy = 'the native addon predates the analysis engine (rebuild it: npm run install)';
    return null;
  }
  loaded = { addon: addon as AjAddon, libPath };
  return loaded;
}

/** Whether the native engine can run here, and if not, why. */
export function nativeEngineStatus(): { available: boolean; why: string } {
  return load() ? { available: true, why: '' } : { available: false, why: unavailableWhy };
}

/** The engine asked for: the option, else SVTRACE_ANALYZE_ENGINE, else auto. */
export function engineChoice(option: EngineChoice | undefined): EngineChoice {
  const raw = option ?? process.env.SVTRACE_ANALYZE_ENGINE ?? 'auto';
  if (raw !== 'auto' && raw !== 'native' && raw !== 'duckdb') {
    throw new SvtraceError('ANALYZE_BAD_ENGINE', `unknown analysis engine "${raw}"`, { hint: 'Use native, duckdb or auto (SVTRACE_ANALYZE_ENGINE or the engine option).' });
  }
  return raw;
}

/** Errors of the native engine after which the reference gives the answer instead. */
export const FALLBACK_CODES: readonly string[] = ['ANALYZE_NATIVE_DISORDER', 'ANALYZE_NATIVE_UNAVAILABLE', 'ANALYZE_NATIVE_BAD_ROW'];

/** The addon's error (code AJ_* or ANALYZE_*) as an SvtraceError. */
function nativeError(e: unknown): SvtraceError {
  const code = String((e as { code?: unknown }).code ?? '');
  const message = (e as Error).message;
  if (code === 'AJ_DISORDER') {
    return new SvtraceError('ANALYZE_NATIVE_DISORDER', `the native engine cannot merge these records: ${message}`, {
      hint: 'A record\'s rows are seconds out of time order (a clock step?): use --engine duckdb (or SVTRACE_ANALYZE_ENGINE=duckdb), which joins them in any order.',
      cause: e,
    });
  }
  if (code === 'AJ_BAD_ROW') {
    return new SvtraceError('ANALYZE_NATIVE_BAD_ROW', `the native engine met a row it cannot join: ${message}`, { hint: 'Use --engine duckdb.', cause: e });
  }
  if (code === 'AJ_UNAVAILABLE') {
    return new SvtraceError('ANALYZE_NATIVE_UNAVAILABLE', `the native analysis engine cannot run: ${message}`, { hint: 'Use --engine duckdb.', cause: e });
  }
  if (code.startsWith('ANALYZE_') && isErrorCode(code)) return new SvtraceError(code, message, { hint: 'Check the scratch directory (--tmp-dir) and the records.', cause: e });
  return new SvtraceError('ANALYZE_NATIVE_FAILED', `the native analysis engine failed: ${message}`, { hint: 'Use --engine duckdb and report this.', cause: e });
}

function pacingOf(e: Float64Array, rate: number): PacingStats {
  const [, , , n, mean, m2, min, max, maxj, sumj, reordered] = e;
  const some = n! > 0;
  return {
    pairs: n!,
    periodNs: 1e9 / rate,
    meanGapNs: some ? mean! : null,
    stddevGapNs: some ? Math.sqrt(m2! / n!) : null,
    minGapNs: some ? min! : null,
    maxGapNs: some ? max! : null,
    maxAbsJitterNs: some ? maxj! : null,
    meanAbsJitterNs: some ? sumj! / n! : null,
    reordered: reordered!,
  };
}

export async function nativeFigures(c: DuckDBConnection, req: FigureRequest, scratchDir: string, db: { threads: number; memoryLimit: string }): Promise<Figures> {
  const lib = load();
  if (!lib) throw new SvtraceError('ANALYZE_NATIVE_UNAVAILABLE', `the native analysis engine is unavailable: ${unavailableWhy}`, { hint: 'Build the addon (npm run install) or use --engine duckdb.' });
  const { disc, points, segs } = req;
  const P = points.length, ns = disc.streams.length;
  // Each row names its (svID, point) by DuckDB's hash of the pair (a string-to-enum cast costs 4× more);
  // the C side maps the hash back, code = stream · P + point, and refuses two pairs with one hash.
  const pairs = disc.streams.flatMap((s) => points.map((p) => `(${sqlString(s.svId)}, ${sqlString(p)})`));
  const hashed = await c.runAndReadAll(`SELECT hash(s, p) FROM (VALUES ${pairs.join(', ')}) v(s, p)`);
  const keys = BigUint64Array.from(hashed.getRows().map((r) => BigInt(r[0] as bigint)));
  // DuckDB keeps what it read of the files in memory (the external file cache): RSS would grow with the run.
  const setupSql = ['SET enable_external_file_cache = false'];
  const querySql: string[] = [];
  for (const m of disc.records) {
    querySql.push(`SELECT hash(sv_id, point) AS key, smp_cnt::INTEGER AS smp, t_ns::BIGINT AS t${req.mode === 'iter' ? ', iter::BIGINT AS iter' : ''}
      FROM (${await disc.rowsSql([m.dir])})`);
  }
  req.progress({ phase: 'join', done: 0, total: 1 });
  const handle = await lib.addon.ajRun({
    libPath: lib.libPath,
    spillDir: scratchDir,
    setupSql,
    querySql,
    iterMode: req.mode === 'iter' ? 1 : 0,
    baseNs: req.plan.baseSecond * 1_000_000_000n,
    secLo: req.plan.secLo,
    secHi: req.plan.secHi,
    points: P,
    keys,
    rates: Float64Array.from(disc.streams.map((s) => s.rate)),
    segments: Float64Array.from(segs.flatMap((s) => [s.fromCol, s.toCol])),
    thresholdsNs: Float64Array.from(req.thresholdsNs),
    lateNs: Float64Array.from(segs.map((s) => {
      const us = req.lateLimitsUs.get(s.index);
      return us === undefined ? NaN : us * 1000;
    })),
    worstN: req.worstCount,
    windowSeconds: 2,
    threads: db.threads,
    memoryLimit: db.memoryLimit,
  }).catch((e: unknown) => { throw nativeError(e); });
  try {
    req.progress({ phase: 'join', done: 1, total: 1 });
    const r = lib.addon.ajResult(handle);
    const nt = req.thresholdsNs.length, mw = 6 + nt;

    const fine = new Map<string, FineMoments>();
    for (const s of segs) {
      for (let st = 0; st <= ns; st++) {
        const j = s.index * (ns + 1) + st;
        const m = r.moments.subarray(j * mw, (j + 1) * mw);
        if (m[0] === 0) continue;
        const h = r.hist[j]!;
        const hist: FineHistogram = [];
        for (let q = 0; q < h.length; q += 2) hist.push({ bucket: h[q]!, count: h[q + 1]! });
        fine.set(`${s.index}:${st === ns ? -1 : st}`, {
          hist,
          moments: { count: m[0]!, minNs: m[1]!, maxNs: m[2]!, meanNs: m[3]!, stddevNs: m[4]!, negative: m[5]!, above: Array.from(m.subarray(6)) },
        });
      }
    }
    const seconds = new Map<number, { sec: number; maxNs: number; count: number }[]>();
    const worst = new Map<number, WorstRow[]>();
    const lateBySeg: LateRuns = new Map();
    for (const s of segs) {
      const a = r.seconds[s.index]!;
      const list: { sec: number; maxNs: number; count: number }[] = [];
      for (let q = 0; q < a.length; q += 3) list.push({ sec: a[q]!, maxNs: a[q + 1]!, count: a[q + 2]! });
      if (list.length > 0) seconds.set(s.index, list);
      if (r.worst[s.index]!.length > 0) worst.set(s.index, r.worst[s.index]!);
      const limitUs = req.lateLimitsUs.get(s.index);
      if (limitUs === undefined) continue;
      const runs = new Map<number, { length: number; sec: number; smpCnt: number }>();
      for (let st = 0; st < ns; st++) {
        const e = r.late.subarray((s.index * ns + st) * 3, (s.index * ns + st + 1) * 3);
        if (e[0]! > 0) runs.set(st, { length: e[0]!, sec: e[1]!, smpCnt: e[2]! });
      }
      lateBySeg.set(s.index, { limitUs, runs });
    }

    req.progress({ phase: 'percentiles', done: 0, total: 1 });
    const located: { key: string; seg: number; stream: number; bucket: number; r: number }[] = [];
    for (const t of percentileTargets(req)) {
      const h = fine.get(`${t.seg}:${t.stream}`)?.hist ?? [];
      const n = h.reduce((acc, x) => acc + x.count, 0);
      if (n === 0) continue;
      const where = locateRank(h, rank(n, t.p));
      if (where) located.push({ key: `${t.seg}:${t.stream}:${t.p}`, seg: t.seg, stream: t.stream, bucket: where.bucket, r: where.rankInBucket });
    }
    const values = lib.addon.ajPercentiles(handle, Float64Array.from(located.flatMap((l) => [l.seg, l.stream, l.bucket, l.r])));
    const pct = new Map<string, number>();
    located.forEach((l, i) => { if (!Number.isNaN(values[i]!)) pct.set(l.key, values[i]!); });

    const at = (stream: number, point: number) => r.points.subarray((stream * P + point) * 11, (stream * P + point + 1) * 11);
    const windows: Figures['windows'] = {
      coverage(stream, point): PointCoverage {
        const e = at(stream, point);
        return e[0] === 0 ? { seen: 0, loK: null, hiK: null } : { seen: e[0]!, loK: e[1]!, hiK: e[2]! };
      },
      pacing: (stream, point, rate) => pacingOf(at(stream, point), rate),
      samples: (stream) => r.samples[stream] ?? 0,
    };
    return { windows, fine, seconds, worst, lateBySeg, pct };
  } finally {
    lib.addon.ajClose(handle);
  }
}
