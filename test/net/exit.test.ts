// The addon's threads never keep a finished program alive: a child process
// that receives and transmits, then closes (or stops, or unrefs), exits by
// itself. A hang is caught by a timeout and fails the test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { isRoot, makeVethLab, NOT_ROOT_REASON, type VethLab } from './helpers.ts';

const skip = isRoot() ? false : NOT_ROOT_REASON;
const NET_INDEX = new URL('../../src/net/index.ts', import.meta.url).href;

/** Runs `body` in a child that opened sockets a (ns A) and b (ns B); returns its stdout. */
function runChild(lab: VethLab, body: string): string {
  const script = `
    import { openPacketSocket, packFrames, clockNowNs } from ${JSON.stringify(NET_INDEX)};
    const a = openPacketSocket({ ifname: ${JSON.stringify(lab.ifA)}, netns: ${JSON.stringify(lab.nsA)} });
    const b = openPacketSocket({ ifname: ${JSON.stringify(lab.ifB)}, netns: ${JSON.stringify(lab.nsB)} });
    const frame = new Uint8Array(120); frame.set([1, 12, 205, 4, 0, 1, 2, 0, 0, 0, 0, 1, 0x88, 0xba]);
    let received = 0, reported = 0;
    b.startReceive((batch) => { received += batch.count; });
    const tx = a.startTransmit({ onTxReport: (r) => { reported += r.count; } });
    const p = packFrames(Array.from({ length: 100 }, () => frame));
    const t0 = clockNowNs() + 1_000_000n;
    tx.enqueue(p.data, p.offsets, p.lengths, BigInt64Array.from({ length: 100 }, (_, i) => t0 + BigInt(i) * 250_000n));
    await new Promise((r) => setTimeout(r, 200));
    ${body}
    console.log('END', received, reported);`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 15_000,
    killSignal: 'SIGKILL',
  });
  assert.equal(child.signal, null, `the child did not exit by itself (killed after 15 s): ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  return child.stdout;
}

test('the process exits after close() with threads still running', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const out = runChild(lab, 'a.close(); b.close();');
  assert.match(out, /^END \d+ \d+/m);
});

test('the process exits after stop(), without close()', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const out = runChild(lab, 'await tx.stop({ drain: true }); await b.stopReceive(); await new Promise((r) => setTimeout(r, 50));');
  assert.match(out, /^END 100 100$/m, 'all frames received and reported before stop resolved');
});

test('the process exits while threads run when the socket is unref()ed', { skip }, (t) => {
  const lab = makeVethLab();
  t.after(() => lab.cleanup());
  const out = runChild(lab, 'a.unref(); b.unref();');
  assert.match(out, /^END \d+ \d+/m);
});
