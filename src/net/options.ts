/** Validation of the options of src/net (plain checks, SvtraceError NET_INVALID_OPTION). */
import { SvtraceError } from '../errors.ts';

export function invalid(message: string): SvtraceError {
  return new SvtraceError('NET_INVALID_OPTION', message, { hint: 'Fix the option and call again.' });
}

/** Checks that v is undefined or an integer in [min, max]. */
export function checkInt(name: string, v: number | undefined, min: number, max: number): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}

/** Checks the thread options shared by receive and transmit. */
export function checkThreadOptions(opts: { fifoPriority?: number; cpu?: number }): void {
  checkInt('fifoPriority', opts.fifoPriority, 1, 99);
  checkInt('cpu', opts.cpu, 0, 1023);
}

