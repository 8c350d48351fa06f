/** The lab's config, impairment numbers, netem arguments and qdisc parsing: pure, no root needed. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { impairmentFromFlags } from '../../src/cli/lab.ts';
import { SvtraceError } from '../../src/errors.ts';
import {
  labUp, netemArgs, parseQdiscJson, resolveLabConfig, validateImpairment, type LabConfigInput,
} from '../../src/lab/index.ts';
import { renderStatus } from '../../src/lab/render.ts';
import { removeDir, tempRunDir } from './helpers/lab-env.ts';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof SvtraceError ? e.code : `not an SvtraceError: ${String(e)}`;
  }
  return undefined;
}

test('defaults give the documented names', () => {
  const c = resolveLabConfig();
  assert.equal(c.runDir, '/run/svtrace/lab');
  assert.equal(c.switch, 'auto');
  assert.equal(c.mtu, 1500);
  assert.deepEqual(c.names, {
    pubNetns: 'svt-pub', pubIf: 'svtpub0', hostPubIf: 'svtpubh',
    vmNetns: 'svt-vm', vmIf: 'svtvm0', hostVmIf: 'svtvmh', bridge: 'svtbr0',
  });
});

test('a prefix and a run dir are applied and normalised', () => {
  const c = resolveLabConfig({ prefix: 'lab_1', runDir: '/tmp/x//y/', switch: 'bridge', mtu: 9000 });
  assert.equal(c.names.hostVmIf, 'lab_1vmh');
  assert.equal(c.runDir, '/tmp/x/y');
  assert.equal(c.switch, 'bridge');
});

const invalidConfigs: Array<[string, LabConfigInput]> = [
  ['prefix with a space', { prefix: 'a b' }],
  ['prefix with a shell character', { prefix: 'x;rm' }],
  ['prefix starting with -', { prefix: '-n' }],
  ['prefix starting with .', { prefix: '.x' }],
  ['prefix too long for 15-char names', { prefix: 'abcdefghijkl' }],
  ['empty prefix', { prefix: '' }],
  ['interface name with /', { names: { vmIf: 'a/b' } }],
  ['interface name of 16 characters', { names: { hostVmIf: 'abcdefghijklmnop' } }],
  ['interface named ovs-netdev', { names: { bridge: 'ovs-netdev' } }],
  ['namespace with ..', { names: { vmNetns: '../etc' } }],
  ['same namespace twice', { names: { pubNetns: 'same', vmNetns: 'same' } }],
  ['host names colliding', { names: { bridge: 'svtvmh' } }],
  ['relative run dir', { runDir: 'run/lab' }],
  ['run dir /', { runDir: '/' }],
  ['run dir too long for unix sockets', { runDir: '/tmp/' + 'x'.repeat(100) }],
  ['MTU too small', { mtu: 20 }],
  ['MTU not an integer', { mtu: 1500.5 }],
  ['VLAN 4095', { switch: 'ovs', vlanTrunks: [4095] }],
  ['VLAN list with the Linux bridge', { switch: 'bridge', vlanTrunks: [1] }],
  ['unknown switch', { switch: 'vpp' as 'ovs' }],
];

for (const [what, input] of invalidConfigs) {
  test(`rejected: ${what}`, () => {
    assert.equal(code(() => resolveLabConfig(input)), 'LAB_CONFIG_INVALID');
  });
}

test('an invalid name is rejected before anything runs (no run dir, no state)', async () => {
  const parent = tempRunDir('invalid');
  const runDir = join(parent, 'never');
  try {
    await assert.rejects(labUp({ runDir, prefix: 'bad name' }), (e: unknown) => e instanceof SvtraceError && e.code === 'LAB_CONFIG_INVALID');
    await assert.rejects(labUp({ runDir, names: { pubIf: '$(reboot)' } }), (e: unknown) => e instanceof SvtraceError && e.code === 'LAB_CONFIG_INVALID');
    assert.equal(existsSync(runDir), false);
  } finally {
    removeDir(parent);
  }
});

test('impairment numbers are validated', () => {
  assert.deepEqual(validateImpairment({ delayUs: 500, jitterUs: 50, lossPct: 0.5 }), { delayUs: 500, jitterUs: 50, lossPct: 0.5 });
  assert.deepEqual(validateImpairment({ jitterUs: 10 }), { jitterUs: 10, delayUs: 0 });
  for (const bad of [
    {}, { delayUs: -1 }, { delayUs: 1.5 }, { delayUs: Number.NaN }, { delayUs: 10_000_001 }, { jitterUs: -5 },
    { lossPct: 101 }, { lossPct: -0.1 }, { lossPct: Number.POSITIVE_INFINITY }, { lossPct: 1e-9 }, { rateMbit: 0 }, { rateMbit: 1e-6 },
  ]) {
    assert.equal(code(() => validateImpairment(bad)), 'LAB_IMPAIRMENT_INVALID', JSON.stringify(bad));
  }
});

test('netem arguments: µs, plain percentages, kbit rates', () => {
  assert.deepEqual(netemArgs({ delayUs: 500 }), ['netem', 'delay', '500us']);
  assert.deepEqual(netemArgs({ delayUs: 500, jitterUs: 100, lossPct: 100 }), ['netem', 'delay', '500us', '100us', 'loss', '100%']);
  assert.deepEqual(netemArgs({ lossPct: 0.000001 }), ['netem', 'loss', '0.000001%']);
  assert.deepEqual(netemArgs({ rateMbit: 2.5 }), ['netem', 'rate', '2500kbit']);
});

test('netem qdisc JSON is read back in µs and %', () => {
  const json = JSON.stringify([
    { kind: 'netem', handle: '8001:', root: true, refcnt: 2, options: { limit: 1000, delay: { delay: 0.0005, jitter: 0.0001, correlation: 0 }, 'loss-random': { loss: 0.015, correlation: 0 }, rate: { rate: 312500 }, ecn: false, gap: 0 } },
    { kind: 'noqueue', handle: '0:', root: true, refcnt: 2, options: {} },
  ]);
  const q = parseQdiscJson(json);
  assert.equal(q.length, 2);
  assert.deepEqual(q[0]?.netem, { delayUs: 500, jitterUs: 100, lossPct: 1.5, rateMbit: 2.5, limitPackets: 1000 });
  assert.equal(q[1]?.kind, 'noqueue');
  assert.deepEqual(parseQdiscJson(''), []);
  assert.deepEqual(parseQdiscJson('not json'), []);
});

test('CLI impairment flags', () => {
  assert.deepEqual(impairmentFromFlags({ delay: '500', hop: 'vm' }), { hop: 'vm', impairment: { delayUs: 500 } });
  assert.deepEqual(impairmentFromFlags({ loss: '100', hop: 'pub' }), { hop: 'pub', impairment: { lossPct: 100 } });
  assert.equal(impairmentFromFlags({}), undefined);
  assert.equal(code(() => impairmentFromFlags({ delay: '5ms' })), 'USAGE');
  assert.equal(code(() => impairmentFromFlags({ delay: '5', hop: 'wan' })), 'USAGE');
  assert.equal(code(() => impairmentFromFlags({ hop: 'pub' })), 'USAGE');
});

test('status of no lab renders plainly', () => {
  assert.equal(renderStatus({ runDir: '/x', phase: 'none', healthy: false, impairments: {}, items: [] }), 'no lab in /x\n');
});
