// Environment errors of the packet socket: each has its stable code and a
// hint that says what to do. Namespaces and links are real, made per test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { test } from 'node:test';
import { isSvtraceError, type SvtraceError } from '../../src/errors.ts';
import { openPacketSocket } from '../../src/net/index.ts';
import { ip, isRoot, makeVethLab, NOT_ROOT_REASON, threads } from './helpers.ts';

const skip = isRoot() ? false : NOT_ROOT_REASON;
const NET_INDEX = new URL('../../src/net/index.ts', import.meta.url).href;

function errorOf(fn: () => unknown): SvtraceError {
  try {
    fn();
  } catch (e) {
    assert.ok(isSvtraceError(e), `expected an SvtraceError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

test('invalid options are refused before touching the system', () => {
  for (const opts of [
    { ifname: '' },
    { ifname: 'a-name-that-is-too-long' },
    { ifname: 'eth0', netns: '../etc' },
    { ifname: 'eth0', rcvBufBytes: -1 },
    { ifname: 'eth0', timestamping: 'atomic' as 'software' },
  ]) {
    assert.equal(errorOf(() => openPacketSocket(opts)).code, 'NET_INVALID_OPTION', JSON.stringify(opts));
  }
});

test('no such interface: NET_NO_SUCH_INTERFACE lists the interfaces that exist', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const e = errorOf(() => openPacketSocket({ ifname: 'svnope0', netns: lab.nsA }));
  assert.equal(e.code, 'NET_NO_SUCH_INTERFACE');
  assert.match(e.message, /svnope0/);
  assert.match(e.hint ?? '', new RegExp(`lo, ${lab.ifA}`));
  assert.match(e.hint ?? '', new RegExp(`ip -n ${lab.nsA} link`));
});

test('interface down: NET_INTERFACE_DOWN says how to bring it up', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  ip('-n', lab.nsA, 'link', 'set', lab.ifA, 'down');
  const e = errorOf(() => openPacketSocket({ ifname: lab.ifA, netns: lab.nsA }));
  assert.equal(e.code, 'NET_INTERFACE_DOWN');
  assert.equal(e.hint, `Bring it up: \`ip -n ${lab.nsA} link set ${lab.ifA} up\`.`);
});

test('missing network namespace: NET_NO_SUCH_NETNS', { skip }, () => {
  const e = errorOf(() => openPacketSocket({ ifname: 'lo', netns: `svtnet-missing-${process.pid}` }));
  assert.equal(e.code, 'NET_NO_SUCH_NETNS');
  assert.match(e.hint ?? '', /ip netns add/);
});

test('hardware timestamping on a veth: NET_NO_HW_TIMESTAMPING', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const e = errorOf(() => openPacketSocket({ ifname: lab.ifA, netns: lab.nsA, timestamping: 'hardware' }));
  assert.equal(e.code, 'NET_NO_HW_TIMESTAMPING');
  assert.match(e.hint ?? '', new RegExp(`ethtool -T ${lab.ifA}`));
});

test('without CAP_NET_RAW: NET_NOT_ROOT (a child without the capability when run as root)', () => {
  const script = `
    import { openPacketSocket } from ${JSON.stringify(NET_INDEX)};
    try { openPacketSocket({ ifname: 'lo' }).close(); console.log('OPENED'); }
    catch (e) { console.log(e.code + ' | ' + e.hint); }`;
  const args = ['--import', 'tsx', '--input-type=module', '-e', script];
  const child = isRoot()
    ? spawnSync('setpriv', ['--bounding-set', '-net_raw', '--', process.execPath, ...args], { encoding: 'utf8' })
    : spawnSync(process.execPath, args, { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /^NET_NOT_ROOT \| Run as root/);
});

test('thread options: SCHED_FIFO and pinning work as root; an impossible CPU is NET_CPU_AFFINITY_FAILED', { skip }, async (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const sock = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA });
  t.after(() => sock.close());
  const e = errorOf(() => sock.startTransmit({ onTxReport: () => {}, cpu: 1000 }));
  assert.equal(e.code, 'NET_CPU_AFFINITY_FAILED');
  const tx = sock.startTransmit({ onTxReport: () => {}, fifoPriority: 10, cpu: 0 });
  // Named, pinned and real-time as asked: read back from /proc.
  const txTask = threads().find((th) => th.name === 'svtrace-tx')?.tid;
  assert.ok(txTask, 'the transmit thread is named svtrace-tx');
  const stat = readFileSync(`/proc/self/task/${txTask}/stat`, 'utf8').split(') ')[1]!.split(' ');
  assert.equal(stat[36], '0', 'it runs on CPU 0'); // field 39: processor (fields count from 3 after the comm)
  assert.equal(stat[37], '10', 'at real-time priority 10'); // field 40: rt_priority
  assert.equal(stat[38], '1', 'under SCHED_FIFO'); // field 41: policy
  assert.equal(errorOf(() => sock.startTransmit({ onTxReport: () => {} })).code, 'NET_TX_RUNNING');
  await tx.stop();
  sock.startReceive(() => {}, { fifoPriority: 10, cpu: 0 });
  assert.equal(errorOf(() => sock.startReceive(() => {})).code, 'NET_RX_RUNNING');
  await sock.stopReceive();
});

test('without CAP_SYS_NICE: SCHED_FIFO is refused with NET_SCHED_FIFO_FAILED', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const script = `
    import { openPacketSocket } from ${JSON.stringify(NET_INDEX)};
    const s = openPacketSocket({ ifname: ${JSON.stringify(lab.ifA)}, netns: ${JSON.stringify(lab.nsA)} });
    try { s.startTransmit({ onTxReport: () => {}, fifoPriority: 50 }); console.log('STARTED'); }
    catch (e) { console.log(e.code); }
    s.close();`;
  const child = spawnSync(
    'setpriv',
    ['--bounding-set', '-sys_nice', '--', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
    { encoding: 'utf8', env: { ...process.env } },
  );
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout.trim(), 'NET_SCHED_FIFO_FAILED');
});

test('a closed socket refuses to work with NET_SOCKET_CLOSED', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const sock = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA });
  sock.close();
  sock.close(); // idempotent
  assert.equal(sock.closed, true);
  assert.equal(errorOf(() => sock.startReceive(() => {})).code, 'NET_SOCKET_CLOSED');
  assert.equal(errorOf(() => sock.send(new Uint8Array(60))).code, 'NET_SOCKET_CLOSED');
});

test('sockets live in the namespace; every thread of the process stays in its own', { skip }, async (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const sock = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA });
  t.after(() => sock.close());
  sock.startReceive(() => {});
  const tx = sock.startTransmit({ onTxReport: () => {} });
  const own = readlinkSync('/proc/self/ns/net');
  const tasks = readdirSync('/proc/self/task');
  assert.ok(tasks.length > 2);
  for (const task of tasks) assert.equal(readlinkSync(`/proc/self/task/${task}/ns/net`), own, `thread ${task}`);
  await tx.stop();
  await sock.stopReceive();
});
