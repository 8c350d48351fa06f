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
  /**
   * How long the output may be quiet while waiting for the program to say it stopped matching (default 3 s).
   * While lines still flow, bpftrace is reading a backlog that the acknowledgement sits behind (an emulated
   * guest reads slower than 4000 frames/s arrive): the wait goes on, up to maxDrainMs.
   */
  ackTimeoutMs?: number;
  /** Output quiet this long means the buffers are empty (default 150 ms). */
  quietMs?: number;
  /** Longest drain in all (default 60 s). */
  maxDrainMs?: number;
}

export async function drain(comm: string, acknowledged: Promise<void>, lastLineAt: () => number, exited: Promise<unknown>, o: DrainOptions = {}): Promise<'drained' | 'no-ack' | 'exited'> {
  let gone = false;
  let acked = false;
  void exited.then(() => { gone = true; });
  void acknowledged.then(() => { acked = true; });
  const started = Date.now();
  const until = started + (o.maxDrainMs ?? 60_000);
  await runAs(comm);
  const timeout = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref());
  const quietFor = () => Date.now() - Math.max(lastLineAt(), started);
  const ackQuietMs = o.ackTimeoutMs ?? 3000;
  while (!acked && !gone && Date.now() < until && quietFor() < ackQuietMs) await timeout(50);
  if (gone) return 'exited';
  if (!acked) return 'no-ack';
  const quietMs = o.quietMs ?? 150;
  while (!gone && Date.now() < until && quietFor() < quietMs) await timeout(quietMs / 3);
  return gone ? 'exited' : 'drained';
}
