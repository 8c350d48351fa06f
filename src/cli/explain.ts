/** `svtrace explain`: trace the points and the flight recorder together, and say why late samples were late. */
import { roleSegment } from '../path/index.ts';
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SvtraceError } from '../errors.ts';
import { runExplain } from '../explain/run.ts';
import { explainJson, renderExplainSummary } from '../explain/render.ts';
import { writeExplainDir } from '../explain/files.ts';
import { validateCpus } from '../explain/recorder.ts';
import { action } from './run.ts';
import { interruptSignal } from './progress.ts';
import { traceConfigFrom } from './trace.ts';

interface Flags {
  config?: string; machine?: string; lab?: string | boolean; ingress?: string; vmPort?: string; vmIf?: string; subscriberComm?: string;
  duration: string; thresholdUs: string; out?: string; cpus?: string; engine?: string; windowS: string; worst: string; json?: boolean;
}

function num(v: string, flag: string, ok: (n: number) => boolean, example: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) throw new SvtraceError('USAGE', `${flag} ${v} is not valid`, { hint: `e.g. ${flag} ${example}` });
  return n;
}

export function register(program: Command): void {
  program
    .command('explain')
    .description('why were samples late: the kernel\'s scheduling and interrupts around every sample over the threshold')
    .option('-c, --config <file>', 'TOML config (default /etc/svtrace.toml when it exists)')
    .option('-m, --machine <role>', 'hypervisor (explains Thyp = T2 − T1) or vm (Tsub = T4 − T3)', 'hypervisor')
    .option('--lab [rundir]', 'take the interfaces from the running `svtrace lab` (default /run/svtrace/lab)')
    .option('--ingress <if>', 'hypervisor: the NIC where SV arrives (T1)')
    .option('--vm-port <if>', 'hypervisor: the port towards the VM (T2)')
    .option('--vm-if <if>', 'vm: the VM\'s interface (T3)')
    .option('--subscriber-comm <name>', 'vm: the subscriber\'s command name (T4)')
    .option('-d, --duration <s>', 'seconds to trace', '10')
    .option('-t, --threshold-us <us>', 'explain samples slower than this', '100')
    .option('-o, --out <dir>', 'write explanations.json and one Chrome/Perfetto trace per worst sample here')
    .option('--cpus <list>', 'record only these CPUs (e.g. 1,3; default all)')
    .option('--engine <name>', 'bpf (the binary point tracer and flight recorder; the default where libbpf and BTF are there) or bpftrace (the generated programs, readable)')
    .option('--window-s <s>', 'seconds of recorder history kept per CPU', '2')
    .option('--worst <n>', 'Chrome traces for this many worst samples', '5')
    .option('--json', 'print the result as JSON instead of the summary')
    .addHelpText('after', '\nExamples:\n  sudo svtrace explain --lab --duration 10 --threshold-us 100 --out runs/explain\n  sudo svtrace explain --ingress ens1f0 --vm-port vnet3 --cpus 2,3 --out runs/explain')
    .action(action(async (f: Flags) => {
      const durationS = num(f.duration, '--duration', (n) => n > 0 && n <= 86_400, '10');
      const thresholdUs = num(f.thresholdUs, '--threshold-us', (n) => n > 0, '100');
      const windowS = num(f.windowS, '--window-s', (n) => n > 0 && n <= 60, '2');
      const worst = num(f.worst, '--worst', (n) => Number.isInteger(n) && n >= 0 && n <= 100, '5');
      const cpus = f.cpus === undefined ? undefined : validateCpus(f.cpus.split(',').map((c) => (c.trim() === '' ? NaN : Number(c))));
      const out = f.out ? resolve(f.out) : null;
      if (out && existsSync(join(out, 'explanations.json'))) throw new SvtraceError('USAGE', `${out} already holds explanations`, { hint: 'give another --out directory' });
      const { trace } = await traceConfigFrom({ ...f, stream: [] });
      const segment = roleSegment(trace.role === 'vm' ? 'vm' : 'hypervisor');
      const stop = interruptSignal();
      try {
        const r = await runExplain({
          trace, segment, thresholdNs: thresholdUs * 1000, durationS, windowS, worst, signal: stop.signal,
          ...(cpus ? { cpus } : {}), log: (l) => process.stderr.write(`svtrace explain: ${l}\n`),
        });
        if (out) {
          // the same files as `trace --explain` writes into RECORD/explain/ (worst samples and a normal one near each)
          const w = writeExplainDir(out, r, { windowS });
          process.stderr.write(`svtrace explain: wrote ${w.json} and ${w.traces.length} Chrome trace(s) (open them in https://ui.perfetto.dev)\n`);
        }
        process.stdout.write(f.json ? JSON.stringify(explainJson(r), null, 1) + '\n' : renderExplainSummary(r, worst));
        return 0;
      } finally {
        stop.dispose();
      }
    }));
}
