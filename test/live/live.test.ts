import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHistogram, percentileNs, record } from '../../src/live/histogram.ts';
import { createJoiner } from '../../src/live/joiner.ts';
import { renderLive, renderLiveLine } from '../../src/live/view.ts';
import { nearestRank } from '../../src/util/percentile.ts';

test('histogram percentiles bound the exact nearest-rank value from above within one bucket (12 %)', () => {
  let x = 7;
  const next = () => { x = (x * 1103515245 + 12345) % 2 ** 31; return x / 2 ** 31; };
  const values: number[] = [];
  const h = createHistogram();
  for (let i = 0; i < 100_000; i++) {
    const v = Math.round(20_000 * Math.exp(2 * next()) + (next() < 0.001 ? 5_000_000 * next() : 0));
    values.push(v);
    record(h, v);
  }
  values.sort((a, b) => a - b);
  for (const p of [50, 90, 99, 99.9, 99.99]) {
    const exact = nearestRank(values, p);
    const est = percentileNs(h, p);
    assert.ok(est >= exact && est <= exact * 1.13, `p${p}: exact ${exact}, histogram ${est}`);
  }
  assert.equal(percentileNs(h, 100), values.at(-1));
  record(h, -5);
  assert.equal(h.negative, 1);
});

test('the joiner pairs points of one sample, counts late samples exactly, and evicts unmatched halves', () => {
  const j = createJoiner(['T1', 'T2'], { Thyp: 100_000 });
  const t = 1_700_000_000_000_000_000n;
  for (let k = 0; k < 100; k++) {
    j.point('MU01', 0x4000, k, 0, 'T1', t + BigInt(k) * 250_000n);
    if (k !== 42) j.point('MU01', 0x4000, k, 0, 'T2', t + BigInt(k) * 250_000n + (k % 10 === 0 ? 150_000n : 20_000n));
  }
  j.point('MU01', 0x4000, 5, 0, 'T2', t); // a copy at the same point: ignored
  const [s] = j.stats();
  assert.equal(s!.segment, 'Thyp');
  assert.equal(s!.hist.count, 99);
  assert.equal(s!.late, 10);
  assert.equal(s!.hist.max, 150_000);
  const worst = j.tick(Date.now());
  assert.deepEqual(worst, [{ segment: 'Thyp', stream: 'MU01', worstNs: 150_000 }]);
  j.tick(Date.now() + 10_000);
  assert.equal(j.unmatched(), 1, 'sample 42 never reached T2');
  const frame = { title: 'svtrace trace', elapsedS: 3, stats: j.stats(), rates: new Map(), missing: new Map([['MU01', 0]]), worstLines: ['00:00:01 Thyp 150 µs MU01'], footer: [] };
  const screen = renderLive(frame);
  assert.match(screen, /Thyp\s+MU01\s+4000\s+99/);
  assert.match(screen, /10 > 100/);
  assert.match(screen, /█/);
  assert.match(renderLiveLine(frame), /^3s Thyp n=99 p50≤\S+ p99≤\S+ max=150 late=10 missing=0$/);
});

test('metrics: cumulative buckets agree with the samples, hostile svIDs are escaped, served on loopback', async () => {
  const { renderMetrics, serveMetrics, parseListen } = await import('../../src/live/metrics.ts');
  const j = createJoiner(['T3', 'T4'], { Tsub: 100_000 });
  const t = 1_700_000_000_000_000_000n;
  const evil = 'MU"1\\\n} 9';
  for (let k = 0; k < 1000; k++) {
    j.point(evil, 0x4000, k, 0, 'T3', t);
    j.point(evil, 0x4000, k, 0, 'T4', t + BigInt(5_000 + k * 100)); // 5 µs .. 104.9 µs
  }
  const src = { stats: () => j.stats(), missing: () => new Map([[evil, 3]]), counters: () => ({ lost_events: 0 }) };
  const text = renderMetrics(src);
  assert.match(text, /stream="MU\\"1\\\\\\n} 9"/);
  const buckets = [...text.matchAll(/svtrace_latency_seconds_bucket\{.*?le="([^"]+)"\} (\d+)/g)].map((m) => [m[1]!, Number(m[2])] as const);
  // le="1.00e-5": samples ≤ 10 µs are k ≤ 50 → 51 of them
  assert.deepEqual(buckets.find(([le]) => le === '0.00001'), ['0.00001', 51]);
  assert.deepEqual(buckets.at(-1), ['+Inf', 1000]);
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]![1] >= buckets[i - 1]![1], 'cumulative');
  assert.match(text, /svtrace_late_samples_total\{.*\} 49/); // > 100 µs: k = 951..999
  assert.match(text, /svtrace_missing_samples_total\{stream=".*"\} 3/);
  assert.deepEqual(parseListen('9464'), { host: '127.0.0.1', port: 9464 });
  assert.throws(() => parseListen('localhost:99999'), /HOST:PORT/);
  const served = await serveMetrics('127.0.0.1:0'.replace(':0', ':' + String(20000 + (process.pid % 20000))), src);
  try {
    const body = await (await fetch(served.url)).text();
    assert.equal(body, renderMetrics(src));
  } finally {
    await served.close();
  }
});

test('the Grafana dashboard only queries metrics svtrace serves', async () => {
  const { readFileSync } = await import('node:fs');
  const { renderMetrics } = await import('../../src/live/metrics.ts');
  const dash = JSON.parse(readFileSync(new URL('../../examples/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  const j = createJoiner(['T1', 'T2'], { Thyp: 100_000 });
  j.point('MU01', 1, 0, 0, 'T1', 0n); j.point('MU01', 1, 0, 0, 'T2', 5000n);
  const served = new Set([...renderMetrics({ stats: () => j.stats(), missing: () => new Map([['MU01', 0]]), counters: () => ({ events: 2 }) }).matchAll(/^(svtrace_[a-z_]+)/gm)].map((m) => m[1]!));
  const used = dash.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/svtrace_[a-z_]+/g)].map((m) => m[0])));
  assert.ok(used.length >= 6);
  for (const name of used) assert.ok(served.has(name), `${name} is not served`);
});
