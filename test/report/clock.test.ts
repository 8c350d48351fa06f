/**
 * The clock correction as `svtrace report` shows it, through the CLI seam:
 * a guest 605 ms behind the host, its offset in its record, in the flag or
 * in the config; each cross-machine segment's ± in the HTML table, the first
 * screen, summary.md, summary.json and `--json`; without an offset, the
 * failed verdict and the warnings that name the clocks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import * as reportCmd from '../../src/cli/report.ts';
import type { AnalysisResult } from '../../src/analyze/index.ts';
import { OFFSET_NS, START_NS, UNC_NS, guestExtra, shifted, truth, writeClockWorld } from '../analyze/clock-world.ts';

const dir = mkdtempSync(join(tmpdir(), `svtrace-report-clock-${process.pid}-`));
test.after(() => rmSync(dir, { recursive: true, force: true }));

// a hostile guest host name: it reaches the clock lines, the flag and the config
const GUEST = '(none)<img src=x onerror=alert(9)>';

async function cli(args: string[]): Promise<{ code: number | undefined; out: string }> {
  let out = '';
  const io: reportCmd.CliIo = { out: (s) => { out += s; }, progress: () => {}, progressIsTty: false };
  const program = new Command().name('svtrace').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  reportCmd.register(program, io);
  const saved = process.exitCode;
  const savedErr = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => { out += s; return true; }) as typeof process.stderr.write;
  try {
    process.exitCode = undefined;
    await program.parseAsync(['node', 'svtrace', ...args]);
    return { code: process.exitCode as number | undefined, out };
  } finally {
    process.stderr.write = savedErr;
    process.exitCode = saved;
  }
}

const tr = truth(11);
const UNC_US = '±1 187';
const SPEC = `-605.123457ms±${Number(UNC_NS) / 1e6}ms`;

test('a measured guest offset: the report shows each cross-machine segment\'s ± everywhere and passes', async () => {
  const run = await writeClockWorld(join(dir, 'measured'), tr, { guestNs: shifted, guestHost: GUEST, extra: guestExtra({ offsetNs: OFFSET_NS, uncertaintyNs: UNC_NS, measuredAtNs: START_NS }) });
  const out = join(dir, 'out-measured');
  const json = await cli(['report', run, '--out', out, '--json']);
  assert.equal(json.code, 0, json.out);
  const r = JSON.parse(json.out) as AnalysisResult;
  const seg = (x: AnalysisResult, name: string) => x.segments.find((s) => s.segment === name)!;
  assert.equal(seg(r, 'Ttot').clock.uncertaintyNs, Number(UNC_NS));
  assert.equal(seg(r, 'Tsub').clock.crossMachine, false);
  assert.ok(!r.warnings.some((w) => w.code === 'ANALYZE_NEGATIVE_LATENCY'));
  assert.equal(r.clocks.find((c) => c.machine === GUEST)?.offsetNs, Number(OFFSET_NS));

  const summaryJson = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as AnalysisResult;
  assert.deepEqual(summaryJson.segments.map((s) => [s.segment, s.clock.uncertaintyNs]),
    [['Tnet', null], ['Thyp', null], ['Ttrans', 1_187_000], ['Tsub', null], ['Tseapath', 1_187_000], ['Ttot', 1_187_000]]);

  const md = readFileSync(join(out, 'summary.md'), 'utf8');
  assert.match(md, /\| clock \(± µs\) \|/);
  assert.match(md, /\| Ttot \| T0→T4 \|[^\n]*\| ±1 187 \|/);
  assert.match(md, /\| Tsub \| T3→T4 \|[^\n]*\| one machine \|/);
  assert.match(md, /clock of "\(none\)[^"]*" \(T3 T4\): −605\.123 ms ±1\.187 ms, measured \(its records\); its times corrected onto the clock of "lab-host" before the join/);

  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.ok(!html.includes('<img src=x'), 'the guest\'s host name is escaped');
  assert.match(html, /<th>clock \(± µs\)<\/th>/);
  assert.match(html, /<td>Ttrans<\/td>.*<td class="num">±1 187<\/td><\/tr>/);
  assert.match(html, /clock of &quot;\(none\)&lt;img src=x onerror=alert\(9\)&gt;&quot; \(T3 T4\): −605\.123 ms ±1\.187 ms/);
  // first screen: the Ttrans hop carries its clock line, the spans their label
  assert.match(html, /<g class="hop" data-segment="Ttrans"[^>]*>.*?data-fig="clock" data-clock-ns="1187000"[^>]*>clock ±1 187 µs<\/text>/);
  assert.doesNotMatch(html, /<g class="hop" data-segment="Tsub"[^>]*>(?:(?!<\/g>).)*data-fig="clock"/);
  assert.match(html, /Ttot \(T0→T4\): p50 [^<]* · clock ±1 187 µs</);

  // the text summary names it too
  const text = await cli(['report', run, '--out', join(dir, 'out-text')]);
  assert.match(text.out, /Ttot +T0→T4 .* ±1 187\n/);
  assert.ok(text.out.includes(UNC_US));
});

test('no offset: the verdict fails and the warnings name the clocks; the flag or the config corrects it, a bad spec is a usage error', async () => {
  const run = await writeClockWorld(join(dir, 'unmeasured'), tr, { guestNs: shifted, guestHost: GUEST, extra: guestExtra() });
  const plain = await cli(['report', run, '--out', join(dir, 'out-plain')]);
  assert.equal(plain.code, 1, plain.out);
  assert.match(plain.out, /warning ANALYZE_CLOCK_SUSPECT: Ttot: p50 [\d.]+ ms: T0 is on "lab-host", T4 on "\(none\)<img src=x onerror=alert\(9\)>", with no clock offset known/);
  assert.match(plain.out, /svtrace lab clock --run-dir DIR/);
  assert.match(plain.out, /Ttot +T0→T4 .* no offset\n/);

  const flag = await cli(['report', run, '--out', join(dir, 'out-flag'), '--json', '--clock-offset', `${GUEST}=${SPEC}`]);
  assert.equal(flag.code, 0, flag.out);
  const r = JSON.parse(flag.out) as AnalysisResult;
  assert.deepEqual(r.clocks.filter((c) => c.status === 'corrected').map((c) => [c.machine, c.source, c.offsetNs, c.uncertaintyNs]), [[GUEST, 'option', Number(OFFSET_NS), Number(UNC_NS)]]);
  assert.equal(r.segments.find((s) => s.segment === 'Ttot')!.all.maxNs, Math.max(...tr.seg.Ttot!));

  const cfg = join(dir, 'clock.toml');
  writeFileSync(cfg, `[report]\nclock_offsets = { ${JSON.stringify(GUEST)} = "${SPEC}" }\n`);
  const fromConfig = await cli(['report', run, '--out', join(dir, 'out-config'), '--json', '--config', cfg]);
  assert.equal(fromConfig.code, 0, fromConfig.out);
  assert.equal((JSON.parse(fromConfig.out) as AnalysisResult).segments.find((s) => s.segment === 'Ttot')!.all.minNs, Math.min(...tr.seg.Ttot!));

  for (const bad of [`${GUEST}=605 parsecs`, `nobody=-605ms`]) {
    const b = await cli(['report', run, '--out', join(dir, 'out-bad'), '--clock-offset', bad]);
    assert.equal(b.code, 2, b.out);
    assert.match(b.out, /ANALYZE_BAD_CLOCK_OFFSET|clock offset/);
  }
});
