/**
 * The report's "why samples were late" section from a record's explain/
 * directory: cause tables, timelines of the worst sample beside a normal
 * one, summary.md and summary.json. A hostile comm (HTML, Markdown, control
 * and bidi characters) and a hostile svID must reach every output as text.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { analyzeRecords } from '../../src/analyze/index.ts';
import { writeReport } from '../../src/report/index.ts';
import { timelineSvg } from '../../src/report/explain.ts';
import { loadRecordExplanations as loadReportExplanations } from '../../src/explain/files.ts';
import { aggregateCauses, explainSample, type LateSample } from '../../src/explain/explain.ts';
import { exportChromeTrace } from '../../src/explain/chrome.ts';
import { parseRecorderLine, type RecorderEvent } from '../../src/explain/events.ts';
import { readExplainDir, writeExplainDir } from '../../src/explain/files.ts';
import type { ExplainRunResult } from '../../src/explain/run.ts';
import type { TraceSummary } from '../../src/trace/index.ts';
import { tAt, writeRecord, type TestRow } from '../analyze/helpers.ts';
import { checkSchema } from './chrome-schema.ts';

const dir = mkdtempSync(join(tmpdir(), 'svtrace-explain-report-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const EVIL_SV = '<script>alert(1)</script>';
// HTML, Markdown (| * _ [ ]), an ANSI escape and a right-to-left override, as a task may name itself
const EVIL_COMM = '<img src=x onerror=alert(2)>|*_[x](http://e.example)\u001b[31m\u202e';

const B = 7_000_000_000n;
const at = (us: number) => String(B + BigInt(Math.round(us * 1000)));
const ev = (lines: string[]): RecorderEvent[] => lines.map((l) => {
  const e = parseRecorderLine(l);
  assert.ok(e, l);
  return e;
});
// ovs-vswitchd (854) on CPU 1, preempted by the hostile task (4242, FIFO) from 1 100 to 2 900 µs
const events = ev([
  `S ${at(0)} 1 0 120 0 854 120 ovs-vswitchd`,
  `S ${at(1100)} 1 854 120 0 4242 9 ${EVIL_COMM}`,
  `S ${at(2900)} 1 4242 9 1 854 120 ovs-vswitchd`,
  `E ${at(2910)} 0 3`, `X ${at(2915)} 0 3`,
  `S ${at(2950)} 1 854 120 1 0 120 swapper/1`,
  `S ${at(3000)} 1 0 120 0 854 120 ovs-vswitchd`,
  `S ${at(3100)} 1 854 120 1 0 120 swapper/1`,
]);

function fakeResult(): ExplainRunResult {
  const late: LateSample = { svId: EVIL_SV, smpCnt: 7, iter: 0, segment: 'Thyp', latencyNs: 1_810_000, normalNs: 40_000,
    from: { point: 'T1', tMonoNs: B + 1_120_000n, cpu: 0 }, to: { point: 'T2', tMonoNs: B + 2_930_000n, cpu: 1 } };
  const x = explainSample(late, events, { policies: new Map([[4242, { policy: 'SCHED_FIFO', rtPriority: 90 }]]) });
  assert.equal(x.primary.kind, 'preemption');
  const chrome = exportChromeTrace({ events, fromMonoNs: B, toMonoNs: B + 3_200_000n }, [{ name: `${EVIL_SV} smpCnt 7 Thyp`, points: [late.from, late.to], text: x.text }]);
  const nFrom = { point: 'T1', tMonoNs: B + 3_010_000n, cpu: 1 }, nTo = { point: 'T2', tMonoNs: B + 3_050_000n, cpu: 1 };
  const normal = { svId: 'MU01', smpCnt: 9, iter: 0, segment: 'Thyp', latencyNs: 40_000, from: nFrom, to: nTo,
    chrome: exportChromeTrace({ events, fromMonoNs: B + 2_960_000n, toMonoNs: B + 3_100_000n }, [{ name: 'MU01 smpCnt 9 Thyp (normal)', points: [nFrom, nTo] }]) };
  const trace = { lostEvents: 0, lostLines: 3, points: [{ name: 'T1', frames: 100, kernelFrames: 100 }, { name: 'T2', frames: 100, kernelFrames: 103 }] } as unknown as TraceSummary;
  return {
    segment: 'Thyp', thresholdNs: 100_000, samples: 16_000, late: 1, unpaired: 0, mismatched: 0, p50Ns: 40_000, p99Ns: 60_000, maxNs: 1_810_000,
    explanations: [x], causes: aggregateCauses([x]), worst: [{ explanation: x, chrome, normal }],
    recorder: { durationMs: 2000, events: 5000, eventsPerS: 2500, lostEvents: 2, kernelEvents: 5010, lostLines: 10, lostInRun: 4, notReceivedAtStop: 6, otherLines: [], ringOverflowed: 0 },
    trace, warnings: [`recorder: bpftrace: ${EVIL_COMM}`],
  };
}

async function record(name: string, withExplain: boolean): Promise<string> {
  const rows: TestRow[] = [];
  for (const svId of ['MU01', EVIL_SV]) {
    for (let smp = 0; smp < 4000; smp++) {
      const t1 = tAt(0, smp, 4000, 20_000);
      rows.push({ point: 'T1', svId, smpCnt: smp, tNs: t1 }, { point: 'T2', svId, smpCnt: smp, tNs: t1 + (smp === 7 ? 1_810_000n : 40_000n) });
    }
  }
  const rec = await writeRecord(join(dir, name, 'trace-hypervisor'), { role: 'trace', host: 'hv', points: ['T1', 'T2'] }, rows);
  if (withExplain) writeExplainDir(join(rec, 'explain'), fakeResult(), { windowS: 2 });
  return rec;
}

/** Tag names outside the JSON data block. */
function tags(html: string): string[] {
  const rest = html.replace(/<script type="application\/json" id="svtrace-data">[\s\S]*?<\/script>/, '');
  return [...rest.matchAll(/<([A-Za-z][\w:-]*)/g)].map((m) => m[1]!.toLowerCase());
}

test('explanations written into a record load back, with their Chrome traces valid', async () => {
  const rec = await record('load', true);
  const l = readExplainDir(rec);
  assert.ok(l);
  assert.equal(l.doc.format, 'svtrace-explanations');
  assert.equal(l.doc.worst.length, 1);
  assert.equal(l.doc.worst[0]!.svId, EVIL_SV);
  assert.equal(l.doc.worst[0]!.from.tMonoNs, String(B + 1_120_000n), 'int64 times as decimal strings');
  assert.ok(l.worst[0]!.chrome && l.worst[0]!.normal?.chrome);
  checkSchema(readFileSync(join(rec, 'explain', l.doc.worst[0]!.trace), 'utf8'));
  checkSchema(readFileSync(join(rec, 'explain', l.doc.worst[0]!.normal!.trace), 'utf8'));
  assert.equal(l.doc.recorder?.lostEvents, 2);
  assert.throws(() => writeExplainDir(join(rec, 'explain'), fakeResult()), /already holds explanations/);
  assert.equal(readExplainDir(join(dir, 'nowhere')), null);
});

test('report: the section with cause tables and timelines; every hostile string is text', async () => {
  const rec = await record('report', true);
  const analysis = await analyzeRecords([rec], { join: 'iter' });
  const out = join(dir, 'report-out');
  const files = await writeReport(analysis, out);
  const html = readFileSync(files.html, 'utf8');
  assert.ok(/<h2 id="explain">Why samples were late<\/h2>/.test(html));
  assert.ok(/Thyp: top causes by total delay/.test(html));
  assert.ok(/Thyp: top causes by count/.test(html));
  assert.equal((html.match(/<svg class="timeline"/g) ?? []).length, 2, 'the worst sample and the normal one beside it');
  assert.ok(/normal: MU01 smpCnt 9: Thyp 40.0 µs/.test(html));
  assert.ok(/lost by bpftrace 2, lost while running 4, unread at stop 6/.test(html), 'recorder losses shown');
  assert.ok(/SCHED_FIFO 90, for 1 780 µs/.test(html));
  // no element came from a comm or an svID
  const allowed = new Set(['html', 'head', 'meta', 'title', 'style', 'body', 'h1', 'h2', 'h3', 'h4', 'p', 'div', 'span', 'table', 'tr', 'th', 'td', 'b', 'i', 'br', 'svg', 'g', 'path', 'rect', 'text', 'line', 'title', 'script', 'defs', 'clippath', 'tspan']);
  const bad = tags(html).filter((t) => !allowed.has(t));
  assert.deepEqual([...new Set(bad)], []);
  assert.ok(!html.includes('<img') && !html.includes('<script>alert'), 'no raw hostile markup');
  assert.ok(html.includes('&lt;img src=x onerror=alert(2)&gt;'), 'the comm shown as text');
  assert.ok(!html.includes('\u001b') && !html.includes('\u202e'), 'control and bidi characters escaped');
  const data = /<script type="application\/json" id="svtrace-data">([\s\S]*?)<\/script>/.exec(html)![1]!;
  assert.ok(!data.includes('<'), 'JSON data block has no <');

  const md = readFileSync(files.markdown, 'utf8');
  assert.match(md, /## Why samples were late/);
  assert.match(md, /#### Thyp: top causes by total delay/);
  assert.ok(!md.includes('<img') && !md.includes('\u001b') && !md.includes('\u202e'));
  const row = md.split('\n').find((l) => l.startsWith('| preemption'));
  assert.ok(row, md);
  assert.equal(row.split(' | ').length, 6, `the comm did not add table cells: ${row}`);

  const json = JSON.parse(readFileSync(files.json, 'utf8')) as Record<string, unknown>;
  const plain = JSON.parse(JSON.stringify(analysis)) as Record<string, unknown>;
  for (const k of Object.keys(plain)) if (k !== 'elapsedMs' && k !== 'phaseMs' && k !== 'explanations') assert.deepEqual(json[k], plain[k], `summary.json key ${k} unchanged`);
  const ex = json.explain as Array<{ causes: Array<{ kind: string; count: number }>; worst: Array<{ svId: string }> }>;
  assert.equal(ex[0]!.causes[0]!.kind, 'preemption');
  assert.equal(ex[0]!.worst[0]!.svId, EVIL_SV);
});

test('report: no explanations, no section; a broken explanations file is a warning in the section, not a failure', async () => {
  const rec = await record('plain', false);
  const analysis = await analyzeRecords([rec], { join: 'iter' });
  const files = await writeReport(analysis, join(dir, 'plain-out'));
  assert.ok(!readFileSync(files.html, 'utf8').includes('Why samples were late'));
  assert.ok(!('explain' in (JSON.parse(readFileSync(files.json, 'utf8')) as object)));
  // a record whose explanations.json is broken: the report still renders, and says so
  const bad = await record('broken', false);
  mkdirSync(join(bad, 'explain'));
  writeFileSync(join(bad, 'explain', 'explanations.json'), '{"format": "svtrace-explanations", <script>');
  const loaded = loadReportExplanations([{ dir: bad }]);
  assert.equal(loaded.length, 1);
  assert.equal(loaded[0]!.loaded, null);
  const out = await writeReport(await analyzeRecords([bad], { join: 'iter' }), join(dir, 'broken-out'));
  const html = readFileSync(out.html, 'utf8');
  assert.ok(/<div class="warn">[^<]*is not valid JSON/.test(html));
  assert.ok(!html.slice(0, html.indexOf('<script type="application/json"')).includes('<script'), 'the file\'s text is escaped');
});

test('the report renders what the analysis found and reads no file itself', async () => {
  const rec = await record('no-files', true);
  const analysis = await analyzeRecords([rec], { join: 'iter' });
  assert.equal(analysis.explanations?.length, 1, 'the analysis read the record\'s explanations');
  rmSync(join(rec, 'explain'), { recursive: true });
  const withIt = await writeReport(analysis, join(dir, 'no-files-out'));
  assert.match(readFileSync(withIt.html, 'utf8'), /Why samples were late/, 'rendered from the analysis, the files being gone');
  mkdirSync(join(rec, 'explain'));
  writeFileSync(join(rec, 'explain', 'explanations.json'), '{}');
  const without = await writeReport({ ...analysis, explanations: [] }, join(dir, 'no-files-out2'));
  assert.doesNotMatch(readFileSync(without.html, 'utf8'), /Why samples were late/, 'nothing the analysis did not return');
});

test('timeline: points, CPU rows, axis; a trace without points says so', () => {
  const r = fakeResult();
  const svg = timelineSvg(r.worst[0]!.chrome, `late ${EVIL_SV}`);
  assert.match(svg, /<text [^>]*>CPU 1<\/text>/);
  assert.match(svg, />T1 \(CPU 0\)</);
  assert.match(svg, />T2 \(CPU 1\)</);
  assert.match(svg, /µs from T1/);
  assert.ok(svg.includes('late &lt;script&gt;'));
  assert.match(timelineSvg({ traceEvents: [], displayTimeUnit: 'ns', otherData: { clock: '', windowStartMonoNs: '0', windowEndMonoNs: '0' } }, 'x'), /holds no sample points/);
});
