/**
 * The native engine (C) against the DuckDB reference on the same records:
 * 1.04 M samples from three "machines" (T0 Parquet, T1/T2 Parquet, T3/T4 CSV)
 * with losses at every point, duplicates (later and earlier), wraps every
 * second, local reordering of rows and of arrivals, latency spikes and a run
 * of late samples, two clock steps (+0.3 s, −0.7 s) and negative latencies.
 * Every figure must be the same: counts, percentiles, verdicts exactly; the
 * floating means and deviations within 1e-9. Then the same with the VM's
 * clock corrected by an offset, iter mode, and the fall back to the
 * reference when rows are seconds out of order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { analyzeRecords, type AnalysisResult, type AnalyzeOptions } from '../../src/analyze/index.ts';
import { nativeEngineStatus } from '../../src/analyze/native.ts';
import { BASE_S } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'svtrace-engines-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const SECONDS = 50;
const u = (salt: number) => `((hash(sid::BIGINT * 1000000007 + i * 64 + ${salt}) >> 11)::DOUBLE / 9007199254740992.0)`;
const every = (mod: number, rem: number) => `(hash(sid::BIGINT * 1000000007 + i * 64 + 40) % ${mod} = ${rem})`;

function manifest(role: string, points: string[], streams?: { svId: string; appId: number; rate: number }[]): string {
  return JSON.stringify({
    format: 'svtrace-record', formatVersion: 1, runId: 'engines', host: role, role, points, clock: { name: 'tai' },
    startedNs: `${BASE_S}000000000`, state: 'closed', svtraceVersion: 'test', ...(streams ? { streams } : {}),
  });
}

/** Writes pub (T0), hv (T1, T2) and vm (T3, T4, CSV) under `run`. */
async function writeWorld(run: string): Promise<void> {
  for (const r of ['pub', 'hv', 'vm']) mkdirSync(join(run, r), { recursive: true });
  writeFileSync(join(run, 'pub', 'manifest.json'), manifest('publish', ['T0']));
  writeFileSync(join(run, 'hv', 'manifest.json'), manifest('trace', ['T1', 'T2'], [0, 1, 2, 3].map((s) => ({ svId: `MU0${s + 1}`, appId: 16384 + s, rate: 4000 }))));
  writeFileSync(join(run, 'vm', 'manifest.json'), manifest('subscribe', ['T3', 'T4']));
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await inst.connect();
  const base = `${BASE_S}000000000`;
  await c.run(`CREATE TABLE s AS
    WITH st(sid, sv, rate) AS (VALUES (0, 'MU01', 4000), (1, 'MU02', 4000), (2, 'MU03', 4000), (3, 'MU04', 4000), (4, 'MU05', 4800)),
    x AS (SELECT sid, sv, rate, j AS i FROM st, range(0, ${SECONDS} * 4800) r(j) WHERE j < ${SECONDS} * rate),
    y AS (SELECT *, (i % rate)::INTEGER AS smp, (i // rate)::BIGINT AS sec FROM x),
    z AS (SELECT *, ${base}::BIGINT + sec * 1000000000 + (smp::BIGINT * 1000000000) // rate + 2000 + (${u(1)} * 1000)::BIGINT AS t0,
      (CASE WHEN sid = 0 AND sec = 10 AND smp BETWEEN 100 AND 130 THEN 300000 + smp
            WHEN ${u(4)} < 0.01 THEN 150000 + ${u(5)} * 850000 WHEN ${u(4)} > 0.99995 THEN 12000000 ELSE 10000 + ${u(3)} * 40000 END)::BIGINT AS hyp,
      (10000 + ${u(7)} * 20000 + CASE WHEN ${u(8)} < 0.001 THEN 400000 ELSE 0 END)::BIGINT AS sub
      FROM y)
    SELECT *, t0 + 5000 + (${u(2)} * 2000)::BIGINT AS t1,
      CASE WHEN sec BETWEEN 20 AND 21 THEN 300000000 WHEN sec = 30 THEN -700000000 ELSE 0 END AS vm_step,
      CASE WHEN sec = 40 THEN -50000 ELSE 0 END AS t4_step,
      ${every(50021, 7)} AS lost_wire, ${every(30011, 3)} AS lost_t2, ${every(40009, 5)} AS lost_vm, ${every(70001, 1)} AS lost_t4,
      ${every(90001, 2)} AS no_t0, ${every(20011, 4)} AS dup_t3, ${every(25013, 6)} AS dup_t1, ${u(9)} * 3000000 AS jitter
    FROM z`);
  const cols = (point: string, t: string) => `'${point}' AS point, sv AS sv_id, (16384 + sid)::INTEGER AS app_id, smp AS smp_cnt, sec AS iter, (${t})::BIGINT AS t_ns`;
  await c.run(`COPY (SELECT ${cols('T0', 't0')}, 'kernel' AS src, NULL::SMALLINT AS cpu FROM s WHERE NOT no_t0 ORDER BY t_ns)
    TO '${join(run, 'pub', 'points-000001.parquet')}' (FORMAT parquet, ROW_GROUP_SIZE 100000)`);
  // hv: T1 and T2 by time of writing; a duplicate T1 with an earlier time written 2 ms later
  await c.run(`COPY (SELECT point, sv_id, app_id, smp_cnt, iter, t_ns, 'bpf' AS src, 1::SMALLINT AS cpu FROM (
      SELECT ${cols('T1', 't1')}, t1 AS w FROM s WHERE NOT lost_wire
      UNION ALL SELECT ${cols('T1', 't1 - 500')}, t1 + 2000000 AS w FROM s WHERE NOT lost_wire AND dup_t1
      UNION ALL SELECT ${cols('T2', 't1 + hyp')}, t1 + hyp AS w FROM s WHERE NOT lost_wire AND NOT lost_t2) ORDER BY w)
    TO '${join(run, 'hv', 'points-000001.parquet')}' (FORMAT parquet, ROW_GROUP_SIZE 100000)`);
  // vm: written in arrival order give or take 3 ms, its clock stepped +0.3 s then −0.7 s; two CSV segments
  const vm = `SELECT point, sv_id, app_id, smp_cnt, iter, t_ns, 'kernel' AS src, NULL::SMALLINT AS cpu, w FROM (
      SELECT ${cols('T3', 't1 + hyp + 5000 + vm_step')}, t1 + hyp + 5000 + jitter AS w FROM s WHERE NOT lost_wire AND NOT lost_vm
      UNION ALL SELECT ${cols('T3', 't1 + hyp + 5000 + vm_step + 1000000')}, t1 + hyp + 1005000 AS w FROM s WHERE NOT lost_wire AND NOT lost_vm AND dup_t3
      UNION ALL SELECT ${cols('T4', 't1 + hyp + 5000 + sub + vm_step + t4_step')}, t1 + hyp + 5000 + sub + jitter AS w FROM s WHERE NOT lost_wire AND NOT lost_vm AND NOT lost_t4)`;
  const half = `${base}::BIGINT + ${SECONDS / 2}::BIGINT * 1000000000`;
  for (const [n, cond] of [[1, `w < ${half}`], [2, `w >= ${half}`]] as const) {
    await c.run(`COPY (SELECT * EXCLUDE (w) FROM (${vm}) WHERE ${cond} ORDER BY w) TO '${join(run, 'vm', `points-00000${n}.csv`)}' (HEADER)`);
  }
  c.closeSync();
  inst.closeSync();
}

/** Every difference between two results (integers exactly, other numbers within 1e-9), by path. */
function differences(a: unknown, b: unknown, path = '', out: string[] = []): string[] {
  if (out.length > 20) return out;
  if (typeof a === 'number' && typeof b === 'number') {
    const ok = Number.isInteger(a) && Number.isInteger(b) ? a === b : Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b), 1);
    if (!ok) out.push(`${path}: ${a} vs ${b}`);
  } else if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) out.push(`${path}: ${a.length} vs ${b.length} items`);
    else a.forEach((x, i) => differences(x, b[i], `${path}[${i}]`, out));
  } else if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) differences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`, out);
  } else if (a !== b) {
    out.push(`${path}: ${String(a)} vs ${String(b)}`);
  }
  return out;
}

const figures = (r: AnalysisResult) => ({ ...r, elapsedMs: 0, phaseMs: {}, engine: 'any' });

async function both(paths: string[], options: AnalyzeOptions): Promise<{ native: AnalysisResult; reference: AnalysisResult }> {
  const native = await analyzeRecords(paths, { ...options, engine: 'native' });
  const reference = await analyzeRecords(paths, { ...options, engine: 'duckdb' });
  assert.equal(native.engine, 'native');
  assert.equal(reference.engine, 'duckdb');
  return { native, reference };
}

const verdicts = { limitsUs: { Thyp: 100, Tsub: 100, Ttot: 500, Ttrans_p99_9: 50 }, maxMissing: 0 };

test('native engine = DuckDB reference on 1 M samples with loss, duplicates, wraps, reordering and clock steps', async () => {
  assert.ok(nativeEngineStatus().available, `the native engine must be built for this test: ${nativeEngineStatus().why}`);
  const run = join(dir, 'world');
  await writeWorld(run);
  const { native, reference } = await both([run], { verdicts });
  assert.deepEqual(differences(figures(native), figures(reference)), []);
  const p99 = reference.segments[1]!.byStream[2]!.percentilesNs;
  assert.equal(differences(figures(native), figures({ ...reference, segments: [reference.segments[0]!, { ...reference.segments[1]!, byStream: [...reference.segments[1]!.byStream.slice(0, 2), { ...reference.segments[1]!.byStream[2]!, percentilesNs: { ...p99, p99: p99.p99! + 1 } }] }, ...reference.segments.slice(2)] })).length, 1);

  // The run holds what the comparison is about (so this test can fail).
  assert.ok(native.samples >= 1_000_000, `${native.samples} samples`);
  const mu01 = native.streams.find((s) => s.svId === 'MU01')!, mu05 = native.streams.find((s) => s.svId === 'MU05')!;
  assert.equal(mu01.rateFrom, 'manifest');
  assert.deepEqual([mu05.rateFrom, mu05.rate], ['data', 4800]);
  const pts = native.streams.flatMap((s) => s.points);
  assert.ok(pts.some((p) => p.point === 'T1' && p.duplicates > 0) && pts.some((p) => p.point === 'T3' && p.duplicates > 0));
  assert.ok(pts.some((p) => p.point === 'T2' && p.lost > 0) && native.streams.some((s) => s.missing > 0));
  assert.ok(pts.some((p) => p.point === 'T4' && p.pacing.reordered > 0));
  const seg = (name: string) => native.segments.find((s) => s.segment === name)!;
  assert.ok(seg('Tsub').all.negative > 0 && seg('Ttrans').all.maxNs! > 250_000_000);
  assert.ok(seg('Thyp').all.longestLateRun!.length >= 31);
  assert.ok(native.verdicts.some((v) => v.status === 'fail') && native.verdicts.some((v) => v.statistic === 'p99.9'));
});

test('native engine = DuckDB reference with the VM\'s clock corrected: same figures; within the VM not a ns moved', async () => {
  const run = join(dir, 'world');
  // −100 ms keeps every VM row in the second it was in (its clock steps put rows at +0.3 s and −0.7 s), so the VM's own pairs are the same
  const offset = { machine: 'subscribe', offsetNs: '-100000007', uncertaintyNs: '1500000' };
  const { native, reference } = await both([run], { verdicts, clockOffsets: [offset] });
  assert.deepEqual(differences(figures(native), figures(reference)), []);
  const plain = await analyzeRecords([run], { verdicts, engine: 'native' });
  const seg = (r: AnalysisResult, name: string) => r.segments.find((s) => s.segment === name)!;
  const ints = (r: AnalysisResult, name: string) => { const a = seg(r, name).all; return [a.count, a.minNs, a.maxNs, a.negative, a.percentilesNs, a.above]; };
  assert.deepEqual(ints(native, 'Tsub'), ints(plain, 'Tsub'));
  assert.deepEqual(ints(native, 'Thyp'), ints(plain, 'Thyp'));
  // the correction reached the cross-machine segments (the VM is 100 ms ahead of the truth now: Ttrans about +100 ms)
  assert.ok(seg(native, 'Ttrans').all.percentilesNs.p50! > 99_000_000 && seg(plain, 'Ttrans').all.percentilesNs.p50! < 1_000_000);
  assert.deepEqual([seg(native, 'Ttot').clock.corrected, seg(native, 'Ttot').clock.uncertaintyNs], [true, 1_500_000]);
});

test('native engine = DuckDB reference joining by iter within one record', async () => {
  const { native, reference } = await both([join(dir, 'world', 'vm')], { join: 'iter', segments: [{ name: 'Tvm', from: 'T3', to: 'T4' }] });
  assert.deepEqual(differences(figures(native), figures(reference)), []);
  assert.ok(native.samples > 900_000);
});

test('rows seconds out of time order: auto falls back to the reference, native alone says so', async () => {
  const rec = join(dir, 'straggler');
  mkdirSync(rec, { recursive: true });
  writeFileSync(join(rec, 'manifest.json'), manifest('subscribe', ['T3', 'T4']));
  const lines = ['point,sv_id,app_id,smp_cnt,iter,t_ns,src,cpu'];
  const t = (sec: number, smp: number, off: number) => (BASE_S + BigInt(sec)) * 1_000_000_000n + BigInt(smp * 250_000 + off);
  for (let sec = 0; sec < 30; sec++) {
    for (let smp = 0; smp < 4000; smp++) lines.push(`T3,"MU01",16384,${smp},${sec},${t(sec, smp, 1000)},kernel,`, `T4,"MU01",16384,${smp},${sec},${t(sec, smp, 20_000)},app,`);
  }
  lines.push(`T3,"MU01",16384,7,1,${t(1, 7, 900)},kernel,`); // a duplicate of second 1 written 29 s later
  writeFileSync(join(rec, 'points-000001.csv'), lines.join('\n') + '\n');
  const auto = await analyzeRecords([rec], { engine: 'auto' });
  const reference = await analyzeRecords([rec], { engine: 'duckdb' });
  assert.equal(auto.engine, 'duckdb');
  assert.ok(auto.warnings.some((w) => w.code === 'ANALYZE_ENGINE_FALLBACK'));
  assert.deepEqual(differences(figures(auto), figures(reference)).filter((d) => !d.startsWith('.warnings')), []);
  await assert.rejects(analyzeRecords([rec], { engine: 'native' }), (e: Error & { code?: string }) => e.code === 'ANALYZE_NATIVE_DISORDER');
});
