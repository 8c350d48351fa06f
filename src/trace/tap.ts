/**
 * Where QEMU takes a frame off the VM's tap (T2 on SEAPATH, as pwru shows
 * it): the tap's holder, a QEMU process, copies each frame out and releases
 * it (`skb:consume_skb` in the holder's context, on the tap); with vhost-net
 * its kernel worker `vhost-<pid>` does it instead. `qemuTapPoint` turns a VM
 * port into that point, placed right after T2, or says why it cannot.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { CustomPoint, InterfaceRef } from './config.ts';

/** Pids of the processes holding the tun/tap device `name` open (from /proc/PID/fdinfo's `iff:` line). */
export function tapHolders(name: string, proc = '/proc'): number[] {
  const holders: number[] = [];
  for (const entry of readdirSync(proc)) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`${proc}/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`${proc}/${entry}/fd/${fd}`) !== '/dev/net/tun') continue;
        if (/^iff:\s*(\S+)$/m.exec(readFileSync(`${proc}/${entry}/fdinfo/${fd}`, 'utf8'))?.[1] === name) {
          holders.push(Number(entry));
          break;
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return holders;
}

const comm = (pid: number): string | null => {
  try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { return null; }
};

/** The vhost-net worker of a QEMU process (a kernel thread named vhost-<pid>), if it has one. */
function vhostWorker(pid: number): boolean {
  for (const entry of readdirSync('/proc')) {
    if (/^\d+$/.test(entry) && comm(Number(entry)) === `vhost-${pid}`) return true;
  }
  return false;
}

export interface TapPoint {
  point: CustomPoint | null;
  /** Why this point, or why none (for doctor and the trace's log). */
  why: string;
}

/** The point where the VM's process takes frames off `vmPort`, when it is a tap held by one (root namespace only). */
export function qemuTapPoint(vmPort: InterfaceRef): TapPoint {
  if (vmPort.netns) return { point: null, why: `${vmPort.name} is in a network namespace: not a VM's tap` };
  if (!existsSync(`/sys/class/net/${vmPort.name}/tun_flags`)) return { point: null, why: `${vmPort.name} is not a tun/tap device` };
  const holders = tapHolders(vmPort.name);
  if (holders.length === 0) return { point: null, why: `no process holds the tap ${vmPort.name} open` };
  const pid = holders[0]!;
  const name = comm(pid);
  if (!name) return { point: null, why: `the holder of ${vmPort.name} (pid ${pid}) is gone` };
  if (vhostWorker(pid)) {
    return {
      point: { name: 'T2vhost', probe: 'tracepoint:skb:consume_skb', after: 'T2', interface: vmPort, comm: `vhost-${pid}`.slice(0, 15) },
      why: `${vmPort.name} is held by ${name} (pid ${pid}) with vhost-net: its worker vhost-${pid} releases each frame once copied into the guest (skb:consume_skb)`,
    };
  }
  return {
    point: { name: 'T2qemu', probe: 'tracepoint:skb:consume_skb', after: 'T2', interface: vmPort, comm: name },
    why: `${vmPort.name} is held by ${name} (pid ${pid}), no vhost-net: QEMU's own thread copies each frame off the tap and releases it (skb:consume_skb in ${name})`,
  };
}
