/**
 * The whole path of a SEAPATH hypervisor on one machine: publish in the
 * lab's publisher namespace, through Open vSwitch (userspace datapath) in the
 * root namespace, subscribe in the "vm" namespace.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { haveTool, isRoot } from '../helpers/cli.ts';
import { labDown, labUp } from '../../src/lab/index.ts';
import { recordSql } from '../../src/record/index.ts';
import { runPublish } from '../../src/publish/run.ts';
import { runSubscribe } from '../../src/subscribe/run.ts';
import { DEFAULT_WAVEFORM, expandStreams } from '../../src/publish/streams.ts';

const skipBase = !isRoot() ? 'needs root: network namespaces, AF_PACKET' : false;
const skip = skipBase || (!haveTool('ovs-vswitchd') ? 'needs Open vSwitch (apt-get install openvswitch-switch)'
  : existsSync('/sys/class/net/ovs-netdev') ? 'another Open vSwitch userspace datapath is running in this namespace (ovs-netdev exists); only one fits'
  : false);

async function labRun(t: TestContext, sw: 'ovs' | 'bridge', strictLatency: boolean): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-lab-wire-'));
  const runDir = join(dir, 'lab');
  t.after(async () => { await labDown(runDir).catch(() => undefined); if (!process.env.SVTRACE_KEEP) rmSync(dir, { recursive: true, force: true }); });
  const { topology: lab } = await labUp({ runDir, prefix: `p${sw[0]}${process.pid % 1000}`, switch: sw });
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  const sub = runSubscribe({ ifname: lab.vmIf, netns: lab.vmNetns, streams: [], durationS: 60, idleStopS: 1.5, recordDir: join(dir, 'sub'), onReady: ready });
  await isReady;
  const streams = expandStreams({
    count: 8, svIdPattern: 'MU{n:02}', appIdBase: 0x4000, dstMacBase: '01:0c:cd:04:00:00', srcMacBase: '02:53:56:00:00:01',
    vlan: { id: 0, priority: 4 }, freqHz: 50, samplesPerCycle: 80, asdusPerFrame: 1, confRev: 1, smpSynch: 2, simulated: false, waveform: DEFAULT_WAVEFORM,
  });
  const pub = await runPublish({ streams, ifname: lab.pubIf, netns: lab.pubNetns, durationS: 5, recordDir: join(dir, 'pub') });
  const got = await sub;
  assert.equal(pub.framesSent, 160_000);
  for (const s of got.streams) {
    assert.equal(s.missing, 0, `${s.svId} missing ${s.missing} (gaps ${JSON.stringify(s.gaps.slice(0, 5))})`);
    assert.equal(s.duplicates, 0, s.svId);
  }
  assert.equal(got.samples, 160_000);
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  await db.run(`CREATE VIEW p AS ${await recordSql([join(dir, 'pub'), join(dir, 'sub')])}`);
  const [row] = (await db.runAndReadAll(`
    WITH t0 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T0'), t3 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T3')
    SELECT count(DISTINCT (t0.sv_id, t0.t_ns)), min(t3.t_ns - t0.t_ns), max(t3.t_ns - t0.t_ns), count(*) FILTER (WHERE t3.t_ns - t0.t_ns >= 10000000)
    FROM t0 JOIN t3 ON t0.sv_id = t3.sv_id AND t0.smp_cnt = t3.smp_cnt AND abs(t3.t_ns - t0.t_ns) < 500000000`)).getRows();
  const [joined, minNs, maxNs, over10ms] = row!.map(Number);
  assert.equal(joined, 160_000);
  assert.ok(minNs! > 0, `min T3 − T0 ${minNs} ns`);
  t.diagnostic(`${sw}: T3 − T0 max ${(maxNs! / 1e6).toFixed(2)} ms, ${over10ms} of 160000 samples ≥ 10 ms`);
  if (strictLatency) assert.equal(over10ms, 0, `${over10ms} samples took ≥ 10 ms (max ${(maxNs! / 1e6).toFixed(1)} ms)`);
}

test('lab with a Linux bridge: 8 streams × 4000/s for 5 s, every sample once, T0 and T3 join on all, 0 < T3 − T0 < 10 ms', { skip: skipBase }, async (t) => {
  await labRun(t, 'bridge', true);
});

// Open vSwitch's userspace datapath (no DPDK, no kernel module here) reads each port with one
// thread; on a shared 2-vCPU VM it runs at its limit at 32 000 frames/s, so a stall queues frames
// for tens of ms (seen: up to 155 ms). No sample may be lost; the latency is reported, not bounded.
test('lab with Open vSwitch (userspace datapath): 8 streams × 4000/s for 5 s, every sample once, T0 and T3 join on all, T3 > T0', { skip }, async (t) => {
  await labRun(t, 'ovs', false);
});
