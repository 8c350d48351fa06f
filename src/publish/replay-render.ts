/** Text for a replay's result (`svtrace publish --pcap`): what was sent, and the warnings. Strings off the wire are escaped. */
import { groupDigits, hex4, printable, renderTable } from '../util/text.ts';
import type { ReplayResult } from './replay.ts';

export function renderReplay(r: ReplayResult): string {
  const timing = r.timing === 'repace' ? 'each stream at its nominal period' : 'the capture\'s own timing';
  const speed = r.speed === 1 ? '' : `, ×${r.speed}`;
  let out = `replayed ${printable(r.file)}: ${groupDigits(r.svFramesPerLoop)} SV frames of ${groupDigits(r.packets)} packets per loop, ${r.loops} loop${r.loops === 1 ? '' : 's'}, ${timing}${speed}\n`;
  out += renderTable(['svID', 'APPID', 'wrap', 'rate/s (capture)', 'ASDUs/frame', 'samples/loop'], r.streams.map((s) => [
    printable(s.svId), hex4(s.appId), String(s.rate), s.rateHz === null ? '-' : s.rateHz.toFixed(3), String(s.asdusPerFrame), groupDigits(s.spanSamples),
  ]), new Set([2, 3, 4, 5]));
  const t = r.tx;
  out += renderTable(['frames sent', 'send errors', 'late', 'underruns', 'T0 kernel', 'T0 app', 'non-SV skipped', 'non-SV sent', 'bad skipped'], [[
    groupDigits(r.framesSent), groupDigits(t.sendErrorsTotal), groupDigits(t.late), groupDigits(t.underruns), groupDigits(r.t0Sources.kernel + r.t0Sources.hw),
    groupDigits(r.t0Sources.app), groupDigits(r.otherSkipped), groupDigits(r.otherSent), groupDigits(r.badSkipped),
  ]], new Set([0, 1, 2, 3, 4, 5, 6, 7, 8]));
  if (r.recordDir) out += `record: ${printable(r.recordDir)} (${groupDigits(r.samplesRecorded)} samples with T0)\n`;
  return out;
}

export function replayWarnings(r: ReplayResult): string[] {
  const w: string[] = [];
  if (r.framesLagging > 0) {
    w.push(`the transmit thread fell up to ${(r.maxLagNs / 1e6).toFixed(1)} ms behind schedule (${groupDigits(r.framesLagging)} frames more than 10 ms late); T0 is the send time, so it drifts from the sample's instant by as much. Give the transmit thread a CPU: --fifo 50, --cpu N, or a lower --speed`);
  }
  if (r.tx.sendErrorsTotal > 0) w.push(`${r.tx.sendErrorsTotal} frames could not be sent (${Object.entries(r.tx.sendErrors).map(([k, v]) => `${k} ×${v}`).join(', ')}); those samples are missing on the wire`);
  if (r.badSkipped > 0) w.push(`${groupDigits(r.badSkipped)} malformed or oversized frames were left out (--skip-bad)`);
  if (r.damageSkipped) w.push(`${printable(r.damageSkipped)} (--skip-bad: replayed up to there)`);
  return w;
}
