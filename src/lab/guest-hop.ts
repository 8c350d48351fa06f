/**
 * The hop inside the QEMU guest (`lab impair --hop guest`): between the
 * guest's NIC (virtio-net, where the VM's T3 is traced) and the port the
 * application listens on. This host's kernel has no netem; the guest's has.
 *
 *   eth0 ──ingress: matchall, mirred redirect──▶ app0h ══veth══ app0 ◀── subscriber
 *                                               (netem: root qdisc)
 *
 * eth0 is made promiscuous (virtio-net filters multicast in the device
 * otherwise, and no socket on eth0 asks for it). The redirect takes every frame of eth0 after its receive tracepoint and its
 * packet taps (so T3 on eth0 sees it undelayed) and sends it out of app0h,
 * whose netem delays or drops it; app0 receives it. The port is made at the
 * first impairment and stays until the guest stops (`lab down`), so runs
 * before and after an impairment cross the same hop (`--delay 0` for a
 * baseline). Every command runs in the guest over the control channel, as an
 * argv, without a shell.
 */
import { SvtraceError } from '../errors.ts';
import { netemArgs, parseQdiscJson, type Impairment, type QdiscInfo } from './impair-spec.ts';
import type { LabTopology } from './state.ts';
import { vmExec } from './vm-control.ts';

/** The application's port in the guest (subscribers listen here), and its peer that carries the netem. */
export const GUEST_APP_IF = 'app0';
export const GUEST_HOP_IF = 'app0h';
const MODULES = ['veth', 'sch_netem', 'sch_ingress', 'act_mirred', 'cls_matchall'];

export interface GuestResult { code: number | null; stdout: string; stderr: string }

/** Runs argv in the lab's guest and collects its output. */
export async function guestRun(topology: LabTopology, argv: string[]): Promise<GuestResult> {
  if (!topology.vm) throw new SvtraceError('LAB_NOT_QEMU', 'this lab has no QEMU guest', { hint: 'svtrace lab up --vm qemu' });
  let stdout = '';
  let stderr = '';
  const h = await vmExec(topology.vm.controlSockets, argv, { stdout: (b) => { stdout += b.toString(); }, stderr: (b) => { stderr += b.toString(); } });
  const r = await h.done;
  return { code: r.code, stdout, stderr };
}

async function must(topology: LabTopology, argv: string[], what: string): Promise<string> {
  const r = await guestRun(topology, argv);
  if (r.code === 0) return r.stdout;
  throw new SvtraceError('LAB_IMPAIRMENT_FAILED', `in the guest, ${what}: \`${argv.join(' ')}\` exited ${String(r.code)}: ${r.stderr.trim()}`, {
    hint: 'the guest\'s kernel needs veth, sch_netem, sch_ingress, act_mirred and cls_matchall (Debian\'s has them as modules); see the guest console log in `svtrace lab status`',
  });
}

/** Makes the guest's application port and the redirect into it, once. */
export async function ensureGuestHop(topology: LabTopology): Promise<void> {
  const guestIf = topology.vm?.guestIf ?? 'eth0';
  const links = await must(topology, ['ip', '-j', 'link', 'show'], 'listing its links');
  if ((JSON.parse(links) as Array<{ ifname: string }>).some((l) => l.ifname === GUEST_HOP_IF)) return;
  // The kernel's own module loader runs outside the guest's root (in its initramfs): load them here.
  for (const m of MODULES) await must(topology, ['modprobe', m], `loading ${m}`);
  await must(topology, ['ip', 'link', 'add', GUEST_HOP_IF, 'type', 'veth', 'peer', 'name', GUEST_APP_IF], 'adding the application port');
  for (const dev of [GUEST_HOP_IF, GUEST_APP_IF]) await must(topology, ['ip', 'link', 'set', dev, 'up'], `bringing ${dev} up`);
  // Like a bridge port, the NIC takes every frame for the application behind it: virtio-net filters
  // multicast in the device unless the interface is promiscuous, and no socket listens on it to ask.
  await must(topology, ['ip', 'link', 'set', guestIf, 'promisc', 'on'], `making ${guestIf} promiscuous`);
  await must(topology, ['tc', 'qdisc', 'replace', 'dev', guestIf, 'handle', 'ffff:', 'ingress'], `adding the ingress qdisc of ${guestIf}`);
  await must(topology, ['tc', 'filter', 'replace', 'dev', guestIf, 'parent', 'ffff:', 'prio', '1', 'matchall',
    'action', 'mirred', 'egress', 'redirect', 'dev', GUEST_HOP_IF], `redirecting ${guestIf} into ${GUEST_HOP_IF}`);
}

export async function applyGuestNetem(topology: LabTopology, imp: Impairment): Promise<void> {
  await ensureGuestHop(topology);
  await must(topology, ['tc', 'qdisc', 'replace', 'dev', GUEST_HOP_IF, 'root', ...netemArgs(imp)], 'setting netem');
}

export async function clearGuestNetem(topology: LabTopology): Promise<void> {
  const r = await guestRun(topology, ['tc', 'qdisc', 'del', 'dev', GUEST_HOP_IF, 'root']);
  if (r.code === 0 || /No such file|Cannot find device|handle of zero|Invalid handle|not find/i.test(r.stderr)) return;
  throw new SvtraceError('LAB_IMPAIRMENT_FAILED', `cannot clear the guest's netem: ${r.stderr.trim()}`);
}

/** The guest hop's qdiscs (empty when the hop was never made). */
export async function readGuestQdiscs(topology: LabTopology): Promise<QdiscInfo[]> {
  const r = await guestRun(topology, ['tc', '-j', 'qdisc', 'show', 'dev', GUEST_HOP_IF]);
  return r.code === 0 ? parseQdiscJson(r.stdout) : [];
}

/** netem's counters on the guest hop (`tc -s`): frames sent and dropped since it was set. */
export async function guestNetemCounters(topology: LabTopology): Promise<{ sent: number; dropped: number } | undefined> {
  const r = await guestRun(topology, ['tc', '-s', '-j', 'qdisc', 'show', 'dev', GUEST_HOP_IF]);
  if (r.code !== 0) return undefined;
  const q = (JSON.parse(r.stdout) as Array<{ kind?: string; packets?: number; drops?: number }>).find((x) => x.kind === 'netem');
  return q && typeof q.packets === 'number' && typeof q.drops === 'number' ? { sent: q.packets, dropped: q.drops } : undefined;
}
