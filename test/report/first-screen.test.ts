/**
 * The first screen of report.html: every figure in the path picture and the
 * share chart equals summary.json's (the report's and the comparison's),
 * hops follow the points of the data, verdict colours follow the verdicts,
 * and nothing in it is unescaped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeRecords, type AnalysisResult } from '../../src/analyze/index.ts';
import { compareAnalyses, writeComparison, writeReport } from '../../src/report/index.ts';
import { us } from '../../src/report/format.ts';
import { pathSvg, shareSvg } from '../../src/report/first-screen.ts';
import { pathView, type PathView } from '../../src/report/path-view.ts';
import { writePathRun } from './path-run.ts';

const dir = mkdtempSync(join(tmpdir(), `svtrace-first-screen-${process.pid}-`));
test.after(() => rmSync(dir, { recursive: true, force: true }));

interface Drawn { segment: string; verdict: string; p50: string; p99: string; max: string }

const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, '\'').replace(/&amp;/g, '&');

/** The hops drawn in one path picture: their attributes and the figures printed. */
function drawnHops(svg: string): Drawn[] {
  return [...svg.matchAll(/<g class="hop" data-segment="([^"]+)" data-verdict="(\w+)"[^>]*>([\s\S]*?)<\/g>/g)].map((m) => {
    const figs = Object.fromEntries([...m[3]!.matchAll(/data-fig="(\w+)"[^>]*>([^<]*)<\/text>/g)].map((f) => [f[1]!, unescape(f[2]!)]));
    return { segment: m[1]!, verdict: m[2]!, p50: figs.p50 ?? '', p99: figs.p99 ?? '', max: figs.max ?? '' };
  });
}

function pictures(html: string): string[] {
  return [...html.matchAll(/<div class="path-picture">(<svg[\s\S]*?<\/svg>)<\/div>/g)].map((m) => m[1]!);
}

function shareChart(html: string): string {
  const m = /<div class="share-chart">(<svg[\s\S]*?<\/svg>)<\/div>/.exec(html);
  assert.ok(m, 'the share chart is in the page');
  return m[1]!;
}

/** What the picture must show for a result, computed here from summary.json alone. */
function expectedHops(r: AnalysisResult): Drawn[] {
  const out: Drawn[] = [];
  for (let i = 0; i + 1 < r.points.length; i++) {
    const s = r.segments.find((x) => x.from === r.points[i] && x.to === r.points[i + 1]);
    if (!s) continue;
    const vs = r.verdicts.filter((v) => v.segment === s.segment && v.status !== 'not-measured');
    out.push({
      segment: s.segment,
      verdict: vs.some((v) => v.status === 'fail') ? 'fail' : vs.length ? 'pass' : 'none',
      p50: `p50 ${us(s.all.percentilesNs.p50)} µs`, p99: `p99 ${us(s.all.percentilesNs.p99)} µs`, max: `max ${us(s.all.maxNs)} µs`,
    });
  }
  return out;
}

function checkShares(svg: string, runs: { label: string; r: AnalysisResult }[]): void {
  const drawn = [...svg.matchAll(/<g class="share" data-run="([^"]*)" data-quantile="([^"]+)" data-segment="([^"]+)" data-ns="(\d+)" data-share="([\d.]+)"/g)]
    .map((m) => ({ run: m[1]!, q: m[2]!, segment: m[3]!, ns: Number(m[4]), share: Number(m[5]) }));
  for (const { label, r } of runs) {
    for (const q of ['p50', 'p99', 'p99.99'] as const) {
      const hops = expectedHops(r).map((h) => r.segments.find((s) => s.segment === h.segment)!);
      const sum = hops.reduce((a, s) => a + (s.all.percentilesNs[q] ?? 0), 0);
      const mine = drawn.filter((d) => d.run === label && d.q === q);
      assert.deepEqual(mine.map((d) => d.segment), hops.filter((s) => (s.all.percentilesNs[q] ?? 0) > 0).map((s) => s.segment), `${label} ${q}: a piece per hop, in path order`);
      for (const d of mine) {
        const s = hops.find((x) => x.segment === d.segment)!;
        assert.equal(d.ns, s.all.percentilesNs[q], `${label} ${q} ${d.segment} ns`);
        assert.ok(Math.abs(d.share - d.ns / sum) < 1e-6, `${label} ${q} ${d.segment} share`);
      }
      const sumText = new RegExp(`class="sum" data-run="${label}" data-quantile="${q.replace('.', '\\.')}" data-sum-ns="${sum}"[^>]*>Σ ${us(sum)} µs<`);
      assert.match(svg, sumText, `${label} ${q}: Σ ${us(sum)} µs`);
    }
  }
}

test('the path picture and the share chart show summary.json\'s figures (report)', async () => {
  const run = await writePathRun(dir, 3, 5000);
  const files = await writeReport(await analyzeRecords([run]), join(dir, 'report'));
  const summary = JSON.parse(readFileSync(files.json, 'utf8')) as AnalysisResult;
  const html = readFileSync(files.html, 'utf8');
  assert.ok(html.indexOf('class="first-screen"') < html.indexOf('<h2>Verdicts'), 'the first screen comes before the tables');
  const [picture, ...more] = pictures(html);
  assert.equal(more.length, 0);
  const expected = expectedHops(summary);
  assert.deepEqual(expected.map((h) => h.segment), ['Tnet', 'Thyp', 'Ttrans', 'Tsub'], 'the data has the whole path');
  assert.deepEqual(drawnHops(picture!), expected);
  assert.ok(expected.some((h) => h.verdict === 'fail') && expected.some((h) => h.verdict === 'none'), 'both colours occur in this run');
  // The spans (Tseapath, Ttot) under the hops, with their figures.
  for (const name of ['Tseapath', 'Ttot']) {
    const s = summary.segments.find((x) => x.segment === name)!;
    assert.ok(picture!.includes(`data-segment="${name}"`), name);
    assert.ok(picture!.includes(`p50 ${us(s.all.percentilesNs.p50)} µs · p99 ${us(s.all.percentilesNs.p99)} µs · max ${us(s.all.maxNs)} µs`), `${name} figures`);
  }
  checkShares(shareChart(html), [{ label: '', r: summary }]);
});

test('a comparison draws A and B, with both runs\' bars on one scale', async () => {
  const a = await analyzeRecords([await writePathRun(dir, 4, 5000)]);
  const b = await analyzeRecords([await writePathRun(dir, 5, 150, 5)]);
  const files = await writeComparison(compareAnalyses(a, b), join(dir, 'compare'));
  const summary = JSON.parse(readFileSync(files.json, 'utf8')) as { a: AnalysisResult; b: AnalysisResult };
  const html = readFileSync(files.html, 'utf8');
  const [pa, pb] = pictures(html);
  assert.deepEqual(drawnHops(pa!), expectedHops(summary.a));
  assert.deepEqual(drawnHops(pb!), expectedHops(summary.b));
  const share = shareChart(html);
  checkShares(share, [{ label: 'A', r: summary.a }, { label: 'B', r: summary.b }]);
  // One scale per percentile: bar widths are proportional to µs across A and B.
  const width = (run: string, q: string) => [...share.matchAll(new RegExp(`data-run="${run}" data-quantile="${q.replace('.', '\\.')}"[^>]*><rect [^>]*width="([\\d.]+)"`, 'g'))].reduce((s, m) => s + Number(m[1]), 0);
  const sum = (run: string, q: string) => Number(new RegExp(`class="sum" data-run="${run}" data-quantile="${q.replace('.', '\\.')}" data-sum-ns="(\\d+)"`).exec(share)![1]);
  for (const q of ['p50', 'p99', 'p99.99']) {
    const ratio = width('B', q) / width('A', q), expected = sum('B', q) / sum('A', q);
    assert.ok(Math.abs(ratio - expected) < 0.01, `${q}: B/A bar ${ratio.toFixed(3)} = Σ ratio ${expected.toFixed(3)}`);
  }
});

test('hostile point and segment names are escaped, missing hops drawn dashed', () => {
  const evil = '<script>alert(1)</script>';
  const view: PathView = {
    points: ['T0', evil, 'T4'],
    hops: [
      { segment: `"${evil}`, from: 'T0', to: evil, count: 1, p50Ns: 1000, p99Ns: 2000, p9999Ns: 3000, maxNs: 4000, limitUs: null, verdict: 'none', clockUncertaintyNs: 1_234_000, clockCorrected: true },
      null,
    ],
    spans: [],
  };
  for (const svg of [pathSvg(view, `x"${evil}`), shareSvg([{ label: evil, view }], evil)]) {
    assert.ok(!/<script/i.test(svg) && !/="[^"]*"[^ >]*<script/.test(svg), svg);
    assert.equal([...svg.matchAll(/<(\w+)/g)].filter((m) => !['svg', 'g', 'rect', 'text', 'line', 'path', 'title'].includes(m[1]!)).length, 0, 'only SVG drawing elements');
  }
  assert.match(pathSvg(view, 'p'), /stroke-dasharray="5 4"/);
  assert.deepEqual(pathView({ points: ['T3', 'T4'], segments: [], verdicts: [] } as unknown as AnalysisResult).hops, [null]);
});
