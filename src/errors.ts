/**
 * The one error type of svtrace. Every failure a user can meet carries a
 * stable `code` (for scripts and tests), a message that says what went wrong,
 * a `hint` that says what to do about it, and a `kind` that says whose
 * problem it is (and so the exit code). Chain the underlying error with
 * `{ cause }`. Only `src/cli/` catches these to print them and exit.
 *
 * Every code is listed once below with its kind. A code thrown in a context
 * where another kind is right (the same write failing on a full disk or on a
 * bug) passes `{ kind }` where it is thrown.
 */

/**
 * - `usage`: the user's input (flags, config, files given) is wrong: exit 2.
 * - `environment`: the machine lacks something or refused (permissions, a
 *   tool, a kernel feature, a full disk, a busy port): exit 3.
 * - `internal`: svtrace itself is wrong (a broken template, an API misused
 *   inside svtrace): exit 4, please report it.
 */
export type ErrorKind = 'usage' | 'environment' | 'internal';

const U = 'usage', E = 'environment', I = 'internal';

export const ERROR_CODES = {
  USAGE: U,
  // config
  CONFIG_INVALID: U, CONFIG_SYNTAX: U, CONFIG_UNREADABLE: U,
  // captures (pcap/pcapng) and the SV codec: bad input, except misuse of the writer API
  CAPTURE_BAD_RECORD: U, CAPTURE_BAD_RESOLUTION: U, CAPTURE_BUFFER_TOO_SMALL: U, CAPTURE_CORRUPT: U, CAPTURE_EMPTY: U,
  CAPTURE_OPEN_FAILED: U, CAPTURE_TIMESTAMP_RANGE: U, CAPTURE_UNKNOWN_FORMAT: U, CAPTURE_UNSUPPORTED: U,
  CAPTURE_READ_FAILED: E, CAPTURE_WRITE_FAILED: E,
  CAPTURE_WRITER_OPTIONS: I, CAPTURE_SINK_CLOSED: I, CAPTURE_PARSER_ENDED: I,
  SV_ASDU_COUNT_MISMATCH: U, SV_BAD_FIELD: U, SV_BAD_LENGTH: U, SV_BAD_MAC: U, SV_BAD_TAG: U, SV_ENCODE_RANGE: U,
  SV_MALFORMED: U, SV_MISSING_FIELD: U, SV_NOT_SV: U, SV_NO_ASDU: U, SV_TOO_MANY_ASDUS: U, SV_TRUNCATED: U,
  // records
  RECORD_BAD_MANIFEST: U, RECORD_BAD_ROW: U, RECORD_BAD_SVID: U, RECORD_CORRUPT: U, RECORD_DIR_NOT_EMPTY: U, RECORD_EXISTS: U,
  RECORD_NOT_A_RECORD: U, RECORD_UNSUPPORTED_VERSION: U,
  RECORD_DISK_FULL: E, RECORD_WRITE_FAILED: E, RECORD_READ_FAILED: E, RECORD_COMPACT_FAILED: E, RECORD_RECOVERY_FAILED: E,
  RECORD_CLOSED: I, RECORD_BAD_OPTIONS: I,
  // analysis and report
  ANALYZE_BAD_LIMIT: U, ANALYZE_BAD_PERCENTILE: U, ANALYZE_BAD_SEGMENT: U, ANALYZE_BAD_SMPCNT: U, ANALYZE_CLOCK_MISMATCH: U, ANALYZE_BAD_CLOCK_OFFSET: U,
  ANALYZE_ITER_ACROSS_RECORDS: U, ANALYZE_NO_RECORD: U, ANALYZE_NO_SAMPLES: U, ANALYZE_TIME_RANGE: U, ANALYZE_UNKNOWN_SEGMENT: U,
  ANALYZE_DB_FAILED: E, ANALYZE_TMP_FAILED: E,
  // the native analysis engine (src/analyze/native.ts)
  ANALYZE_BAD_ENGINE: U, ANALYZE_NATIVE_DISORDER: U, ANALYZE_NATIVE_BAD_ROW: U, ANALYZE_QUERY_FAILED: U,
  ANALYZE_NATIVE_UNAVAILABLE: E, ANALYZE_NATIVE_FAILED: I,
  REPORT_OUT_DIR: U,
  // the native addon (NET_* from the C side)
  NET_INVALID_OPTION: U, NET_INVALID_FRAME: U, NET_NO_SUCH_INTERFACE: U, NET_NO_SUCH_NETNS: U, NET_NOT_ETHERNET: U,
  NET_ADDON_MISSING: E, NET_CPU_AFFINITY_FAILED: E, NET_ERROR: E, NET_INTERFACE_DOWN: E, NET_NOT_ROOT: E, NET_NO_HW_TIMESTAMPING: E,
  NET_OUT_OF_MEMORY: E, NET_SCHED_FIFO_FAILED: E, NET_SEND_BUFFER_FULL: E, NET_SEND_FAILED: E, NET_SOCKET_FAILED: E, NET_THREAD_FAILED: E,
  NET_INVALID_ARGUMENT: I, NET_RX_RUNNING: I, NET_TX_RUNNING: I, NET_TX_NOT_RUNNING: I, NET_SOCKET_CLOSED: I,
  PUBLISH_TEMPLATE: U,
  // replaying a capture (publish --pcap)
  REPLAY_CAPTURE_CHANGED: U, REPLAY_FRAME_TOO_LARGE: U, REPLAY_MALFORMED_FRAME: U, REPLAY_NO_RATE: U, REPLAY_NO_SV: U,
  METRICS_LISTEN_FAILED: E,
  TOOL_MISSING: E,
  // the lab
  LAB_CONFIG_INVALID: U, LAB_IMPAIRMENT_INVALID: U, LAB_ALREADY_UP: E, LAB_NOT_UP: U, LAB_NAME_IN_USE: U, LAB_RUN_DIR_UNUSABLE: U,
  LAB_COMMAND_FAILED: E, LAB_COMMAND_TIMEOUT: E, LAB_DOWN_INCOMPLETE: E, LAB_FORWARDING_FAILED: E, LAB_IMPAIRMENT_FAILED: E,
  LAB_NETEM_UNSUPPORTED: E, LAB_NOT_ROOT: E, LAB_OVS_BRIDGE_FAILED: E, LAB_OVS_DATAPATH_BUSY: E, LAB_OVS_START_FAILED: E,
  LAB_STATE_CORRUPT: E, LAB_STATE_UNREADABLE: E, LAB_TOOL_MISSING: E, LAB_UP_FAILED: E, LAB_UP_IN_PROGRESS: E,
  // the QEMU VM of the lab (src/lab/qemu*.ts, vm-*.ts)
  LAB_VM_NO_KVM: E, LAB_VM_IMAGE_MISSING: E, LAB_VM_NO_CLI: E, LAB_VM_NO_AGENT: E, LAB_VM_START_FAILED: E, LAB_VM_PIN_FAILED: E,
  LAB_VM_BOOT_TIMEOUT: E, LAB_VM_DIED: E, LAB_VM_BUSY: E, LAB_VM_UNREACHABLE: E, LAB_VM_EXEC_FAILED: E, LAB_NO_VM_CLOCK: U, LAB_NOT_QEMU: U,
  // tracing
  TRACE_CONFIG_INVALID: U, TRACE_INTERFACE_NOT_FOUND: U, TRACE_NETNS_NOT_FOUND: U, TRACE_LAYOUT_UNSUPPORTED: U, TRACE_NO_LAYOUT: U,
  TRACE_BPFTRACE_FAILED: E, TRACE_CLOCK_FAILED: E, TRACE_NOT_ROOT: E, TRACE_NOT_ROOT_NETNS: E, TRACE_NO_BPFTRACE: E, TRACE_NO_PROBE: E,
  TRACE_PROGRAM_TOO_LARGE: E, TRACE_BPF_UNAVAILABLE: E, TRACE_BPF_LOAD_FAILED: E, TRACE_BPF_ATTACH_FAILED: E, TRACE_BPF_TOO_MANY: U,
  TRACE_BPF_INVALID: I,
  TRACE_PROGRAM_INVALID: I, TRACE_TEMPLATE_MISSING: I, TRACE_TEMPLATE_PARAM: I,
  // the flight recorder (explain)
  EXPLAIN_EXISTS: U, EXPLAIN_INVALID_BUFFER: U, EXPLAIN_INVALID_CPU: U, EXPLAIN_INVALID_SOFTIRQ_MIN: U, EXPLAIN_INVALID_WINDOW: U, EXPLAIN_UNREADABLE: U,
  EXPLAIN_RECORDER_FAILED: E,
  EXPLAIN_TEMPLATE_MISSING: I, EXPLAIN_TEMPLATE_PARAM: I,
  DEMO_CHILD_FAILED: E, DEMO_VM_TRACE_FAILED: E,
  // doctor --tuning
  TUNING_INTERFACE_INVALID: U, TUNING_COMM_INVALID: U, TUNING_PID_INVALID: U,
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

export interface SvtraceErrorOptions {
  /** What the user should do to fix it. */
  hint?: string | undefined;
  /** Byte offset in the input where the problem was found, for codec errors. */
  offset?: number | undefined;
  cause?: unknown;
  /** Whose problem it is, when it differs from the code's usual kind (see ERROR_CODES). */
  kind?: ErrorKind;
}

export class SvtraceError extends Error {
  override readonly name = 'SvtraceError';
  readonly code: string;
  readonly hint: string | undefined;
  readonly offset: number | undefined;
  readonly kind: ErrorKind;

  /** A code of ERROR_CODES; any other code must say its kind. */
  constructor(code: ErrorCode, message: string, options?: SvtraceErrorOptions);
  constructor(code: string, message: string, options: SvtraceErrorOptions & { kind: ErrorKind });
  constructor(code: string, message: string, options: SvtraceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.offset = options.offset;
    this.kind = options.kind ?? (isErrorCode(code) ? ERROR_CODES[code] : 'internal');
  }
}

export function isSvtraceError(e: unknown): e is SvtraceError {
  return e instanceof SvtraceError;
}

/** Exit codes of the CLI, one per kind of failure. */
export const EXIT = { ok: 0, verdictFailed: 1, usage: 2, environment: 3, internal: 4, interrupted: 130 } as const;

/** The exit code of a failure: its kind's; anything that is not an SvtraceError is svtrace's own bug. */
export function exitCodeOf(e: unknown): number {
  return e instanceof SvtraceError ? EXIT[e.kind] : EXIT.internal;
}
