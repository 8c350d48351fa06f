/**
 * Thin helpers around `ip`, `sysctl` and /proc for namespaces and links.
 * Every name passed here was validated by ./config.ts.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { run } from './exec.ts';

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  operstate: string;
  mtu: number;
  flags: string[];
  qdisc?: string;
  master?: string;
  /** linkinfo.info_kind: veth, bridge, tun, openvswitch, ... */
  kind?: string;
  address?: string;
  rxPackets?: number;
  txPackets?: number;
}

/** `ip` arguments, run inside netns when one is given. */
export function ipIn(netns: string | undefined, args: string[]): string[] {
  return netns === undefined ? args : ['-n', netns, ...args];
}

export async function listNetns(): Promise<string[]> {
  const r = await run('ip', ['-j', 'netns', 'list'], { allowFailure: true });
  if (r.exitCode !== 0 || r.stdout.trim() === '') return [];
  try {
    const list = JSON.parse(r.stdout) as Array<{ name?: unknown }>;
    return list.map((n) => n.name).filter((n): n is string => typeof n === 'string');
  } catch {
    return [];
  }
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await listNetns()).includes(name);
}

/** The link, or undefined if it (or its namespace) does not exist. */
export async function getLink(name: string, netns?: string): Promise<LinkInfo | undefined> {
  const r = await run('ip', ipIn(netns, ['-j', '-d', '-s', 'link', 'show', 'dev', name]), { allowFailure: true });
  if (r.exitCode !== 0) return undefined;
  let raw: unknown;
  try {
    raw = (JSON.parse(r.stdout) as unknown[])[0];
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const l = raw as Record<string, unknown>;
  const linkinfo = l.linkinfo as { info_kind?: unknown } | undefined;
  const stats = l.stats64 as { rx?: { packets?: unknown }; tx?: { packets?: unknown } } | undefined;
  const info: LinkInfo = {
    ifindex: Number(l.ifindex),
    ifname: String(l.ifname),
    operstate: String(l.operstate ?? 'UNKNOWN'),
    mtu: Number(l.mtu),
    flags: Array.isArray(l.flags) ? l.flags.map(String) : [],
  };
  if (typeof l.qdisc === 'string') info.qdisc = l.qdisc;
  if (typeof l.master === 'string') info.master = l.master;
  if (typeof linkinfo?.info_kind === 'string') info.kind = linkinfo.info_kind;
  if (typeof l.address === 'string') info.address = l.address;
  if (typeof stats?.rx?.packets === 'number') info.rxPackets = stats.rx.packets;
  if (typeof stats?.tx?.packets === 'number') info.txPackets = stats.tx.packets;
  return info;
}

/** Names of every link in the namespace (root when undefined), in one `ip` call. */
export async function listLinks(netns?: string): Promise<string[]> {
  const r = await run('ip', ipIn(netns, ['-j', 'link', 'show']), { allowFailure: true });
  if (r.exitCode !== 0 || r.stdout.trim() === '') return [];
  try {
    return (JSON.parse(r.stdout) as Array<{ ifname?: unknown }>).map((l) => String(l.ifname));
  } catch {
    return [];
  }
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  return (await getLink(name, netns)) !== undefined;
}

export function ipv6Available(): boolean {
  return existsSync('/proc/sys/net/ipv6/conf');
}

/**
 * Disables IPv6 (and with it router/neighbour solicitations and MLD reports)
 * on one interface, or on `all` and `default` of a namespace.
 */
export async function disableIpv6(netns: string | undefined, ...ifnames: string[]): Promise<void> {
  if (!ipv6Available()) return;
  if (netns === undefined) {
    for (const ifname of ifnames) await writeFile(`/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`, '1');
    return;
  }
  // the slash form keeps a '.' in an interface name from being read as a separator
  const keys = ifnames.map((ifname) => `net/ipv6/conf/${ifname}/disable_ipv6=1`);
  await run('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', ...keys]);
}

/** Link settings that keep a lab link quiet: no IPv6, no ARP, the lab's MTU, up. */
export async function quietUp(name: string, netns: string | undefined, mtu: number): Promise<void> {
  await disableIpv6(netns, name);
  await run('ip', ipIn(netns, ['link', 'set', 'dev', name, 'mtu', String(mtu), 'arp', 'off', 'up']));
}

/** Deletes a link if it exists; true if it was there. */
export async function deleteLink(name: string, netns?: string): Promise<boolean> {
  if (!(await linkExists(name, netns))) return false;
  const r = await run('ip', ipIn(netns, ['link', 'del', 'dev', name]), { allowFailure: true });
  if (r.exitCode !== 0 && (await linkExists(name, netns))) {
    throw new Error(`cannot delete link ${name}: ${r.stderr.trim()}`);
  }
  return true;
}

/** Deletes a namespace if it exists; true if it was there. */
export async function deleteNetns(name: string): Promise<boolean> {
  if (!(await netnsExists(name))) return false;
  const r = await run('ip', ['netns', 'del', name], { allowFailure: true });
  if (r.exitCode !== 0 && (await netnsExists(name))) throw new Error(`cannot delete namespace ${name}: ${r.stderr.trim()}`);
  return true;
}
