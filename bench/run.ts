/**
 * svtrace benchmarks. Every figure is printed beside a peer measured in the
 * same run (tshark, tcpreplay, pandas), as a ratio: the machines are shared.
 *   npm run bench                 all benchmarks
 *   npm run bench -- codec        one of them
 */
import { benchCodec } from './codec.ts';
import { benchWire } from './wire.ts';
import { benchReport } from './report.ts';
import { benchExplain } from './explain.ts';
import { benchReplay } from './replay.ts';
import { benchTrace } from './trace.ts';
import { benchVm } from './vm.ts';

const suites: Record<string, (args: string[]) => Promise<void>> = { codec: benchCodec, wire: benchWire, report: benchReport, explain: benchExplain, replay: benchReplay, trace: benchTrace, vm: benchVm };
const args = process.argv.slice(2);
const chosen = args.filter((a) => a in suites);
for (const name of chosen.length ? chosen : Object.keys(suites)) {
  console.log(`== ${name}`);
  await suites[name]!(args);
}
