/**
 * The CSV journal, line by line. One row is exactly one line: the svID is
 * always quoted ("" for a quote) and, being escaped (svid.ts), never holds a
 * newline. A line without its final '\n' is torn (cut by a crash or still
 * being written) and is never a row.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { SvtraceError } from '../errors.ts';
import { CSV_HEADER, POINT_NAME_RE, isPointSource, type PointRow } from './schema.ts';

/** The CSV field of a stored svID: always quoted. */
export function quoteSvId(stored: string): string {
  return stored.includes('"') ? `"${stored.replaceAll('"', '""')}"` : `"${stored}"`;
}

const UINT_RE = /^\d{1,10}$/;
const INT64_RE = /^-?\d{1,19}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Parse one journal line (without '\n'); a string says why it is not a row. */
export function parseCsvLine(line: string): PointRow | string {
  const comma = line.indexOf(',');
  if (comma < 0) return 'no comma';
  const point = line.slice(0, comma);
  if (!POINT_NAME_RE.test(point)) return `bad point ${JSON.stringify(point)}`;
  if (line.charCodeAt(comma + 1) !== 0x22) return 'sv_id is not quoted';
  let svId = '';
  let i = comma + 2;
  for (;;) {
    const q = line.indexOf('"', i);
    if (q < 0) return 'unterminated sv_id';
    svId += line.slice(i, q);
    if (line.charCodeAt(q + 1) === 0x22) {
      svId += '"';
      i = q + 2;
    } else {
      i = q + 1;
      break;
    }
  }
  if (line.charCodeAt(i) !== 0x2c) return 'no comma after sv_id';
  if (!/^[\x20-\x7e]*$/.test(svId)) return 'sv_id holds a byte that should have been %-escaped';
  const rest = line.slice(i + 1).split(',');
  if (rest.length !== 6) return `expected 8 fields, found ${rest.length + 2}`;
  const [appId, smpCnt, iter, tNs, src, cpu] = rest as [string, string, string, string, string, string];
  if (!UINT_RE.test(appId) || Number(appId) > 65535) return `bad app_id ${JSON.stringify(appId)}`;
  if (!UINT_RE.test(smpCnt) || Number(smpCnt) > 2147483647) return `bad smp_cnt ${JSON.stringify(smpCnt)}`;
  if (!/^\d{1,16}$/.test(iter)) return `bad iter ${JSON.stringify(iter)}`;
  if (!INT64_RE.test(tNs)) return `bad t_ns ${JSON.stringify(tNs)}`;
  const t = BigInt(tNs);
  if (t < INT64_MIN || t > INT64_MAX) return `t_ns out of int64 ${tNs}`;
  if (!isPointSource(src)) return `bad src ${JSON.stringify(src)}`;
  if (cpu !== '' && (!/^\d{1,5}$/.test(cpu) || Number(cpu) > 32767)) return `bad cpu ${JSON.stringify(cpu)}`;
  return {
    point,
    svId,
    appId: Number(appId),
    smpCnt: Number(smpCnt),
    iter: Number(iter),
    tNs: t,
    src,
    cpu: cpu === '' ? null : Number(cpu),
  };
}

function corrupt(path: string, lineNo: number, why: string): SvtraceError {
  return new SvtraceError('RECORD_CORRUPT', `${path} line ${lineNo} is not a valid record row: ${why}`, {
    hint: 'Only the last line of a journal may be torn by a crash; a bad line elsewhere means the file was damaged or edited.',
  });
}

/**
 * Stream the rows of one CSV journal in chunks, skipping a torn last line.
 * Throws RECORD_CORRUPT on a bad header or a bad complete line.
 */
export async function* readCsvRows(path: string, chunkRows = 8192): AsyncGenerator<PointRow[]> {
  const stream = createReadStream(path, { encoding: 'latin1', highWaterMark: 1 << 20 });
  let carry = '';
  let lineNo = 0;
  let rows: PointRow[] = [];
  for await (const chunk of stream as AsyncIterable<string>) {
    const text = carry + chunk;
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      const line = text.slice(start, nl);
      start = nl + 1;
      lineNo++;
      if (lineNo === 1) {
        if (line !== CSV_HEADER) throw corrupt(path, 1, `header is ${JSON.stringify(line.slice(0, 80))}, expected ${CSV_HEADER}`);
        continue;
      }
      const row = parseCsvLine(line);
      if (typeof row === 'string') throw corrupt(path, lineNo, row);
      rows.push(row);
      if (rows.length >= chunkRows) {
        yield rows;
        rows = [];
      }
    }
    carry = text.slice(start);
  }
  if (rows.length > 0) yield rows;
}

export interface CsvScan {
  /** Bytes up to and including the last '\n'. */
  completeBytes: number;
  /** Complete data lines (header excluded). */
  rows: number;
  /** Bytes after the last '\n': a torn line. */
  tornBytes: number;
  /** Whether the header line is complete. */
  hasHeader: boolean;
}

/** Count the complete lines of a journal without parsing them. */
export async function scanCsv(path: string): Promise<CsvScan> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let pos = 0;
    let newlines = 0;
    let lastNl = -1;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      for (let i = buf.indexOf(10); i >= 0 && i < bytesRead; i = buf.indexOf(10, i + 1)) {
        newlines++;
        lastNl = pos + i;
      }
      pos += bytesRead;
    }
    const completeBytes = lastNl + 1;
    return { completeBytes, rows: Math.max(0, newlines - 1), tornBytes: pos - completeBytes, hasHeader: newlines > 0 };
  } finally {
    await fh.close();
  }
}

/** Whether a file is empty or ends with '\n' (no torn line). Reads one byte. */
export async function endsWithNewline(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size === 0) return false;
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, size - 1);
    return b[0] === 10;
  } finally {
    await fh.close();
  }
}
