/**
 * Turns the addon's errors (plain Errors with a NET_* `code`, and `errno`,
 * `syscall`, `interfaces` when known) into SvtraceErrors with a hint that
 * says what to do.
 */
import { ERROR_CODES, SvtraceError, isErrorCode } from '../errors.ts';

/** What the caller was doing, to make hints concrete. */
export interface ErrorContext {
  ifname?: string;
  netns?: string;
}

interface NativeError {
  code: string;
  message: string;
  interfaces?: string[];
}

function isNativeError(e: unknown): e is NativeError {
  if (!(e instanceof Error)) return false;
  const code: unknown = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^NET_[A-Z_]+$/.test(code);
}

function ipCmd(ctx: ErrorContext): string {
  return ctx.netns === undefined ? 'ip' : `ip -n ${ctx.netns}`;
}

function hintFor(e: NativeError, ctx: ErrorContext): string | undefined {
  const ifname = ctx.ifname ?? 'IFNAME';
  switch (e.code) {
    case 'NET_NOT_ROOT':
      return 'Run as root (sudo), or give node the capabilities it needs: CAP_NET_RAW for packet sockets, CAP_SYS_ADMIN to enter a network namespace, CAP_NET_ADMIN for hardware timestamping.';
    case 'NET_NO_SUCH_INTERFACE': {
      const where = ctx.netns === undefined ? '' : ` in namespace ${ctx.netns}`;
      const list = e.interfaces?.length ? `Interfaces${where}: ${e.interfaces.join(', ')}. ` : '';
      return `${list}Check the name with \`${ipCmd(ctx)} link\`.`;
    }
    case 'NET_INTERFACE_DOWN':
      return `Bring it up: \`${ipCmd(ctx)} link set ${ifname} up\`.`;
    case 'NET_NO_SUCH_NETNS':
      return 'List network namespaces with `ip netns list`; create one with `ip netns add NAME`.';
    case 'NET_NO_HW_TIMESTAMPING':
      return `See what the NIC can do with \`ethtool -T ${ifname}\`; use timestamping: 'software' on this interface.`;
    case 'NET_NOT_ETHERNET':
      return 'Sampled Values are Ethernet frames: choose an Ethernet interface (physical, veth, tap, bridge port).';
    case 'NET_SCHED_FIFO_FAILED':
      return 'Run as root or grant CAP_SYS_NICE (or raise `ulimit -r`); with cgroup v2 real-time group scheduling, give the cgroup an RT budget. Or leave fifoPriority unset.';
    case 'NET_CPU_AFFINITY_FAILED':
      return 'Choose a CPU the process may run on (`taskset -cp $$` lists them), or leave cpu unset.';
    case 'NET_SEND_BUFFER_FULL':
      return 'The socket send buffer or the device queue is full: send more slowly or open the socket with a larger sndBufBytes.';
    case 'NET_RX_RUNNING':
      return 'Await stopReceive() before starting to receive again.';
    case 'NET_TX_RUNNING':
      return 'Await the transmitter\'s stop() before starting another one on this socket.';
    case 'NET_TX_NOT_RUNNING':
    case 'NET_SOCKET_CLOSED':
      return 'Open a new socket / start a new transmitter.';
    default:
      return undefined;
  }
}

/** Rethrows an addon error as SvtraceError; other errors pass unchanged. */
export function toSvtraceError(e: unknown, ctx: ErrorContext = {}): unknown {
  if (!isNativeError(e)) return e;
  const hint = hintFor(e, ctx);
  // an addon code not in the catalogue is the machine refusing something (errno from a syscall)
  return new SvtraceError(e.code, e.message, { ...(hint === undefined ? {} : { hint }), cause: e, kind: isErrorCode(e.code) ? ERROR_CODES[e.code] : 'environment' });
}

/** Runs fn, converting addon errors. */
export function callNative<T>(fn: () => T, ctx: ErrorContext = {}): T {
  try {
    return fn();
  } catch (e) {
    throw toSvtraceError(e, ctx);
  }
}
