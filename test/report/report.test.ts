/**
 * The report end to end through the CLI seam (register() on a fresh
 * commander program, in process): exit codes from verdicts, a hostile svID /
 * host / runId that cannot inject anything into HTML, Markdown or the
 * terminal, a self-contained page, valid PNGs, and `compare`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { Command } from 'commander';
import * as reportCmd from '../../src/cli/report.ts';
import * as compareCmd from '../../src/cli/compare.ts';
import { prng, tAt, writeRecord, type TestRow } from '../analyze/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'svtrace-report-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const EVIL_SV = '<script>alert(1)</script>';
const EVIL_HOST = '<img src=x onerror=alert(2)>';
const EVIL_RUN = '"><svg onload=alert(3)>|*[x](http://evil.example)';

async function makeRun(name: string, spikeUs: number, seed: number): Promise<string> {
  const r = prng(seed);
  const rows3: TestRow[] = [], rows4: TestRow[] = [];
  for (const svId of ['MU01', EVIL_SV]) {
    for (let sec = 0; sec < 2; sec++) {
      for (let smp = 0; smp < 4000; smp++) {
        const t3 = tAt(sec, smp, 4000, 30_000);
        const sub = smp % 2000 === 7 ? spikeUs * 1000 : 10_000 + r() * 20_000;
        rows3.push({ point: 'T3', svId, smpCnt: smp, tNs: t3 });
        rows4.push({ point: 'T4', svId, smpCnt: smp, tNs: t3 + BigInt(Math.round(sub)) });
      }
    }
  }
  const run = join(dir, name);
  await writeRecord(join(run, 'kernel'), { role: 'trace', host: EVIL_HOST, runId: EVIL_RUN, points: ['T3'], format: 'parquet' }, rows3);
  await writeRecord(join(run, 'app'), { role: 'subscribe', host: 'vm', runId: EVIL_RUN, points: ['T4'] }, rows4);
  return run;
}

interface CliRun { code: number | undefined; out: string; progress: string }

async function cli(args: string[]): Promise<CliRun> {
  let out = '', progress = '';
  const io: reportCmd.CliIo = { out: (s) => { out += s; }, progress: (s) => { progress += s; }, progressIsTty: false };
  const program = new Command().name('svtrace').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  reportCmd.register(program, io);
  compareCmd.register(program, io);
  const saved = process.exitCode;
  const savedErr = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  try {
    process.exitCode = undefined;
    await program.parseAsync(['node', 'svtrace', ...args]);
    return { code: process.exitCode as number | undefined, out: out + err, progress };
  } finally {
    process.stderr.write = savedErr;
    process.exitCode = saved;
  }
}

const config = (name: string, toml: string) => { const p = join(dir, name); writeFileSync(p, toml); return p; };

/** Tag names of every element in the page, outside the JSON data block. */
function tagsOutsideData(html: string): { tags: string[]; rest: string; data: string } {
  const m = /<script type="application\/json" id="svtrace-data">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, 'the data block exists');
  const rest = html.replace(m[0], '');
  return { tags: [...rest.matchAll(/<([A-Za-z][\w:-]*)/g)].map((x) => x[1]!.toLowerCase()), rest, data: m[1]! };
}

function assertPng(path: string): void {
  const b = readFileSync(path);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${path} signature`);
  let off = 8;
  const chunks: string[] = [];
  while (off < b.length) {
    const len = b.readUInt32BE(off);
    const type = b.toString('latin1', off + 4, off + 8);
    assert.equal(b.readUInt32BE(off + 8 + len), crc32(b.subarray(off + 4, off + 8 + len)), `${path} ${type} CRC`);
    chunks.push(type);
    off += 12 + len;
  }
  assert.equal(off, b.length);
  assert.equal(chunks[0], 'IHDR');
  assert.equal(chunks.at(-1), 'IEND');
  assert.ok(chunks.includes('IDAT'));
  assert.ok(b.readUInt32BE(16) > 100 && b.readUInt32BE(20) > 100, 'width and height');
}

test('verdicts set the exit code: 0 pass, 1 fail, 2 usage or input error', async () => {
  const run = await makeRun('good', 60, 1);
  const pass = await cli(['report', run, '--out', join(dir, 'out-pass'), '--config', config('pass.toml', '[verdicts]\nlimits_us = { Tsub = 100 }\n')]);
  assert.equal(pass.code, 0, pass.out);
  assert.match(pass.out, /Verdicts: PASS/);
  const fail = await cli(['report', run, '--out', join(dir, 'out-fail'), '--config', config('fail.toml', '[verdicts]\nlimits_us = { Tsub = 50 }\n')]);
  assert.equal(fail.code, 1);
  assert.match(fail.out, /Tsub max ≤ 50 µs +60\.0 µs +FAIL/);
  const p999 = await cli(['report', run, '--out', join(dir, 'out-p'), '--config', config('p.toml', '[verdicts]\nlimits_us = { Tsub = 50 }\n'), '--verdict-at', 'p99.9']);
  assert.equal(p999.code, 0, p999.out); // 0.05 % spikes of 60 µs: the 99.9th percentile is below 50 µs
  assert.equal((await cli(['report', join(dir, 'nope'), '--out', join(dir, 'x')])).code, 2);
  assert.equal((await cli(['report', run, '--out', join(dir, 'x'), '--config', config('typo.toml', '[verdicts]\nlimits_us = { Tsubb = 1 }\n')])).code, 2);
  assert.equal((await cli(['report', run, '--out', join(dir, 'x'), '--segment', 'bad'])).code, 2);
  await assert.rejects(cli(['report', run]), /--out/); // commander: required option (main.ts maps it to exit 2)
  const json = await cli(['report', run, '--out', join(dir, 'out-json'), '--json', '--segment', 'Tapp=T3:T4']);
  const parsed = JSON.parse(json.out);
  assert.equal(parsed.format, 'svtrace-analysis');
  assert.ok(parsed.segments.some((s: { segment: string }) => s.segment === 'Tapp'));
  assert.equal(json.progress, '', 'no progress when stderr is not a terminal');
});

test('the config file sets what plain limits apply to and adds custom segments; flags override it', async () => {
  const run = await makeRun('cfg', 60, 4);
  const cfg = config('cfg.toml', '[verdicts]\nlimits_us = { Tsub = 50, Tapp = 50 }\nat = "p99.9"\n\n[report]\nsegments = { Tapp = "T3:T4" }\n');
  const viaConfig = await cli(['report', run, '--out', join(dir, 'out-cfg'), '--config', cfg, '--json']);
  assert.equal(viaConfig.code, 0, viaConfig.out); // p99.9 is below 50 µs for both
  const parsed = JSON.parse(viaConfig.out);
  const tapp = parsed.segments.find((s: { segment: string }) => s.segment === 'Tapp');
  const tsub = parsed.segments.find((s: { segment: string }) => s.segment === 'Tsub');
  assert.ok(tapp, 'the config\'s custom segment is measured');
  assert.equal(tapp.all.count, tsub.all.count);
  assert.equal(tapp.all.maxNs, tsub.all.maxNs);
  // The flag wins over the config: at max, the 60 µs spikes fail both limits.
  const viaFlag = await cli(['report', run, '--out', join(dir, 'out-cfg-max'), '--config', cfg, '--verdict-at', 'max']);
  assert.equal(viaFlag.code, 1, viaFlag.out);
  assert.match(viaFlag.out, /Tapp max ≤ 50 µs +60\.0 µs +FAIL/);
  // Bad config values are usage errors that name the key.
  const badAt = await cli(['report', run, '--out', join(dir, 'x'), '--config', config('bad-at.toml', '[verdicts]\nat = "99th"\n')]);
  assert.equal(badAt.code, 2);
  assert.match(badAt.out, /verdicts\.at/);
  const badSeg = await cli(['report', run, '--out', join(dir, 'x'), '--config', config('bad-seg.toml', '[report]\nsegments = { Tx = "T1-T2" }\n')]);
  assert.equal(badSeg.code, 2);
  assert.match(badSeg.out, /report\.segments/);
});

test('a hostile svID, host and runId cannot inject anything; the page is self-contained; PNGs are valid', async () => {
  const run = await makeRun('evil', 900, 2);
  const out = join(dir, 'out-evil');
  const r = await cli(['report', run, '--out', out]);
  assert.equal(r.code, 1); // Tsub max 900 µs > 100 µs
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  const { tags, rest, data } = tagsOutsideData(html);
  for (const evil of [EVIL_SV, EVIL_HOST, '<svg onload']) assert.ok(!rest.includes(evil), `raw ${evil} outside the data block`);
  assert.ok(rest.includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'the svID is shown, escaped');
  assert.ok(!tags.includes('script') && !tags.includes('img') && !tags.includes('iframe') && !tags.includes('object'), `tags: ${[...new Set(tags)].join(' ')}`);
  assert.equal((html.match(/<script/g) ?? []).length, 1, 'only the JSON block');
  // Every literal tag: no event handler, nothing to fetch (text may show the hostile strings, escaped).
  for (const tag of rest.match(/<[A-Za-z][^>]*>/g) ?? []) {
    assert.ok(!/\son[a-z]+\s*=/i.test(tag), `event handler in ${tag}`);
    assert.ok(!/\s(src|href|xlink:href|action|data)\s*=/i.test(tag) || /href="#/.test(tag), `fetching attribute in ${tag}`);
    assert.ok(!/https?:|url\(\s*['"]?(?!#)/i.test(tag), `URL in ${tag}`);
  }
  const css = /<style>([\s\S]*?)<\/style>/.exec(rest)![1]!;
  assert.ok(!/@import|url\(/i.test(css), 'CSS fetches nothing');
  assert.ok(!data.includes('<') && data.includes('\\u003cscript\\u003ealert(1)'), 'JSON has < escaped');
  assert.deepEqual(JSON.parse(data), JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')));
  const md = readFileSync(join(out, 'summary.md'), 'utf8');
  for (const evil of ['<script', '<img', '<svg', '](http']) assert.ok(!md.includes(evil), `markdown holds ${evil}`);
  assert.ok(![...r.out].some((ch) => ch.charCodeAt(0) < 0x20 && ch !== '\n'), 'no control characters on the terminal');
  const charts = readdirSync(join(out, 'charts'));
  assert.equal(charts.filter((f) => f.endsWith('.png')).length, 3); // Tsub: histogram, exceedance, per second
  for (const f of charts) {
    if (f.endsWith('.png')) assertPng(join(out, 'charts', f));
    else assert.match(readFileSync(join(out, 'charts', f), 'utf8'), /^<svg[^>]*>/);
  }
});

test('compare: side by side with changes, overlaid charts, exit code from B', async () => {
  const a = await makeRun('cmp-a', 900, 3), b = await makeRun('cmp-b', 60, 4);
  const out = join(dir, 'out-cmp');
  const r = await cli(['compare', a, b, '--out', out]);
  assert.equal(r.code, 0, r.out); // B passes Tsub ≤ 100 µs
  assert.match(r.out, /> 100 µs +8 +0 +−100\.0 %/);
  assert.match(r.out, /max \(µs\) +900 +60\.0 +−93\.3 %/);
  assert.match(r.out, /^Tsub > 100 µs: 8 → 0, −100\.0 %$/m);
  assert.match(r.out, /^Tsub max: 900 µs → 60\.0 µs, −93\.3 %$/m);
  const c = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
  assert.equal(c.format, 'svtrace-comparison');
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  const { rest } = tagsOutsideData(html);
  assert.ok(!rest.includes(EVIL_SV) && !rest.includes(EVIL_HOST));
  assert.equal((await cli(['compare', b, a, '--out', join(dir, 'out-cmp2')])).code, 1);
  for (const f of readdirSync(join(out, 'charts')).filter((x) => x.endsWith('.png'))) assertPng(join(out, 'charts', f));
});
