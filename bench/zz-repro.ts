import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labDown, labUp } from '../src/lab/index.ts';
import { runPublish } from '../src/publish/run.ts';
import { demoStreams } from '../src/demo/run.ts';
import { frameTemplate } from '../src/publish/frames.ts';
import { layoutFromFrame } from '../src/trace/layout.ts';
import { runTrace } from '../src/trace/run.ts';
const n = Number(process.argv[2] ?? 25);
const engine = (process.argv[3] ?? 'bpf') as 'bpf' | 'bpftrace';
const dir = mkdtempSync(join(tmpdir(), 'svt-repro-'));
const runDir = join(dir, 'lab');
try {
  const lab = (await labUp({ runDir, switch: 'bridge', prefix: `zr${(process.pid % 10000).toString(36)}` })).topology;
  const streams = demoStreams(n);
  const layouts = streams.map((s) => layoutFromFrame(frameTemplate(s).bytes));
  const sub = process.argv[5] === "sub" ? (await import("../src/subscribe/run.ts")).runSubscribe({ ifname: lab.vmIf, netns: lab.vmNetns, streams: [], durationS: 30, idleStopS: 1.5, rcvBufBytes: 64 << 20 }) : null;
  const stop = new AbortController();
  const pub = runPublish({ streams, ifname: lab.pubIf, netns: lab.pubNetns, durationS: 3600, fifoPriority: 50, signal: stop.signal });
  const t0 = Date.now();
  const r = await runTrace({ trace: { role: 'hypervisor', engine, ingress: { name: lab.hostPubIf }, vmPort: { name: lab.hostVmIf }, ...(process.argv[4] === "learn" ? {} : { layouts }) }, limitsUs: {}, durationS: 5, stopOnSignals: false,
    onSecond: (s) => console.log(`${((Date.now() - t0) / 1000).toFixed(1)} s events ${s.events} rss ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`),
    onWarning: (m) => console.log('warn', m) });
  console.log('done', r.events, JSON.stringify(r.summary.points), r.summary.lostEvents, r.summary.lostLines);
  stop.abort();
  await pub.catch(() => undefined);
} finally {
  await labDown(runDir).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}
