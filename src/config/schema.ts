/**
 * The one typed configuration of svtrace, as written in TOML (snake_case
 * keys). Every section has defaults, so an empty file is a valid config.
 * zod validates; `resolveConfig` (resolve.ts) merges file, flags and defaults.
 */
import { z } from 'zod';
import { DEFAULT_LIMITS_US } from '../path/index.ts';

const ifname = z.string().regex(/^[A-Za-z0-9_.:-]{1,15}$/, 'an interface name: 1 to 15 letters, digits, _ . : -');
const netns = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a network namespace name: letters, digits, _ . -');
const mac = z.string().regex(/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/, 'a MAC address like 01:0c:cd:04:00:00');
const appId = z.number().int().min(0).max(0xffff);

export const waveformSchema = z.object({
  current_a: z.number().min(0).max(100_000).default(200),
  voltage_v: z.number().min(0).max(1_000_000).default(11_547),
  current_angle_deg: z.number().min(-360).max(360).default(20),
  phase_deg: z.number().min(-360).max(360).default(0),
  harmonics: z.array(z.object({ order: z.number().int().min(2).max(50), percent: z.number().min(0).max(100) })).default([]),
  fault: z.object({
    at_s: z.number().min(0),
    current_factor: z.number().min(0).max(1000).default(10),
    voltage_factor: z.number().min(0).max(10).default(0.3),
  }).optional(),
}).strict();

export const streamsSchema = z.object({
  count: z.number().int().min(1).max(1024).default(8),
  svid: z.string().min(1).max(129).regex(/^[\x20-\x7e]+$/, 'printable ASCII (svID is a VisibleString)').default('MU{n:02}'),
  appid: appId.default(0x4000),
  dst_mac: mac.default('01:0c:cd:04:00:00'),
  src_mac: mac.default('02:53:56:00:00:01'),
  /** VLAN id, or false for untagged frames. */
  vlan_id: z.union([z.number().int().min(0).max(4095), z.literal(false)]).default(0),
  vlan_priority: z.number().int().min(0).max(7).default(4),
  frequency: z.union([z.literal(50), z.literal(60)]).default(50),
  samples_per_cycle: z.union([z.literal(80), z.literal(256)]).default(80),
  asdus_per_frame: z.number().int().min(1).max(16).default(1),
  conf_rev: z.number().int().min(0).max(0xffffffff).default(1),
  smp_synch: z.number().int().min(0).max(255).default(2),
  simulated: z.boolean().default(false),
  dat_set: z.string().max(129).regex(/^[\x20-\x7e]*$/).optional(),
  waveform: waveformSchema.default(() => waveformSchema.parse({})),
}).strict();

export const publishSchema = z.object({
  interface: ifname.optional(),
  netns: netns.optional(),
  duration_s: z.number().positive().optional(),
  /** SCHED_FIFO priority of the transmit thread, 0 = normal scheduling. */
  fifo_priority: z.number().int().min(0).max(99).default(0),
  /** CPU to pin the transmit thread to, -1 = any. */
  cpu: z.number().int().min(-1).max(4095).default(-1),
  /** Busy-wait this many µs before each send for sharper pacing (costs CPU). */
  spin_us: z.number().int().min(0).max(10_000).default(0),
  record: z.string().optional(),
  /** Replay this capture (pcap or pcapng, "-" = stdin) instead of synthetic streams; loop, speed and repace apply to it only. */
  pcap: z.string().min(1).optional(),
  /** Times to replay the capture, or "forever". */
  loop: z.union([z.number().int().min(1), z.literal('forever')]).default(1),
  /** Replay speed factor (2 = twice as fast). */
  speed: z.number().positive().max(1000).default(1),
  /** Send each replayed stream at its nominal period instead of the capture's timing. */
  repace: z.boolean().default(false),
}).strict();

const metricsAddress = z.string().regex(/^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?\d{1,5}$/, 'write HOST:PORT or PORT, e.g. "127.0.0.1:9465"');
/** An interface, in a network namespace after @: "ens1f0", "svtvm0@svt-vm". */
const interfaceSpec = z.string().regex(/^[A-Za-z0-9_.:-]{1,15}(@[A-Za-z0-9_.-]{1,64})?$/, 'IFACE or IFACE@NETNS, e.g. "ens1f0" or "svtvm0@svt-vm"');
const comm = z.string().regex(/^[A-Za-z0-9_.:+/-]{1,15}$/, 'a command name as /proc/PID/comm shows it (up to 15 characters)');

export const subscribeSchema = z.object({
  interface: ifname.optional(),
  netns: netns.optional(),
  /** svIDs or APPID ranges (4000..40ff) to keep; empty keeps all. */
  streams: z.array(z.string()).default([]),
  record: z.string().optional(),
  duration_s: z.number().positive().optional(),
  rcvbuf_bytes: z.number().int().min(65_536).max(1 << 30).default(32 << 20),
  timestamping: z.enum(['software', 'hardware']).default('software'),
  /** Serve Prometheus metrics on HOST:PORT (loopback unless a host is given). */
  metrics: metricsAddress.optional(),
  /** SCHED_FIFO priority of the receive thread, 0 = normal scheduling. */
  fifo_priority: z.number().int().min(0).max(99).default(0),
  /** CPU to pin the receive thread to, -1 = any. */
  cpu: z.number().int().min(-1).max(4095).default(-1),
}).strict();

/** A point of the user's own beside T1..T4 (e.g. where vhost takes the frame). */
export const customPointSchema = z.object({
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,31}$/, 'a letter, then letters, digits, _ . -'),
  probe: z.string().min(1),
  /** The point it comes right after along the path, e.g. "T2". */
  after: z.string().optional(),
  interface: interfaceSpec.optional(),
  comm: comm.optional(),
  pids: z.array(z.number().int().positive()).optional(),
}).strict();

export const traceSchema = z.object({
  /** hypervisor (T1, T2) or vm (T3, T4). */
  machine: z.enum(['hypervisor', 'vm']).default('hypervisor'),
  /** The point tracer: bpf (the binary engine, a ring buffer read on a timer; the default where it can run) or bpftrace (the generated, readable program). */
  engine: z.enum(['bpftrace', 'bpf']).optional(),
  ingress: interfaceSpec.optional(),
  vm_port: interfaceSpec.optional(),
  vm_interface: interfaceSpec.optional(),
  /** The seed's svtrace.cfg SV_INTERFACE: the ingress on a hypervisor, the VM's interface in a VM. */
  interface: interfaceSpec.optional(),
  subscriber_comm: comm.optional(),
  subscriber_pids: z.array(z.number().int().positive()).default([]),
  /** svIDs to trace; empty traces every stream seen. */
  streams: z.array(z.string().min(1)).default([]),
  record: z.string().optional(),
  metrics: metricsAddress.optional(),
  duration_s: z.number().positive().optional(),
  /** A capture (pcap/pcapng) of the streams: their frame layouts are taken from it instead of learnt from live traffic. */
  layouts_from: z.string().min(1).optional(),
  points: z.array(customPointSchema).max(16).default([]),
}).strict();

export const explainSchema = z.object({
  /** Explain samples slower than this (default: the segment's verdict limit). */
  threshold_us: z.number().positive().optional(),
  /** Seconds of recorder history kept per CPU. */
  window_s: z.number().positive().max(60).default(2),
  /** Record only these CPUs (default all). */
  cpus: z.array(z.number().int().min(0).max(4095)).optional(),
  /** Chrome/Perfetto traces for this many worst samples. */
  worst: z.number().int().min(0).max(100).default(5),
}).strict();

export const labSchema = z.object({
  /** The run directory of the lab that `svtrace trace --lab` traces (default /run/svtrace/lab). */
  run_dir: z.string().startsWith('/', 'an absolute path').optional(),
}).strict();

export const verdictsSchema = z.object({
  /** Limits in µs per segment (Ttot, Thyp, Tsub, ... or a custom name). */
  limits_us: z.record(z.string().regex(/^[A-Za-z0-9_]{1,32}$/), z.number().positive()).default(() => ({ ...DEFAULT_LIMITS_US })),
  max_missing: z.number().int().min(0).default(0),
  /** What a plain limit (a key naming a segment) applies to: "max" (every sample) or a percentile such as "p99.99". */
  at: z.string().regex(/^(max|p\d{1,3}(\.\d{1,6})?)$/, 'write "max" or a percentile such as "p99.99"').default('max'),
}).strict();

export const reportSchema = z.object({
  /** Custom segments measured beside Tnet..Ttot: NAME = "FROM:TO", e.g. Tovs = "T1:T2". */
  segments: z.record(
    z.string().regex(/^[A-Za-z0-9_]{1,32}$/, 'a segment name is letters, digits and _'),
    z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,31}:[A-Za-z][A-Za-z0-9_.-]{0,31}$/, 'write "FROM:TO" with two point names, e.g. "T1:T2"'),
  ).default({}),
  /**
   * Clock offsets per machine (as its records name it): MACHINE = "OFFSET[±UNCERTAINTY]", machine − reference,
   * e.g. "svt-vm" = "-605ms±1.2ms"; they replace the offsets the records carry (checked by the analysis' parser).
   */
  clock_offsets: z.record(z.string().min(1).max(255), z.string().max(64)).default({}),
}).strict();

export const configSchema = z.object({
  streams: streamsSchema.default(() => streamsSchema.parse({})),
  publish: publishSchema.default(() => publishSchema.parse({})),
  subscribe: subscribeSchema.default(() => subscribeSchema.parse({})),
  verdicts: verdictsSchema.default(() => verdictsSchema.parse({})),
  report: reportSchema.default(() => reportSchema.parse({})),
  trace: traceSchema.default(() => traceSchema.parse({})),
  explain: explainSchema.default(() => explainSchema.parse({})),
  lab: labSchema.default(() => labSchema.parse({})),
}).strict();

export type SvtraceConfig = z.infer<typeof configSchema>;
export type StreamsConfig = z.infer<typeof streamsSchema>;
export type PublishConfig = z.infer<typeof publishSchema>;
export type SubscribeConfig = z.infer<typeof subscribeSchema>;
export type TraceSection = z.infer<typeof traceSchema>;
export type ExplainSection = z.infer<typeof explainSchema>;
