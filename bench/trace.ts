/**
 * The point tracer at the limits of the machine (issue 13), in the
 * one-machine lab (publisher → Linux bridge → VM namespace):
 *
 * 1. Observer effect: T0 → T3 (the publisher's kernel TX timestamp to the
 *    subscriber's kernel RX timestamp: neither is taken by the tracer) at
 *    4 streams × 4000/s, without a tracer and with `svtrace trace --machine
 *    hypervisor` on each engine (bpftrace, bpf), rounds rotated. Target:
 *    ≤ +1 µs at p50, ≤ +5 µs at p99.
 * 2. Capacity: 25 streams × 4000/s offered (100 k samples/s), carried to the
 *    subscriber without a tracer and with each engine, and the points the
 *    tracer got (frames matched in the kernel, received, lost), with the
 *    kernel time of the probes (kernel.bpf_stats_enabled, bpftool's
 *    run_time_ns / run_cnt). Target: ≥ 100 k samples/s carried and traced,
 *    0 points lost.
 *
 *   sudo npm run bench -- trace [--duration S] [--rounds N] [--engines bpftrace,bpf]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import { labDown, labUp, type LabTopology } from '../src/lab/index.ts';
import { runPublish } from '../src/publish/run.ts';
import { runSubscribe } from '../src/subscribe/run.ts';
import { demoStreams } from '../src/demo/run.ts';
import { recordSql } from '../src/record/index.ts';
import { groupDigits } from '../src/util/text.ts';
import { frameTemplate } from '../src/publish/frames.ts';
import { layoutFromFrame } from '../src/trace/layout.ts';
import { generateTraceProgram } from '../src/trace/generate.ts';
import { resolveInterface } from '../src/trace/interfaces.ts';
import { findBpftrace, programFile, spawnBpftrace } from '../src/trace/bpftrace.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`--${name} ${args[i + 1]} is not a positive number`);
  return v;
}

interface Job { done: Promise<{ code: number | null; stdout: string; stderr: string }>; stop(): void }

function svtrace(args: string[], onStderr?: (s: string) => void): Job {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '', stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; onStderr?.(stderr); });
  return { done: new Promise((res, rej) => { child.on('error', rej); child.on('close', (code) => res({ code, stdout, stderr })); }), stop: () => child.kill('SIGINT') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TraceFigures { framesT1: number; kernelT1: number | null; framesT2: number; kernelT2: number | null; lostEvents: number; lostLines: number }

type Engine = 'bpftrace' | 'bpf';
/** What runs beside the traffic: nothing, `svtrace trace` on an engine, or a bpftrace program of our own (the anatomy). */
type Tracer = false | Engine | { label: string; program: string };

/** Kernel time per run of the BPF programs that appeared since `before` (bpftool, with kernel.bpf_stats_enabled=1). */
async function probeCost(before: Set<number>): Promise<string> {
  const r = await new Promise<string>((resolve) => {
    const c = spawn('bpftool', ['-j', 'prog', 'show'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    c.on('error', () => resolve('[]'));
    c.on('close', () => resolve(out || '[]'));
  });
  const progs = (JSON.parse(r) as Array<{ id: number; name?: string; run_time_ns?: number; run_cnt?: number }>)
    .filter((p) => !before.has(p.id) && (p.run_cnt ?? 0) > 0);
  return progs.map((p) => `${p.name ?? p.id} ${((p.run_time_ns ?? 0) / p.run_cnt!).toFixed(0)} ns × ${groupDigits(p.run_cnt!)}`).join(', ') || 'no program ran';
}

async function progIds(): Promise<Set<number>> {
  const out = await new Promise<string>((resolve) => {
    const c = spawn('bpftool', ['-j', 'prog', 'show'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let o = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => { o += d; });
    c.on('error', () => resolve('[]'));
    c.on('close', () => resolve(o || '[]'));
  });
  return new Set((JSON.parse(out) as Array<{ id: number }>).map((p) => p.id));
}

interface Round {
  traced: boolean;
  label: string;
  /** Seconds measured (the window T0 is taken from). */
  windowS: number;
  streams: number;
  /** Samples published in the measured window, and how many reached T3. */
  published: number;
  carried: number;
  p50Us: number | null;
  p99Us: number | null;
  trace: TraceFigures | null;
  load: number;
  /** Kernel time per probe run (capacity rounds). */
  cost: string | null;
}

/**
 * One run: subscriber, then publisher, then (traced) the tracer for `durationS`;
 * T0 → T3 is measured over the seconds the tracer ran (the same offsets when it does not).
 */
async function oneRound(lab: LabTopology, runDir: string, dir: string, tracer: Tracer, streams: number, durationS: number, measureCost = false): Promise<Round> {
  const traced = tracer !== false;
  const label = tracer === false ? 'plain' : typeof tracer === 'string' ? tracer : tracer.label;
  let cost: string | null = null;
  const tag = `${label}-${streams}-${Date.now()}`;
  const pubDir = join(dir, `${tag}-pub`), subDir = join(dir, `${tag}-sub`);
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  const sub = runSubscribe({ ifname: lab.vmIf, netns: lab.vmNetns, streams: [], durationS: 3600, idleStopS: 1.5, recordDir: subDir, rcvBufBytes: 64 << 20, onReady: ready });
  await isReady;
  // the publisher runs before, through and after the measured window (the tracer learns the layouts from its frames)
  const stopPub = new AbortController();
  const pub = runPublish({ streams: demoStreams(streams), ifname: lab.pubIf, netns: lab.pubNetns, durationS: 3600, fifoPriority: 50, recordDir: pubDir, signal: stopPub.signal });
  const load = loadavg()[0]!;
  let trace: TraceFigures | null = null;
  let fromNs: bigint, toNs: bigint;
  try {
    await sleep(1500); // the tracer learns the layouts from the frames
    if (typeof tracer === 'object') {
      // the program as svtrace generated it, run by bpftrace itself, its output thrown away
      const file = programFile(tracer.program);
      const child = spawnBpftrace(findBpftrace()!, file.path);
      child.stdout.resume();
      child.stderr.resume();
      const exited = new Promise((r) => child.on('close', r));
      await sleep(4000); // attached
      fromNs = BigInt(Date.now()) * 1_000_000n;
      await sleep(durationS * 1000);
      toNs = BigInt(Date.now()) * 1_000_000n;
      child.kill('SIGINT');
      await exited;
      file.dispose();
    } else if (typeof tracer === 'string') {
      let startedAt = 0n;
      const before = measureCost ? await progIds() : new Set<number>();
      const job = svtrace(['trace', '--lab', runDir, '--machine', 'hypervisor', '--engine', tracer, '-d', String(durationS), '--json'], (s) => {
        if (!startedAt && s.includes('svtrace: tracing')) startedAt = BigInt(Date.now()) * 1_000_000n;
      });
      if (measureCost) {
        // the probes' kernel time, sampled in the middle of the traced seconds
        void (async () => {
          while (!startedAt) await sleep(100);
          await sleep(durationS * 500);
          cost = await probeCost(before);
        })();
      }
      const r = await job.done;
      toNs = BigInt(Date.now()) * 1_000_000n;
      if (r.code !== 0) throw new Error(`svtrace trace exited ${r.code}: ${r.stderr.slice(-800)}`);
      const s = (JSON.parse(r.stdout) as { summary: { lostEvents: number; lostLines: number; points: Array<{ name: string; frames: number; kernelFrames: number | null }> } }).summary;
      const p = (n: string) => s.points.find((x) => x.name === n);
      trace = { framesT1: p('T1')?.frames ?? 0, kernelT1: p('T1')?.kernelFrames ?? null, framesT2: p('T2')?.frames ?? 0, kernelT2: p('T2')?.kernelFrames ?? null, lostEvents: s.lostEvents, lostLines: s.lostLines };
      fromNs = startedAt || toNs - BigInt(durationS) * 1_000_000_000n;
      // the seconds it traced: not the drain and exit after -d (no point is output then, the path runs free)
      const endOfTracing = fromNs + BigInt(durationS) * 1_000_000_000n;
      if (toNs > endOfTracing) toNs = endOfTracing;
    } else {
      await sleep(3000); // what attaching takes in the traced rounds
      fromNs = BigInt(Date.now()) * 1_000_000n;
      await sleep(durationS * 1000);
      toNs = BigInt(Date.now()) * 1_000_000n;
    }
    await sleep(1500);
  } finally {
    stopPub.abort();
    await pub.catch(() => undefined);
    await sub.catch(() => undefined);
  }
  // one second of margin on each side: only seconds fully traced (or fully not)
  const lo = fromNs + 1_000_000_000n, hi = toNs - 1_000_000_000n;
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  try {
    await db.run(`CREATE VIEW p AS ${await recordSql([pubDir, subDir])}`);
    const rows = (await db.runAndReadAll(`
      WITH t0 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T0' AND t_ns BETWEEN ${lo} AND ${hi}),
           t3 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T3'),
           j AS (SELECT t3.t_ns - t0.t_ns AS d FROM t0 JOIN t3 ON t3.sv_id = t0.sv_id AND t3.smp_cnt = t0.smp_cnt AND t3.t_ns BETWEEN t0.t_ns - 100000000 AND t0.t_ns + 100000000)
      SELECT (SELECT count(*) FROM t0), count(*), quantile_disc(d, 0.5), quantile_disc(d, 0.99) FROM j`)).getRows();
    const [published, carried, p50, p99] = rows[0]!.map((v) => (v === null ? null : Number(v)));
    return { traced, label, streams, windowS: Number(hi - lo) / 1e9, published: published ?? 0, carried: carried ?? 0, p50Us: p50 === null || p50 === undefined ? null : p50 / 1000, p99Us: p99 === null || p99 === undefined ? null : p99 / 1000, trace, load, cost };
  } finally {
    db.closeSync();
    rmSync(pubDir, { recursive: true, force: true });
    rmSync(subDir, { recursive: true, force: true });
  }
}

const f1 = (v: number | null) => (v === null ? '–' : v.toFixed(1));

function line(r: Round): string {
  const t = r.trace;
  const traced = t
    ? `; traced T1 ${groupDigits(t.framesT1)} of ${t.kernelT1 === null ? '?' : groupDigits(t.kernelT1)} matched, T2 ${groupDigits(t.framesT2)} of ${t.kernelT2 === null ? '?' : groupDigits(t.kernelT2)}; lost ${groupDigits(t.lostEvents)} events, ${groupDigits(t.lostLines)} matched not received`
    : '';
  return `${r.label.padEnd(8)}  T0→T3 p50 ${f1(r.p50Us).padStart(6)} µs  p99 ${f1(r.p99Us).padStart(7)} µs  carried ${groupDigits(r.carried)} of ${groupDigits(r.published)} (${groupDigits(Math.round(r.carried / r.windowS))}/s)${traced}; load ${r.load.toFixed(1)}${r.cost ? `\n            kernel time per probe run: ${r.cost}` : ''}`;
}

const median = (v: number[]) => { const s = v.filter(Number.isFinite).sort((a, b) => a - b), m = s.length >> 1; return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

export async function benchTrace(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) { console.log('trace: skipped, needs root (lab, bpftrace)'); return; }
  if (!existsSync('/sys/kernel/tracing/events/net')) { console.log('trace: skipped, tracefs is not mounted at /sys/kernel/tracing'); return; }
  const durationS = arg(args, 'duration', 10), rounds = arg(args, 'rounds', 2);
  const ei = args.indexOf('--engines');
  const engines = (ei >= 0 ? args[ei + 1]!.split(',') : ['bpftrace', 'bpf']) as Engine[];
  if (engines.length === 0 || !engines.every((e) => e === 'bpftrace' || e === 'bpf')) throw new Error(`--engines ${args[ei + 1]} is not a list of bpftrace, bpf`);
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-bench-trace-'));
  const runDir = join(dir, 'lab');
  let statsWas: string | null = null;
  try {
    const lab = (await labUp({ runDir, switch: 'bridge', prefix: `bt${(process.pid % 10000).toString(36)}` })).topology;
    console.log(`lab: Linux bridge ${lab.bridge}; ${durationS} s measured per run; engines ${engines.join(', ')}; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    console.log(`observer effect: T0 → T3 at 4 streams × 4000/s, without a tracer and with \`svtrace trace --machine hypervisor --engine E\``);
    const kinds: Tracer[] = [false, ...engines];
    const got: Array<Map<string, Round>> = [];
    for (let round = 0; round < rounds; round++) {
      const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]!);
      const m = new Map<string, Round>();
      for (const t of order) {
        const r = await oneRound(lab, runDir, dir, t, 4, durationS);
        console.log(`  ${line(r)}`);
        m.set(r.label, r);
      }
      got.push(m);
    }
    for (const e of engines) {
      const d50 = median(got.map((m) => (m.get(e)!.p50Us ?? NaN) - (m.get('plain')!.p50Us ?? NaN)));
      const d99 = median(got.map((m) => (m.get(e)!.p99Us ?? NaN) - (m.get('plain')!.p99Us ?? NaN)));
      const r50 = median(got.map((m) => (m.get(e)!.p50Us ?? NaN) / (m.get('plain')!.p50Us ?? NaN)));
      const r99 = median(got.map((m) => (m.get(e)!.p99Us ?? NaN) / (m.get('plain')!.p99Us ?? NaN)));
      console.log(`  observer effect of ${e.padEnd(8)} (median of ${rounds}): T0→T3 p50 ${d50 >= 0 ? '+' : ''}${d50.toFixed(1)} µs (×${r50.toFixed(2)} the untraced), p99 ${d99 >= 0 ? '+' : ''}${d99.toFixed(1)} µs (×${r99.toFixed(2)}); target ≤ +1 µs at p50, ≤ +5 µs at p99: ${d50 <= 1 && d99 <= 5 ? 'met' : 'NOT met'}`);
    }

    if (engines.includes('bpftrace') && !args.includes('--no-anatomy')) {
      // Where bpftrace's observer effect comes from: the generated program run by bpftrace directly, with its
      // per-frame output, and with the output lines taken out (the matching alone).
      const layouts = demoStreams(4).map((s) => layoutFromFrame(frameTemplate(s).bytes));
      const points = [
        { id: 1, name: 'T1', probes: ['tracepoint:net:netif_receive_skb'], filter: { interface: await resolveInterface({ name: lab.hostPubIf }) } },
        { id: 2, name: 'T2', probes: ['tracepoint:net:net_dev_start_xmit'], filter: { interface: await resolveInterface({ name: lab.hostVmIf }) } },
      ];
      const program = generateTraceProgram({ points, layouts, unknownSamples: 4 });
      const silent = program.replace(/^(\t+)printf\("[12] .*$/gm, '$1@matched = count();');
      console.log('anatomy: the bpftrace program run by bpftrace alone, with its per-frame output and without it (matching only)');
      const withOutput = await oneRound(lab, runDir, dir, { label: 'output', program }, 4, durationS);
      console.log(`  ${line(withOutput)}`);
      const matchOnly = await oneRound(lab, runDir, dir, { label: 'match', program: silent }, 4, durationS);
      console.log(`  ${line(matchOnly)}`);
      const base = median(got.map((m) => m.get('plain')!.p50Us ?? NaN));
      console.log(`  T0→T3 p50 added: matching alone ${((matchOnly.p50Us ?? NaN) - base).toFixed(1)} µs, with one output line per frame and point ${((withOutput.p50Us ?? NaN) - base).toFixed(1)} µs: the cost is the output (bpftrace's printf through its perf buffer to its reader), not the probes' matching`);
    }

    console.log('capacity: 25 streams × 4000/s offered (100 000 samples/s), without a tracer and with each engine (kernel.bpf_stats_enabled=1 in the traced runs)');
    const plain = await oneRound(lab, runDir, dir, false, 25, durationS);
    console.log(`  ${line(plain)}`);
    const ratePlain = plain.carried / plain.windowS;
    try {
      statsWas = readFileSync('/proc/sys/kernel/bpf_stats_enabled', 'utf8').trim();
      writeFileSync('/proc/sys/kernel/bpf_stats_enabled', '1');
    } catch {
      statsWas = null;
    }
    for (const e of engines) {
      const traced = await oneRound(lab, runDir, dir, e, 25, durationS, true);
      console.log(`  ${line(traced)}`);
      const t = traced.trace!;
      // three views of the same losses (the engine's own reports, matched minus received): the largest, not their sum
      const lost = Math.max(t.lostEvents, t.lostLines, Math.max(0, (t.kernelT1 ?? 0) - t.framesT1) + Math.max(0, (t.kernelT2 ?? 0) - t.framesT2));
      const rateTraced = traced.carried / traced.windowS;
      console.log(`  ${e}: carried with the tracer / without: ${(rateTraced / Math.max(1, ratePlain)).toFixed(2)} (${groupDigits(Math.round(rateTraced))}/s vs ${groupDigits(Math.round(ratePlain))}/s); points lost by the tracer ${groupDigits(lost)}; target ≥ 100 000/s carried and traced, 0 lost: ${rateTraced >= 99_000 && lost === 0 ? 'met' : 'NOT met'}`);
    }
    console.log(`load at the end: ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  } finally {
    if (statsWas !== null) { try { writeFileSync('/proc/sys/kernel/bpf_stats_enabled', statsWas); } catch { /* as it was */ } }
    await labDown(runDir).catch((e: unknown) => console.log(`lab down failed: ${(e as Error).message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}
