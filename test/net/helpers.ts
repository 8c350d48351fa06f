/**
 * Test helpers for src/net: network namespaces joined by a veth pair (made
 * with iproute2, removed in cleanup), and SV frames read from the shared
 * fixtures with a few lines of classic-pcap parsing.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readdirSync, readFileSync } from 'node:fs';

export const FIXTURES = fileURLToPath(new URL('../../../shared/fixtures', import.meta.url));

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export const NOT_ROOT_REASON = 'needs root (creates network namespaces and AF_PACKET sockets)';

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface VethLab {
  nsA: string;
  nsB: string;
  ifA: string;
  ifB: string;
  /** Deletes both namespaces (and with them the veth pair). Safe to call twice. */
  cleanup(): void;
}

let labCount = 0;

/** Two fresh namespaces A and B joined by a veth pair, both ends up. */
export function makeVethLab(): VethLab {
  const id = `${process.pid}${labCount++}`;
  const lab: VethLab = {
    nsA: `svtnetA${id}`,
    nsB: `svtnetB${id}`,
    ifA: `svA${id}`.slice(0, 15),
    ifB: `svB${id}`.slice(0, 15),
    cleanup() {
      for (const ns of [lab.nsA, lab.nsB]) {
        try {
          ip('netns', 'del', ns);
        } catch {
          // already gone
        }
      }
    },
  };
  try {
    ip('netns', 'add', lab.nsA);
    ip('netns', 'add', lab.nsB);
    ip('link', 'add', lab.ifA, 'netns', lab.nsA, 'type', 'veth', 'peer', 'name', lab.ifB, 'netns', lab.nsB);
    for (const [ns, ifname] of [[lab.nsA, lab.ifA], [lab.nsB, lab.ifB]] as const) {
      // keep IPv6 autoconf chatter off the link; the SV filter is tested explicitly
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${ifname}.disable_ipv6=1`]);
      ip('-n', ns, 'link', 'set', ifname, 'up');
    }
  } catch (e) {
    lab.cleanup();
    throw e;
  }
  return lab;
}

/** Frames of a classic little-endian pcap file (µs or ns), in order. */
export function readPcapFrames(path: string): Buffer[] {
  const file = readFileSync(path);
  const magic = file.readUInt32LE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`${path}: not a little-endian classic pcap`);
  const frames: Buffer[] = [];
  for (let off = 24; off + 16 <= file.length; ) {
    const incl = file.readUInt32LE(off + 8);
    frames.push(file.subarray(off + 16, off + 16 + incl));
    off += 16 + incl;
  }
  return frames;
}

/** The same frame without its 802.1Q tag (bytes 12..15). */
export function untag(frame: Buffer): Buffer {
  return Buffer.concat([frame.subarray(0, 12), frame.subarray(16)]);
}

/** A copy of a frame with another ethertype at `offset` (12 untagged, 16 tagged). */
export function withEthertype(frame: Buffer, type: number, offset: number): Buffer {
  const copy = Buffer.from(frame);
  copy.writeUInt16BE(type, offset);
  return copy;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

/** Polls cond every 10 ms; false after timeoutMs. */
export async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

/** This process's threads: task id and name (comm). */
export function threads(): Array<{ tid: string; name: string }> {
  return readdirSync('/proc/self/task').map((tid) => {
    try {
      return { tid, name: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() };
    } catch {
      return { tid, name: '' }; // the thread ended meanwhile
    }
  });
}
