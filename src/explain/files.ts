/**
 * The explain directory of a record: `explanations.json` (the result as
 * plain JSON, bigints as decimal strings) and one Chrome/Perfetto trace per
 * worst sample (`worst-N.trace.json`) and per normal sample shown beside it
 * (`normal-N.trace.json`). Written by `svtrace trace --explain` and the demo
 * into RECORD/explain/; read back by `svtrace report`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';
import type { ChromeTrace } from './chrome.ts';
import type { Explanation, SampleSegment } from './explain.ts';
import { explainJson } from './render.ts';
import type { ExplainFigures, ExplainRunResult, NormalSample } from './run.ts';

export const EXPLAIN_DIR = 'explain';
export const EXPLANATIONS_FILE = 'explanations.json';

/** A point as stored: times as decimal strings (int64 ns). */
export interface StoredPoint { point: string; cpu: number; tMonoNs: string; tNs?: string }

export type StoredExplanation = Omit<Explanation, 'from' | 'to'> & { from: StoredPoint; to: StoredPoint };

export type StoredNormal = Omit<SampleSegment, 'from' | 'to'> & { from: StoredPoint; to: StoredPoint; trace: string };

/** explanations.json as written (and as `svtrace report` reads it). */
export interface StoredExplanations extends ExplainFigures {
  format: 'svtrace-explanations';
  formatVersion: 1;
  windowS: number | null;
  points: { lostEvents: number; lostLines: number; frames: Array<{ point: string; frames: number; kernelFrames: number | null }> };
  worst: Array<StoredExplanation & { trace: string; normal: StoredNormal | null }>;
  explanations: StoredExplanation[];
}

const stored = (p: { point: string; cpu: number; tMonoNs: bigint; tNs?: bigint }): StoredPoint => ({ point: p.point, cpu: p.cpu, tMonoNs: String(p.tMonoNs), ...(p.tNs !== undefined ? { tNs: String(p.tNs) } : {}) });

function storedNormal(n: NormalSample, trace: string): StoredNormal {
  return { svId: n.svId, smpCnt: n.smpCnt, iter: n.iter, segment: n.segment, latencyNs: n.latencyNs, from: stored(n.from), to: stored(n.to), trace };
}

/** Writes DIR/explanations.json and the Chrome traces; refuses a directory that already holds explanations. */
export function writeExplainDir(dir: string, r: ExplainRunResult, o: { windowS?: number } = {}): { json: string; traces: string[] } {
  const json = join(dir, EXPLANATIONS_FILE);
  if (existsSync(json)) throw new SvtraceError('EXPLAIN_EXISTS', `${dir} already holds explanations`, { hint: 'record into a new directory' });
  mkdirSync(dir, { recursive: true });
  const base = explainJson(r) as Omit<StoredExplanations, 'format' | 'formatVersion' | 'windowS' | 'worst'> & { worst: StoredExplanation[] };
  const traces: string[] = [];
  const worst = r.worst.map((w, k) => {
    const trace = `worst-${k + 1}.trace.json`;
    writeFileSync(join(dir, trace), JSON.stringify(w.chrome) + '\n');
    traces.push(join(dir, trace));
    let normal: StoredNormal | null = null;
    if (w.normal) {
      const nt = `normal-${k + 1}.trace.json`;
      writeFileSync(join(dir, nt), JSON.stringify(w.normal.chrome) + '\n');
      traces.push(join(dir, nt));
      normal = storedNormal(w.normal, nt);
    }
    return { ...base.worst[k]!, trace, normal };
  });
  const doc: StoredExplanations = { format: 'svtrace-explanations', formatVersion: 1, ...base, windowS: o.windowS ?? null, worst };
  writeFileSync(json, JSON.stringify(doc, null, 1) + '\n');
  return { json, traces };
}

export interface LoadedWorst {
  explanation: StoredExplanations['worst'][number];
  chrome: ChromeTrace | null;
  normal: (StoredNormal & { chrome: ChromeTrace | null }) | null;
}

export interface LoadedExplanations { dir: string; doc: StoredExplanations; worst: LoadedWorst[] }

function readTrace(dir: string, name: unknown): ChromeTrace | null {
  // only plain file names inside the explain directory
  if (typeof name !== 'string' || !/^[\w.-]+\.trace\.json$/.test(name)) return null;
  try {
    const t = JSON.parse(readFileSync(join(dir, name), 'utf8')) as ChromeTrace;
    return Array.isArray(t.traceEvents) ? t : null;
  } catch {
    return null;
  }
}

/** RECORD/explain/explanations.json with its traces, or null when the record has none. */
export function readExplainDir(recordDir: string): LoadedExplanations | null {
  const dir = join(recordDir, EXPLAIN_DIR);
  const file = join(dir, EXPLANATIONS_FILE);
  if (!existsSync(file)) return null;
  let doc: StoredExplanations;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8')) as StoredExplanations;
  } catch (e) {
    throw new SvtraceError('EXPLAIN_UNREADABLE', `${file} is not valid JSON: ${(e as Error).message}`, { hint: 'remove the explain directory or record again with --explain' });
  }
  if (doc.format !== 'svtrace-explanations' || !Array.isArray(doc.causes) || !Array.isArray(doc.worst)) {
    throw new SvtraceError('EXPLAIN_UNREADABLE', `${file} is not an svtrace explanations file`, { hint: 'remove the explain directory or record again with --explain' });
  }
  const worst = doc.worst.map((w) => ({
    explanation: w,
    chrome: readTrace(dir, w.trace),
    normal: w.normal ? { ...w.normal, chrome: readTrace(dir, w.normal.trace) } : null,
  }));
  return { dir, doc, worst };
}

/** The explanations one record holds, or why they could not be read. */
export interface RecordExplanations {
  /** The record directory (from its manifest's place; printable before use). */
  record: string;
  loaded: LoadedExplanations | null;
  /** Why the explanations could not be read. */
  error?: string;
}

/** The explanations of every record that holds some (errors are kept, not thrown: a report still renders). */
export function loadRecordExplanations(records: readonly { dir: string }[]): RecordExplanations[] {
  const out: RecordExplanations[] = [];
  for (const r of records) {
    try {
      const loaded = readExplainDir(r.dir);
      if (loaded) out.push({ record: r.dir, loaded });
    } catch (e) {
      out.push({ record: r.dir, loaded: null, error: (e as Error).message });
    }
  }
  return out;
}
