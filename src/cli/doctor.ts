/**
 * `svtrace doctor [--json]`: what this machine offers for tracing, which
 * probe takes each point and why, and what to fix. Exit 3 when something
 * blocks tracing.
 */
import type { Command } from 'commander';
import { action, EXIT_ENVIRONMENT, EXIT_OK } from './run.ts';
import { choosePlan, diagnose, probeCapabilities, type Finding } from '../trace/index.ts';

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

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check what this machine offers for tracing (bpftrace, root, BTF, tracepoints, kprobes) and which probe takes T1..T4')
    .option('--json', 'print the capabilities, plan and findings as JSON')
    .action(action(async (opts: { json?: boolean }) => {
      const capabilities = await probeCapabilities();
      const plan = choosePlan(capabilities);
      const findings = diagnose(capabilities, plan);
      if (opts.json) process.stdout.write(JSON.stringify({ capabilities, plan, findings }, null, 2) + '\n');
      else process.stdout.write(renderFindings(findings));
      return findings.some((f) => f.level === 'problem') ? EXIT_ENVIRONMENT : EXIT_OK;
    }));
}
