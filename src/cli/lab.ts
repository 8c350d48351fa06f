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
  if (!isHop(hop)) throw usage(`--hop ${hop} is not a hop`, 'use --hop pub (publisher egress) or --hop vm (the VM port)');
  if (Object.keys(imp).length === 0) {
    if (o.hop !== undefined) throw usage('--hop needs an impairment', 'add --delay US, --jitter US, --loss PCT or --rate MBIT');
    return undefined;
  }
  return { hop, impairment: imp };
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
    .option('--hop <hop>', 'where: pub (publisher egress) or vm (the host port towards the VM; default)');
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
      .option('--json', 'print the topology as JSON')
      .option('-q, --quiet', 'no progress on stderr'),
  )
    .addHelpText('after', '\nExamples:\n  svtrace lab up\n  svtrace lab up --switch bridge --prefix t1 --run-dir /tmp/t1\n  svtrace lab up --delay 500 --jitter 50 --hop vm')
    .action(action(async (o: ImpairOptions & {
      switch: string; runDir: string; prefix: string; mtu: string; vlans?: string; verify: boolean; json?: boolean; quiet?: boolean;
    }) => {
      if (o.switch !== 'ovs' && o.switch !== 'bridge' && o.switch !== 'auto') throw usage(`--switch ${o.switch} is not a switch`, 'use --switch ovs or --switch bridge');
      const input: LabConfigInput = {
        switch: o.switch, runDir: o.runDir, prefix: o.prefix, mtu: parseNumber('mtu', o.mtu, true), verifyForwarding: o.verify,
      };
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
        if (!isHop(hop)) throw usage(`--hop ${hop} is not a hop`, 'use --hop pub or --hop vm');
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
