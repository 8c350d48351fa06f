/**
 * A private Open vSwitch: our own ovsdb-server and ovs-vswitchd, with their
 * db, sockets, pidfiles and logs under `<runDir>/ovs`, and a bridge on the
 * userspace datapath (`datapath_type=netdev`). The system's openvswitch
 * service, /etc/openvswitch and /var/run/openvswitch are never touched.
 *
 * The userspace datapath creates a persistent tap named `ovs-netdev` (and one
 * per bridge); only one such datapath can run per network namespace, and the
 * taps survive a `kill -9` of ovs-vswitchd, so `down` removes them.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { run, runDaemon, type RunResult } from './exec.ts';
import type { OvsDaemon } from './state.ts';

export const OVS_DATAPATH_TAP = 'ovs-netdev';
const SCHEMA_DIRS = [process.env.OVS_PKGDATADIR, '/usr/share/openvswitch'].filter((d): d is string => !!d);

export interface OvsPaths {
  dir: string;
  db: string;
  dbSock: string;
  env: Record<string, string>;
  daemons: Record<OvsDaemon, { pidfile: string; unixctl: string; log: string; out: string }>;
}

export function ovsPaths(runDir: string): OvsPaths {
  const dir = join(runDir, 'ovs');
  const daemon = (name: OvsDaemon) => ({
    pidfile: join(dir, `${name}.pid`),
    unixctl: join(dir, `${name}.ctl`),
    log: join(dir, `${name}.log`),
    out: join(dir, `${name}.out`),
  });
  return {
    dir,
    db: join(dir, 'conf.db'),
    dbSock: join(dir, 'db.sock'),
    // keep every default path of every OVS tool inside our directory
    env: { OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir },
    daemons: { 'ovsdb-server': daemon('ovsdb-server'), 'ovs-vswitchd': daemon('ovs-vswitchd') },
  };
}

export function schemaPath(): string {
  for (const d of SCHEMA_DIRS) {
    const p = join(d, 'vswitch.ovsschema');
    if (existsSync(p)) return p;
  }
  throw new SvtraceError('LAB_TOOL_MISSING', 'the Open vSwitch schema vswitch.ovsschema was not found', {
    hint: 'install openvswitch-common, or set OVS_PKGDATADIR, or use --switch bridge',
  });
}

export function readPidfile(pidfile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(pidfile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function cmdlineOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return undefined;
  }
}

/** True only if pid is running `name` with our pidfile on its command line. */
export function isOurDaemon(pid: number, name: OvsDaemon, pidfile: string): boolean {
  const argv = cmdlineOf(pid);
  if (!argv || argv.length === 0) return false;
  return basename(argv[0] ?? '') === name && argv.includes(`--pidfile=${pidfile}`);
}

/** Pids of the processes (other than this one) whose command line satisfies the test. */
export function processesMatching(test: (argv: string[]) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const argv = pid === process.pid ? undefined : cmdlineOf(pid);
    if (argv && argv.length > 0 && test(argv)) pids.push(pid);
  }
  return pids;
}

/** Every running process that is our daemon: from the pidfile and from a scan of /proc (a crash can beat the pidfile). */
export function findOurDaemons(name: OvsDaemon, pidfile: string): number[] {
  const pids = new Set<number>();
  const fromFile = readPidfile(pidfile);
  if (fromFile !== undefined && isOurDaemon(fromFile, name, pidfile)) pids.add(fromFile);
  for (const pid of processesMatching((argv) => basename(argv[0] ?? '') === name && argv.includes(`--pidfile=${pidfile}`))) pids.add(pid);
  return [...pids];
}

export { tapHolders } from '../trace/tap.ts';

export function vsctl(paths: OvsPaths, args: string[], allowFailure = false): Promise<RunResult> {
  return run('ovs-vsctl', [`--db=unix:${paths.dbSock}`, '--timeout=10', ...args], { env: paths.env, allowFailure, timeoutMs: 15_000 });
}

function logTail(file: string, lines = 5): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function daemonArgs(paths: OvsPaths, name: OvsDaemon): string[] {
  const d = paths.daemons[name];
  return [`--pidfile=${d.pidfile}`, '--detach', `--log-file=${d.log}`, `--unixctl=${d.unixctl}`];
}

export async function createDb(paths: OvsPaths): Promise<void> {
  await run('ovsdb-tool', ['create', paths.db, schemaPath()], { env: paths.env });
}

/** Starts our ovsdb-server; returns its pid. */
export async function startOvsdbServer(paths: OvsPaths): Promise<number> {
  const name = 'ovsdb-server';
  await runDaemon(name, [paths.db, `--remote=punix:${paths.dbSock}`, ...daemonArgs(paths, name)], paths.daemons[name].out, { env: paths.env });
  const pid = readPidfile(paths.daemons[name].pidfile);
  if (pid === undefined) throw new SvtraceError('LAB_OVS_START_FAILED', 'ovsdb-server started but wrote no pidfile', { hint: logTail(paths.daemons[name].log) });
  await vsctl(paths, ['--no-wait', 'init']);
  return pid;
}

/** Starts our ovs-vswitchd; returns its pid. */
export async function startVswitchd(paths: OvsPaths): Promise<number> {
  const name = 'ovs-vswitchd';
  await runDaemon(name, [`unix:${paths.dbSock}`, ...daemonArgs(paths, name)], paths.daemons[name].out, { env: paths.env, timeoutMs: 30_000 });
  const pid = readPidfile(paths.daemons[name].pidfile);
  if (pid === undefined) throw new SvtraceError('LAB_OVS_START_FAILED', 'ovs-vswitchd started but wrote no pidfile', { hint: logTail(paths.daemons[name].log) });
  return pid;
}

const RMEM_DEFAULT = '/proc/sys/net/core/rmem_default';
const LAB_RMEM_BYTES = 16 << 20;

/**
 * The userspace datapath reads each port through an AF_PACKET socket made
 * with the default receive buffer (net.core.rmem_default, ~208 KiB: about
 * 10 ms of 32 000 frames/s), and a descheduled ovs-vswitchd then drops
 * frames. The default is raised only while OVS opens the lab's ports, and
 * put back at once.
 */
async function withLargeSocketBuffers<T>(fn: () => Promise<T>): Promise<T> {
  let previous: string | null = null;
  try {
    const now = readFileSync(RMEM_DEFAULT, 'utf8').trim();
    if (Number(now) < LAB_RMEM_BYTES) {
      writeFileSync(RMEM_DEFAULT, String(LAB_RMEM_BYTES));
      previous = now;
    }
  } catch {
    // not writable here: OVS keeps the default
  }
  try {
    return await fn();
  } finally {
    if (previous !== null) {
      try { writeFileSync(RMEM_DEFAULT, previous); } catch { /* nothing more to do */ }
    }
  }
}

/** Adds the netdev bridge and its two trunk ports, then checks OVS really opened them. */
export async function addBridge(paths: OvsPaths, bridge: string, ports: string[], vlanTrunks: number[]): Promise<void> {
  const args = ['add-br', bridge, '--', 'set', 'bridge', bridge, 'datapath_type=netdev'];
  for (const port of ports) {
    args.push('--', 'add-port', bridge, port, '--', 'set', 'port', port, 'vlan_mode=trunk');
    if (vlanTrunks.length > 0) args.push(`trunks=${vlanTrunks.join(',')}`);
  }
  // ovs-vsctl exits 0 even when ovs-vswitchd fails to set a bridge up: read the Interface table back
  const r = await withLargeSocketBuffers(() => vsctl(paths, args));
  const problems = await interfaceProblems(paths, [bridge, ...ports]);
  if (problems.length > 0) {
    throw new SvtraceError('LAB_OVS_BRIDGE_FAILED', `Open vSwitch could not set up ${bridge}: ${problems.join('; ')}`, {
      hint: `${r.stderr.trim()} ${logTail(paths.daemons['ovs-vswitchd'].log, 3)}`.trim(),
    });
  }
}

export interface OvsInterface {
  name: string;
  ofport: number | undefined;
  error: string | undefined;
}

export async function listInterfaces(paths: OvsPaths): Promise<OvsInterface[]> {
  const r = await vsctl(paths, ['--format=json', '--columns=name,ofport,error', 'list', 'Interface']);
  const table = JSON.parse(r.stdout) as { data: unknown[][] };
  return table.data.map((row) => ({
    name: String(row[0]),
    ofport: typeof row[1] === 'number' ? row[1] : undefined,
    error: typeof row[2] === 'string' ? row[2] : undefined,
  }));
}

async function interfaceProblems(paths: OvsPaths, names: string[]): Promise<string[]> {
  const ifaces = await listInterfaces(paths);
  const problems: string[] = [];
  for (const name of names) {
    const i = ifaces.find((x) => x.name === name);
    if (!i) problems.push(`${name} is not in the database`);
    else if (i.error) problems.push(`${name}: ${i.error}`);
    else if (i.ofport === undefined || i.ofport < 0) problems.push(`${name} has no OpenFlow port`);
  }
  return problems;
}

export async function listPorts(paths: OvsPaths, bridge: string): Promise<string[]> {
  const r = await vsctl(paths, ['list-ports', bridge], true);
  return r.exitCode === 0 ? r.stdout.split('\n').filter((l) => l !== '') : [];
}

/** Running and not a zombie (an orphaned daemon's parent may be slow to reap it). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function signalIfOurs(pid: number, name: OvsDaemon, pidfile: string, signal: NodeJS.Signals): void {
  if (!isOurDaemon(pid, name, pidfile)) return;
  try {
    process.kill(pid, signal);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

/**
 * Stops every running copy of our daemon: first politely (`exit --cleanup`
 * removes ovs-vswitchd's taps), then SIGTERM, then SIGKILL. Returns the pids stopped.
 */
export async function stopDaemon(paths: OvsPaths, name: OvsDaemon): Promise<number[]> {
  const d = paths.daemons[name];
  const pids = findOurDaemons(name, d.pidfile);
  if (pids.length === 0) return [];
  if (existsSync(d.unixctl)) {
    const args = ['-t', d.unixctl, '--timeout=5', 'exit'];
    if (name === 'ovs-vswitchd') args.push('--cleanup');
    await run('ovs-appctl', args, { env: paths.env, allowFailure: true, timeoutMs: 8_000 }).catch(() => undefined);
  }
  for (const pid of pids) {
    if (await waitGone(pid, 3_000)) continue;
    signalIfOurs(pid, name, d.pidfile, 'SIGTERM');
    if (await waitGone(pid, 3_000)) continue;
    signalIfOurs(pid, name, d.pidfile, 'SIGKILL');
    if (!(await waitGone(pid, 3_000))) throw new Error(`${name} (pid ${pid}) does not die`);
  }
  return pids;
}
