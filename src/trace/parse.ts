/**
 * Parsing bpftrace's output: the per-frame lines of svtrace.bt (the hot
 * path, tens of thousands a second, parsed by hand without regexes), and the
 * rare lines: markers, "Lost N events", map prints, unknown-frame bytes,
 * learn.bt's byte lines and warnings.
 */

/** A per-frame line: point, layout, monotonic time, cpu, and the smpCnt of each ASDU. */
export interface FrameLine {
  point: number;
  layout: number;
  tMonoNs: bigint;
  cpu: number;
  smpCnts: number[];
}

const SPACE = 32, ZERO = 48, NINE = 57;

/**
 * Parses "<point> <layout> <t> <cpu> <smpCnt>..." into `out` (reused).
 * Returns false for any other line.
 */
export function parseFrameLine(line: string, out: FrameLine): boolean {
  const n = line.length;
  let i = 0;
  let field = 0;
  let count = 0;
  let tStart = 0, tEnd = 0, tNum = 0;
  out.smpCnts.length = 0;
  while (i < n) {
    let v = 0;
    const start = i;
    let c = line.charCodeAt(i);
    while (c >= ZERO && c <= NINE) {
      v = v * 10 + (c - ZERO);
      c = line.charCodeAt(++i);
    }
    if (i === start) return false;
    if (i < n && c !== SPACE) return false;
    switch (field) {
      case 0: out.point = v; break;
      case 1: out.layout = v; break;
      case 2: tStart = start; tEnd = i; tNum = v; break;
      case 3: out.cpu = v; break;
      default: out.smpCnts.push(v); count++;
    }
    field++;
    i++;
  }
  if (count === 0 || line.charCodeAt(n - 1) === SPACE) return false;
  // Up to 15 digits the number parsed above is exact (< 2^53: 104 days of uptime in ns).
  out.tMonoNs = tEnd - tStart <= 15 ? BigInt(tNum) : BigInt(line.slice(tStart, tEnd));
  return true;
}

export function createFrameLine(): FrameLine {
  return { point: 0, layout: 0, tMonoNs: 0n, cpu: 0, smpCnts: [] };
}

/** Little-endian 64-bit words printed with %llx, back to bytes. */
export function wordsToBytes(words: string[], into?: Uint8Array, at = 0): Uint8Array {
  const out = into ?? new Uint8Array(words.length * 8);
  words.forEach((w, k) => {
    let v = BigInt.asUintN(64, BigInt(`0x${w}`));
    for (let b = 0; b < 8; b++) {
      out[at + k * 8 + b] = Number(v & 0xffn);
      v >>= 8n;
    }
  });
  return out;
}

const HEX = /^[0-9a-f]{1,16}$/;

/** "U <point> <bytes available> <16 words>": the first bytes of a frame of no known layout. */
export function parseUnknownLine(line: string): { point: number; bytes: Uint8Array } | null {
  const f = line.split(' ');
  if (f[0] !== 'U' || f.length !== 19) return null;
  const point = Number(f[1]), avail = Number(f[2]);
  const words = f.slice(3);
  if (!Number.isInteger(point) || !Number.isInteger(avail) || !words.every((w) => HEX.test(w))) return null;
  const bytes = wordsToBytes(words);
  return { point, bytes: bytes.subarray(0, Math.max(0, Math.min(avail, bytes.length))) };
}

/** "L <cpu> <t> <bytes available> <chunk> <16 words>" from learn.bt. */
export interface LearnChunk {
  key: string;
  available: number;
  chunk: number;
  words: string[];
}

export function parseLearnLine(line: string): LearnChunk | null {
  const f = line.split(' ');
  if (f[0] !== 'L' || f.length !== 21) return null;
  const [cpu, t, avail, chunk] = [f[1]!, f[2]!, Number(f[3]), Number(f[4])];
  const words = f.slice(5);
  if (!/^\d+$/.test(cpu) || !/^\d+$/.test(t) || !Number.isInteger(avail) || !Number.isInteger(chunk) || chunk < 0 || chunk > 11) return null;
  if (!words.every((w) => HEX.test(w))) return null;
  return { key: `${cpu}:${t}`, available: avail, chunk, words };
}

/** "Lost 12 events": bpftrace could not keep up and the kernel dropped output. */
export function parseLost(line: string): number | null {
  const m = /^Lost (\d+) events/.exec(line);
  return m ? Number(m[1]) : null;
}

/** "@frames[1]: 10161" */
export function parseMapLine(line: string): { map: string; key: number; value: number } | null {
  const m = /^@([a-z]+)\[(\d+)\]: (\d+)$/.exec(line);
  return m ? { map: m[1]!, key: Number(m[2]), value: Number(m[3]) } : null;
}

/** "Attaching 3 probes..." */
export function parseAttaching(line: string): number | null {
  const m = /^Attaching (\d+) probes?/.exec(line);
  return m ? Number(m[1]) : null;
}

/** bpftrace -k's warning when a map update fails (the map is full). */
export function isMapFullWarning(line: string): boolean {
  return /WARNING: Failed to map_update_elem/.test(line);
}

/**
 * Splits a stream of chunks into lines. Calls `onLine` for each complete
 * line; keeps the rest for the next chunk.
 */
export function createLineSplitter(onLine: (line: string) => void): { push: (chunk: string) => void; end: () => void } {
  let rest = '';
  return {
    push(chunk: string) {
      let nl = chunk.indexOf('\n');
      if (nl < 0) { rest += chunk; return; }
      onLine(rest + chunk.slice(0, nl));
      rest = '';
      let start = nl + 1;
      while ((nl = chunk.indexOf('\n', start)) >= 0) {
        onLine(chunk.slice(start, nl));
        start = nl + 1;
      }
      rest = chunk.slice(start);
    },
    end() {
      if (rest) onLine(rest);
      rest = '';
    },
  };
}
