/**
 * Test records written as FORMAT.md describes (manifest.json + CSV journal or
 * Parquet segment), and the brute-force statistics to check the analysis.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { readCsvSql } from '../../src/record/schema.ts';
import { nearestRank } from '../../src/util/percentile.ts';

export const BASE_S = 1_764_403_200n;
export const NS = 1_000_000_000n;

export interface TestRow {
  point: string;
  svId: string;
  smpCnt: number;
  iter?: number;
  tNs: bigint;
  appId?: number;
}

export interface RecordSpec {
  role: string;
  host: string;
  points: string[];
  clock?: 'tai' | 'realtime';
  runId?: string;
  streams?: { svId: string; appId?: number; rate?: number }[];
  format?: 'csv' | 'parquet';
  pointsAfter?: Record<string, string>;
}

/** A deterministic PRNG (mulberry32) in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const csvQuote = (s: string) => `"${s.replaceAll('"', '""')}"`;

export async function writeRecord(dir: string, spec: RecordSpec, rows: readonly TestRow[]): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({
    format: 'svtrace-record', formatVersion: 1, runId: spec.runId ?? 'test-run', host: spec.host, role: spec.role, points: spec.points,
    clock: { name: spec.clock ?? 'tai' }, startedNs: `${BASE_S}000000000`, state: 'closed', svtraceVersion: 'test',
    ...(spec.streams ? { streams: spec.streams } : {}),
    ...(spec.pointsAfter ? { pointsAfter: spec.pointsAfter } : {}),
  }));
  const lines = ['point,sv_id,app_id,smp_cnt,iter,t_ns,src,cpu'];
  for (const r of rows) lines.push(`${r.point},${csvQuote(r.svId)},${r.appId ?? 16384},${r.smpCnt},${r.iter ?? 0},${r.tNs},kernel,`);
  const csv = join(dir, 'points-000001.csv');
  writeFileSync(csv, lines.join('\n') + '\n');
  if (spec.format === 'parquet') {
    const inst = await DuckDBInstance.create(':memory:');
    const c = await inst.connect();
    await c.run(`COPY (SELECT * FROM ${readCsvSql([csv])}) TO '${join(dir, 'points-000001.parquet')}' (FORMAT parquet, ROW_GROUP_SIZE 2048)`);
    c.closeSync();
    inst.closeSync();
    rmSync(csv);
  }
  return dir;
}

/** A sample's time at a point: base second + s + smpCnt/rate + offset ns. */
export function tAt(second: number, smpCnt: number, rate: number, offsetNs: number): bigint {
  return (BASE_S + BigInt(second)) * NS + (BigInt(smpCnt) * NS) / BigInt(rate) + BigInt(Math.round(offsetNs));
}

export interface Brute {
  count: number;
  min: number;
  max: number;
  mean: number;
  p: Record<string, number>;
  above: (thresholdNs: number) => number;
  negative: number;
}

export function brute(values: readonly number[]): Brute {
  const sorted = Float64Array.from(values).sort();
  const p: Record<string, number> = {};
  for (const q of [50, 90, 99, 99.9, 99.99]) p[`p${q}`] = nearestRank(sorted, q);
  return {
    count: values.length,
    min: sorted[0]!,
    max: sorted[sorted.length - 1]!,
    mean: values.reduce((s, v) => s + v, 0) / values.length,
    p,
    above: (t) => values.filter((v) => v > t).length,
    negative: values.filter((v) => v < 0).length,
  };
}

/** Longest run of consecutive sample numbers in `late` (sorted or not). */
export function longestRun(late: readonly number[]): number {
  const s = [...late].sort((a, b) => a - b);
  let best = 0, run = 0;
  for (let i = 0; i < s.length; i++) {
    run = i > 0 && s[i] === s[i - 1]! + 1 ? run + 1 : 1;
    best = Math.max(best, run);
  }
  return best;
}
