/**
 * The hypervisor role on the one-machine lab (publisher → Linux bridge →
 * VM): 8 streams × 4000/s for 5 s, T1 and T2 from eBPF for ≥ 99.9 % of the
 * published samples, each joined to its T0, with T2 after T1. Points are
 * joined on (svID, smpCnt) and the nearest time (they lie microseconds
 * apart, samples of the same smpCnt a second apart).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { labDown, labUp } from '../../src/lab/index.ts';
import { startTrace } from '../../src/trace/index.ts';
import { openRecordWriter, recordSql } from '../../src/record/index.ts';
import { runPublish } from '../../src/publish/run.ts';
import { frameTemplate } from '../../src/publish/frames.ts';
import { layoutFromFrame } from '../../src/trace/layout.ts';
import { demoStreams } from '../../src/demo/run.ts';
import { cannotTrace } from './lab.ts';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** The kernel's own drop counters: backlog drops (softnet_stat, all CPUs) and a link's rx/tx drops. */
function kernelDrops(links: Array<{ name: string; netns?: string }>): Record<string, number> {
  const out: Record<string, number> = {};
  out.backlog = readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n')
    .reduce((n, line) => n + parseInt(line.split(/\s+/)[1] ?? '0', 16), 0);
  for (const { name, netns } of links) {
    const argv = [...(netns ? ['-n', netns] : []), '-s', '-j', 'link', 'show', 'dev', name];
    const [link] = JSON.parse(execFileSync('ip', argv, { encoding: 'utf8' })) as Array<{ stats64: { rx: { packets: number; dropped: number }; tx: { packets: number; dropped: number } } }>;
    const s = link!.stats64;
    Object.assign(out, { [`${name}.rx`]: s.rx.packets, [`${name}.rxDrop`]: s.rx.dropped, [`${name}.tx`]: s.tx.packets, [`${name}.txDrop`]: s.tx.dropped });
  }
  return out;
}

const skip = cannotTrace() ?? false;

test('hypervisor role in the lab: T1 and T2 for ≥ 99.9 % of 160 000 samples, joined to T0, T2 > T1', { skip, timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-roles-'));
  const runDir = join(dir, 'lab');
  t.after(async () => { await labDown(runDir).catch(() => undefined); rmSync(dir, { recursive: true, force: true }); });
  const { topology: lab } = await labUp({ runDir, switch: 'bridge', prefix: `tr${process.pid % 1000}` });
  const streams = demoStreams(8);
  const writer = await openRecordWriter(join(dir, 'trace'), { role: 'trace', points: ['T1', 'T2'], clock: { name: 'realtime' } });
  const session = await startTrace({
    role: 'hypervisor', ingress: { name: lab.hostPubIf }, vmPort: { name: lab.hostVmIf },
    layouts: streams.map((s) => layoutFromFrame(frameTemplate(s).bytes)),
  }, { onPoint: (e) => writer.append(e.point, e.svId, e.appId, e.smpCnt, e.iter, e.tNs, 'bpf', e.cpu) }, { stopOnSignals: false });
  const links = [{ name: lab.pubIf, netns: lab.pubNetns }, { name: lab.hostPubIf }, { name: lab.hostVmIf }];
  const before = kernelDrops(links);
  let summary;
  try {
    await runPublish({ streams, ifname: lab.pubIf, netns: lab.pubNetns, durationS: 5, recordDir: join(dir, 'pub') });
  } finally {
    summary = await session.stop();
    await writer.close();
  }
  const after = kernelDrops(links);
  const kernel = Object.entries(after).map(([k, v]) => `${k} +${v - (before[k] ?? 0)}`).join(', ');
  const points = summary.points.map((p) => `${p.name}: ${p.frames} frames (kernel ${p.kernelFrames ?? '?'}), ${p.events} events`).join('; ');
  const why = `lost ${summary.lostEvents} events, ${summary.lostLines} lines, skipped runs ${summary.skippedRuns ?? '?'}; ${points}; kernel counters: ${kernel}`;
  t.diagnostic(why);
  const db = await (await DuckDBInstance.create(':memory:')).connect();
  await db.run(`CREATE VIEW p AS ${await recordSql([join(dir, 'pub'), join(dir, 'trace')])}`);
  const [row] = (await db.runAndReadAll(`
    WITH t0 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T0'),
         t1 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T1'),
         t2 AS (SELECT sv_id, smp_cnt, t_ns FROM p WHERE point = 'T2'),
         j AS (SELECT t0.sv_id, t0.t_ns AS a, t1.t_ns AS b, t2.t_ns AS c FROM t0
               JOIN t1 ON t1.sv_id = t0.sv_id AND t1.smp_cnt = t0.smp_cnt AND abs(t1.t_ns - t0.t_ns) < 100000000
               JOIN t2 ON t2.sv_id = t0.sv_id AND t2.smp_cnt = t0.smp_cnt AND abs(t2.t_ns - t1.t_ns) < 100000000)
    SELECT (SELECT count(*) FROM t0), count(DISTINCT (sv_id, a)), count(*) FILTER (WHERE c <= b), count(*) FILTER (WHERE b < a)
    FROM j`)).getRows();
  const [published, joined, t2NotAfterT1, t1BeforeT0] = row!.map(Number);
  assert.equal(published, 160_000);
  assert.ok(joined! >= 0.999 * published!, `${joined} of ${published} samples have T0, T1 and T2 (${why})`);
  assert.equal(t2NotAfterT1, 0, 'T2 comes after T1');
  assert.equal(t1BeforeT0, 0, 'T1 comes after T0');
});
