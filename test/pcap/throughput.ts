/**
 * Reader and writer throughput on a 1 M-packet capture built by repeating the
 * frames of SV_Normal_Traffic.pcap (one every 250 µs). Run by hand; not a test:
 *
 *   npx tsx test/pcap/throughput.ts [packets] [--tshark]
 *
 * Prints, per format (pcap, pcap-ns, pcapng): parser packets/s on the capture
 * in memory (best of 5), readCaptureFile packets/s from a file in the temp
 * directory, and the time writeCaptureFile takes to write it. With --tshark,
 * also times `tshark -r FILE -T fields -e frame.len` on the pcap file.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  capturePackets, createCaptureWriter, parseCapture, readCaptureFile, writeCaptureFile, type CaptureWriteFormat,
} from '../../src/pcap/index.ts';
import { fixture, tempDir } from './helpers.ts';

const count = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const withTshark = process.argv.includes('--tshark');
const frames: Uint8Array[] = [];
for await (const p of capturePackets(fixture('SV_Normal_Traffic.pcap'))) frames.push(p.data);
const t0Ns = 1_700_000_000_000_000_000n;

function* packets(): Generator<{ tsNs: bigint; data: Uint8Array }> {
  for (let i = 0; i < count; i++) yield { tsNs: t0Ns + BigInt(i) * 250_000n, data: frames[i % frames.length]! };
}

function inMemory(format: CaptureWriteFormat): Uint8Array {
  const w = createCaptureWriter({ format });
  const header = w.header();
  let total = header.length;
  for (let i = 0; i < count; i++) total += w.recordBytes(frames[i % frames.length]!.length);
  const out = new Uint8Array(total);
  out.set(header);
  let at = header.length;
  for (const p of packets()) at += w.encodeRecordInto(out, at, p.tsNs, p.data);
  return out;
}

const mpps = (n: number, ms: number): string => `${((n / ms) * 1e3 / 1e6).toFixed(2)} M packets/s`;
const tmp = tempDir();
try {
  for (const format of ['pcap', 'pcap-ns', 'pcapng'] as const) {
    const bytes = inMemory(format);
    let best = Infinity;
    let seen = 0;
    for (let rep = 0; rep < 5; rep++) {
      let n = 0;
      let check = 0;
      const t = performance.now();
      parseCapture(bytes, (p) => {
        n++;
        check += p.capLen + p.tsNsec;
      });
      best = Math.min(best, performance.now() - t);
      seen = check > 0 ? n : -1;
    }
    console.log(`${format.padEnd(8)} parser (in memory, ${(bytes.length / 1e6).toFixed(0)} MB): ${seen} packets, best ${best.toFixed(1)} ms = ${mpps(seen, best)}`);

    const path = join(tmp.dir, `big.${format}`);
    writeFileSync(path, bytes);
    let n = 0;
    let t = performance.now();
    await readCaptureFile(path, () => n++);
    console.log(`${format.padEnd(8)} readCaptureFile: ${n} packets in ${(performance.now() - t).toFixed(1)} ms = ${mpps(n, performance.now() - t)}`);
    t = performance.now();
    await writeCaptureFile(join(tmp.dir, `written.${format}`), packets(), { format });
    console.log(`${format.padEnd(8)} writeCaptureFile: ${count} packets in ${(performance.now() - t).toFixed(0)} ms`);
    if (withTshark && format === 'pcap') {
      t = performance.now();
      const r = spawnSync('tshark', ['-r', path, '-T', 'fields', '-e', 'frame.len'], { stdio: ['ignore', 'ignore', 'ignore'] });
      console.log(`${format.padEnd(8)} tshark -T fields -e frame.len: exit ${r.status} in ${(performance.now() - t).toFixed(0)} ms`);
    }
    rmSync(path);
  }
} finally {
  tmp.cleanup();
}
