// SPDX-License-Identifier: GPL-2.0
/*
 * points.bpf.c	Timestamp every IEC 61850-9-2 Sampled Values frame at chosen
 *		kernel points, each ASDU identified exactly by its stream and
 *		smpCnt: the binary engine of `svtrace trace --engine bpf`.
 *
 * It does what the generated svtrace.bt does (src/trace/generate.ts, the
 * readable reference), with the config in maps instead of constants:
 *   - a point is one raw tracepoint plus a filter (ifindex AND network
 *     namespace inode, pids, comm or comm prefix): map `points`, and the
 *     point ids of each probe in `config`;
 *   - the frame is read from skb->head + skb->mac_header; it is SV when the
 *     ethertype is 0x88BA at offset 12 or behind one 802.1Q tag at 16;
 *   - it is matched to a layout k: the APPID and Length word selects the
 *     candidates (`cands`), then every ASDU's svID TLV and smpCnt tag are
 *     compared exactly, as 64-bit words with masks at fixed offsets
 *     (`layouts`). Nothing is hashed: two svIDs match only when they are the
 *     same octets;
 *   - a matched frame becomes one fixed-size record (point, layout, ktime,
 *     cpu, the smpCnt of each ASDU) in the ring buffer `events`, written with
 *     BPF_RB_NO_WAKEUP: no reader is woken per frame; the addon's thread reads
 *     the ring on a short timer;
 *   - per point, matched, unknown and short frames are counted, and so is
 *     every record the ring had no room for (`counters`): nothing is lost
 *     silently.
 *
 * Times are bpf_ktime_get_ns(): CLOCK_MONOTONIC, as bpftrace's nsecs.
 *
 * Build: clang -O2 -g -target bpf -c points.bpf.c (binding.gyp does it);
 * struct offsets are relocated at load time from the kernel's BTF (CO-RE).
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "points.h"

/* The few kernel structs read, by name: libbpf finds the real offsets in /sys/kernel/btf/vmlinux. */
struct ns_common {
  unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
  struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
  struct net *net;
} __attribute__((preserve_access_index)) possible_net_t;

struct net_device {
  int ifindex;
  possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct sk_buff {
  struct net_device *dev;
  unsigned int tail;
  unsigned char *head;
  __u16 mac_header;
} __attribute__((preserve_access_index));

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct svb_config);
} config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SVB_MAX_POINT_ID + 1);
  __type(key, __u32);
  __type(value, struct svb_point);
} points SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1); /* set to the number of layouts at load */
  __type(key, __u32);
  __type(value, struct svb_layout);
} layouts SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, struct svb_cands);
} cands SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, (SVB_MAX_POINT_ID + 1) * SVB_N_COUNTERS);
  __type(key, __u32);
  __type(value, __u64);
} counters SEC(".maps");

/* Unknown frames shown per point (shared by all CPUs: an atomic add). */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SVB_MAX_POINT_ID + 1);
  __type(key, __u32);
  __type(value, __u32);
} shown SEC(".maps");

struct scratch {
  __u8 buf[SVB_BUF + 8];
};

/*
 * One scratch frame per CPU and nesting level. Raw tracepoint programs nest:
 * a receive softirq (T3) can interrupt the T4 program in the subscriber's
 * recvmsg on the same CPU. With one buffer per CPU the inner run overwrote
 * the frame the outer one was matching, which then recorded the other
 * frame's smpCnts (seen in a one-vCPU guest). Task, softirq, hard IRQ, NMI:
 * four levels.
 */
#define SVB_NEST 4

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, SVB_NEST);
  __type(key, __u32);
  __type(value, struct scratch);
} frame SEC(".maps");

/* This CPU's nesting depth: the scratch slot of the run in progress. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u32);
} depth SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 24); /* set at load */
} events SEC(".maps");

#define MATCH_NONE -1  /* SV, no known layout: unknown */
#define MATCH_SHORT -2 /* a layout's APPID and Length, but too short to read it */
#define MATCH_NOT_SV -3

static __always_inline void count(__u32 point, __u32 kind) {
  __u32 i = point * SVB_N_COUNTERS + kind;
  __u64 *c = bpf_map_lookup_elem(&counters, &i);
  if (c) *c += 1;
}

/*
 * The pieces below are global functions (BPF-to-BPF calls, not inlined): the
 * verifier checks each once, with unknown arguments, instead of every path
 * through the points × candidates × ASDUs loops of their caller. Inlined,
 * Linux 6.1's verifier gave up ("BPF program is too large": over a million
 * instructions explored); 6.18's pruning coped. Arguments are scalars only
 * (a global function cannot take a map value); each looks up what it needs.
 */
#define SVB_GLOBAL __attribute__((noinline))

SVB_GLOBAL int point_passes(__u32 id, __u64 skb_addr) {
  struct svb_point *p = bpf_map_lookup_elem(&points, &id);
  if (!p) return 0;
  if (p->ifindex) {
    struct sk_buff *skb = (struct sk_buff *)skb_addr;
    struct net_device *dev = BPF_CORE_READ(skb, dev);
    if (!dev) return 0;
    if ((__u32)BPF_CORE_READ(dev, ifindex) != p->ifindex) return 0;
    if (BPF_CORE_READ(dev, nd_net.net, ns.inum) != p->netns_inum) return 0;
  }
  if (p->n_pids) {
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    int hit = 0;
    for (int i = 0; i < SVB_MAX_PIDS; i++) {
      if (i >= p->n_pids) break;
      if (p->pids[i] == tgid) hit = 1;
    }
    if (!hit) return 0;
  }
  if (p->comm_len) {
    char comm[16];
    bpf_get_current_comm(comm, sizeof comm);
    for (int i = 0; i < 16; i++) {
      if (i >= p->comm_len) break;
      if (comm[i] != p->comm[i]) return 0;
    }
  }
  return 1;
}

struct words_ctx {
  struct scratch *s;
  struct svb_layout *l;
  __u32 off;
  __u64 diff;
};

/* One word compare (a bpf_loop callback: the verifier checks it once, not 544 times). */
static long compare_word(__u32 i, void *arg) {
  struct words_ctx *c = arg;
  if (i >= SVB_MAX_WORDS) return 1;
  struct svb_word *w = &c->l->w[i];
  __u32 at = (c->off + w->off) & (SVB_BUF - 1);
  c->diff |= (*(__u64 *)(c->s->buf + at) ^ w->val) & w->mask;
  return c->diff != 0; /* stop at the first difference */
}

/* The layout of the frame in this CPU's scratch (n bytes read, the SV header at off), or MATCH_*. */
SVB_GLOBAL int match_layout(__u32 slot, __u32 n, __u32 off) {
  struct scratch *s = bpf_map_lookup_elem(&frame, &slot);
  if (!s) return MATCH_NONE;
  __u32 hdr = *(__u32 *)(s->buf + (off & 31));
  struct svb_cands *c = bpf_map_lookup_elem(&cands, &hdr);
  if (!c) return MATCH_NONE;
  __u32 room = n - off;
  for (int j = 0; j < SVB_MAX_CAND; j++) {
    if (j >= c->n) break;
    __u32 k = c->k[j];
    struct svb_layout *l = bpf_map_lookup_elem(&layouts, &k);
    if (!l) return MATCH_NONE;
    if (room < l->extent) return MATCH_SHORT;
    struct words_ctx wc = {.s = s, .l = l, .off = off, .diff = 0};
    bpf_loop(l->n_words, compare_word, &wc, 0);
    if (wc.diff == 0) return (int)k;
  }
  return MATCH_NONE;
}

SVB_GLOBAL int emit_frame(__u32 slot, __u32 point, __u32 k, __u64 t, __u32 off) {
  struct scratch *s = bpf_map_lookup_elem(&frame, &slot);
  struct svb_layout *l = bpf_map_lookup_elem(&layouts, &k);
  if (!s || !l) return 0;
  struct svb_rec_frame r = {};
  r.type = SVB_REC_FRAME;
  r.point = point;
  r.layout = k;
  r.cpu = bpf_get_smp_processor_id();
  r.n = l->n_asdus;
  r.t_mono_ns = t;
  for (int i = 0; i < SVB_MAX_ASDUS; i++) {
    if (i >= l->n_asdus) break;
    __u32 at = (off + l->cnt_off[i]) & (SVB_BUF - 1);
    r.smp_cnt[i] = l->cnt_bytes[i] == 2 ? ((__u16)s->buf[at] << 8) | s->buf[(at + 1) & (SVB_BUF - 1)] : s->buf[at];
  }
  if (bpf_ringbuf_output(&events, &r, sizeof r, BPF_RB_NO_WAKEUP) != 0) count(point, SVB_C_LOST);
  return 0;
}

SVB_GLOBAL int emit_unknown(__u32 slot, __u32 point, __u64 t, __u32 n) {
  __u32 zero = 0;
  struct svb_config *cfg = bpf_map_lookup_elem(&config, &zero);
  struct scratch *s = bpf_map_lookup_elem(&frame, &slot);
  __u32 *seen = bpf_map_lookup_elem(&shown, &point);
  if (!cfg || !s || !seen || *seen >= cfg->unknown_samples) return 0;
  __sync_fetch_and_add(seen, 1); /* racing CPUs may show one or two more: the count stays exact */
  struct svb_rec_unknown *r = bpf_ringbuf_reserve(&events, sizeof *r, 0);
  if (!r) {
    count(point, SVB_C_LOST);
    return 0;
  }
  r->type = SVB_REC_UNKNOWN;
  r->point = point;
  r->avail = n;
  r->pad = 0;
  r->t_mono_ns = t;
  __builtin_memcpy(r->bytes, s->buf, SVB_UNKNOWN_BYTES);
  bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
  return 0;
}

static __always_inline int on_skb_at(struct sk_buff *skb, __u32 probe, __u32 slot) {
  __u64 t = bpf_ktime_get_ns();
  __u32 zero = 0;
  struct svb_config *cfg = bpf_map_lookup_elem(&config, &zero);
  if (!cfg || cfg->stop || probe >= SVB_N_PROBES) return 0;
  __u32 np = cfg->n_points[probe];
  if (np == 0) return 0;
  /* which points of this probe pass their filter */
  __u8 pass[SVB_MAX_PER_PROBE] = {};
  int any = 0;
  for (int j = 0; j < SVB_MAX_PER_PROBE; j++) {
    if (j >= np) break;
    if (point_passes(cfg->points[probe][j], (__u64)skb)) {
      pass[j] = 1;
      any = 1;
    }
  }
  if (!any) return 0;
  __u16 mac = BPF_CORE_READ(skb, mac_header);
  if (mac == 0xffff) return 0;
  long lin = (long)BPF_CORE_READ(skb, tail) - (long)mac;
  unsigned char *head = BPF_CORE_READ(skb, head);
  struct scratch *s = bpf_map_lookup_elem(&frame, &slot);
  if (!s || lin < 18) return 0;
  __u32 n = lin < cfg->read_bytes ? lin : cfg->read_bytes;
  if (n > SVB_BUF - 1) n = SVB_BUF - 1;
  n &= SVB_BUF - 1; /* for the verifier */
  if (bpf_probe_read_kernel(s->buf, n, head + mac) != 0) return 0;
  __u16 et0 = *(__u16 *)(s->buf + 12);
  __u32 off = et0 == 0x0081 ? 18 : 14;
  __u16 et = et0 == 0x0081 ? *(__u16 *)(s->buf + 16) : et0;
  if (et != 0xBA88 || lin < off + 4) return 0;
  int k = match_layout(slot, n, off);
  for (int j = 0; j < SVB_MAX_PER_PROBE; j++) {
    if (j >= np) break;
    if (!pass[j]) continue;
    __u32 id = cfg->points[probe][j];
    if (k >= 0) {
      count(id, SVB_C_MATCHED);
      emit_frame(slot, id, (__u32)k, t, off);
    } else if (k == MATCH_SHORT) {
      count(id, SVB_C_SHORT);
    } else {
      count(id, SVB_C_UNKNOWN);
      emit_unknown(slot, id, t, n);
    }
  }
  return 0;
}

/* Takes this CPU's next scratch slot for the run (and gives it back): a nested run never shares a buffer. */
static __always_inline int on_skb(struct sk_buff *skb, __u32 probe) {
  __u32 zero = 0;
  __u32 *d = bpf_map_lookup_elem(&depth, &zero);
  if (!d) return 0;
  __u32 slot = *d;
  if (slot >= SVB_NEST) return 0; /* deeper than NMI: cannot happen with these tracepoints */
  *d = slot + 1;
  on_skb_at(skb, probe, slot);
  *d = slot;
  return 0;
}

#define SKB_PROBE(name, probe)                                     \
  SEC("raw_tp/" #name)                                             \
  int name##_prog(struct bpf_raw_tracepoint_args *ctx) {           \
    return on_skb((struct sk_buff *)ctx->args[0], probe);          \
  }

SKB_PROBE(netif_receive_skb, SVB_PROBE_NETIF_RECEIVE_SKB)
SKB_PROBE(net_dev_start_xmit, SVB_PROBE_NET_DEV_START_XMIT)
SKB_PROBE(net_dev_queue, SVB_PROBE_NET_DEV_QUEUE)
SKB_PROBE(net_dev_xmit, SVB_PROBE_NET_DEV_XMIT)
SKB_PROBE(consume_skb, SVB_PROBE_CONSUME_SKB)
SKB_PROBE(kfree_skb, SVB_PROBE_KFREE_SKB)
SKB_PROBE(skb_copy_datagram_iovec, SVB_PROBE_SKB_COPY_DATAGRAM_IOVEC)
