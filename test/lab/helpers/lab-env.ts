/**
 * Shared by the lab tests: why a test must skip, unique names, real frames
 * sent with tcpreplay and captured with dumpcap (or tcpdump), and a check that
 * nothing of a lab is left on the machine.
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCommand } from '../../../src/lab/exec.ts';
import { qemuUnavailable } from '../../../src/lab/qemu.ts';

export const FIXTURES = join(import.meta.dirname, '../../../../shared/fixtures');
/** 802.1Q VID 1 priority 4, 4800 frames/s. */
export const TAGGED_PCAP = join(FIXTURES, 'SV_Normal_Traffic.pcap');
/** Untagged SV, 4000 frames/s. */
export const UNTAGGED_PCAP = join(FIXTURES, 'pcap4000.pcap');

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Why a lab test cannot run here, or undefined when it can. */
export function skipReason(opts: { ovs?: boolean; traffic?: boolean } = {}): string | undefined {
  if (!isRoot()) return 'needs root (network namespaces, veth, bridges)';
  for (const tool of ['ip', 'sysctl', 'tc']) if (!hasCommand(tool)) return `${tool} is not installed`;
  if (opts.ovs) {
    for (const tool of ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl', 'ovs-appctl']) {
      if (!hasCommand(tool)) return `Open vSwitch is not installed (${tool} missing)`;
    }
    if (linkNames().includes('ovs-netdev')) return 'another OVS userspace datapath runs here (link ovs-netdev exists); only one fits per namespace';
  }
  if (opts.traffic) {
    if (!hasCommand('tcpreplay')) return 'tcpreplay is not installed';
    if (!hasCommand('dumpcap') && !hasCommand('tcpdump')) return 'neither dumpcap nor tcpdump is installed';
    if (!existsSync(TAGGED_PCAP) || !existsSync(UNTAGGED_PCAP)) return `fixtures missing in ${FIXTURES}`;
  }
  return undefined;
}

/** Why a QEMU lab test cannot run here (root, tools, the built guest agent, QEMU and the guest image), or undefined. */
export function qemuSkipReason(): string | undefined {
  const base = skipReason();
  if (base) return base;
  if (!existsSync(join(import.meta.dirname, '../../../dist/guest-agent.js'))) return 'dist/guest-agent.js is not built (npm run build)';
  return qemuUnavailable();
}

/** A prefix no other test or user lab has: at most 11 characters. */
export function uniquePrefix(tag: string): string {
  return `${tag}${(process.pid % 1000).toString(36)}${Math.random().toString(36).slice(2, 5)}`.slice(0, 11);
}

export function tempRunDir(tag: string): string {
  return mkdtempSync(join(tmpdir(), `svtlab-${tag}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function netnsNames(): string[] {
  const out = execFileSync('ip', ['-j', 'netns', 'list'], { encoding: 'utf8' }).trim();
  return out === '' ? [] : (JSON.parse(out) as Array<{ name: string }>).map((n) => n.name);
}

export function linkNames(netns?: string): string[] {
  const args = netns ? ['-n', netns, '-j', 'link', 'show'] : ['-j', 'link', 'show'];
  return (JSON.parse(execFileSync('ip', args, { encoding: 'utf8' })) as Array<{ ifname: string }>).map((l) => l.ifname);
}

/** Live (non-zombie) processes whose command line mentions the text. */
export function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.some((a) => a.includes(text))) found.push(`${entry}: ${argv.join(' ')}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Everything of a lab still on the machine; empty when it is all gone. */
export function leftovers(prefix: string, runDir: string, ovsNetdevBefore = false): string[] {
  const left: string[] = [];
  for (const ns of netnsNames()) if (ns.startsWith(prefix)) left.push(`namespace ${ns}`);
  for (const l of linkNames()) if (l.startsWith(prefix)) left.push(`link ${l}`);
  if (!ovsNetdevBefore && linkNames().includes('ovs-netdev')) left.push('link ovs-netdev');
  for (const p of processesMentioning(runDir)) left.push(`process ${p}`);
  if (existsSync(join(runDir, 'lab.json'))) left.push(`state file in ${runDir}`);
  if (existsSync(join(runDir, 'ovs'))) left.push(`${runDir}/ovs`);
  return left;
}

export interface CapturedFrame {
  data: Buffer;
}

/** Reads a classic pcap file (either byte order) into frames. */
export function readPcapFrames(file: string): Buffer[] {
  const buf = readFileSync(file);
  const le = buf.readUInt32LE(0) === 0xa1b2c3d4 || buf.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const frames: Buffer[] = [];
  for (let o = 24; o + 16 <= buf.length; ) {
    const incl = u32(o + 8);
    frames.push(buf.subarray(o + 16, o + 16 + incl));
    o += 16 + incl;
  }
  return frames;
}

export interface SvCount {
  tagged: number;
  untagged: number;
  /** Tagged frames whose tag was not VID 1 priority 4. */
  tagChanged: number;
}

export function countSv(frames: Buffer[]): SvCount {
  const c: SvCount = { tagged: 0, untagged: 0, tagChanged: 0 };
  for (const f of frames) {
    if (f.length < 18) continue;
    const type = f.readUInt16BE(12);
    if (type === 0x88ba) c.untagged++;
    else if (type === 0x8100 && f.readUInt16BE(16) === 0x88ba) {
      c.tagged++;
      const tci = f.readUInt16BE(14);
      if (tci >> 13 !== 4 || (tci & 0xfff) !== 1) c.tagChanged++;
    }
  }
  return c;
}

/**
 * Starts capturing in a namespace and resolves once the capture runs; `done`
 * gives the frames when `count` arrived or `seconds` passed.
 */
export async function startCapture(netns: string, ifname: string, count: number, seconds: number, dir: string): Promise<{ done: Promise<Buffer[]> }> {
  const file = join(dir, `cap-${ifname}-${Date.now()}.pcap`);
  const useDumpcap = hasCommand('dumpcap');
  const tool = useDumpcap
    ? ['dumpcap', '-q', '-P', '-i', ifname, '-c', String(count), '-a', `duration:${seconds}`, '-w', file]
    : ['timeout', String(seconds), 'tcpdump', '-U', '-i', ifname, '-c', String(count), '-w', file];
  const child = spawn('ip', ['netns', 'exec', netns, ...tool], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (/Capturing on|listening on/.test(stderr)) resolve();
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`capture exited early (${String(code)}): ${stderr}`)));
  });
  const done = new Promise<Buffer[]>((resolve, reject) => {
    child.on('exit', () => {
      try {
        resolve(existsSync(file) ? readPcapFrames(file) : []);
      } catch (e) {
        reject(new Error(`cannot read capture ${file}: ${(e as Error).message}; ${stderr}`));
      }
    });
  });
  return { done };
}

/** Replays the first `limit` frames of a capture from a namespace, at the capture's pace. */
export function replay(netns: string, ifname: string, pcap: string, limit: number): void {
  execFileSync('ip', ['netns', 'exec', netns, 'tcpreplay', '-q', '-i', ifname, `--limit=${limit}`, pcap], { stdio: 'ignore' });
}

/** Sends `n` tagged and `n` untagged SV frames and returns what the VM side captured. */
export async function sendAndCapture(t: { pubNetns: string; pubIf: string; vmNetns: string; vmIf: string }, n: number, dir: string): Promise<SvCount> {
  const cap = await startCapture(t.vmNetns, t.vmIf, 2 * n, 6, dir);
  replay(t.pubNetns, t.pubIf, TAGGED_PCAP, n);
  replay(t.pubNetns, t.pubIf, UNTAGGED_PCAP, n);
  return countSv(await cap.done);
}
