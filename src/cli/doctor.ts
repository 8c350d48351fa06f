/**
 * `svtrace doctor [--json]`: what this machine offers for tracing, which
 * probe takes each point and why, and what to fix. Exit 3 when something
 * blocks tracing.
 * `svtrace doctor --tuning [--json]`: the host's real-time settings, what each
 * means for SV latency and what fixes it. Reads only; exit 1 when a check fails.
 */
import type { Command } from 'commander';
import { action, EXIT_ENVIRONMENT, EXIT_OK, EXIT_VERDICT_FAILED } from './run.ts';
import { choosePlan, diagnose, probeCapabilities, type Finding } from '../trace/index.ts';
import { qemuTapPoint } from '../trace/tap.ts';
import { existsSync, readdirSync } from 'node:fs';
import { checkTuning, renderTuning, type TuningOptions } from '../tuning/index.ts';
import { loadConfig } from '../config/load.ts';

const MARK: Record<Finding['level'], string> = { ok: 'ok     ', warning: 'warning', problem: 'problem' };

export function renderFindings(findings: Finding[]): string {
  const lines: string[] = [];
  for (const f of findings) {
    lines.push(`${MARK[f.level]}  ${f.message}`);
    if (f.hint && f.level !== 'ok') lines.push(`         -> ${f.hint}`);
  }
  const problems = findings.filter((f) => f.level === 'problem').length;
  const warnings = findings.filter((f) => f.level === 'warning').length;
  lines.push('', problems ? `${problems} problem(s), ${warnings} warning(s): tracing will not work until the problems are fixed` : `ready to trace (${warnings} warning(s))`);
  return lines.join('\n') + '\n';
}

interface DoctorFlags {
  json?: boolean; tuning?: boolean; interface: string[]; subscriberComm?: string; pid?: string; root?: string; config?: string;
}

/** The tuning options from flags, else the [trace] section of the config (ingress NIC, subscriber_comm). */
export function tuningOptionsFrom(f: DoctorFlags): TuningOptions {
  const needConfig = f.interface.length === 0 || (f.subscriberComm === undefined && f.pid === undefined);
  const section = needConfig ? loadConfig(f.config).trace : undefined;
  // An ingress in a network namespace (IFACE@NETNS) is a lab's veth: no interrupts to check.
  const ingress = [section?.ingress, section?.machine === 'vm' ? undefined : section?.interface].find((x) => x !== undefined && !x.includes('@'));
  const interfaces = f.interface.length ? f.interface.flatMap((x) => x.split(',')).filter(Boolean) : ingress ? [ingress] : undefined;
  const pid = f.pid === undefined ? undefined : Number(f.pid);
  const comm = f.subscriberComm ?? (pid === undefined ? section?.subscriber_comm : undefined);
  return { root: f.root ?? '/', ...(interfaces ? { interfaces } : {}), ...(comm !== undefined ? { subscriberComm: comm } : {}), ...(pid !== undefined ? { subscriberPid: pid } : {}) };
}

/** The VM ports that are taps held by a process, and the point `trace` adds there (T2qemu or T2vhost). */
function tapFindings(): Finding[] {
  let names: string[];
  try { names = readdirSync('/sys/class/net').filter((n) => existsSync(`/sys/class/net/${n}/tun_flags`)); } catch { return []; }
  return names.flatMap((name): Finding[] => {
    const t = qemuTapPoint({ name });
    return t.point ? [{ level: 'ok', message: `${t.point.name} on tap ${name}: ${t.why}` }] : [];
  });
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check what this machine offers for tracing (bpftrace, root, BTF, tracepoints, kprobes) and which probe takes T1..T4; --tuning: its real-time settings')
    .option('--json', 'print the capabilities, plan and findings as JSON')
    .option('--tuning', 'check the real-time settings (PREEMPT_RT, isolated CPUs, IRQ affinity, governor, idle states, SMT, QEMU and subscriber threads, timer slack, swap); reads only')
    .option('-i, --interface <if>', '--tuning: the NIC carrying SV whose interrupts to check (repeatable; default: [trace] ingress of the config, else every physical NIC)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--subscriber-comm <name>', '--tuning: thread name of the subscriber (default svtrace-rx)')
    .option('--pid <pid>', '--tuning: process id of the subscriber')
    .option('-c, --config <file>', 'TOML config (default /etc/svtrace.toml when it exists)')
    .option('--root <dir>', '--tuning: read proc/ and sys/ under this directory instead of / (a copied or fake tree)')
    .addHelpText('after', '\nExamples:\n  svtrace doctor\n  svtrace doctor --tuning --interface ens1f0 --subscriber-comm svtrace-rx\n  svtrace doctor --tuning --json')
    .action(action(async (opts: DoctorFlags) => {
      if (opts.tuning) {
        const report = checkTuning(tuningOptionsFrom(opts));
        process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderTuning(report));
        return report.counts.fail > 0 ? EXIT_VERDICT_FAILED : EXIT_OK;
      }
      const capabilities = await probeCapabilities();
      const plan = choosePlan(capabilities);
      const findings = [...diagnose(capabilities, plan), ...tapFindings()];
      if (opts.json) process.stdout.write(JSON.stringify({ capabilities, plan, findings }, null, 2) + '\n');
      else process.stdout.write(renderFindings(findings));
      return findings.some((f) => f.level === 'problem') ? EXIT_ENVIRONMENT : EXIT_OK;
    }));
}
