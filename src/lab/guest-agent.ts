/**
 * The agent inside the lab's QEMU guest (`svtrace lab guest-agent`, started
 * by the guest's /init): on each virtconsole port /dev/hvcN it answers pings
 * and clock reads, runs one command at a time in a process group of its own,
 * streams its stdout and stderr, forwards signals, and reports its exit.
 * A new `exec` on a port first kills what the last one left running there
 * (its host side may have died without a word).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostname } from 'node:os';
import tty from 'node:tty';
import { clockNowNs } from '../net/index.ts';
import { encodeMessage, lineSplitter, parseHostMessage, type GuestMessage, type HostMessage } from './agent-protocol.ts';
import { CONTROL_PORTS } from './qemu-spec.ts';

function servePort(device: string, log: (m: string) => void): void {
  const input = new tty.ReadStream(openSync(device, 'r'));
  input.setRawMode(true); // no echo, no line editing: bytes pass unchanged
  const output = new tty.WriteStream(openSync(device, 'w'));
  const send = (m: GuestMessage) => output.write(encodeMessage(m));
  let child: ChildProcess | undefined;

  const killGroup = (c: ChildProcess, sig: NodeJS.Signals) => {
    if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
    try {
      process.kill(-c.pid, sig);
    } catch {
      // already gone
    }
  };

  const exec = (m: Extract<HostMessage, { t: 'exec' }>) => {
    if (child) killGroup(child, 'SIGKILL');
    const [cmd, ...args] = m.argv as [string, ...string[]];
    const c = spawn(cmd, args, { cwd: m.cwd ?? '/', env: { ...process.env, ...(m.env ?? {}) }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = c;
    c.on('spawn', () => send({ t: 'started', pid: c.pid ?? 0 }));
    c.stdout?.on('data', (d: Buffer) => send({ t: 'out', fd: 1, data: d.toString('base64') }));
    c.stderr?.on('data', (d: Buffer) => send({ t: 'out', fd: 2, data: d.toString('base64') }));
    c.on('error', (e) => {
      if (child === c) child = undefined;
      send({ t: 'error', message: `${cmd}: ${e.message}` });
    });
    c.on('close', (code, signal) => {
      if (child === c) child = undefined;
      send({ t: 'exit', code, signal });
    });
  };

  input.on('data', lineSplitter((line) => {
    const m = parseHostMessage(line);
    if (!m) return;
    switch (m.t) {
      case 'ping': return void send({ t: 'pong', id: m.id, hostname: hostname() });
      case 'clock': return void send({ t: 'clock', id: m.id, ns: clockNowNs('realtime').toString() });
      case 'signal': return void (child && killGroup(child, m.sig));
      case 'exec': return exec(m);
    }
  }));
  input.on('error', (e) => log(`${device}: ${e.message}`));
}

/**
 * `svtrace` on the PATH of every command the agent runs: a wrapper in the
 * guest's tmpfs /run that starts this checkout's bin/svtrace.js with this node.
 */
function putSvtraceOnPath(log: (m: string) => void): void {
  const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'svtrace.js');
  if (!existsSync(cli)) return log(`${cli} not found: svtrace is not on the PATH of commands`);
  const bin = '/run/svtrace/bin';
  mkdirSync(bin, { recursive: true });
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(join(bin, 'svtrace'), `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(cli)} "$@"\n`, { mode: 0o755 });
  process.env.PATH = `${bin}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`;
}

/** Serves every control port; runs until the guest powers off. */
export function runGuestAgent(log: (m: string) => void = (m) => process.stderr.write(`svtrace guest-agent: ${m}\n`)): void {
  putSvtraceOnPath(log);
  let served = 0;
  for (let i = 0; i < CONTROL_PORTS; i++) {
    const device = `/dev/hvc${i}`;
    if (!existsSync(device)) continue;
    servePort(device, log);
    served++;
  }
  if (served === 0) throw new Error('no /dev/hvcN control port: is this the svtrace lab guest?');
  log(`serving ${served} control port(s)`);
}
