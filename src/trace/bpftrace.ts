/**
 * bpftrace as a tool: where it is, which version, compiling a program without
 * attaching it (dry run), and spawning it. Always an argument array, never a
 * shell; programs go through a private temporary file, not the command line.
 */
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { SvtraceError } from '../errors.ts';

const run = promisify(execFile);

/** Lines bpftrace 0.17 prints on stderr that mean nothing for svtrace (the RLIMIT_MEMLOCK warning is harmless: BPF memory is accounted by cgroup since Linux 5.11). */
const HARMLESS = [
  /couldn't set RLIMIT_MEMLOCK/,
  /Could not read symbols from \/sys\/kernel\/(debug\/)?tracing\/available_(filter_functions|events)/,
  /Error while reading traceable functions/,
];

export function isHarmless(line: string): boolean {
  return line.trim() === '' || HARMLESS.some((re) => re.test(line));
}

/** The bpftrace executable on PATH (or $BPFTRACE), or null. */
export function findBpftrace(): string | null {
  const explicit = process.env.BPFTRACE;
  const candidates = explicit ? [explicit] : (process.env.PATH ?? '/usr/bin:/usr/sbin').split(delimiter).map((d) => join(d, 'bpftrace'));
  for (const c of [...candidates, '/usr/bin/bpftrace', '/usr/sbin/bpftrace']) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return null;
}

export function requireBpftrace(): string {
  const path = findBpftrace();
  if (!path) {
    throw new SvtraceError('TRACE_NO_BPFTRACE', 'bpftrace is not installed', {
      hint: 'install it (Debian: apt-get install bpftrace), or set BPFTRACE=/path/to/bpftrace',
    });
  }
  return path;
}

export interface BpftraceVersion {
  text: string;
  major: number;
  minor: number;
  patch: number;
}

export function parseBpftraceVersion(text: string): BpftraceVersion | null {
  const m = /v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) return null;
  return { text: text.trim(), major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
}

export async function bpftraceVersion(path: string): Promise<BpftraceVersion | null> {
  try {
    const { stdout } = await run(path, ['--version'], { timeout: 10_000 });
    return parseBpftraceVersion(stdout);
  } catch {
    return null;
  }
}

export function versionAtLeast(v: BpftraceVersion | null, major: number, minor: number): boolean {
  return v !== null && (v.major > major || (v.major === major && v.minor >= minor));
}

/** A private directory holding one program file; `dispose` removes it. */
export function programFile(text: string, name = 'svtrace.bt'): { path: string; dispose: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-bt-'));
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return { path, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface DryRunResult {
  ok: boolean;
  /** bpftrace's errors and warnings, without the harmless lines. */
  messages: string[];
}

/**
 * Compiles a program to BPF bytecode without attaching it (`--emit-elf`, a
 * dry run in 0.17). Catches every parse, type and codegen error; only the
 * kernel's verifier (at attach) is left out.
 */
export async function dryRun(program: string, bpftrace = requireBpftrace()): Promise<DryRunResult> {
  const file = programFile(program);
  try {
    const elf = join(file.path, '..', 'out.elf');
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(bpftrace, ['--emit-elf', elf, file.path], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
    const messages = r.stderr.split('\n').filter((l) => !isHarmless(l));
    return { ok: r.code === 0, messages };
  } finally {
    file.dispose();
  }
}

let setpriv: string | null | undefined;
/** util-linux's setpriv (essential in Debian), or null where it is missing. */
function setprivPath(): string | null {
  if (setpriv === undefined) setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p)) ?? null;
  return setpriv;
}

export type BpftraceChild = ChildProcessByStdio<null, Readable, Readable>;

/**
 * Starts bpftrace on a program file: `-k` makes failed map updates (a full
 * map) print a warning instead of passing silently. The caller owns the child.
 */
/** Spawns bpftrace on a program file; with `cpus`, pinned to them (taskset execs bpftrace in its place, same pid). */
export function spawnBpftrace(bpftrace: string, programPath: string, env: Record<string, string> = {}, cpus?: readonly number[], ownGroup = false): BpftraceChild {
  if (cpus && (cpus.length === 0 || !cpus.every((c) => Number.isInteger(c) && c >= 0 && c < 4096))) throw new SvtraceError('USAGE', `bpftrace CPUs ${cpus.join(',')} are not CPU numbers`, { hint: 'e.g. 0 or 0,2' });
  let [cmd, args] = cpus ? ['taskset', ['-c', cpus.join(','), bpftrace, '-k', programPath]] : [bpftrace, ['-k', programPath]];
  // Its own group also shields bpftrace from the terminal's signals, so svtrace's death must end it: the
  // program's exit probe does once attached, the parent-death signal does while it still compiles
  // (minutes in an emulated guest). setpriv execs the rest in its place, so the pid stays bpftrace's.
  if (ownGroup && setprivPath()) [cmd, args] = [setprivPath()!, ['--pdeathsig', 'KILL', cmd, ...args]];
  return spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    // a process group of its own: a Ctrl-C on the terminal reaches svtrace only, which drains bpftrace before stopping it
    detached: ownGroup,
    env: { ...process.env, ...env },
  });
}
