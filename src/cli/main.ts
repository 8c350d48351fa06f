/**
 * svtrace: one command, one file per subcommand under src/cli/. Each file
 * exports `register(program)`; this entry only wires them together.
 */
import { Command } from 'commander';
import { EXIT_USAGE } from './run.ts';
import { VERSION } from '../version.ts';

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

const commands: Array<Promise<{ register: (p: Command) => void }>> = [];
for (const mod of commands) (await mod).register(program);

await program.parseAsync(process.argv);
