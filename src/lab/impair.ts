/**
 * Impairments on one hop of the lab with tc netem: `pub` is the egress of the
 * publisher's interface (inside its namespace), `vm` the egress of the host's
 * port towards the VM. Applying replaces whatever root qdisc was there.
 */
import { SvtraceError } from '../errors.ts';
import { run } from './exec.ts';
import { netemArgs, parseQdiscJson, validateImpairment, type Hop, type Impairment, type QdiscInfo } from './impair-spec.ts';
import { applyGuestNetem, clearGuestNetem, GUEST_APP_IF } from './guest-hop.ts';
import { loadState, saveState, type LabTopology } from './state.ts';

function noGuest(): SvtraceError {
  return new SvtraceError('LAB_IMPAIRMENT_INVALID', 'hop guest is inside a QEMU guest, and this lab\'s VM is a network namespace', {
    hint: `svtrace lab up --vm qemu (the hop is then between the guest's NIC and its application port ${GUEST_APP_IF})`,
  });
}

export interface HopTarget {
  dev: string;
  netns: string | undefined;
}

export function hopTarget(topology: LabTopology, hop: Exclude<Hop, 'guest'>): HopTarget {
  return hop === 'pub' ? { dev: topology.pubIf, netns: topology.pubNetns } : { dev: topology.hostVmIf, netns: undefined };
}

function tcArgs(t: HopTarget, args: string[]): string[] {
  return t.netns === undefined ? args : ['-n', t.netns, ...args];
}

/** Runs tc only: replaces the root qdisc of the hop with netem. */
export async function applyNetem(topology: LabTopology, hop: Hop, imp: Impairment): Promise<void> {
  if (hop === 'guest') {
    if (!topology.vm) throw noGuest();
    return applyGuestNetem(topology, imp);
  }
  const t = hopTarget(topology, hop);
  const args = tcArgs(t, ['qdisc', 'replace', 'dev', t.dev, 'root', ...netemArgs(imp)]);
  const r = await run('tc', args, { allowFailure: true });
  if (r.exitCode === 0) return;
  if (/qdisc kind is unknown|Unknown qdisc|qdisc not found/i.test(r.stderr)) {
    throw new SvtraceError('LAB_NETEM_UNSUPPORTED', `this kernel has no netem qdisc, so hop ${hop} cannot be impaired`, {
      hint: topology.vm
        ? 'the QEMU guest\'s kernel has netem: impair the hop inside it, between its NIC and the application\'s port (--hop guest; subscribers then listen on app0)'
        : 'load it (modprobe sch_netem) or use a kernel built with CONFIG_NET_SCH_NETEM',
    });
  }
  throw new SvtraceError('LAB_IMPAIRMENT_FAILED', `\`tc ${args.join(' ')}\` failed: ${r.stderr.trim()}`, {
    hint: 'check the numbers; `svtrace lab status` shows what is on each link',
  });
}

/** Runs tc only: removes the root qdisc of the hop (back to the default). Tolerates none being there. */
export async function clearNetem(topology: LabTopology, hop: Hop): Promise<void> {
  if (hop === 'guest') {
    if (!topology.vm) throw noGuest();
    return clearGuestNetem(topology);
  }
  const t = hopTarget(topology, hop);
  const r = await run('tc', tcArgs(t, ['qdisc', 'del', 'dev', t.dev, 'root']), { allowFailure: true });
  if (r.exitCode === 0 || /No such file|handle of zero|Invalid handle|not find/i.test(r.stderr)) return;
  throw new SvtraceError('LAB_IMPAIRMENT_FAILED', `cannot clear the qdisc of ${t.dev}: ${r.stderr.trim()}`);
}

export async function readQdiscs(dev: string, netns: string | undefined): Promise<QdiscInfo[]> {
  const r = await run('tc', tcArgs({ dev, netns }, ['-j', 'qdisc', 'show', 'dev', dev]), { allowFailure: true });
  return r.exitCode === 0 ? parseQdiscJson(r.stdout) : [];
}

async function recordImpairment(runDir: string, hop: Hop, imp: Impairment | undefined): Promise<void> {
  const state = await loadState(runDir);
  if (!state) return;
  if (imp === undefined) delete state.impairments[hop];
  else state.impairments[hop] = imp;
  await saveState(state);
}

/** Impairs one hop of a lab that is up, and records it in the lab's state. */
export async function applyImpairment(topology: LabTopology, hop: Hop, imp: Impairment): Promise<Impairment> {
  const valid = validateImpairment(imp);
  await applyNetem(topology, hop, valid);
  await recordImpairment(topology.runDir, hop, valid);
  return valid;
}

/** Removes the impairment of one hop. */
export async function clearImpairment(topology: LabTopology, hop: Hop): Promise<void> {
  await clearNetem(topology, hop);
  await recordImpairment(topology.runDir, hop, undefined);
}
