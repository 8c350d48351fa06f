/**
 * `svtrace demo` as a newcomer runs it (the real CLI, as root): lab up, the
 * hypervisor traced, subscriber and publisher in processes of their own,
 * the report written with every segment measured, the lab removed; and on
 * Ctrl-C in the middle, everything it started is gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveTool, isRoot, runCli, type CliResult } from '../helpers/cli.ts';

const skip = !isRoot() ? 'needs root (network namespaces, AF_PACKET, bpftrace)'
  : !haveTool('bpftrace') ? 'bpftrace is not installed (scripts/setup.sh installs it)'
    : !haveTool('ip') ? 'iproute2 is not installed' : false;

const demo = (args: string[], onStderr?: NonNullable<Parameters<typeof runCli>[1]>['onStderr']): Promise<CliResult> =>
  runCli(['demo', ...args], { timeoutMs: 240_000, onStderr });

const netnsList = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
/** The lab prefix the demo chose, from its log line "subscribe: receiving in sdNNN-vm/...". */
const prefixOf = (stderr: string) => /receiving in (sd\d+)-vm\//.exec(stderr)?.[1];
/** Processes whose command line holds `needle`. */
function processesWith(needle: string): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid).filter((p) => {
    try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(needle); } catch { return false; }
  }).map(Number);
}

test('demo: 2 streams for 3 s, every segment measured from the records, report written, lab removed', { skip, timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-demo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'run');
  const r = await demo(['--duration', '3', '--streams', '2', '--out', out]);
  assert.ok(r.code === 0 || r.code === 1, `exit code ${r.code} (0 pass, 1 a verdict failed)\n${r.stderr}`);
  const prefix = prefixOf(r.stderr);
  assert.ok(prefix, `the demo said where it subscribed:\n${r.stderr}`);
  assert.ok(!netnsList().includes(`${prefix}-`), `the lab's namespaces are gone: ${netnsList()}`);
  assert.deepEqual(processesWith('src/demo/child.ts'), [], 'no publisher or subscriber process is left');

  const summary = JSON.parse(readFileSync(join(out, 'report', 'summary.json'), 'utf8'));
  assert.ok(existsSync(join(out, 'report', 'report.html')));
  assert.match(r.stdout, /report: .*report\.html/);
  assert.equal(summary.samples, 2 * 4000 * 3, 'every published sample is in the report');
  assert.deepEqual(summary.streams.map((s: { missing: number }) => s.missing), [0, 0], 'nothing missing: the publisher kept its schedule, the join held');
  const count = (seg: string) => summary.segments.find((s: { segment: string }) => s.segment === seg)?.all.count ?? 0;
  for (const seg of ['Tnet', 'Thyp', 'Ttrans', 'Tseapath']) {
    assert.ok(count(seg) >= 0.99 * 24_000, `${seg}: ${count(seg)} of 24 000 samples (bpftrace may lose a few under load)`);
  }
  for (const seg of ['Tsub', 'Ttot']) assert.equal(count(seg), 24_000, `${seg} from the publisher's and subscriber's own records`);
  for (const s of summary.segments) {
    assert.ok(s.all.minNs > 0, `${s.segment}: latencies are positive (min ${s.all.minNs} ns)`);
    assert.ok(s.all.percentilesNs.p50 < 5_000_000, `${s.segment}: p50 ${s.all.percentilesNs.p50} ns is a latency, not a join error`);
  }
});

test('demo: Ctrl-C in the middle stops the publisher and subscriber and removes the lab', { skip, timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-demo-int-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  let sent = false;
  const started = Date.now();
  const r = await demo(['--duration', '60', '--streams', '2', '--out', join(dir, 'run')], (stderr, child) => {
    if (!sent && /publish: 2 streams/.test(stderr)) {
      sent = true;
      setTimeout(() => child.kill('SIGINT'), 2000);
    }
  });
  assert.ok(sent, `the demo reached the publisher:\n${r.stderr}`);
  assert.ok(Date.now() - started < 50_000, 'it stopped long before its 60 s');
  const prefix = prefixOf(r.stderr);
  assert.ok(prefix);
  assert.ok(!netnsList().includes(`${prefix}-`), `the lab's namespaces are gone: ${netnsList()}`);
  assert.deepEqual(processesWith('src/demo/child.ts'), [], 'no publisher or subscriber process is left');
  assert.deepEqual(processesWith(join(dir, 'run')), [], 'nothing of this run is left running');
});

test('demo --compare: nominal then tuned, each step named, both reports and their comparison, the seed\'s table', { skip, timeout: 400_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-demo-cmp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'run');
  let tunedThread: string | null = null;
  const r = await demo(['--compare', '--duration', '3', '--streams', '2', '--out', out], (stderr) => {
    // while the tuned run receives, its receive thread is pinned and real-time: read it from /proc
    if (tunedThread === null && /demo \(tuned\): publish: 2 streams/.test(stderr)) {
      for (const pid of processesWith('src/demo/child.ts')) {
        try {
          for (const tid of readdirSync(`/proc/${pid}/task`)) {
            if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() !== 'svtrace-rx') continue;
            const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
            const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            const allowed = /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1];
            tunedThread = `policy ${f[38]} rt ${f[37]} cpus ${allowed}`;
          }
        } catch { /* the process ended */ }
      }
    }
  });
  assert.equal(r.code, 0, r.stderr);
  for (const d of ['nominal/report', 'tuned/report', 'compare']) assert.ok(existsSync(join(out, d, 'report.html')), `${d}/report.html`);
  assert.match(r.stdout, /tuned: subscriber receive thread \(svtrace-rx\) at SCHED_FIFO 50/);
  assert.match(r.stdout, /^Ttot +\S+ → \S+ \(/m, 'the table has Ttot, before → after');
  assert.match(r.stdout, /^Tsub +/m);
  const cmp = JSON.parse(readFileSync(join(out, 'compare', 'summary.json'), 'utf8')) as { labels: { a: string; b: string }; notes: string[] };
  assert.deepEqual(cmp.labels, { a: 'nominal', b: 'tuned' });
  assert.ok(cmp.notes.some((n) => n.includes('SCHED_FIFO')), 'the comparison report names the steps');
  const cpus = (await import('node:os')).availableParallelism();
  if (tunedThread === null) t.diagnostic('the tuned receive thread was not caught in /proc (the run was short)');
  else assert.equal(tunedThread, `policy 1 rt 50 cpus ${cpus - 1}`, 'SCHED_FIFO 50 on the last CPU');
});
