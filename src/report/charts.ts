/**
 * The report's charts as Vega-Lite specs, rendered to SVG in Node (no
 * browser, no network) and to PNG with resvg. Charts carry only numbers,
 * segment names ([A-Za-z0-9_]) and fixed labels; run labels are 'A'/'B'.
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { Resvg } from '@resvg/resvg-js';
import type { ExceedancePoint, HistogramBin, SecondMax } from '../analyze/index.ts';

export type ChartKind = 'histogram' | 'exceedance' | 'per-second';

export interface Series<T> {
  /** 'A', 'B' in comparisons; '' for a single run. */
  run: string;
  data: readonly T[];
}

const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
const WIDTH = 640, HEIGHT = 220;
const COLORS = ['#4c78a8', '#e45756'];

function base(title: string): Partial<vl.TopLevelSpec> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width: WIDTH, height: HEIGHT, background: 'white', title,
    config: { font: 'DejaVu Sans', axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { title: null } },
  } as Partial<vl.TopLevelSpec>;
}

/** A colour per run; without any value (e.g. every latency under 1 µs) vega would size the legend to infinity, so none. */
const color = (runs: number, values: readonly unknown[]) => (runs > 1 && values.length > 0 ? { color: { field: 'run', type: 'nominal' as const, scale: { range: COLORS } } } : {});

function limitRule(limitUs: number | null, axis: 'x' | 'y'): object[] {
  if (limitUs === null) return [];
  return [{ data: { values: [{ limit: limitUs }] }, mark: { type: 'rule', color: '#54a24b', strokeDash: [6, 4] }, encoding: { [axis]: { field: 'limit', type: 'quantitative' } } }];
}

/** Log-log histogram of latencies (µs) per bin, bins with no sample and the under/overflow bins left out. */
export function histogramSpec(segment: string, series: readonly Series<HistogramBin>[]): vl.TopLevelSpec {
  const values = series.flatMap((s) => s.data.slice(1, -1).filter((b) => b.count > 0).map((b) => ({ run: s.run, lo: b.loNs / 1000, hi: b.hiNs / 1000, count: b.count })));
  return {
    ...base(`${segment}: samples per latency bin`),
    data: { values },
    mark: { type: 'rect', opacity: series.length > 1 ? 0.55 : 1 },
    encoding: {
      x: { field: 'lo', type: 'quantitative', scale: { type: 'log', domain: [1, 100_000] }, title: 'latency (µs)' },
      x2: { field: 'hi' },
      y: { field: 'count', type: 'quantitative', scale: { type: 'log' }, title: 'samples' },
      ...color(series.length, values),
    },
  } as vl.TopLevelSpec;
}

/** Share of samples at or above a latency, log-log, with the limit as a dashed rule. */
export function exceedanceSpec(segment: string, series: readonly Series<ExceedancePoint>[], limitUs: number | null): vl.TopLevelSpec {
  const values = series.flatMap((s) => s.data.map((p) => ({ run: s.run, x: p.thresholdNs / 1000, share: p.share })));
  return {
    ...base(`${segment}: share of samples slower than x`),
    layer: [
      { data: { values }, mark: { type: 'line', interpolate: 'step-after' }, encoding: {
        x: { field: 'x', type: 'quantitative', scale: { type: 'log' }, title: 'latency (µs)' },
        y: { field: 'share', type: 'quantitative', scale: { type: 'log', domain: [1e-7, 1] }, title: 'share ≥ x' },
        ...color(series.length, values),
      } },
      ...limitRule(limitUs, 'x'),
    ],
  } as vl.TopLevelSpec;
}

/** Worst latency of every second over the run (UTC time), log y, limit as a dashed rule. */
export function perSecondSpec(segment: string, series: readonly Series<SecondMax>[], limitUs: number | null, relative = false): vl.TopLevelSpec {
  const values = series.flatMap((s) => {
    const first = s.data[0]?.second ?? 0;
    return s.data.map((p) => ({ run: s.run, t: relative ? p.second - first : p.second * 1000, max: Math.max(p.maxNs, 1) / 1000 }));
  });
  return {
    ...base(`${segment}: worst latency per second`),
    layer: [
      { data: { values }, mark: { type: 'line', strokeWidth: 1 }, encoding: {
        x: relative
          ? { field: 't', type: 'quantitative', title: 'seconds since start' }
          : { field: 't', type: 'temporal', scale: { type: 'utc' }, axis: { format: '%H:%M:%S' }, title: 'time (UTC)' },
        y: { field: 'max', type: 'quantitative', scale: { type: 'log' }, title: 'max latency (µs)' },
        ...color(series.length, values),
      } },
      ...limitRule(limitUs, 'y'),
    ],
  } as vl.TopLevelSpec;
}

/** SVG of a spec; ids are prefixed so that several charts can live inline in one page. */
export async function renderSvg(spec: vl.TopLevelSpec, idPrefix: string): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg.replace(/\bid="([^"]+)"/g, `id="${idPrefix}-$1"`).replace(/url\(#([^)]+)\)/g, `url(#${idPrefix}-$1)`);
  } finally {
    view.finalize();
  }
}

export function svgToPng(svg: string): Uint8Array {
  const png = new Resvg(svg, { font: { fontFiles: [FONT], loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}
