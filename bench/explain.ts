/**
 * The observer effect of `svtrace trace --explain` (issue 7), as root, in the
 * one-machine lab (Linux bridge):
 *   npm run bench -- explain [--streams 8] [--duration 10] [--rounds 1] [--engine bpf|bpftrace]
 * (--engine: the engine of the points and the flight recorder; default the
 * CLI's, bpf where it can run)
 * The same publish + trace twice per round, plain and with --explain (the
 * order alternates between rounds): the publisher sends N streams × 4000/s
 * through the bridge, the svtrace CLI traces T1/T2 into a record for D s.
 * Thyp p50/p99 come from `analyze` on each record (the report's figures).
 * Prints both, the difference, the sample points lost by bpftrace (its
 * "Lost" events and the frames matched in the kernel whose line never came)
 * and the recorder's losses, and checks the issue's target: ≤ 5 µs added at
 * p50, no lost sample points. When the plain run already loses points or
 * samples at N streams, the machine cannot carry N: it says so and falls
 * back to N/2.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labDown, labUp, type LabTopology } from '../src/lab/index.ts';
import { runPublish } from '../src/publish/run.ts';
import { demoStreams } from '../src/demo/run.ts';
import { analyzeRecords } from '../src/analyze/index.ts';
import { readExplainDir } from '../src/explain/files.ts';
import type { RecorderStats } from '../src/explain/recorder.ts';
import { groupDigits } from '../src/util/text.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '..', '..');
const RATE = 4000;
const TARGET_P50_US = 5;

interface RunFigures {
  mode: 'plain' | 'explain';
  samples: number;
  expected: number;
  p50Us: number | null;
  p99Us: number | null;
  /** bpftrace's "Lost N events" of the point tracer. */
  lostEvents: number;
  /** Frames matched in the kernel whose line never reached svtrace. */
  lostLines: number;
  recorder: RecorderStats | null;
  explained: number;
  late: number;
  load: number;
}

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`--${name} ${args[i + 1]} is not a positive number`);
  return v;
}

function svtrace(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', rej);
    child.on('close', (code) => res({ code, stderr }));
  });
}

let engineArgs: string[] = [];

async function oneRun(lab: LabTopology, runDir: string, dir: string, mode: 'plain' | 'explain', streams: number, durationS: number): Promise<RunFigures> {
  const rec = join(dir, `${mode}-${streams}-${Date.now()}`);
  const ac = new AbortController();
  // the publisher runs before, through and after the trace (the tracer learns the layout from its frames)
  const pub = runPublish({ streams: demoStreams(streams), ifname: lab.pubIf, netns: lab.pubNetns, durationS: 3600, fifoPriority: 50, signal: ac.signal });
  try {
    await new Promise((r) => setTimeout(r, 1500));
    const load = loadavg()[0]!;
    const r = await svtrace(['trace', '--lab', runDir, '--machine', 'hypervisor', '-d', String(durationS), '--record', rec, ...engineArgs, ...(mode === 'explain' ? ['--explain'] : [])]);
    if (r.code !== 0) throw new Error(`svtrace trace (${mode}) exited ${r.code}: ${r.stderr.slice(-800)}`);
    const manifest = JSON.parse(readFileSync(join(rec, 'manifest.json'), 'utf8')) as { counters?: Record<string, number> };
    const a = await analyzeRecords([rec], { join: 'iter' });
    const thyp = a.segments.find((s) => s.segment === 'Thyp');
    const ex = mode === 'explain' ? readExplainDir(rec) : null;
    return {
      mode, samples: thyp?.all.count ?? 0, expected: streams * RATE * durationS,
      p50Us: thyp?.all.percentilesNs.p50 == null ? null : thyp.all.percentilesNs.p50 / 1000,
      p99Us: thyp?.all.percentilesNs.p99 == null ? null : thyp.all.percentilesNs.p99 / 1000,
      lostEvents: manifest.counters?.lostEvents ?? 0, lostLines: manifest.counters?.lostLines ?? 0,
      recorder: ex?.doc.recorder ?? null, explained: ex?.doc.explanations.length ?? 0, late: ex?.doc.late ?? 0, load,
    };
  } finally {
    ac.abort();
    await pub.catch(() => undefined);
    rmSync(rec, { recursive: true, force: true });
  }
}

const f1 = (v: number | null) => (v === null ? '–' : v.toFixed(1));

function line(r: RunFigures): string {
  const rec = r.recorder
    ? `recorder ${groupDigits(r.recorder.events)} events (${groupDigits(r.recorder.eventsPerS)}/s, ${r.recorder.engine ?? 'bpftrace'}), lost to a full buffer ${groupDigits(r.recorder.lostEvents)},${r.recorder.skippedRuns ? ` runs skipped ${groupDigits(r.recorder.skippedRuns)},` : ''} lost while running ${groupDigits(r.recorder.lostInRun)}, unread at stop ${groupDigits(r.recorder.notReceivedAtStop)}, ring overflow ${groupDigits(r.recorder.ringOverflowed)}; ${groupDigits(r.late)} late (> 100 µs), ${groupDigits(r.explained)} explained`
    : 'no recorder';
  return `${r.mode.padEnd(7)}  Thyp p50 ${f1(r.p50Us).padStart(6)} µs  p99 ${f1(r.p99Us).padStart(7)} µs  samples ${groupDigits(r.samples)} of ~${groupDigits(r.expected)}; points lost to a full buffer ${groupDigits(r.lostEvents)}, matched but not received ${groupDigits(r.lostLines)}; ${rec}; load ${r.load.toFixed(1)}`;
}

/**
 * The plain run shows whether the machine carries N streams: bpftrace lost no
 * events and ≥ 90 % of the samples were traced. (Lines matched but not
 * received are mostly the reader's backlog when bpftrace is stopped; they
 * are printed, and count against the target, but do not make N too many.)
 */
const carries = (r: RunFigures) => r.lostEvents === 0 && r.samples >= 0.9 * r.expected;

export async function benchExplain(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) { console.log('skipped: needs root (lab, bpftrace)'); return; }
  if (!existsSync('/sys/kernel/tracing/events/sched')) { console.log('skipped: tracefs is not mounted at /sys/kernel/tracing'); return; }
  let streams = arg(args, 'streams', 8);
  const ei = args.indexOf('--engine');
  if (ei >= 0) {
    const e = args[ei + 1];
    if (e !== 'bpf' && e !== 'bpftrace') throw new Error(`--engine ${e} is neither bpf nor bpftrace`);
    engineArgs = ['--engine', e];
  }
  const durationS = arg(args, 'duration', 10), rounds = arg(args, 'rounds', 1);
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-bench-explain-'));
  const runDir = join(dir, 'lab');
  let interrupted = false;
  const onSigint = () => { interrupted = true; console.log('interrupted: finishing the current run, then cleaning up'); };
  process.on('SIGINT', onSigint);
  try {
    const lab = (await labUp({ runDir, switch: 'bridge', prefix: `be${(process.pid % 10000).toString(36)}` })).topology;
    console.log(`lab: Linux bridge ${lab.bridge}; engine ${engineArgs[1] ?? 'the CLI\'s default'}; ${durationS} s of tracing per run, ${streams} streams × ${RATE}/s asked; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const pairs: Array<{ plain: RunFigures; explain: RunFigures }> = [];
    for (let round = 0; round < rounds; round++) {
      const order: Array<'plain' | 'explain'> = round % 2 === 0 ? ['plain', 'explain'] : ['explain', 'plain'];
      const got: Partial<Record<'plain' | 'explain', RunFigures>> = {};
      for (const mode of order) {
        if (interrupted) return;
        let r = await oneRun(lab, runDir, dir, mode, streams, durationS);
        while (mode === 'plain' && !carries(r) && streams > 1 && !interrupted) {
          console.log(`${line(r)}\nthe machine does not carry ${streams} streams even without the recorder (points lost or < 90 % of the samples): falling back to ${Math.floor(streams / 2)}`);
          streams = Math.floor(streams / 2);
          if (got.explain) got.explain = await oneRun(lab, runDir, dir, 'explain', streams, durationS);
          r = await oneRun(lab, runDir, dir, mode, streams, durationS);
        }
        got[mode] = r;
        console.log(line(r));
      }
      pairs.push({ plain: got.plain!, explain: got.explain! });
    }
    const median = (v: number[]) => { const s = [...v].sort((a, b) => a - b), m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
    const d50 = median(pairs.map((p) => (p.explain.p50Us ?? NaN) - (p.plain.p50Us ?? NaN)));
    const d99 = median(pairs.map((p) => (p.explain.p99Us ?? NaN) - (p.plain.p99Us ?? NaN)));
    const lost = pairs.reduce((n, p) => n + p.explain.lostEvents + p.explain.lostLines, 0);
    const lostPlain = pairs.reduce((n, p) => n + p.plain.lostEvents + p.plain.lostLines, 0);
    console.log(`observer effect of --explain at ${streams} streams × ${RATE}/s${rounds > 1 ? ` (median of ${rounds} rounds)` : ''}: Thyp p50 ${d50 >= 0 ? '+' : ''}${d50.toFixed(1)} µs, p99 ${d99 >= 0 ? '+' : ''}${d99.toFixed(1)} µs; sample points lost with --explain ${groupDigits(lost)} (plain ${groupDigits(lostPlain)})`);
    const okP50 = d50 <= TARGET_P50_US, okLost = lost === 0;
    if (lost > 0 && lostPlain > 0) console.log('note: the plain run loses points too: the point tracer\'s reader falls behind on this machine, and its backlog when bpftrace stops is lost');
    console.log(`target (issue 7: ≤ ${TARGET_P50_US} µs added at p50, no lost sample points${streams < 8 ? '; at 8 streams' : ''}): p50 ${okP50 ? 'met' : 'NOT met'}, lost points ${okLost ? 'met' : 'NOT met'}${streams < 8 ? `; measured at ${streams} streams only, so the 8-stream target is not shown` : ''}`);
  } finally {
    process.off('SIGINT', onSigint);
    await labDown(runDir).catch((e: unknown) => console.log(`lab down failed: ${(e as Error).message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}
