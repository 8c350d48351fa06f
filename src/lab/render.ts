/**
 * The lab's results as text for a terminal. Pure: data in, string out;
 * `--json` prints the same data instead.
 */
import type { LabDownResult } from './down.ts';
import { describeImpairment, type QdiscInfo } from './impair-spec.ts';
import type { LabStatus, StatusItem } from './status.ts';
import type { LabUpResult } from './up.ts';

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
    ['VM', `${t.hostVmIf} ══ ${t.vmNetns}/${t.vmIf}  (T2: VM port transmit, ifindex ${t.hostVmIfIndex ?? '?'})`],
  ];
  if (r.forwardingCheck) rows.push(['check', r.forwardingCheck.detail]);
  return `lab up in ${seconds(r.durationMs)}, run directory ${t.runDir}\n` + table(rows);
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
  const imps = Object.entries(s.impairments).map(([hop, imp]) => `impairment on hop ${hop}: ${imp ? describeImpairment(imp) : ''}\n`);
  const rows = [['KIND', 'NAME', 'STATE', 'LINK', 'MTU', 'QDISC', 'DETAIL'], ...s.items.map(itemRow)];
  return head + imps.join('') + table(rows);
}
