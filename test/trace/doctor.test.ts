import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { classifyTasks, probeCapabilities, type Capabilities } from '../../src/trace/capabilities.ts';
import { choosePlan, diagnose, planPoints } from '../../src/trace/plan.ts';
import { renderFindings } from '../../src/cli/doctor.ts';
import { cannotTrace } from './lab.ts';

const SKIP = cannotTrace();
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const NET = ['netif_receive_skb', 'net_dev_start_xmit', 'net_dev_queue', 'net_dev_xmit'].map((n) => `tracepoint:net:${n}`);
const SKB = ['consume_skb', 'kfree_skb', 'skb_copy_datagram_iovec'].map((n) => `tracepoint:skb:${n}`);

function fakeCaps(over: Partial<Capabilities> = {}): Capabilities {
  return {
    kernel: '6.1.0-rt', root: true, bpftrace: { path: '/usr/bin/bpftrace', version: { text: 'bpftrace v0.17.0', major: 0, minor: 17, patch: 0 } },
    btf: true, tracefs: '/sys/kernel/tracing', initialNetns: true,
    kprobes: { available: false, detail: 'no kprobe_events' },
    tracepoints: { net: NET, skb: SKB, sched: [], irq: [] }, nsecsTai: false,
    threads: { ovsVswitchd: [], vhost: [], qemu: [], kvmVcpu: [] },
    ...over,
  };
}

test('the plan follows what the kernel offers', () => {
  const plain = choosePlan(fakeCaps());
  assert.deepEqual(plain.T1.probes, ['tracepoint:net:netif_receive_skb']);
  assert.deepEqual(plain.T2.probes, ['tracepoint:net:net_dev_start_xmit']);
  assert.deepEqual(plain.T4recvmsg.probes, ['tracepoint:skb:skb_copy_datagram_iovec']);
  assert.deepEqual(plain.T4ring.probes, ['tracepoint:skb:consume_skb', 'tracepoint:skb:kfree_skb']);
  const withKprobes = choosePlan(fakeCaps({
    kprobes: { available: true, detail: 'yes' },
    threads: { ovsVswitchd: [], vhost: [{ pid: 10, tid: 11, comm: 'vhost-10' }], qemu: [], kvmVcpu: [] },
  }));
  assert.deepEqual(withKprobes.T4ring.probes, ['kprobe:tpacket_rcv']);
  assert.deepEqual(withKprobes.alternatives.map((a) => a.point), ['T2vhost', 'T1kprobe']);
  const old = choosePlan(fakeCaps({ tracepoints: { net: NET.filter((p) => !p.endsWith('start_xmit')), skb: SKB, sched: [], irq: [] } }));
  assert.deepEqual(old.T2.probes, ['tracepoint:net:net_dev_queue']);
  const none = choosePlan(fakeCaps({ tracepoints: { net: [], skb: [], sched: [], irq: [] } }));
  assert.deepEqual(none.T3.probes, []);
});

test('findings say what is wrong and what to do', () => {
  const f = diagnose(fakeCaps({ root: false, bpftrace: { path: null, version: null }, tracefs: null, initialNetns: false }));
  const problems = f.filter((x) => x.level === 'problem').map((x) => x.message).join('\n');
  for (const word of ['bpftrace is not installed', 'not running as root', 'tracefs is not mounted', 'network namespace']) assert.match(problems, new RegExp(word));
  assert.ok(f.filter((x) => x.level === 'problem').every((x) => x.hint));
  const text = renderFindings(f);
  assert.match(text, /^problem {2}bpftrace is not installed\n {9}-> apt-get install bpftrace/m);
  assert.match(text, /problem\(s\)/);
  assert.match(renderFindings(diagnose(fakeCaps())), /ready to trace/);
});

test('points of a config: roles, ring subscribers, and probes this kernel lacks', () => {
  const caps = fakeCaps();
  const pts = planPoints({ ingress: { name: 'eth0' }, vmPort: { name: 'tap0' } }, caps);
  assert.deepEqual(pts.map((p) => [p.id, p.name, p.probes[0]]), [[1, 'T1', 'tracepoint:net:netif_receive_skb'], [2, 'T2', 'tracepoint:net:net_dev_start_xmit']]);
  assert.throws(() => planPoints({ subscriber: { mode: 'ring' } }, caps), { code: 'TRACE_CONFIG_INVALID' });
  assert.throws(() => planPoints({ points: [{ name: 'K', probe: 'kprobe:tpacket_rcv', interface: { name: 'eth0' } }] }, caps), { code: 'TRACE_NO_PROBE' });
  assert.throws(() => planPoints({ vmInterface: { name: 'eth0' } }, fakeCaps({ tracepoints: { net: [], skb: [], sched: [], irq: [] } })), { code: 'TRACE_NO_PROBE' });
});

test('virtualization threads are recognised by their comm', () => {
  const t = classifyTasks([
    { pid: 1, tid: 1, comm: 'ovs-vswitchd' }, { pid: 1, tid: 2, comm: 'pmd-c01/id:3' },
    { pid: 5, tid: 5, comm: 'qemu-system-x86' }, { pid: 5, tid: 6, comm: 'CPU 0/KVM' }, { pid: 5, tid: 7, comm: 'vhost-5' },
    { pid: 9, tid: 9, comm: 'vhost-net' },
  ]);
  assert.deepEqual([t.ovsVswitchd.length, t.qemu.length, t.kvmVcpu.length, t.vhost.map((x) => x.tid)], [1, 1, 1, [7]]);
});

test('probeCapabilities reports this machine as it is', { skip: SKIP ?? false, timeout: 120_000 }, async () => {
  const caps = await probeCapabilities();
  assert.equal(caps.root, true);
  assert.ok(caps.bpftrace.path && caps.bpftrace.version);
  assert.equal(caps.btf, existsSync('/sys/kernel/btf/vmlinux'));
  assert.ok(caps.tracepoints.net.includes('tracepoint:net:netif_receive_skb'));
  assert.ok(caps.tracepoints.skb.includes('tracepoint:skb:skb_copy_datagram_iovec'));
  assert.equal(caps.kprobes.available && !existsSync(`${caps.tracefs}/kprobe_events`), false, 'kprobes only with kprobe_events');
  if (caps.bpftrace.version!.minor < 20 && caps.bpftrace.version!.major === 0) assert.equal(caps.nsecsTai, false);
  assert.equal(caps.initialNetns, true);
});

test('`svtrace doctor` prints findings, and --json the same data', { skip: SKIP ?? false, timeout: 120_000 }, () => {
  const script = `import { Command } from 'commander'; import { register } from './src/cli/doctor.ts';
    const p = new Command(); register(p); await p.parseAsync(process.argv);`;
  const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, 'svtrace', ...args], { cwd: ROOT, encoding: 'utf8' });
  const text = run(['doctor']);
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^ok {7}bpftrace \d+\.\d+\.\d+ at /m);
  assert.match(text.stdout, /^ok {7}T1: tracepoint:net:netif_receive_skb/m);
  assert.match(text.stdout, /ready to trace/);
  const json = run(['doctor', '--json']);
  assert.equal(json.status, 0, json.stderr);
  const data = JSON.parse(json.stdout) as { capabilities: Capabilities; plan: { T1: { probes: string[] } }; findings: unknown[] };
  assert.deepEqual(data.plan.T1.probes, ['tracepoint:net:netif_receive_skb']);
  assert.ok(data.findings.length > 5);
});
