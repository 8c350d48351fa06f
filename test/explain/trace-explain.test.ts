/**
 * `svtrace trace --explain` for real, as a user runs it: the bridge lab, SV
 * published through it, the CLI tracing T1/T2 with the flight recorder
 * beside it into a record. The record's explain/ directory must load, its
 * Chrome traces pass the schema check, its explanations name real tasks
 * (or say why not), the recorder's losses be counted, and `svtrace report`
 * on the record show the section. The threshold is low (15 µs, about twice
 * the usual Thyp here) so there are late samples to explain without a hog.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { labDown, labUp } from '../../src/lab/index.ts';
import { runPublish } from '../../src/publish/run.ts';
import { demoStreams } from '../../src/demo/run.ts';
import { readExplainDir } from '../../src/explain/files.ts';
import { analyzeRecords } from '../../src/analyze/index.ts';
import { writeReport } from '../../src/report/index.ts';
import { haveTool, isRoot, runCli } from '../helpers/cli.ts';
import { checkSchema } from './chrome-schema.ts';
import { bpfRecorderUnavailable } from '../../src/explain/recorder-bpf.ts';

function skipReason(engine: 'bpf' | 'bpftrace'): string | undefined {
  if (engine === 'bpf') { const why = bpfRecorderUnavailable(); if (why) return `the bpf engine cannot run here: ${why}`; }
  if (!isRoot()) return 'needs root (lab, bpftrace)';
  for (const t of ['bpftrace', 'ip']) if (!haveTool(t)) return `${t} is not installed`;
  if (!existsSync('/sys/kernel/tracing/events/sched')) return 'tracefs is not mounted at /sys/kernel/tracing';
  return undefined;
}

for (const engine of ['bpf', 'bpftrace'] as const) {
test(`trace --explain (${engine} engine) writes explanations into the record that load, with valid Chrome traces, and the report shows them`, { skip: skipReason(engine), timeout: 240_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), `svtrace-trace-explain-${process.pid}-`));
  const runDir = join(dir, 'lab'), rec = join(dir, 'hyp');
  const ac = new AbortController();
  let pub: Promise<unknown> = Promise.resolve();
  try {
    await labUp({ runDir, switch: 'bridge', prefix: `te${(process.pid % 10000).toString(36)}` }).then((r) => {
      // frames flow before the tracer starts: it learns their layout from them
      pub = runPublish({ streams: demoStreams(2), ifname: r.topology.pubIf, netns: r.topology.pubNetns, durationS: 600, fifoPriority: 50, signal: ac.signal });
    });
    await new Promise((r) => setTimeout(r, 1000));
    const cli = await runCli(['trace', '--lab', runDir, '--machine', 'hypervisor', '-d', '5', '--record', rec,
      '--engine', engine, '--explain', '--explain-threshold-us', '15', '--explain-window-s', '3', '--explain-worst', '3'], { timeoutMs: 200_000 });
    ac.abort();
    await pub.catch(() => undefined);
    t.diagnostic(cli.stderr.split('\n').filter((l) => /explain|recorder|warning/.test(l)).slice(0, 8).join('\n'));
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^recorder: [\d ]+ events .*(bpftrace lost|lost to a full ring) [\d ]+/m, 'the recorder\'s losses are printed');
    assert.match(cli.stdout, /explanations in .*explain/);

    const l = readExplainDir(rec);
    assert.ok(l, 'explain/explanations.json exists');
    const d = l.doc;
    t.diagnostic(`Thyp ${d.samples} samples, p50 ${(d.p50Ns ?? 0) / 1000} µs, ${d.late} over 15 µs, ${d.explanations.length} explained; recorder ${d.recorder?.events} events, lost ${d.recorder?.lostEvents} + ${d.recorder?.lostInRun} + ${d.recorder?.notReceivedAtStop} at stop; causes ${d.causes.slice(0, 4).map((c) => `${c.key} ×${c.count}`).join(', ')}`);
    assert.equal(d.segment, 'Thyp');
    assert.equal(d.thresholdNs, 15_000);
    assert.equal(d.recorder?.engine, engine, 'the recorder ran on the points\' engine');
    assert.equal(d.windowS, 3);
    assert.ok(d.samples > 5000, `samples flowed (${d.samples})`);
    assert.ok(d.recorder && d.recorder.events > 0 && d.recorder.kernelEvents !== null, 'the recorder ran and reached END');
    for (const k of ['lostEvents', 'lostInRun', 'notReceivedAtStop', 'ringOverflowed'] as const) assert.equal(typeof d.recorder[k], 'number');
    assert.ok(d.explanations.length <= d.late);
    // explanations name real tasks (pid and comm from the recorder), or say why not; none crashed
    for (const x of d.explanations) {
      assert.ok(x.text.startsWith(`Thyp ${''}`), x.text);
      if (x.primary.kind === 'unknown') assert.ok(x.reason && x.reason.length > 0, x.text);
      if (x.primary.task) assert.ok(x.primary.task.pid > 0 && x.primary.task.comm.length > 0, x.text);
    }
    if (d.late === 0) { t.diagnostic('no sample over 15 µs on this run: nothing more to check'); return; }
    assert.ok(l.worst.length >= 1 && l.worst.length <= 3);
    for (const w of d.worst) {
      checkSchema(readFileSync(join(rec, 'explain', w.trace), 'utf8'));
      if (w.normal) checkSchema(readFileSync(join(rec, 'explain', w.normal.trace), 'utf8'));
    }
    assert.ok(d.worst.some((w) => w.normal), 'a normal sample is kept beside the worst ones');

    // the record's manifest counts the recorder too
    const manifest = JSON.parse(readFileSync(join(rec, 'manifest.json'), 'utf8')) as { counters?: Record<string, number> };
    assert.equal(manifest.counters?.recorderEvents, d.recorder.events);

    const analysis = await analyzeRecords([rec], { join: 'iter' });
    const files = await writeReport(analysis, join(dir, 'report'));
    const html = readFileSync(files.html, 'utf8');
    assert.ok(html.includes('<h2 id="explain">Why samples were late</h2>'));
    assert.ok((html.match(/<svg class="timeline"/g) ?? []).length >= 1);
    assert.ok(readFileSync(files.markdown, 'utf8').includes('#### Thyp: top causes by count'));
  } finally {
    ac.abort();
    await pub.catch(() => undefined);
    await labDown(runDir).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});
}
