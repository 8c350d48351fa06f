/**
 * Prometheus / OpenMetrics exposition of the live statistics, served on
 * loopback by default: per stream and segment a latency histogram (seconds,
 * buckets 10 µs .. 25 ms, 10 per decade), counters of samples and late samples, per stream
 * and point the samples seen, per stream the missing samples, and the tool's
 * own counters (lost events, kernel drops). Label values come off the wire
 * (svIDs) and are escaped as the exposition format requires. Served by
 * `trace --metrics` and `subscribe --metrics` alike.
 */
import { createServer, type Server } from 'node:http';
import { SvtraceError } from '../errors.ts';
import { bucketUpperNs, BUCKETS_PER_DECADE } from './histogram.ts';
import type { PointCount, SegmentStats } from './joiner.ts';

export interface MetricsSource {
  stats(): SegmentStats[];
  missing(): Map<string, number>;
  counters(): Record<string, number>;
  /** Samples seen per stream and point (`svtrace_samples_total`); omitted when not given. */
  samples?(): PointCount[];
}

/**
 * Bucket edges in ns: 10 per decade (26 % apart) on the histogram's own
 * edges, from 10 µs to the first edge at or above 20 ms (25.1 ms), so that
 * every latency from 10 µs to 20 ms falls in a finite bucket.
 */
const EDGES_NS = (() => {
  const out: number[] = [];
  for (let i = 1; ; i++) {
    const e = bucketUpperNs(i);
    if (e < 10_000 * 0.999 || i % (BUCKETS_PER_DECADE / 10) !== 0) continue;
    out.push(e);
    if (e >= 20_000_000) break;
  }
  return out;
})();

/**
 * The `le` of a bucket edge, in seconds: the whole ns at or below the edge.
 * Latencies are whole ns, so "≤ le" holds exactly for every sample in the
 * bucket (a rounded label such as 1.58e-5 for the edge 15 848.9 ns would
 * count samples of 15 801..15 848 ns as ≤ 15.8 µs).
 */
function leLabel(edgeNs: number): string {
  return String(Math.floor(edgeNs + 1e-6) / 1e9);
}

/** Escapes a label value: backslash, double quote and newline. */
export function labelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function renderMetrics(src: MetricsSource): string {
  const lines: string[] = [];
  lines.push('# HELP svtrace_latency_seconds Latency of each segment of each sample.', '# TYPE svtrace_latency_seconds histogram');
  for (const s of src.stats()) {
    const labels = `stream="${labelValue(s.stream)}",appid="${s.appId.toString(16).padStart(4, '0')}",segment="${s.segment}"`;
    const h = s.hist;
    let cum = h.counts[0]!;
    let bucket = 1;
    for (const edge of EDGES_NS) {
      while (bucket < h.counts.length - 1 && bucketUpperNs(bucket) <= edge * 1.0001) cum += h.counts[bucket++]!;
      lines.push(`svtrace_latency_seconds_bucket{${labels},le="${leLabel(edge)}"} ${cum}`);
    }
    lines.push(`svtrace_latency_seconds_bucket{${labels},le="+Inf"} ${h.count}`);
    lines.push(`svtrace_latency_seconds_sum{${labels}} ${h.sum / 1e9}`);
    lines.push(`svtrace_latency_seconds_count{${labels}} ${h.count}`);
  }
  lines.push('# HELP svtrace_late_samples_total Samples above the segment limit of the verdicts.', '# TYPE svtrace_late_samples_total counter');
  for (const s of src.stats()) {
    if (s.limitNs === null) continue;
    lines.push(`svtrace_late_samples_total{stream="${labelValue(s.stream)}",segment="${s.segment}",limit_us="${s.limitNs / 1000}"} ${s.late}`);
  }
  if (src.samples) {
    lines.push('# HELP svtrace_samples_total Samples seen at each point of each stream.', '# TYPE svtrace_samples_total counter');
    for (const p of src.samples()) lines.push(`svtrace_samples_total{stream="${labelValue(p.stream)}",appid="${p.appId.toString(16).padStart(4, '0')}",point="${labelValue(p.point)}"} ${p.count}`);
  }
  lines.push('# HELP svtrace_missing_samples_total Samples missing from a stream (smpCnt gaps).', '# TYPE svtrace_missing_samples_total counter');
  for (const [stream, n] of src.missing()) lines.push(`svtrace_missing_samples_total{stream="${labelValue(stream)}"} ${n}`);
  lines.push('# HELP svtrace_tool_events_total The tool\'s own counters (lost events, unmatched samples, kernel drops, undecodable frames).', '# TYPE svtrace_tool_events_total counter');
  for (const [name, n] of Object.entries(src.counters())) lines.push(`svtrace_tool_events_total{kind="${labelValue(name)}"} ${n}`);
  return lines.join('\n') + '\n';
}

/** Parses HOST:PORT (IPv4, [IPv6] or a name). Binds loopback unless a host is given; port 0 takes a free one. */
export function parseListen(spec: string): { host: string; port: number } {
  const m = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(spec);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    throw new SvtraceError('USAGE', `--metrics ${spec} is not HOST:PORT`, { hint: 'e.g. --metrics 127.0.0.1:9464 (loopback) or --metrics 0.0.0.0:9464 to expose it' });
  }
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}

export async function serveMetrics(spec: string, src: MetricsSource): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const { host, port } = parseListen(spec);
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') { res.writeHead(404).end('try /metrics\n'); return; }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(renderMetrics(src));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new SvtraceError('METRICS_LISTEN_FAILED', `cannot listen on ${host}:${port}: ${e.code ?? e.message}`, { hint: e.code === 'EADDRINUSE' ? 'another process uses that port: pick another with --metrics HOST:PORT' : 'check the address', cause: e })));
    server.listen(port, host, () => resolve());
  });
  server.unref();
  const bound = server.address();
  const actualPort = bound !== null && typeof bound === 'object' ? bound.port : port;
  return { server, url: `http://${host.includes(':') ? `[${host}]` : host}:${actualPort}/metrics`, close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }) };
}
