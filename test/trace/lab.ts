/**
 * Test lab for the tracer: network namespaces joined by veth pairs, created
 * *inside* the namespaces so that both ends get the same ifindex (2) and the
 * (ifindex, netns inode) filter is really exercised. Every name carries this
 * process's pid; `destroy` removes all of it, also after a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capturePackets, writeCaptureFile } from '../../src/pcap/index.ts';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'fixtures');
export const fixture = (name: string) => join(FIXTURES, name);

function have(tool: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool]).status === 0;
}

/** Why tracing tests cannot run here, or null when they can. Mounts tracefs when root and it is missing (as scripts/setup.sh does). */
export function cannotTrace(): string | null {
  if (process.getuid?.() !== 0) return 'SKIPPED: tracing tests need root';
  if (!have('bpftrace')) return 'SKIPPED: bpftrace is not installed';
  for (const t of ['tcpreplay', 'ip', 'python3', 'nsenter']) if (!have(t)) return `SKIPPED: ${t} is not installed`;
  if (!existsSync('/sys/kernel/tracing/events') && !existsSync('/sys/kernel/debug/tracing/events')) {
    spawnSync('mount', ['-t', 'tracefs', 'tracefs', '/sys/kernel/tracing']);
    if (!existsSync('/sys/kernel/tracing/events')) return 'SKIPPED: tracefs is not mounted and could not be';
  }
  if (!existsSync(fixture('SV_Normal_Traffic.pcap'))) return `SKIPPED: fixtures not found at ${FIXTURES}`;
  return null;
}

function sh(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
}

export interface Link {
  /** Sender side: namespace and interface. */
  txNs: string;
  tx: string;
  /** Receiver side. */
  rxNs: string;
  rx: string;
}

export interface Lab {
  links: Link[];
  tmp: string;
  /** Replays a capture from a link's sender side; resolves with tcpreplay's output. */
  replay(link: Link, args: string[]): Promise<string>;
  /** Starts a process in a namespace, killed by destroy(). */
  spawnIn(ns: string, cmd: string, args: string[]): ChildProcess;
  destroy(): void;
}

/** `n` links, each its own pair of namespaces. */
export function createLab(tag: string, n = 1): Lab {
  const id = `${tag}${process.pid % 100000}`;
  const namespaces: string[] = [];
  const children: ChildProcess[] = [];
  const tmp = mkdtempSync(join(tmpdir(), `svtrace-test-${id}-`));
  const lab: Lab = {
    links: [],
    tmp,
    replay(link, args) {
      return new Promise((resolve, reject) => {
        const c = spawn('ip', ['netns', 'exec', link.txNs, 'tcpreplay', '-i', link.tx, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(c);
        let out = '';
        c.stdout.on('data', (d) => { out += d; });
        c.stderr.on('data', (d) => { out += d; });
        c.on('error', reject);
        c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`tcpreplay failed (${code}): ${out}`))));
      });
    },
    spawnIn(ns, cmd, args) {
      const c = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(c);
      return c;
    },
    destroy() {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
      rmSync(tmp, { recursive: true, force: true });
    },
  };
  try {
    for (let i = 0; i < n; i++) {
      const txNs = `svt${id}t${i}`, rxNs = `svt${id}r${i}`;
      for (const ns of [txNs, rxNs]) { sh('ip', ['netns', 'add', ns]); namespaces.push(ns); }
      const tx = `sv${i}tx`, rx = `sv${i}rx`;
      sh('ip', ['-n', txNs, 'link', 'add', tx, 'type', 'veth', 'peer', 'name', rx, 'netns', rxNs]);
      sh('ip', ['-n', txNs, 'link', 'set', tx, 'up']);
      sh('ip', ['-n', rxNs, 'link', 'set', rx, 'up']);
      lab.links.push({ txNs, tx, rxNs, rx });
    }
  } catch (e) {
    lab.destroy();
    throw e;
  }
  return lab;
}

/** Frames of a capture, as copies. */
export async function readFrames(name: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const p of capturePackets(fixture(name))) out.push(p.data);
  return out;
}

/** Replaces the bytes of `from` (first occurrence after the SV header) with `to`, same length. */
/**
 * 1000 frames of the public 4001 capture, each as three svIDs of one APPID and one byte sum (4001, 4010,
 * 1004), and for the first 50 one more whose svID no layout names (0104): matching must compare octets.
 */
export async function sameSumFrames(): Promise<{ ids: string[]; frames: Uint8Array[] }> {
  const base = (await readFrames('SV_Normal_Traffic.pcap')).slice(0, 1000);
  const ids = ['4001', '4010', '1004'];
  const frames: Uint8Array[] = [];
  base.forEach((f, i) => {
    for (const id of ids) frames.push(patchSvId(f, '4001', id));
    if (i < 50) frames.push(patchSvId(f, '4001', '0104'));
  });
  return { ids, frames };
}

export function patchSvId(frame: Uint8Array, from: string, to: string): Uint8Array {
  if (from.length !== to.length) throw new Error('same length only');
  const f = Uint8Array.from(frame);
  const needle = Buffer.from(from, 'latin1');
  const at = Buffer.from(f).indexOf(needle, 18);
  if (at < 0) throw new Error(`svID ${from} not found`);
  f.set(Buffer.from(to, 'latin1'), at);
  return f;
}

export async function writePcap(path: string, frames: Uint8Array[], periodUs = 250): Promise<string> {
  await writeCaptureFile(path, frames.map((data, i) => ({ tsNs: 1_700_000_000_000_000_000n + BigInt(i * periodUs * 1000), data })), { format: 'pcap' });
  return path;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
