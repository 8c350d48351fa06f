/**
 * A known impairment for machines without tc netem: a busy loop at
 * SCHED_FIFO pinned to one CPU, on for `burstMs` every `periodMs`. Whatever
 * shares that CPU (the switch thread) waits while it runs. Spawned without a
 * shell (chrt + taskset + perl), killed with the run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { SvtraceError } from '../errors.ts';

export interface Hog { pid: number; cpu: number; stop(): void }

const PROGRAM = 'use Time::HiRes qw(time sleep); my ($b, $p) = @ARGV; $0 = "svtrace-hog"; while (1) { my $t = time + $b / 1000; 1 while time < $t; sleep(($p - $b) / 1000); }';

export function startHog(cpu: number, burstMs = 2, periodMs = 500, priority = 90): Hog {
  for (const tool of ['chrt', 'taskset', 'perl']) {
    if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status !== 0) {
      throw new SvtraceError('TOOL_MISSING', `${tool} is needed for the CPU-hog impairment`, { hint: 'apt-get install util-linux perl' });
    }
  }
  if (!Number.isInteger(cpu) || cpu < 0 || !(burstMs > 0) || !(periodMs > burstMs)) {
    throw new SvtraceError('USAGE', `hog on CPU ${cpu}, ${burstMs} ms every ${periodMs} ms is not possible`, { hint: 'a burst shorter than its period, on an existing CPU' });
  }
  const child: ChildProcess = spawn('chrt', ['-f', String(priority), 'taskset', '-c', String(cpu), 'perl', '-e', PROGRAM, String(burstMs), String(periodMs)], { stdio: 'ignore' });
  const kill = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.once('exit', kill);
  return { pid: child.pid ?? -1, cpu, stop: () => { process.off('exit', kill); kill(); } };
}

/** The CPU a process's main thread last ran on (field 39 of /proc/PID/stat). */
export function cpuOf(pid: number): number | null {
  try {
    const stat = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpu = Number(fields[36]);
    return Number.isInteger(cpu) ? cpu : null;
  } catch {
    return null;
  }
}
