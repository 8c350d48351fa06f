import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText, resolveConfig, streamsSpec } from '../../src/config/resolve.ts';
import { expandStreams } from '../../src/publish/streams.ts';

test('defaults: an empty config is valid and means 8 streams of 9-2LE at 4000/s, VLAN priority 4', () => {
  const c = resolveConfig(null);
  assert.equal(c.streams.count, 8);
  assert.equal(c.streams.vlan_priority, 4);
  assert.deepEqual(c.verdicts.limits_us, { Ttot: 200, Thyp: 100, Tsub: 100 });
  const streams = expandStreams(streamsSpec(c));
  assert.equal(streams[7]!.svId, 'MU08');
});

const cases: Array<{ name: string; toml: string; flags?: Record<string, unknown>; check?: (c: ReturnType<typeof resolveConfig>) => void; error?: RegExp }> = [
  { name: 'TOML values', toml: 'streams.count = 64\n[streams.waveform]\nharmonics = [{ order = 5, percent = 4 }]\n', check: (c) => { assert.equal(c.streams.count, 64); assert.equal(c.streams.waveform.harmonics[0]!.order, 5); } },
  { name: 'flags win over the file', toml: '[streams]\ncount = 64\n', flags: { 'streams.count': 2, 'publish.interface': 'eth1' }, check: (c) => { assert.equal(c.streams.count, 2); assert.equal(c.publish.interface, 'eth1'); } },
  { name: 'untagged', toml: '[streams]\nvlan_id = false\n', check: (c) => assert.equal(streamsSpec(c).vlan, null) },
  { name: '60 Hz × 256', toml: '[streams]\nfrequency = 60\nsamples_per_cycle = 256\n', check: (c) => assert.equal(c.streams.frequency * c.streams.samples_per_cycle, 15360) },
  { name: 'unknown key', toml: '[streams]\ncuont = 3\n', error: /unknown key streams\.cuont/ },
  { name: 'misspelt trace key: refused with its full path, never ignored', toml: '[trace]\ningres = "eth0"\n', error: /unknown key trace\.ingres/ },
  { name: 'misspelt key in a custom point', toml: '[[trace.points]]\nname = "Tvhost"\nprobe = "tracepoint:skb:consume_skb"\ncom = "vhost"\n', error: /unknown key trace\.points\.0\.com/ },
  { name: 'unknown section', toml: '[tracing]\ningress = "eth0"\n', error: /unknown key tracing/ },
  { name: 'trace section typed', toml: '[trace]\nmachine = "vm"\nvm_interface = "ens3@guest"\nsubscriber_pids = [42]\n[[trace.points]]\nname = "T2.5"\nprobe = "tracepoint:skb:consume_skb"\ncomm = "vhost-1"\n', check: (c) => { assert.equal(c.trace.machine, 'vm'); assert.equal(c.trace.vm_interface, 'ens3@guest'); assert.deepEqual(c.trace.subscriber_pids, [42]); assert.equal(c.trace.points[0]!.name, 'T2.5'); } },
  { name: 'trace machine that is neither', toml: '[trace]\nmachine = "guest"\n', error: /trace\.machine/ },
  { name: 'trace interface with a shell in it', toml: '[trace]\ningress = "eth0;reboot"\n', error: /trace\.ingress: IFACE or IFACE@NETNS/ },
  { name: 'explain and lab sections', toml: '[explain]\nwindow_s = 5\ncpus = [1]\n[lab]\nrun_dir = "/tmp/lab1"\n', check: (c) => { assert.equal(c.explain.window_s, 5); assert.deepEqual(c.explain.cpus, [1]); assert.equal(c.lab.run_dir, '/tmp/lab1'); } },
  { name: 'explain window out of range', toml: '[explain]\nwindow_s = 600\n', error: /explain\.window_s/ },
  { name: 'a flag that is no number (NaN) is refused', toml: '', flags: { 'subscribe.fifo_priority': Number.NaN }, error: /subscribe\.fifo_priority/ },
  { name: 'bad frequency', toml: '[streams]\nfrequency = 55\n', error: /streams\.frequency/ },
  { name: 'hostile interface name', toml: '[publish]\ninterface = "eth0; rm -rf /"\n', error: /publish\.interface: an interface name/ },
  { name: 'svID not VisibleString', toml: '[streams]\nsvid = "MU\\u0001"\n', error: /printable ASCII/ },
  { name: 'syntax', toml: '[streams\ncount = 1', error: /not valid TOML/ },
  { name: 'original svtrace.cfg keys', toml: 'SV_INTERFACE=ens1f0\nSV_BUFFER_SIZE=33554432\n', check: (c) => { assert.equal(c.subscribe.interface, 'ens1f0'); assert.equal(c.subscribe.rcvbuf_bytes, 33554432); assert.equal(c.trace.interface, 'ens1f0'); } },
  { name: 'svtrace.cfg with a hostile interface', toml: 'SV_INTERFACE="x$(reboot)"\n', error: /subscribe\.interface/ },
  { name: 'subscriber metrics address', toml: '[subscribe]\nmetrics = "127.0.0.1:9465"\n', check: (c) => assert.equal(c.subscribe.metrics, '127.0.0.1:9465') },
  { name: 'the metrics flag wins', toml: '[subscribe]\nmetrics = "9465"\n', flags: { 'subscribe.metrics': '[::1]:9999' }, check: (c) => assert.equal(c.subscribe.metrics, '[::1]:9999') },
  { name: 'metrics address that is no address', toml: '[subscribe]\nmetrics = "http://x; rm"\n', error: /subscribe\.metrics/ },
  { name: 'verdicts at a percentile, custom segments', toml: '[verdicts]\nat = "p99.99"\n[report]\nsegments = { Tovs = "T1:T2" }\n', check: (c) => { assert.equal(c.verdicts.at, 'p99.99'); assert.deepEqual(c.report.segments, { Tovs: 'T1:T2' }); } },
];

for (const c of cases) {
  test(`config: ${c.name}`, () => {
    const run = () => resolveConfig(parseConfigText(c.toml, 'test.toml'), c.flags, 'test.toml');
    if (c.error) {
      assert.throws(run, (e: Error & { code?: string; hint?: string }) => {
        assert.match(e.message, c.error!);
        assert.ok(e.code?.startsWith('CONFIG_'));
        assert.ok(e.hint);
        return true;
      });
    } else c.check!(run());
  });
}

test('the example config in examples/ is valid', async () => {
  const { loadConfig } = await import('../../src/config/load.ts');
  const c = loadConfig(new URL('../../examples/svtrace.toml', import.meta.url).pathname);
  assert.equal(c.streams.count, 8);
  assert.equal(c.trace.vm_port, 'vnet3');
});
