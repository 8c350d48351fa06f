/** The lab with a Linux bridge instead of OVS: real namespaces, real SV frames. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SvtraceError } from '../../src/errors.ts';
import { applyImpairment, labDown, labStatus, labUp, statePath } from '../../src/lab/index.ts';
import { leftovers, removeDir, sendAndCapture, skipReason, tempRunDir, uniquePrefix } from './helpers/lab-env.ts';

const skip = skipReason({ traffic: true });

test('bridge lab: tagged and untagged SV cross it, status sees every piece, down removes them all', { skip }, async (t) => {
  const prefix = uniquePrefix('b');
  const runDir = tempRunDir('b');
  const scratch = tempRunDir('bcap');
  try {
    const up = await labUp({ switch: 'bridge', runDir, prefix });
    t.diagnostic(`lab up (bridge) took ${up.durationMs.toFixed(0)} ms; ${up.forwardingCheck?.detail ?? ''}`);
    const topo = up.topology;
    assert.equal(topo.switch, 'bridge');
    assert.equal(topo.ovs, undefined);
    assert.deepEqual(await sendAndCapture(topo, 100, scratch), { tagged: 100, untagged: 100, tagChanged: 0 });

    const status = await labStatus(runDir);
    assert.equal(status.healthy, true, JSON.stringify(status.items.filter((i) => !i.present)));
    const bridge = status.items.find((i) => i.kind === 'bridge');
    assert.equal(bridge?.link?.kind, 'bridge');
    assert.deepEqual(bridge?.ports?.sort(), [topo.hostPubIf, topo.hostVmIf].sort());
    assert.equal(status.items.find((i) => i.name === topo.hostVmIf)?.link?.master, topo.bridge);

    // impairing the publisher's hop either works (netem) or fails clearly and leaves the lab as it was
    try {
      await applyImpairment(topo, 'pub', { delayUs: 200, lossPct: 0.5 });
      const pub = (await labStatus(runDir)).items.find((i) => i.name === topo.pubIf);
      assert.deepEqual(pub?.link?.qdiscs[0]?.netem?.delayUs, 200);
    } catch (e) {
      assert.ok(e instanceof SvtraceError && e.code === 'LAB_NETEM_UNSUPPORTED', String(e));
      assert.equal((await labStatus(runDir)).healthy, true);
    }

    const down = await labDown(runDir);
    t.diagnostic(`lab down (bridge) took ${down.durationMs.toFixed(0)} ms`);
    assert.deepEqual(leftovers(prefix, runDir), []);
    assert.equal((await labDown(runDir)).wasUp, false);
  } finally {
    await labDown(runDir).catch(() => undefined);
    removeDir(runDir);
    removeDir(scratch);
  }
});

test('bridge lab: a run directory it had to create is removed by down', { skip: skipReason() }, async () => {
  const parent = tempRunDir('bd');
  const runDir = join(parent, 'a', 'b');
  const prefix = uniquePrefix('d');
  try {
    await labUp({ switch: 'bridge', runDir, prefix, verifyForwarding: false });
    await labDown(runDir);
    assert.deepEqual(leftovers(prefix, runDir), []);
    assert.equal(existsSync(join(parent, 'a')), false, 'the directories it created are gone');
    assert.equal(existsSync(parent), true, 'the directory that was there stays');
  } finally {
    await labDown(runDir).catch(() => undefined);
    removeDir(parent);
  }
});

test('bridge lab: kill -9 of lab up midway, then down leaves nothing', { skip: skipReason() }, async (t) => {
  const prefix = uniquePrefix('c');
  const runDir = tempRunDir('c');
  try {
    const child = spawn(process.execPath, [...process.execArgv, join(import.meta.dirname, 'helpers', 'up-child.ts'), runDir, prefix, 'bridge'], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    let recorded = 0;
    for (let i = 0; i < 5000 && recorded < 4; i++) {
      try {
        recorded = (JSON.parse(readFileSync(statePath(runDir), 'utf8')) as { resources: unknown[] }).resources.length;
      } catch {
        // not written yet
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    child.kill('SIGKILL');
    await exited;
    t.diagnostic(`killed with ${recorded} resource(s) recorded`);
    await labDown(runDir);
    assert.deepEqual(leftovers(prefix, runDir), []);
  } finally {
    await labDown(runDir).catch(() => undefined);
    removeDir(runDir);
  }
});
