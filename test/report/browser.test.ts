/**
 * report.html in a real browser: Debian's headless Chromium (driven by
 * playwright-core) opens the file offline, logs no console error and no
 * page error, runs nothing that came off the wire (a `<script>` svID, an
 * `onerror` host), fetches nothing, and draws every chart with a real size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { analyzeRecords } from '../../src/analyze/index.ts';
import { writeReport } from '../../src/report/index.ts';
import { prng, tAt, writeRecord, type TestRow } from '../analyze/helpers.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const EVIL_SV = '<script>window.__pwned=1;alert(1)</script>';
const EVIL_HOST = '<img src=x onerror="window.__pwned=2">';

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
    const page = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('dialog', (d) => { problems.push(`dialog: ${d.message()}`); void d.dismiss(); });
    page.on('request', (r) => { if (!r.url().startsWith('file:')) requests.push(r.url()); });
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });

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
  } finally {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
