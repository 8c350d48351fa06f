// The QEMU guest as data (accelerator choice, argv, kernel command line) and
// the control channel's messages: pure functions, tested with tables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lineSplitter, parseGuestMessage, parseHostMessage } from '../../src/lab/agent-protocol.ts';
import { estimateOffset } from '../../src/lab/clock-offset.ts';
import { resolveLabConfig } from '../../src/lab/config.ts';
import { chooseAccel, kernelCmdline, macForPrefix, qemuArgs, vmPaths, type QemuSpec } from '../../src/lab/qemu-spec.ts';

test('chooseAccel: KVM only where it can run a stock guest; TCG says why', () => {
  const pvm = { device: true, hardwareModule: undefined, pvm: true };
  const intel = { device: true, hardwareModule: 'kvm_intel', pvm: false };
  const none = { device: false, hardwareModule: undefined, pvm: false };
  assert.equal(chooseAccel('auto', intel).accel, 'kvm');
  assert.equal(chooseAccel('tcg', intel).accel, 'tcg');
  const onPvm = chooseAccel('auto', pvm);
  assert.equal(onPvm.accel, 'tcg');
  assert.match(onPvm.reason, /PVM host \(kvm_pvm\)/);
  assert.match(chooseAccel('auto', none).reason, /\/dev\/kvm is absent/);
  assert.throws(() => chooseAccel('kvm', pvm), { code: 'LAB_VM_NO_KVM' });
  assert.throws(() => chooseAccel('kvm', { ...intel, pvm: true }), { code: 'LAB_VM_NO_KVM' });
});

function spec(over: Partial<QemuSpec> = {}): QemuSpec {
  return {
    paths: vmPaths('/run/svtrace/lab'), accel: 'tcg', tap: 'svtvmh', mac: macForPrefix('svt'), hostname: 'svt-vm', vcpus: 1, memoryMb: 1024,
    node: '/usr/bin/node', agent: '/opt/svtrace/dist/guest-agent.js', name: 'svtrace-svt',
    image: { dir: '/var/cache/svtrace/guest', kernel: '/var/cache/svtrace/guest/vmlinuz', initramfs: '/var/cache/svtrace/guest/initramfs.img', modules: '/var/cache/svtrace/guest/modules', release: '6.1.0-57-amd64' },
    ...over,
  };
}

test('qemuArgs: TCG with -cpu max, virtio-net on the tap, the host root read-only, control ports', () => {
  const args = qemuArgs(spec());
  const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);
  assert.deepEqual(after('-accel'), ['tcg']);
  assert.deepEqual(after('-cpu'), ['max']);
  assert.ok(after('-netdev').includes('tap,id=net0,ifname=svtvmh,script=no,downscript=no'));
  assert.ok(after('-fsdev').some((f) => f.startsWith('local,id=hostroot,path=/,readonly=on')));
  assert.equal(after('-device').filter((d) => d.startsWith('virtconsole')).length, 4);
  assert.deepEqual(after('-pidfile'), ['/run/svtrace/lab/vm/qemu.pid']);
  assert.deepEqual(qemuArgs(spec({ accel: 'kvm' })).filter((_, i, a) => a[i - 1] === '-cpu'), ['host']);
});

test('kernelCmdline: hostname, accelerator and paths for the guest init; unsafe paths refused', () => {
  const line = kernelCmdline(spec());
  for (const part of ['svtrace.hostname=svt-vm', 'svtrace.accel=tcg', 'svtrace.records=/run/svtrace/lab/vm/share', 'svtrace.agent=/opt/svtrace/dist/guest-agent.js']) {
    assert.ok(line.split(' ').includes(part), part);
  }
  assert.throws(() => kernelCmdline(spec({ node: '/usr/bin/no de' })), { code: 'LAB_CONFIG_INVALID' });
  assert.throws(() => qemuArgs(spec({ paths: vmPaths('/tmp/a,b') })), { code: 'LAB_CONFIG_INVALID' });
});

test('macForPrefix: locally administered unicast, stable, distinct per prefix', () => {
  const mac = macForPrefix('svt');
  assert.match(mac, /^52:54:00(:[0-9a-f]{2}){3}$/);
  assert.equal(macForPrefix('svt'), mac);
  assert.notEqual(macForPrefix('svu'), mac);
});

test('resolveLabConfig: the QEMU options, validated', () => {
  const c = resolveLabConfig({ vm: 'qemu', vmCpus: [1, 1], emulatorCpus: [0] });
  assert.deepEqual(c.qemu, { accel: 'auto', vmCpus: [1], emulatorCpus: [0], vcpus: 1, memoryMb: 1024, bootTimeoutS: 180, tapQueueFrames: 1000 });
  assert.equal(resolveLabConfig().vm, 'netns');
  assert.throws(() => resolveLabConfig({ vm: 'xen' as 'qemu' }), { code: 'LAB_CONFIG_INVALID' });
  assert.throws(() => resolveLabConfig({ vmCpus: [1] }), { code: 'LAB_CONFIG_INVALID' }, 'pinning needs --vm qemu');
  assert.throws(() => resolveLabConfig({ vm: 'qemu', vmCpus: [-1] }), { code: 'LAB_CONFIG_INVALID' });
  assert.throws(() => resolveLabConfig({ vm: 'qemu', vmMemoryMb: 16 }), { code: 'LAB_CONFIG_INVALID' });
});

test('control messages: what each side accepts, and what it drops', () => {
  assert.deepEqual(parseHostMessage('{"t":"exec","argv":["uname","-a"],"cwd":"/tmp"}'), { t: 'exec', argv: ['uname', '-a'], cwd: '/tmp' });
  assert.deepEqual(parseHostMessage('{"t":"signal","sig":"SIGINT"}'), { t: 'signal', sig: 'SIGINT' });
  for (const bad of ['not json', '[]', '{"t":"exec","argv":[]}', '{"t":"exec","argv":[1]}', '{"t":"signal","sig":"SIGSTOP"}', '{"t":"ping","id":1.5}', '{"t":"exec","argv":["a\\u0000b"]}']) {
    assert.equal(parseHostMessage(bad), undefined, bad);
  }
  assert.deepEqual(parseGuestMessage('{"t":"exit","code":null,"signal":"SIGINT"}'), { t: 'exit', code: null, signal: 'SIGINT' });
  assert.deepEqual(parseGuestMessage('{"t":"clock","id":3,"ns":"1764892000123456789"}'), { t: 'clock', id: 3, ns: '1764892000123456789' });
  for (const bad of ['[    3.1] virtio_net virtio0 eth0: boot noise', '{"t":"ping","id":1}', '{"t":"out","fd":3,"data":""}', '{"t":"clock","id":3,"ns":"-1"}']) {
    assert.equal(parseGuestMessage(bad), undefined, bad);
  }
});

test('lineSplitter: lines across chunks, CRs dropped, empty lines skipped', () => {
  const lines: string[] = [];
  const feed = lineSplitter((l) => lines.push(l));
  feed('{"a"');
  feed(':1}\r\n\n{"b":2}\n{"c"');
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}']);
  feed(Buffer.from(':3}\n'));
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
});

test('estimateOffset: the exchange with the shortest round trip wins; offset = guest − midpoint', () => {
  const host = 1_764_892_000_000_000_000n;
  const lag = -1_250_000_000n; // the guest 1.25 s behind, as measured here
  const exchanges = [
    { t0Ns: host, guestNs: host + lag + 900_000n, t1Ns: host + 1_000_000n }, // 1 ms round trip, the answer waited on the way back
    { t0Ns: host + 5_000_000n, guestNs: host + 5_000_000n + lag + 20_000n, t1Ns: host + 5_040_000n }, // 40 µs: kept
    { t0Ns: host + 9_000_000n, guestNs: host + lag, t1Ns: host + 8_000_000n }, // time went backwards: ignored
  ];
  const o = estimateOffset(exchanges);
  assert.ok(o);
  assert.equal(o.offsetNs, lag);
  assert.equal(o.rttNs, 40_000n);
  assert.equal(o.uncertaintyNs, 20_000n);
  assert.equal(o.exchanges, 3);
  assert.equal(estimateOffset([]), undefined);
});
