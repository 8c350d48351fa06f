/**
 * `lab exec`: run a command where a lab machine lives. The publisher and a
 * netns VM are network namespaces (`ip netns exec`, no shell); a QEMU VM is
 * reached over its control channel (vm-control.ts). Either way the output
 * streams, the exit code comes back, and signals can be forwarded.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { SvtraceError } from '../errors.ts';
import type { ForwardedSignal } from './agent-protocol.ts';
import type { ClockOffset } from './clock-offset.ts';
import { readLabState } from './state.ts';
import { vmExec, type VmExecIo } from './vm-control.ts';

export type LabMachine = 'vm' | 'pub';

export function isLabMachine(s: string): s is LabMachine {
  return s === 'vm' || s === 'pub';
}

export interface LabExecHandle {
  /** Where the command runs, in words. */
  where: string;
  /** QEMU guest only: its clock against the host's when the command started. */
  clockOffset?: ClockOffset;
  /** The exit code (128 + signal number when a signal ended it, as a shell reports it). */
  done: Promise<number>;
  signal(sig: ForwardedSignal): void;
}

function exitCodeOf(code: number | null, signal: string | null): number {
  if (code !== null) return code;
  const n = signal ? (constants.signals as Record<string, number>)[signal] : undefined;
  return 128 + (n ?? 0);
}

export async function labExec(runDir: string, machine: LabMachine, argv: string[], io: VmExecIo): Promise<LabExecHandle> {
  if (argv.length === 0) throw new SvtraceError('USAGE', 'no command to run', { hint: 'svtrace lab exec vm -- uname -a' });
  const topology = await readLabState(runDir);
  if (machine === 'vm' && topology.vm) {
    const h = await vmExec(topology.vm.controlSockets, argv, io);
    const done = h.done.then((r) => exitCodeOf(r.code, r.signal));
    done.catch(() => undefined); // awaited by whoever cares; a job left running when its guest goes down must not crash the process
    const handle: LabExecHandle = { where: `guest ${topology.vm.hostname}`, done, signal: h.signal };
    if (h.clockOffset) handle.clockOffset = h.clockOffset;
    return handle;
  }
  const netns = machine === 'vm' ? topology.vmNetns : topology.pubNetns;
  const child = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['inherit', 'pipe', 'pipe'], cwd: io.cwd, env: { ...process.env, ...(io.env ?? {}) } });
  child.stdout.on('data', io.stdout);
  child.stderr.on('data', io.stderr);
  const done = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new SvtraceError('LAB_TOOL_MISSING', `cannot run ip netns exec: ${e.message}`, { hint: 'apt-get install iproute2' })));
    child.on('close', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
  done.catch(() => undefined);
  return {
    where: `namespace ${netns}`,
    done,
    signal: (sig) => { if (child.exitCode === null) child.kill(sig); },
  };
}
