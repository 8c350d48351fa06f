/**
 * Points along a path (T2 transmit, T3 receive, T4 in a subscriber reading by
 * recvmsg or from a PACKET_RX_RING), and the runner's behaviour when things
 * go wrong: lost output, signals, a bpftrace that does not stop. The path
 * tests run the default engine (bpf where it can run); the failure tests are
 * bpftrace's own and ask for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { probeCapabilities, type Capabilities } from '../../src/trace/capabilities.ts';
import { layoutFromFrame, type FrameLayout } from '../../src/trace/layout.ts';
import { startTrace, type PointEvent, type TraceWarning } from '../../src/trace/runner.ts';
import { cannotTrace, createLab, fixture, readFrames, sleep, type Lab, type Link } from './lab.ts';

const SKIP = cannotTrace();
const caps: Capabilities | null = SKIP ? null : await probeCapabilities();
const opts = { skip: SKIP ?? false, timeout: 180_000 };
const layouts: FrameLayout[] = SKIP ? [] : [layoutFromFrame((await readFrames('SV_Normal_Traffic.pcap'))[0]!)];

/** A subscriber in the receiver's namespace: an AF_PACKET socket (ETH_P_ALL) read by recv(), or a PACKET_RX_RING. */
const SUBSCRIBER = `
import ctypes, mmap, select, socket, struct, sys
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[2], 0))
if sys.argv[3] == 'ring':
    FR, NR = 2048, 512
    s.setsockopt(263, 5, struct.pack('IIII', 4096, NR * FR // 4096, FR, NR))
    m = mmap.mmap(s.fileno(), NR * FR)
    p = select.poll(); p.register(s, select.POLLIN)
    print('ready', flush=True)
    i = 0
    while True:
        if struct.unpack_from('Q', m, i * FR)[0] & 1:
            struct.pack_into('Q', m, i * FR, 0); i = (i + 1) % NR
        else:
            p.poll(1000)
else:
    print('ready', flush=True)
    while True:
        s.recv(4096)
`;

async function subscriber(lab: Lab, link: Link, comm: string, mode: 'recvmsg' | 'ring'): Promise<void> {
  const c = lab.spawnIn(link.rxNs, 'python3', ['-c', SUBSCRIBER, comm, link.rx, mode]);
  const [data] = await Promise.race([once(c.stdout!, 'data'), sleep(10_000).then(() => [Buffer.from('timeout')])]) as [Buffer];
  assert.equal(String(data).trim(), 'ready');
}

/** Events per point in time order: bpftrace reads one buffer per CPU, so lines from two CPUs may arrive out of order. */
function byPoint(events: PointEvent[]): Map<string, PointEvent[]> {
  const m = new Map<string, PointEvent[]>();
  for (const e of events) m.set(e.point, [...(m.get(e.point) ?? []), e]);
  for (const list of m.values()) list.sort((a, b) => (a.tMonoNs < b.tMonoNs ? -1 : a.tMonoNs > b.tMonoNs ? 1 : 0));
  return m;
}

for (const mode of ['recvmsg', 'ring'] as const) {
  test(`T2 (transmit), T3 (receive) and T4 (${mode} subscriber) see every frame, in that order`, opts, async () => {
    const lab = createLab(mode === 'ring' ? 'r' : 'm');
    const [link] = lab.links;
    try {
      const comm = `svsub${process.pid % 100000}`;
      await subscriber(lab, link!, comm, mode);
      const events: PointEvent[] = [];
      const session = await startTrace({
        vmPort: { name: link!.tx, netns: link!.txNs },
        vmInterface: { name: link!.rx, netns: link!.rxNs },
        subscriber: mode === 'ring' ? { mode } : { mode, comm },
        layouts,
      }, { onPoint: (e) => events.push(e) }, { capabilities: caps!, stopOnSignals: false });
      await lab.replay(link!, ['-q', '-L', '600', '--pps=4800', fixture('SV_Normal_Traffic.pcap')]);
      await sleep(500);
      const sum = await session.stop();
      const pts = byPoint(events);
      const detail = JSON.stringify(sum.points);
      for (const p of ['T2', 'T3', 'T4']) assert.equal(pts.get(p)?.length, 600, `${p}: ${pts.get(p)?.length} ${detail}`);
      const t = (p: string, i: number) => pts.get(p)![i]!;
      for (let i = 0; i < 600; i++) {
        assert.equal(t('T2', i).smpCnt, 280 + i, `T2 #${i}`);
        for (const p of ['T3', 'T4']) assert.equal(t(p, i).smpCnt, t('T2', i).smpCnt, `${p} #${i}`);
        assert.ok(t('T2', i).tMonoNs <= t('T3', i).tMonoNs && t('T3', i).tMonoNs <= t('T4', i).tMonoNs, `order at ${i}`);
      }
      assert.deepEqual(sum.points.map((p) => [p.name, p.kernelFrames]), [['T2', 600], ['T3', 600], ['T4', 600]], detail);
      if (mode === 'ring') assert.deepEqual(sum.points[2]!.probes, caps!.kprobes.available ? ['kprobe:tpacket_rcv'] : ['tracepoint:skb:consume_skb', 'tracepoint:skb:kfree_skb']);
    } finally {
      lab.destroy();
    }
  });
}

test('lost output is counted (bpftrace "Lost N events" and kernel count minus lines), never silent', opts, async () => {
  const lab = createLab('l');
  const [link] = lab.links;
  try {
    const warnings: TraceWarning[] = [];
    let n = 0;
    const session = await startTrace({ engine: 'bpftrace', vmInterface: { name: link!.rx, netns: link!.rxNs }, layouts },
      { onPoint: () => { n++; }, onWarning: (w) => warnings.push(w) },
      { capabilities: caps!, stopOnSignals: false, perfBufferPages: 1 });
    process.kill(session.bpftracePid!, 'SIGSTOP');
    await lab.replay(link!, ['-q', '-L', '3000', '--topspeed', fixture('SV_Normal_Traffic.pcap')]);
    process.kill(session.bpftracePid!, 'SIGCONT');
    // bpftrace prints "Lost N events" once the kernel writes to that CPU's buffer again: send a little more.
    await lab.replay(link!, ['-q', '-L', '200', '--pps=2000', fixture('SV_Normal_Traffic.pcap')]);
    await sleep(500);
    const sum = await session.stop();
    assert.equal(sum.points[0]!.kernelFrames, 3200);
    assert.ok(sum.lostLines > 2000, `kernel count minus lines: ${sum.lostLines}`);
    assert.equal(n + sum.lostLines, 3200, 'every frame is either delivered or counted lost');
    assert.ok(sum.lostEvents <= sum.lostLines, 'bpftrace\'s own count never exceeds it');
    assert.ok(warnings.some((w) => w.kind === 'lost-lines'));
    if (sum.lostEvents > 0) assert.ok(warnings.some((w) => w.kind === 'lost-events'));
  } finally {
    lab.destroy();
  }
});

test('SIGTERM stops the trace cleanly (END output and maps arrive); a bpftrace that does not stop is killed', opts, async () => {
  const lab = createLab('s');
  const [link] = lab.links;
  try {
    const cfg = { engine: 'bpftrace' as const, vmInterface: { name: link!.rx, netns: link!.rxNs }, layouts };
    const s1 = await startTrace(cfg, {}, { capabilities: caps! });
    await lab.replay(link!, ['-q', '-L', '10', fixture('SV_Normal_Traffic.pcap')]);
    await sleep(200);
    process.emit('SIGTERM');
    const sum = await s1.done;
    assert.equal(sum.endSeen, true);
    assert.equal(sum.points[0]!.kernelFrames, 10);
    assert.equal(sum.killed, false);
    assert.throws(() => process.kill(s1.bpftracePid!, 0), 'bpftrace has exited');

    const s2 = await startTrace(cfg, {}, { capabilities: caps!, stopOnSignals: false, stopTimeoutMs: 1000 });
    process.kill(s2.bpftracePid!, 'SIGSTOP');
    const sum2 = await s2.stop();
    assert.equal(sum2.killed, true);
    assert.equal(sum2.endSeen, false);
    assert.equal(sum2.points[0]!.kernelFrames, null, 'no kernel count without END: reported as unknown, not 0');
    assert.throws(() => process.kill(s2.bpftracePid!, 0), 'bpftrace was killed');
  } finally {
    lab.destroy();
  }
});

test('a full map is reported (bpftrace -k warnings), never silent', opts, async () => {
  const lab = createLab('f');
  const [link] = lab.links;
  try {
    const warnings: TraceWarning[] = [];
    let n = 0;
    // Two points but room for one key per map: the second point's counter update fails.
    const session = await startTrace({ engine: 'bpftrace', vmPort: { name: link!.tx, netns: link!.txNs }, vmInterface: { name: link!.rx, netns: link!.rxNs }, layouts },
      { onPoint: () => { n++; }, onWarning: (w) => warnings.push(w) },
      { capabilities: caps!, stopOnSignals: false, bpftraceEnv: { BPFTRACE_MAP_KEYS_MAX: '1' } });
    await lab.replay(link!, ['-q', '-L', '20', '--pps=2000', fixture('SV_Normal_Traffic.pcap')]);
    await sleep(300);
    const sum = await session.stop();
    assert.equal(n, 40, 'lines still arrive');
    assert.ok(sum.mapFullWarnings > 0, 'failed map updates counted');
    assert.ok(warnings.some((w) => w.kind === 'map-full'));
  } finally {
    lab.destroy();
  }
});
