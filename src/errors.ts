/**
 * The one error type of svtrace. Every failure a user can meet carries a
 * stable `code` (for scripts and tests), a message that says what went wrong,
 * and a `hint` that says what to do about it. Chain the underlying error with
 * `{ cause }`. Only `src/cli/` catches these to print them and exit.
 */
export interface SvtraceErrorOptions {
  /** What the user should do to fix it. */
  hint?: string;
  /** Byte offset in the input where the problem was found, for codec errors. */
  offset?: number;
  cause?: unknown;
}

export class SvtraceError extends Error {
  override readonly name = 'SvtraceError';
  readonly code: string;
  readonly hint: string | undefined;
  readonly offset: number | undefined;

  constructor(code: string, message: string, options: SvtraceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.offset = options.offset;
  }
}

export function isSvtraceError(e: unknown): e is SvtraceError {
  return e instanceof SvtraceError;
}
