// The public API of svtrace. Everything a library user may rely on is exported here.
export { SvtraceError, isSvtraceError } from './errors.ts';
