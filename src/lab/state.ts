/**
 * The lab's state file, `<runDir>/lab.json`: exactly what `lab up` created,
 * written BEFORE each creation step so that `lab down` can undo a crashed
 * `up`. Every write goes to a temporary file that is renamed over the old one,
 * so a reader never sees half a file.
 */
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SvtraceError } from '../errors.ts';
import type { LabConfig, SwitchKind } from './config.ts';
import type { Accel } from './qemu-spec.ts';
import type { Hop, Impairment } from './impair-spec.ts';

export const STATE_FILE = 'lab.json';
export const STATE_VERSION = 1;

export type OvsDaemon = 'ovsdb-server' | 'ovs-vswitchd';

/** One thing the lab created (or was about to create when it was recorded). */
export type LabResource =
  /** tree: remove it and everything in it; otherwise remove the empty directories from runDir up to path. */
  | { kind: 'dir'; path: string; tree: boolean }
  | { kind: 'netns'; name: string }
  /** A veth pair: `name` in the root namespace, `peer` in `peerNetns`. Deleting one end deletes both. */
  | { kind: 'veth'; name: string; peer: string; peerNetns: string }
  | { kind: 'bridge'; name: string; switch: SwitchKind }
  | { kind: 'process'; name: OvsDaemon; pidfile: string; unixctl: string; pid?: number }
  /** A persistent tap device: OVS's userspace datapath's (ovs-netdev), or the QEMU guest's VM port. */
  | { kind: 'tap'; name: string }
  /** The QEMU guest: found by its pidfile and by the command line that names it. */
  | { kind: 'qemu'; pidfile: string; pid?: number };

/** The QEMU guest of a `--vm qemu` lab. */
export interface VmTopology {
  kind: 'qemu';
  accel: Accel;
  /** Why this accelerator: shown by `lab status`, kept in records and reports (TCG timings are an emulator's). */
  accelReason: string;
  /** The host's tap (also topology.hostVmIf: T2), QEMU's virtio-net backend. */
  tap: string;
  /** The tap's queue (txqueuelen) in frames. */
  tapQueueFrames: number;
  /** The guest's interface (virtio-net): T3, T4. */
  guestIf: string;
  mac: string;
  hostname: string;
  pid?: number;
  vcpus: number;
  memoryMb: number;
  /** vCPU index → host CPU; the emulator's other threads on emulatorCpus. Empty: not pinned. */
  pinning: { vcpus: Array<{ vcpu: number; tid: number; cpu: number }>; emulatorCpus: number[] };
  /** Host directory shared writable with the guest at the same path (records come back through it; `down` removes it). */
  share: string;
  controlSockets: string[];
  consoleLog: string;
  kernelRelease: string;
  /** From QEMU's start to the agent's first answer. */
  bootMs?: number;
  /** QEMU's threads' timer slack (ns), set at start: guest timers fire when due, not up to 50 µs late. */
  timerSlackNs?: number;
}

/** The lab as data, for the commands that use it (trace, publish, subscribe). */
export interface LabTopology {
  runDir: string;
  switch: SwitchKind;
  pubNetns: string;
  pubIf: string;
  vmNetns: string;
  vmIf: string;
  /** T1: the hypervisor receives the publisher's frames here (root namespace). */
  hostPubIf: string;
  /** T2: the hypervisor transmits towards the VM here (root namespace). */
  hostVmIf: string;
  hostPubIfIndex?: number;
  hostVmIfIndex?: number;
  bridge: string;
  mtu: number;
  /** Present for a QEMU VM (then vmNetns is '' and vmIf is the guest's interface). */
  vm?: VmTopology;
  ovs?: { dir: string; dbSock: string; pids: Partial<Record<OvsDaemon, number>> };
}

export interface LabState {
  version: number;
  runDir: string;
  /** `creating` until `up` finished; `up` after. */
  phase: 'creating' | 'up';
  createdAt: string;
  /** The `lab up` process, to tell a crashed one from one still running. */
  owner: { pid: number; startTicks: string };
  config: LabConfig;
  topology: LabTopology;
  /** In creation order; `down` undoes them in reverse. */
  resources: LabResource[];
  impairments: Partial<Record<Hop, Impairment>>;
  forwardingCheck?: { ok: boolean; detail: string };
}

export function statePath(runDir: string): string {
  return join(runDir, STATE_FILE);
}

/** Writes the state atomically (temp file + rename). */
export async function saveState(state: LabState): Promise<void> {
  const path = statePath(state.runDir);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o644 });
  await rename(tmp, path);
}

/**
 * Claims the run directory: creates the state file only if none exists.
 * Returns the first directory it had to create (undefined if runDir existed).
 */
export async function claimRunDir(state: LabState): Promise<string | undefined> {
  const createdTop = await mkdir(state.runDir, { recursive: true, mode: 0o755 });
  let fh;
  try {
    fh = await open(statePath(state.runDir), 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new SvtraceError('LAB_ALREADY_UP', `a lab is already up (or half up) in ${state.runDir}`, {
        hint: `svtrace lab down --run-dir ${state.runDir}`,
      });
    }
    throw new SvtraceError('LAB_RUN_DIR_UNUSABLE', `cannot create ${statePath(state.runDir)}: ${(e as Error).message}`, {
      hint: 'choose a writable --run-dir',
      cause: e,
    });
  }
  await fh.close();
  if (createdTop !== undefined) state.resources.push({ kind: 'dir', path: createdTop, tree: false });
  await saveState(state);
  return createdTop;
}

/** The state file of runDir, or undefined if there is none. */
export async function loadState(runDir: string): Promise<LabState | undefined> {
  let text: string;
  try {
    text = await readFile(statePath(runDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new SvtraceError('LAB_STATE_UNREADABLE', `cannot read ${statePath(runDir)}: ${(e as Error).message}`, { cause: e });
  }
  if (text.trim() === '') return undefined; // claimed, but crashed before the first write: nothing created
  let state: LabState;
  try {
    state = JSON.parse(text) as LabState;
  } catch (e) {
    throw new SvtraceError('LAB_STATE_CORRUPT', `${statePath(runDir)} is not valid JSON`, {
      hint: 'remove what the lab created by hand (ip netns list, ip link), then delete the file',
      cause: e,
    });
  }
  if (state.version !== STATE_VERSION || !Array.isArray(state.resources)) {
    throw new SvtraceError('LAB_STATE_CORRUPT', `${statePath(runDir)} has an unknown format (version ${String(state.version)})`, {
      hint: 'use the svtrace version that created the lab to take it down',
    });
  }
  return state;
}

export async function removeStateFile(runDir: string): Promise<void> {
  await rm(statePath(runDir), { force: true });
}

/** The topology of the lab that is up in runDir. Throws LAB_NOT_UP otherwise. */
export async function readLabState(runDir: string): Promise<LabTopology> {
  const state = await loadState(runDir);
  if (state === undefined || state.phase !== 'up') {
    throw new SvtraceError('LAB_NOT_UP', `no lab is up in ${runDir}${state ? ' (it is still being created, or its creation crashed)' : ''}`, {
      hint: state ? `svtrace lab down --run-dir ${runDir}, then svtrace lab up` : `svtrace lab up --run-dir ${runDir}`,
    });
  }
  return state.topology;
}

/** Field 22 of /proc/PID/stat: when the process started, to recognise a reused pid. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const afterComm = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return afterComm[19];
  } catch {
    return undefined;
  }
}

/** Whether the recorded `lab up` process is still running. */
export function ownerAlive(state: LabState): boolean {
  if (state.owner.pid === process.pid) return false;
  const ticks = processStartTicks(state.owner.pid);
  return ticks !== undefined && ticks === state.owner.startTicks;
}
