/**
 * svtrace: one command, one file per subcommand under src/cli/. Each file
 * exports `register(program)`; this entry only wires them together.
 */
import { Command } from 'commander';
import { EXIT_USAGE } from './run.ts';
import { VERSION } from '../version.ts';
import * as decode from './decode.ts';
import * as inspect from './inspect.ts';
import * as publish from './publish.ts';
import * as subscribe from './subscribe.ts';
import * as lab from './lab.ts';
import * as trace from './trace.ts';
import * as doctor from './doctor.ts';
import * as demo from './demo.ts';
import * as explain from './explain.ts';
import * as report from './report.ts';
import * as compare from './compare.ts';

const program = new Command();
program
  .name('svtrace')
  .description('Measure, explain and gate the latency of IEC 61850 Sampled Values')
  .version(VERSION)
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander's own exit: help/version are 0, usage errors become 2
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  });

for (const register of [decode.register, inspect.register, publish.register, subscribe.register, lab.register, trace.register, doctor.register, demo.register, explain.register, report.register, compare.register]) register(program);

await program.parseAsync(process.argv);
