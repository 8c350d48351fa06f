/**
 * report.html in a real browser: Debian's headless Chromium (driven by
 * playwright-core) opens the file offline, logs no console error and no
 * page error, runs nothing that came off the wire (a `<script>` svID, an
 * `onerror` host), fetches nothing, and draws every chart with a real size:
 * the vega charts, and the first screen's path picture and share chart,
 * whose figures are summary.json's. The same for a comparison of two
 * whole-path runs (T0..T4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { analyzeRecords, type AnalysisResult } from '../../src/analyze/index.ts';
import { compareAnalyses, writeComparison, writeReport } from '../../src/report/index.ts';
import { us } from '../../src/report/format.ts';
import { prng, tAt, writeRecord, type TestRow } from '../analyze/helpers.ts';
import { writePathRun } from './path-run.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const EVIL_SV = '<script>window.__pwned=1;alert(1)</script>';
const EVIL_HOST = '<img src=x onerror="window.__pwned=2">';

interface DrawnHop { segment: string; verdict: string | null; figs: string[]; color: string | null; w: number; h: number }

/** What the first screen shows in the browser: per path picture its hops (segment, verdict, printed figures, stroke colour) and the picture's size. */
async function firstScreen(page: Page): Promise<{ pictures: DrawnHop[][]; share: { pieces: number; w: number; h: number; sums: string[] } | null }> {
  const pictures = await page.$$eval('.path-picture svg', (svgs) => svgs.map((svg) => {
    const box = svg.getBoundingClientRect();
    return [...svg.querySelectorAll('g.hop')].map((g) => ({
      segment: g.getAttribute('data-segment') ?? '', verdict: g.getAttribute('data-verdict'),
      figs: [...g.querySelectorAll('text.fig')].map((t) => t.textContent ?? ''),
      color: g.querySelector('line')?.getAttribute('stroke') ?? null, w: box.width, h: box.height,
    }));
  }));
  const shares = await page.$$eval('.share-chart svg', (svgs) => svgs.map((svg) => {
    const box = svg.getBoundingClientRect();
    return { pieces: svg.querySelectorAll('g.share rect').length, w: box.width, h: box.height, sums: [...svg.querySelectorAll('text.sum')].map((t) => t.textContent ?? '') };
  }));
  return { pictures, share: shares[0] ?? null };
}

/** The hops the picture must show, computed from summary.json alone. */
function expectedHops(r: AnalysisResult): { segment: string; figs: string[] }[] {
  return r.points.slice(1).flatMap((to, i) => {
    const s = r.segments.find((x) => x.from === r.points[i] && x.to === to);
    return s ? [{ segment: s.segment, figs: [`p50 ${us(s.all.percentilesNs.p50)} µs`, `p99 ${us(s.all.percentilesNs.p99)} µs`, `max ${us(s.all.maxNs)} µs`] }] : [];
  });
}

const COLOR = { pass: '#2e7d32', fail: '#c62828', none: '#757575' } as Record<string, string>;

function assertFirstScreen(fs: Awaited<ReturnType<typeof firstScreen>>, results: AnalysisResult[]): void {
  assert.equal(fs.pictures.length, results.length, 'a path picture per run');
  fs.pictures.forEach((hops, i) => {
    assert.deepEqual(hops.map((h) => ({ segment: h.segment, figs: h.figs })), expectedHops(results[i]!), 'the figures drawn are summary.json\'s');
    for (const h of hops) {
      assert.ok(h.w > 400 && h.h > 80, `path picture size ${h.w}×${h.h}`);
      assert.equal(h.color, COLOR[h.verdict ?? ''], `${h.segment} drawn in its verdict's colour`);
    }
  });
  assert.ok(fs.share, 'the share chart is drawn');
  assert.ok(fs.share.w > 400 && fs.share.h > 60, `share chart size ${fs.share.w}×${fs.share.h}`);
  const hops = results.reduce((n, r) => n + expectedHops(r).length, 0);
  assert.ok(fs.share.pieces >= hops, `share pieces ${fs.share.pieces} (≥ one per hop and run)`);
  assert.equal(fs.share.sums.length, 3 * results.length, 'a bar per percentile and run');
}

async function open(browser: Browser, html: string): Promise<{ page: Page; problems: string[]; requests: string[] }> {
  const page = await browser.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); void d.dismiss(); });
  page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
  await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
  return { page, problems, requests };
}

async function buildReport(dir: string): Promise<string> {
  const r = prng(11);
  const rows1: TestRow[] = [], rows2: TestRow[] = [];
  for (const svId of ['MU01', EVIL_SV]) {
    for (let sec = 0; sec < 2; sec++) {
      for (let smp = 0; smp < 4000; smp++) {
        const t1 = tAt(sec, smp, 4000, 20_000);
        const hyp = smp % 997 === 3 ? 400_000 : 8_000 + r() * 30_000;
        rows1.push({ point: 'T1', svId, smpCnt: smp, tNs: t1 });
        rows2.push({ point: 'T2', svId, smpCnt: smp, tNs: t1 + BigInt(Math.round(hyp)) });
      }
    }
  }
  await writeRecord(join(dir, 'run', 'hv1'), { role: 'trace', host: EVIL_HOST, runId: 'browser', points: ['T1'] }, rows1);
  await writeRecord(join(dir, 'run', 'hv2'), { role: 'trace', host: 'hv', runId: 'browser', points: ['T2'] }, rows2);
  const result = await analyzeRecords([join(dir, 'run')]);
  const files = await writeReport(result, join(dir, 'report'));
  return files.html;
}

test('report.html opens offline in headless Chromium without errors and shows its charts', async (t) => {
  if (!CHROMIUM) {
    t.skip('Debian\'s chromium is not installed (scripts/setup.sh --tests installs it)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-browser-'));
  let browser: Browser | undefined;
  try {
    const html = await buildReport(dir);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    const { page, problems, requests } = await open(browser, html);

    assert.deepEqual(problems, [], 'no console error, page error or dialog');
    assert.deepEqual(requests, [], 'the page fetches nothing');
    assert.equal(await page.evaluate('window.__pwned'), undefined, 'no string off the wire ran');

    // Every chart: an inline SVG with a real size and drawn marks.
    const charts = await page.$$eval('.chart svg', (svgs) => svgs.map((s) => {
      const box = s.getBoundingClientRect();
      return { w: box.width, h: box.height, marks: s.querySelectorAll('path, rect, line').length };
    }));
    const pngs = readdirSync(join(dir, 'report', 'charts')).filter((f) => f.endsWith('.png'));
    assert.ok(charts.length >= 3, `charts drawn: ${charts.length}`);
    assert.equal(charts.length, pngs.length, 'one inline chart per PNG written beside the page');
    for (const c of charts) {
      assert.ok(c.w > 200 && c.h > 100, `chart size ${c.w}×${c.h}`);
      assert.ok(c.marks > 10, `chart marks ${c.marks}`);
    }
    // The hostile svID is shown as text.
    const text = await page.innerText('body');
    assert.ok(text.includes(EVIL_SV), 'the svID appears as text');
    assert.ok(text.includes('Thyp'), 'the segment is in the summary');
    // The first screen: the path T1 → T2 with Thyp's figures, and the share chart.
    const summary = JSON.parse(readFileSync(join(dir, 'report', 'summary.json'), 'utf8')) as AnalysisResult;
    assertFirstScreen(await firstScreen(page), [summary]);
  } finally {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a comparison of two whole-path runs opens in Chromium with A and B on its first screen', async (t) => {
  if (!CHROMIUM) {
    t.skip('Debian\'s chromium is not installed (scripts/setup.sh --tests installs it)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-browser-cmp-'));
  let browser: Browser | undefined;
  try {
    const a = await analyzeRecords([await writePathRun(dir, 21, 5000)]);
    const b = await analyzeRecords([await writePathRun(dir, 22, 150, 5)]);
    const files = await writeComparison(compareAnalyses(a, b), join(dir, 'compare'));
    const summary = JSON.parse(readFileSync(files.json, 'utf8')) as { a: AnalysisResult; b: AnalysisResult };
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    const { page, problems, requests } = await open(browser, files.html);
    assert.deepEqual(problems, [], 'no console error, page error or dialog');
    assert.deepEqual(requests, [], 'the page fetches nothing');
    assert.equal(await page.evaluate('window.__pwned'), undefined, 'no string off the wire ran');
    const fs = await firstScreen(page);
    assertFirstScreen(fs, [summary.a, summary.b]);
    assert.deepEqual(fs.pictures.map((p) => p.map((h) => h.segment)), [['Tnet', 'Thyp', 'Ttrans', 'Tsub'], ['Tnet', 'Thyp', 'Ttrans', 'Tsub']]);
    const charts = await page.$$eval('.chart svg', (svgs) => svgs.map((s) => s.getBoundingClientRect().width));
    assert.ok(charts.length >= 18 && charts.every((w) => w > 200), `comparison charts drawn: ${charts.length}`);
  } finally {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
