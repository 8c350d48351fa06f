/**
 * The lab with a private Open vSwitch (userspace datapath), for real: real
 * namespaces, real ovsdb-server/ovs-vswitchd, real SV frames from the
 * fixtures. All OVS tests live in this one file because only one OVS
 * userspace datapath fits in a network namespace (its tap is `ovs-netdev`).
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { SvtraceError } from '../../src/errors.ts';
import {
  applyImpairment, clearImpairment, labDown, labStatus, labUp, readLabState, statePath, type LabTopology,
} from '../../src/lab/index.ts';
import {
  countSv, leftovers, removeDir, replay, sendAndCapture, skipReason, startCapture, TAGGED_PCAP, tempRunDir, uniquePrefix, UNTAGGED_PCAP,
} from './helpers/lab-env.ts';

const skip = skipReason({ ovs: true, traffic: true });
const UP_CHILD = join(import.meta.dirname, 'helpers', 'up-child.ts');

async function withLab(t: TestContext, tag: string, extra: Parameters<typeof labUp>[0], body: (topo: LabTopology, scratch: string) => Promise<void>): Promise<void> {
  const prefix = uniquePrefix(tag);
  const runDir = tempRunDir(tag);
  const scratch = tempRunDir(`${tag}cap`);
  try {
    const up = await labUp({ switch: 'ovs', runDir, prefix, ...extra });
    t.diagnostic(`lab up (ovs) took ${up.durationMs.toFixed(0)} ms; forwarding check: ${up.forwardingCheck?.detail ?? 'none'}`);
    await body(up.topology, scratch);
    const down = await labDown(runDir);
    t.diagnostic(`lab down (ovs) took ${down.durationMs.toFixed(0)} ms`);
    assert.deepEqual(leftovers(prefix, runDir), []);
  } finally {
    await labDown(runDir).catch(() => undefined);
    removeDir(runDir);
    removeDir(scratch);
  }
}

test('OVS lab: tagged and untagged SV cross it, status sees every piece, down removes them all', { skip }, async (t) => {
  await withLab(t, 'o', {}, async (topo, scratch) => {
    assert.equal(topo.switch, 'ovs');
    assert.deepEqual(await readLabState(topo.runDir), topo);
    assert.ok(topo.ovs?.pids['ovs-vswitchd'] && topo.ovs.pids['ovsdb-server']);
    assert.ok(topo.ovs.dbSock.startsWith(topo.runDir));
    // the daemons are ours: their command lines point into our run directory
    const cmdline = readFileSync(`/proc/${topo.ovs.pids['ovs-vswitchd']}/cmdline`, 'utf8');
    assert.match(cmdline, new RegExp(`--pidfile=${topo.runDir}/ovs/`));

    const count = await sendAndCapture(topo, 100, scratch);
    assert.deepEqual(count, { tagged: 100, untagged: 100, tagChanged: 0 });

    const status = await labStatus(topo.runDir);
    assert.equal(status.phase, 'up');
    assert.equal(status.healthy, true, JSON.stringify(status.items.filter((i) => !i.present)));
    const bridge = status.items.find((i) => i.kind === 'bridge');
    assert.deepEqual(bridge?.ports?.sort(), [topo.hostPubIf, topo.hostVmIf].sort());
    for (const name of ['ovsdb-server', 'ovs-vswitchd']) {
      assert.equal(status.items.find((i) => i.name === name)?.pids?.length, 1, name);
    }
    for (const [name, netns] of [[topo.hostPubIf, undefined], [topo.pubIf, topo.pubNetns], [topo.hostVmIf, undefined], [topo.vmIf, topo.vmNetns]]) {
      const item = status.items.find((i) => i.kind === 'link' && i.name === name && i.netns === netns);
      assert.equal(item?.link?.operstate, 'UP', `${name}`);
    }
    // IPv6 is off inside the namespaces and on the host ends
    assert.equal(execFileSync('ip', ['netns', 'exec', topo.vmNetns, 'cat', `/proc/sys/net/ipv6/conf/${topo.vmIf}/disable_ipv6`], { encoding: 'utf8' }).trim(), '1');
    assert.equal(readFileSync(`/proc/sys/net/ipv6/conf/${topo.hostVmIf}/disable_ipv6`, 'utf8').trim(), '1');

    await assert.rejects(labUp({ switch: 'ovs', runDir: topo.runDir, prefix: 'other' }), (e: unknown) =>
      e instanceof SvtraceError && e.code === 'LAB_ALREADY_UP' && e.hint === `svtrace lab down --run-dir ${topo.runDir}`);
    const otherDir = tempRunDir('o2');
    try {
      await assert.rejects(labUp({ switch: 'bridge', runDir: otherDir, names: { bridge: topo.bridge } }), (e: unknown) =>
        e instanceof SvtraceError && e.code === 'LAB_NAME_IN_USE');
      assert.equal((await labStatus(otherDir)).phase, 'none');
    } finally {
      removeDir(otherDir);
    }
    const thirdDir = tempRunDir('o3');
    try {
      await assert.rejects(labUp({ switch: 'ovs', runDir: thirdDir, prefix: uniquePrefix('x') }), (e: unknown) =>
        e instanceof SvtraceError && e.code === 'LAB_OVS_DATAPATH_BUSY' && e.message.includes(`pid ${topo.ovs?.pids['ovs-vswitchd']}`));
    } finally {
      removeDir(thirdDir);
    }
    assert.equal((await labStatus(topo.runDir)).healthy, true, 'the refused labs touched nothing of ours');
  });
});

test('OVS lab with a VLAN trunk list: VLAN 1 passes, untagged frames do not', { skip }, async (t) => {
  await withLab(t, 'v', { vlanTrunks: [1] }, async (topo, scratch) => {
    const cap = await startCapture(topo.vmNetns, topo.vmIf, 60, 3, scratch);
    replay(topo.pubNetns, topo.pubIf, UNTAGGED_PCAP, 30);
    replay(topo.pubNetns, topo.pubIf, TAGGED_PCAP, 30);
    assert.deepEqual(countSv(await cap.done), { tagged: 30, untagged: 0, tagChanged: 0 });
  });
});

test('impairment on hop vm: netem delay in tc and status, 100 % loss drops every frame', { skip }, async (t) => {
  await withLab(t, 'i', {}, async (topo, scratch) => {
    try {
      await applyImpairment(topo, 'vm', { delayUs: 500 });
    } catch (e) {
      if (!(e instanceof SvtraceError && e.code === 'LAB_NETEM_UNSUPPORTED')) throw e;
      const status = await labStatus(topo.runDir);
      assert.deepEqual(status.impairments, {}, 'a failed impairment is not recorded');
      t.skip('this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM); checked that LAB_NETEM_UNSUPPORTED is raised and nothing recorded');
      return;
    }
    const tcText = execFileSync('tc', ['qdisc', 'show', 'dev', topo.hostVmIf], { encoding: 'utf8' });
    assert.match(tcText, /netem .*delay 500us/);
    let status = await labStatus(topo.runDir);
    const port = status.items.find((i) => i.name === topo.hostVmIf && i.netns === undefined);
    assert.equal(port?.link?.qdiscs[0]?.netem?.delayUs, 500);
    assert.deepEqual(status.impairments.vm, { delayUs: 500 });

    await applyImpairment(topo, 'vm', { lossPct: 100 });
    const lost = await startCapture(topo.vmNetns, topo.vmIf, 20, 2, scratch);
    replay(topo.pubNetns, topo.pubIf, TAGGED_PCAP, 20);
    assert.deepEqual(countSv(await lost.done), { tagged: 0, untagged: 0, tagChanged: 0 });

    await clearImpairment(topo, 'vm');
    status = await labStatus(topo.runDir);
    assert.deepEqual(status.impairments, {});
    assert.deepEqual(await sendAndCapture(topo, 20, scratch), { tagged: 20, untagged: 20, tagChanged: 0 });
  });
});

test('lab up with an impairment it cannot apply rolls back everything and says why', { skip }, async (t) => {
  const prefix = uniquePrefix('r');
  const runDir = tempRunDir('r');
  try {
    let up;
    try {
      up = await labUp({ switch: 'ovs', runDir, prefix, impairments: { pub: { delayUs: 500, jitterUs: 100 } } });
    } catch (e) {
      assert.ok(e instanceof SvtraceError && e.code === 'LAB_UP_FAILED', String(e));
      assert.ok(e.cause instanceof SvtraceError && e.cause.code === 'LAB_NETEM_UNSUPPORTED', String(e.cause));
      assert.deepEqual(leftovers(prefix, runDir), []);
      t.diagnostic('no netem here: the whole lab was rolled back');
      return;
    }
    assert.equal(up.topology.pubNetns, `${prefix}-pub`);
    const status = await labStatus(runDir);
    const pub = status.items.find((i) => i.name === up.topology.pubIf);
    assert.deepEqual(pub?.link?.qdiscs[0]?.netem && { d: pub.link.qdiscs[0].netem.delayUs, j: pub.link.qdiscs[0].netem.jitterUs }, { d: 500, j: 100 });
    await labDown(runDir);
    assert.deepEqual(leftovers(prefix, runDir), []);
  } finally {
    await labDown(runDir).catch(() => undefined);
    removeDir(runDir);
  }
});

test('ovs-vswitchd killed with -9: status shows it, down still removes its persistent taps', { skip }, async (t) => {
  await withLab(t, 'z', { verifyForwarding: false }, async (topo) => {
    const pid = topo.ovs?.pids['ovs-vswitchd'];
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    const status = await labStatus(topo.runDir);
    assert.equal(status.healthy, false);
    assert.equal(status.items.find((i) => i.name === 'ovs-vswitchd')?.present, false);
    assert.equal(status.items.find((i) => i.kind === 'bridge')?.present, false);
    // the userspace datapath's taps outlive their process
    assert.equal(status.items.find((i) => i.name === 'ovs-netdev')?.present, true);
  });
});

function resourceCount(runDir: string): number | 'up' {
  try {
    const s = JSON.parse(readFileSync(statePath(runDir), 'utf8')) as { phase: string; resources: unknown[] };
    return s.phase === 'up' ? 'up' : s.resources.length;
  } catch {
    return 0; // not there yet, or claimed but still empty
  }
}

// state order for OVS: netns, netns, veth, veth, ovs dir, ovsdb-server, tap + ovs-vswitchd, bridge
const KILL_POINTS: Array<number | 'up'> = [1, 3, 5, 6, 8, 9, 'up'];

test('kill -9 of lab up at each step: status says crashed, down leaves nothing behind', { skip, timeout: 120_000 }, async (t) => {
  for (const killAt of KILL_POINTS) {
    const prefix = uniquePrefix('k');
    const runDir = tempRunDir('k');
    try {
      const child = spawn(process.execPath, [...process.execArgv, UP_CHILD, runDir, prefix, 'ovs'], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      let seen: number | 'up' = 0;
      let finished = false;
      void exited.then(() => (finished = true));
      while (!finished) {
        seen = resourceCount(runDir);
        if (seen === 'up' || (killAt !== 'up' && seen >= killAt)) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      child.kill('SIGKILL');
      await exited;
      const status = await labStatus(runDir);
      t.diagnostic(`kill at ${String(killAt)}: killed with ${String(seen)} resource(s) recorded, status ${status.phase}`);
      assert.ok(status.phase === (seen === 'up' ? 'up' : 'crashed'), status.phase);
      const down = await labDown(runDir);
      assert.equal(down.wasUp, true);
      assert.deepEqual(leftovers(prefix, runDir), [], `after a kill at ${String(killAt)}`);
      assert.equal((await labDown(runDir)).wasUp, false, 'down is idempotent');
    } finally {
      await labDown(runDir).catch(() => undefined);
      removeDir(runDir);
    }
  }
});
