/**
 * Reading a capture for replay: packets in small batches (bounded memory
 * however long the capture), and the damage, if any, reported after every
 * packet before it was handed over. stdin is spooled to a temporary file
 * first, because replay reads a capture twice (learn, then send) and loops
 * read it again.
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SvtraceError } from '../errors.ts';
import { createCaptureParser, type CaptureSummary } from '../pcap/index.ts';

export interface ReplayPacket {
  /** 1-based number of the packet in the capture (as tshark and inspect count). */
  number: number;
  tsSec: number;
  tsNsec: number;
  linkType: number;
  data: Uint8Array;
}

/** How the input ended: cleanly (summary) or damaged (error, after the packets before the damage). */
export interface ReadEnd {
  summary: CaptureSummary | null;
  damage: SvtraceError | null;
}

const CHUNK_BYTES = 256 * 1024;

/**
 * Packets of a capture file in batches of at most one chunk's worth. The
 * generator's return value says how the input ended; a damaged input (cut
 * record, corrupt block) ends it after every packet before the damage.
 */
export async function* readPacketBatches(path: string, chunkBytes = CHUNK_BYTES): AsyncGenerator<ReplayPacket[], ReadEnd, undefined> {
  let pending: ReplayPacket[] = [];
  let number = 0;
  const parser = createCaptureParser((p) => {
    const data = new Uint8Array(p.capLen);
    data.set(p.bytes.subarray(p.offset, p.offset + p.capLen));
    pending.push({ number: ++number, tsSec: p.tsSec, tsNsec: p.tsNsec, linkType: p.linkType, data });
  });
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SvtraceError('CAPTURE_OPEN_FAILED', `cannot open capture ${path}: ${code ?? String(e)}`, {
      hint: code === 'ENOENT' ? 'check the path' : 'check the path and permissions', cause: e,
    });
  }
  try {
    const buf = new Uint8Array(chunkBytes);
    while (true) {
      const n = (await fh.read(buf, 0, chunkBytes, null)).bytesRead;
      if (n === 0) break;
      let damage: SvtraceError | null = null;
      try {
        parser.push(buf.subarray(0, n));
      } catch (e) {
        if (!(e instanceof SvtraceError)) throw e;
        damage = e;
      }
      if (pending.length > 0) { const out = pending; pending = []; yield out; }
      if (damage) return { summary: null, damage: located(damage, number) };
    }
    let summary: CaptureSummary;
    try {
      summary = parser.end();
    } catch (e) {
      if (!(e instanceof SvtraceError)) throw e;
      return { summary: null, damage: located(e, number) };
    }
    if (pending.length > 0) yield pending;
    if (summary.truncated) {
      const t = summary.truncated;
      return {
        summary,
        damage: new SvtraceError('CAPTURE_CORRUPT', `the capture is cut short after packet ${number}: the record at byte ${t.offset} needs ${t.expectedBytes} bytes, ${t.availableBytes} are there`, {
          hint: 'the file was truncated (a capture still being written, or a partial copy); the packets before the cut were replayed. --skip-bad replays them without this error',
          offset: t.offset,
        }),
      };
    }
    return { summary, damage: null };
  } finally {
    await fh.close();
  }
}

function located(e: SvtraceError, delivered: number): SvtraceError {
  return new SvtraceError(e.code, `the capture is damaged after packet ${delivered}: ${e.message}`, {
    kind: e.kind, hint: 'the packets before the damage were replayed; --skip-bad replays them without this error. Check the file (e.g. with tshark -r FILE)', offset: e.offset, cause: e,
  });
}

/** Copies stdin into a temporary file; `remove()` deletes it. */
export async function spoolStdin(): Promise<{ path: string; remove(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'svtrace-replay-'));
  const path = join(dir, 'stdin.capture');
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    await pipeline(process.stdin, createWriteStream(path));
  } catch (e) {
    remove();
    throw new SvtraceError('CAPTURE_READ_FAILED', `cannot read the capture from stdin: ${(e as Error).message}`, { hint: 'pipe a pcap or pcapng file into svtrace, or give its path', cause: e });
  }
  return { path, remove };
}
