// The VM role inside the real QEMU guest with the readable engine (bpftrace)
// and the seed's own kprobes (issue 12): the guest's kernel has kprobes, this
// host's has none, so this is where they run for real. In the guest, tcpdump
// reads eth0 through a PACKET_RX_RING (kprobe:tpacket_rcv fires) and
// `svtrace subscribe` through recvmsg on a raw packet socket (packet_rcv
// rewinds the frame to its MAC header: kprobe:skb_push fires); every frame is
// released at the end (kprobe:consume_skb, once per clone). The tracer runs
// T3 (tracepoint), T4 (the subscriber's recvmsg) and the three kprobe points;
// each must see at least 99 % of the samples T3 saw, after T3 on the guest's
// clock. bpftrace takes minutes to start under TCG: the test waits up to 15.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { labDown, labUp } from '../../src/lab/index.ts';
import { inGuest, vmPhases } from '../../src/demo/vm.ts';
import { svtraceRoot } from '../../src/lab/qemu.ts';
import { frameTemplate } from '../../src/publish/frames.ts';
import { writeCaptureFile } from '../../src/pcap/index.ts';
import { runPublish } from '../../src/publish/run.ts';
import { recordSql } from '../../src/record/index.ts';
import { kernelCountsSkips } from '../../src/trace/skips.ts';
import { leftovers, qemuSkipReason, removeDir, tempRunDir, uniquePrefix } from './helpers/lab-env.ts';

const skip = qemuSkipReason() ?? false;
const KPROBES = [['Tpush', 'kprobe:skb_push'], ['Tring', 'kprobe:tpacket_rcv'], ['Tfree', 'kprobe:consume_skb']] as const;

test('in the guest, bpftrace runs the seed\'s kprobes (skb_push, tpacket_rcv, consume_skb) beside T3 and T4: each sees the samples T3 saw, after it', { skip, timeout: 25 * 60_000 }, async (t) => {
  const prefix = uniquePrefix('gk');
  const runDir = tempRunDir('gkprobe');
  const jobs: Array<{ signal: (s: 'SIGINT' | 'SIGTERM' | 'SIGKILL') => void }> = [];
  t.after(async () => {
    for (const j of jobs) j.signal('SIGKILL');
    await labDown(runDir).catch(() => undefined);
    const left = leftovers(prefix, runDir);
    removeDir(runDir);
    assert.deepEqual(left, [], 'lab down left these behind');
  });
  const lab = (await labUp({ vm: 'qemu', switch: 'bridge', runDir, prefix, tapQueueFrames: 20_000 })).topology;
  const vm = lab.vm!;
  const stream = vmPhases({ asdus: 8 })[0]!.stream;
  const layouts = join(vm.share, 'layouts.pcap');
  await writeCaptureFile(layouts, [{ tsNs: 0n, data: frameTemplate(stream).bytes }], { format: 'pcap-ns' });
  const config = join(vm.share, 'kprobes.toml');
  writeFileSync(config, KPROBES.map(([name, probe]) => `[[trace.points]]\nname = "${name}"\nprobe = "${probe}"\ninterface = "${vm.guestIf}"\nafter = "T3"\n`).join('\n'));
  const cli = join(svtraceRoot(), 'bin', 'svtrace.js');

  const ring = await inGuest(runDir, ['tcpdump', '-i', vm.guestIf, '-w', '/dev/null'], /listening on/);
  jobs.push(ring.h);
  const sub = await inGuest(runDir, [cli, 'subscribe', '-i', vm.guestIf, '-d', '1500'], /receiving on/);
  jobs.push(sub.h);
  const record = join(vm.share, 'trace-vm');
  const tracer = await inGuest(runDir, [cli, 'trace', '--engine', 'bpftrace', '--config', config, '--machine', 'vm', '--vm-if', vm.guestIf,
    '--subscriber-comm', 'svtrace-rx', '--layouts-from', layouts, '--record', record], /svtrace: tracing/);
  jobs.push(tracer.h);
  const started = Date.now();
  const attached = await Promise.race([tracer.ready.then(() => 'ready'), tracer.h.done.then((c) => `exited ${c}`), new Promise((r) => setTimeout(() => r('timeout'), 15 * 60_000).unref())]);
  assert.equal(attached, 'ready', `the guest's bpftrace attached (${tracer.output().slice(-600)})`);
  await Promise.all([ring.ready, sub.ready]);
  t.diagnostic(`bpftrace attached in the guest after ${((Date.now() - started) / 1000).toFixed(0)} s`);

  const pub = await runPublish({ streams: [stream], ifname: lab.pubIf, netns: lab.pubNetns, durationS: 4 });
  await new Promise((r) => setTimeout(r, 2000));
  tracer.h.signal('SIGINT');
  assert.equal(await tracer.h.done, 0, tracer.output().slice(-800));
  t.diagnostic(tracer.output().split('\n').filter((l) => /lost|skipped|warning/i.test(l)).join(' / '));

  const db = await (await DuckDBInstance.create(':memory:')).connect();
  await db.run(`CREATE VIEW p AS ${await recordSql([record])}`);
  const rows = (await db.runAndReadAll(`
    WITH t3 AS (SELECT iter, smp_cnt, min(t_ns) AS t FROM p WHERE point = 'T3' GROUP BY iter, smp_cnt)
    SELECT p.point, count(DISTINCT (p.iter, p.smp_cnt)), count(*), median(p.t_ns - t3.t)
    FROM p JOIN t3 USING (iter, smp_cnt) GROUP BY p.point ORDER BY p.point`)).getRows();
  const by = new Map(rows.map(([point, distinct, all, med]) => [String(point), { distinct: Number(distinct), rows: Number(all), medianNs: Number(med) }]));
  for (const [k, v] of by) t.diagnostic(`${k}: ${v.distinct} samples (${v.rows} rows), median ${(v.medianNs / 1000).toFixed(1)} µs after T3`);
  const sent = pub.framesSent * 8;
  const t3 = by.get('T3')?.distinct ?? 0;
  // bpftrace's tracepoint programs are skipped when the receive softirq interrupts another of its programs
  // (T4, Tfree in the subscriber's recvmsg) on the guest's one vCPU, and Linux 6.1 does not count those skips:
  // seen here, 10 frames of 2000 missing at T3. svtrace says so; the bpf engine does not skip (ground-truth test).
  assert.ok(t3 >= 0.99 * sent, `T3 saw ${t3} distinct samples of ${sent} sent`);
  if (!kernelCountsSkips(vm.kernelRelease)) assert.match(tracer.output(), /does not count the probe runs it skips/, `the guest's kernel (${vm.kernelRelease}) cannot count skipped runs, and the tracer says so`);
  for (const [name] of KPROBES) {
    const v = by.get(name);
    assert.ok(v, `${name} recorded samples (points: ${[...by.keys()].join(' ')})`);
    assert.ok(v.distinct >= 0.99 * t3, `${name}: ${v.distinct} of the ${t3} samples T3 saw`);
    assert.ok(v.medianNs > 0, `${name} comes after T3 (median ${v.medianNs} ns)`);
  }
  assert.ok((by.get('T4')?.distinct ?? 0) >= 0.99 * t3, 'T4 (the subscriber\'s recvmsg) saw the samples too');
});
