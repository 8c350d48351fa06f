/**
 * The lab's one typed config: what a user may set, its defaults, and the
 * names every piece of the lab gets. Pure: resolving and validating a config
 * runs no command, so a bad name is rejected before anything is created.
 */
import { isAbsolute, normalize } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { isHop, validateImpairment, type Impairment, type Hop } from './impair-spec.ts';

export type SwitchKind = 'ovs' | 'bridge';
/** The lab's VM: a network namespace (fast, the host's kernel) or a QEMU guest on a tap (its own kernel). */
export type VmKind = 'netns' | 'qemu';

/** The names of everything the lab creates. */
export interface LabNames {
  /** Publisher network namespace, e.g. `svt-pub`. */
  pubNetns: string;
  /** The publisher's interface, inside pubNetns. */
  pubIf: string;
  /** Host end of the publisher's veth (the hypervisor's "NIC", T1). */
  hostPubIf: string;
  /** The "VM" network namespace. */
  vmNetns: string;
  /** The subscriber's interface, inside vmNetns. */
  vmIf: string;
  /** Host end of the VM's veth (the "VM port", T2). */
  hostVmIf: string;
  /** The OVS bridge or Linux bridge in the root namespace. */
  bridge: string;
}

/** What a caller may give; everything is optional. */
export interface LabConfigInput {
  /** `ovs`, `bridge`, or `auto` (OVS when its tools are installed, else a Linux bridge). Default `auto`. */
  switch?: SwitchKind | 'auto';
  /** Where the state file and OVS's db, sockets, pidfiles and logs live. Default `/run/svtrace/lab`. */
  runDir?: string;
  /** Prefix of every name. Default `svt`. */
  prefix?: string;
  /** Override single names (each is validated). */
  names?: Partial<LabNames>;
  /** MTU of every lab link. Default 1500. */
  mtu?: number;
  /** OVS only: VLAN IDs the ports trunk. Empty or absent: every VLAN and untagged frames pass. */
  vlanTrunks?: number[];
  /** Impairments applied once the lab is up. */
  impairments?: Partial<Record<Hop, Impairment>>;
  /** Send a few frames through the lab at the end of `up` and check they arrive (needs tcpreplay). Default true. */
  verifyForwarding?: boolean;
  /** `netns` (default) or `qemu`. */
  vm?: VmKind;
  /** QEMU: accelerator; `auto` (default) takes KVM when it can run the guest, else TCG. */
  accel?: 'auto' | 'kvm' | 'tcg';
  /** QEMU: host CPUs for the vCPU threads (vCPU i on vmCpus[i mod n]). Empty: not pinned. */
  vmCpus?: number[];
  /** QEMU: host CPUs for the emulator's other threads (main loop, I/O). Empty: not pinned. */
  emulatorCpus?: number[];
  /** QEMU: vCPUs of the guest. Default: as many as vmCpus, at least 1. */
  vcpus?: number;
  /** QEMU: guest memory. Default 1024 MiB. */
  vmMemoryMb?: number;
  /**
   * QEMU: the tap's queue in frames (txqueuelen; the kernel's default is 1000).
   * Frames wait there while QEMU is not reading: under TCG on a loaded machine a
   * deeper queue turns the emulator's stalls into latency instead of loss.
   */
  tapQueueFrames?: number;
  /** QEMU: how long to wait for the guest's agent. Default 180 s (TCG boots in ~10 s on an idle machine). */
  bootTimeoutS?: number;
}

export interface LabConfig {
  switch: SwitchKind | 'auto';
  runDir: string;
  prefix: string;
  names: LabNames;
  mtu: number;
  vlanTrunks: number[];
  impairments: Partial<Record<Hop, Impairment>>;
  verifyForwarding: boolean;
  vm: VmKind;
  qemu: { accel: 'auto' | 'kvm' | 'tcg'; vmCpus: number[]; emulatorCpus: number[]; vcpus: number; memoryMb: number; bootTimeoutS: number; tapQueueFrames: number };
}

export const DEFAULT_RUN_DIR = '/run/svtrace/lab';
export const DEFAULT_PREFIX = 'svt';
export const DEFAULT_MTU = 1500;

/** Linux interface names: at most 15 bytes; never starting with '-' or '.' (it would read as an option or a path). */
const IFNAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
/** Namespace names become files under /run/netns. */
const NETNS_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
/** Prefixes leave room for the longest suffix (`pubh`, 4 characters). */
const PREFIX_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}$/;
/** Unix socket paths are limited to 107 bytes; our longest is `<runDir>/ovs/ovs-vswitchd.ctl`. */
const MAX_RUN_DIR_LENGTH = 107 - '/ovs/ovs-vswitchd.ctl'.length;

function invalid(message: string, hint: string): SvtraceError {
  return new SvtraceError('LAB_CONFIG_INVALID', message, { hint });
}

export function validateIfName(name: string, what: string): string {
  if (typeof name !== 'string' || !IFNAME_RE.test(name) || name === 'ovs-netdev') {
    throw invalid(
      `${what} ${JSON.stringify(name)} is not a valid interface name`,
      'use 1 to 15 characters from A-Z a-z 0-9 _ . - , not starting with - or .',
    );
  }
  return name;
}

export function validateNetnsName(name: string, what: string): string {
  if (typeof name !== 'string' || !NETNS_RE.test(name)) {
    throw invalid(
      `${what} ${JSON.stringify(name)} is not a valid namespace name`,
      'use 1 to 32 characters from A-Z a-z 0-9 _ . - , not starting with - or .',
    );
  }
  return name;
}

export function namesForPrefix(prefix: string): LabNames {
  return {
    pubNetns: `${prefix}-pub`,
    pubIf: `${prefix}pub0`,
    hostPubIf: `${prefix}pubh`,
    vmNetns: `${prefix}-vm`,
    vmIf: `${prefix}vm0`,
    hostVmIf: `${prefix}vmh`,
    bridge: `${prefix}br0`,
  };
}

function validateRunDir(dir: string): string {
  if (typeof dir !== 'string' || !isAbsolute(dir) || dir.includes('\0')) {
    throw invalid(`run directory ${JSON.stringify(dir)} is not an absolute path`, 'give --run-dir an absolute path, e.g. /run/svtrace/lab');
  }
  const clean = normalize(dir).replace(/\/+$/, '');
  if (clean === '' || clean === '/') throw invalid('the run directory cannot be /', 'give --run-dir a directory of its own');
  if (clean.length > MAX_RUN_DIR_LENGTH) {
    throw invalid(
      `run directory ${clean} is ${clean.length} characters long; OVS's unix sockets need it at most ${MAX_RUN_DIR_LENGTH}`,
      'choose a shorter --run-dir',
    );
  }
  return clean;
}

/** Flags and defaults → one validated config. Throws LAB_CONFIG_INVALID before anything runs. */
export function resolveLabConfig(input: LabConfigInput = {}): LabConfig {
  const sw = input.switch ?? 'auto';
  if (sw !== 'ovs' && sw !== 'bridge' && sw !== 'auto') {
    throw invalid(`unknown switch ${JSON.stringify(sw)}`, 'use --switch ovs or --switch bridge');
  }
  const prefix = input.prefix ?? DEFAULT_PREFIX;
  if (typeof prefix !== 'string' || !PREFIX_RE.test(prefix)) {
    throw invalid(
      `prefix ${JSON.stringify(prefix)} is not valid`,
      'use 1 to 11 characters from A-Z a-z 0-9 _ . - , not starting with - or .',
    );
  }
  const names = namesForPrefix(prefix);
  for (const key of Object.keys(names) as Array<keyof LabNames>) {
    const override = input.names?.[key];
    if (override !== undefined) names[key] = override;
  }
  validateNetnsName(names.pubNetns, 'publisher namespace');
  validateNetnsName(names.vmNetns, 'VM namespace');
  for (const key of ['pubIf', 'hostPubIf', 'vmIf', 'hostVmIf', 'bridge'] as const) validateIfName(names[key], key);
  if (names.pubNetns === names.vmNetns) throw invalid('the publisher and VM namespaces have the same name', 'give them different names');
  const rootNames = [names.hostPubIf, names.hostVmIf, names.bridge];
  if (new Set(rootNames).size !== rootNames.length) {
    throw invalid(`host-side names collide: ${rootNames.join(', ')}`, 'give each host-side interface its own name');
  }
  const mtu = input.mtu ?? DEFAULT_MTU;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 9216) throw invalid(`MTU ${mtu} is out of range`, 'use an integer MTU from 68 to 9216');
  const vlanTrunks = input.vlanTrunks ?? [];
  for (const vid of vlanTrunks) {
    if (!Number.isInteger(vid) || vid < 0 || vid > 4094) throw invalid(`VLAN ID ${vid} is out of range`, 'use VLAN IDs from 0 to 4094');
  }
  if (vlanTrunks.length > 0 && sw === 'bridge') {
    throw invalid('VLAN trunk lists are only implemented for --switch ovs', 'drop the VLAN list: the Linux bridge forwards every tagged frame');
  }
  const impairments: Partial<Record<Hop, Impairment>> = {};
  for (const [hop, imp] of Object.entries(input.impairments ?? {})) {
    if (!isHop(hop)) throw invalid(`unknown hop ${JSON.stringify(hop)}`, 'use --hop pub, vm or guest');
    if (imp !== undefined) impairments[hop] = validateImpairment(imp);
  }
  const vm = input.vm ?? 'netns';
  if (vm !== 'netns' && vm !== 'qemu') throw invalid(`unknown VM kind ${JSON.stringify(vm)}`, 'use --vm netns or --vm qemu');
  const accel = input.accel ?? 'auto';
  if (accel !== 'auto' && accel !== 'kvm' && accel !== 'tcg') throw invalid(`unknown accelerator ${JSON.stringify(accel)}`, 'use --accel auto, kvm or tcg');
  const cpuList = (what: string, list: number[] | undefined) => {
    for (const c of list ?? []) if (!Number.isInteger(c) || c < 0 || c > 4095) throw invalid(`${what} CPU ${c} is not a CPU number`, `give ${what} as a list like 0,1`);
    return [...new Set(list ?? [])];
  };
  const vmCpus = cpuList('--vm-cpus', input.vmCpus);
  const emulatorCpus = cpuList('--emulator-cpu', input.emulatorCpus);
  const vcpus = input.vcpus ?? Math.max(1, vmCpus.length);
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > 64) throw invalid(`${vcpus} vCPUs is out of range`, 'use 1 to 64 vCPUs');
  const memoryMb = input.vmMemoryMb ?? 1024;
  if (!Number.isInteger(memoryMb) || memoryMb < 256 || memoryMb > 65536) throw invalid(`guest memory ${memoryMb} MiB is out of range`, 'use 256 to 65536 MiB');
  const tapQueueFrames = input.tapQueueFrames ?? 1000;
  if (!Number.isInteger(tapQueueFrames) || tapQueueFrames < 1 || tapQueueFrames > 1_000_000) throw invalid(`tap queue of ${tapQueueFrames} frames is out of range`, 'use 1 to 1000000 frames');
  const bootTimeoutS = input.bootTimeoutS ?? 180;
  if (!(bootTimeoutS > 0 && bootTimeoutS <= 3600)) throw invalid(`boot timeout ${bootTimeoutS} s is out of range`, 'use 1 to 3600 s');
  if (vm === 'netns' && (vmCpus.length > 0 || emulatorCpus.length > 0 || input.accel !== undefined)) {
    throw invalid('--vm-cpus, --emulator-cpu and --accel apply to a QEMU VM only', 'add --vm qemu, or drop them');
  }
  return {
    switch: sw,
    runDir: validateRunDir(input.runDir ?? DEFAULT_RUN_DIR),
    prefix,
    names,
    mtu,
    vlanTrunks: [...new Set(vlanTrunks)].sort((a, b) => a - b),
    impairments,
    verifyForwarding: input.verifyForwarding ?? true,
    vm,
    qemu: { accel, vmCpus, emulatorCpus, vcpus, memoryMb, bootTimeoutS, tapQueueFrames },
  };
}
