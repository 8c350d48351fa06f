/**
 * What this machine offers for tracing, found by looking, never assumed:
 * bpftrace and its version, root, BTF, tracefs, kprobes, the tracepoints of
 * net/skb/sched/irq, nsecs(tai), and the threads of the virtualization stack
 * (ovs-vswitchd, vhost, qemu, KVM vCPUs). Plain data; `choosePlan` and
 * `diagnose` (plan.ts) decide what to do with it.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { promisify } from 'node:util';
import { bpftraceVersion, dryRun, findBpftrace, versionAtLeast, type BpftraceVersion } from './bpftrace.ts';
import { inInitialNetns } from './interfaces.ts';
import { bpfEngineUnavailable } from './bpf-engine.ts';

const run = promisify(execFile);

export interface Task {
  pid: number;
  tid: number;
  comm: string;
}

export interface Capabilities {
  kernel: string;
  root: boolean;
  bpftrace: { path: string | null; version: BpftraceVersion | null };
  /** /sys/kernel/btf/vmlinux exists: bpftrace can read struct sk_buff without headers. */
  btf: boolean;
  /** Where tracefs is mounted (has events/), or null. */
  tracefs: string | null;
  /** svtrace runs in the initial network namespace (null: could not tell). */
  initialNetns: boolean | null;
  kprobes: { available: boolean; detail: string };
  tracepoints: { net: string[]; skb: string[]; sched: string[]; irq: string[] };
  /** bpftrace has nsecs(tai) (0.20 and later). */
  nsecsTai: boolean;
  /** Why the binary engine (`--engine bpf`) cannot run here, null when it can; absent when not looked at. */
  bpfEngine?: string | null;
  threads: { ovsVswitchd: Task[]; vhost: Task[]; qemu: Task[]; kvmVcpu: Task[] };
}

const TRACEFS = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing'];

/** The tracefs mount point: from the mount table (readable without root), else where events/ exists. */
function findTracefs(): string | null {
  try {
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
    const tracefs = mounts.find((m) => m[2] === 'tracefs' && TRACEFS.includes(m[1] ?? ''));
    if (tracefs) return tracefs[1]!;
  } catch {
    // no /proc: fall back to looking
  }
  return TRACEFS.find((p) => existsSync(`${p}/events`)) ?? null;
}

async function listProbes(bpftrace: string, pattern: string): Promise<string[]> {
  try {
    const { stdout } = await run(bpftrace, ['-l', pattern], { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 });
    return stdout.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  } catch {
    return [];
  }
}

/** Tracepoints of one category, from bpftrace -l, or from tracefs when bpftrace cannot list. */
async function tracepoints(bpftrace: string | null, tracefs: string | null, category: string): Promise<string[]> {
  if (bpftrace) {
    const listed = await listProbes(bpftrace, `tracepoint:${category}:*`);
    if (listed.length > 0) return listed;
  }
  if (!tracefs) return [];
  try {
    return readdirSync(`${tracefs}/events/${category}`, { withFileTypes: true })
      .filter((d) => d.isDirectory()).map((d) => `tracepoint:${category}:${d.name}`).sort();
  } catch {
    return [];
  }
}

async function kprobes(bpftrace: string | null, tracefs: string | null): Promise<{ available: boolean; detail: string }> {
  const events = tracefs !== null && existsSync(`${tracefs}/kprobe_events`);
  if (!events) {
    return { available: false, detail: tracefs ? `${tracefs}/kprobe_events is absent: the kernel is built without CONFIG_KPROBES` : 'tracefs is not mounted' };
  }
  if (!bpftrace) return { available: false, detail: 'kprobe_events exists but bpftrace is missing' };
  const listed = await listProbes(bpftrace, 'kprobe:skb_push');
  if (listed.length === 0) return { available: false, detail: 'kprobe_events exists but bpftrace lists no kprobe:skb_push (available_filter_functions unreadable?)' };
  return { available: true, detail: 'kprobe_events exists and bpftrace lists kprobe:skb_push' };
}

async function nsecsTai(bpftrace: string | null, version: BpftraceVersion | null): Promise<boolean> {
  if (!bpftrace) return false;
  if (versionAtLeast(version, 0, 20)) return true;
  try {
    return (await dryRun('BEGIN { printf("%llu\\n", nsecs(tai)); exit(); }', bpftrace)).ok;
  } catch {
    return false;
  }
}

/** Every thread's comm, from /proc/PID/task/TID/comm. */
export function scanTasks(proc = '/proc'): Task[] {
  const out: Task[] = [];
  let pids: string[];
  try {
    pids = readdirSync(proc).filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const p of pids) {
    let tids: string[];
    try {
      tids = readdirSync(`${proc}/${p}/task`).filter((d) => /^\d+$/.test(d));
    } catch {
      continue;
    }
    for (const t of tids) {
      try {
        out.push({ pid: Number(p), tid: Number(t), comm: readFileSync(`${proc}/${p}/task/${t}/comm`, 'utf8').trim() });
      } catch {
        // the task ended while we looked
      }
    }
  }
  return out;
}

export function classifyTasks(tasks: Task[]): Capabilities['threads'] {
  return {
    ovsVswitchd: tasks.filter((t) => t.comm === 'ovs-vswitchd' && t.pid === t.tid),
    vhost: tasks.filter((t) => /^vhost-\d+$/.test(t.comm)),
    qemu: tasks.filter((t) => /^qemu/.test(t.comm) && t.pid === t.tid),
    kvmVcpu: tasks.filter((t) => /^CPU \d+\/KVM$/.test(t.comm)),
  };
}

export async function probeCapabilities(): Promise<Capabilities> {
  const path = findBpftrace();
  const tracefs = findTracefs();
  const version = path ? await bpftraceVersion(path) : null;
  const [net, skb, sched, irq, kp, tai] = await Promise.all([
    tracepoints(path, tracefs, 'net'),
    tracepoints(path, tracefs, 'skb'),
    tracepoints(path, tracefs, 'sched'),
    tracepoints(path, tracefs, 'irq'),
    kprobes(path, tracefs),
    nsecsTai(path, version),
  ]);
  return {
    kernel: release(),
    root: process.getuid?.() === 0,
    bpftrace: { path, version },
    btf: existsSync('/sys/kernel/btf/vmlinux'),
    tracefs,
    initialNetns: inInitialNetns(),
    kprobes: kp,
    tracepoints: { net, skb, sched, irq },
    nsecsTai: tai,
    bpfEngine: bpfEngineUnavailable(),
    threads: classifyTasks(scanTasks()),
  };
}
