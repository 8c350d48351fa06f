/**
 * Running the lab's external commands: never through a shell, always with an
 * argument array and a timeout. A missing tool becomes LAB_TOOL_MISSING, a
 * failing command LAB_COMMAND_FAILED carrying its stderr.
 */
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import { SvtraceError } from '../errors.ts';

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
}

export interface RunOptions {
  timeoutMs?: number;
  env?: Record<string, string>;
  /** Return a failed result instead of throwing. Missing tools and timeouts still throw. */
  allowFailure?: boolean;
}

const DEFAULT_TIMEOUT_MS = 15_000;

export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].join(' ');
}

function missingTool(cmd: string, cause: unknown): SvtraceError {
  return new SvtraceError('LAB_TOOL_MISSING', `${cmd} is not installed (or not on PATH)`, {
    hint: cmd.startsWith('ovs')
      ? 'install openvswitch-switch (apt-get install openvswitch-switch) or use --switch bridge'
      : `install the package that provides ${cmd}`,
    cause,
  });
}

function firstLines(s: string, n = 3): string {
  return s.trim().split('\n').slice(0, n).join(' | ');
}

export function commandFailed(cmd: string, args: readonly string[], r: RunResult): SvtraceError {
  const why = firstLines(r.stderr) || firstLines(r.stdout) || 'no output';
  return new SvtraceError('LAB_COMMAND_FAILED', `\`${commandLine(cmd, args)}\` failed (exit ${String(r.exitCode)}): ${why}`);
}

/** Runs cmd with args (no shell), collects its output, throws on failure unless allowFailure. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' ? missingTool(cmd, e) : e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const r: RunResult = { stdout, stderr, exitCode: code };
      if (timedOut) {
        reject(new SvtraceError('LAB_COMMAND_TIMEOUT', `\`${commandLine(cmd, args)}\` did not finish within ${timeoutMs} ms`, {
          hint: 'the system may be overloaded; run `svtrace lab down` and try again',
        }));
      } else if (code !== 0 && !opts.allowFailure) {
        reject(commandFailed(cmd, args, r));
      } else {
        resolve(r);
      }
    });
  });
}

/**
 * Starts a daemon that detaches itself (OVS's --detach): its stdio go to
 * outputFile (never to a pipe a daemon could keep open), and this resolves
 * when the launching process exits. Throws with the output on failure.
 */
export function runDaemon(cmd: string, args: readonly string[], outputFile: string, opts: RunOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fd = openSync(outputFile, 'a');
  return new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', fd, fd],
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    });
    closeSync(fd);
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' ? missingTool(cmd, e) : e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      let output = '';
      try {
        output = readFileSync(outputFile, 'utf8');
      } catch {
        // nothing to add
      }
      const r: RunResult = { stdout: '', stderr: output.split('\n').slice(-4).join('\n'), exitCode: code };
      const err = commandFailed(cmd, args, r);
      if (signal) err.message += ` (killed by ${signal})`;
      reject(err);
    });
  });
}

/** Whether a command exists on PATH (runs nothing). */
export function hasCommand(cmd: string): boolean {
  const dirs = (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':');
  return dirs.some((dir) => {
    try {
      accessSync(`${dir}/${cmd}`, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
