/**
 * The control channel between `svtrace lab exec` (host) and the guest agent:
 * one JSON object per line over a virtconsole port (/dev/hvcN in the guest, a
 * unix socket of QEMU's on the host). Output bytes travel base64-encoded, so
 * only printable ASCII and newlines cross the tty. Pure: encode, split, parse.
 *
 *   host → guest   {"t":"ping","id":1}                     guest → host  {"t":"pong","id":1,"hostname":"svt-vm"}
 *                  {"t":"exec","argv":["uname","-a"]}                    {"t":"started","pid":42}
 *                                                                        {"t":"out","fd":1,"data":"TGludXgK"}
 *                  {"t":"signal","sig":"SIGINT"}                         {"t":"exit","code":0,"signal":null}
 *                  {"t":"clock","id":7}                                  {"t":"clock","id":7,"ns":"1764892000123456789"}
 */

export type HostMessage =
  | { t: 'ping'; id: number }
  | { t: 'exec'; argv: string[]; cwd?: string; env?: Record<string, string> }
  | { t: 'signal'; sig: ForwardedSignal }
  | { t: 'clock'; id: number };

export type GuestMessage =
  | { t: 'pong'; id: number; hostname: string }
  | { t: 'started'; pid: number }
  | { t: 'out'; fd: 1 | 2; data: string }
  | { t: 'exit'; code: number | null; signal: string | null }
  | { t: 'error'; message: string }
  /** The guest's CLOCK_REALTIME in ns, as a decimal string (int64 does not fit a JS number). */
  | { t: 'clock'; id: number; ns: string };

export const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGKILL'] as const;
export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

/** The longest line either side accepts (a line longer than this is dropped, not buffered forever). */
export const MAX_LINE_BYTES = 1 << 20;

export function encodeMessage(m: HostMessage | GuestMessage): string {
  return JSON.stringify(m) + '\n';
}

/** Splits a byte stream into lines; keeps the unfinished tail. */
export function lineSplitter(onLine: (line: string) => void): (chunk: Buffer | string) => void {
  let tail = '';
  return (chunk) => {
    tail += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    let nl: number;
    while ((nl = tail.indexOf('\n')) >= 0) {
      const line = tail.slice(0, nl).replace(/\r$/, '');
      tail = tail.slice(nl + 1);
      if (line.length > 0) onLine(line);
    }
    if (tail.length > MAX_LINE_BYTES) tail = '';
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

/** The line as a JSON object, or undefined (not JSON, or not an object). */
function jsonObject(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A host message, or undefined for anything else (tty noise, an echo, a bad field). */
export function parseHostMessage(line: string): HostMessage | undefined {
  const v = jsonObject(line);
  if (!v) return undefined;
  switch (v.t) {
    case 'ping':
    case 'clock':
      return isInt(v.id) ? { t: v.t, id: v.id } : undefined;
    case 'signal':
      return (FORWARDED_SIGNALS as readonly unknown[]).includes(v.sig) ? { t: 'signal', sig: v.sig as ForwardedSignal } : undefined;
    case 'exec': {
      if (!Array.isArray(v.argv) || v.argv.length === 0 || !v.argv.every((a) => typeof a === 'string' && !a.includes('\0'))) return undefined;
      const m: HostMessage = { t: 'exec', argv: v.argv as string[] };
      if (typeof v.cwd === 'string' && v.cwd.startsWith('/')) m.cwd = v.cwd;
      if (isObject(v.env) && Object.entries(v.env).every(([k, x]) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) && typeof x === 'string')) {
        m.env = v.env as Record<string, string>;
      }
      return m;
    }
    default:
      return undefined;
  }
}

/** A guest message, or undefined for anything else (boot noise on the console, a tty echo of our own line). */
export function parseGuestMessage(line: string): GuestMessage | undefined {
  const v = jsonObject(line);
  if (!v) return undefined;
  switch (v.t) {
    case 'pong':
      return isInt(v.id) && typeof v.hostname === 'string' ? { t: 'pong', id: v.id, hostname: v.hostname } : undefined;
    case 'started':
      return isInt(v.pid) ? { t: 'started', pid: v.pid } : undefined;
    case 'out':
      return (v.fd === 1 || v.fd === 2) && typeof v.data === 'string' ? { t: 'out', fd: v.fd, data: v.data } : undefined;
    case 'exit':
      return (v.code === null || isInt(v.code)) && (v.signal === null || typeof v.signal === 'string')
        ? { t: 'exit', code: v.code as number | null, signal: v.signal as string | null }
        : undefined;
    case 'error':
      return typeof v.message === 'string' ? { t: 'error', message: v.message } : undefined;
    case 'clock':
      return isInt(v.id) && typeof v.ns === 'string' && /^\d{1,19}$/.test(v.ns) ? { t: 'clock', id: v.id, ns: v.ns } : undefined;
    default:
      return undefined;
  }
}
