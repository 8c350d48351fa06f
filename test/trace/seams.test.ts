/**
 * The seams of a trace run, through the CLI as a user meets them: whatever
 * fails (a record directory in use, a busy metrics port, a full disk), the
 * run stops within a second or two, starts or leaves no bpftrace behind,
 * exits with the failure's class (2 usage, 3 environment), and the record
 * written before stays readable. These are bpftrace's seams (its drain, its
 * process group, its death with svtrace): `--engine bpftrace`; the bpf
 * engine's end is tested in bpf-engine.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runCli, spawnJob } from '../helpers/cli.ts';
import { makeVethPair } from '../helpers/netns.ts';
import { smallDisk } from '../helpers/tmpfs.ts';
import { cannotTrace } from './lab.ts';

const skip = cannotTrace() ?? false;

function bpftraceCount(): number {
  try {
    return Number(execFileSync('pgrep', ['-c', '-x', 'bpftrace'], { encoding: 'utf8' }).trim());
  } catch {
    return 0; // pgrep exits 1 when none matches
  }
}

test('trace --record into a directory that holds a record: RECORD_EXISTS at once, exit 2, no bpftrace started', { skip, timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-seam-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const rec = join(dir, 'rec');
  mkdirSync(rec);
  writeFileSync(join(rec, 'manifest.json'), '{}');
  const before = bpftraceCount();
  const started = Date.now();
  const r = await runCli(['trace', '--engine', 'bpftrace', '--ingress', 'lo', '--record', rec, '-d', '20'], { timeoutMs: 40_000 });
  const tookMs = Date.now() - started;
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /RECORD_(EXISTS|DIR_NOT_EMPTY)/);
  assert.doesNotMatch(r.stderr, /svtrace: tracing/, 'nothing was traced');
  assert.ok(tookMs < 15_000, `exited after ${tookMs} ms, not after the 20 s duration`);
  assert.equal(bpftraceCount(), before, 'no bpftrace left running');
});

test('trace --metrics on a port in use: METRICS_LISTEN_FAILED, exit 3, no bpftrace started', { skip, timeout: 60_000 }, async (t) => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const before = bpftraceCount();
  const r = await runCli(['trace', '--engine', 'bpftrace', '--ingress', 'lo', '--metrics', `127.0.0.1:${port}`, '-d', '20'], { timeoutMs: 40_000 });
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /METRICS_LISTEN_FAILED/);
  assert.match(r.stderr, /hint: another process uses that port/);
  assert.doesNotMatch(r.stderr, /svtrace: tracing/);
  assert.equal(bpftraceCount(), before, 'no bpftrace left running');
});

/** Runs `svtrace publish` in the background on the pair's side A for `seconds`. */
function publishInBackground(ns: string, ifname: string, seconds: number): { child: ChildProcess | null; done: Promise<unknown> } {
  const holder: { child: ChildProcess | null } = { child: null };
  const done = runCli(['publish', '--netns', ns, '-i', ifname, '-n', '2', '-d', String(seconds)], { timeoutMs: (seconds + 60) * 1000, onStderr: (_s, c) => { holder.child = c; } });
  return { get child() { return holder.child; }, done };
}

test('trace --record on a disk that fills: stops at once with RECORD_DISK_FULL, exit 3, the record readable', { skip, timeout: 120_000 }, async (t) => {
  const disk = smallDisk('1m');
  if (typeof disk === 'string') { t.skip(disk); return; }
  const pair = makeVethPair('sf');
  t.after(() => { pair.remove(); disk.remove(); });
  const pub = publishInBackground(pair.nsA, pair.ifA, 40);
  t.after(async () => { pub.child?.kill('SIGINT'); await pub.done.catch(() => undefined); });
  const before = bpftraceCount();
  let fullAt = 0;
  const started = Date.now();
  const r = await runCli(['trace', '--engine', 'bpftrace', '--ingress', `${pair.ifB}@${pair.nsB}`, '--record', join(disk.dir, 'rec'), '-d', '60'], {
    timeoutMs: 90_000, onStderr: (s) => { if (!fullAt && /RECORD_DISK_FULL|disk is full/.test(s)) fullAt = Date.now(); },
  });
  const endedAt = Date.now();
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /RECORD_DISK_FULL/);
  assert.doesNotMatch(r.stderr, /DEP0168|Uncaught N-API/);
  assert.ok(endedAt - started < 45_000, `ran ${endedAt - started} ms: it should stop when the disk fills, not at the 60 s duration`);
  assert.ok(endedAt - fullAt < 3000, `exited ${endedAt - fullAt} ms after the error was printed`);
  assert.equal(bpftraceCount(), before, 'bpftrace stopped');
  const manifest = JSON.parse(readFileSync(join(disk.dir, 'rec', 'manifest.json'), 'utf8')) as { points: string[] };
  assert.deepEqual(manifest.points, ['T1']);
});

test('stopping in the middle of traffic drains bpftrace: every frame the kernel matched reaches svtrace', { skip, timeout: 120_000 }, async (t) => {
  const pair = makeVethPair('sd');
  t.after(() => pair.remove());
  const pub = publishInBackground(pair.nsA, pair.ifA, 30);
  t.after(async () => { pub.child?.kill('SIGINT'); await pub.done.catch(() => undefined); });
  const r = await runCli(['trace', '--engine', 'bpftrace', '--ingress', `${pair.ifB}@${pair.nsB}`, '-d', '5', '--json'], { timeoutMs: 90_000 });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { summary: { endSeen: boolean; lostEvents: number; lostLines: number; points: Array<{ frames: number; kernelFrames: number | null }> } };
  const s = out.summary;
  assert.ok(s.endSeen, 'END output arrived');
  const p = s.points[0]!;
  assert.ok(p.frames > 10_000, `${p.frames} frames traced in 5 s of 2 × 4000/s`);
  if (s.lostEvents > 0) { t.diagnostic(`bpftrace lost ${s.lostEvents} events on this loaded machine: the drain cannot bring those back`); return; }
  assert.equal(p.kernelFrames, p.frames, 'the kernel counted exactly the frames svtrace received (nothing left in the buffers at stop)');
  assert.equal(s.lostLines, 0);
});


/** bpftrace processes started by `pid`. */
function bpftraceChildren(pid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === 'bpftrace' && ppid === pid) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  return cond();
}

test('Ctrl-C on the terminal (SIGINT to the whole job) still drains bpftrace; svtrace killed -9 takes bpftrace with it', { skip, timeout: 120_000 }, async (t) => {
  const pair = makeVethPair('sc');
  t.after(() => pair.remove());
  const pub = publishInBackground(pair.nsA, pair.ifA, 40);
  t.after(async () => { pub.child?.kill('SIGINT'); await pub.done.catch(() => undefined); });
  // 1. Ctrl-C: the terminal signals the job's process group
  const job = spawnJob(['trace', '--engine', 'bpftrace', '--ingress', `${pair.ifB}@${pair.nsB}`, '--json']);
  let stderr = '';
  job.child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  assert.ok(await until(() => /svtrace: tracing/.test(stderr), 60_000), `tracing started: ${stderr}`);
  await new Promise((r) => setTimeout(r, 3000));
  const tracer = bpftraceChildren(job.child.pid!);
  assert.equal(tracer.length, 1, 'one bpftrace, started by svtrace');
  process.kill(-job.child.pid!, 'SIGINT');
  const r = await job.out;
  assert.equal(r.code, 0, r.stderr);
  const s = (JSON.parse(r.stdout) as { summary: { endSeen: boolean; lostEvents: number; points: Array<{ frames: number; kernelFrames: number | null }> } }).summary;
  assert.ok(s.endSeen);
  if (s.lostEvents === 0) assert.equal(s.points[0]!.kernelFrames, s.points[0]!.frames, 'drained although bpftrace was in the job too');
  else t.diagnostic(`bpftrace lost ${s.lostEvents} events on this loaded machine`);
  assert.ok(await until(() => !alive(tracer[0]!), 10_000), 'bpftrace ended');
  // 2. kill -9: nothing can stop bpftrace but bpftrace itself
  const killed = spawnJob(['trace', '--engine', 'bpftrace', '--ingress', `${pair.ifB}@${pair.nsB}`]);
  let stderr2 = '';
  killed.child.stderr!.on('data', (d: Buffer) => { stderr2 += d.toString(); });
  assert.ok(await until(() => /svtrace: tracing/.test(stderr2), 60_000), `tracing started: ${stderr2}`);
  const orphan = bpftraceChildren(killed.child.pid!);
  assert.equal(orphan.length, 1);
  killed.child.kill('SIGKILL');
  await killed.out;
  const gone = await until(() => !alive(orphan[0]!), 15_000);
  if (!gone) process.kill(orphan[0]!, 'SIGKILL');
  assert.ok(gone, 'bpftrace ended itself when svtrace died');
  // and the program file went once bpftrace had attached it: nothing of this run is left in the temporary directory
  const left = readdirSync(tmpdir()).filter((d) => d.startsWith('svtrace-bt-')).filter((d) => {
    try { return readFileSync(join(tmpdir(), d, 'svtrace.bt'), 'utf8').includes(` on ${pair.ifB} `); } catch { return false; }
  });
  assert.deepEqual(left, [], 'the program file of the killed run is gone');
});

test('svtrace killed -9 while bpftrace is still starting (compiling, not yet attached) takes bpftrace with it', { skip, timeout: 60_000 }, async () => {
  // A program with no probe that could notice svtrace's death: only the parent-death signal can end it.
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-orphan-'));
  try {
    const program = join(dir, 'idle.bt');
    writeFileSync(program, 'BEGIN { @started = 1; }\ninterval:s:100 { exit(); }\n');
    const owner = spawn(process.execPath, ['--import', 'tsx', '-e',
      `import { spawnBpftrace } from ${JSON.stringify(join(ROOT, 'src/trace/bpftrace.ts'))};
       const c = spawnBpftrace('bpftrace', ${JSON.stringify(program)}, {}, undefined, true);
       console.log(c.pid); setInterval(() => {}, 1000);`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    owner.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    assert.ok(await until(() => /^\d+\n/.test(out), 30_000), 'the owner started bpftrace');
    const pid = Number(out.trim());
    owner.kill('SIGKILL');
    const gone = await until(() => !alive(pid), 10_000);
    if (!gone) process.kill(pid, 'SIGKILL');
    assert.ok(gone, 'bpftrace ended when the process that started it was killed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
