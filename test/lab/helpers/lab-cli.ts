/**
 * A stand-in for `svtrace` with only the lab commands wired in, for tests and
 * for trying them by hand: `npx tsx test/lab/helpers/lab-cli.ts lab status`.
 */
import { Command } from 'commander';
import { register } from '../../../src/cli/lab.ts';
import { EXIT_USAGE } from '../../../src/cli/run.ts';

const program = new Command()
  .name('svtrace')
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE));
register(program);
await program.parseAsync(process.argv);
