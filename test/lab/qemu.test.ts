// `lab up --vm qemu` through the real QEMU: the guest boots (TCG here: the
// machine's KVM is a PVM host), `lab exec` runs commands in it over the
// control channel, and `svtrace subscribe` in the guest receives the SV
// published on the host through the tap and virtio-net: nothing without
// promiscuous mode (virtio-net filters multicast in the device), ≥ 99.9 %
// with it; T2 is taken where QEMU consumes the frame off the tap (a custom
// point of `svtrace trace`). `lab down` leaves nothing behind, also when the
// test fails or `lab up` is killed.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { labDown, labStatus, labUp } from '../../src/lab/index.ts';
import { hasCommand } from '../../src/lab/exec.ts';
import { labExec } from '../../src/lab/lab-exec.ts';
import { findGuestImage, qemuByCommandLine, svtraceRoot } from '../../src/lab/qemu.ts';
import { vmPaths } from '../../src/lab/qemu-spec.ts';
import { leftovers, qemuSkipReason, removeDir, tempRunDir, uniquePrefix } from './helpers/lab-env.ts';

const ROOT = join(import.meta.dirname, '../..');
const CLI = join(ROOT, 'bin', 'svtrace.js');
const RATE = 4000;
/** Long enough for `svtrace trace` to load, learn the stream and attach beside it (seconds, under TCG on a loaded machine). */
const PUBLISH_S = 14;

const skip = qemuSkipReason() ?? false;

interface Captured { out: string; err: string }

/** Runs argv in the lab's VM; resolves with the exit code and the output. */
async function inVm(runDir: string, argv: string[], onErr?: (text: string) => void) {
  const cap: Captured = { out: '', err: '' };
  const h = await labExec(runDir, 'vm', argv, {
    stdout: (b) => { cap.out += b.toString(); },
    stderr: (b) => { cap.err += b.toString(); onErr?.(cap.err); },
  });
  return { h, cap, done: h.done.then((code) => ({ code, ...cap })) };
}

function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

async function publish(netns: string, ifname: string, seconds: number): Promise<{ framesSent: number }> {
  const r = await cli(['publish', '--netns', netns, '-i', ifname, '-n', '1', '-d', String(seconds), '--json']);
  if (r.code !== 0) throw new Error(`publish exited ${String(r.code)}: ${r.err}`);
  return JSON.parse(r.out) as { framesSent: number };
}

interface TracedPoint { name: string; probes: string[]; frames: number }

/**
 * `svtrace trace --lab` on the lab's hypervisor for 4 s once the stream runs: the VM port is QEMU's tap, so the
 * tracer adds T2qemu by itself (consume_skb on the tap, in QEMU's thread: src/trace/tap.ts).
 */
async function traceT2Qemu(runDir: string, tap: string): Promise<TracedPoint[]> {
  await new Promise((r) => setTimeout(r, 1_500)); // the tracer learns the stream's layout from live frames
  const trace = await cli(['trace', '--lab', runDir, '-d', '4', '--json']);
  if (trace.code !== 0) throw new Error(`svtrace trace exited ${String(trace.code)}: ${trace.err}`);
  assert.match(trace.err, new RegExp(`T2qemu: ${tap} is held by qemu-system-x86`), 'the tracer says why it added T2qemu');
  return (JSON.parse(trace.out) as { summary: { points: TracedPoint[] } }).summary.points;
}

/** Starts `svtrace subscribe` in the guest and resolves once it receives (the CLI takes seconds to load under TCG). */
async function startSubscribe(runDir: string, extra: string[], seconds: number) {
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => (ready = r));
  const run = await inVm(runDir, [process.execPath, CLI, 'subscribe', '-i', 'eth0', '-d', String(seconds), '--json', ...extra], (err) => {
    if (err.includes('receiving on')) ready();
  });
  await Promise.race([isReady, run.done.then((r) => { throw new Error(`subscribe ended before receiving (exit ${r.code}): ${r.err}`); })]);
  return run;
}

test('lab up --vm qemu: a real guest on a tap; lab exec; subscribe in the guest receives through virtio-net', { skip, timeout: 300_000 }, async (t) => {
  const prefix = uniquePrefix('q');
  const runDir = tempRunDir('qemu');
  t.after(async () => {
    await labDown(runDir).catch(() => undefined);
    const left = leftovers(prefix, runDir);
    removeDir(runDir);
    assert.deepEqual(left, [], 'lab down left these behind');
  });

  // a deep tap queue: on this shared 2-CPU machine TCG stalls for hundreds of ms; the frames wait instead of dropping
  const vcpuHost = availableParallelism() - 1; // the last CPU: pinning is exercised on any machine
  const up = await labUp({ vm: 'qemu', switch: 'bridge', runDir, prefix, vmCpus: [vcpuHost], tapQueueFrames: 20_000 });
  assert.equal(up.topology.vm?.tapQueueFrames, 20_000);
  const vm = up.topology.vm;
  assert.ok(vm, 'the topology describes the guest');
  assert.ok(vm.accel === 'tcg' || vm.accel === 'kvm');
  if (vm.accel === 'tcg') assert.match(vm.accelReason, /emulator's, not a real VM's/);
  assert.deepEqual(vm.pinning.vcpus.map((p) => p.cpu), [vcpuHost]);
  assert.equal(up.topology.hostVmIf, vm.tap);
  assert.ok(up.forwardingCheck?.ok, up.forwardingCheck?.detail);
  t.diagnostic(`guest booted in ${((vm.bootMs ?? 0) / 1000).toFixed(1)} s (${vm.accel})`);

  const status = await labStatus(runDir);
  assert.equal(status.healthy, true, JSON.stringify(status.items));
  // the VM's points are in the guest's kernel: a host tracer refuses, and says how to trace them inside
  const vmTrace = await cli(['trace', '--lab', runDir, '--machine', 'vm', '-d', '1']);
  assert.equal(vmTrace.code, 2, vmTrace.err);
  assert.match(vmTrace.err, /QEMU guest.*hint: run the VM's tracer in the guest: svtrace lab exec/s);
  assert.ok(status.items.some((i) => i.name === 'qemu' && i.present));

  // the guest's own kernel, its hostname, exit codes and Ctrl-C
  const uname = await (await inVm(runDir, ['sh', '-c', 'uname -r; hostname; echo to-stderr >&2; exit 7'])).done;
  assert.equal(uname.code, 7);
  assert.equal(uname.out, `${findGuestImage().release}\n${vm.hostname}\n`);
  assert.equal(uname.err, 'to-stderr\n');
  // the flight recorder's binary engine on the guest's own kernel (Linux 6.1 here): loads, records, loses nothing
  const recScript = join(vm.share, 'recorder.mjs');
  writeFileSync(recScript, `const m = await import(${JSON.stringify(join(svtraceRoot(), 'dist', 'index.js'))});
const why = m.bpfRecorderUnavailable();
if (why) { console.log(JSON.stringify({ why })); process.exit(0); }
const r = await m.startBpfRecorder({ windowS: 5 });
await new Promise((res) => setTimeout(res, 1500));
const s = await r.stop();
const kinds = {};
for (const q of r.ring.cpus.values()) for (const e of q.events.slice(q.head)) kinds[e.kind] = (kinds[e.kind] ?? 0) + 1;
console.log(JSON.stringify({ events: s.events, kernel: s.kernelEvents, lost: s.lostLines, kinds }));
`);
  const rec = await (await inVm(runDir, ['node', recScript])).done;
  assert.equal(rec.code, 0, rec.err);
  const recOut = JSON.parse(rec.out.trim().split('\n').pop()!) as { why?: string; events: number; kernel: number | null; lost: number; kinds: Record<string, number> };
  if (recOut.why) t.diagnostic(`the binary recorder cannot run in the guest: ${recOut.why}`);
  else {
    t.diagnostic(`binary recorder in the guest: ${recOut.events} events in 1.5 s, kernel ${recOut.kernel}, lost ${recOut.lost}; ${JSON.stringify(recOut.kinds)}`);
    assert.equal(recOut.kernel, recOut.events, 'every event the guest kernel wrote was received');
    assert.ok((recOut.kinds.switch ?? 0) > 0 && (recOut.kinds.wakeup ?? 0) > 0, 'switches and wake-ups recorded');
  }
  let pubOut = '';
  const inPub = await labExec(runDir, 'pub', ['sh', '-c', 'ip -o link show; exit 3'], { stdout: (b) => { pubOut += b.toString(); }, stderr: () => {} });
  assert.equal(await inPub.done, 3, 'lab exec pub runs in the publisher namespace and returns the exit code');
  assert.match(pubOut, new RegExp(up.topology.pubIf));
  const sleeper = await inVm(runDir, ['sleep', '60']);
  await new Promise((r) => setTimeout(r, 500));
  const sent = Date.now();
  sleeper.h.signal('SIGINT');
  assert.equal((await sleeper.done).code, 130, 'SIGINT ended the command (128 + 2)');
  assert.ok(Date.now() - sent < 10_000);

  // without promiscuous mode, virtio-net filters the multicast SV in the device
  const deaf = await startSubscribe(runDir, ['--no-promisc'], 6);
  await publish(up.topology.pubNetns, up.topology.pubIf, 2);
  const deafResult = await deaf.done;
  assert.equal(deafResult.code, 0, deafResult.err);
  assert.equal((JSON.parse(deafResult.out) as { frames: number }).frames, 0, 'a receiver without promiscuous mode gets nothing');

  // with it (the default), ≥ 99.9 % of 1 stream × 4000/s arrive, recorded through the share
  const record = join(vm.share, 'sub');
  const sub = await startSubscribe(runDir, ['--record', record], 26);
  const publishing = publish(up.topology.pubNetns, up.topology.pubIf, PUBLISH_S);
  // meanwhile, T2 where QEMU takes the frame off the tap: skb:consume_skb on the tap in QEMU's own thread, a custom point of `svtrace trace`
  const traced = hasCommand('bpftrace') ? traceT2Qemu(runDir, vm.tap) : undefined;
  const pub = await publishing;
  const subResult = await sub.done;
  assert.equal(subResult.code, 0, subResult.err);
  const r = JSON.parse(subResult.out) as { samples: number; rx: { kernelDrops: number }; streams: Array<{ svId: string; missing: number }> };
  const tap = (JSON.parse(execFileSync('ip', ['-s', '-j', 'link', 'show', 'dev', vm.tap], { encoding: 'utf8' })) as Array<{ stats64?: { tx?: { packets: number; dropped: number } } }>)[0]?.stats64?.tx;
  t.diagnostic(`published ${pub.framesSent}, received ${r.samples} in the guest (missing ${r.streams[0]?.missing ?? '?'}, guest kernel drops ${r.rx.kernelDrops}; tap tx ${tap?.packets ?? '?'}, tap drops ${tap?.dropped ?? '?'}; TCG timings are an emulator's)`);
  assert.equal(pub.framesSent, PUBLISH_S * RATE);
  assert.ok(r.samples >= 0.999 * pub.framesSent, `received ${r.samples} of ${pub.framesSent}`);
  const manifest = JSON.parse(readFileSync(join(record, 'manifest.json'), 'utf8')) as {
    host: string; extra?: { promiscuous?: boolean; vm?: { accel: string; clock?: { offsetNs: string; uncertaintyNs: string } } };
  };
  assert.equal(manifest.host, vm.hostname, 'records written in the guest carry its hostname');
  assert.equal(manifest.extra?.vm?.accel, vm.accel, 'and say which accelerator ran the guest');
  assert.equal(manifest.extra?.promiscuous, true);
  const clock = manifest.extra?.vm?.clock;
  assert.ok(clock, 'the record keeps the guest↔host clock offset measured when subscribe started');
  t.diagnostic(`guest − host clock: ${(Number(clock.offsetNs) / 1e6).toFixed(3)} ms ± ${(Number(clock.uncertaintyNs) / 1e6).toFixed(3)} ms`);
  assert.ok(BigInt(clock.uncertaintyNs) < 100_000_000n, 'within ± 100 ms even under TCG');

  if (traced) {
    const points = await traced;
    const t2 = points.find((p) => p.name === 'T2');
    const t2qemu = points.find((p) => p.name === 'T2qemu');
    t.diagnostic(`T2 (${t2?.probes.join(',') ?? '?'}) ${t2?.frames ?? 0} frames, T2qemu (consume_skb in qemu-system-x86) ${t2qemu?.frames ?? 0}`);
    assert.ok(t2 && t2qemu && t2.frames > 1_000, 'the tracer saw the stream at T2');
    assert.ok(t2qemu.frames >= 0.99 * t2.frames, 'QEMU took (nearly) every frame the host handed to the tap while tracing');
  } else {
    t.diagnostic('bpftrace is not installed: T2 in QEMU not checked');
  }

  // down removes QEMU, the tap and every file
  const pidfile = vmPaths(runDir).pidfile;
  await labDown(runDir);
  assert.deepEqual(qemuByCommandLine(pidfile), []);
  assert.equal(existsSync(vmPaths(runDir).dir), false);
});

test('lab down after a kill -9 of `lab up --vm qemu` while the guest boots: QEMU, the tap and the files go', { skip, timeout: 120_000 }, async (t) => {
  const prefix = uniquePrefix('qk');
  const runDir = tempRunDir('qemuk');
  try {
    const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, 'helpers', 'up-child.ts'), runDir, prefix, 'bridge', 'qemu'], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const pidfile = vmPaths(runDir).pidfile;
    const end = Date.now() + 60_000;
    while (qemuByCommandLine(pidfile).length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.ok(qemuByCommandLine(pidfile).length > 0, 'QEMU started');
    child.kill('SIGKILL');
    await exited;
    assert.equal((await labStatus(runDir)).phase, 'crashed');
    await labDown(runDir);
    assert.deepEqual(qemuByCommandLine(pidfile), []);
    assert.deepEqual(leftovers(prefix, runDir), []);
    t.diagnostic('nothing left after the crash');
  } finally {
    await labDown(runDir).catch(() => undefined);
    removeDir(runDir);
  }
});
