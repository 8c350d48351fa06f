/**
 * The host side of the guest's control channel: take a free control port (a
 * lock file per port, so concurrent `lab exec`s never share one), connect to
 * QEMU's unix socket for it, and speak agent-protocol.ts: wait for the agent,
 * run a command with its output streamed and its exit code returned, forward
 * signals, and read the guest's clock (clock-offset.ts).
 */
import { connect, type Socket } from 'node:net';
import { open, readFile, rm } from 'node:fs/promises';
import { SvtraceError } from '../errors.ts';
import {
  encodeMessage, lineSplitter, parseGuestMessage, type ForwardedSignal, type GuestMessage, type HostMessage,
} from './agent-protocol.ts';
import { clockOffsetEnv, measureClockOffset, type ClockOffset } from './clock-offset.ts';
import { processStartTicks } from './state.ts';

export interface ControlSession {
  send(m: HostMessage): void;
  /** Replaces the message handler. */
  onMessage(fn: (m: GuestMessage) => void): void;
  /** Called once when the socket closes (QEMU died or the guest powered off). */
  onClose(fn: () => void): void;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function lockPath(socketPath: string): string {
  return socketPath.replace(/\.sock$/, '.lock');
}

async function lockHolderAlive(lock: string): Promise<boolean> {
  const text = await readFile(lock, 'utf8').catch(() => '');
  const [pid, ticks] = text.trim().split(' ');
  const n = Number(pid);
  return Number.isInteger(n) && n > 0 && processStartTicks(n) === ticks && ticks !== undefined;
}

/** Takes the first port whose lock is free (or held by a dead process). */
async function takePort(sockets: string[]): Promise<{ socket: string; release: () => Promise<void> }> {
  for (const socket of sockets) {
    const lock = lockPath(socket);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(lock, 'wx', 0o600);
        await fh.writeFile(`${process.pid} ${processStartTicks(process.pid) ?? ''}\n`);
        await fh.close();
        return { socket, release: () => rm(lock, { force: true }) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (await lockHolderAlive(lock)) break;
        await rm(lock, { force: true }); // its holder died: the port is free
      }
    }
  }
  throw new SvtraceError('LAB_VM_BUSY', `all ${sockets.length} control ports of the guest are in use`, {
    hint: 'wait for another `svtrace lab exec vm` to finish',
  });
}

function connectOnce(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Opens a session on a free control port. */
export async function openControl(sockets: string[], timeoutMs = 10_000): Promise<ControlSession> {
  const port = await takePort(sockets);
  let socket: Socket | undefined;
  const end = Date.now() + timeoutMs;
  let lastError: unknown;
  while (!socket && Date.now() < end) {
    try {
      socket = await connectOnce(port.socket);
    } catch (e) {
      lastError = e;
      await sleep(100);
    }
  }
  if (!socket) {
    await port.release();
    throw new SvtraceError('LAB_VM_UNREACHABLE', `cannot connect to the guest's control socket ${port.socket}: ${(lastError as Error | undefined)?.message ?? 'timeout'}`, {
      hint: 'is the VM up? svtrace lab status',
      cause: lastError,
    });
  }
  const s = socket;
  let handler: (m: GuestMessage) => void = () => {};
  let closeHandler: () => void = () => {};
  let closed = false;
  s.on('data', lineSplitter((line) => {
    const m = parseGuestMessage(line);
    if (m) handler(m);
  }));
  s.on('error', () => undefined);
  s.on('close', () => {
    closed = true;
    void port.release();
    closeHandler();
  });
  return {
    send: (m) => { if (!closed) s.write(encodeMessage(m)); },
    onMessage: (fn) => { handler = fn; },
    onClose: (fn) => { closeHandler = fn; },
    close: async () => {
      if (!closed) await new Promise<void>((r) => { s.once('close', () => r()); s.end(); setTimeout(() => s.destroy(), 500); });
      await port.release();
    },
  };
}

/**
 * Pings until the agent answers (data sent before the guest opened its port
 * is lost, so one ping is not enough). `alive` says whether QEMU still runs.
 */
export async function waitForAgent(session: ControlSession, timeoutMs: number, alive: () => boolean, hint?: string): Promise<{ hostname: string }> {
  let answer: { hostname: string } | undefined;
  session.onMessage((m) => { if (m.t === 'pong') answer = { hostname: m.hostname }; });
  const end = Date.now() + timeoutMs;
  for (let id = 1; !answer; id++) {
    if (Date.now() > end) throw new SvtraceError('LAB_VM_BOOT_TIMEOUT', `the guest's agent did not answer within ${Math.round(timeoutMs / 1000)} s`, { hint });
    if (!alive()) throw new SvtraceError('LAB_VM_DIED', 'QEMU exited while the guest was booting', { hint });
    session.send({ t: 'ping', id });
    await sleep(500);
  }
  return answer;
}

export interface VmExecIo {
  stdout: (chunk: Buffer) => void;
  stderr: (chunk: Buffer) => void;
  cwd?: string;
  env?: Record<string, string>;
}

export interface VmExecResult {
  /** The command's exit code; null when a signal ended it. */
  code: number | null;
  signal: string | null;
}

export interface VmExecHandle {
  done: Promise<VmExecResult>;
  /** The guest's clock against the host's, measured just before the command started (also in its environment). */
  clockOffset: ClockOffset | undefined;
  /** Forwards a signal to the command's process group in the guest. */
  signal(sig: ForwardedSignal): void;
}

/** Runs argv in the guest over a free control port. */
export async function vmExec(sockets: string[], argv: string[], io: VmExecIo): Promise<VmExecHandle> {
  const session = await openControl(sockets);
  const clockOffset = await measureClockOffset(session);
  const done = new Promise<VmExecResult>((resolve, reject) => {
    let finished = false;
    session.onMessage((m) => {
      if (m.t === 'out') (m.fd === 1 ? io.stdout : io.stderr)(Buffer.from(m.data, 'base64'));
      else if (m.t === 'exit') { finished = true; resolve({ code: m.code, signal: m.signal }); void session.close(); }
      else if (m.t === 'error') {
        finished = true;
        reject(new SvtraceError('LAB_VM_EXEC_FAILED', `the guest could not run the command: ${m.message}`, { hint: 'is the command installed on the host? the guest runs the host\'s own files' }));
        void session.close();
      }
    });
    session.onClose(() => {
      if (!finished) reject(new SvtraceError('LAB_VM_UNREACHABLE', 'the guest\'s control channel closed before the command finished', { hint: 'svtrace lab status' }));
    });
  });
  // a job nobody awaits any more (its guest taken down on an error path) must not crash the process
  done.catch(() => undefined);
  const exec: HostMessage = { t: 'exec', argv };
  if (io.cwd !== undefined) exec.cwd = io.cwd;
  const env = { ...(clockOffset ? clockOffsetEnv(clockOffset) : {}), ...(io.env ?? {}) };
  if (Object.keys(env).length > 0) exec.env = env;
  session.send(exec);
  return { done, clockOffset, signal: (sig) => session.send({ t: 'signal', sig }) };
}
