/**
 * netem arguments against the real tc: on a kernel with netem they are
 * applied and read back; on one without, tc must still have parsed them
 * (the kernel, not tc's parser, is what refuses).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { netemArgs, parseQdiscJson, type Impairment } from '../../src/lab/index.ts';
import { skipReason, uniquePrefix } from './helpers/lab-env.ts';

const CASES: Impairment[] = [
  { delayUs: 500 },
  { delayUs: 500, jitterUs: 100 },
  { jitterUs: 50 },
  { lossPct: 100 },
  { lossPct: 0.000001 },
  { delayUs: 250, lossPct: 0.5, rateMbit: 100 },
  { rateMbit: 0.001 },
];

test('every netem argument list is accepted by tc', { skip: skipReason() }, async (t) => {
  const ns = `${uniquePrefix('q')}-tc`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'add', 'name', 'qa', 'type', 'veth', 'peer', 'name', 'qb']);
    let kernelHasNetem = true;
    for (const imp of CASES) {
      const r = spawnSync('tc', ['-n', ns, 'qdisc', 'replace', 'dev', 'qa', 'root', ...netemArgs(imp)], { encoding: 'utf8' });
      if (r.status === 0) {
        const q = parseQdiscJson(execFileSync('tc', ['-n', ns, '-j', 'qdisc', 'show', 'dev', 'qa'], { encoding: 'utf8' }))[0];
        assert.equal(q?.kind, 'netem');
        assert.equal(q.netem?.delayUs, imp.delayUs ?? 0, JSON.stringify(imp));
        assert.equal(q.netem?.jitterUs, imp.jitterUs ?? 0, JSON.stringify(imp));
        // the kernel keeps loss as a fraction of 2^32: equal to within its resolution
        assert.ok(Math.abs((q.netem?.lossPct ?? -1) - (imp.lossPct ?? 0)) < 1e-7, JSON.stringify(imp));
      } else {
        assert.match(r.stderr, /Specified qdisc kind is unknown/, `tc rejected ${netemArgs(imp).join(' ')}: ${r.stderr}`);
        kernelHasNetem = false;
      }
    }
    t.diagnostic(kernelHasNetem ? 'netem applied and read back' : 'no netem in this kernel: checked that tc parsed every argument list');
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
});
