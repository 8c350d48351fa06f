import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  decodeSvId,
  encodeSvId,
  listSegments,
  openRecordWriter,
  readManifest,
  recordSql,
  svIdText,
  type PointSource,
  type SvIdInput,
} from '../../src/record/index.ts';
import { isSvtraceError } from '../../src/errors.ts';
import { collectRows, duckQuery, tempDir } from './helpers.ts';

const HOSTILE: SvIdInput[] = [
  'MU01_LD0/LLN0$SV',
  'a,b',
  'say "hi", ok',
  'line1\nline2\r\n',
  '<script>alert(1)</script>',
  '',
  'é€😀',
  new Uint8Array([0xff, 0xfe, 0x00, 0x25, 0x41, 0x80, 0x0a]),
  '%41',
  'NA',
  'null',
  '  padded  ',
  "'; DROP TABLE points; --",
  'back\\slash\ttab',
];

const T_NS = [2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 0n, 1_764_403_200_123_456_789n];

interface Row {
  point: string;
  svId: SvIdInput;
  appId: number;
  smpCnt: number;
  iter: number;
  tNs: bigint;
  src: PointSource;
  cpu: number | null;
}

function hostileRows(): Row[] {
  const rows: Row[] = [];
  HOSTILE.forEach((svId, s) => {
    T_NS.forEach((tNs, k) => {
      rows.push({
        point: k % 2 === 0 ? 'T3' : 'my_point_7',
        svId,
        appId: [0, 65535, 0x4000][k % 3] as number,
        smpCnt: [0, 2 ** 31 - 1, 3999][(s + k) % 3] as number,
        iter: [0, 2 ** 40, 7][k % 3] as number,
        tNs,
        src: (['hw', 'kernel', 'app', 'bpf', 'sched'] as const)[k] as PointSource,
        cpu: [null, 0, 32767, 1, null][k] as number | null,
      });
    });
  });
  return rows;
}

function bytesOf(svId: SvIdInput): Uint8Array {
  return typeof svId === 'string' ? new Uint8Array(Buffer.from(svId, 'utf8')) : svId;
}

async function writeRecord(dir: string, rows: Row[], compaction: 'never' | 'close' | 'rotate'): Promise<string> {
  const w = await openRecordWriter(dir, { role: 'subscribe', points: ['T3', 'my_point_7'], clock: { name: 'tai' }, runId: `run-${compaction}` }, { compaction });
  for (const r of rows) w.append(r.point, r.svId, r.appId, r.smpCnt, r.iter, r.tNs, r.src, r.cpu);
  await w.close();
  return dir;
}

test('svID escaping: printable ASCII kept, every other byte and % as %XX, reversible', () => {
  const table: [SvIdInput, string][] = [
    ['MU01_LD0/LLN0$SV', 'MU01_LD0/LLN0$SV'],
    ['a,"b" <x>', 'a,"b" <x>'],
    ['x\ny\r', 'x%0Ay%0D'],
    ['100%', '100%25'],
    ['+', '+'],
    ['é', '%C3%A9'],
    [new Uint8Array([0xff, 0x00, 0x7f, 0x20]), '%FF%00%7F '],
    ['', ''],
  ];
  for (const [input, stored] of table) {
    assert.equal(encodeSvId(input), stored);
    assert.deepEqual(decodeSvId(stored), bytesOf(input));
  }
  assert.equal(svIdText('%C3%A9t%C3%A9'), 'été');
  for (const bad of ['%4', '%G0', 'abc%', 'é']) {
    assert.throws(() => decodeSvId(bad), (e: unknown) => isSvtraceError(e) && e.code === 'RECORD_BAD_SVID');
  }
});

for (const compaction of ['never', 'close'] as const) {
  test(`round trip of hostile svIDs and int64 timestamps through ${compaction === 'never' ? 'CSV' : 'Parquet'}`, async (t) => {
    const dir = await writeRecord(join(tempDir(t), 'rec'), hostileRows(), compaction);
    const kinds = new Set((await listSegments(dir)).map((s) => s.kind));
    assert.deepEqual([...kinds], [compaction === 'never' ? 'csv' : 'parquet']);
    const got = await collectRows(dir);
    const want = hostileRows();
    assert.equal(got.length, want.length);
    got.forEach((row, i) => {
      const w = want[i] as Row;
      assert.deepEqual(
        { ...row, svId: decodeSvId(row.svId) },
        { point: w.point, svId: bytesOf(w.svId), appId: w.appId, smpCnt: w.smpCnt, iter: w.iter, tNs: w.tNs, src: w.src, cpu: w.cpu },
        `row ${i}`,
      );
      assert.equal(row.svId, encodeSvId(w.svId));
    });
  });
}

test('DuckDB SQL over a CSV record and a Parquet record gives every row exactly, with run and record columns', async (t) => {
  const root = tempDir(t);
  const csvDir = await writeRecord(join(root, 'csv-rec'), hostileRows(), 'never');
  const pqDir = await writeRecord(join(root, 'pq-rec'), hostileRows(), 'close');
  const sql = await recordSql([csvDir, pqDir]);
  const rows = await duckQuery(
    `SELECT record, run, role, point, sv_id, app_id, smp_cnt, iter, t_ns, src, cpu, typeof(t_ns), typeof(app_id), typeof(cpu) FROM (${sql}) ORDER BY record, t_ns, sv_id, point`,
  );
  const want = hostileRows();
  for (const [record, run] of [['csv-rec', 'run-never'], ['pq-rec', 'run-close']] as const) {
    const got = rows.filter((r) => r[0] === record);
    assert.equal(got.length, want.length);
    const expected = want
      .map((w) => [record, run, 'subscribe', w.point, encodeSvId(w.svId), w.appId, w.smpCnt, BigInt(w.iter), w.tNs, w.src, w.cpu, 'BIGINT', 'INTEGER', 'SMALLINT'])
      .sort((a, b) => {
        const ta = a[8] as bigint;
        const tb = b[8] as bigint;
        if (ta !== tb) return ta < tb ? -1 : 1;
        const sa = a[4] as string;
        const sb = b[4] as string;
        if (sa !== sb) return sa < sb ? -1 : 1;
        return (a[3] as string) < (b[3] as string) ? -1 : 1;
      });
    assert.deepEqual(got, expected);
  }
  // url_decode undoes the escaping for UTF-8 svIDs.
  const decoded = await duckQuery(`SELECT DISTINCT url_decode(sv_id) FROM (${sql}) WHERE sv_id LIKE 'line1%' OR sv_id LIKE '%C3%A9%'`);
  assert.deepEqual(decoded.map((r) => r[0]).sort(), ['line1\nline2\r\n', 'é€😀']);
});

test('appendColumns writes exactly what append writes', async (t) => {
  const root = tempDir(t);
  const svIds: SvIdInput[] = ['MU1', 'a,"b"\n', new Uint8Array([0x80, 0x25])];
  const n = 5000;
  const stream = new Uint8Array(n);
  const appId = new Uint16Array(n);
  const smpCnt = new Uint16Array(n);
  const iter = new Float64Array(n);
  const tNs = new BigInt64Array(n);
  const cpu = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    stream[i] = i % 3;
    appId[i] = 0x4000 + (i % 3);
    smpCnt[i] = i % 4000;
    iter[i] = Math.floor(i / 4000);
    tNs[i] = 2n ** 60n + BigInt(i) * 250_000n;
    cpu[i] = i % 4 === 0 ? -1 : i % 2;
  }
  const init = { role: 'trace', points: ['T1'], clock: { name: 'realtime' as const } };
  const a = await openRecordWriter(join(root, 'a'), init, { compaction: 'never' });
  for (let i = 0; i < n; i++) {
    a.append('T1', svIds[stream[i] as number] as SvIdInput, appId[i] as number, smpCnt[i] as number, iter[i] as number, tNs[i] as bigint, 'bpf', (cpu[i] as number) < 0 ? null : cpu[i]);
  }
  await a.close();
  const b = await openRecordWriter(join(root, 'b'), init, { compaction: 'never' });
  b.appendColumns({ point: 'T1', src: 'bpf', svIds, stream, appId, smpCnt, iter, tNs, cpu, length: 2000 });
  b.appendColumns({ point: 'T1', src: 'bpf', svIds, stream: stream.subarray(2000), appId: appId.subarray(2000), smpCnt: smpCnt.subarray(2000), iter: iter.subarray(2000), tNs: tNs.subarray(2000), cpu: cpu.subarray(2000) });
  await b.close();
  const fileA = readFileSync(join(root, 'a', 'points-000001.csv'), 'latin1');
  assert.equal(fileA, readFileSync(join(root, 'b', 'points-000001.csv'), 'latin1'));
  assert.equal(fileA.split('\n').length, n + 2);
  assert.ok(fileA.startsWith('point,sv_id,app_id,smp_cnt,iter,t_ns,src,cpu\nT1,"MU1",16384,0,0,1152921504606846976,bpf,\n'));
  assert.ok(fileA.includes('\nT1,"a,""b""%0A",16385,1,0,1152921504607096976,bpf,1\n'));
  assert.ok(fileA.includes('\nT1,"%80%25",16386,8,0,1152921504608846976,bpf,\n'));
  assert.ok(fileA.endsWith('\nT1,"a,""b""%0A",16385,999,1,1152921505856596976,bpf,1\n'));
});

test('bad rows are refused with RECORD_BAD_ROW and not recorded', async (t) => {
  const dir = join(tempDir(t), 'rec');
  const w = await openRecordWriter(dir, { role: 'subscribe', points: ['T3'], clock: { name: 'tai' } }, { compaction: 'never' });
  const bad: [string, () => void][] = [
    ['point not in manifest', () => w.append('T4', 'MU', 1, 1, 0, 1n, 'kernel')],
    ['src', () => w.append('T3', 'MU', 1, 1, 0, 1n, 'wall' as PointSource)],
    ['appId too big', () => w.append('T3', 'MU', 65536, 1, 0, 1n, 'kernel')],
    ['smpCnt negative', () => w.append('T3', 'MU', 1, -1, 0, 1n, 'kernel')],
    ['smpCnt fraction', () => w.append('T3', 'MU', 1, 1.5, 0, 1n, 'kernel')],
    ['iter negative', () => w.append('T3', 'MU', 1, 1, -1, 1n, 'kernel')],
    ['tNs a number', () => w.append('T3', 'MU', 1, 1, 0, 5 as unknown as bigint, 'kernel')],
    ['tNs beyond int64', () => w.append('T3', 'MU', 1, 1, 0, 2n ** 63n, 'kernel')],
    ['cpu too big', () => w.append('T3', 'MU', 1, 1, 0, 1n, 'kernel', 40000)],
    ['stream index', () => w.appendColumns({ point: 'T3', src: 'kernel', svIds: ['MU'], stream: [1], appId: [1], smpCnt: [1], iter: [0], tNs: [1n] })],
  ];
  for (const [what, f] of bad) {
    assert.throws(f, (e: unknown) => isSvtraceError(e) && e.code === 'RECORD_BAD_ROW', what);
  }
  w.append('T3', 'MU', 1, 1, 0, 1n, 'kernel');
  const summary = await w.close();
  assert.equal(summary.rows, 1);
  assert.equal((await collectRows(dir)).length, 1);
  assert.throws(() => w.append('T3', 'MU', 1, 1, 0, 1n, 'kernel'), (e: unknown) => isSvtraceError(e) && e.code === 'RECORD_CLOSED');
});

test('manifest: written at open and close, validated on read, clear errors', async (t) => {
  const root = tempDir(t);
  const dir = join(root, 'rec');
  const w = await openRecordWriter(
    dir,
    { role: 'publish', points: ['T0'], clock: { name: 'tai', note: 'ptp4l' }, runId: 'r1', host: 'mu-host', startedNs: 2n ** 62n, command: ['svtrace', 'publish'], counters: { streams: 8 } },
    { compaction: 'never' },
  );
  const open = await readManifest(dir);
  assert.equal(open.state, 'recording');
  assert.equal(open.startedNs, String(2n ** 62n));
  assert.equal(open.stoppedNs, undefined);
  w.append('T0', 'MU', 1, 0, 0, 5n, 'hw', 2);
  w.update({ streams: [{ svId: 'MU', appId: 1, sampleRateHz: 4000 }], extra: { note: 'x' } });
  await w.close({ stoppedNs: 2n ** 62n + 10n, counters: { sent: 1 } });
  const closed = await readManifest(dir);
  assert.deepEqual(
    { ...closed, svtraceVersion: 'v' },
    {
      format: 'svtrace-record', formatVersion: 1, runId: 'r1', host: 'mu-host', role: 'publish', points: ['T0'],
      clock: { name: 'tai', note: 'ptp4l' }, startedNs: String(2n ** 62n), stoppedNs: String(2n ** 62n + 10n), state: 'closed',
      svtraceVersion: 'v', command: ['svtrace', 'publish'], counters: { streams: 8, sent: 1, recordRows: 1, recordSegments: 1 },
      streams: [{ svId: 'MU', appId: 1, sampleRateHz: 4000 }], extra: { note: 'x' },
    },
  );
  assert.deepEqual(readdirSync(dir).sort(), ['manifest.json', 'points-000001.csv']);

  const code = (e: unknown): string => (isSvtraceError(e) ? e.code : String(e));
  await assert.rejects(openRecordWriter(dir, { role: 'publish', points: ['T0'], clock: { name: 'tai' } }), (e) => code(e) === 'RECORD_EXISTS');
  await assert.rejects(openRecordWriter(join(root, 'bad'), { role: 'publish', points: ['T 0'], clock: { name: 'tai' } }), (e) => code(e) === 'RECORD_BAD_MANIFEST');
  writeFileSync(join(root, 'a-file'), 'x');
  await assert.rejects(
    openRecordWriter(join(root, 'a-file', 'rec'), { role: 'publish', points: ['T0'], clock: { name: 'tai' } }),
    (e) => code(e) === 'RECORD_WRITE_FAILED' && (e as Error).message.startsWith(`cannot start a record in ${join(root, 'a-file', 'rec')}`),
  );
  await assert.rejects(readManifest(root), (e) => code(e) === 'RECORD_NOT_A_RECORD' && (e as Error).message === `${root} has no manifest.json: is this a svtrace record directory?`);
  await assert.rejects(readManifest(join(root, 'nope')), (e) => code(e) === 'RECORD_NOT_A_RECORD');
  const path = join(dir, 'manifest.json');
  writeFileSync(path, '{"format": "svtrace-record", ');
  await assert.rejects(readManifest(dir), (e) => code(e) === 'RECORD_BAD_MANIFEST');
  writeFileSync(path, JSON.stringify({ ...closed, formatVersion: 2 }));
  await assert.rejects(readManifest(dir), (e) => code(e) === 'RECORD_UNSUPPORTED_VERSION');
  writeFileSync(path, JSON.stringify({ ...closed, startedNs: 12, state: 'done' }));
  await assert.rejects(readManifest(dir), (e) => code(e) === 'RECORD_BAD_MANIFEST' && /startedNs/.test((e as Error).message) && /state/.test((e as Error).message));
});
