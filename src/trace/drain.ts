/**
 * Stopping svtrace.bt without losing the lines its per-CPU buffers hold:
 * run a command whose name the program watches (its exec sets @stop, so no
 * point matches or counts after it), wait for the program's
 * SVTRACE_STOPPING, then until its output has been quiet for a moment.
 * Only then does the runner send SIGINT, which makes bpftrace print END and
 * drop whatever it has not read yet: by then, nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TRUE = ['/bin/true', '/usr/bin/true'].find((p) => existsSync(p)) ?? '/bin/true';

/** Runs /bin/true under the name `comm` (a symlink: the kernel names a task after the file it executes). */
export async function runAs(comm: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-stop-'));
  try {
    const link = join(dir, comm);
    symlinkSync(TRUE, link);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(link, [], { stdio: 'ignore' });
      child.on('error', reject);
      child.on('close', () => resolve());
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface DrainOptions {
  /** Longest wait for the program to say it stopped matching (default 3 s). */
  ackTimeoutMs?: number;
  /** Output quiet this long means the buffers are empty (default 150 ms). */
  quietMs?: number;
  /** Longest drain after the acknowledgement (default 5 s). */
  drainTimeoutMs?: number;
}

export async function drain(comm: string, acknowledged: Promise<void>, lastLineAt: () => number, exited: Promise<unknown>, o: DrainOptions = {}): Promise<'drained' | 'no-ack' | 'exited'> {
  let gone = false;
  void exited.then(() => { gone = true; });
  await runAs(comm);
  const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
  const ack = await Promise.race([acknowledged.then(() => 'ack' as const), exited.then(() => 'exited' as const), timeout(o.ackTimeoutMs ?? 3000)]);
  if (ack !== 'ack') return ack === 'exited' ? 'exited' : 'no-ack';
  const quietMs = o.quietMs ?? 150;
  const until = Date.now() + (o.drainTimeoutMs ?? 5000);
  while (!gone && Date.now() < until && Date.now() - lastLineAt() < quietMs) await timeout(quietMs / 3);
  return gone ? 'exited' : 'drained';
}
