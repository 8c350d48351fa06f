/** The recorder program: generated from validated CPUs only, compiled by the real bpftrace, and run for real. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { SvtraceError } from '../../src/errors.ts';
import { generateRecorderProgram, startRecorder, validateCpus } from '../../src/explain/recorder.ts';
import { ringCoverage } from '../../src/explain/events.ts';
import { dryRun, findBpftrace } from '../../src/trace/bpftrace.ts';

const noBpftrace = findBpftrace() === null ? 'bpftrace is not installed' : undefined;
const notRoot = process.getuid?.() !== 0 ? 'needs root to attach tracepoints' : noBpftrace;

test('CPU lists are validated before they reach the program', () => {
  assert.deepEqual(validateCpus([3, 1, 1]), [1, 3]);
  for (const bad of [-1, 1.5, NaN, '1) || (1', 4096, null]) {
    assert.throws(() => generateRecorderProgram({ cpus: [bad as number] }), (e: unknown) => e instanceof SvtraceError && e.code === 'EXPLAIN_INVALID_CPU', String(bad));
  }
  const p = generateRecorderProgram({ cpus: [1, 3] });
  assert.match(p, /^#!\/usr\/bin\/env bpftrace\n\/\*\n \* recorder\.bt/);
  assert.match(p, /\/cpu == 1 \|\| cpu == 3\//);
  assert.match(p, /args->target_cpu == 3/);
  assert.doesNotMatch(p, /\{\{/);
  assert.match(generateRecorderProgram(), /\/1\//);
});

test('the generated programs compile with the real bpftrace', { skip: noBpftrace }, async () => {
  for (const cpus of [[], [0], [0, 1]]) {
    const r = await dryRun(generateRecorderProgram({ cpus }));
    assert.ok(r.ok, r.messages.join('\n'));
  }
});

test('recording for real: switches of a busy process appear, counted against the kernel', { skip: notRoot, timeout: 60_000 }, async (t) => {
  const rec = await startRecorder({ cpus: [0], windowS: 1 });
  try {
    // a child that sleeps and wakes on CPU 0 many times
    spawnSync('taskset', ['-c', '0', 'sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.01; done'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    const s = await rec.stop();
    t.diagnostic(`recorder on CPU 0: ${s.events} events, ${s.eventsPerS.toFixed(0)}/s, bpftrace lost ${s.lostEvents}, ${s.lostInRun} lost while running, ${s.notReceivedAtStop} in flight at stop, of ${s.kernelEvents}`);
    assert.ok(s.kernelEvents !== null && s.kernelEvents >= s.events);
    assert.equal(s.lostInRun + s.notReceivedAtStop, s.lostLines);
    assert.equal(s.otherLines.length, 0, s.otherLines.join('\n'));
  }
  const q = rec.ring.cpus.get(0);
  assert.ok(q && q.events.length - q.head > 0);
  // other CPUs appear only with wakeups and migrations towards CPU 0 (kept under the CPU they fired on)
  for (const [cpu, other] of rec.ring.cpus) {
    if (cpu === 0) continue;
    for (const e of other.events.slice(other.head)) {
      assert.ok((e.kind === 'wakeup' && e.targetCpu === 0) || (e.kind === 'migrate' && (e.origCpu === 0 || e.destCpu === 0)), JSON.stringify(e, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    }
  }
  assert.ok(q.events.some((e) => e.kind === 'switch' && e.nextComm === 'sleep'));
  const cov = ringCoverage(rec.ring);
  assert.ok(cov && cov.toMonoNs - cov.fromMonoNs <= 1_000_000_000n, 'the ring keeps at most its window');
});
