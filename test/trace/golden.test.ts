/**
 * A reviewable example of a generated program: two streams (one layout
 * each) at T1 and T2, kept in test/trace/golden/two-streams.bt so a reader
 * sees the real program, not only the template. A change to the generator
 * shows here as a diff: regenerate with SVTRACE_UPDATE_GOLDEN=1 and review it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateTraceProgram } from '../../src/trace/generate.ts';
import { layoutFromFrame } from '../../src/trace/layout.ts';
import { frameTemplate } from '../../src/publish/frames.ts';
import { demoStreams } from '../../src/demo/run.ts';
import { dryRun, findBpftrace } from '../../src/trace/bpftrace.ts';
import { ROOT } from '../helpers/cli.ts';

const GOLDEN = join(ROOT, 'test', 'trace', 'golden', 'two-streams.bt');

function program(): string {
  const layouts = demoStreams(2).map((s) => layoutFromFrame(frameTemplate(s).bytes));
  return generateTraceProgram({
    points: [
      { id: 1, name: 'T1', probes: ['tracepoint:net:netif_receive_skb'], filter: { interface: { name: 'ens1f0', netns: null, ifindex: 4, netnsInode: 4026531840 } } },
      { id: 2, name: 'T2', probes: ['tracepoint:net:net_dev_start_xmit'], filter: { interface: { name: 'vnet3', netns: null, ifindex: 12, netnsInode: 4026531840 } } },
    ],
    layouts, unknownSamples: 4, stopComm: 'svtstop4242', ownerPid: 4242,
  });
}

test('the generated program for two streams at T1 and T2 is the reviewed golden file', () => {
  const text = program();
  if (process.env.SVTRACE_UPDATE_GOLDEN) writeFileSync(GOLDEN, text);
  assert.equal(text, readFileSync(GOLDEN, 'utf8'), 'the generator changed: review the diff, then SVTRACE_UPDATE_GOLDEN=1 npx tsx --test test/trace/golden.test.ts');
});

test('the golden program compiles (bpftrace --dry-run)', { skip: findBpftrace() && process.getuid?.() === 0 ? false : 'needs bpftrace and root' }, async () => {
  const r = await dryRun(readFileSync(GOLDEN, 'utf8'));
  assert.ok(r.ok, r.messages.join('\n'));
});
