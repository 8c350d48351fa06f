/**
 * Probe runs the kernel skipped. A tracepoint's or kprobe's BPF program does
 * not run when it fires while another BPF program runs on the same CPU (the
 * kernel's recursion protection): e.g. a receive softirq interrupting the T4
 * program in a one-vCPU guest. The frame then simply has no line at that
 * point, and bpftrace 0.17 says nothing. The kernel counts the skips per
 * program; they are read here from the fdinfo of the process's program file
 * descriptors (`recursion_misses`, Linux ≥ 5.12), so no loss is silent.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';

/**
 * Whether this kernel counts the runs it skips of tracepoint and kprobe
 * programs (bpftrace's probes). Linux 6.7 added the count to trace_call_bpf;
 * before, a skipped run leaves no trace at all (raw tracepoints, the bpf
 * engine's, count theirs since 6.2, and did not skip before).
 */
export function kernelCountsSkips(kernelRelease: string = release()): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 6 || (major === 6 && minor >= 7);
}

export interface HeldProgram { id: number; recursionMisses: number | null }

/** The BPF programs a process holds open, from its fdinfo; empty when unreadable (gone). */
export function bpfProgramsOf(pid: number): HeldProgram[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return [];
  }
  const out: HeldProgram[] = [];
  for (const fd of fds) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // closed meanwhile
    }
    const id = /^prog_id:\s*(\d+)/m.exec(text);
    if (!id) continue;
    const misses = /^recursion_misses:\s*(\d+)/m.exec(text);
    out.push({ id: Number(id[1]), recursionMisses: misses ? Number(misses[1]) : null });
  }
  return out;
}

/** Sum of recursion_misses over the BPF programs the process holds; null when it holds none (gone, old kernel). */
export function recursionMisses(pid: number): number | null {
  const progs = bpfProgramsOf(pid);
  return progs.length > 0 ? progs.reduce((n, p) => n + (p.recursionMisses ?? 0), 0) : null;
}
