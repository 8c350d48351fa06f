/**
 * `svtrace decode`: one row per ASDU of every SV frame of a capture, as a
 * table, CSV or JSON, streamed (constant memory whatever the capture size).
 */
import type { PacketView } from '../pcap/index.ts';
import {
  createFrameScan, decodeLe, F_CONFREV, F_SEQDATA, F_SMPSYNCH, F_SVID, FIELD_COUNT, LE_CHANNEL_NAMES, latin1, readUint,
  SCAN_ERRORS, scanFrame,
} from '../sv/index.ts';
import { csvField, hex4, isoNs, printable } from '../util/text.ts';

export type DecodeFormat = 'table' | 'csv' | 'json';

export interface DecodeFilter {
  svIds?: string[];
  appIds?: number[];
}

export interface DecodeRow {
  packet: number;
  time: string;
  tNs: string;
  svId: string;
  appId: number;
  smpCnt: number;
  confRev: number;
  smpSynch: number;
  /** 9-2LE raw values IA..VN and qualities, when seqData has that layout. */
  values: number[] | null;
  quality: number[] | null;
}

const VALUE_COLUMNS = LE_CHANNEL_NAMES.map(String);

export function createDecoder(filter: DecodeFilter, format: DecodeFormat, write: (s: string) => void) {
  const scan = createFrameScan();
  const svIds = filter.svIds?.length ? new Set(filter.svIds) : null;
  const appIds = filter.appIds?.length ? new Set(filter.appIds) : null;
  let packets = 0, rows = 0, malformed = 0, other = 0;
  const firstErrors: string[] = [];
  let buf = '';
  const flush = () => { if (buf) { write(buf); buf = ''; } };

  if (format === 'csv') buf += ['packet', 'time', 't_ns', 'sv_id', 'app_id', 'smp_cnt', 'conf_rev', 'smp_synch', ...VALUE_COLUMNS, ...VALUE_COLUMNS.map((c) => `q_${c}`)].join(',') + '\n';
  else if (format === 'json') buf += '[';
  else buf += ['time'.padEnd(30), 'svID'.padEnd(20), 'APPID', 'smpCnt'.padStart(6), 'confRev'.padStart(8), 'synch', ...VALUE_COLUMNS.map((c) => c.padStart(10))].join(' ') + '\n';

  function emit(r: DecodeRow): void {
    if (format === 'json') {
      buf += (rows ? ',\n' : '\n') + JSON.stringify(r);
    } else if (format === 'csv') {
      const v = r.values ?? new Array(8).fill('');
      const q = r.quality ? r.quality.map((x) => '0x' + x.toString(16)) : new Array(8).fill('');
      buf += `${r.packet},${r.time},${r.tNs},${csvField(r.svId)},0x${hex4(r.appId)},${r.smpCnt},${r.confRev},${r.smpSynch},${v.join(',')},${q.join(',')}\n`;
    } else {
      const v = r.values ? r.values.map((x) => String(x).padStart(10)) : [];
      buf += `${r.time.padEnd(30)} ${printable(r.svId).padEnd(20)} ${hex4(r.appId).padEnd(5)} ${String(r.smpCnt).padStart(6)} ${String(r.confRev).padStart(8)} ${String(r.smpSynch).padStart(5)} ${v.join(' ')}`.trimEnd() + '\n';
    }
    rows++;
    if (buf.length > 1 << 16) flush();
  }

  function onPacket(p: PacketView): void {
    packets++;
    const b = p.bytes;
    const st = scanFrame(b, p.offset, p.offset + p.capLen, scan);
    if (st) {
      if (st === 2) other++;
      else {
        malformed++;
        if (firstErrors.length < 5) firstErrors.push(`packet ${packets}: ${SCAN_ERRORS[st]} at byte ${scan.errorOffset}: ${scan.errorDetail}`);
      }
      return;
    }
    if (appIds && !appIds.has(scan.appId)) return;
    const time = isoNs(p.tsSec, p.tsNsec);
    const tNs = (BigInt(p.tsSec) * 1_000_000_000n + BigInt(p.tsNsec)).toString();
    for (let i = 0; i < scan.asduCount; i++) {
      const base = i * FIELD_COUNT;
      const svId = latin1(b, scan.fieldOffset[base + F_SVID]!, scan.fieldLength[base + F_SVID]!);
      if (svIds && !svIds.has(svId)) continue;
      const so = scan.fieldOffset[base + F_SEQDATA]!;
      const le = decodeLe(b.subarray(so, so + scan.fieldLength[base + F_SEQDATA]!));
      emit({
        packet: packets, time, tNs, svId, appId: scan.appId, smpCnt: scan.smpCnt[i]!,
        confRev: readUint(b, scan.fieldOffset[base + F_CONFREV]!, scan.fieldLength[base + F_CONFREV]!),
        smpSynch: readUint(b, scan.fieldOffset[base + F_SMPSYNCH]!, scan.fieldLength[base + F_SMPSYNCH]!),
        values: le?.values ?? null, quality: le?.quality ?? null,
      });
    }
  }

  function end(): { packets: number; rows: number; malformed: number; other: number; firstErrors: string[] } {
    if (format === 'json') buf += rows ? '\n]\n' : ']\n';
    flush();
    return { packets, rows, malformed, other, firstErrors };
  }

  return { onPacket, end };
}
