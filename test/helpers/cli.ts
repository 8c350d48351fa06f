/** Runs the svtrace CLI from the sources (through tsx), as a user would. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(ROOT, '..', 'shared', 'fixtures');
export const fixture = (name: string) => join(FIXTURES, name);

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** `onStderr` sees the stderr so far after each chunk, with the child (to signal it mid-run). */
export function runCli(args: string[], options: { input?: Uint8Array; timeoutMs?: number; onStderr?: (stderr: string, child: ChildProcess) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], {
      cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; options.onStderr?.(stderr, child); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`svtrace ${args.join(' ')} timed out`)); }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input);
  });
}

/** True when `tool` is on PATH. */
/** `svtrace ARGS` (from the sources) in a process group of its own, as a shell runs a foreground job. */
export function spawnJob(args: string[]): { child: ChildProcess; out: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '', stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
  return { child, out: new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr }))) };
}

export function haveTool(tool: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status === 0;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}
