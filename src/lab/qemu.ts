/**
 * Running the lab's QEMU guest: probe what KVM can do, find the guest image
 * in its cache, start QEMU (daemonized, with a pidfile under the run
 * directory), pin its vCPU and emulator threads, and stop it again.
 */
import { accessSync, constants, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SvtraceError } from '../errors.ts';
import { hasCommand, run, runDaemon } from './exec.ts';
import { readPidfile } from './ovs.ts';
import type { GuestImage, KvmFacts, QemuSpec } from './qemu-spec.ts';
import { qemuArgs } from './qemu-spec.ts';

export const QEMU_BINARY = 'qemu-system-x86_64';
export const DEFAULT_GUEST_DIR = '/var/cache/svtrace/guest';

export function probeKvm(): KvmFacts {
  let device: boolean;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    device = true;
  } catch {
    device = false;
  }
  const hardwareModule = ['kvm_intel', 'kvm_amd'].find((m) => existsSync(`/sys/module/${m}`));
  return { device, hardwareModule, pvm: existsSync('/sys/module/kvm_pvm') };
}

/** The guest image prepared by scripts/guest/build.sh, or LAB_VM_IMAGE_MISSING saying how to make it. */
export function findGuestImage(dir = process.env.SVTRACE_GUEST_DIR ?? DEFAULT_GUEST_DIR): GuestImage {
  const missing = (what: string) => new SvtraceError('LAB_VM_IMAGE_MISSING', `the guest image is not prepared: ${what}`, {
    hint: `run scripts/setup.sh (as root), or scripts/guest/build.sh ${dir}`,
  });
  let meta: { release?: unknown };
  try {
    meta = JSON.parse(readFileSync(join(dir, 'guest.json'), 'utf8')) as { release?: unknown };
  } catch {
    throw missing(`${join(dir, 'guest.json')} is absent or unreadable`);
  }
  const image: GuestImage = {
    dir, kernel: join(dir, 'vmlinuz'), initramfs: join(dir, 'initramfs.img'), modules: join(dir, 'modules'),
    release: typeof meta.release === 'string' ? meta.release : '?',
  };
  for (const f of [image.kernel, image.initramfs]) if (!existsSync(f)) throw missing(`${f} is absent`);
  return image;
}

/** Why the QEMU lab cannot run here, or undefined when it can (tests skip with this). */
export function qemuUnavailable(): string | undefined {
  if (!hasCommand(QEMU_BINARY)) return `${QEMU_BINARY} is not installed (apt-get install qemu-system-x86)`;
  try {
    findGuestImage();
  } catch (e) {
    return (e as Error).message;
  }
  return undefined;
}

/** The repository (or installed package) root: the directory holding bin/svtrace.js. */
export function svtraceRoot(): string {
  for (let d = dirname(fileURLToPath(import.meta.url)); d !== '/'; d = dirname(d)) {
    if (existsSync(join(d, 'bin', 'svtrace.js')) && existsSync(join(d, 'package.json'))) return d;
  }
  throw new SvtraceError('LAB_VM_NO_CLI', 'cannot find bin/svtrace.js above the svtrace sources', { hint: 'run svtrace from its checkout or package' });
}

/** Starts QEMU; resolves with its pid once it has daemonized. */
export async function startQemu(spec: QemuSpec, emulatorCpus: number[]): Promise<number> {
  const args = qemuArgs(spec);
  // taskset first: every QEMU thread starts on the emulator CPUs; the vCPUs are moved after
  if (emulatorCpus.length > 0) await runDaemon('taskset', ['-c', emulatorCpus.join(','), QEMU_BINARY, ...args], spec.paths.qemuLog, { timeoutMs: 30_000 });
  else await runDaemon(QEMU_BINARY, args, spec.paths.qemuLog, { timeoutMs: 30_000 });
  const pid = readPidfile(spec.paths.pidfile);
  if (pid === undefined) throw new SvtraceError('LAB_VM_START_FAILED', `QEMU started but wrote no pid to ${spec.paths.pidfile}`, { hint: `see ${spec.paths.qemuLog}` });
  return pid;
}

/** Threads of a process: tid → name (comm). */
function threadsOf(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim());
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

/**
 * Sets the timer slack of every QEMU thread (threads made later inherit it).
 * The kernel may end a thread's timed wait up to its slack late (50 µs by
 * default) to batch wake-ups; an idle vCPU waits for its next guest timer that
 * way, so every guest timer (netem's, the guest's hrtimers) fired 0–50 µs late
 * at random. Real-time threads, as SEAPATH runs its vCPUs, have none.
 * Returns the number of threads set.
 */
export function tightenTimerSlack(pid: number, slackNs = 1): number {
  let n = 0;
  for (const tid of threadsOf(pid).keys()) {
    try {
      writeFileSync(`/proc/${pid}/task/${tid}/timerslack_ns`, String(slackNs));
      n++;
    } catch {
      // ended meanwhile, or a kernel without timerslack_ns (before 4.6)
    }
  }
  return n;
}

export interface Pinning {
  /** vCPU index → host CPU, with the thread id. */
  vcpus: Array<{ vcpu: number; tid: number; cpu: number }>;
  emulatorCpus: number[];
}

/**
 * Pins vCPU thread i (named `CPU i/TCG` or `CPU i/KVM` with debug-threads=on)
 * to vmCpus[i mod n]; the other threads stay where taskset started them.
 */
export async function pinVcpus(pid: number, vmCpus: number[], emulatorCpus: number[]): Promise<Pinning> {
  const pinning: Pinning = { vcpus: [], emulatorCpus };
  if (vmCpus.length === 0) return pinning;
  for (const [tid, comm] of threadsOf(pid)) {
    const m = /^CPU (\d+)\/(TCG|KVM)$/.exec(comm);
    if (!m) continue;
    const vcpu = Number(m[1]);
    const cpu = vmCpus[vcpu % vmCpus.length]!;
    await run('taskset', ['-p', '-c', String(cpu), String(tid)]);
    pinning.vcpus.push({ vcpu, tid, cpu });
  }
  if (pinning.vcpus.length === 0) throw new SvtraceError('LAB_VM_PIN_FAILED', `no vCPU thread found in QEMU (pid ${pid})`, { hint: 'QEMU names its threads only with -name …,debug-threads=on' });
  return pinning;
}

/** Whether pid is our QEMU (its command line names our pidfile). */
export function isOurQemu(pid: number, pidfile: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes(pidfile) && argv.some((a) => a.endsWith(QEMU_BINARY));
  } catch {
    return false;
  }
}

export function ourQemuPid(pidfile: string): number | undefined {
  const pid = readPidfile(pidfile);
  return pid !== undefined && isOurQemu(pid, pidfile) ? pid : undefined;
}

/** Processes whose command line names this pidfile (a QEMU whose pidfile was lost, or still being written). */
export function qemuByCommandLine(pidfile: string): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    if (isOurQemu(Number(e), pidfile)) pids.push(Number(e));
  }
  return pids;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

/** Stops our QEMU: SIGTERM (it powers off at once), then SIGKILL. Returns the pids stopped. */
export async function stopQemu(pidfile: string): Promise<number[]> {
  const pids = [...new Set([...(ourQemuPid(pidfile) !== undefined ? [ourQemuPid(pidfile)!] : []), ...qemuByCommandLine(pidfile)])];
  for (const pid of pids) {
    for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
      if (!isOurQemu(pid, pidfile)) break;
      try {
        process.kill(pid, sig);
      } catch {
        break;
      }
      const end = Date.now() + 3_000;
      while (alive(pid) && isOurQemu(pid, pidfile) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    }
    if (alive(pid) && isOurQemu(pid, pidfile)) throw new Error(`QEMU (pid ${pid}) does not die`);
  }
  return pids;
}
