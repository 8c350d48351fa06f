/**
 * The one place that turns a failure into a message and an exit code.
 * Exit codes (EXIT in errors.ts): 0 success, 1 a verdict failed (report/compare),
 * 2 usage or input error, 3 an environment problem (permissions, a missing tool
 * or kernel feature, a full disk, a busy port), 4 svtrace's own bug, 130 interrupted.
 * The kind is the error's own, set where it was thrown (errors.ts).
 */
import { EXIT, SvtraceError, exitCodeOf } from '../errors.ts';

export const EXIT_OK = EXIT.ok;
export const EXIT_VERDICT_FAILED = EXIT.verdictFailed;
export const EXIT_USAGE = EXIT.usage;
export const EXIT_ENVIRONMENT = EXIT.environment;

export function formatError(e: unknown): string {
  if (e instanceof SvtraceError) {
    let s = `svtrace: error ${e.code}: ${e.message}`;
    if (e.hint) s += `\n  hint: ${e.hint}`;
    if (e.kind === 'internal') s += '\n  this is a bug in svtrace: please report it with the command and this message';
    let cause = e.cause;
    while (cause instanceof Error) {
      s += `\n  cause: ${cause.message}`;
      cause = cause.cause;
    }
    return s;
  }
  if (e instanceof Error) return `svtrace: unexpected error (a bug in svtrace, please report it): ${e.stack ?? e.message}`;
  return `svtrace: unexpected error (a bug in svtrace, please report it): ${String(e)}`;
}

/** Wraps a command action: runs it, and on failure prints the error to stderr and sets the exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (e) {
      process.stderr.write(formatError(e) + '\n');
      process.exitCode = exitCodeOf(e);
    }
  };
}
