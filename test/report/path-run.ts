/**
 * A whole-path run for report tests: T0..T4 of two streams (one with a
 * hostile svID) over 2 s at 4000/s, in three records as three machines
 * would write them (publisher T0, hypervisor T1+T2, VM T3+T4). Each hop has
 * its own latency profile, with a spike every 997th sample in Thyp and a
 * Tsub spike of `tsubSpikeUs` every 2000th.
 */
import { join } from 'node:path';
import { prng, tAt, writeRecord, type TestRow } from '../analyze/helpers.ts';

export const EVIL_SV = '<script>window.__pwned=1;alert(1)</script>';
export const EVIL_HOST = '<img src=x onerror="window.__pwned=2">';

export async function writePathRun(dir: string, seed: number, tsubSpikeUs: number, tsubBaseUs = 20): Promise<string> {
  const r = prng(seed);
  const pub: TestRow[] = [], hyp: TestRow[] = [], vm: TestRow[] = [];
  for (const svId of ['MU01', EVIL_SV]) {
    for (let sec = 0; sec < 2; sec++) {
      for (let smp = 0; smp < 4000; smp++) {
        const t0 = tAt(sec, smp, 4000, 10_000);
        const t1 = t0 + BigInt(Math.round(400 + r() * 300));
        const t2 = t1 + BigInt(Math.round(smp % 997 === 3 ? 400_000 : 6_000 + r() * 30_000));
        const t3 = t2 + BigInt(Math.round(5_000 + r() * 20_000));
        const t4 = t3 + BigInt(Math.round(smp % 2000 === 7 ? tsubSpikeUs * 1000 : tsubBaseUs * 1000 + r() * 40_000));
        pub.push({ point: 'T0', svId, smpCnt: smp, tNs: t0 });
        hyp.push({ point: 'T1', svId, smpCnt: smp, tNs: t1 }, { point: 'T2', svId, smpCnt: smp, tNs: t2 });
        vm.push({ point: 'T3', svId, smpCnt: smp, tNs: t3 }, { point: 'T4', svId, smpCnt: smp, tNs: t4 });
      }
    }
  }
  const run = join(dir, `run-${seed}`);
  await writeRecord(join(run, 'pub'), { role: 'publish', host: 'mu', runId: 'path', points: ['T0'] }, pub);
  await writeRecord(join(run, 'hyp'), { role: 'trace', host: EVIL_HOST, runId: 'path', points: ['T1', 'T2'] }, hyp);
  await writeRecord(join(run, 'vm'), { role: 'subscribe', host: 'vm', runId: 'path', points: ['T3', 'T4'] }, vm);
  return run;
}
