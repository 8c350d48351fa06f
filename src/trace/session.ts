/**
 * One running bpftrace: started on a program file, ready when the program's
 * BEGIN marker arrives (BEGIN runs after every probe is attached), its
 * output handed over line by line, stopped with SIGINT so END runs and the
 * maps are printed, killed if it does not exit in time.
 */
import { SvtraceError } from '../errors.ts';
import { isHarmless, programFile, requireBpftrace, spawnBpftrace, type BpftraceChild } from './bpftrace.ts';
import { createLineSplitter } from './parse.ts';

export interface BpftraceRun {
  /** Resolves once probes are attached; rejects if bpftrace fails first. */
  ready: Promise<void>;
  /** Resolves when bpftrace has exited and all its output was handed over. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGINT, wait up to `graceMs` for END and exit, then SIGKILL. Safe to call more than once. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
  /** True once stop() had to SIGKILL it. */
  wasKilled(): boolean;
  pid: number | undefined;
}

export interface BpftraceRunOptions {
  program: string;
  readyMarker: string;
  onLine: (line: string) => void;
  /** stderr lines that are not known to be harmless. */
  onStderr?: (line: string) => void;
  bpftrace?: string;
  env?: Record<string, string>;
  /** Pin bpftrace (its output reader) to these CPUs. */
  cpus?: readonly number[];
  /**
   * Run bpftrace in a process group of its own, so the terminal's Ctrl-C
   * reaches only svtrace (which drains it first). Only for programs that end
   * themselves when svtrace dies (svtrace.bt watches its owner's exit).
   */
  ownGroup?: boolean;
}

/** A user-facing reason for bpftrace failing to start, from its stderr. */
export function startFailure(stderr: string[]): SvtraceError {
  const text = stderr.join('\n');
  let hint = 'run the program by hand with `svtrace trace --print-program` and bpftrace to see more';
  if (/tracepoint not found/.test(text)) hint = 'tracefs may be unmounted (mount -t tracefs tracefs /sys/kernel/tracing), or svtrace runs inside a network namespace: run it in the root one';
  else if (/only supports running as the root|Operation not permitted|EPERM/.test(text)) hint = 'run svtrace as root';
  else if (/Could not resolve|Unknown struct|does not contain a field/.test(text)) hint = 'the kernel lacks BTF or has different structs: run `svtrace doctor`';
  return new SvtraceError('TRACE_BPFTRACE_FAILED', `bpftrace failed to start: ${text.trim().split('\n').slice(0, 6).join(' | ') || 'no message'}`, { hint });
}

export function startBpftrace(opts: BpftraceRunOptions): BpftraceRun {
  const bin = opts.bpftrace ?? requireBpftrace();
  const file = programFile(opts.program);
  let child: BpftraceChild;
  try {
    child = spawnBpftrace(bin, file.path, opts.env, opts.cpus, opts.ownGroup === true);
  } catch (e) {
    file.dispose();
    throw new SvtraceError('TRACE_BPFTRACE_FAILED', `cannot start ${bin}`, { hint: 'check that bpftrace runs', cause: e });
  }
  const stderrLines: string[] = [];
  let isReady = false;
  let resolveReady!: () => void, rejectReady!: (e: unknown) => void;
  const ready = new Promise<void>((res, rej) => { resolveReady = res; rejectReady = rej; });
  ready.catch(() => {});

  const out = createLineSplitter((line) => {
    if (!isReady && line === opts.readyMarker) {
      isReady = true;
      // bpftrace has read and attached the program: its file goes now, so an svtrace killed -9 later leaves none behind
      file.dispose();
      resolveReady();
      return;
    }
    opts.onLine(line);
  });
  const err = createLineSplitter((line) => {
    if (isHarmless(line)) return;
    if (stderrLines.length < 200) stderrLines.push(line);
    opts.onStderr?.(line);
  });
  child.stdout.setEncoding('utf8').on('data', out.push);
  child.stderr.setEncoding('utf8').on('data', err.push);

  let spawnError: unknown = null;
  child.on('error', (e) => { spawnError = e; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      out.end();
      err.end();
      file.dispose();
      if (!isReady) {
        rejectReady(spawnError
          ? new SvtraceError('TRACE_BPFTRACE_FAILED', `cannot run ${bin}`, { hint: 'check that bpftrace is installed and executable', cause: spawnError })
          : startFailure(stderrLines));
      }
      resolve({ code, signal });
    });
  });

  let stopping: ReturnType<BpftraceRun['stop']> | null = null;
  let killed = false;
  const stop = (graceMs = 5000) => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, graceMs);
        const r = await exited;
        clearTimeout(timer);
        return { ...r, killed };
      }
      return { ...(await exited), killed };
    })();
    return stopping;
  };
  return { ready, exited, stop, wasKilled: () => killed, pid: child.pid };
}
