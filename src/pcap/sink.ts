/**
 * Writing captures to a file or stdout: records are encoded straight into a
 * large buffer (default 4 MiB) that goes out in one write when full. When
 * the stream asks to slow down, `write()` returns a promise to await.
 */
import { once } from 'node:events';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { SvtraceError } from '../errors.ts';
import { createCaptureWriter, type CaptureWriterOptions } from './writer.ts';

export interface CaptureSinkOptions extends CaptureWriterOptions {
  /** Size of the write buffer; default 4 MiB. */
  bufferBytes?: number;
}

export interface CaptureSink {
  /**
   * Appends one packet. Returns a promise when the output is backed up: await
   * it before writing more (awaiting every call is also fine); otherwise undefined.
   */
  write(tsNs: bigint, data: Uint8Array, origLen?: number): Promise<void> | undefined;
  /** Flushes, and closes the file (stdout is flushed, not closed). */
  close(): Promise<void>;
  /** Packets written so far. */
  readonly packets: number;
  /** Bytes handed to the output so far, header included (buffered bytes count once flushed). */
  readonly bytesFlushed: number;
}

export interface PacketToWrite {
  tsNs: bigint;
  data: Uint8Array;
  /** Length on the wire; default data.length. */
  origLen?: number;
}

const DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024;

function writeFailed(path: string, e: unknown): SvtraceError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return new SvtraceError('CAPTURE_WRITE_FAILED', `cannot write capture ${path === '-' ? 'to stdout' : path}: ${code ?? (e as Error)?.message ?? String(e)}`, {
    hint: code === 'ENOSPC' ? 'free disk space' : code === 'ENOENT' ? 'create the directory first' : 'check the path, permissions and free space',
    cause: e,
  });
}

/** Opens a capture file for writing ('-' = stdout) and writes its header. */
export async function openCaptureSink(path: string, options: CaptureSinkOptions): Promise<CaptureSink> {
  const writer = createCaptureWriter(options);
  const size = options.bufferBytes ?? DEFAULT_BUFFER_BYTES;
  let out: Writable;
  if (path === '-') {
    out = process.stdout;
  } else {
    try {
      out = (await open(path, 'w')).createWriteStream();
    } catch (e) {
      throw writeFailed(path, e);
    }
  }
  let failure: unknown = null;
  const onError = (e: unknown): void => {
    failure ??= e;
  };
  out.on('error', onError);
  let buf = new Uint8Array(size);
  let used = 0;
  let packets = 0;
  let bytesFlushed = 0;
  let closed = false;
  const header = writer.header();
  if (header.length <= size) {
    buf.set(header);
    used = header.length;
  } else {
    out.write(header);
    bytesFlushed = header.length;
  }

  function check(): void {
    if (failure !== null) throw writeFailed(path, failure);
    if (closed) throw new SvtraceError('CAPTURE_SINK_CLOSED', 'write() after close()', { hint: 'open a new sink' });
  }

  /** Resolves on 'drain'. Marked handled: a caller may ignore it, and the error resurfaces at the next write or close. */
  function waitDrain(): Promise<void> {
    const p = once(out, 'drain').then(
      () => undefined,
      (e: unknown) => {
        throw writeFailed(path, e);
      },
    );
    p.catch(() => undefined);
    return p;
  }

  /** Hands the buffer to the stream; returns a promise when the stream is full. */
  function flush(): Promise<void> | undefined {
    if (used === 0) return undefined;
    const ok = out.write(buf.subarray(0, used));
    bytesFlushed += used;
    buf = new Uint8Array(size);
    used = 0;
    return ok ? undefined : waitDrain();
  }

  return {
    get packets() {
      return packets;
    },
    get bytesFlushed() {
      return bytesFlushed;
    },
    write(tsNs, data, origLen) {
      check();
      const n = writer.recordBytes(data.length);
      let wait: Promise<void> | undefined;
      if (used + n > buf.length) wait = flush();
      if (n > buf.length) {
        const rec = writer.encodeRecord(tsNs, data, origLen);
        bytesFlushed += rec.length;
        if (!out.write(rec) && wait === undefined) wait = waitDrain();
      } else {
        used += writer.encodeRecordInto(buf, used, tsNs, data, origLen);
      }
      packets++;
      return wait;
    },
    async close() {
      check();
      closed = true;
      const wait = flush();
      if (wait) await wait;
      try {
        if (path === '-') {
          if (out.writableNeedDrain) await once(out, 'drain');
        } else {
          out.end();
          await once(out, 'close');
        }
      } catch (e) {
        throw writeFailed(path, e);
      } finally {
        out.off('error', onError);
      }
      if (failure !== null) throw writeFailed(path, failure);
    },
  };
}

/** Writes a whole capture file ('-' = stdout) from packets; returns how many were written. */
export async function writeCaptureFile(
  path: string,
  packets: Iterable<PacketToWrite> | AsyncIterable<PacketToWrite>,
  options: CaptureSinkOptions,
): Promise<{ packets: number; bytes: number }> {
  const sink = await openCaptureSink(path, options);
  try {
    if (Symbol.iterator in packets) {
      for (const p of packets) {
        const wait = sink.write(p.tsNs, p.data, p.origLen);
        if (wait) await wait;
      }
    } else {
      for await (const p of packets) {
        const wait = sink.write(p.tsNs, p.data, p.origLen);
        if (wait) await wait;
      }
    }
  } catch (e) {
    await sink.close().catch(() => undefined);
    throw e;
  }
  await sink.close();
  return { packets: sink.packets, bytes: sink.bytesFlushed };
}
