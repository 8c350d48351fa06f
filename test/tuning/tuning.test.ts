/**
 * `doctor --tuning` against fake /proc and /sys trees (one table of cases,
 * each changing a tuned RT host and expecting a level per check), against
 * an empty tree (every check unknown, saying why), and on this machine with
 * a real pinned/unpinned process and, where QEMU is installed, a real QEMU.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTuning, renderTuning, type TuningLevel, type TuningOptions } from '../../src/tuning/index.ts';
import { tuningOptionsFrom } from '../../src/cli/doctor.ts';
import { runCli } from '../helpers/cli.ts';
import { removeTree, thread, tunedHost, writeTree, type FakeTree } from './fake-host.ts';

const ALL_CHECKS = ['kernel-preempt', 'rt-throttling', 'isolcpus', 'nohz_full', 'rcu_nocbs', 'irq-affinity', 'cpufreq', 'cpuidle', 'smt', 'qemu-vcpu', 'qemu-emulator', 'subscriber-sched', 'timer-slack', 'swap'];

interface Case {
  name: string;
  change: FakeTree;
  options?: TuningOptions;
  /** Expected level per check (a check with a subject: "check subject"); checks not listed must pass. */
  expect: Record<string, TuningLevel>;
  /** Text the fix of the first non-pass finding must contain. */
  fix?: RegExp;
}

const noIsolation: FakeTree = { '/proc/cmdline': 'BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet', '/sys/devices/system/cpu/isolated': '', '/sys/devices/system/cpu/nohz_full': '' };

const CASES: Case[] = [
  { name: 'a tuned RT host passes every check', change: {}, expect: {} },
  { name: 'a PREEMPT_DYNAMIC kernel fails and says preempt=full', change: { '/sys/kernel/realtime': null, '/proc/sys/kernel/version': '#1 SMP PREEMPT_DYNAMIC Debian 6.1.158-1' }, expect: { 'kernel-preempt': 'fail' }, fix: /linux-image-rt-amd64.*preempt=full/ },
  { name: 'PREEMPT_RT seen in uname -v alone', change: { '/sys/kernel/realtime': null }, expect: {} },
  { name: 'RT throttling at its default', change: { '/proc/sys/kernel/sched_rt_runtime_us': '950000' }, expect: { 'rt-throttling': 'warn' }, fix: /sched_rt_runtime_us=-1/ },
  {
    name: 'no isolation: isolcpus fails, nohz_full and rcu_nocbs warn, the housekeeping IRQs still pass',
    change: noIsolation, expect: { isolcpus: 'fail', nohz_full: 'warn', rcu_nocbs: 'warn' }, fix: /isolcpus=managed_irq,domain,1-3 nohz_full=1-3 rcu_nocbs=1-3 irqaffinity=0 /,
  },
  { name: 'isolcpus without nohz_full or rcu_nocbs', change: { '/proc/cmdline': 'ro isolcpus=1-3', '/sys/devices/system/cpu/nohz_full': '' }, expect: { nohz_full: 'warn', rcu_nocbs: 'warn' }, fix: /nohz_full=1-3/ },
  { name: 'nohz_full offloads RCU callbacks without rcu_nocbs', change: { '/proc/cmdline': 'ro isolcpus=1-3 nohz_full=1-3' }, expect: {} },
  { name: 'isolation from isolcpus= when sysfs lacks the file', change: { '/sys/devices/system/cpu/isolated': null }, expect: {} },
  { name: 'a NIC queue free to land on an isolated CPU fails', change: { '/proc/irq/121/smp_affinity_list': '0-3' }, expect: { 'irq-affinity ens1f0': 'fail' }, fix: /for i in 120 121; do echo 0 > \/proc\/irq\/\$i\/smp_affinity_list/ },
  {
    name: 'without isolation, queues on every CPU warn, and irqbalance is named',
    change: { ...noIsolation, '/proc/irq/120/smp_affinity_list': '0-3', '/proc/700/comm': 'irqbalance', '/proc/700/task/700/comm': 'irqbalance' },
    expect: { isolcpus: 'fail', nohz_full: 'warn', rcu_nocbs: 'warn', 'irq-affinity ens1f0': 'warn' },
  },
  { name: 'a veth named with --interface has no interrupt', change: {}, options: { interfaces: ['veth0'] }, expect: { 'irq-affinity veth0': 'unknown' } },
  { name: 'an interface that does not exist', change: {}, options: { interfaces: ['nosuch0'] }, expect: { 'irq-affinity nosuch0': 'unknown' } },
  { name: 'no physical NIC at all', change: { '/sys/class/net/ens1f0': null }, expect: { 'irq-affinity': 'unknown' } },
  {
    name: 'a virtio NIC: vectors of the PCI parent and virtioN- names',
    change: {
      '/sys/class/net/ens1f0': null,
      '/sys/devices/pci0000:00/0000:00:03.0/virtio2/net/eth0/device': { link: '../../../virtio2' },
      '/sys/devices/pci0000:00/0000:00:03.0/msi_irqs/38': 'msix',
      '/sys/class/net/eth0': { link: '../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0' },
      '/proc/interrupts': '           CPU0 CPU1 CPU2 CPU3\n 38:  5 0 0 0   PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\n 39:  5 0 0 0   PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0',
      '/proc/irq/38/smp_affinity_list': '0', '/proc/irq/39/smp_affinity_list': '2',
    },
    expect: { 'irq-affinity eth0': 'fail' }, fix: /for i in 38 39;/,
  },
  { name: 'powersave governor on one CPU', change: { '/sys/devices/system/cpu/cpu2/cpufreq/scaling_governor': 'powersave' }, expect: { cpufreq: 'warn' }, fix: /cpupower frequency-set -g performance/ },
  {
    name: 'no cpufreq at all (a VM)',
    change: Object.fromEntries([0, 1, 2, 3].map((c) => [`/sys/devices/system/cpu/cpu${c}/cpufreq/scaling_governor`, null])), expect: { cpufreq: 'unknown' },
  },
  { name: 'C6 enabled', change: { '/sys/devices/system/cpu/cpu3/cpuidle/state2/disable': '0' }, expect: { cpuidle: 'warn' }, fix: /cpupower idle-set -D 10/ },
  { name: 'the subscriber\'s CPU has an SMT sibling', change: { '/sys/devices/system/cpu/cpu1/topology/thread_siblings_list': '1,5', '/sys/devices/system/cpu/smt/active': '1' }, expect: { smt: 'warn' }, fix: /smt\/control/ },
  {
    name: 'a vCPU free to run anywhere at normal priority',
    change: thread({ pid: 500, tid: 502, comm: 'CPU 1/KVM', policy: 0, prio: 0, cpus: '0-3', slackNs: 1 }),
    expect: { 'qemu-vcpu qemu-system-x86 pid 500': 'warn', 'qemu-emulator qemu-system-x86 pid 500': 'warn' }, fix: /chrt -f -p 1 TID/,
  },
  {
    name: 'the emulator thread on a vCPU\'s CPU',
    change: thread({ pid: 500, tid: 500, comm: 'qemu-system-x86', policy: 0, prio: 0, cpus: '0-3', slackNs: 1 }),
    expect: { 'qemu-emulator qemu-system-x86 pid 500': 'warn' }, fix: /taskset -pc 0 TID/,
  },
  {
    name: 'no QEMU running',
    change: Object.fromEntries(Object.keys(tunedHost()).filter((p) => p.startsWith('/proc/50')).map((p) => [p, null])),
    expect: { 'qemu-vcpu': 'unknown', 'qemu-emulator': 'unknown' },
  },
  {
    name: 'the subscriber at normal priority, unpinned, with the default timer slack',
    change: thread({ pid: 600, tid: 601, comm: 'svtrace-rx', policy: 0, prio: 0, cpus: '0-3', slackNs: 50_000 }),
    expect: { 'subscriber-sched': 'warn', 'timer-slack': 'warn' }, fix: /chrt -f -p 50 TID; taskset -pc 1 TID/,
  },
  { name: 'a subscriber named that does not run', change: {}, options: { subscriberComm: 'protection' }, expect: { 'subscriber-sched': 'unknown' } },
  // by pid, every thread counts: the main thread runs at normal priority on the housekeeping CPU 0
  { name: 'the subscriber by pid', change: {}, options: { subscriberPid: 600 }, expect: { isolcpus: 'warn', 'subscriber-sched': 'warn', 'timer-slack': 'warn' } },
  { name: 'swap on', change: { '/proc/swaps': 'Filename\tType\tSize\tUsed\tPriority\n/dev/sda2 partition 8388604 1024 -2' }, expect: { swap: 'warn' }, fix: /swapoff -a/ },
];

const key = (f: { check: string; subject?: string }) => (f.subject ? `${f.check} ${f.subject}` : f.check);

for (const c of CASES) {
  test(`tuning: ${c.name}`, () => {
    const root = writeTree({ ...tunedHost(), ...c.change });
    try {
      const r = checkTuning({ root, ...c.options });
      const got = Object.fromEntries(r.findings.map((f) => [key(f), f.level]));
      const expected = Object.fromEntries(r.findings.map((f) => [key(f), c.expect[key(f)] ?? c.expect[f.check] ?? 'pass']));
      assert.deepEqual(got, expected, renderTuning(r));
      for (const k of Object.keys(c.expect)) assert.ok(k in got || r.findings.some((f) => f.check === k), `a finding ${k}: ${Object.keys(got).join(', ')}`);
      assert.deepEqual([...new Set(r.findings.map((f) => f.check))], ALL_CHECKS, 'every check, in order');
      for (const f of r.findings) {
        assert.ok(f.found.length > 10 && f.meaning.length > 20, `${key(f)} says what it found and what it means`);
        if (f.level === 'warn' || f.level === 'fail') assert.ok(f.fix && f.fix.length > 10, `${key(f)} says what fixes it`);
      }
      if (c.fix) assert.match(r.findings.find((f) => f.level !== 'pass' && f.fix)?.fix ?? '', c.fix);
    } finally {
      removeTree(root);
    }
  });
}

test('tuning: an empty tree gives unknown for every check, with what could not be read', () => {
  const root = mkdtempSync(join(tmpdir(), `svtrace-tuning-empty-${process.pid}-`));
  try {
    const r = checkTuning({ root });
    assert.deepEqual([...new Set(r.findings.map((f) => f.level))], ['unknown'], renderTuning(r));
    for (const f of r.findings) assert.match(f.found, /cannot read|no |not /, `${f.check}: ${f.found}`);
    assert.match(renderTuning(r), /^unknown {2}kernel-preempt: cannot read \/proc\/sys\/kernel\/version/m);
  } finally {
    removeTree(root);
  }
});

test('tuning: hostile names are refused, hostile thread names are made printable', () => {
  assert.throws(() => checkTuning({ root: '/nonexistent', interfaces: ['../../etc'] }), { code: 'TUNING_INTERFACE_INVALID' });
  assert.throws(() => checkTuning({ root: '/nonexistent', subscriberComm: 'a/b' }), { code: 'TUNING_COMM_INVALID' });
  assert.throws(() => checkTuning({ root: '/nonexistent', subscriberPid: -1 }), { code: 'TUNING_PID_INVALID' });
  const root = writeTree({ ...tunedHost(), ...thread({ pid: 500, tid: 503, comm: 'IO \x1b[31mred', policy: 0, prio: 0, cpus: '2', slackNs: 1 }) });
  try {
    const text = renderTuning(checkTuning({ root }));
    assert.ok(!text.includes('\x1b'), 'no escape sequence reaches the terminal');
    assert.match(text, /IO \\x1b\[31mred/);
  } finally {
    removeTree(root);
  }
});

test('tuning: the CLI options take the NIC from --interface or the config\'s [trace] ingress', () => {
  const dir = mkdtempSync(join(tmpdir(), `svtrace-tuning-cfg-${process.pid}-`));
  try {
    const cfg = join(dir, 'svtrace.toml');
    writeFileSync(cfg, '[trace]\ningress = "ens1f0"\nsubscriber_comm = "protection"\n');
    assert.deepEqual(tuningOptionsFrom({ interface: [], config: cfg }), { root: '/', interfaces: ['ens1f0'], subscriberComm: 'protection' });
    assert.deepEqual(tuningOptionsFrom({ interface: ['eth1,eth2'], pid: '42', config: cfg }), { root: '/', interfaces: ['eth1', 'eth2'], subscriberPid: 42 });
  } finally {
    removeTree(dir);
  }
});

test('tuning: through the CLI, exit 0 on a tuned host, 1 when a check fails, 2 on a bad flag; --json is the report', async () => {
  const tuned = writeTree(tunedHost());
  const untuned = writeTree({ ...tunedHost(), ...noIsolation });
  try {
    const flags = ['--interface', 'ens1f0', '--subscriber-comm', 'svtrace-rx'];
    const ok = await runCli(['doctor', '--tuning', '--root', tuned, ...flags]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^pass {5}kernel-preempt: PREEMPT_RT kernel/m);
    assert.match(ok.stdout, /tuning: 14 pass, 0 warning\(s\), 0 fail, 0 unknown \(host tree at .*\); read only, nothing was changed/);
    const bad = await runCli(['doctor', '--tuning', '--json', '--root', untuned, ...flags]);
    assert.equal(bad.code, 1, bad.stderr);
    const report = JSON.parse(bad.stdout) as { format: string; counts: Record<string, number>; findings: { check: string; level: string }[] };
    assert.equal(report.format, 'svtrace-tuning');
    assert.equal(report.counts.fail, 1);
    assert.equal(report.findings.find((f) => f.check === 'isolcpus')?.level, 'fail');
    const usage = await runCli(['doctor', '--tuning', '--root', tuned, '--interface', '../../etc']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /TUNING_INTERFACE_INVALID/);
    assert.match(usage.stderr, /hint: /);
  } finally {
    removeTree(tuned);
    removeTree(untuned);
  }
});

function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  return new Promise((resolve) => {
    const tick = () => (cond() ? resolve(true) : Date.now() > end ? resolve(false) : setTimeout(tick, 20));
    tick();
  });
}

const QEMU = ['/usr/bin/qemu-system-x86_64'].find((p) => existsSync(p));

test('tuning: on this machine every check gives a sane answer', async (t) => {
  // A real subscriber stand-in (a sleeping process, looked up by --pid) and, where installed, a real paused QEMU whose threads are named.
  const children: ChildProcess[] = [];
  try {
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(sleeper);
    let qemuPid: number | undefined;
    if (QEMU) {
      const q = spawn(QEMU, ['-name', `svt${process.pid},debug-threads=on`, '-accel', 'tcg', '-S', '-display', 'none', '-nodefaults', '-m', '64', '-smp', '1', '-monitor', 'none', '-serial', 'none'], { stdio: 'ignore' });
      children.push(q);
      qemuPid = q.pid;
      const named = await waitFor(() => {
        try { return readdirSync(`/proc/${q.pid}/task`).some((tid) => readFileSync(`/proc/${q.pid}/task/${tid}/comm`, 'utf8').startsWith('CPU 0/')); } catch { return false; }
      }, 10_000);
      assert.ok(named, 'QEMU started and named its vCPU thread within 10 s');
    } else t.diagnostic('qemu-system-x86_64 is not installed: the QEMU checks say unknown');
    const r = checkTuning({ subscriberPid: sleeper.pid });
    const text = renderTuning(r);
    t.diagnostic(text);
    assert.deepEqual([...new Set(r.findings.map((f) => f.check))], ALL_CHECKS);
    for (const f of r.findings) {
      assert.ok(['pass', 'warn', 'fail', 'unknown'].includes(f.level));
      assert.ok(f.found.length > 10, `${key(f)} found: ${f.found}`);
      if (f.level === 'warn' || f.level === 'fail') assert.ok(f.fix, `${key(f)} has a fix`);
    }
    // What this machine is known to be, read independently.
    const version = readFileSync('/proc/sys/kernel/version', 'utf8');
    assert.equal(r.findings.find((f) => f.check === 'kernel-preempt')!.level, /PREEMPT_RT/.test(version) ? 'pass' : 'fail');
    const swaps = readFileSync('/proc/swaps', 'utf8').trim().split('\n').length - 1;
    assert.equal(r.findings.find((f) => f.check === 'swap')!.level, swaps > 0 ? 'warn' : 'pass');
    const isolated = (() => { try { return readFileSync('/sys/devices/system/cpu/isolated', 'utf8').trim(); } catch { return ''; } })();
    assert.equal(r.findings.find((f) => f.check === 'isolcpus')!.level === 'fail', isolated === '' && !/\bisolcpus=/.test(readFileSync('/proc/cmdline', 'utf8')), 'isolcpus fails exactly when nothing is isolated');
    assert.equal(r.findings.find((f) => f.check === 'cpufreq')!.level === 'unknown', !existsSync('/sys/devices/system/cpu/cpu0/cpufreq'), 'cpufreq is unknown exactly when the kernel has none');
    const sub = r.findings.find((f) => f.check === 'subscriber-sched')!;
    assert.equal(sub.level, 'warn', 'sleep runs at SCHED_OTHER');
    assert.match(sub.found, /"sleep" \(tid \d+\) SCHED_OTHER/);
    if (qemuPid !== undefined) {
      const vcpu = r.findings.find((f) => f.check === 'qemu-vcpu' && f.subject?.endsWith(`pid ${qemuPid}`));
      assert.ok(vcpu, text);
      assert.equal(vcpu.level, 'warn', 'an unpinned vCPU at normal priority');
      const m = /"CPU 0\/TCG" \(tid (\d+)\) SCHED_OTHER/.exec(vcpu.found);
      assert.ok(m, vcpu.found);
      // QEMU sets its own timer slack to 1 ns before it starts the vCPU: the slack check does not blame the vCPU
      assert.ok(!r.findings.find((f) => f.check === 'timer-slack')!.found.includes(`tid ${m[1]})`), 'the vCPU thread has no slack');
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
  }
});
