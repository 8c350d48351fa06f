/**
 * The kernel probes a trace point can use, and what each one sees. A point
 * names one of these by its bpftrace attach string; the generator reads the
 * skb and the device through the expressions given here.
 *
 * Measured on Debian 12 / bpftrace 0.17 / Linux 6.18 with veth (see the
 * report in the tests): at every probe below `skb->head + skb->mac_header` is
 * the start of the Ethernet frame; `skb->data` is not (it is past the
 * Ethernet header at receive, at the frame start at transmit).
 */

export type ProbeKind = 'tracepoint' | 'kprobe';

/** How a point's filter may name what it watches. */
export type FilterKind = 'interface' | 'process' | 'either';

export interface ProbeDef {
  /** bpftrace attach point. */
  attach: string;
  kind: ProbeKind;
  /** bpftrace expression for the struct sk_buff pointer. */
  skb: string;
  /** bpftrace expression for the struct net_device pointer ($skb is in scope), or null when unknown. */
  dev: string | null;
  filter: FilterKind;
  /** What firing means, for plans and `--print-program` comments. */
  meaning: string;
  /** Set when reading the frame there can race with its release (the data may be gone). */
  racy?: string;
}

const TP_SKB = '(struct sk_buff *)args->skbaddr';
const KP_SKB = '(struct sk_buff *)arg0';

/** A table entry: the attach string names the probe and its kind (its prefix). */
type Entry = [attach: string, fields: Omit<ProbeDef, 'attach' | 'kind'>];

const ENTRIES: Entry[] = [
  ['tracepoint:net:netif_receive_skb', { skb: TP_SKB, dev: '$skb->dev', filter: 'interface',
    meaning: 'the stack takes the frame from the driver (softirq), once per frame on every receive path' }],
  ['tracepoint:net:net_dev_start_xmit', { skb: TP_SKB, dev: '$skb->dev', filter: 'interface',
    meaning: 'the frame is handed to the transmitting driver (after the qdisc)' }],
  ['tracepoint:net:net_dev_queue', { skb: TP_SKB, dev: '$skb->dev', filter: 'interface',
    meaning: 'the frame enters dev_queue_xmit (before the qdisc)' }],
  // skb->dev is already the veth peer here, and the skb may be freed: filter by process only.
  ['tracepoint:net:net_dev_xmit', { skb: TP_SKB, dev: null, filter: 'process',
    meaning: 'the transmitting driver returned',
    racy: 'the driver may already have released the frame when this fires; unreadable frames count as unknown' }],
  ['tracepoint:skb:skb_copy_datagram_iovec', { skb: TP_SKB, dev: null, filter: 'process',
    meaning: 'a socket copies the frame to the reader (recvmsg), in the reader\'s process' }],
  ['tracepoint:skb:consume_skb', { skb: TP_SKB, dev: '$skb->dev', filter: 'either',
    meaning: 'the last reference to the frame is released normally' }],
  ['tracepoint:skb:kfree_skb', { skb: TP_SKB, dev: '$skb->dev', filter: 'either',
    meaning: 'the last reference to the frame is dropped (unhandled protocol, drop)' }],
  ['kprobe:tpacket_rcv', { skb: KP_SKB, dev: '(struct net_device *)arg1', filter: 'either',
    meaning: 'an AF_PACKET ring (PACKET_RX_RING) socket receives the frame' }],
  ['kprobe:skb_push', { skb: KP_SKB, dev: '$skb->dev', filter: 'either',
    meaning: 'a header is pushed onto the frame (e.g. a packet socket rewinding to the MAC header)' }],
  ['kprobe:consume_skb', { skb: KP_SKB, dev: '$skb->dev', filter: 'either',
    meaning: 'consume_skb is called (e.g. by vhost after copying the frame into the guest)' }],
];

export const PROBES: Readonly<Record<string, ProbeDef>> = Object.fromEntries(ENTRIES.map(([attach, fields]) => [
  attach, { attach, kind: attach.startsWith('kprobe:') ? 'kprobe' : 'tracepoint', ...fields } satisfies ProbeDef,
]));

export type ProbeId = keyof typeof PROBES;

export function probeDef(attach: string): ProbeDef | undefined {
  return Object.hasOwn(PROBES, attach) ? PROBES[attach] : undefined;
}
