/**
 * Three-phase values of a simulated merging unit, in 9-2LE units: currents
 * in mA, voltages in 10 mV, neutrals as the sum of the phases (quality
 * "derived", as real merging units mark them). With an integer number of
 * cycles per second, one second of samples is the whole waveform, so it is
 * computed once into a table indexed by smpCnt; every stream of a run is
 * phase-aligned on the same sample instants (smpCnt 0 at each second, as
 * PTP-synchronised merging units are).
 */
import { sampleRate, type StreamSpec, type WaveformSpec } from './streams.ts';

export const QUALITY_GOOD = 0;
export const QUALITY_DERIVED = 0x2000;
export const LE_QUALITIES: readonly number[] = [0, 0, 0, QUALITY_DERIVED, 0, 0, 0, QUALITY_DERIVED];

/** One second of values: table[smpCnt * 8 + channel], IA IB IC IN VA VB VC VN. */
export function waveformTable(stream: Pick<StreamSpec, 'freqHz' | 'samplesPerCycle'>, w: WaveformSpec, faulted = false): Int32Array {
  const rate = sampleRate(stream);
  const table = new Int32Array(rate * 8);
  const iPk = Math.SQRT2 * w.currentA * (faulted && w.fault ? w.fault.currentFactor : 1);
  const vPk = Math.SQRT2 * w.voltageV * (faulted && w.fault ? w.fault.voltageFactor : 1);
  const rad = Math.PI / 180;
  const shifts = [0, -120 * rad, 120 * rad];
  for (let k = 0; k < rate; k++) {
    const theta = 2 * Math.PI * stream.freqHz * (k / rate) + w.phaseDeg * rad;
    let iSum = 0, vSum = 0;
    for (let ph = 0; ph < 3; ph++) {
      const tv = theta + shifts[ph]!;
      const ti = tv - w.currentAngleDeg * rad;
      let i = Math.sin(ti), v = Math.sin(tv);
      for (const h of w.harmonics) {
        i += (h.percent / 100) * Math.sin(h.order * ti);
        v += (h.percent / 100) * Math.sin(h.order * tv);
      }
      const iMa = Math.round(iPk * i * 1000);
      const v10mV = Math.round(vPk * v * 100);
      table[k * 8 + ph] = iMa;
      table[k * 8 + 4 + ph] = v10mV;
      iSum += iMa;
      vSum += v10mV;
    }
    table[k * 8 + 3] = iSum;
    table[k * 8 + 7] = vSum;
  }
  return table;
}
