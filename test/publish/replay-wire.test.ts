/**
 * `publish --pcap` on a real wire: every public capture in ../shared/fixtures
 * replayed over a veth pair between two network namespaces, received by
 * `subscribe`. The subscriber gets every frame byte for byte and every ASDU
 * with its identity (svID, APPID, smpCnt), as `inspect` of the file says;
 * T0 of the replay joins T3 on every sample; a looped replay has no gap;
 * bad input (no SV, a cut file on stdin, frames over the MTU) ends as the
 * issue asks; the config keys do what the flags do; a record on a full disk
 * stops even a forever loop at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { fixture, isRoot, runCli } from '../helpers/cli.ts';
import { makeVethPair, type VethPair } from '../helpers/netns.ts';
import { smallDisk } from '../helpers/tmpfs.ts';
import { recordSql } from '../../src/record/index.ts';
import { runReplay, type ReplayOptions } from '../../src/publish/replay.ts';
import { runSubscribe, type SubscribeResult } from '../../src/subscribe/run.ts';
import { inspectCapture, type StreamReport } from '../../src/capture/inspect.ts';
import { capturePackets, writeCaptureFile } from '../../src/pcap/index.ts';
import { encodeFrame, encodeLe } from '../../src/sv/index.ts';

const skip = !isRoot() ? 'needs root: creates network namespaces and AF_PACKET sockets' : false;

async function subscribeWhile<T>(pair: VethPair, dir: string, work: () => Promise<T>, durationS = 60): Promise<{ sub: SubscribeResult; work: T }> {
  mkdirSync(dir, { recursive: true });
  let ready!: () => void;
  const isReady = new Promise<void>((r) => { ready = r; });
  const sub = runSubscribe({ ifname: pair.ifB, netns: pair.nsB, streams: [], durationS, idleStopS: 1, pcapPath: join(dir, 'rx.pcapng'), recordDir: join(dir, 'sub'), onReady: ready });
  await isReady;
  const w = await work();
  return { sub: await sub, work: w };
}

async function query(dirs: string[], sql: string): Promise<unknown[][]> {
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  await db.run(`CREATE VIEW p AS ${await recordSql(dirs)}`);
  return (await db.runAndReadAll(sql)).getRows();
}

async function frames(path: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const p of capturePackets(path)) out.push(p.data);
  return out;
}

/** What identifies a stream and its samples in inspect's report (timing left out). */
const identity = (s: StreamReport) => ({
  svId: s.svId, appId: s.appId, srcMac: s.srcMac, dstMac: s.dstMac, vlan: s.vlan, frames: s.frames, samples: s.samples, asdusPerFrame: s.asdusPerFrame,
  smpCnt: s.smpCnt, wraps: s.wraps, missing: s.missing, duplicates: s.duplicates, outOfOrder: s.outOfOrder, confRev: s.confRev, smpSynch: s.smpSynch,
});

/**
 * A capture the public ones lack: several APPIDs (two streams share one),
 * 802.1Q and untagged frames, 4 and 2 ASDUs per frame, a 4-byte trailer,
 * 4000 samples/s for 0.5 s, smpCnt wrapping at 4000.
 */
async function mixedCapture(path: string): Promise<void> {
  const kinds = [
    { svId: 'MIXED/A4', appId: 0x4000, asdus: 4, vlan: { priority: 4, dei: false, id: 5 }, trailer: 0 },
    { svId: 'MIXED/B1', appId: 0x4001, asdus: 1, vlan: undefined, trailer: 4 },
    { svId: 'MIXED/C2', appId: 0x4000, asdus: 2, vlan: { priority: 6, dei: false, id: 0 }, trailer: 0 },
  ];
  const packets = [];
  for (let k = 3800; k < 3800 + 2000; k++) {
    for (const [i, s] of kinds.entries()) {
      if (k % s.asdus !== 0) continue;
      const body = encodeFrame({
        dst: '01:0c:cd:04:00:01', src: `02:00:00:00:00:0${i + 1}`, appId: s.appId, reserved1: 0, simulated: false, reserved2: 0, ...(s.vlan ? { vlan: s.vlan } : {}),
        asdus: Array.from({ length: s.asdus }, (_, a) => ({ svId: s.svId, smpCnt: (k + a) % 4000, confRev: 1, smpSynch: 2, seqData: encodeLe([k, a, 3, 4, 5, 6, 7, 8]) })),
      });
      const data = new Uint8Array(body.length + s.trailer);
      data.set(body); data.fill(0xa5, body.length);
      packets.push({ tsNs: 1_700_000_000_000_000_000n + BigInt(k - 3800) * 250_000n + BigInt(i) * 1000n, data });
    }
  }
  await writeCaptureFile(path, packets, { format: 'pcapng' });
}

const FIXTURES: Array<[string, Partial<ReplayOptions>]> = [
  ['SV_Normal_Traffic.pcap', {}],
  ['50new.pcap', {}],
  ['pcapCRC32.pcap', {}],
  ['pcapQual.pcap', {}],
  ['pcap4000.pcap', { speed: 20 }], // 42.7 s captured
];

test('every public capture (and one with several APPIDs, VLANs, ASDUs per frame) replays byte for byte; the subscriber gets every ASDU with its identity, as inspect of the file says; T0 joins T3 on all', { skip }, async (t) => {
  const pair = makeVethPair('rw');
  const root = mkdtempSync(join(tmpdir(), 'svtrace-replay-wire-'));
  t.after(() => { pair.remove(); rmSync(root, { recursive: true, force: true }); });
  const mixed = join(root, 'mixed.pcapng');
  await mixedCapture(mixed);
  for (const [name, opts] of [...FIXTURES, ['mixed.pcapng', {}] as const]) {
    const dir = join(root, `run-${name}`);
    const file = name === 'mixed.pcapng' ? mixed : fixture(name);
    const { sub, work: pub } = await subscribeWhile(pair, dir, () => runReplay({ path: file, ifname: pair.ifA, netns: pair.nsA, recordDir: join(dir, 'pub'), fifoPriority: 10, ...opts }));
    const truth = await inspectCapture(file);
    const asdus = truth.streams.reduce((n, s) => n + s.samples, 0);
    assert.equal(pub.framesSent, truth.svFrames, name);
    assert.equal(pub.tx.sendErrorsTotal, 0, name);
    assert.equal(pub.samplesRecorded, asdus, `${name}: T0 of every ASDU`);
    assert.equal(sub.samples, asdus, name);
    const got = await inspectCapture(join(dir, 'rx.pcapng'));
    assert.deepEqual(got.streams.map(identity), truth.streams.map(identity), `${name}: identities as inspect of the file`);
    const sent = await frames(file), received = await frames(join(dir, 'rx.pcapng'));
    assert.equal(received.length, sent.length, name);
    for (let i = 0; i < sent.length; i++) assert.deepEqual(received[i], sent[i], `${name}: frame ${i + 1} byte for byte`);
    const [row] = await query([join(dir, 'pub'), join(dir, 'sub')], `
      WITH t0 AS (SELECT sv_id, app_id, smp_cnt, iter, t_ns FROM p WHERE point = 'T0'),
           t3 AS (SELECT sv_id, app_id, smp_cnt, iter, t_ns FROM p WHERE point = 'T3')
      SELECT (SELECT count(*) FROM t0), count(*), min(t3.t_ns - t0.t_ns), max(t3.t_ns - t0.t_ns)
      FROM t0 JOIN t3 USING (sv_id, app_id, smp_cnt, iter)`);
    const [n0, joined, minNs, maxNs] = row!.map(Number);
    assert.equal(n0, asdus, name);
    assert.equal(joined, asdus, `${name}: every T0 joins its T3 on (svID, APPID, smpCnt, iter)`);
    assert.ok(minNs! > 0 && maxNs! < 50e6, `${name}: T3 − T0 from ${minNs} to ${maxNs} ns`);
    if (name === 'SV_Normal_Traffic.pcap' || name === 'mixed.pcapng') {
      // real-time captures replayed at their own speed: `report` joins publisher and subscriber by time, like any run
      const rep = await runCli(['report', join(dir, 'pub'), join(dir, 'sub'), '--json', '--out', join(dir, 'report')], { timeoutMs: 120_000 });
      assert.ok(rep.code === 0 || rep.code === 1, rep.stderr); // 1: a latency verdict failed on this shared machine
      const res = JSON.parse(rep.stdout) as { samples: number; streams: Array<{ svId: string; samples: number; missing: number }> };
      assert.equal(res.samples, asdus, `${name}: report joins every sample`);
      for (const st of res.streams) assert.equal(st.missing, 0, `${name}: ${st.svId} missing in the report`);
    }
  }
  // copies of that mixed capture, looped: each copy its own stream, every ASDU received and joined
  const dir = join(root, 'copies');
  const { sub, work: pub } = await subscribeWhile(pair, dir, () => runReplay({ path: mixed, ifname: pair.ifA, netns: pair.nsA, copies: 3, svIdPattern: '{svid}#{n}', loops: 2, speed: 2, recordDir: join(dir, 'pub'), fifoPriority: 10 }));
  const perLoop = 2000 * 3; // samples of the three streams
  assert.equal(pub.samplesRecorded, 2 * 3 * perLoop);
  assert.equal(sub.samples, 2 * 3 * perLoop);
  assert.deepEqual(sub.streams.map((s) => [s.svId, s.samples, s.missing, s.duplicates]).sort(), ['A4', 'B1', 'C2'].flatMap((k) => [1, 2, 3].map((n) => [`MIXED/${k}#${n}`, 4000, 0, 0])).sort());
  const [row] = await query([join(dir, 'pub'), join(dir, 'sub')], `
    SELECT count(*) FROM (SELECT * FROM p WHERE point = 'T0') t0 JOIN (SELECT * FROM p WHERE point = 'T3') t3 USING (sv_id, app_id, smp_cnt, iter)`);
  assert.equal(Number(row![0]), 2 * 3 * perLoop, 'every T0 of every copy joins its T3');
});

test('a looped replay shows no gap: smpCnt continues across the seams (wrapping at 4800), timing too', { skip }, async (t) => {
  const pair = makeVethPair('rl');
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-replay-loop-'));
  t.after(() => { pair.remove(); rmSync(dir, { recursive: true, force: true }); });
  // no --spin: a SCHED_FIFO thread spinning through a 52 µs period starves this CPU's softirq, and the receiver's timestamps with it
  const { sub, work: pub } = await subscribeWhile(pair, dir, () => runReplay({ path: fixture('SV_Normal_Traffic.pcap'), ifname: pair.ifA, netns: pair.nsA, loops: 3, speed: 4, fifoPriority: 10 }));
  assert.equal(pub.loops, 3);
  assert.equal(pub.framesSent, 3 * 10_161);
  assert.equal(sub.samples, 3 * 10_161);
  const s = sub.streams[0]!;
  assert.deepEqual([sub.streams.length, s.missing, s.duplicates, s.outOfOrder], [1, 0, 0, 0]);
  const rx = await inspectCapture(join(dir, 'rx.pcapng'));
  const r = rx.streams[0]!;
  assert.deepEqual([r.smpCnt, r.missing, r.wraps], [{ min: 0, max: 4799 }, 0, Math.floor((280 + 3 * 10_161 - 1) / 4800)]);
  // the seams: the gap between a loop's last frame and the next loop's first is a frame interval, not a pause
  // (the exact schedule at the seam is checked in replay-feed.test.ts; here the wire, on a shared machine:
  // a seam gap may not stand out from the other gaps)
  const times: bigint[] = [];
  for await (const p of capturePackets(join(dir, 'rx.pcapng'))) times.push(p.tsNs);
  const seams = [10_161, 2 * 10_161];
  let worstElsewhere = 0;
  for (let k = 1; k < times.length; k++) if (!seams.includes(k)) worstElsewhere = Math.max(worstElsewhere, Number(times[k]! - times[k - 1]!));
  for (const k of seams) {
    const gapNs = Number(times[k]! - times[k - 1]!);
    assert.ok(gapNs < Math.max(2e6, worstElsewhere), `seam gap ${gapNs / 1e3} µs (period ${(208.33 / 4).toFixed(1)} µs, worst other gap ${worstElsewhere / 1e3} µs)`);
  }
  const spanS = Number(times.at(-1)! - times[0]!) / 1e9;
  assert.ok(Math.abs(spanS - (3 * 10_161 - 1) / 4800 / 4) < 0.05, `three loops at ×4 last ${spanS} s`);
});

test('CLI: no SV → exit 2; a cut capture on stdin → the frames before the cut, then exit 2 (0 with --skip-bad); frames over the MTU → exit 2, nothing sent; config keys = flags', { skip }, async (t) => {
  const pair = makeVethPair('rc');
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-replay-cli-'));
  t.after(() => { pair.remove(); rmSync(dir, { recursive: true, force: true }); });
  const on = ['--netns', pair.nsA, '-i', pair.ifA];
  // no SV at all
  const arp = new Uint8Array(60); arp[12] = 0x08; arp[13] = 0x06;
  const noSv = join(dir, 'arp.pcap');
  await writeCaptureFile(noSv, [{ tsNs: 1n, data: arp }], { format: 'pcap' });
  const r0 = await runCli(['publish', ...on, '--pcap', noSv]);
  assert.equal(r0.code, 2, r0.stderr);
  assert.match(r0.stderr, /REPLAY_NO_SV: .*holds no Sampled Values frame to replay \(1 packets: 1 not SV/);
  // cut in the middle of packet 3001, through stdin
  const cut = readFileSync(fixture('SV_Normal_Traffic.pcap')).subarray(0, 24 + 3000 * 136 + 50);
  for (const [flags, code] of [[[], 2], [['--skip-bad'], 0]] as const) {
    const sub = join(dir, `cut${code}`);
    const { sub: got, work: r } = await subscribeWhile(pair, sub, () => runCli(['publish', ...on, '--pcap', '-', '--speed', '4', ...flags], { input: cut }));
    assert.equal(r.code, code, r.stderr);
    assert.equal(got.samples, 3000, 'every frame before the cut');
    assert.match(r.stderr, /cut short after packet 3000/);
    assert.match(r.stdout, /3 000 SV frames of 3 000 packets per loop/);
  }
  // frames of 120 bytes (tagged) over an MTU of 100
  execFileSync('ip', ['-n', pair.nsA, 'link', 'set', pair.ifA, 'mtu', '100']);
  const { sub: none, work: big } = await subscribeWhile(pair, join(dir, 'mtu'), () => runCli(['publish', ...on, '--pcap', fixture('SV_Normal_Traffic.pcap')]), 4);
  execFileSync('ip', ['-n', pair.nsA, 'link', 'set', pair.ifA, 'mtu', '1500']);
  assert.equal(big.code, 2, big.stderr);
  assert.match(big.stderr, /REPLAY_FRAME_TOO_LARGE: packet 1 is a 120-byte frame: the interface's MTU of 100 takes frames of at most 118 bytes/);
  assert.equal(none.frames, 0, 'nothing was sent, nothing was cut');
  // the config keys
  const cfg = join(dir, 'replay.toml');
  writeFileSync(cfg, `[publish]\ninterface = "${pair.ifA}"\nnetns = "${pair.nsA}"\npcap = "${fixture('50new.pcap')}"\nloop = 2\nspeed = 4\nrepace = false\n`);
  const { sub: viaCfg, work: rc } = await subscribeWhile(pair, join(dir, 'cfg'), () => runCli(['publish', '-c', cfg, '--json']));
  assert.equal(rc.code, 0, rc.stderr);
  const res = JSON.parse(rc.stdout) as { loops: number; speed: number; framesSent: number };
  assert.deepEqual([res.loops, res.speed, res.framesSent], [2, 4, 160]);
  assert.deepEqual([viaCfg.samples, viaCfg.streams[0]!.missing], [160, 0]);
  const misuse = await runCli(['publish', ...on, '--loop', '2']);
  assert.equal(misuse.code, 2);
  assert.match(misuse.stderr, /--loop applies to a replayed capture, and no --pcap was given/);
});

test('publish --pcap --record on a disk that fills stops at once: RECORD_DISK_FULL, exit 3', { skip, timeout: 150_000 }, async (t) => {
  const disk = smallDisk('1m');
  if (typeof disk === 'string') { t.skip(disk); return; }
  const pair = makeVethPair('rf');
  t.after(() => { pair.remove(); disk.remove(); });
  const started = Date.now();
  let errorAt = 0;
  const r = await runCli(['publish', '--netns', pair.nsA, '-i', pair.ifA, '--pcap', fixture('SV_Normal_Traffic.pcap'), '--loop', 'forever', '--streams', '8', '--record', join(disk.dir, 'rec')],
    { timeoutMs: 120_000, onStderr: (s) => { if (!errorAt && /RECORD_DISK_FULL/.test(s)) errorAt = Date.now(); } });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /RECORD_DISK_FULL/);
  assert.doesNotMatch(r.stderr, /DEP0168|Uncaught N-API/);
  assert.ok(errorAt > 0 && Date.now() - errorAt < 3000, 'exits within 3 s of the error');
  assert.ok(Date.now() - started < 60_000, 'a forever loop stops when the disk fills');
});
