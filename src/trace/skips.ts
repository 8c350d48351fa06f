/**
 * Probe runs the kernel skipped. A tracepoint's or kprobe's BPF program does
 * not run when it fires while another BPF program runs on the same CPU (the
 * kernel's recursion protection): e.g. a receive softirq interrupting the T4
 * program in a one-vCPU guest. The frame then simply has no line at that
 * point, and bpftrace 0.17 says nothing. The kernel counts the skips per
 * program; they are read here from the fdinfo of bpftrace's program file
 * descriptors (`recursion_misses`, Linux ≥ 5.12), so no loss is silent.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Sum of recursion_misses over the BPF programs the process holds; null when unreadable (gone, old kernel). */
export function recursionMisses(pid: number): number | null {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fdinfo`);
  } catch {
    return null;
  }
  let total = 0;
  let programs = 0;
  for (const fd of fds) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
    } catch {
      continue;
    }
    if (!text.includes('prog_tag:')) continue;
    programs++;
    const m = /^recursion_misses:\s*(\d+)/m.exec(text);
    if (m) total += Number(m[1]);
  }
  return programs > 0 ? total : null;
}
