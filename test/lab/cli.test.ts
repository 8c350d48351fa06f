/** `svtrace lab ...` through commander, as a user runs it (via the lab-only entry in helpers/). */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { leftovers, removeDir, skipReason, tempRunDir, uniquePrefix } from './helpers/lab-env.ts';

const CLI = join(import.meta.dirname, 'helpers', 'lab-cli.ts');

function svtrace(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...process.execArgv, CLI, ...args], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

test('lab status with no lab: phase none, exit 0', async () => {
  const runDir = tempRunDir('s');
  try {
    const r = await svtrace(['lab', 'status', '--run-dir', runDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { phase: string }).phase, 'none');
    const human = await svtrace(['lab', 'status', '--run-dir', runDir]);
    assert.equal(human.stdout, `no lab in ${runDir}\n`);
  } finally {
    removeDir(runDir);
  }
});

test('lab up with a bad prefix fails before creating anything', async () => {
  const parent = tempRunDir('bad');
  const runDir = join(parent, 'lab');
  try {
    const r = await svtrace(['lab', 'up', '--run-dir', runDir, '--prefix', 'x;reboot']);
    assert.equal(r.code, 2, 'a bad name is a usage error');
    assert.match(r.stderr, /LAB_CONFIG_INVALID/);
    assert.match(r.stderr, /hint:/);
    assert.equal(r.stdout, '');
    assert.equal(existsSync(runDir), false);
  } finally {
    removeDir(parent);
  }
});

test('lab up with a malformed number is a usage error (exit 2)', async () => {
  const r = await svtrace(['lab', 'up', '--run-dir', '/tmp/never-svt', '--delay', '5ms']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /USAGE: --delay 5ms is not a whole number/);
  assert.equal(existsSync('/tmp/never-svt'), false);
});

test('lab up, status, down through the CLI (bridge)', { skip: skipReason() }, async (t) => {
  const prefix = uniquePrefix('l');
  const runDir = tempRunDir('l');
  try {
    const up = await svtrace(['lab', 'up', '--switch', 'bridge', '--run-dir', runDir, '--prefix', prefix, '--json']);
    assert.equal(up.code, 0, up.stderr);
    const result = JSON.parse(up.stdout) as { topology: { vmNetns: string; hostVmIf: string }; durationMs: number };
    assert.equal(result.topology.vmNetns, `${prefix}-vm`);
    assert.match(up.stderr, /svtrace lab: creating namespace/);
    t.diagnostic(`CLI lab up took ${result.durationMs.toFixed(0)} ms`);

    const status = await svtrace(['lab', 'status', '--run-dir', runDir]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /up \(Linux bridge\), healthy/);
    assert.match(status.stdout, new RegExp(`link +${result.topology.hostVmIf} +present +UP`));

    const again = await svtrace(['lab', 'up', '--switch', 'bridge', '--run-dir', runDir, '--prefix', prefix]);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /LAB_ALREADY_UP/);
    assert.match(again.stderr, new RegExp(`hint: svtrace lab down --run-dir ${runDir}`));

    const down = await svtrace(['lab', 'down', '--run-dir', runDir]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /lab down in .* removed/);
    assert.deepEqual(leftovers(prefix, runDir), []);
    const twice = await svtrace(['lab', 'down', '--run-dir', runDir]);
    assert.equal(twice.stdout, `no lab in ${runDir}: nothing to remove\n`);
  } finally {
    await svtrace(['lab', 'down', '--run-dir', runDir, '-q']);
    removeDir(runDir);
  }
});
