/**
 * stdout for commands that stream large results: writes in big pieces,
 * waits for the pipe to drain between input chunks (constant memory even
 * when the reader is slow), and ends quietly when the reader goes away
 * (`svtrace decode x.pcap | head`).
 */
import { open } from 'node:fs/promises';
import { SvtraceError } from '../errors.ts';

export interface Output {
  write(s: string): void;
  /** Resolves when what was written so far has been taken by the reader. */
  drained(): Promise<void>;
  closedByReader(): boolean;
}

export function stdoutOutput(): Output {
  const out = process.stdout;
  let blocked = false;
  let closed = false;
  out.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') closed = true;
    else throw e;
  });
  return {
    write(s) {
      if (closed || !s) return;
      if (!out.write(s)) blocked = true;
    },
    async drained() {
      if (blocked && !closed) {
        // resolves on drain, close or error (an EPIPE is handled above, not thrown here)
        await new Promise<void>((resolve) => {
          const done = () => { out.off('drain', done); out.off('close', done); out.off('error', done); resolve(); };
          out.on('drain', done); out.on('close', done); out.on('error', done);
        });
        blocked = false;
      }
    },
    closedByReader: () => closed,
  };
}

/** Chunks of a file or stdin ('-'), pausing for `out` to drain after each. */
export async function* pacedChunks(path: string, out: Output): AsyncGenerator<Uint8Array> {
  if (path === '-') {
    for await (const chunk of process.stdin) {
      yield chunk as Uint8Array;
      await out.drained();
      if (out.closedByReader()) return;
    }
    return;
  }
  const fh = await openInput(path);
  try {
    const buf = new Uint8Array(4 << 20);
    while (true) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
      await out.drained();
      if (out.closedByReader()) return;
    }
  } finally {
    await fh.close();
  }
}

async function openInput(path: string) {
  try {
    return await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new SvtraceError('CAPTURE_OPEN_FAILED', `cannot open ${path}: ${code}`, {
      hint: code === 'ENOENT' ? 'check the path; use - to read a capture from stdin' : code === 'EISDIR' ? 'give a capture file, not a directory' : 'check the file permissions',
      cause: e,
    });
  }
}
