/**
 * The lab's results as text for a terminal. Pure: data in, string out;
 * `--json` prints the same data instead.
 */
import type { LabDownResult } from './down.ts';
import { describeImpairment, type QdiscInfo } from './impair-spec.ts';
import type { LabStatus, StatusItem } from './status.ts';
import type { LabUpResult } from './up.ts';
import type { VmTopology } from './state.ts';

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

export function renderQdisc(q: QdiscInfo): string {
  if (q.netem) {
    const n = q.netem;
    const parts = [`netem delay ${n.delayUs}µs`];
    if (n.jitterUs) parts.push(`±${n.jitterUs}µs`);
    if (n.lossPct) parts.push(`loss ${n.lossPct}%`);
    if (n.rateMbit !== undefined) parts.push(`rate ${n.rateMbit}Mbit`);
    return parts.join(' ');
  }
  return q.kind;
}

export function renderUp(r: LabUpResult): string {
  const t = r.topology;
  const ovs = t.ovs ? ` (userspace datapath; ovsdb-server ${t.ovs.pids['ovsdb-server'] ?? '?'}, ovs-vswitchd ${t.ovs.pids['ovs-vswitchd'] ?? '?'})` : '';
  const rows = [
    ['publisher', `${t.pubNetns}/${t.pubIf} ══ ${t.hostPubIf}  (T1: host receive, ifindex ${t.hostPubIfIndex ?? '?'})`],
    ['switch', `${t.switch === 'ovs' ? 'Open vSwitch' : 'Linux bridge'} ${t.bridge}${ovs}`],
    t.vm
      ? ['VM', `tap ${t.hostVmIf} ══ QEMU (pid ${t.vm.pid ?? '?'}) ══ guest ${t.vm.hostname}/${t.vm.guestIf}  (T2: the tap, ifindex ${t.hostVmIfIndex ?? '?'}; QEMU reads the frames from it)`]
      : ['VM', `${t.hostVmIf} ══ ${t.vmNetns}/${t.vmIf}  (T2: VM port transmit, ifindex ${t.hostVmIfIndex ?? '?'})`],
  ];
  if (t.vm) rows.push(...vmRows(t.vm));
  if (r.forwardingCheck) rows.push(['check', r.forwardingCheck.detail]);
  return `lab up in ${seconds(r.durationMs)}, run directory ${t.runDir}\n` + table(rows);
}

function vmRows(vm: VmTopology): string[][] {
  const pins = vm.pinning.vcpus.length ? vm.pinning.vcpus.map((p) => `vCPU ${p.vcpu}→CPU ${p.cpu}`).join(', ') : 'vCPUs not pinned';
  const emu = vm.pinning.emulatorCpus.length ? `emulator→CPU ${vm.pinning.emulatorCpus.join(',')}` : 'emulator not pinned';
  return [
    ['accel', vm.accelReason],
    ['guest', `kernel ${vm.kernelRelease}, ${vm.vcpus} vCPU, ${vm.memoryMb} MiB, ${pins}, ${emu}${vm.bootMs !== undefined ? `, booted in ${seconds(vm.bootMs)}${vm.accel === 'tcg' ? ' (TCG)' : ''}` : ''}, ${vm.timerSlackNs !== undefined ? `QEMU timer slack ${vm.timerSlackNs} ns` : 'QEMU timer slack left at its default'}`],
    ['tap', `${vm.tap}, queue ${vm.tapQueueFrames} frames`],
    ['share', `${vm.share} (the same path in the guest; \`lab down\` removes it)`],
    ['console', vm.consoleLog],
  ];
}

export function renderDown(r: LabDownResult): string {
  if (!r.wasUp) return `no lab in ${r.runDir}: nothing to remove\n`;
  const removed = r.steps.filter((s) => s.outcome === 'removed').length;
  const absent = r.steps.length - removed;
  return `lab down in ${seconds(r.durationMs)}: removed ${removed} piece(s)${absent ? `, ${absent} already gone` : ''} (${r.runDir})\n`;
}

function itemRow(i: StatusItem): string[] {
  const l = i.link;
  let detail = '';
  if (i.pids?.length) detail = `pid ${i.pids.join(', ')}`;
  if (i.ports) detail = `ports ${i.ports.join(', ') || '(none)'}`;
  if (l?.master) detail = `master ${l.master}`;
  return [
    i.kind,
    i.netns ? `${i.netns}/${i.name}` : i.name,
    i.present ? 'present' : 'MISSING',
    l ? l.operstate : '',
    l ? String(l.mtu) : '',
    l ? l.qdiscs.map(renderQdisc).join(', ') : '',
    detail,
  ];
}

export function renderStatus(s: LabStatus): string {
  if (s.phase === 'none') return `no lab in ${s.runDir}\n`;
  const head =
    `lab in ${s.runDir}: ${s.phase}${s.switch ? ` (${s.switch === 'ovs' ? 'Open vSwitch' : 'Linux bridge'})` : ''}, ` +
    `${s.healthy ? 'healthy' : 'NOT healthy: run `svtrace lab down` then `svtrace lab up`'}\n`;
  const vm = s.topology?.vm ? table(vmRows(s.topology.vm)) : '';
  const imps = Object.entries(s.impairments).map(([hop, imp]) => `impairment on hop ${hop}: ${imp ? describeImpairment(imp) : ''}\n`);
  const rows = [['KIND', 'NAME', 'STATE', 'LINK', 'MTU', 'QDISC', 'DETAIL'], ...s.items.map(itemRow)];
  return head + vm + imps.join('') + table(rows);
}
