/**
 * The one place that turns a failure into a message and an exit code.
 * Exit codes: 0 success, 1 a verdict failed (report/compare), 2 usage or input error,
 * 3 an environment problem (permissions, missing tool), 130 interrupted.
 */
import { SvtraceError } from '../errors.ts';

export const EXIT_OK = 0;
export const EXIT_VERDICT_FAILED = 1;
export const EXIT_USAGE = 2;
export const EXIT_ENVIRONMENT = 3;

const ENVIRONMENT_CODES = /^(NOT_ROOT|NO_CAP|TOOL_MISSING|NET_|LAB_|TRACE_|OVS_)/;
/** Codes in those families that are still the user's input, not the machine. */
const USAGE_CODES = /(_INVALID|_INVALID_OPTION|_CONFIG_INVALID|_IMPAIRMENT_INVALID|_BAD_.*)$/;

export function formatError(e: unknown): string {
  if (e instanceof SvtraceError) {
    let s = `svtrace: error ${e.code}: ${e.message}`;
    if (e.hint) s += `\n  hint: ${e.hint}`;
    let cause = e.cause;
    while (cause instanceof Error) {
      s += `\n  cause: ${cause.message}`;
      cause = cause.cause;
    }
    return s;
  }
  if (e instanceof Error) return `svtrace: unexpected error: ${e.stack ?? e.message}`;
  return `svtrace: unexpected error: ${String(e)}`;
}

export function exitCodeFor(e: unknown): number {
  if (e instanceof SvtraceError) return ENVIRONMENT_CODES.test(e.code) && !USAGE_CODES.test(e.code) ? EXIT_ENVIRONMENT : EXIT_USAGE;
  return EXIT_USAGE;
}

/** Wraps a command action: runs it, and on failure prints the error to stderr and sets the exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (e) {
      process.stderr.write(formatError(e) + '\n');
      process.exitCode = exitCodeFor(e);
    }
  };
}
