/**
 * `svtrace lab up|down|status|impair`: a one-machine lab with the path of a
 * SEAPATH hypervisor (publisher netns → veth → OVS or Linux bridge → veth →
 * VM netns). Results go to stdout (a table, or --json); progress to stderr.
 */
import type { Command } from 'commander';
import { SvtraceError } from '../errors.ts';
import {
  applyImpairment, clearImpairment, DEFAULT_PREFIX, DEFAULT_RUN_DIR, isHop, labDown, labStatus, labUp, readLabState,
  type Hop, type Impairment, type LabConfigInput,
} from '../lab/index.ts';
import { renderDown, renderStatus, renderUp } from '../lab/render.ts';
import { isLabMachine, labExec } from '../lab/lab-exec.ts';
import { openControl } from '../lab/vm-control.ts';
import { measureClockOffset } from '../lab/clock-offset.ts';
import { action, EXIT_ENVIRONMENT, EXIT_OK } from './run.ts';

interface ImpairOptions {
  delay?: string;
  jitter?: string;
  loss?: string;
  rate?: string;
  hop?: string;
}

function usage(message: string, hint: string): SvtraceError {
  return new SvtraceError('USAGE', message, { hint });
}

function parseNumber(flag: string, text: string, integer: boolean): number {
  const re = integer ? /^\d+$/ : /^\d+(\.\d+)?$/;
  if (!re.test(text)) throw usage(`--${flag} ${text} is not a ${integer ? 'whole ' : ''}number`, `e.g. --${flag} ${integer ? '500' : '0.5'}`);
  return Number(text);
}

/** The impairment flags, or undefined when none is given. */
export function impairmentFromFlags(o: ImpairOptions): { hop: Hop; impairment: Impairment } | undefined {
  const imp: Impairment = {};
  if (o.delay !== undefined) imp.delayUs = parseNumber('delay', o.delay, true);
  if (o.jitter !== undefined) imp.jitterUs = parseNumber('jitter', o.jitter, true);
  if (o.loss !== undefined) imp.lossPct = parseNumber('loss', o.loss, false);
  if (o.rate !== undefined) imp.rateMbit = parseNumber('rate', o.rate, false);
  const hop = o.hop ?? 'vm';
  if (!isHop(hop)) throw usage(`--hop ${hop} is not a hop`, 'use --hop pub (publisher egress), vm (the VM port) or guest (inside a QEMU guest)');
  if (Object.keys(imp).length === 0) {
    if (o.hop !== undefined) throw usage('--hop needs an impairment', 'add --delay US, --jitter US, --loss PCT or --rate MBIT');
    return undefined;
  }
  return { hop, impairment: imp };
}

function cpuList(flag: string, text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  return text.split(',').flatMap((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw usage(`--${flag} ${text} is not a CPU list`, `e.g. --${flag} 1 or --${flag} 0,1 or --${flag} 2-3`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from || to - from > 4095) throw usage(`--${flag} ${part} is not a CPU range`, `e.g. --${flag} 2-3`);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
}

function progressTo(quiet: boolean | undefined): (m: string) => void {
  return quiet ? () => {} : (m) => process.stderr.write(`svtrace lab: ${m}\n`);
}

function withImpairFlags(cmd: Command): Command {
  return cmd
    .option('--delay <us>', 'netem delay in µs')
    .option('--jitter <us>', 'netem jitter in µs')
    .option('--loss <pct>', 'netem random loss in %')
    .option('--rate <mbit>', 'netem rate limit in Mbit/s')
    .option('--hop <hop>', 'where: pub (publisher egress), vm (the host port towards the VM; default) or guest (inside a QEMU guest, between its NIC and the application port app0)');
}

export function register(program: Command): void {
  const lab = program.command('lab').description('a one-machine lab: publisher netns → veth → OVS or bridge → veth → VM netns');

  withImpairFlags(
    lab
      .command('up')
      .description('build the lab (needs root)')
      .option('--switch <kind>', 'ovs (private ovs-vswitchd, userspace datapath), bridge (Linux bridge), or auto', 'auto')
      .option('--run-dir <dir>', 'state, OVS db, sockets and logs', DEFAULT_RUN_DIR)
      .option('--prefix <p>', 'prefix of every namespace and interface name', DEFAULT_PREFIX)
      .option('--mtu <bytes>', 'MTU of the lab links', '1500')
      .option('--vlans <ids>', 'OVS only: comma-separated VLAN IDs to trunk (default: all)')
      .option('--no-verify', 'skip sending test frames through the lab')
      .option('--vm <kind>', 'netns (a network namespace) or qemu (a QEMU guest with its own kernel on a tap)', 'netns')
      .option('--accel <a>', 'qemu: auto (KVM when it can run the guest, else TCG emulation), kvm or tcg', 'auto')
      .option('--vm-cpus <list>', 'qemu: pin the vCPU threads to these host CPUs (vCPU i on the i-th)')
      .option('--emulator-cpu <list>', 'qemu: pin QEMU\'s other threads (main loop, I/O) to these host CPUs')
      .option('--vm-memory <mib>', 'qemu: guest memory in MiB', '1024')
      .option('--tap-queue <frames>', 'qemu: the tap\'s queue (txqueuelen); deeper turns the emulator\'s stalls into latency instead of loss', '1000')
      .option('--json', 'print the topology as JSON')
      .option('-q, --quiet', 'no progress on stderr'),
  )
    .addHelpText('after', '\nExamples:\n  svtrace lab up\n  svtrace lab up --switch bridge --prefix t1 --run-dir /tmp/t1\n  svtrace lab up --delay 500 --jitter 50 --hop vm\n  svtrace lab up --vm qemu --vm-cpus 1 --emulator-cpu 0')
    .action(action(async (o: ImpairOptions & {
      switch: string; runDir: string; prefix: string; mtu: string; vlans?: string; verify: boolean; json?: boolean; quiet?: boolean;
      vm: string; accel: string; vmCpus?: string; emulatorCpu?: string; vmMemory: string; tapQueue: string;
    }) => {
      if (o.switch !== 'ovs' && o.switch !== 'bridge' && o.switch !== 'auto') throw usage(`--switch ${o.switch} is not a switch`, 'use --switch ovs or --switch bridge');
      if (o.vm !== 'netns' && o.vm !== 'qemu') throw usage(`--vm ${o.vm} is not a VM kind`, 'use --vm netns or --vm qemu');
      if (o.accel !== 'auto' && o.accel !== 'kvm' && o.accel !== 'tcg') throw usage(`--accel ${o.accel} is not an accelerator`, 'use --accel auto, kvm or tcg');
      const input: LabConfigInput = {
        switch: o.switch, runDir: o.runDir, prefix: o.prefix, mtu: parseNumber('mtu', o.mtu, true), verifyForwarding: o.verify, vm: o.vm,
      };
      if (o.vm === 'qemu') {
        input.accel = o.accel;
        input.vmMemoryMb = parseNumber('vm-memory', o.vmMemory, true);
        input.tapQueueFrames = parseNumber('tap-queue', o.tapQueue, true);
        const vmCpus = cpuList('vm-cpus', o.vmCpus);
        const emulatorCpus = cpuList('emulator-cpu', o.emulatorCpu);
        if (vmCpus) input.vmCpus = vmCpus;
        if (emulatorCpus) input.emulatorCpus = emulatorCpus;
      } else if (o.vmCpus !== undefined || o.emulatorCpu !== undefined || o.accel !== 'auto') {
        throw usage('--vm-cpus, --emulator-cpu and --accel apply to --vm qemu only', 'add --vm qemu');
      }
      if (o.vlans !== undefined) input.vlanTrunks = o.vlans.split(',').map((v) => parseNumber('vlans', v.trim(), true));
      const imp = impairmentFromFlags(o);
      if (imp) input.impairments = { [imp.hop]: imp.impairment };
      const result = await labUp(input, { onProgress: progressTo(o.quiet) });
      process.stdout.write(o.json ? JSON.stringify(result, null, 2) + '\n' : renderUp(result));
    }));

  lab
    .command('down')
    .description('remove everything the lab created (idempotent; also after a crashed `lab up`)')
    .option('--run-dir <dir>', 'the lab\'s run directory', DEFAULT_RUN_DIR)
    .option('--json', 'print what was removed as JSON')
    .option('-q, --quiet', 'no progress on stderr')
    .action(action(async (o: { runDir: string; json?: boolean; quiet?: boolean }) => {
      const result = await labDown(o.runDir, progressTo(o.quiet));
      process.stdout.write(o.json ? JSON.stringify(result, null, 2) + '\n' : renderDown(result));
    }));

  lab
    .command('status')
    .description('what of the lab is up: namespaces, links, qdiscs, bridge ports, OVS processes')
    .option('--run-dir <dir>', 'the lab\'s run directory', DEFAULT_RUN_DIR)
    .option('--json', 'print the status as JSON')
    .action(action(async (o: { runDir: string; json?: boolean }) => {
      const status = await labStatus(o.runDir);
      process.stdout.write(o.json ? JSON.stringify(status, null, 2) + '\n' : renderStatus(status));
      return status.phase === 'none' || status.healthy ? EXIT_OK : EXIT_ENVIRONMENT;
    }));

  lab
    .command('exec')
    .description('run a command on a lab machine: vm (the VM namespace, or the QEMU guest over its control channel) or pub (the publisher namespace)')
    .argument('<machine>', 'vm or pub')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('--run-dir <dir>', 'the lab\'s run directory', DEFAULT_RUN_DIR)
    .addHelpText('after', '\nThe exit code is the command\'s; Ctrl-C is forwarded (twice: SIGKILL).\nExamples:\n  svtrace lab exec vm -- uname -a\n  svtrace lab exec vm -- svtrace subscribe -i eth0 -d 10')
    .action(action(async (machine: string, argv: string[], o: { runDir: string }) => {
      if (!isLabMachine(machine)) throw usage(`${machine} is not a lab machine`, 'use vm or pub');
      const h = await labExec(o.runDir, machine, argv, {
        stdout: (b) => process.stdout.write(b),
        stderr: (b) => process.stderr.write(b),
      });
      let interrupts = 0;
      const forward = (sig: 'SIGINT' | 'SIGTERM' | 'SIGHUP') => () => h.signal(sig === 'SIGINT' && ++interrupts > 1 ? 'SIGKILL' : sig);
      const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, forward(sig)] as const);
      for (const [sig, fn] of handlers) process.on(sig, fn);
      try {
        return await h.done;
      } finally {
        for (const [sig, fn] of handlers) process.off(sig, fn);
      }
    }));

  lab
    .command('clock')
    .description('measure the QEMU guest\'s clock against the host\'s (NTP-style over the control channel, min-RTT of 16 exchanges)')
    .option('--run-dir <dir>', 'the lab\'s run directory', DEFAULT_RUN_DIR)
    .option('--json', 'print the measurement as JSON (ns as strings)')
    .action(action(async (o: { runDir: string; json?: boolean }) => {
      const topology = await readLabState(o.runDir);
      if (!topology.vm) throw new SvtraceError('LAB_NO_VM_CLOCK', 'this lab\'s VM is a network namespace: it shares the host\'s clock', { hint: 'svtrace lab up --vm qemu' });
      const session = await openControl(topology.vm.controlSockets);
      try {
        const c = await measureClockOffset(session);
        if (!c) throw new SvtraceError('LAB_VM_UNREACHABLE', 'the guest did not answer a single clock exchange', { hint: 'svtrace lab status' });
        if (o.json) {
          process.stdout.write(JSON.stringify({ accel: topology.vm.accel, ...Object.fromEntries(Object.entries(c).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v])) }, null, 2) + '\n');
        } else {
          const us = (ns: bigint) => (Number(ns) / 1000).toFixed(1);
          process.stdout.write(`guest ${topology.vm.hostname} − host: ${us(c.offsetNs)} µs ± ${us(c.uncertaintyNs)} µs (min RTT ${us(c.rttNs)} µs of ${c.exchanges} exchanges${topology.vm.accel === 'tcg' ? '; TCG emulation: an emulator\'s timings' : ''})\n`);
        }
      } finally {
        await session.close();
      }
    }));

  withImpairFlags(
    lab
      .command('impair')
      .description('set or clear the netem impairment of one hop of a running lab')
      .option('--run-dir <dir>', 'the lab\'s run directory', DEFAULT_RUN_DIR)
      .option('--clear', 'remove the impairment of the hop'),
  )
    .action(action(async (o: ImpairOptions & { runDir: string; clear?: boolean }) => {
      const topology = await readLabState(o.runDir);
      if (o.clear) {
        const hop = o.hop ?? 'vm';
        if (!isHop(hop)) throw usage(`--hop ${hop} is not a hop`, 'use --hop pub, vm or guest');
        await clearImpairment(topology, hop);
        process.stdout.write(`hop ${hop}: no impairment\n`);
        return;
      }
      const imp = impairmentFromFlags(o);
      if (!imp) throw usage('nothing to set', 'give --delay, --jitter, --loss or --rate, or --clear');
      const applied = await applyImpairment(topology, imp.hop, imp.impairment);
      process.stdout.write(`hop ${imp.hop}: ${JSON.stringify(applied)}\n`);
    }));
}
