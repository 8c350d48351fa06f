/**
 * Interfaces as the kernel names them. An ifindex is only unique inside one
 * network namespace (two namespaces both have an ifindex 5), so a point's
 * filter is the pair (ifindex, inode of the namespace), which bpftrace reads
 * as skb->dev->ifindex and skb->dev->nd_net.net->ns.inum.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { promisify } from 'node:util';
import { SvtraceError } from '../errors.ts';
import { validateInterface, type InterfaceRef } from './config.ts';

const run = promisify(execFile);

export interface ResolvedInterface {
  name: string;
  /** As given: an `ip netns` name, a path, or null for svtrace's own namespace. */
  netns: string | null;
  ifindex: number;
  netnsInode: number;
}

/** The file naming a network namespace: /run/netns/NAME for a name, the path itself otherwise. */
export function netnsPath(netns: string | undefined | null): string {
  if (!netns) return '/proc/self/ns/net';
  return netns.startsWith('/') ? netns : `/run/netns/${netns}`;
}

export function netnsInode(netns?: string | null): number {
  const path = netnsPath(netns);
  try {
    return statSync(path).ino;
  } catch (e) {
    throw new SvtraceError('TRACE_NETNS_NOT_FOUND', `network namespace ${netns ?? '(own)'} not found at ${path}`, {
      hint: 'check `ip netns list`, or that the process owning /proc/PID/ns/net is still running', cause: e,
    });
  }
}

/**
 * True when this process runs in the initial network namespace, where bpftrace
 * must run. Compared with kthreadd (pid 2): kernel threads always live in the
 * initial namespace, and pid 1 may be unreadable in a sandbox. Null: cannot tell.
 */
export function inInitialNetns(): boolean | null {
  let own: number;
  try {
    own = statSync('/proc/self/ns/net').ino;
  } catch {
    return null;
  }
  for (const pid of [2, 1]) {
    try {
      return statSync(`/proc/${pid}/ns/net`).ino === own;
    } catch {
      // not readable here: try the next
    }
  }
  return null;
}

/** Looks up the ifindex of an interface in its namespace (with `ip`, or `nsenter` + `ip` for a path). */
export async function resolveInterface(ref: InterfaceRef): Promise<ResolvedInterface> {
  const { name, netns } = validateInterface(ref, 'interface');
  const inode = netnsInode(netns);
  const args = ['-j', 'link', 'show', 'dev', name];
  let cmd = 'ip', argv = args;
  if (netns && !netns.startsWith('/')) argv = ['-n', netns, ...args];
  else if (netns) { cmd = 'nsenter'; argv = [`--net=${netns}`, 'ip', ...args]; }
  let stdout: string;
  try {
    ({ stdout } = await run(cmd, argv, { timeout: 10_000 }));
  } catch (e) {
    const where = netns ? ` in network namespace ${netns}` : '';
    throw new SvtraceError('TRACE_INTERFACE_NOT_FOUND', `interface ${name}${where} not found`, {
      hint: `check \`${netns && !netns.startsWith('/') ? `ip -n ${netns} ` : 'ip '}link show\`; the name is the one inside that namespace`, cause: e,
    });
  }
  let ifindex: unknown;
  try {
    const parsed = JSON.parse(stdout) as Array<{ ifindex?: unknown }>;
    ifindex = parsed[0]?.ifindex;
  } catch (e) {
    throw new SvtraceError('TRACE_INTERFACE_NOT_FOUND', `cannot read the ifindex of ${name} from \`ip -j\``, { hint: 'install a current iproute2', cause: e });
  }
  if (!Number.isSafeInteger(ifindex) || (ifindex as number) < 1) {
    throw new SvtraceError('TRACE_INTERFACE_NOT_FOUND', `interface ${name} has no ifindex`, { hint: 'check `ip link show`' });
  }
  return { name, netns: netns ?? null, ifindex: ifindex as number, netnsInode: inode };
}
