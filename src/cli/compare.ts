/**
 * `svtrace compare A B --out DIR`: analyze two runs with the same options and
 * show every figure side by side with its change, with overlaid charts.
 * Exit 0 when B passes its verdicts, 1 when B fails one, 2 on usage/input errors.
 */
import type { Command } from 'commander';
import { analyzeRecords } from '../analyze/index.ts';
import { compareAnalyses, renderComparisonText, writeComparison } from '../report/index.ts';
import { action, EXIT_OK, EXIT_VERDICT_FAILED } from './run.ts';
import { addAnalysisOptions, analysisOptions, processIo, type AnalysisFlags, type CliIo } from './report.ts';

export function register(program: Command, io: CliIo = processIo()): void {
  addAnalysisOptions(program
    .command('compare')
    .description('compare two runs (e.g. before and after isolating cores): figures, changes, overlaid charts')
    .argument('<a>', 'the reference run (record or run directory)')
    .argument('<b>', 'the run to compare with it')
    .requiredOption('--out <dir>', 'where to write report.html, charts/, summary.md, summary.json')
    .option('--json', 'print the comparison as JSON'))
    .addHelpText('after', '\nExit status: 0 B passed its verdicts, 1 B failed one, 2 usage or input error.\nExample:\n  svtrace compare runs/nominal runs/isolated --out compare/')
    .action(action(async (a: string, b: string, opts: AnalysisFlags & { out: string; json?: boolean }) => {
      const ra = await analyzeRecords([a], analysisOptions(opts, io, 'A: '));
      const rb = await analyzeRecords([b], analysisOptions(opts, io, 'B: '));
      const c = compareAnalyses(ra, rb);
      const files = await writeComparison(c, opts.out, io.progressIsTty ? (d, t) => io.progress(`\r\x1b[Kcharts ${d}/${t}${d === t ? '\n' : ''}`) : undefined);
      io.out(opts.json ? JSON.stringify(c, null, 2) + '\n' : `${renderComparisonText(c)}\nreport: ${files.html}\n`);
      return rb.passed ? EXIT_OK : EXIT_VERDICT_FAILED;
    }));
}
