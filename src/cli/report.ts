/**
 * `svtrace report RUN... --out DIR`: join the records, compute statistics and
 * verdicts, write report.html (+ charts, summary.md, summary.json), print the
 * summary. Exit 0 when every verdict passes, 1 when one fails, 2 on a usage
 * or input error.
 */
import { analysisJson } from '../report/explain.ts';
import { Option, type Command } from 'commander';
import { SvtraceError } from '../errors.ts';
import { loadConfig } from '../config/load.ts';
import { analyzeRecords, parseClockOffset, parsePercentile, type AnalysisResult, type AnalyzeOptions, type AnalyzeProgress, type PercentileKey, type SegmentDef } from '../analyze/index.ts';
import { renderSummaryText, writeReport } from '../report/index.ts';
import { printable } from '../util/text.ts';
import { action, EXIT_OK, EXIT_VERDICT_FAILED } from './run.ts';

/** Where a command prints: stdout for results, stderr for progress (only when it is a terminal). */
export interface CliIo {
  out(s: string): void;
  progress(s: string): void;
  progressIsTty: boolean;
}

export const processIo = (): CliIo => ({
  out: (s) => void process.stdout.write(s),
  progress: (s) => void process.stderr.write(s),
  progressIsTty: process.stderr.isTTY === true,
});

export interface AnalysisFlags {
  config?: string;
  join?: 'time' | 'iter';
  segment?: string[];
  verdictAt?: string;
  tmpDir?: string;
  threads?: string;
  memory?: string;
  engine?: 'auto' | 'native' | 'duckdb';
  clockOffset?: string[];
}

function parseSegment(spec: string): SegmentDef {
  const m = /^([^=]+)=([^:]+):(.+)$/.exec(spec);
  if (!m) throw new SvtraceError('USAGE', `--segment ${printable(spec)} is not NAME=FROM:TO`, { hint: 'e.g. --segment Tovs=T1:T2 (the latency from point T1 to point T2)' });
  return { name: m[1]!, from: m[2]!, to: m[3]! };
}

/**
 * Flags + config → analysis options. Config: verdicts.limits_us,
 * verdicts.max_missing, verdicts.at, report.segments and
 * report.clock_offsets; --verdict-at overrides verdicts.at, --segment adds to
 * (or redefines by name) the config's segments, --clock-offset to (or
 * replaces by machine) the config's offsets.
 */
export function analysisOptions(flags: AnalysisFlags, io: CliIo, label = ''): AnalyzeOptions {
  const cfg = loadConfig(flags.config, {});
  let at: 'max' | PercentileKey | undefined;
  const atSpec = flags.verdictAt ?? cfg.verdicts.at;
  if (atSpec !== 'max') {
    parsePercentile(atSpec);
    at = atSpec as PercentileKey;
  }
  const fromConfig: SegmentDef[] = Object.entries(cfg.report.segments).map(([name, spec]) => {
    const [from, to] = spec.split(':') as [string, string];
    return { name, from, to };
  });
  const fromFlags = (flags.segment ?? []).map(parseSegment);
  const flagNames = new Set(fromFlags.map((s) => s.name));
  let threads: number | undefined;
  if (flags.threads !== undefined) {
    threads = Number(flags.threads);
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new SvtraceError('USAGE', `--threads ${printable(flags.threads)} is not a thread count`, { hint: 'give a whole number, e.g. --threads 2' });
  }
  const offsets = new Map(Object.entries(cfg.report.clock_offsets).map(([machine, spec]) => [machine, parseClockOffset(`${machine}=${spec}`)]));
  for (const spec of flags.clockOffset ?? []) {
    const o = parseClockOffset(spec);
    offsets.set(o.machine, o);
  }
  return {
    join: flags.join,
    clockOffsets: [...offsets.values()],
    segments: [...fromConfig.filter((s) => !flagNames.has(s.name)), ...fromFlags],
    verdicts: { limitsUs: cfg.verdicts.limits_us, maxMissing: cfg.verdicts.max_missing, at },
    tmpDir: flags.tmpDir,
    threads,
    memoryLimit: flags.memory,
    engine: flags.engine,
    onProgress: io.progressIsTty ? progressLine(io, label) : undefined,
  };
}

function progressLine(io: CliIo, label: string): (p: AnalyzeProgress) => void {
  const started = performance.now();
  return (p) => {
    const s = ((performance.now() - started) / 1000).toFixed(1);
    io.progress(`\r\x1b[K${label}${p.phase} ${p.total > 1 ? `${p.done}/${p.total} ` : ''}(${s} s)${p.phase === 'percentiles' ? '\n' : ''}`);
  };
}

export function addAnalysisOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'config file (TOML): [verdicts] limits_us, max_missing, at; [report] segments, clock_offsets')
    .addOption(new Option('--join <mode>', 'match points by sample time (any records, synchronised clocks) or by the recorder\'s iter (one record)').choices(['time', 'iter']).default('time'))
    .option('--segment <NAME=FROM:TO>', 'measure a custom segment too (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--verdict-at <stat>', 'what a plain limit applies to: max (default) or a percentile such as p99.99')
    .option('--clock-offset <MACHINE=OFFSET[±UNC]>', 'a machine\'s clock offset (machine − reference, e.g. "svt-vm=-605ms±1ms"), corrected before the join; replaces what its records carry (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--tmp-dir <dir>', 'scratch directory for the joined samples (default: the OS temp dir)')
    .option('--threads <n>', 'DuckDB threads (default 2)')
    .option('--memory <limit>', 'DuckDB memory limit (default 512MB)')
    .addOption(new Option('--engine <engine>', 'native (C, one pass), duckdb (the SQL reference) or auto (native when built); default $SVTRACE_ANALYZE_ENGINE or auto').choices(['auto', 'native', 'duckdb']));
}

export async function runReport(runs: string[], opts: AnalysisFlags & { out: string; json?: boolean }, io: CliIo): Promise<{ result: AnalysisResult; code: number }> {
  const result = await analyzeRecords(runs, analysisOptions(opts, io));
  const files = await writeReport(result, opts.out, io.progressIsTty ? (d, t) => io.progress(`\r\x1b[Kcharts ${d}/${t}${d === t ? '\n' : ''}`) : undefined);
  io.out(opts.json ? JSON.stringify(analysisJson(result), null, 2) + '\n' : `${renderSummaryText(result)}\nreport: ${files.html}\n`);
  return { result, code: result.passed ? EXIT_OK : EXIT_VERDICT_FAILED };
}

export function register(program: Command, io: CliIo = processIo()): void {
  addAnalysisOptions(program
    .command('report')
    .description('join the records of a run, measure every segment, check the verdicts, write report.html')
    .argument('<run...>', 'record directories, or run directories holding them')
    .requiredOption('--out <dir>', 'where to write report.html, charts/, summary.md, summary.json')
    .option('--json', 'print the full result as JSON instead of the summary'))
    .addHelpText('after', '\nExit status: 0 every verdict passed, 1 a verdict failed, 2 usage or input error.\nExample:\n  svtrace report run-2026-11-29/ --out report/\n  svtrace report pub/ hv/ vm/ --out report/ --config lab.toml --verdict-at p99.99')
    .action(action(async (runs: string[], opts: AnalysisFlags & { out: string; json?: boolean }) => (await runReport(runs, opts, io)).code));
}
