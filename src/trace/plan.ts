/**
 * From capabilities to decisions: which probe takes T1..T4 on this kernel and
 * why (`choosePlan`), what a user should fix (`diagnose`), and the points a
 * config asks for (`planPoints`).
 */
import { SvtraceError } from '../errors.ts';
import type { Capabilities } from './capabilities.ts';
import type { InterfaceRef, TraceConfig } from './config.ts';
import { versionAtLeast } from './bpftrace.ts';

export interface PointChoice {
  /** Probes, in the order tried; empty when nothing on this kernel can take the point. */
  probes: string[];
  why: string;
}

export interface TracePlan {
  T1: PointChoice;
  T2: PointChoice;
  T3: PointChoice;
  /** Subscriber reading with recvmsg/recvfrom. */
  T4recvmsg: PointChoice;
  /** Subscriber reading a PACKET_RX_RING. */
  T4ring: PointChoice;
  /** Other probes worth knowing about here (e.g. T2 in vhost threads). */
  alternatives: Array<{ point: string } & PointChoice>;
}

function has(caps: Capabilities, probe: string): boolean {
  if (probe.startsWith('kprobe:')) return caps.kprobes.available;
  const [, cat] = probe.split(':');
  const list = cat === 'net' ? caps.tracepoints.net : cat === 'skb' ? caps.tracepoints.skb : [];
  return list.includes(probe);
}

function first(caps: Capabilities, options: Array<[string[], string]>, none: string): PointChoice {
  for (const [probes, why] of options) if (probes.every((p) => has(caps, p))) return { probes, why };
  return { probes: [], why: none };
}

export function choosePlan(caps: Capabilities): TracePlan {
  const kp = caps.kprobes.available;
  const rx = first(caps, [
    [['tracepoint:net:netif_receive_skb'], 'tracepoint net:netif_receive_skb fires once per received frame on every receive path (NAPI, GRO, netif_rx), with the device in skb->dev'],
  ], 'no net:netif_receive_skb tracepoint');
  const plan: TracePlan = {
    T1: rx,
    T2: first(caps, [
      [['tracepoint:net:net_dev_start_xmit'], 'tracepoint net:net_dev_start_xmit fires as the frame is handed to the VM port\'s driver (tap, veth), with the frame intact and skb->dev the port'],
      [['tracepoint:net:net_dev_queue'], 'tracepoint net:net_dev_queue fires as the frame enters dev_queue_xmit on the VM port (before the qdisc)'],
    ], 'neither net:net_dev_start_xmit nor net:net_dev_queue exists (net:net_dev_xmit fires after the driver, when the frame may be gone, and skb->dev is the veth peer there)'),
    T3: rx,
    T4recvmsg: first(caps, [
      [['tracepoint:skb:skb_copy_datagram_iovec'], 'tracepoint skb:skb_copy_datagram_iovec fires in the subscriber\'s process when recvmsg copies the frame out (skb->dev is NULL there: filter by pid or comm)'],
    ], 'no skb:skb_copy_datagram_iovec tracepoint'),
    T4ring: kp
      ? first(caps, [[['kprobe:tpacket_rcv'], 'kprobe tpacket_rcv fires when the frame is written into the subscriber\'s PACKET_RX_RING']], 'no kprobe:tpacket_rcv')
      : first(caps, [
        [['tracepoint:skb:consume_skb', 'tracepoint:skb:kfree_skb'],
          'no kprobes here, and nothing fires in the subscriber for a PACKET_RX_RING read; the frame\'s last release on the VM interface (skb:kfree_skb "unhandled protocol" or skb:consume_skb, in softirq after every packet socket got it) is the nearest point: it bounds "in the ring" from above'],
      ], 'no skb:consume_skb / skb:kfree_skb tracepoints'),
    alternatives: [],
  };
  if (caps.threads.vhost.length > 0 && has(caps, 'tracepoint:skb:consume_skb')) {
    plan.alternatives.push({
      point: 'T2vhost', probes: ['tracepoint:skb:consume_skb'],
      why: `vhost threads run here (${caps.threads.vhost.map((t) => t.comm).slice(0, 4).join(', ')}): skb:consume_skb in comm vhost-* fires when vhost-net has copied the frame into guest memory`,
    });
  }
  if (kp) {
    plan.alternatives.push({ point: 'T1kprobe', probes: ['kprobe:skb_push'], why: 'kprobes exist: kprobe:skb_push is available as on SEAPATH\'s reference setup' });
  }
  return plan;
}

export type FindingLevel = 'ok' | 'warning' | 'problem';

export interface Finding {
  level: FindingLevel;
  message: string;
  hint?: string;
}

export function diagnose(caps: Capabilities, plan = choosePlan(caps)): Finding[] {
  const f: Finding[] = [];
  const v = caps.bpftrace.version;
  if (!caps.bpftrace.path) f.push({ level: 'problem', message: 'bpftrace is not installed', hint: 'apt-get install bpftrace (or set BPFTRACE=/path/to/bpftrace)' });
  else f.push({ level: versionAtLeast(v, 0, 17) ? 'ok' : 'warning', message: `bpftrace ${v ? `${v.major}.${v.minor}.${v.patch}` : '(unknown version)'} at ${caps.bpftrace.path}`, ...(versionAtLeast(v, 0, 17) ? {} : { hint: 'svtrace is tested with bpftrace 0.17 and later' }) });
  f.push(caps.root ? { level: 'ok', message: 'running as root' } : { level: 'problem', message: 'not running as root: bpftrace cannot attach probes', hint: 'run svtrace as root (sudo)' });
  f.push(caps.btf ? { level: 'ok', message: 'kernel BTF at /sys/kernel/btf/vmlinux' } : { level: 'problem', message: 'no kernel BTF: bpftrace cannot read struct sk_buff', hint: 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian\'s is)' });
  f.push(caps.tracefs ? { level: 'ok', message: `tracefs mounted at ${caps.tracefs}` } : { level: 'problem', message: 'tracefs is not mounted: bpftrace will say "tracepoint not found"', hint: 'mount -t tracefs tracefs /sys/kernel/tracing' });
  if (caps.initialNetns === false) f.push({ level: 'problem', message: 'svtrace runs inside a network namespace: bpftrace must run in the root one', hint: 'run svtrace outside `ip netns exec`; name interfaces in namespaces with { name, netns }' });
  const th = caps.threads;
  const seen = [
    th.ovsVswitchd.length ? `ovs-vswitchd (pid ${th.ovsVswitchd.map((t) => t.pid).join(', ')})` : '',
    th.qemu.length ? `qemu (pid ${th.qemu.map((t) => t.pid).join(', ')})` : '',
    th.vhost.length ? `${th.vhost.length} vhost thread(s)` : '',
    th.kvmVcpu.length ? `${th.kvmVcpu.length} KVM vCPU thread(s)` : '',
  ].filter(Boolean);
  f.push({ level: 'ok', message: seen.length ? `virtualization threads: ${seen.join(', ')}` : 'no ovs-vswitchd, qemu, vhost or KVM vCPU thread running (fine inside a VM or a lab)' });
  if (!caps.root) {
    f.push({ level: 'warning', message: 'without root, tracepoints and kprobes cannot be listed, so no probe can be chosen for T1..T4', hint: 'run `sudo svtrace doctor`' });
    return f;
  }
  f.push(caps.kprobes.available
    ? { level: 'ok', message: `kprobes available (${caps.kprobes.detail})` }
    : { level: 'warning', message: `no kprobes: ${caps.kprobes.detail}`, hint: 'tracepoints cover T1-T4 (recvmsg); a PACKET_RX_RING subscriber is bounded by the frame\'s release instead of tpacket_rcv' });
  const tp = caps.tracepoints;
  f.push(tp.net.length + tp.skb.length > 0
    ? { level: 'ok', message: `tracepoints: ${tp.net.length} net, ${tp.skb.length} skb, ${tp.sched.length} sched, ${tp.irq.length} irq` }
    : { level: 'problem', message: 'no net/skb tracepoints listed', hint: 'check root, tracefs and CONFIG_TRACEPOINTS' });
  if (caps.bpfEngine !== undefined) {
    f.push(caps.bpfEngine === null
      ? { level: 'ok', message: 'the binary engine can run (libbpf, its BPF objects, kernel BTF): --engine bpf, the default, for the points and the flight recorder' }
      : { level: 'warning', message: `the binary trace engine cannot run: ${caps.bpfEngine}`, hint: 'trace --engine bpftrace works without it; scripts/setup.sh installs libbpf-dev and clang-14' });
  }
  f.push(caps.nsecsTai
    ? { level: 'ok', message: 'bpftrace has nsecs(tai)' }
    : { level: 'ok', message: 'bpftrace has no nsecs(tai): times are CLOCK_MONOTONIC, mapped to realtime by a measured offset' });
  for (const [name, c] of [['T1', plan.T1], ['T2', plan.T2], ['T3', plan.T3], ['T4 (recvmsg)', plan.T4recvmsg], ['T4 (ring)', plan.T4ring]] as const) {
    f.push(c.probes.length
      ? { level: 'ok', message: `${name}: ${c.probes.join(' + ')}: ${c.why}` }
      : { level: 'problem', message: `${name}: no probe: ${c.why}`, hint: 'this point cannot be traced on this kernel' });
  }
  for (const a of plan.alternatives) f.push({ level: 'ok', message: `also possible, ${a.point}: ${a.probes.join(' + ')}: ${a.why}` });
  return f;
}

/** A point a config asks for, before its interface is resolved. */
export interface PlannedPoint {
  id: number;
  name: string;
  probes: string[];
  interface?: InterfaceRef;
  pids?: number[];
  comm?: string;
  commPrefix?: string;
}

function need(c: PointChoice, name: string): string[] {
  if (c.probes.length === 0) throw new SvtraceError('TRACE_NO_PROBE', `${name} cannot be traced on this kernel: ${c.why}`, { hint: 'run `svtrace doctor` to see what this kernel offers' });
  return c.probes;
}

/** The points of a validated config, numbered from 1 in the order T1, T2, T3, T4, custom. */
export function planPoints(config: TraceConfig, caps: Capabilities, plan = choosePlan(caps)): PlannedPoint[] {
  const out: PlannedPoint[] = [];
  const add = (p: Omit<PlannedPoint, 'id'>) => out.push({ id: out.length + 1, ...p });
  if (config.ingress) add({ name: 'T1', probes: need(plan.T1, 'T1'), interface: config.ingress });
  if (config.vmPort) add({ name: 'T2', probes: need(plan.T2, 'T2'), interface: config.vmPort });
  if (config.vmInterface) add({ name: 'T3', probes: need(plan.T3, 'T3'), interface: config.vmInterface });
  const sub = config.subscriber;
  if (sub) {
    if ((sub.mode ?? 'recvmsg') === 'recvmsg') {
      const { pids, comm, commPrefix } = sub;
      add({ name: 'T4', probes: need(plan.T4recvmsg, 'T4'), ...(pids ? { pids } : {}), ...(comm ? { comm } : {}), ...(commPrefix ? { commPrefix } : {}) });
    } else {
      if (!config.vmInterface) {
        throw new SvtraceError('TRACE_CONFIG_INVALID', 'trace config: a ring subscriber is traced on the VM interface, and vmInterface is not set', {
          hint: 'set vmInterface to the interface the subscriber\'s ring is bound to',
        });
      }
      add({ name: 'T4', probes: need(plan.T4ring, 'T4 (ring)'), interface: config.vmInterface });
    }
  }
  for (const p of config.points ?? []) {
    const { name, probe, interface: iface, pids, comm, commPrefix } = p;
    if (!has(caps, probe)) {
      throw new SvtraceError('TRACE_NO_PROBE', `point ${name}: ${probe} does not exist on this kernel`, {
        hint: probe.startsWith('kprobe:') ? `kprobes are unavailable (${caps.kprobes.detail}); use a tracepoint` : 'run `svtrace doctor` to list the tracepoints here',
      });
    }
    add({ name, probes: [probe], ...(iface ? { interface: iface } : {}), ...(pids ? { pids } : {}), ...(comm ? { comm } : {}), ...(commPrefix ? { commPrefix } : {}) });
  }
  if (new Set(out.map((p) => p.name)).size !== out.length) {
    throw new SvtraceError('TRACE_CONFIG_INVALID', 'trace config: two points have the same name', { hint: 'give custom points names other than T1..T4 and each other' });
  }
  return out;
}
