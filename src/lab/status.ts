/**
 * `lab status`: what of the lab recorded in runDir is really there, as plain
 * data. Each namespace, link, bridge and process is checked against the
 * system, never taken from the state file on trust.
 */
import { existsSync } from 'node:fs';
import type { SwitchKind } from './config.ts';
import { run } from './exec.ts';
import { readQdiscs } from './impair.ts';
import type { Hop, Impairment, QdiscInfo } from './impair-spec.ts';
import { getLink, listNetns, type LinkInfo } from './netlink.ts';
import { findOurDaemons, listPorts, ovsPaths } from './ovs.ts';
import { ourQemuPid, qemuByCommandLine } from './qemu.ts';
import { loadState, ownerAlive, type LabResource, type LabState, type LabTopology } from './state.ts';

export interface LinkStatus {
  ifindex: number;
  operstate: string;
  mtu: number;
  master?: string;
  kind?: string;
  rxPackets?: number;
  txPackets?: number;
  qdiscs: QdiscInfo[];
}

export interface StatusItem {
  kind: 'netns' | 'link' | 'bridge' | 'process' | 'tap' | 'dir';
  name: string;
  /** Namespace of a link (absent: root namespace). */
  netns?: string;
  present: boolean;
  link?: LinkStatus;
  pids?: number[];
  /** Bridge ports, as the switch reports them. */
  ports?: string[];
}

export interface LabStatus {
  runDir: string;
  /** none: no lab recorded; creating: `up` runs; crashed: `up` died midway; up: created. */
  phase: 'none' | 'creating' | 'crashed' | 'up';
  /** phase is up and every item is present. */
  healthy: boolean;
  switch?: SwitchKind;
  topology?: LabTopology;
  impairments: Partial<Record<Hop, Impairment>>;
  forwardingCheck?: { ok: boolean; detail: string };
  items: StatusItem[];
}

async function linkStatus(info: LinkInfo | undefined, netns: string | undefined): Promise<LinkStatus | undefined> {
  if (!info) return undefined;
  const s: LinkStatus = { ifindex: info.ifindex, operstate: info.operstate, mtu: info.mtu, qdiscs: await readQdiscs(info.ifname, netns) };
  if (info.master !== undefined) s.master = info.master;
  if (info.kind !== undefined) s.kind = info.kind;
  if (info.rxPackets !== undefined) s.rxPackets = info.rxPackets;
  if (info.txPackets !== undefined) s.txPackets = info.txPackets;
  return s;
}

async function linkItem(kind: 'link' | 'bridge' | 'tap', name: string, netns: string | undefined): Promise<StatusItem> {
  const link = await linkStatus(await getLink(name, netns), netns);
  const item: StatusItem = { kind, name, present: link !== undefined };
  if (netns !== undefined) item.netns = netns;
  if (link) item.link = link;
  return item;
}

async function linuxBridgePorts(bridge: string): Promise<string[]> {
  const r = await run('ip', ['-j', 'link', 'show', 'master', bridge], { allowFailure: true });
  if (r.exitCode !== 0 || r.stdout.trim() === '') return [];
  return (JSON.parse(r.stdout) as Array<{ ifname?: string }>).map((l) => String(l.ifname));
}

async function itemsOf(state: LabState, r: LabResource, netnsList: string[]): Promise<StatusItem[]> {
  switch (r.kind) {
    case 'netns':
      return [{ kind: 'netns', name: r.name, present: netnsList.includes(r.name) }];
    case 'veth':
      return [await linkItem('link', r.name, undefined), await linkItem('link', r.peer, r.peerNetns)];
    case 'bridge': {
      const item = await linkItem('bridge', r.name, undefined);
      if (r.switch === 'ovs') {
        const alive = findOurDaemons('ovs-vswitchd', ovsPaths(state.runDir).daemons['ovs-vswitchd'].pidfile).length > 0;
        // the tap of an OVS bridge outlives a killed ovs-vswitchd: the bridge is there only with its daemon
        item.present = item.present && alive;
        item.ports = alive ? await listPorts(ovsPaths(state.runDir), r.name) : [];
      } else if (item.present) {
        item.ports = await linuxBridgePorts(r.name);
      }
      return [item];
    }
    case 'process': {
      const pids = findOurDaemons(r.name, r.pidfile);
      return [{ kind: 'process', name: r.name, present: pids.length > 0, pids }];
    }
    case 'tap':
      return [await linkItem('tap', r.name, undefined)];
    case 'qemu': {
      const pids = [...new Set([ourQemuPid(r.pidfile), ...qemuByCommandLine(r.pidfile)].filter((p): p is number => p !== undefined))];
      return [{ kind: 'process', name: 'qemu', present: pids.length > 0, pids }];
    }
    case 'dir':
      return r.tree ? [{ kind: 'dir', name: r.path, present: existsSync(r.path) }] : [];
  }
}

/** What of the lab in runDir is up. Never throws for a missing lab: phase is `none`. */
export async function labStatus(runDir: string): Promise<LabStatus> {
  const state = await loadState(runDir);
  if (!state) return { runDir, phase: 'none', healthy: false, impairments: {}, items: [] };
  const netnsList = await listNetns();
  const items: StatusItem[] = [];
  for (const r of state.resources) items.push(...(await itemsOf(state, r, netnsList)));
  const phase = state.phase === 'up' ? 'up' : ownerAlive(state) ? 'creating' : 'crashed';
  const status: LabStatus = {
    runDir,
    phase,
    healthy: phase === 'up' && items.every((i) => i.present),
    switch: state.topology.switch,
    topology: state.topology,
    impairments: state.impairments,
    items,
  };
  if (state.forwardingCheck) status.forwardingCheck = state.forwardingCheck;
  return status;
}
