/**
 * `lab up`: the path of a SEAPATH hypervisor on one machine.
 *
 *   [pubNetns] pubIf ══veth══ hostPubIf ─┐
 *                                        ├─ bridge (OVS userspace datapath, or Linux bridge), root namespace
 *   [vmNetns]  vmIf  ══veth══ hostVmIf  ─┘
 *
 * With `vm: 'qemu'` the VM is a QEMU guest instead (vm-qemu.ts):
 *   [guest]    eth0 (virtio-net) ══ QEMU ══ tap hostVmIf ─┘
 *
 * Each resource is added to the state file before it is created, so `down`
 * can clean up after a crash; a failure midway rolls back and rethrows.
 */
import { mkdir } from 'node:fs/promises';
import { SvtraceError } from '../errors.ts';
import { resolveLabConfig, type LabConfig, type LabConfigInput, type SwitchKind } from './config.ts';
import { teardown, type Progress } from './down.ts';
import { hasCommand, run } from './exec.ts';
import { applyNetem } from './impair.ts';
import { describeImpairment, HOPS } from './impair-spec.ts';
import { disableIpv6, getLink, listLinks, listNetns, quietUp } from './netlink.ts';
import {
  addBridge, createDb, OVS_DATAPATH_TAP, ovsPaths, schemaPath, startOvsdbServer, startVswitchd, tapHolders,
} from './ovs.ts';
import { checkForwarding } from './selftest.ts';
import { buildQemuVm, checkQemuAvailable, createVmTap } from './vm-qemu.ts';
import {
  claimRunDir, processStartTicks, removeStateFile, saveState, STATE_VERSION, type LabResource, type LabState, type LabTopology,
} from './state.ts';

const OVS_TOOLS = ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl'];

function ovsInstalled(): boolean {
  if (!OVS_TOOLS.every(hasCommand)) return false;
  try {
    schemaPath();
    return true;
  } catch {
    return false;
  }
}

function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new SvtraceError('LAB_NOT_ROOT', 'building the lab needs root (namespaces, links, Open vSwitch)', {
      hint: 'run it as root, e.g. sudo svtrace lab up',
    });
  }
}

function chooseSwitch(config: LabConfig, progress: Progress): SwitchKind {
  if (config.switch === 'bridge') return 'bridge';
  if (ovsInstalled()) return 'ovs';
  if (config.switch === 'ovs') {
    const missing = OVS_TOOLS.filter((t) => !hasCommand(t));
    throw new SvtraceError('LAB_TOOL_MISSING', `Open vSwitch is not installed${missing.length ? ` (missing ${missing.join(', ')})` : ''}`, {
      hint: 'apt-get install openvswitch-switch, or use --switch bridge',
    });
  }
  progress('Open vSwitch is not installed: using a Linux bridge');
  return 'bridge';
}

/** Names already taken make `up` refuse: the lab must never adopt (and later delete) what is not its own. */
async function checkNamesFree(config: LabConfig, sw: SwitchKind): Promise<void> {
  const n = config.names;
  const taken: string[] = [];
  const netns = await listNetns();
  const qemu = config.vm === 'qemu';
  for (const ns of qemu ? [n.pubNetns] : [n.pubNetns, n.vmNetns]) if (netns.includes(ns)) taken.push(`namespace ${ns}`);
  const links = await listLinks();
  for (const link of [n.hostPubIf, n.hostVmIf, n.bridge, n.pubIf, ...(qemu ? [] : [n.vmIf])]) if (links.includes(link)) taken.push(`link ${link}`);
  if (taken.length > 0) {
    throw new SvtraceError('LAB_NAME_IN_USE', `these names are already in use: ${taken.join(', ')}`, {
      hint: 'take down the lab that uses them (svtrace lab down --run-dir DIR), or choose another --prefix',
    });
  }
  if (sw === 'ovs' && links.includes(OVS_DATAPATH_TAP)) {
    const holders = tapHolders(OVS_DATAPATH_TAP);
    const who = holders.length > 0 ? `pid ${holders.join(', ')} holds it` : 'no process holds it: a leftover of a killed ovs-vswitchd';
    throw new SvtraceError('LAB_OVS_DATAPATH_BUSY', `link ${OVS_DATAPATH_TAP} exists (${who}); only one Open vSwitch userspace datapath fits in a network namespace`, {
      hint: holders.length > 0
        ? 'take that lab down first (svtrace lab down --run-dir DIR), or use --switch bridge'
        : `remove it (ip link del ${OVS_DATAPATH_TAP}) and try again, or use --switch bridge`,
    });
  }
}

function newState(config: LabConfig, sw: SwitchKind): LabState {
  const n = config.names;
  const topology: LabTopology = {
    runDir: config.runDir, switch: sw, mtu: config.mtu, bridge: n.bridge,
    pubNetns: n.pubNetns, pubIf: n.pubIf, hostPubIf: n.hostPubIf,
    vmNetns: config.vm === 'qemu' ? '' : n.vmNetns, vmIf: config.vm === 'qemu' ? 'eth0' : n.vmIf, hostVmIf: n.hostVmIf,
  };
  return {
    version: STATE_VERSION, runDir: config.runDir, phase: 'creating', createdAt: new Date().toISOString(),
    owner: { pid: process.pid, startTicks: processStartTicks(process.pid) ?? '' },
    config, topology, resources: [], impairments: {},
  };
}

/** Records the resource, then creates it. */
export type Step = (state: LabState, resource: LabResource, create: () => Promise<void>) => Promise<void>;
async function step(state: LabState, resource: LabResource, create: () => Promise<void>): Promise<void> {
  state.resources.push(resource);
  await saveState(state);
  await create();
}

async function buildOvs(state: LabState, config: LabConfig, progress: Progress): Promise<void> {
  const paths = ovsPaths(config.runDir);
  const n = config.names;
  await step(state, { kind: 'dir', path: paths.dir, tree: true }, async () => {
    await mkdir(paths.dir, { recursive: true, mode: 0o755 });
    await createDb(paths);
  });
  progress('starting ovsdb-server');
  const db = paths.daemons['ovsdb-server'];
  const dbRes: LabResource = { kind: 'process', name: 'ovsdb-server', pidfile: db.pidfile, unixctl: db.unixctl };
  await step(state, dbRes, async () => {
    dbRes.pid = await startOvsdbServer(paths);
  });
  progress('starting ovs-vswitchd');
  const sw = paths.daemons['ovs-vswitchd'];
  const swRes: LabResource = { kind: 'process', name: 'ovs-vswitchd', pidfile: sw.pidfile, unixctl: sw.unixctl };
  state.resources.push({ kind: 'tap', name: OVS_DATAPATH_TAP });
  await step(state, swRes, async () => {
    swRes.pid = await startVswitchd(paths);
  });
  state.topology.ovs = { dir: paths.dir, dbSock: paths.dbSock, pids: { 'ovsdb-server': dbRes.pid, 'ovs-vswitchd': swRes.pid } };
  progress(`adding OVS bridge ${n.bridge} (datapath_type=netdev)`);
  await step(state, { kind: 'bridge', name: n.bridge, switch: 'ovs' }, () =>
    addBridge(paths, n.bridge, [n.hostPubIf, n.hostVmIf], config.vlanTrunks));
  await disableIpv6(undefined, n.bridge).catch(() => undefined); // OVS's tap for the bridge stays down
}

async function buildLinuxBridge(state: LabState, config: LabConfig, progress: Progress): Promise<void> {
  const n = config.names;
  progress(`adding Linux bridge ${n.bridge}`);
  await step(state, { kind: 'bridge', name: n.bridge, switch: 'bridge' }, async () => {
    // no STP, no forward delay, no multicast snooping: every SV multicast frame is flooded at once
    await run('ip', ['link', 'add', 'name', n.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0', 'mcast_snooping', '0']);
  });
  await quietUp(n.bridge, undefined, config.mtu);
  for (const port of [n.hostPubIf, n.hostVmIf]) await run('ip', ['link', 'set', 'dev', port, 'master', n.bridge]);
}

async function build(state: LabState, config: LabConfig, progress: Progress): Promise<void> {
  const n = config.names;
  const qemu = config.vm === 'qemu';
  for (const ns of qemu ? [n.pubNetns] : [n.pubNetns, n.vmNetns]) {
    progress(`creating namespace ${ns}`);
    await step(state, { kind: 'netns', name: ns }, () => run('ip', ['netns', 'add', ns]).then(() => undefined));
    // links created in the namespace from now on start with IPv6 off
    await disableIpv6(ns, 'default', 'all');
  }
  const pairs = [
    { host: n.hostPubIf, peer: n.pubIf, netns: n.pubNetns },
    ...(qemu ? [] : [{ host: n.hostVmIf, peer: n.vmIf, netns: n.vmNetns }]),
  ];
  for (const p of pairs) {
    progress(`creating veth ${p.host} ↔ ${p.netns}/${p.peer}`);
    await step(state, { kind: 'veth', name: p.host, peer: p.peer, peerNetns: p.netns }, async () => {
      const mtu = String(config.mtu);
      await run('ip', ['link', 'add', 'name', p.host, 'mtu', mtu, 'type', 'veth', 'peer', 'name', p.peer, 'mtu', mtu, 'netns', p.netns]);
    });
    await quietUp(p.host, undefined, config.mtu);
    await quietUp(p.peer, p.netns, config.mtu);
  }
  if (qemu) await createVmTap(state, config, step, progress);
  if (state.topology.switch === 'ovs') await buildOvs(state, config, progress);
  else await buildLinuxBridge(state, config, progress);
  const hostPub = await getLink(n.hostPubIf);
  const hostVm = await getLink(n.hostVmIf);
  if (hostPub) state.topology.hostPubIfIndex = hostPub.ifindex;
  if (hostVm) state.topology.hostVmIfIndex = hostVm.ifindex;
  if (qemu) await buildQemuVm(state, config, step, progress);
  if (config.verifyForwarding) {
    progress('checking that frames cross the lab');
    const check = await checkForwarding(state.topology, config.vlanTrunks);
    state.forwardingCheck = check;
    if (!check.ok) {
      throw new SvtraceError('LAB_FORWARDING_FAILED', `the lab does not forward: ${check.detail}`, {
        hint: state.topology.switch === 'ovs' ? `see ${ovsPaths(config.runDir).daemons['ovs-vswitchd'].log}` : 'see `bridge link` and `ip -s link`',
      });
    }
  }
  for (const hop of HOPS) {
    const imp = config.impairments[hop];
    if (!imp) continue;
    progress(`impairing hop ${hop}: ${describeImpairment(imp)}`);
    await applyNetem(state.topology, hop, imp);
    state.impairments[hop] = imp;
  }
}

export interface LabUpOptions {
  /** Progress messages (the CLI prints them on stderr). */
  onProgress?: Progress;
}

export interface LabUpResult {
  topology: LabTopology;
  durationMs: number;
  forwardingCheck?: { ok: boolean; detail: string };
}

/**
 * Builds the lab. Refuses (LAB_ALREADY_UP) if runDir holds a lab; on failure
 * midway removes what it created and throws LAB_UP_FAILED with the cause.
 */
export async function labUp(input: LabConfigInput = {}, options: LabUpOptions = {}): Promise<LabUpResult> {
  const started = performance.now();
  const progress = options.onProgress ?? (() => {});
  const config = resolveLabConfig(input);
  requireRoot();
  for (const tool of ['ip', 'sysctl', ...(Object.keys(config.impairments).length ? ['tc'] : [])]) {
    if (!hasCommand(tool)) throw new SvtraceError('LAB_TOOL_MISSING', `${tool} is not installed`, { hint: 'apt-get install iproute2 procps' });
  }
  if (config.vm === 'qemu') checkQemuAvailable();
  const sw = chooseSwitch(config, progress);
  const state = newState(config, sw);
  await claimRunDir(state);
  try {
    await checkNamesFree(config, sw);
  } catch (e) {
    await teardown(state); // nothing was created but the state file (and maybe the run directory)
    await removeStateFile(config.runDir);
    throw e;
  }
  try {
    await build(state, config, progress);
    state.phase = 'up';
    await saveState(state);
  } catch (e) {
    progress(`lab up failed (${(e as Error).message}); rolling back`);
    const steps = await teardown(state, progress);
    const failed = steps.filter((s) => s.outcome === 'failed');
    if (failed.length === 0) await removeStateFile(config.runDir);
    const hint = e instanceof SvtraceError && e.hint ? e.hint : undefined;
    throw new SvtraceError(
      'LAB_UP_FAILED',
      `lab up failed and was rolled back${failed.length ? ` except ${failed.length} piece(s)` : ''}: ${(e as Error).message}`,
      { hint: failed.length ? `svtrace lab down --run-dir ${config.runDir}` : hint, cause: e },
    );
  }
  const result: LabUpResult = { topology: state.topology, durationMs: performance.now() - started };
  if (state.forwardingCheck) result.forwardingCheck = state.forwardingCheck;
  return result;
}
