/**
 * Real SV on a real wire: `svtrace publish` in one network namespace,
 * `svtrace subscribe` in another, over a veth pair. Every sample arrives
 * once, T0 and T3 join on every sample, loss made by netem is reported
 * exactly, and tshark finds nothing malformed in what was published.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { haveTool, isRoot, runCli } from '../helpers/cli.ts';
import { makeVethPair } from '../helpers/netns.ts';
import { recordSql } from '../../src/record/index.ts';
import { runPublish } from '../../src/publish/run.ts';
import { runSubscribe } from '../../src/subscribe/run.ts';
import { DEFAULT_WAVEFORM, expandStreams } from '../../src/publish/streams.ts';

const skip = !isRoot() ? 'needs root: creates network namespaces and AF_PACKET sockets' : false;

const streams = (count: number) => expandStreams({
  count, svIdPattern: 'MU{n:02}', appIdBase: 0x4000, dstMacBase: '01:0c:cd:04:00:00', srcMacBase: '02:53:56:00:00:01',
  vlan: { id: 0, priority: 4 }, freqHz: 50, samplesPerCycle: 80, asdusPerFrame: 1, confRev: 1, smpSynch: 2, simulated: false, waveform: DEFAULT_WAVEFORM,
});

function haveNetem(): boolean {
  try { return /NETEM=[ym]/.test(execFileSync('sh', ['-c', 'zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)'], { encoding: 'utf8' })) || existsSync('/sys/module/sch_netem'); } catch { return false; }
}

async function publishAndSubscribe(pair: ReturnType<typeof makeVethPair>, dir: string, n: number, seconds: number, dropPercent = 0) {
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  const sub = runSubscribe({ ifname: pair.ifB, netns: pair.nsB, streams: [], durationS: seconds + 20, idleStopS: 1.5, recordDir: join(dir, 'sub'), onReady: ready });
  await isReady;
  const pub = await runPublish({ streams: streams(n), ifname: pair.ifA, netns: pair.nsA, durationS: seconds, recordDir: join(dir, 'pub'), dropPercent });
  return { pub, sub: await sub };
}

async function query(dirs: string[], sql: string): Promise<unknown[][]> {
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  await db.run(`CREATE VIEW p AS ${await recordSql(dirs)}`);
  return (await db.runAndReadAll(sql)).getRows();
}

test('8 streams × 4000/s for 5 s over veth: every sample once, T0 and T3 join on all, 0 < T3 − T0 < 10 ms', { skip }, async (t) => {
  const pair = makeVethPair('pw');
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-wire-'));
  t.after(() => { pair.remove(); rmSync(dir, { recursive: true, force: true }); });
  const { pub, sub } = await publishAndSubscribe(pair, dir, 8, 5);
  assert.equal(pub.framesSent, 160_000);
  assert.equal(pub.tx.sendErrorsTotal, 0);
  // The lag behind schedule is measured (a sleeping sender always wakes after its time) and kept in the manifest.
  assert.ok(pub.maxLagNs > 0 && pub.maxLagNs < 1e9, `max lag ${pub.maxLagNs} ns`);
  assert.ok(pub.framesLagging >= 0 && pub.framesLagging <= pub.framesSent);
  const counters = JSON.parse(readFileSync(join(dir, 'pub', 'manifest.json'), 'utf8')).counters;
  assert.equal(counters.maxLagNs, pub.maxLagNs);
  assert.equal(counters.framesLagging, pub.framesLagging);
  assert.equal(sub.samples, 160_000);
  assert.equal(sub.streams.length, 8);
  for (const s of sub.streams) {
    assert.equal(s.missing, 0, s.svId);
    assert.equal(s.duplicates, 0, s.svId);
    assert.equal(s.samples, 20_000, s.svId);
  }
  const [row] = await query([join(dir, 'pub'), join(dir, 'sub')], `
    WITH t0 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T0'),
         t3 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T3')
    SELECT count(DISTINCT (t0.sv_id, t0.t_ns)) AS joined, min(t3.t_ns - t0.t_ns), max(t3.t_ns - t0.t_ns),
           (SELECT count(*) FROM t0), (SELECT count(*) FROM t3)
    FROM t0 JOIN t3 ON t0.sv_id = t3.sv_id AND t0.smp_cnt = t3.smp_cnt AND abs(t3.t_ns - t0.t_ns) < 500000000`);
  const [joined, minNs, maxNs, n0, n3] = row!.map(Number);
  assert.equal(n0, 160_000);
  assert.equal(n3, 160_000);
  assert.equal(joined, 160_000, 'every T0 joins its T3');
  assert.ok(minNs! > 0, `T3 − T0 min ${minNs} ns`);
  assert.ok(maxNs! < 10_000_000, `T3 − T0 max ${maxNs} ns`);
});

async function checkLossReportedExactly(dir: string, sub: Awaited<ReturnType<typeof runSubscribe>>, published: number) {
  const lost = published - sub.samples;
  assert.ok(lost > 100 && lost < 800, `2 % loss lost ${lost} of ${published}`);
  // the truth: samples published (T0) that never arrived (no T3), before each stream's last received sample
  const rows = await query([join(dir, 'pub'), join(dir, 'sub')], `
    WITH t0 AS (SELECT sv_id, iter * 4000 + smp_cnt AS k FROM p WHERE point = 'T0'),
         t3 AS (SELECT sv_id, smp_cnt FROM p WHERE point = 'T3'),
         got AS (SELECT t0.sv_id, t0.k FROM t0 SEMI JOIN t3 ON t0.sv_id = t3.sv_id AND t0.k % 4000 = t3.smp_cnt),
         span AS (SELECT sv_id, min(k) AS lo, max(k) AS hi FROM got GROUP BY sv_id)
    SELECT span.sv_id, (span.hi - span.lo + 1) - count(got.k) FROM span JOIN got USING (sv_id) GROUP BY span.sv_id, span.lo, span.hi ORDER BY 1`);
  const truth = new Map(rows.map(([id, n]) => [String(id), Number(n)]));
  assert.equal(truth.size, sub.streams.length);
  for (const s of sub.streams) {
    assert.equal(s.missing, truth.get(s.svId), `${s.svId}: missing reported ${s.missing}, truth ${truth.get(s.svId)}`);
    assert.equal(s.gaps.reduce((m, g) => m + g.missing, 0), s.missing, 'the gaps listed add up to the missing count');
  }
}

test('loss made by tc netem is reported exactly: count and gaps', { skip: skip || (haveNetem() ? false : 'this kernel has no tc netem (CONFIG_NET_SCH_NETEM unset); the next test injects loss in the publisher instead') }, async (t) => {
  const pair = makeVethPair('pl');
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-loss-'));
  t.after(() => { pair.remove(); rmSync(dir, { recursive: true, force: true }); });
  execFileSync('ip', ['netns', 'exec', pair.nsA, 'tc', 'qdisc', 'add', 'dev', pair.ifA, 'root', 'netem', 'loss', '2%']);
  const { pub, sub } = await publishAndSubscribe(pair, dir, 2, 2);
  await checkLossReportedExactly(dir, sub, pub.framesSent);
});

test('loss left out by the publisher (--drop 2) is reported exactly by the subscriber: count and gaps', { skip }, async (t) => {
  const pair = makeVethPair('pd');
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-drop-'));
  t.after(() => { pair.remove(); rmSync(dir, { recursive: true, force: true }); });
  const { pub, sub } = await publishAndSubscribe(pair, dir, 2, 2, 2);
  assert.equal(pub.framesSent + pub.framesDropped, 16_000);
  await checkLossReportedExactly(dir, sub, 16_000);
});

test('what publish sends decodes in tshark with no malformed frame, and inspect measures its pacing', { skip: skip || (!haveTool('tshark') ? 'needs tshark (apt-get install tshark)' : false) }, async (t) => {
  const pair = makeVethPair('pc');
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-cap-'));
  t.after(() => { pair.remove(); rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'pub.pcapng');
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  const sub = runSubscribe({ ifname: pair.ifB, netns: pair.nsB, streams: [], durationS: 30, idleStopS: 1, pcapPath: file, onReady: ready });
  await isReady;
  const four = expandStreams({
    count: 4, svIdPattern: 'IED{n}/LD0', appIdBase: 0x4000, dstMacBase: '01:0c:cd:04:00:00', srcMacBase: '02:53:56:00:00:01',
    vlan: { id: 0, priority: 4 }, freqHz: 50, samplesPerCycle: 80, asdusPerFrame: 1, confRev: 1, smpSynch: 2, simulated: false,
    datSet: 'IED1LD0/LLN0$PhsMeas1', waveform: { ...DEFAULT_WAVEFORM, harmonics: [{ order: 5, percent: 4 }] },
  });
  await runPublish({ streams: four, ifname: pair.ifA, netns: pair.nsA, durationS: 1 });
  assert.equal((await sub).samples, 16_000);
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-e', 'sv.svID', '-e', '_ws.malformed', '-e', '_ws.expert'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const lines = out.replace(/\n$/, '').split('\n');
  assert.equal(lines.length, 16_000);
  const bad = lines.filter((l) => !/^IED[1-4]\/LD0\t\t$/.test(l));
  assert.deepEqual(bad.slice(0, 5), [], 'no malformed frame, no expert warning');
  const r = await runCli(['inspect', '--json', file]);
  const res = JSON.parse(r.stdout) as { streams: Array<{ svId: string; missing: number; pacingUs: { p50: number; p99: number } }> };
  assert.equal(res.streams.length, 4);
  for (const s of res.streams) {
    assert.equal(s.missing, 0);
    assert.ok(Math.abs(s.pacingUs.p50 - 250) < 50, `p50 gap ${s.pacingUs.p50} µs`);
  }
});
