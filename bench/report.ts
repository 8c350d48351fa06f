/**
 * `svtrace report` at the scale of a long test, beside pandas in the same run.
 *   npm run bench -- report [--samples N[,N2...]] [--streams 8] [--pandas-samples M] [--reference] [--keep DIR]
 * (--pandas-samples 0 skips pandas; --reference also times the DuckDB engine at every size;
 * --keep DIR keeps and reuses the synthetic runs)
 * Writes a synthetic run straight to Parquet with DuckDB: N samples (default
 * 48 M = 8 streams × 4000/s × 1500 s), two records from two "machines" —
 * hypervisor (T1, T2) and VM (T3, T4), in 2 M-row segments like the recorder's
 * — lognormal latencies (Thyp ~20 µs, Ttrans ~6 µs, Tsub ~15 µs), 0.7 % of
 * samples delayed 150..1050 µs in the hypervisor, 2e-5 up to 15 ms, and a few
 * samples lost on each side. Then times `svtrace report` (a child process:
 * wall time, peak RSS) and the same statistics in pandas (one python3
 * process, CSV input: Debian's pandas has no Parquet engine), and prints the
 * ratio. pandas runs on the first M samples (default min(N, 4 M)); when M < N
 * its time is extrapolated linearly and the output says so.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { Command } from 'commander';
import type { AnalysisResult } from '../src/analyze/index.ts';
import { register as registerReport } from '../src/cli/report.ts';

const SELF = fileURLToPath(import.meta.url);
const ROOT = resolve(SELF, '..', '..');
const BASE_S = 1_764_403_200; // 2025-11-29T08:00:00Z
const RATE = 4000;
const SEGMENT_SAMPLES = 1_000_000; // 2 M rows of 2 points

export interface SyntheticRun {
  dir: string;
  samples: number;
  streams: number;
  rows: number;
}

/** A uniform [0, 1) from a hash of the sample index and a salt: deterministic, thread-safe. */
const u = (salt: number) => `((hash(j * 32 + ${salt}) >> 11)::DOUBLE / 9007199254740992.0)`;
const normal = (s1: number, s2: number) => `(sqrt(-2 * ln(1 - ${u(s1)})) * cos(2 * pi() * ${u(s2)}))`;
const lognormalNs = (medianNs: number, sigma: number, s1: number, s2: number) => `exp(${Math.log(medianNs)} + ${sigma} * ${normal(s1, s2)})`;

function manifest(role: string, host: string, points: string[], streams: number): string {
  return JSON.stringify({
    format: 'svtrace-record', formatVersion: 1, runId: 'bench-report', host, role, points, clock: { name: 'tai' },
    startedNs: `${BASE_S}000000000`, state: 'closed', svtraceVersion: 'bench',
    streams: Array.from({ length: streams }, (_, s) => ({ svId: `MU${String(s + 1).padStart(2, '0')}`, appId: 0x4000 + s, rate: RATE })),
  }, null, 2) + '\n';
}

export async function writeSyntheticRun(dir: string, samples: number, streams = 8): Promise<SyntheticRun> {
  const hv = join(dir, 'hv'), vm = join(dir, 'vm');
  mkdirSync(hv, { recursive: true });
  mkdirSync(vm, { recursive: true });
  writeFileSync(join(hv, 'manifest.json'), manifest('trace', 'hypervisor-1', ['T1', 'T2'], streams));
  writeFileSync(join(vm, 'manifest.json'), manifest('subscribe', 'vm-1', ['T3', 'T4'], streams));
  const inst = await DuckDBInstance.create(':memory:', { threads: '2', memory_limit: '1GB' });
  const c = await inst.connect();
  const sample = `
    SELECT j, j % ${streams} AS s, j // ${streams} AS i,
      ${BASE_S}::BIGINT * 1000000000 + (j // ${streams}) * ${1e9 / RATE} + 5000 + (${u(1)} * 2000)::BIGINT AS t1,
      (${lognormalNs(20_000, 0.25, 2, 3)} + CASE WHEN ${u(4)} < 0.007 THEN 150000 + ${u(5)} * 900000 WHEN ${u(4)} > 0.99998 THEN 1000000 + ${u(6)} * 14000000 ELSE 0 END)::BIGINT AS d2,
      ${lognormalNs(6_000, 0.2, 7, 8)}::BIGINT AS d3,
      ${lognormalNs(15_000, 0.3, 9, 10)}::BIGINT AS d4,
      hash(j * 32 + 11) % 2000003 = 5 AS lost_net, hash(j * 32 + 12) % 3000017 = 9 AS lost_hyp, hash(j * 32 + 13) % 4000037 = 3 AS lost_vm
    FROM range(LO, HI) r(j)`;
  const cols = `'MU' || lpad((s + 1)::VARCHAR, 2, '0') AS sv_id, (16384 + s)::INTEGER AS app_id, (i % ${RATE})::INTEGER AS smp_cnt, (i // ${RATE})::BIGINT AS iter`;
  let file = 0;
  for (let lo = 0; lo < samples; lo += SEGMENT_SAMPLES) {
    const hi = Math.min(samples, lo + SEGMENT_SAMPLES);
    const name = `points-${String(++file).padStart(6, '0')}.parquet`;
    const src = sample.replace('LO', String(lo)).replace('HI', String(hi));
    await c.run(`COPY (SELECT unnest(['T1', 'T2']) AS point, ${cols}, unnest([t1, t1 + d2]) AS t_ns, 'bpf' AS src, (s % 2)::SMALLINT AS cpu
      FROM (${src}) WHERE NOT lost_net) TO '${join(hv, name)}' (FORMAT parquet, COMPRESSION zstd)`);
    await c.run(`COPY (SELECT unnest(CASE WHEN lost_vm THEN ['T3'] ELSE ['T3', 'T4'] END) AS point, ${cols},
        unnest(CASE WHEN lost_vm THEN [t1 + d2 + d3] ELSE [t1 + d2 + d3, t1 + d2 + d3 + d4] END) AS t_ns, 'kernel' AS src, 1::SMALLINT AS cpu
      FROM (${src}) WHERE NOT lost_net AND NOT lost_hyp) TO '${join(vm, name)}' (FORMAT parquet, COMPRESSION zstd)`);
  }
  const [r] = (await c.runAndReadAll(`SELECT count(*)::DOUBLE AS n FROM read_parquet('${dir}/*/*.parquet')`)).getRowObjectsJS();
  c.closeSync();
  inst.closeSync();
  return { dir, samples, streams, rows: Number(r?.n) };
}

/** The same statistics in pandas: join on (svID, smpCnt, second), segments, nearest-rank percentiles, thresholds, histogram, per-second max, worst 20, late runs, pacing, loss. */
const PANDAS = String.raw`
import sys, json, time, resource
import numpy as np, pandas as pd
t0 = time.time()
files, base_ns = sys.argv[1].split(','), int(sys.argv[2])
parts = [pd.read_csv(f, usecols=['point', 'sv_id', 'smp_cnt', 't_ns'], dtype={'point': str, 'sv_id': str, 'smp_cnt': 'int32', 't_ns': 'int64'}, keep_default_na=False) for f in files]
df = pd.concat(parts, ignore_index=True); del parts
df['point'] = df['point'].astype('category'); df['sv_id'] = df['sv_id'].astype('category')
need = df.groupby('sv_id', observed=True).smp_cnt.max() + 1
rate = need.map(lambda n: next((r for r in (4000, 4800, 12800, 15360) if r >= n), n))
r = df['sv_id'].map(rate).astype('float64').to_numpy()
df['S'] = np.floor((df.t_ns.to_numpy() - base_ns) / 1e9 - df.smp_cnt.to_numpy() / r + 0.5).astype('int64')
df['t'] = df.t_ns - base_ns  # relative: exact as float64 after unstack (absolute ns exceed 2^53)
w = df.groupby(['sv_id', 'S', 'smp_cnt', 'point'], observed=True, sort=False).t.min().unstack('point')
rows = len(df); del df
w['k'] = w.index.get_level_values('S') * w.index.get_level_values('sv_id').map(rate).to_numpy() + w.index.get_level_values('smp_cnt')
def nr(s, p): return s[min(len(s), max(1, int(np.ceil(p / 100 * len(s))))) - 1]
def stats(v):
    s = np.sort(v.to_numpy())
    return {'count': int(len(s)), 'min': float(s[0]), 'mean': float(s.mean()), 'std': float(s.std()), 'max': float(s[-1]),
            **{f'p{p}': float(nr(s, p)) for p in (50, 90, 99, 99.9, 99.99)}, **{f'gt{t}': int((s > t * 1000).sum()) for t in (50, 100, 200, 500, 1000, 10000)}}
out, limits = {'samples': int(len(w)), 'rows': rows, 'segments': {}}, {'Thyp': 100, 'Tsub': 100}
edges = 10 ** (3 + np.arange(51) / 10)
for name, a, b in (('Thyp', 'T1', 'T2'), ('Ttrans', 'T2', 'T3'), ('Tsub', 'T3', 'T4'), ('Tseapath', 'T1', 'T4')):
    v = (w[b] - w[a]).dropna()
    seg = {'all': stats(v), 'byStream': {k: stats(g) for k, g in v.groupby(level='sv_id', observed=True)}}
    seg['histogram'] = np.histogram(v.to_numpy(), bins=edges)[0].tolist()
    seg['perSecondMax'] = int(len(v.groupby(level='S').max()))
    seg['worst'] = v.nlargest(20).tolist()
    if name in limits:
        late = w.loc[v[v > limits[name] * 1000].index, 'k'].groupby(level='sv_id', observed=True)
        seg['longestLateRun'] = max([0] + [int(pd.Series(np.sort(g.to_numpy())).diff().ne(1).cumsum().value_counts().max()) for _, g in late])
    out['segments'][name] = seg
pacing = {}
for p in ('T1', 'T2', 'T3', 'T4'):
    x = w[['k', p]].dropna().reset_index(level=['S', 'smp_cnt'], drop=True).sort_values('k')
    g = x.groupby(level='sv_id', observed=True)
    gap, dk = g[p].diff(), g['k'].diff()
    j = gap[dk == 1]
    span = g['k'].max() - g['k'].min() + 1
    pacing[p] = {'pairs': int(len(j)), 'meanGap': float(j.mean()), 'reordered': int((j < 0).sum()), 'lost': int((span - g['k'].count()).sum())}
out['points'] = pacing
out['seconds'] = time.time() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
out['maxRssKb'], out['cpuSeconds'] = ru.ru_maxrss, ru.ru_utime + ru.ru_stime
print(json.dumps(out))
`;

interface Timed { seconds: number; cpuSeconds: number; maxRssKb: number; stdout: string; load: string }

function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Timed> {
  return new Promise((resolveP, reject) => {
    const started = performance.now();
    const load0 = loadavg()[0]!;
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const rss = /BENCH_MAXRSS_KB=(\d+) CPU_S=([\d.]+)/.exec(stderr);
      if (code !== 0 && code !== 1) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      resolveP({ seconds, cpuSeconds: rss ? Number(rss[2]) : NaN, maxRssKb: rss ? Number(rss[1]) : NaN, stdout, load: `load ${load0.toFixed(1)}→${loadavg()[0]!.toFixed(1)}` });
    });
  });
}

/** `svtrace report` in a child (this file with --child): wall time and peak RSS of the whole process. */
async function timeReport(run: string, out: string, engine: 'native' | 'duckdb'): Promise<{ t: Timed; result: AnalysisResult }> {
  const t = await runChild(process.execPath, ['--import', 'tsx', SELF, '--child', 'report', run, '--out', out, '--json', '--engine', engine]);
  const result = JSON.parse(t.stdout) as AnalysisResult;
  if (result.engine !== engine) throw new Error(`asked for the ${engine} engine, ${result.engine} ran`);
  return { t, result };
}

function describe(n: number, engine: string, r: { t: Timed; result: AnalysisResult }): string {
  const seapath = r.result.segments.find((s) => s.segment === 'Tseapath')!.all;
  return `svtrace report (${engine}), ${n} samples: ${r.t.seconds.toFixed(1)} s wall (${r.t.cpuSeconds} CPU-s, ${r.t.load}), peak RSS ${mb(r.t.maxRssKb)}, ` +
    `${((r.t.cpuSeconds / n) * 1e9).toFixed(0)} CPU-ns/sample; Tseapath mean ${(seapath.meanNs! / 1000).toFixed(1)} µs, max ${(seapath.maxNs! / 1000).toFixed(0)} µs, ` +
    `${seapath.above.find((a) => a.thresholdUs === 200)?.count} over 200 µs\n  phases: ${Object.entries(r.result.phaseMs ?? {}).map(([p, ms]) => `${p} ${(ms / 1000).toFixed(1)} s`).join(', ')}`;
}

async function toCsv(run: string, out: string): Promise<string[]> {
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await inst.connect();
  const files = ['hv', 'vm'].map((r) => join(out, `${r}.csv`));
  for (const [i, r] of ['hv', 'vm'].entries()) await c.run(`COPY (SELECT * FROM read_parquet('${join(run, r)}/*.parquet')) TO '${files[i]}' (HEADER)`);
  c.closeSync();
  inst.closeSync();
  return files;
}

const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;
const num = (v: number | null | undefined) => (v === null || v === undefined ? 'null' : String(Math.round(v)));

export async function benchReport(args: string[]): Promise<void> {
  const arg = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
  const sizes = (arg('--samples') ?? '48000000,96000000').split(',').map(Number);
  const streams = Number(arg('--streams') ?? 8);
  const pandasSamples = Math.min(Math.max(...sizes), Number(arg('--pandas-samples') ?? 4_000_000));
  const reference = args.includes('--reference');
  const keep = arg('--keep');
  const dir = keep ? resolve(keep) : mkdtempSync(join(tmpdir(), 'svtrace-bench-report-'));
  try {
    const runs = [...sizes, ...(pandasSamples > 0 && !sizes.includes(pandasSamples) ? [pandasSamples] : [])].map((n) => ({ n, dir: join(dir, `run-${n}`) }));
    for (const r of runs) {
      if (existsSync(join(r.dir, 'done'))) { console.log(`reusing ${r.dir}`); continue; }
      rmSync(r.dir, { recursive: true, force: true });
      const t = performance.now();
      const g = await writeSyntheticRun(r.dir, r.n, streams);
      writeFileSync(join(r.dir, 'done'), '');
      console.log(`synthetic run: ${g.samples} samples, ${streams} streams, ${g.rows} point rows (T1..T4 on two machines) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    // The native engine at every size (targets: 48 M samples in ≤ 18 s wall, ≤ 1 GiB, time linear and memory flat in the size).
    const timed: { n: number; r: Awaited<ReturnType<typeof timeReport>> }[] = [];
    for (const n of sizes) {
      const run = runs.find((x) => x.n === n)!;
      const r = await timeReport(run.dir, join(dir, `report-${n}`), 'native');
      timed.push({ n, r });
      console.log(describe(n, 'native', r));
      if (reference) {
        const d = await timeReport(run.dir, join(dir, `report-${n}-duckdb`), 'duckdb');
        console.log(describe(n, 'duckdb reference', d));
        console.log(`  duckdb/native = ${(d.t.seconds / r.t.seconds).toFixed(1)}× wall, ${(d.t.cpuSeconds / r.t.cpuSeconds).toFixed(1)}× CPU; same figures: ${sameFigures(r.result, d.result)}`);
      }
    }
    if (timed.length > 1) {
      const [a, b] = [timed[0]!, timed.at(-1)!];
      console.log(`growth ${a.n} → ${b.n} samples (${(b.n / a.n).toFixed(1)}×): CPU ${(b.r.t.cpuSeconds / a.r.t.cpuSeconds).toFixed(2)}×, wall ${(b.r.t.seconds / a.r.t.seconds).toFixed(2)}×, peak RSS ${mb(a.r.t.maxRssKb)} → ${mb(b.r.t.maxRssKb)}`);
    }
    if (pandasSamples <= 0) return;
    const sub = runs.find((x) => x.n === pandasSamples)!;
    const ours = timed.find((x) => x.n === pandasSamples)?.r ?? await timeReport(sub.dir, join(dir, 'report-sub'), 'native');
    const ref = await timeReport(sub.dir, join(dir, 'report-sub-duckdb'), 'duckdb');
    const csv = await toCsv(sub.dir, dir);
    const py = await runChild('/usr/bin/python3', ['-c', PANDAS, csv.join(','), `${BASE_S}000000000`]);
    const theirs = JSON.parse(py.stdout) as { seconds: number; cpuSeconds: number; maxRssKb: number; segments: Record<string, { all: Record<string, number>; longestLateRun?: number }> };
    console.log(`on ${sub.n} samples: svtrace native ${ours.t.seconds.toFixed(1)} s (${ours.t.cpuSeconds} CPU-s, ${ours.t.load}), ${mb(ours.t.maxRssKb)}; ` +
      `svtrace duckdb ${ref.t.seconds.toFixed(1)} s (${ref.t.cpuSeconds} CPU-s), ${mb(ref.t.maxRssKb)}; ` +
      `pandas ${py.seconds.toFixed(1)} s (${theirs.cpuSeconds.toFixed(1)} CPU-s, ${py.load}; CSV input), ${mb(theirs.maxRssKb)}`);
    console.log(`  pandas/native = ${(py.seconds / ours.t.seconds).toFixed(1)}× wall, ${(theirs.cpuSeconds / ours.t.cpuSeconds).toFixed(1)}× CPU; ` +
      `duckdb/native = ${(ref.t.seconds / ours.t.seconds).toFixed(1)}× wall, ${(ref.t.cpuSeconds / ours.t.cpuSeconds).toFixed(1)}× CPU; native = duckdb figures: ${sameFigures(ours.result, ref.result)}`);
    for (const t of timed.filter((x) => x.n > sub.n)) {
      const est = py.seconds * (t.n / sub.n);
      console.log(`pandas for ${t.n} samples, extrapolated linearly (not measured): ~${est.toFixed(0)} s → ~${(est / t.r.t.seconds).toFixed(1)}× svtrace native's measured ${t.r.t.seconds.toFixed(1)} s`);
    }
    // Cross-check: the same figures from both, on the same samples.
    let mismatches = 0;
    for (const s of ours.result.segments) {
      const p = theirs.segments[s.segment]?.all;
      if (!p) continue;
      const pairs: [string, number | null, number][] = [['count', s.all.count, p.count!], ['min', s.all.minNs, p.min!], ['max', s.all.maxNs, p.max!],
        ['p50', s.all.percentilesNs.p50, p.p50!], ['p99', s.all.percentilesNs.p99, p.p99!], ['p99.99', s.all.percentilesNs['p99.99'], p['p99.99']!],
        ['> 200 µs', s.all.above.find((a) => a.thresholdUs === 200)?.count ?? null, p.gt200!]];
      if (s.all.longestLateRun) pairs.push(['longest late run', s.all.longestLateRun.length, theirs.segments[s.segment]!.longestLateRun ?? -1]);
      const bad = pairs.filter(([, a, b]) => num(a) !== num(b));
      mismatches += bad.length;
      console.log(`  ${s.segment}: ${bad.length === 0 ? 'svtrace = pandas' : bad.map(([n, a, b]) => `${n} ${num(a)} vs ${num(b)}`).join(', ')} (${pairs.map(([n]) => n).join(', ')})`);
    }
    if (mismatches > 0) console.log(`  ${mismatches} figure(s) differ between svtrace and pandas`);
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether two results carry the same figures (all but timings and the engine's name; floats within 1e-9). */
function sameFigures(a: AnalysisResult, b: AnalysisResult): string {
  const strip = (r: AnalysisResult) => ({ ...r, elapsedMs: 0, phaseMs: {}, engine: '' });
  let bad = 0;
  const walk = (x: unknown, y: unknown): void => {
    if (typeof x === 'number' && typeof y === 'number') {
      if (Number.isInteger(x) && Number.isInteger(y) ? x !== y : Math.abs(x - y) > 1e-9 * Math.max(Math.abs(x), Math.abs(y), 1)) bad++;
    } else if (x !== null && y !== null && typeof x === 'object' && typeof y === 'object') {
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k]);
    } else if (x !== y) bad++;
  };
  walk(strip(a), strip(b));
  return bad === 0 ? 'yes' : `NO (${bad} differ)`;
}

if (process.argv[2] === '--child') {
  // The CLI as a user runs it, in this process, reporting its peak RSS on exit.
  process.on('exit', () => {
    const u = process.resourceUsage();
    process.stderr.write(`BENCH_MAXRSS_KB=${u.maxRSS} CPU_S=${((u.userCPUTime + u.systemCPUTime) / 1e6).toFixed(1)}\n`);
  });
  const program = new Command().name('svtrace');
  registerReport(program);
  await program.parseAsync(['node', 'svtrace', ...process.argv.slice(3)]);
} else if (process.argv[1] === SELF) {
  await benchReport(process.argv.slice(2));
}
