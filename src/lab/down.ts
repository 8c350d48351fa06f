/**
 * Taking a lab down: undo, in reverse order, every resource the state file
 * lists. Idempotent, tolerant of pieces already gone, and safe after a
 * `kill -9` of `lab up` (the state is written before each creation step).
 */
import { readdir, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, relative } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { deleteLink, deleteNetns, getLink } from './netlink.ts';
import { findOurDaemons, ovsPaths, processesMatching, stopDaemon, tapHolders, vsctl } from './ovs.ts';
import { QEMU_BINARY, stopQemu } from './qemu.ts';
import { selfTestPcapPath } from './selftest.ts';
import { loadState, ownerAlive, removeStateFile, statePath, type LabResource, type LabState } from './state.ts';

export interface TeardownStep {
  resource: LabResource;
  /** removed: it was there and is gone now; absent: it was already gone; failed: still there. */
  outcome: 'removed' | 'absent' | 'failed';
  detail?: string;
}

export interface LabDownResult {
  runDir: string;
  /** False when there was no lab in runDir. */
  wasUp: boolean;
  steps: TeardownStep[];
  durationMs: number;
}

export type Progress = (message: string) => void;

function describe(r: LabResource): string {
  switch (r.kind) {
    case 'dir': return `directory ${r.path}`;
    case 'netns': return `namespace ${r.name}`;
    case 'veth': return `veth ${r.name} (peer ${r.peer} in ${r.peerNetns})`;
    case 'bridge': return `${r.switch === 'ovs' ? 'OVS bridge' : 'bridge'} ${r.name}`;
    case 'process': return `${r.name}${r.pid ? ` (pid ${r.pid})` : ''}`;
    case 'tap': return `tap ${r.name}`;
    case 'qemu': return `QEMU${r.pid ? ` (pid ${r.pid})` : ''}`;
  }
}

export { describe as describeResource };

/** Removes empty directories from `from` up to and including `top`. */
async function removeEmptyDirs(from: string, top: string): Promise<boolean> {
  let removed = false;
  for (let d = from; ; d = dirname(d)) {
    if (relative(top, d).startsWith('..')) break;
    try {
      if ((await readdir(d)).length > 0) break;
      await rmdir(d);
      removed = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (d === top) break;
  }
  return removed;
}

async function undo(state: LabState, r: LabResource): Promise<boolean> {
  const paths = ovsPaths(state.runDir);
  switch (r.kind) {
    case 'process':
      return (await stopDaemon(paths, r.name)).length > 0;
    case 'qemu':
      return (await stopQemu(r.pidfile)).length > 0;
    case 'bridge': {
      const existed = (await getLink(r.name)) !== undefined;
      if (r.switch === 'ovs' && findOurDaemons('ovs-vswitchd', paths.daemons['ovs-vswitchd'].pidfile).length > 0) {
        // ask our OVS to remove it with its tap; a killed ovs-vswitchd leaves the tap behind, removed below
        await vsctl(paths, ['--if-exists', 'del-br', r.name], true).catch(() => undefined);
      }
      const link = await getLink(r.name);
      if (!link) return existed;
      const expected = r.switch === 'ovs' ? ['tun', 'openvswitch'] : ['bridge'];
      if (!expected.includes(link.kind ?? '')) throw new Error(`${r.name} is a ${link.kind ?? 'plain'} link, not ours; left alone`);
      return deleteLink(r.name);
    }
    case 'tap': {
      const link = await getLink(r.name);
      if (!link) return false;
      const holders = tapHolders(r.name);
      if (holders.length > 0) throw new Error(`${r.name} is held open by pid ${holders.join(', ')}, not ours; left alone`);
      return deleteLink(r.name);
    }
    case 'veth': {
      const host = await deleteLink(r.name);
      // normally gone with its peer; a half-made pair may have only this end
      const peer = await deleteLink(r.peer, r.peerNetns).catch(() => false);
      return host || peer;
    }
    case 'netns':
      return deleteNetns(r.name);
    case 'dir':
      if (r.tree) {
        const existed = (await readdir(r.path).catch(() => undefined)) !== undefined;
        await rm(r.path, { recursive: true, force: true });
        return existed;
      }
      return removeEmptyDirs(state.runDir, r.path);
  }
}

function namesOf(state: LabState): Set<string> {
  const names = new Set<string>();
  for (const r of state.resources) {
    if (r.kind === 'netns' || r.kind === 'bridge') names.add(r.name);
    if (r.kind === 'veth') [r.name, r.peer].forEach((n) => names.add(n));
  }
  return names;
}

/**
 * After a `kill -9` of `lab up`, the command it was running (an `ip link add`,
 * an OVS launcher) lives on for a moment and may still create something.
 * Waits (at most timeoutMs) until no process names our links, namespaces or run directory.
 */
async function waitForOrphans(state: LabState, progress: Progress, timeoutMs = 5_000): Promise<void> {
  const names = namesOf(state);
  const ours = (argv: string[]) =>
    !['ovsdb-server', 'ovs-vswitchd', QEMU_BINARY].includes(basename(argv[0] ?? '')) &&
    argv.some((a) => names.has(a) || a.includes(state.runDir + '/'));
  const end = Date.now() + timeoutMs;
  let told = false;
  while (Date.now() < end) {
    const pending = processesMatching(ours);
    if (pending.length === 0) return;
    if (!told) progress(`waiting for ${pending.length} command(s) of the crashed \`lab up\` to finish (pid ${pending.join(', ')})`);
    told = true;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Undoes every resource of the state in reverse order; never throws, reports each step. */
export async function teardown(state: LabState, progress: Progress = () => {}): Promise<TeardownStep[]> {
  const steps: TeardownStep[] = [];
  await rm(selfTestPcapPath(state.runDir), { force: true }).catch(() => undefined);
  for (const resource of [...state.resources].reverse()) {
    const clean = steps.every((s) => s.outcome !== 'failed');
    // the run directory goes last, with the state file in it, and only if everything else is gone
    if (resource.kind === 'dir' && !resource.tree && clean) await removeStateFile(state.runDir).catch(() => undefined);
    try {
      const removed = await undo(state, resource);
      steps.push({ resource, outcome: removed ? 'removed' : 'absent' });
      if (removed) progress(`removed ${describe(resource)}`);
    } catch (e) {
      steps.push({ resource, outcome: 'failed', detail: (e as Error).message });
      progress(`could not remove ${describe(resource)}: ${(e as Error).message}`);
    }
  }
  return steps;
}

/**
 * Takes down the lab of runDir. Idempotent: with no lab there it returns
 * `wasUp: false`. Throws LAB_DOWN_INCOMPLETE (keeping the state file, so it can be
 * retried) if something could not be removed.
 */
export async function labDown(runDir: string, progress: Progress = () => {}): Promise<LabDownResult> {
  const started = performance.now();
  const state = await loadState(runDir);
  if (state === undefined) {
    await removeStateFile(runDir); // an empty file left by an `up` killed before its first write
    return { runDir, wasUp: false, steps: [], durationMs: performance.now() - started };
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new SvtraceError('LAB_NOT_ROOT', `taking down the lab in ${runDir} needs root`, { hint: 'run it as root, e.g. sudo svtrace lab down' });
  }
  if (state.phase === 'creating' && ownerAlive(state)) {
    throw new SvtraceError('LAB_UP_IN_PROGRESS', `\`svtrace lab up\` (pid ${state.owner.pid}) is still creating the lab in ${runDir}`, {
      hint: `wait for it to finish, or stop it (kill ${state.owner.pid}) and run \`svtrace lab down\` again`,
    });
  }
  if (state.phase === 'creating') await waitForOrphans(state, progress);
  const steps = await teardown(state, progress);
  const failed = steps.filter((s) => s.outcome === 'failed');
  if (failed.length > 0) {
    throw new SvtraceError(
      'LAB_DOWN_INCOMPLETE',
      `could not remove ${failed.map((s) => `${describe(s.resource)} (${s.detail ?? ''})`).join(', ')}`,
      { hint: `fix the cause and run \`svtrace lab down --run-dir ${runDir}\` again; ${statePath(runDir)} still lists everything` },
    );
  }
  await removeStateFile(runDir);
  return { runDir, wasUp: true, steps, durationMs: performance.now() - started };
}
