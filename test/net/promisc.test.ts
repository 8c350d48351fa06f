// Promiscuous mode owned by the receive socket: a packet membership that the
// kernel counts per interface (ip's "promiscuity") and drops when the socket
// closes or its process dies, as libpcap's. Whether a virtio-net guest then
// receives multicast SV is proved through the real QEMU in test/lab/qemu.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { openPacketSocket } from '../../src/net/index.ts';
import { ip, isRoot, makeVethLab, NOT_ROOT_REASON } from './helpers.ts';

const skip = isRoot() ? false : NOT_ROOT_REASON;
const NET_INDEX = new URL('../../src/net/index.ts', import.meta.url).href;

function promiscuity(netns: string, ifname: string): number {
  const [link] = JSON.parse(ip('-n', netns, '-d', '-j', 'link', 'show', 'dev', ifname)) as Array<{ promiscuity?: number }>;
  assert.ok(link && typeof link.promiscuity === 'number', 'ip -d -j link reports promiscuity');
  return link.promiscuity;
}

test('promiscuous: the socket holds one membership while open and none after close', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  assert.equal(promiscuity(lab.nsB, lab.ifB), 0);
  const a = openPacketSocket({ ifname: lab.ifB, netns: lab.nsB, promiscuous: true });
  const b = openPacketSocket({ ifname: lab.ifB, netns: lab.nsB, promiscuous: true });
  try {
    assert.equal(a.info.promiscuous, true);
    assert.equal(promiscuity(lab.nsB, lab.ifB), 2, 'each socket counts once');
    a.close();
    assert.equal(promiscuity(lab.nsB, lab.ifB), 1, 'closing one socket leaves the other\'s');
  } finally {
    if (!a.closed) a.close();
    b.close();
  }
  assert.equal(promiscuity(lab.nsB, lab.ifB), 0);
});

test('promiscuous: off unless asked for', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const s = openPacketSocket({ ifname: lab.ifB, netns: lab.nsB });
  try {
    assert.equal(s.info.promiscuous, false);
    assert.equal(promiscuity(lab.nsB, lab.ifB), 0);
  } finally {
    s.close();
  }
});

test('promiscuous: a killed process leaves the interface as it was', { skip }, async (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const code = `const { openPacketSocket } = await import(${JSON.stringify(NET_INDEX)});
    openPacketSocket({ ifname: ${JSON.stringify(lab.ifB)}, netns: ${JSON.stringify(lab.nsB)}, promiscuous: true });
    process.stdout.write('open\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('open')) resolve(); });
    child.on('exit', (c) => reject(new Error(`child exited (${String(c)}) before opening`)));
  });
  assert.equal(promiscuity(lab.nsB, lab.ifB), 1);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
  assert.equal(promiscuity(lab.nsB, lab.ifB), 0);
});
