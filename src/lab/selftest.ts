/**
 * Proves the lab forwards: sends a few frames from the publisher's interface
 * with tcpreplay and watches the VM interface's receive counter grow. The
 * frames carry the IEEE local-experimental ethertype 0x88B5 (never SV), to an
 * SV-range multicast address, 802.1Q-tagged with priority 4 like SV, plus
 * untagged ones when every VLAN is trunked.
 */
import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { hasCommand, run } from './exec.ts';
import { getLink } from './netlink.ts';
import type { LabTopology } from './state.ts';

const DST_MAC = [0x01, 0x0c, 0xcd, 0x04, 0x01, 0xff];
const SRC_MAC = [0x02, 0x73, 0x76, 0x74, 0x00, 0x01];
const ETHERTYPE_EXPERIMENTAL = 0x88b5;
const SV_PRIORITY = 4;
const FRAME_LEN = 64;

/** One Ethernet frame (no FCS), tagged when vid is given. */
export function selfTestFrame(vid: number | undefined): Buffer {
  const f = Buffer.alloc(FRAME_LEN);
  Buffer.from([...DST_MAC, ...SRC_MAC]).copy(f, 0);
  let o = 12;
  if (vid !== undefined) {
    f.writeUInt16BE(0x8100, o);
    f.writeUInt16BE((SV_PRIORITY << 13) | vid, o + 2);
    o += 4;
  }
  f.writeUInt16BE(ETHERTYPE_EXPERIMENTAL, o);
  f.write('svtrace lab self-test', o + 2, 'latin1');
  return f;
}

/** A classic pcap file (µs timestamps, Ethernet) holding the frames. */
export function pcapOf(frames: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  const records = frames.map((frame, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(0, 0);
    rec.writeUInt32LE(i * 1000, 4);
    rec.writeUInt32LE(frame.length, 8);
    rec.writeUInt32LE(frame.length, 12);
    return Buffer.concat([rec, frame]);
  });
  return Buffer.concat([header, ...records]);
}

export function selfTestPcapPath(runDir: string): string {
  return join(runDir, 'selftest.pcap');
}

export interface ForwardingCheck {
  ok: boolean;
  detail: string;
}

/** Sends the self-test frames and waits up to timeoutMs for all to arrive. Skips (ok) without tcpreplay. */
export async function checkForwarding(topology: LabTopology, vlanTrunks: number[], timeoutMs = 3_000): Promise<ForwardingCheck> {
  if (!hasCommand('tcpreplay')) return { ok: true, detail: 'skipped: tcpreplay is not installed' };
  const vids: Array<number | undefined> = vlanTrunks.length > 0 ? vlanTrunks.filter((v) => v > 0).slice(0, 1) : [1, undefined];
  if (vids.length === 0) vids.push(undefined);
  const frames = vids.flatMap((v) => [selfTestFrame(v), selfTestFrame(v)]);
  const pcap = selfTestPcapPath(topology.runDir);
  await writeFile(pcap, pcapOf(frames));
  try {
    const end = Date.now() + timeoutMs;
    let received = 0;
    // a QEMU guest's virtio-net filters multicast until a receiver asks: count what the host hands to its tap
    const arrived = async () => {
      const link = topology.vm ? await getLink(topology.hostVmIf) : await getLink(topology.vmIf, topology.vmNetns);
      return (topology.vm ? link?.txPackets : link?.rxPackets) ?? 0;
    };
    // OVS may need a moment before it polls a new port: resend until one whole batch comes through
    while (Date.now() < end) {
      const before = await arrived();
      await run('ip', ['netns', 'exec', topology.pubNetns, 'tcpreplay', '-q', '-t', '-i', topology.pubIf, pcap]);
      await new Promise((r) => setTimeout(r, 50));
      received = (await arrived()) - before;
      if (received >= frames.length) {
        const kinds = vids.map((v) => (v === undefined ? 'untagged' : `VLAN ${v} priority ${SV_PRIORITY}`)).join(' and ');
        return { ok: true, detail: `${kinds} frames crossed ${topology.hostPubIf} → ${topology.bridge} → ${topology.hostVmIf}` };
      }
    }
    const to = topology.vm ? `the tap ${topology.hostVmIf}` : topology.vmIf;
    return { ok: false, detail: `sent batches of ${frames.length} frames from ${topology.pubIf} for ${timeoutMs} ms; the last batch brought ${received} to ${to}` };
  } finally {
    await rm(pcap, { force: true });
  }
}
