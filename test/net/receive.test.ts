// Real SV frames sent from namespace A over a veth pair and received in
// namespace B through the native addon: byte-identical, in order, with kernel
// and application timestamps; the BPF filter keeps only 0x88BA.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  clockNowNs,
  openPacketSocket,
  rxFrame,
  RX_FLAG_VLAN_REINSERTED,
  TS_SOURCE_SOFTWARE,
  type RxBatch,
} from '../../src/net/index.ts';
import { FIXTURES, isRoot, threads, makeVethLab, NOT_ROOT_REASON, readPcapFrames, untag, waitFor, withEthertype } from './helpers.ts';

const skip = isRoot() ? false : NOT_ROOT_REASON;

const threadNames = () => threads().map((t) => t.name);

interface Received {
  frame: Buffer;
  kernelNs: bigint;
  appNs: bigint;
  source: number;
  flags: number;
}

function collect(into: Received[]): (b: RxBatch) => void {
  return (b) => {
    for (let i = 0; i < b.count; i++) {
      into.push({
        frame: Buffer.from(rxFrame(b, i)),
        kernelNs: b.kernelTsNs[i] ?? 0n,
        appNs: b.appTsNs[i] ?? 0n,
        source: b.kernelTsSource[i] ?? 0,
        flags: b.flags[i] ?? 0,
      });
    }
  };
}

test('SV frames cross the veth byte-identical, in order, timestamped; non-SV is filtered out', { skip }, async (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const a = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA });
  t.after(() => a.close());
  const b = openPacketSocket({ ifname: lab.ifB, netns: lab.nsB });
  t.after(() => b.close());
  assert.equal(b.info.timestamping, 'software');
  assert.equal(b.info.netns, lab.nsB);

  const tagged = readPcapFrames(`${FIXTURES}/SV_Normal_Traffic.pcap`).slice(0, 300);
  assert.equal(tagged[0]?.readUInt16BE(12), 0x8100, 'fixture frames are 802.1Q tagged');
  assert.equal(tagged[0]?.readUInt16BE(14), 0x8001, 'priority 4, VLAN 1');
  const untagged = readPcapFrames(`${FIXTURES}/50new.pcap`);
  assert.equal(untagged[0]?.readUInt16BE(12), 0x88ba, 'fixture frames are untagged SV');
  const sv: Buffer[] = [];
  const noise: Buffer[] = [];
  tagged.forEach((f, i) => {
    sv.push(f);
    const u = untagged[i % untagged.length];
    if (u !== undefined && i % 3 === 0) sv.push(u);
    if (i % 2 === 0) sv.push(untag(f)); // the same SV, untagged
  });
  const first = tagged[0] as Buffer;
  noise.push(withEthertype(first, 0x88b8, 16)); // GOOSE behind a VLAN tag
  noise.push(withEthertype(untag(first), 0x88b8, 12)); // GOOSE
  noise.push(withEthertype(untag(first), 0x0800, 12)); // IPv4
  noise.push(withEthertype(untag(first), 0x0806, 12)); // ARP

  const got: Received[] = [];
  const startNs = clockNowNs();
  b.startReceive(collect(got));
  assert.ok(threadNames().includes('svtrace-rx'), `the receive thread is named svtrace-rx (threads: ${threadNames().join(', ')})`);
  sv.forEach((f, i) => {
    a.send(f);
    const n = noise[i % noise.length];
    if (n !== undefined && i % 7 === 0) a.send(n);
  });
  assert.ok(await waitFor(() => got.length >= sv.length, 5000), `received ${got.length} of ${sv.length}`);
  await new Promise((r) => setTimeout(r, 50)); // anything more would be a filter leak
  const stats = await b.stopReceive();
  const nowNs = clockNowNs();

  assert.equal(got.length, sv.length, 'exactly the SV frames, nothing else');
  got.forEach((g, i) => {
    assert.ok(g.frame.equals(sv[i] as Buffer), `frame ${i} differs from what was sent`);
    assert.equal(g.source, TS_SOURCE_SOFTWARE, `frame ${i} has a software kernel timestamp`);
    assert.ok(g.kernelNs >= startNs - 1_000_000n && g.kernelNs <= nowNs, `frame ${i}: kernel ts within this run`);
    assert.ok(g.appNs >= g.kernelNs, `frame ${i}: app ts ${g.appNs} before kernel ts ${g.kernelNs}`);
    assert.ok(nowNs - g.kernelNs < 1_000_000_000n && nowNs - g.appNs < 1_000_000_000n, 'within a second of now');
  });
  const reinserted = got.filter((g) => g.flags & RX_FLAG_VLAN_REINSERTED).length;
  const taggedCount = sv.filter((f) => f.readUInt16BE(12) === 0x8100).length;
  t.diagnostic(`${got.length} SV frames received, ${taggedCount} tagged (${reinserted} had the tag re-inserted from PACKET_AUXDATA)`);
  assert.equal(stats.frames, sv.length);
  assert.equal(stats.kernelDrops, 0);
  assert.equal(stats.kernelPackets, sv.length, 'the BPF filter let through only SV');
  assert.equal(stats.running, false);
  assert.equal(a.stats().syncSent, sv.length + Math.ceil(sv.length / 7));
});

test('receiving can stop and start again; stopReceive delivers the last batch before resolving', { skip }, async (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const a = openPacketSocket({ ifname: lab.ifA, netns: lab.nsA });
  t.after(() => a.close());
  const b = openPacketSocket({ ifname: lab.ifB, netns: lab.nsB });
  t.after(() => b.close());
  const frame = readPcapFrames(`${FIXTURES}/SV_Normal_Traffic.pcap`)[0] as Buffer;

  const got: Received[] = [];
  b.startReceive(collect(got), { maxBatchDelayMs: 1000 }); // held in C up to 1 s
  for (let i = 0; i < 10; i++) a.send(frame);
  await new Promise((r) => setTimeout(r, 100));
  const s1 = await b.stopReceive();
  assert.equal(got.length, 10, 'the pending batch was delivered by stopReceive');
  assert.equal(s1.frames, 10);

  for (let i = 0; i < 5; i++) a.send(frame); // not receiving: not queued
  b.startReceive(collect(got));
  for (let i = 0; i < 3; i++) a.send(frame);
  assert.ok(await waitFor(() => got.length >= 13, 2000));
  const s2 = await b.stopReceive();
  assert.equal(got.length, 13, 'frames sent while stopped were not kept');
  assert.equal(s2.frames, 13, 'counters run over the life of the socket');
});
