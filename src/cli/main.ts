/**
 * svtrace: one command, one file per subcommand under src/cli/. Each file
 * exports `register(program)`; this entry only wires them together.
 */
import { Command } from 'commander';
import { EXIT_USAGE } from './run.ts';
import { VERSION } from '../version.ts';

/**
 * Each command's module, loaded on demand: `svtrace inspect` must not pay
 * for DuckDB, vega or resvg at startup. A known command name as the first
 * argument loads only that module; anything else (help, no command, a typo)
 * loads them all, in this order, so help and errors list every command.
 */
const COMMANDS: Record<string, () => Promise<{ register(program: Command): void }>> = {
  decode: () => import('./decode.ts'), inspect: () => import('./inspect.ts'), publish: () => import('./publish.ts'),
  subscribe: () => import('./subscribe.ts'), lab: () => import('./lab.ts'), trace: () => import('./trace.ts'),
  doctor: () => import('./doctor.ts'), demo: () => import('./demo.ts'), explain: () => import('./explain.ts'),
  report: () => import('./report.ts'), compare: () => import('./compare.ts'),
};

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

const first = process.argv[2];
const chosen = first !== undefined && Object.hasOwn(COMMANDS, first) ? [COMMANDS[first]!] : Object.values(COMMANDS);
for (const mod of await Promise.all(chosen.map((load) => load()))) mod.register(program);

await program.parseAsync(process.argv);
