/**
 * The QEMU guest of the lab as data: which accelerator can run it, the
 * paths it uses under the run directory, and the exact argv. Pure: the
 * facts of the machine come in as arguments, nothing is probed here.
 *
 * The guest is Debian's generic kernel with a busybox initramfs that
 * scripts/guest/build.sh prepared in a cache; it mounts the host's `/`
 * read-only over virtio-9p (tmpfs overlay) and runs the host's own node and
 * svtrace, so `svtrace lab exec vm -- svtrace subscribe …` needs no image.
 */
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';

export type Accel = 'kvm' | 'tcg';

/** What /dev/kvm and the loaded modules say (probed in qemu.ts). */
export interface KvmFacts {
  /** /dev/kvm exists and opens read-write. */
  device: boolean;
  /** kvm_intel or kvm_amd is loaded: KVM can run a stock guest kernel. */
  hardwareModule: string | undefined;
  /** kvm_pvm is loaded: the device runs only PVM-built guests; a stock kernel hangs after the BIOS. */
  pvm: boolean;
}

export interface AccelChoice {
  accel: Accel;
  /** Why, in words, for `lab status`, records and reports. */
  reason: string;
}

/** TCG's timings are an emulator's: every place that shows one says so with this. */
export const TCG_NOTE = 'QEMU TCG emulation (no KVM): timings are an emulator\'s, not a real VM\'s';

/** KVM when it can run the guest, TCG otherwise; `requested` kvm or tcg is obeyed or refused. */
export function chooseAccel(requested: 'auto' | Accel, facts: KvmFacts): AccelChoice {
  const kvmOk = facts.device && facts.hardwareModule !== undefined && !facts.pvm;
  const whyNot = !facts.device
    ? '/dev/kvm is absent or not writable'
    : facts.pvm
      ? 'the KVM device is a PVM host (kvm_pvm), which runs only PVM-built guests'
      : 'neither kvm_intel nor kvm_amd is loaded';
  if (requested === 'tcg') return { accel: 'tcg', reason: 'TCG requested (--accel tcg)' };
  if (kvmOk) return { accel: 'kvm', reason: `KVM (${facts.hardwareModule ?? 'kvm'})` };
  if (requested === 'kvm') {
    throw new SvtraceError('LAB_VM_NO_KVM', `KVM cannot run the guest here: ${whyNot}`, { hint: 'use --accel tcg (emulation) or --accel auto' });
  }
  return { accel: 'tcg', reason: `TCG emulation (${whyNot})` };
}

/** Files of the guest under the run directory. */
export interface VmPaths {
  dir: string;
  pidfile: string;
  consoleLog: string;
  qemuLog: string;
  /** Written by the guest through the second 9p share; the same path inside the guest. */
  share: string;
  /** Unix sockets of the virtconsole control ports (/dev/hvcN in the guest). */
  controlSockets: string[];
}

/** Control ports: concurrent `lab exec` sessions (each takes one port). */
export const CONTROL_PORTS = 4;

export function vmPaths(runDir: string): VmPaths {
  const dir = join(runDir, 'vm');
  return {
    dir,
    pidfile: join(dir, 'qemu.pid'),
    consoleLog: join(dir, 'console.log'),
    qemuLog: join(dir, 'qemu.log'),
    share: join(dir, 'share'),
    controlSockets: Array.from({ length: CONTROL_PORTS }, (_, i) => join(dir, `ctl${i}.sock`)),
  };
}

/** The guest image that scripts/guest/build.sh prepares. */
export interface GuestImage {
  dir: string;
  kernel: string;
  initramfs: string;
  modules: string;
  release: string;
}

export interface QemuSpec {
  paths: VmPaths;
  image: GuestImage;
  accel: Accel;
  tap: string;
  mac: string;
  hostname: string;
  vcpus: number;
  memoryMb: number;
  /** Absolute paths of the host's node and svtrace's dist/guest-agent.js (the guest runs them through the 9p root). */
  node: string;
  agent: string;
  /** A name for ps and the thread names (debug-threads). */
  name: string;
}

/** Paths that go on the kernel command line: absolute, no spaces or quotes. */
const CMDLINE_PATH_RE = /^\/[A-Za-z0-9_.,+@/-]*$/;

export function checkCmdlinePath(what: string, path: string): string {
  if (!CMDLINE_PATH_RE.test(path) || path.includes('/../')) {
    throw new SvtraceError('LAB_CONFIG_INVALID', `${what} ${JSON.stringify(path)} cannot be passed to the guest`, {
      hint: 'use a path of letters, digits and _ . , + @ - / only',
    });
  }
  return path;
}

/** A locally administered unicast MAC from the lab's prefix (stable per prefix). */
export function macForPrefix(prefix: string): string {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(prefix)) h = Math.imul(h ^ c, 0x01000193) >>> 0;
  const b = [0x52, 0x54, 0x00, (h >>> 16) & 0xff, (h >>> 8) & 0xff, h & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The kernel command line: serial console, no reboot, the init's svtrace.* parameters. */
export function kernelCmdline(s: QemuSpec): string {
  return [
    'console=ttyS0', 'panic=-1', 'quiet', 'loglevel=4',
    `svtrace.hostname=${s.hostname}`,
    `svtrace.accel=${s.accel}`,
    `svtrace.records=${checkCmdlinePath('share directory', s.paths.share)}`,
    `svtrace.node=${checkCmdlinePath('node', s.node)}`,
    `svtrace.agent=${checkCmdlinePath('svtrace guest agent', s.agent)}`,
    `svtrace.modules=${checkCmdlinePath('guest modules', s.image.modules)}`,
  ].join(' ');
}

/** QEMU's argv (without the binary). Commas in fsdev/chardev paths would split options: refused by checkCmdlinePath. */
export function qemuArgs(s: QemuSpec): string[] {
  for (const p of [s.paths.dir, s.image.kernel, s.image.initramfs]) checkCmdlinePath('path', p);
  if (s.paths.dir.includes(',')) throw new SvtraceError('LAB_CONFIG_INVALID', `run directory ${s.paths.dir} contains a comma`, { hint: 'choose a --run-dir without commas' });
  const args = [
    '-name', `${s.name},debug-threads=on`,
    '-machine', 'q35',
    '-accel', s.accel,
    '-cpu', s.accel === 'kvm' ? 'host' : 'max',
    '-smp', String(s.vcpus),
    '-m', String(s.memoryMb),
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-daemonize', '-pidfile', s.paths.pidfile,
    '-kernel', s.image.kernel, '-initrd', s.image.initramfs, '-append', kernelCmdline(s),
    '-serial', `file:${s.paths.consoleLog}`,
    '-netdev', `tap,id=net0,ifname=${s.tap},script=no,downscript=no`,
    '-device', `virtio-net-pci,netdev=net0,mac=${s.mac}`,
    '-fsdev', 'local,id=hostroot,path=/,readonly=on,security_model=none,multidevs=remap',
    '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
    '-fsdev', `local,id=share,path=${s.paths.share},security_model=none`,
    '-device', 'virtio-9p-pci,fsdev=share,mount_tag=records',
    '-device', 'virtio-serial-pci,id=vser0',
  ];
  s.paths.controlSockets.forEach((sock, i) => {
    args.push('-chardev', `socket,id=ctl${i},path=${sock},server=on,wait=off`);
    args.push('-device', `virtconsole,chardev=ctl${i},name=svtrace.ctl${i}`);
  });
  return args;
}
