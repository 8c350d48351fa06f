/**
 * Reading captures from files, stdin, streams and memory through the push parser.
 * `readCaptureFile` is the fast path (one reused 4 MiB buffer, nothing
 * allocated per packet); `capturePackets` copies every packet into a plain
 * object for code where speed does not matter.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { SvtraceError } from '../errors.ts';
import { createCaptureParser, type CaptureParserOptions } from './parser.ts';
import { type CaptureSummary, type PacketView, tsNs } from './types.ts';

export interface ReadCaptureOptions extends CaptureParserOptions {
  /** Bytes read per chunk; default 4 MiB. */
  chunkBytes?: number;
}

/** One packet, copied out of the input. */
export interface CapturedPacket {
  /** ns since the epoch (0 for a pcapng Simple Packet Block, which has no timestamp). */
  tsNs: bigint;
  data: Uint8Array;
  origLen: number;
  interfaceId: number;
  linkType: number;
}

const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

function describe(path: string): string {
  return path === '-' ? 'stdin' : path;
}

/** Prefixes parser errors with the input's name; other errors pass through unchanged. */
function withSource(e: unknown, path: string): unknown {
  if (!(e instanceof SvtraceError) || !e.code.startsWith('CAPTURE_')) return e;
  return new SvtraceError(e.code, `${describe(path)}: ${e.message}`, { hint: e.hint, offset: e.offset, cause: e.cause, kind: e.kind });
}

async function openForRead(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SvtraceError('CAPTURE_OPEN_FAILED', `cannot open capture ${path}: ${code ?? String(e)}`, {
      hint: code === 'ENOENT' ? 'check the path' : code === 'EACCES' ? 'check the file permissions (or run as root)' : 'check the path and permissions',
      cause: e,
    });
  }
}

/**
 * Chunks of a file ('-' = stdin). A file's chunks share one buffer: each is
 * valid until the next is requested, which is all the push parser needs.
 */
async function* chunksOf(path: string, chunkBytes: number): AsyncGenerator<Uint8Array> {
  if (path === '-') {
    for await (const chunk of process.stdin) yield chunk as Uint8Array;
    return;
  }
  const fh = await openForRead(path);
  try {
    const buf = new Uint8Array(chunkBytes);
    while (true) {
      let n: number;
      try {
        n = (await fh.read(buf, 0, chunkBytes, null)).bytesRead;
      } catch (e) {
        throw new SvtraceError('CAPTURE_READ_FAILED', `cannot read capture ${path}: ${(e as Error).message}`, { hint: 'check the file and the disk', cause: e });
      }
      if (n === 0) return;
      yield buf.subarray(0, n);
    }
  } finally {
    await fh.close();
  }
}

/** Streams any async iterable of byte chunks (a Readable, stdin) through the parser. */
export async function readCaptureStream(
  chunks: AsyncIterable<Uint8Array>,
  onPacket: (p: PacketView) => void,
  options: CaptureParserOptions = {},
): Promise<CaptureSummary> {
  const parser = createCaptureParser(onPacket, options);
  for await (const chunk of chunks) parser.push(chunk);
  return parser.end();
}

/** Streams a capture file ('-' = stdin) through the parser, calling onPacket for every packet. */
export async function readCaptureFile(
  path: string,
  onPacket: (p: PacketView) => void,
  options: ReadCaptureOptions = {},
): Promise<CaptureSummary> {
  try {
    return await readCaptureStream(chunksOf(path, options.chunkBytes ?? DEFAULT_CHUNK_BYTES), onPacket, options);
  } catch (e) {
    throw withSource(e, path);
  }
}

/** Parses a capture held in memory. */
export function parseCapture(bytes: Uint8Array, onPacket: (p: PacketView) => void, options: CaptureParserOptions = {}): CaptureSummary {
  const parser = createCaptureParser(onPacket, options);
  parser.push(bytes);
  return parser.end();
}

/** Copies the packet a view shows. */
export function copyPacket(p: PacketView): CapturedPacket {
  // A fresh Uint8Array even when the input is a Buffer (whose slice() would share memory).
  const data = new Uint8Array(p.capLen);
  data.set(p.bytes.subarray(p.offset, p.offset + p.capLen));
  return {
    tsNs: tsNs(p),
    data,
    origLen: p.origLen,
    interfaceId: p.interfaceId,
    linkType: p.linkType,
  };
}

/**
 * Every packet of a capture file ('-' = stdin) as a plain copied object.
 * The generator's return value is the summary (see `truncated`).
 */
export async function* capturePackets(path: string, options: ReadCaptureOptions = {}): AsyncGenerator<CapturedPacket, CaptureSummary, undefined> {
  let batch: CapturedPacket[] = [];
  const parser = createCaptureParser((p) => batch.push(copyPacket(p)), options);
  try {
    for await (const chunk of chunksOf(path, options.chunkBytes ?? DEFAULT_CHUNK_BYTES)) {
      parser.push(chunk);
      const ready = batch;
      batch = [];
      yield* ready;
    }
    return parser.end();
  } catch (e) {
    throw withSource(e, path);
  }
}
