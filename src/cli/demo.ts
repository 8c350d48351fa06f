/** `svtrace demo`: the whole job on one machine, in one command. */
import type { Command } from 'commander';
import { runDemo } from '../demo/run.ts';
import { SvtraceError } from '../errors.ts';
import { action } from './run.ts';
import { interruptSignal } from './progress.ts';
import { groupDigits } from '../util/text.ts';
import { analyzeRecords } from '../analyze/index.ts';
import { compareAnalyses, renderSummaryText, seedTable, writeComparison, writeReport } from '../report/index.ts';
import { renderTable } from '../util/text.ts';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../config/load.ts';
import { join } from 'node:path';
import { renderExplainSummary } from '../explain/render.ts';
import { runVmDemo } from '../demo/vm.ts';
import { readBackHop } from '../demo/vm-readback.ts';
import { HOP_SEGMENT } from '../demo/vm.ts';

function optionalNumber(v: string | undefined, flag: string, ok: (n: number) => boolean, example: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new SvtraceError('USAGE', `${flag} ${v} is not valid`, { hint: `e.g. ${flag} ${example}` });
  return n;
}

const us = (v: number | null) => (v === null ? '–' : v.toFixed(1));

/** `demo --vm qemu`: phases through a real guest, the hop read back, the report of every record. */
async function vmDemo(out: string, durationS: number, delay: string | undefined, loss: string | undefined, guestEngine: string | undefined): Promise<number> {
  if (guestEngine !== undefined && guestEngine !== 'bpf' && guestEngine !== 'bpftrace') throw new SvtraceError('USAGE', `--guest-engine ${guestEngine} is neither bpf nor bpftrace`, { hint: 'e.g. --guest-engine bpftrace (the readable engine; minutes to start under TCG)' });
  const delayUs = optionalNumber(delay, '--delay', (n) => Number.isInteger(n) && n > 0 && n <= 1_000_000, '400');
  const lossPct = optionalNumber(loss, '--loss', (n) => n > 0 && n <= 100, '2');
  const stop = interruptSignal();
  try {
    const log = (l: string) => process.stderr.write(`svtrace demo: ${l}\n`);
    const asdus = 8;
    const r = await runVmDemo({ outDir: out, durationS, asdus, ...(delayUs !== undefined ? { delayUs } : {}), ...(lossPct !== undefined ? { lossPct } : {}), ...(guestEngine ? { guestEngine } : {}), signal: stop.signal, log });
    if (stop.signal.aborted) return 130;
    const rb = await readBackHop(r.vmRecord, r.phases, asdus, r.records.find((d) => d.endsWith('trace-hypervisor')));
    process.stdout.write(`the guest's hop (${HOP_SEGMENT.from}→${HOP_SEGMENT.to}), read back from the guest's own points (µs, p50; ${r.lab.vm?.accel === 'tcg' ? 'TCG emulation: an emulator\'s timings' : 'KVM'})\n`);
    const rows = rb.phases.map((p) => [p.label, p.svId, String(p.injectedDelayUs), us(p.p50Us.Thop ?? null), us(p.shiftUs.Thop ?? null), us(p.shiftUs.Thold ?? null), us(p.shiftUs.Tapp ?? null), us(p.shiftUs.Thyp ?? null),
      groupDigits(p.missing), p.netemDroppedSamples === null ? '–' : groupDigits(p.netemDroppedSamples)]);
    process.stdout.write(renderTable(['phase', 'svID', 'injected', 'Thop p50', 'Thop shift', 'netem held (shift)', 'Tapp shift', 'Thyp shift', 'missing', 'netem dropped'], rows, new Set([2, 3, 4, 5, 6, 7, 8, 9])));
    const delayed = rb.phases.filter((p) => p.injectedDelayUs > 0);
    if (delayed.length) {
      const mean = (k: string) => delayed.reduce((a, p) => a + (p.shiftUs[k] ?? 0), 0) / delayed.length;
      process.stdout.write(`read back: ${HOP_SEGMENT.name} moved by ${mean('Thop').toFixed(1)} µs for ${delayed[0]!.injectedDelayUs} µs injected (mean over the ${delayed.length} delayed phases; baseline: the mean of the baseline phases); netem's queue itself held frames ${mean('Thold').toFixed(1)} µs longer; Tapp by ${mean('Tapp').toFixed(1)} µs, Thyp by ${mean('Thyp').toFixed(1)} µs\n`);
    }
    log('report: joining every record (host and guest) and computing the statistics');
    const analysis = await analyzeRecords(r.records, { segments: [HOP_SEGMENT] });
    const files = await writeReport(analysis, join(r.outDir, 'report'));
    process.stdout.write(`\n${renderSummaryText(analysis)}\nrecords: ${r.records.join(', ')}\nreport:  ${files.html}\n`);
    return 0;
  } finally {
    stop.dispose();
  }
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('bring up the lab, publish, trace the hypervisor, subscribe in the VM, report, and clean up')
    .option('-o, --out <dir>', 'where the records and the report go', `svtrace-demo-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}`)
    .option('-d, --duration <s>', 'seconds of traffic', '20')
    .option('-n, --streams <n>', 'streams of 4000 samples/s', '8')
    .option('--switch <kind>', 'bridge (default: kernel forwarding keeps up on small machines), ovs (userspace datapath) or auto', 'bridge')
    .option('--impair', 'add a known disturbance so the report shows a tail (netem delay when the kernel has it, else a SCHED_FIFO CPU hog on the switch\'s CPU)')
    .option('--explain', 'run the flight recorder beside the hypervisor trace: every late Thyp sample explained, in the report too')
    .option('--subscriber-fifo <prio>', 'run the subscriber\'s receive thread at SCHED_FIFO (1..99), as a protection application runs (on small machines it competes with bpftrace)')
    .option('--explain-threshold-us <us>', 'explain Thyp samples slower than this (default: the Thyp limit, 100 µs)')
    .option('--tuned', 'the tuned variant: the subscriber\'s receive thread at SCHED_FIFO on a CPU of its own, publisher and tracer on the others')
    .option('--vm <kind>', 'netns (default: a network namespace, quick) or qemu (a real QEMU guest: T3, T3app and T4 traced inside it)', 'netns')
    .option('--delay <us>', 'with --vm qemu: after a baseline phase, a phase with this netem delay on the guest\'s hop, read back', )
    .option('--loss <pct>', 'with --vm qemu: a phase with this netem loss on the guest\'s hop, accounted sample by sample')
    .option('--guest-engine <engine>', 'with --vm qemu: the guest tracer\'s engine, bpf or bpftrace (default: trace\'s own choice, bpf where the guest\'s kernel runs it)')
    .option('--compare', 'run the path twice, nominal then tuned, and write both reports and their comparison (OUT/nominal, OUT/tuned, OUT/compare)')
    .addHelpText('after', '\nExamples:\n  sudo svtrace demo --duration 20 --impair --explain\n  sudo svtrace demo --compare --duration 20 --streams 4')
    .action(action(async (f: { out: string; duration: string; streams: string; switch: string; impair?: boolean; explain?: boolean; explainThresholdUs?: string; subscriberFifo?: string; tuned?: boolean; compare?: boolean; vm: string; delay?: string; loss?: string; guestEngine?: string }) => {
      const durationS = Number(f.duration), streams = Number(f.streams);
      if (!(durationS > 0 && durationS <= 3600)) throw new SvtraceError('USAGE', `--duration ${f.duration} is not 1..3600 s`, { hint: 'e.g. --duration 20' });
      if (f.vm !== 'netns' && f.vm !== 'qemu') throw new SvtraceError('USAGE', `--vm ${f.vm} is neither netns nor qemu`, { hint: 'e.g. --vm qemu' });
      if (f.vm === 'qemu') return vmDemo(f.out, durationS, f.delay, f.loss, f.guestEngine);
      if (f.guestEngine !== undefined) throw new SvtraceError('USAGE', '--guest-engine chooses the QEMU guest\'s tracer', { hint: 'add --vm qemu' });
      if (f.delay !== undefined || f.loss !== undefined) throw new SvtraceError('USAGE', '--delay and --loss act on the QEMU guest\'s hop', { hint: 'add --vm qemu (this host\'s kernel has no netem; the guest\'s has), or use --impair' });
      if (!(Number.isInteger(streams) && streams >= 1 && streams <= 64)) throw new SvtraceError('USAGE', `--streams ${f.streams} is not 1..64`, { hint: 'e.g. --streams 8' });
      if (!['ovs', 'bridge', 'auto'].includes(f.switch)) throw new SvtraceError('USAGE', `--switch ${f.switch} is not ovs, bridge or auto`, { hint: 'e.g. --switch bridge' });
      const subscriberFifo = f.subscriberFifo === undefined ? undefined : Number(f.subscriberFifo);
      if (subscriberFifo !== undefined && !(Number.isInteger(subscriberFifo) && subscriberFifo >= 1 && subscriberFifo <= 99)) throw new SvtraceError('USAGE', `--subscriber-fifo ${f.subscriberFifo} is not a priority 1..99`, { hint: 'e.g. --subscriber-fifo 10' });
      const cfg = loadConfig(undefined);
      const thresholdUs = f.explainThresholdUs === undefined ? (cfg.verdicts.limits_us.Thyp ?? 100) : Number(f.explainThresholdUs);
      if (!(thresholdUs > 0)) throw new SvtraceError('USAGE', `--explain-threshold-us ${f.explainThresholdUs} is not a positive number`, { hint: 'e.g. --explain-threshold-us 100' });
      if (f.compare && f.tuned) throw new SvtraceError('USAGE', '--compare runs both variants; --tuned runs the tuned one alone', { hint: 'give one of them' });
      const stop = interruptSignal();
      const verdicts = { limitsUs: cfg.verdicts.limits_us, maxMissing: cfg.verdicts.max_missing };
      const once = async (outDir: string, tuned: boolean, label: string) => {
        const r = await runDemo({
          outDir, durationS, streams, switch: f.switch as 'ovs' | 'bridge' | 'auto', impair: f.impair === true, signal: stop.signal, log: (l) => process.stderr.write(`svtrace demo${label}: ${l}\n`), subscriberFifo, tuned,
          ...(f.explain ? { explain: { thresholdNs: thresholdUs * 1000 } } : {}),
        });
        process.stderr.write(`svtrace demo${label}: published ${groupDigits(r.publish.framesSent)} frames; the subscriber received ${groupDigits(r.subscribe.samples)} samples, missing ${groupDigits(r.subscribe.streams.reduce((m, s) => m + s.missing, 0))}\n`);
        if (r.traceError) process.stderr.write(`svtrace demo${label}: the hypervisor was not traced: ${r.traceError}\n`);
        process.stderr.write(`svtrace demo${label}: report: joining the records and computing the statistics\n`);
        const analysis = await analyzeRecords(r.records, { verdicts });
        const files = await writeReport(analysis, join(r.outDir, 'report'));
        return { r, analysis, files };
      };
      try {
        if (f.compare) {
          const nominal = await once(join(f.out, 'nominal'), false, ' (nominal)');
          if (stop.signal.aborted) return 130;
          const tuned = await once(join(f.out, 'tuned'), true, ' (tuned)');
          const c = { ...compareAnalyses(nominal.analysis, tuned.analysis), labels: { a: 'nominal', b: 'tuned' }, notes: tuned.r.tuning.map((t) => `tuned: ${t}`) };
          const files = await writeComparison(c, join(f.out, 'compare'));
          const t = seedTable(c);
          process.stdout.write(`nominal → tuned, ${streams} streams × 4000 samples/s for ${durationS} s each (${availableParallelism()} CPUs)\n`);
          for (const step of tuned.r.tuning) process.stdout.write(`  tuned: ${step}\n`);
          process.stdout.write(`\n${renderTable(t.header, t.rows, new Set([1, 2, 3, 4, 5, 6]))}`);
          process.stdout.write(`\nreports: ${nominal.files.html}\n         ${tuned.files.html}\n         ${files.html} (the comparison)\n`);
          return 0;
        }
        const { r, analysis, files } = await once(f.out, f.tuned === true, '');
        for (const step of r.tuning) process.stdout.write(`tuned: ${step}\n`);
        process.stdout.write(renderSummaryText(analysis));
        if (r.explain) {
          process.stdout.write(`\nWhy samples were late (flight recorder on the hypervisor):\n${renderExplainSummary(r.explain, 3)}`);
          const rec = r.explain.recorder;
          if ((rec && (rec.lostEvents > 0 || rec.lostInRun > 0)) || r.explain.trace.lostEvents > 0) {
            process.stdout.write(`note: ${r.explain.recorder?.engine === 'bpf' ? 'events were lost' : 'bpftrace lost events'} with the recorder beside the tracer: this machine does not carry ${streams} streams with --explain; try --streams ${Math.max(1, Math.floor(streams / 2))}\n`);
          }
        }
        process.stdout.write(`\nrecords: ${r.records.join(', ')}\nreport:  ${files.html}\n`);
        // the demo shows the verdicts; it succeeds when it ran, whatever they say
        return 0;
      } finally {
        stop.dispose();
      }
    }));
}
