/**
 * `lab up --vm qemu`: the VM port is a tap on the bridge (or OVS), QEMU's
 * virtio-net sits on it, and the guest runs svtrace's agent. Each piece goes
 * into the state file before it is made (see up.ts), so `lab down` removes
 * QEMU, the tap and the files also after a crash.
 */
import { mkdir } from 'node:fs/promises';
import { SvtraceError } from '../errors.ts';
import type { LabConfig } from './config.ts';
import type { Progress } from './down.ts';
import { hasCommand, run } from './exec.ts';
import { disableIpv6, quietUp } from './netlink.ts';
import { findGuestImage, ourQemuPid, pinVcpus, probeKvm, QEMU_BINARY, startQemu, svtraceRoot, tightenTimerSlack } from './qemu.ts';
import { chooseAccel, macForPrefix, TCG_NOTE, vmPaths, type QemuSpec } from './qemu-spec.ts';
import type { LabResource, LabState, VmTopology } from './state.ts';
import { openControl, waitForAgent } from './vm-control.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

type Step = (state: LabState, resource: LabResource, create: () => Promise<void>) => Promise<void>;

/** Throws before anything is created when QEMU, taskset or the guest image is missing. */
export function checkQemuAvailable(): void {
  if (!hasCommand(QEMU_BINARY)) {
    throw new SvtraceError('LAB_TOOL_MISSING', `${QEMU_BINARY} is not installed`, { hint: 'apt-get install qemu-system-x86 (scripts/setup.sh does it)' });
  }
  findGuestImage();
}

/** The agent's bundle; the guest runs it with the host's node. */
function guestAgentPath(root: string): string {
  const path = join(root, 'dist', 'guest-agent.js');
  if (!existsSync(path)) throw new SvtraceError('LAB_VM_NO_AGENT', `${path} is missing`, { hint: 'build svtrace first: npm run build' });
  return path;
}

/** The guest's hostname: the lab's prefix, so records written in the guest say which lab they came from. */
export function guestHostname(prefix: string): string {
  return `${prefix}-vm`.replace(/[^A-Za-z0-9-]/g, '-').slice(0, 63);
}

/** The run directory's vm/ (console log, pidfile, control sockets, the share) and the tap. */
export async function createVmTap(state: LabState, config: LabConfig, step: Step, progress: Progress): Promise<void> {
  const paths = vmPaths(config.runDir);
  await step(state, { kind: 'dir', path: paths.dir, tree: true }, async () => {
    await mkdir(paths.share, { recursive: true, mode: 0o755 });
  });
  const tap = config.names.hostVmIf;
  progress(`creating tap ${tap} (the VM port)`);
  await step(state, { kind: 'tap', name: tap }, async () => {
    await run('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  });
  await run('ip', ['link', 'set', 'dev', tap, 'txqueuelen', String(config.qemu.tapQueueFrames)]);
  await disableIpv6(undefined, tap).catch(() => undefined);
  await quietUp(tap, undefined, config.mtu);
}

/** Starts QEMU on the tap, pins it, waits for the guest's agent. */
export async function buildQemuVm(state: LabState, config: LabConfig, step: Step, progress: Progress): Promise<void> {
  const paths = vmPaths(config.runDir);
  const image = findGuestImage();
  const choice = chooseAccel(config.qemu.accel, probeKvm());
  const root = svtraceRoot();
  const spec: QemuSpec = {
    paths, image, accel: choice.accel, tap: config.names.hostVmIf, mac: macForPrefix(config.prefix),
    hostname: guestHostname(config.prefix), vcpus: config.qemu.vcpus, memoryMb: config.qemu.memoryMb,
    node: process.execPath, agent: guestAgentPath(root), name: `svtrace-${config.prefix}`,
  };
  const vm: VmTopology = {
    kind: 'qemu', accel: choice.accel, accelReason: choice.accel === 'tcg' ? `${choice.reason}: ${TCG_NOTE.replace(/^QEMU TCG emulation \(no KVM\): /, '')}` : choice.reason,
    tap: spec.tap, tapQueueFrames: config.qemu.tapQueueFrames, guestIf: 'eth0', mac: spec.mac, hostname: spec.hostname, vcpus: spec.vcpus, memoryMb: spec.memoryMb,
    pinning: { vcpus: [], emulatorCpus: config.qemu.emulatorCpus }, share: paths.share, controlSockets: paths.controlSockets,
    consoleLog: paths.consoleLog, kernelRelease: image.release,
  };
  state.topology.vm = vm;
  progress(`starting QEMU (${choice.reason}; guest kernel ${image.release}, ${spec.vcpus} vCPU, ${spec.memoryMb} MiB)`);
  const res: LabResource = { kind: 'qemu', pidfile: paths.pidfile };
  const started = performance.now();
  await step(state, res, async () => {
    res.pid = await startQemu(spec, config.qemu.emulatorCpus);
  });
  vm.pid = res.pid;
  if (res.pid !== undefined) {
    vm.timerSlackNs = tightenTimerSlack(res.pid) > 0 ? 1 : undefined;
    if (vm.timerSlackNs === undefined) delete vm.timerSlackNs;
  }
  if (config.qemu.vmCpus.length > 0 && res.pid !== undefined) {
    vm.pinning = await pinVcpus(res.pid, config.qemu.vmCpus, config.qemu.emulatorCpus);
    progress(`pinned ${vm.pinning.vcpus.map((p) => `vCPU ${p.vcpu} → CPU ${p.cpu}`).join(', ')}${config.qemu.emulatorCpus.length ? `, emulator → CPU ${config.qemu.emulatorCpus.join(',')}` : ''}`);
  }
  progress(`waiting for the guest to boot (${choice.accel === 'tcg' ? 'TCG: ~10 s on an idle machine' : 'KVM'})`);
  const session = await openControl(paths.controlSockets.slice(0, 1));
  try {
    const agent = await waitForAgent(session, config.qemu.bootTimeoutS * 1000, () => ourQemuPid(paths.pidfile) !== undefined, `see the guest's console: ${paths.consoleLog}`);
    vm.bootMs = performance.now() - started;
    progress(`guest ${agent.hostname} is up after ${(vm.bootMs / 1000).toFixed(1)} s`);
  } finally {
    await session.close();
  }
}
