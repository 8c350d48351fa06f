/**
 * A record opens in pandas without svtrace, with the recipe of FORMAT.md:
 * CSV journals always; Parquet segments when pyarrow or fastparquet exists.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeSvId, openRecordWriter, type SvIdInput } from '../../src/record/index.ts';
import { tempDir } from './helpers.ts';

/** The first python with pandas: $SVTRACE_PYTHON, python3, /usr/bin/python3 (Debian's python3-pandas). */
function findPython(): { python?: string; tried: string } {
  const candidates = [process.env.SVTRACE_PYTHON, 'python3', '/usr/bin/python3'].filter((c): c is string => c !== undefined && c !== '');
  for (const python of candidates) {
    if (spawnSync(python, ['-c', 'import pandas'], { stdio: 'ignore' }).status === 0) return { python, tried: candidates.join(', ') };
  }
  return { tried: candidates.join(', ') };
}

function hasModule(python: string, name: string): boolean {
  return spawnSync(python, ['-c', `import ${name}`], { stdio: 'ignore' }).status === 0;
}

// The FORMAT.md recipe, then every row as JSON (t_ns as a decimal string, svID bytes as hex).
const READ_RECORD_PY = `
import glob, json, sys, urllib.parse
import pandas as pd
rec, kind = sys.argv[1], sys.argv[2]
if kind == 'csv':
    dtype = {'point': str, 'sv_id': str, 'app_id': 'int32', 'smp_cnt': 'int32',
             'iter': 'int64', 't_ns': 'int64', 'src': str, 'cpu': 'Int16'}
    df = pd.concat([pd.read_csv(f, dtype=dtype, keep_default_na=False, na_values={'cpu': ['']})
                    for f in sorted(glob.glob(rec + '/points-*.csv'))], ignore_index=True)
else:
    df = pd.concat([pd.read_parquet(f) for f in sorted(glob.glob(rec + '/points-*.parquet'))], ignore_index=True)
    df['cpu'] = df['cpu'].astype('Int16')
print(json.dumps({
    'dtypes': {c: str(t) for c, t in df.dtypes.items()},
    'rows': [[r.point, r.sv_id, urllib.parse.unquote_to_bytes(r.sv_id).hex(), int(r.app_id), int(r.smp_cnt),
              int(r.iter), str(r.t_ns), r.src, None if pd.isna(r.cpu) else int(r.cpu)] for r in df.itertuples()],
}))
`;

const SVIDS: SvIdInput[] = ['MU01', 'a,"b"\nc', '', 'NA', 'null', '<script>', 'é', new Uint8Array([0xff, 0x00, 0x25])];
const T_NS = [2n ** 53n + 1n, 2n ** 63n - 1n, 1_764_403_200_123_456_789n];

function expectedRows(): unknown[][] {
  const rows: unknown[][] = [];
  SVIDS.forEach((svId, s) => {
    T_NS.forEach((tNs, k) => {
      const bytes = typeof svId === 'string' ? Buffer.from(svId, 'utf8') : Buffer.from(svId);
      rows.push(['T4', encodeSvId(svId), bytes.toString('hex'), 65535 - s, s * 1000 + k, 2 ** 40 + k, String(tNs), 'app', k === 0 ? null : s]);
    });
  });
  return rows;
}

async function writeRecord(dir: string, compaction: 'never' | 'close'): Promise<void> {
  const w = await openRecordWriter(dir, { role: 'subscribe', points: ['T4'], clock: { name: 'realtime' } }, { compaction, rotateRows: 10 });
  SVIDS.forEach((svId, s) => {
    T_NS.forEach((tNs, k) => w.append('T4', svId, 65535 - s, s * 1000 + k, 2 ** 40 + k, tNs, 'app', k === 0 ? null : s));
  });
  await w.close();
}

function readWithPandas(python: string, dir: string, kind: 'csv' | 'parquet'): { dtypes: Record<string, string>; rows: unknown[][] } {
  const run = spawnSync(python, ['-c', READ_RECORD_PY, dir, kind], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout) as { dtypes: Record<string, string>; rows: unknown[][] };
}

const { python, tried } = findPython();

test('pandas reads the CSV journals exactly: hostile svIDs, NA-looking svIDs, int64 ns, NULL cpu', { skip: python === undefined ? `no python with pandas (tried ${tried})` : false }, async (t) => {
  const dir = join(tempDir(t), 'rec');
  await writeRecord(dir, 'never');
  const got = readWithPandas(python as string, dir, 'csv');
  assert.deepEqual(got.dtypes, { point: 'object', sv_id: 'object', app_id: 'int32', smp_cnt: 'int32', iter: 'int64', t_ns: 'int64', src: 'object', cpu: 'Int16' });
  assert.deepEqual(got.rows, expectedRows());
});

test('pandas reads the Parquet segments exactly', async (t) => {
  if (python === undefined) {
    t.skip(`no python with pandas (tried ${tried})`);
    return;
  }
  if (!hasModule(python, 'pyarrow') && !hasModule(python, 'fastparquet')) {
    t.skip(`${python} has pandas but neither pyarrow nor fastparquet: pandas cannot read Parquet here (read the CSV form, or convert with DuckDB)`);
    return;
  }
  const dir = join(tempDir(t), 'rec');
  await writeRecord(dir, 'close');
  const got = readWithPandas(python, dir, 'parquet');
  assert.equal(got.dtypes.t_ns, 'int64');
  assert.deepEqual(got.rows, expectedRows());
});
